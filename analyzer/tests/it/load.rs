use std::{path::Path, sync::Arc};

use arrow::{
    array::RecordBatch,
    datatypes::{DataType, Field, Schema},
};
use cablewatch_analyzer::{
    AnalyzerError,
    demo::{DemoOptions, run},
    load::{Filter, scan},
    series::load_series,
    summary::summarize,
};
use cablewatch_proto::{
    tables::{self, OPTICAL_CHANNEL},
    time::parse_time,
};
use cablewatch_testdata::{
    generate::{Simulation, generate, write_tables},
    scenario::Scenario,
};

fn tiny_data() -> (tempfile::TempDir, Scenario) {
    let s = Scenario::load("tiny").unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_tables(&Simulation::new(&s, 5).unwrap(), dir.path()).unwrap();
    (dir, s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_written_files_pass_the_contract_check_and_count_every_acked_row() {
    let out = tempfile::tempdir().unwrap();
    let options = DemoOptions {
        out: out.path().to_owned(),
        scenario: "tiny".into(),
        seed: 9,
        batch_rows: 250,
    };
    let report = run(&options, |_| {}).await.unwrap();
    let acked: u64 = report.streams.iter().map(|s| s.accepted_rows).sum();
    let rejected: u64 = report.streams.iter().map(|s| s.rejected_rows).sum();
    assert_eq!(rejected, 0);
    let stored: u64 = tables::ALL.iter().map(|t| report.summary.rows(t.name)).sum();
    assert_eq!(stored, acked, "every acknowledged row is read back once");
    let units = generate(&Scenario::load("tiny").unwrap(), 9).unwrap();
    let generated: usize = units.iter().map(|u| u.payload.row_count().unwrap()).sum();
    assert_eq!(acked as usize, generated);
    assert!(out.path().join("topology.toml").is_file());
}

#[test]
fn summary_counts_rows_and_finds_physical_baselines() {
    let (dir, s) = tiny_data();
    let summary = summarize(dir.path(), &Filter::default()).unwrap();
    let units = generate(&s, 5).unwrap();
    for t in tables::ALL {
        let n: usize = units
            .iter()
            .filter(|u| u.payload.table().name == t.name)
            .map(|u| u.payload.row_count().unwrap())
            .sum();
        assert_eq!(summary.rows(t.name), n as u64, "{}", t.name);
    }
    let delay = summary.baselines.iter().find(|b| b.metric == "delay_us").unwrap();
    let km = delay.median / cablewatch_proto::topology::FIBER_DELAY_US_PER_KM;
    assert!(
        (310.0..320.0).contains(&km),
        "median delay implies {km} km on a 310 km cable"
    );
    let q = summary.baselines.iter().find(|b| b.metric == "q_db_avg").unwrap();
    assert_eq!(q.series, 2 * 2 * 8);
    assert!(q.sigma > 0.01 && q.sigma < 0.1, "Q noise sigma {}", q.sigma);
}

#[test]
fn filters_restrict_time_and_cable() {
    let (dir, _) = tiny_data();
    let hour = Filter {
        since_ns: Some(parse_time("2026-10-01T01:00:00Z").unwrap()),
        until_ns: Some(parse_time("2026-10-01T02:00:00Z").unwrap()),
        ..Filter::default()
    };
    let series = load_series(
        dir.path(),
        &OPTICAL_CHANNEL,
        Some("channel"),
        "q_db_avg",
        &hour,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(series.len(), 32);
    for s in &series {
        assert_eq!(s.values.len(), 12, "twelve 5-minute bins in one hour");
        assert!(s.times_ns.windows(2).into_iter().all(|w| w[0] < w[1]));
    }
    let other = Filter {
        cable: Some("not-here".into()),
        ..Filter::default()
    };
    let df = scan(dir.path(), &OPTICAL_CHANNEL, &other)
        .unwrap()
        .collect()
        .unwrap();
    assert_eq!(df.height(), 0);
}

#[test]
fn missing_table_names_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let Err(err) = scan(dir.path(), &OPTICAL_CHANNEL, &Filter::default()) else {
        panic!("scan of an empty directory succeeded")
    };
    assert!(matches!(
        err,
        AnalyzerError::MissingTable {
            table: "optical_channel",
            ..
        }
    ));
    assert!(err.to_string().contains("optical_channel"), "{err}");
}

#[test]
fn a_directory_without_tables_is_an_error_not_an_empty_summary() {
    let dir = tempfile::tempdir().unwrap();
    let err = summarize(&dir.path().join("no-such-dir"), &Filter::default()).unwrap_err();
    assert!(matches!(err, AnalyzerError::NoData { .. }));
    assert!(err.to_string().contains("optical_channel"), "{err}");
}

#[test]
fn wrong_column_type_is_named() {
    let (dir, _) = tiny_data();
    // A foreign writer stored q_db_avg as float64 in an extra file of the same table.
    let part = dir.path().join("optical_channel/cable=tiny-1/date=2026-10-01");
    let mut fields: Vec<Field> = OPTICAL_CHANNEL
        .arrow_schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let qi = fields.iter().position(|f| f.name() == "q_db_avg").unwrap();
    fields[qi] = Field::new("q_db_avg", DataType::Float64, false);
    let schema = Arc::new(Schema::new(fields));
    let columns = schema
        .fields()
        .iter()
        .map(|f| arrow::array::new_empty_array(f.data_type()))
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    write(&part.join("aaa-foreign.parquet"), &batch);
    let Err(err) = scan(dir.path(), &OPTICAL_CHANNEL, &Filter::default()) else {
        panic!("mistyped column accepted")
    };
    let err = err.to_string();
    assert!(
        err.contains("q_db_avg") && err.contains("f64") && err.contains("f32"),
        "{err}"
    );
}

fn write(path: &Path, batch: &RecordBatch) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

/// The contract for the simulator: `stream` through a real collector stores exactly the rows
/// `generate` writes with the same scenario and seed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_through_the_collector_equals_generated() {
    use polars::prelude::*;
    // One scenario file, generated to files directly and streamed by the demo's path (stations
    // -> gRPC -> collector -> Parquet); its physics drawn from the default ranges for the seed.
    let path = tempfile::tempdir().unwrap();
    let scenario_file = path.path().join("scenario.toml");
    std::fs::write(
        &scenario_file,
        format!(
            "name = \"tiny-events\"\ntopology = \"{}\"\nstart = \"2026-10-01T00:00:00Z\"\ndays = 0.25\n\
             [cadence]\noptical_s = 300\nline_monitoring_s = 1800\nlatency_s = 60\n\
             [events.counts]\nclip_on_tap = 1\ndata_gap = 1\n",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/topology-tiny.toml")
        ),
    )
    .unwrap();
    let scenario = Scenario::load(&scenario_file.to_string_lossy()).unwrap();
    let generated = path.path().join("generated");
    write_tables(&Simulation::new(&scenario, 4).unwrap(), &generated).unwrap();
    let options = DemoOptions {
        out: path.path().join("streamed"),
        scenario: scenario_file.to_string_lossy().into_owned(),
        seed: 4,
        batch_rows: 300,
    };
    let report = run(&options, |_| {}).await.unwrap();
    let generated_dir = generated.clone();
    let streamed_dir = report.data_dir.clone();
    tokio::task::spawn_blocking(move || {
        for table in tables::ALL {
            let keys: Vec<&str> = table.sort_key.iter().copied().chain(["cable"]).collect();
            let read = |dir: &Path| {
                scan(dir, table, &Filter::default())
                    .unwrap()
                    .select([all().exclude_cols(["date"]).as_expr()])
                    .sort(keys.clone(), SortMultipleOptions::default())
                    .collect()
                    .unwrap()
            };
            let (a, b) = (read(&generated_dir), read(&streamed_dir));
            assert!(a.height() > 0);
            assert!(
                a.equals(&b),
                "{}: streamed rows differ from generated ({} vs {} rows)",
                table.name,
                a.height(),
                b.height()
            );
        }
    })
    .await
    .unwrap();
}

/// The per-fiber optical aggregates (a time-by-channel matrix per fiber, medians and channel
/// deviations computed in Rust) agree with a plain polars group-by over the same rows, also when a
/// partition's rows are stored in reverse order and a channel is missing at some times.
#[test]
fn fiber_aggregates_match_a_polars_group_by() {
    use polars::prelude::*;
    let mut s = Scenario::load("tiny").unwrap();
    s.days = 2.0;
    let dir = tempfile::tempdir().unwrap();
    write_tables(&Simulation::new(&s, 21).unwrap(), dir.path()).unwrap();
    // Reverse one partition's rows; on fiber pair 1 drop every other row of channel 3 and all of
    // channel 5 (that day's matrix is narrower and is widened to join the other days).
    let files: Vec<_> = walk(&dir.path().join(OPTICAL_CHANNEL.name));
    assert!(files.len() >= 2, "{files:?}");
    let target = &files[0];
    let mut df = crate::scan_file(target).collect().unwrap().reverse();
    let keep: BooleanChunked = (0..df.height())
        .map(|i| {
            let ch = df.column("channel").unwrap().u32().unwrap().get(i).unwrap();
            let fp = df.column("fiber_pair").unwrap().u32().unwrap().get(i).unwrap();
            !(((i % 2 == 0 && ch == 3) || ch == 5) && fp == 1)
        })
        .collect();
    df = df.filter(&keep).unwrap();
    crate::overwrite(target, df);

    let fibers =
        cablewatch_analyzer::series::load_fiber_optical(dir.path(), &Filter::default(), &mut |_, _| {})
            .unwrap();
    let reference = crate::scan_table(dir.path(), OPTICAL_CHANNEL.name)
        .select([
            col("cable"),
            col("direction"),
            col("fiber_pair"),
            col("channel"),
            col("time").cast(DataType::Int64).alias("t"),
            col("q_db_avg").cast(DataType::Float64).alias("q"),
            col("sop_roc_krad_s_max").cast(DataType::Float64).alias("sop"),
        ])
        .with_column(
            (col("q")
                - col("q")
                    .mean()
                    .over([col("cable"), col("direction"), col("fiber_pair"), col("channel")])
                    .unwrap())
            .alias("qdev"),
        )
        .group_by([col("cable"), col("direction"), col("fiber_pair"), col("t")])
        .agg([
            len().cast(DataType::UInt32).alias("n"),
            col("q").median().alias("q"),
            col("sop").median().alias("sop"),
            col("qdev").min().alias("qdev"),
        ])
        .sort(["cable", "direction", "fiber_pair", "t"], Default::default())
        .collect()
        .unwrap();
    let total: usize = fibers.iter().map(|f| f.times_ns.len()).sum();
    assert_eq!(total, reference.height());
    let (n, q, sop, qdev) = (
        reference.column("n").unwrap().u32().unwrap(),
        reference.column("q").unwrap().f64().unwrap(),
        reference.column("sop").unwrap().f64().unwrap(),
        reference.column("qdev").unwrap().f64().unwrap(),
    );
    let t = reference.column("t").unwrap().i64().unwrap();
    let mut row = 0;
    let mut short = 0;
    for f in &fibers {
        for i in 0..f.times_ns.len() {
            assert_eq!(f.times_ns[i], t.get(row).unwrap(), "{:?} row {i}", f.key);
            assert_eq!(f.channels[i], n.get(row).unwrap());
            short += usize::from(f.channels[i] < 8);
            assert!(
                (f.q_db[i] - q.get(row).unwrap()).abs() < 1e-9,
                "{:?} row {i}",
                f.key
            );
            assert!((f.sop_max[i] - sop.get(row).unwrap()).abs() < 1e-9);
            assert!(
                (f.q_dev_min[i] - qdev.get(row).unwrap()).abs() < 1e-5,
                "{:?} row {i}",
                f.key
            );
            row += 1;
        }
    }
    assert!(short > 0, "the dropped channel shows as fewer channels reporting");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Path changes read partition by partition (with the delays, in one read) agree with one polars
/// sort over the whole table, also when a day's rows are stored in reverse order and a fiber changes
/// path within a day and back on the next.
#[test]
fn path_changes_match_a_sort_over_the_whole_table() {
    use cablewatch_proto::tables::LATENCY;
    use polars::prelude::*;
    let mut s = Scenario::load("tiny").unwrap();
    s.days = 3.0;
    let dir = tempfile::tempdir().unwrap();
    write_tables(&Simulation::new(&s, 22).unwrap(), dir.path()).unwrap();
    let files = walk(&dir.path().join(LATENCY.name));
    assert!(files.len() >= 3, "{files:?}");
    // Day 2 of the first cable: reversed, and fiber pair 1 on another path from its middle on; the
    // next day starts on the usual path again.
    let target = &files[1];
    let mut df = crate::scan_file(target).collect().unwrap();
    let half = df.height() / 2;
    let paths: StringChunked = (0..df.height())
        .map(|i| {
            let fp = df.column("fiber_pair").unwrap().u32().unwrap().get(i).unwrap();
            let p = df
                .column("path_id")
                .unwrap()
                .str()
                .unwrap()
                .get(i)
                .unwrap()
                .to_owned();
            Some(if fp == 1 && i >= half {
                "detour".to_owned()
            } else {
                p
            })
        })
        .collect();
    df.replace("path_id", paths.into_series().into()).unwrap();
    crate::overwrite(target, df.reverse());

    let (delays, changes) =
        cablewatch_analyzer::series::load_latency(dir.path(), &Filter::default(), &mut |_, _| {}).unwrap();
    // The delay series read alongside are those `load_series` gives.
    let alone = load_series(
        dir.path(),
        &LATENCY,
        None,
        tables::col::DELAY_US,
        &Filter::default(),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(delays, alone);
    assert!(!delays.is_empty());
    let all = crate::scan_table(dir.path(), LATENCY.name)
        .select([
            col("cable"),
            col("direction"),
            col("fiber_pair"),
            col("time").cast(DataType::Int64).alias("t"),
            col("path_id"),
        ])
        .sort(
            ["cable", "direction", "fiber_pair", "t"],
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .collect()
        .unwrap();
    let col_str = |n: &str| all.column(n).unwrap().str().unwrap().clone();
    let (cable, direction, path) = (col_str("cable"), col_str("direction"), col_str("path_id"));
    let fp = all.column("fiber_pair").unwrap().u32().unwrap();
    let t = all.column("t").unwrap().i64().unwrap();
    let mut expected: Vec<(String, String, u32, i64, String)> = Vec::new();
    for i in 0..all.height() {
        let key = (
            cable.get(i).unwrap().to_owned(),
            direction.get(i).unwrap().to_owned(),
            fp.get(i).unwrap(),
        );
        let p = path.get(i).unwrap();
        let same_fiber = expected
            .last()
            .is_some_and(|e| (e.0.as_str(), e.1.as_str(), e.2) == (key.0.as_str(), key.1.as_str(), key.2));
        if !same_fiber || expected.last().is_some_and(|e| e.4 != p) {
            expected.push((key.0, key.1, key.2, t.get(i).unwrap(), p.to_owned()));
        }
    }
    let got: Vec<(String, String, u32, i64, String)> = changes
        .into_iter()
        .map(|(k, t, p)| (k.cable, k.direction, k.fiber_pair, t, p))
        .collect();
    assert_eq!(got, expected);
    // The detour shows: onto it, and back to the usual path the next day.
    let onto: Vec<usize> = (0..got.len()).filter(|&i| got[i].4 == "detour").collect();
    assert!(!onto.is_empty(), "{got:?}");
    for i in onto {
        let back = got.get(i + 1).expect("a change after the detour");
        assert_eq!((&back.0, &back.1, back.2), (&got[i].0, &got[i].1, got[i].2));
        assert_ne!(back.4, "detour");
        assert!(back.3 > got[i].3);
    }
}
