use cablewatch_proto::{
    CableId, layout,
    store::{self, ParquetOptions},
    tables::{self, ColumnType, LATENCY, LINE_MONITORING, OPTICAL_CHANNEL, Table},
    time,
    wire::Payload,
};
use polars::prelude::*;

use crate::{T0, latency, line_monitoring, optical};

/// The polars type each contract type must read back as.
fn expected(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::TimestampNsUtc => DataType::Datetime(TimeUnit::Nanoseconds, Some(TimeZone::UTC)),
        ColumnType::Date => DataType::Date,
        ColumnType::UInt32 => DataType::UInt32,
        ColumnType::UInt64 => DataType::UInt64,
        ColumnType::Int64 => DataType::Int64,
        ColumnType::Float32 => DataType::Float32,
        ColumnType::Float64 => DataType::Float64,
        ColumnType::Utf8 => DataType::String,
    }
}

fn write_all(data: &std::path::Path, payload: &Payload, stem: &str) -> Vec<std::path::PathBuf> {
    let cable = CableId::try_new(payload.cable_id()).unwrap();
    store::to_record_batches(payload, None)
        .unwrap()
        .into_iter()
        .map(|d| {
            store::write_part(
                data,
                payload.table(),
                &cable,
                d.day,
                stem,
                &[d.batch],
                ParquetOptions::default(),
            )
            .unwrap()
        })
        .collect()
}

fn read(data: &std::path::Path, table: &Table) -> DataFrame {
    let glob = layout::table_glob(data, table);
    LazyFrame::scan_parquet(
        PlRefPath::new(glob.to_string_lossy().as_ref()),
        ScanArgsParquet {
            hive_options: HiveOptions::new_enabled(),
            ..Default::default()
        },
    )
    .unwrap()
    .collect()
    .unwrap()
}

fn check_schema(df: &DataFrame, table: &Table) {
    let names: Vec<&str> = df.get_column_names().iter().map(|n| n.as_str()).collect();
    let mut want: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
    want.extend(tables::PARTITION_COLUMNS.iter().map(|c| c.name));
    assert_eq!(names, want, "{}: columns", table.name);
    for c in table.columns.iter().chain(tables::PARTITION_COLUMNS) {
        assert_eq!(
            df.column(c.name).unwrap().dtype(),
            &expected(c.ty),
            "{}.{}",
            table.name,
            c.name
        );
    }
}

#[test]
fn optical_rows_read_back_with_polars_partitioned_by_day_and_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_all(dir.path(), &Payload::Optical(optical()), "t1");
    assert_eq!(files.len(), 2, "one part per UTC day");
    let day0 = time::epoch_day(T0);
    assert_eq!(
        files[0],
        layout::partition_dir(
            dir.path(),
            &OPTICAL_CHANNEL,
            &CableId::try_new("c1").unwrap(),
            day0
        )
        .join("part-t1.parquet")
    );
    assert!(
        files[0]
            .to_string_lossy()
            .contains("optical_channel/cable=c1/date=2026-11-21/")
    );
    let leftovers: Vec<_> = std::fs::read_dir(files[0].parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind");

    let df = read(dir.path(), &OPTICAL_CHANNEL);
    check_schema(&df, &OPTICAL_CHANNEL);
    assert_eq!(df.height(), 4);
    // Sorted by direction, fiber pair, channel, time within the first day's file.
    let dirs: Vec<_> = df
        .column("direction")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(Option::unwrap)
        .collect();
    let channels: Vec<_> = df
        .column("channel")
        .unwrap()
        .u32()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(&dirs[..3], ["a_to_b", "a_to_b", "b_to_a"]);
    assert_eq!(&channels[..3], [4, 7, 7]);
    let q: Vec<_> = df
        .column("q_db_avg")
        .unwrap()
        .f32()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(&q[..3], [9.3, 9.1, 9.0]);
    let ber_min = df.column("pre_fec_ber_min").unwrap();
    assert_eq!(ber_min.null_count(), 4, "unreported min is null, not zero");
    let sop_max: Vec<_> = df
        .column("sop_roc_krad_s_max")
        .unwrap()
        .f32()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(sop_max[0], 50.5);
    let times = df.column("time").unwrap().cast(&DataType::Int64).unwrap();
    assert_eq!(times.i64().unwrap().get(0), Some(T0 + 30));
    let cables: Vec<_> = df
        .column("cable")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(Option::unwrap)
        .collect();
    assert!(cables.iter().all(|c| *c == "c1"));
    let interval = df.column("interval_ns").unwrap().i64().unwrap().get(0);
    assert_eq!(interval, Some(900_000_000_000));
}

#[test]
fn line_monitoring_and_latency_read_back_with_polars() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_all(dir.path(), &Payload::LineMonitoring(line_monitoring()), "lm");
    write_all(dir.path(), &Payload::Latency(latency()), "lat");
    // Every file names the contract it was written to; a file without the key is contract 1.
    for f in &files {
        assert_eq!(store::contract_version(f).unwrap(), store::CONTRACT_VERSION);
    }
    let mut df = read(dir.path(), &LINE_MONITORING);
    let old = dir.path().join("old.parquet");
    ParquetWriter::new(std::fs::File::create(&old).unwrap())
        .finish(&mut df)
        .unwrap();
    assert_eq!(store::contract_version(&old).unwrap(), 1);
    std::fs::remove_file(&old).unwrap();

    let lm = read(dir.path(), &LINE_MONITORING);
    check_schema(&lm, &LINE_MONITORING);
    let reps: Vec<_> = lm
        .column("repeater")
        .unwrap()
        .u32()
        .unwrap()
        .into_no_null_iter()
        .collect();
    let gains: Vec<_> = lm
        .column("loopback_gain_db")
        .unwrap()
        .f32()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(reps, [1, 2]);
    assert_eq!(gains, [-32.25, -31.5]);
    assert_eq!(lm.column("sweep_id").unwrap().u64().unwrap().get(0), Some(9));

    let lat = read(dir.path(), &LATENCY);
    check_schema(&lat, &LATENCY);
    let kinds: Vec<_> = lat
        .column("kind")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(Option::unwrap)
        .collect();
    assert_eq!(kinds, [tables::LATENCY_ONE_WAY, tables::LATENCY_ROUND_TRIP]);
    let delay: Vec<_> = lat
        .column("delay_us")
        .unwrap()
        .f64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(delay, [6097.25, 12_194.5]);
    let path: Vec<_> = lat
        .column("path_id")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(Option::unwrap)
        .collect();
    assert_eq!(path, ["c1/fp1/primary", "c1/fp1/backup"]);
}

#[test]
fn unspecified_direction_is_refused_not_stored() {
    let mut p = optical();
    p.direction[2] = 0;
    let err = store::to_record_batches(&Payload::Optical(p), None).unwrap_err();
    assert!(err.to_string().contains("direction"), "{err}");
}

#[test]
fn selected_rows_only_are_converted() {
    let days = store::to_record_batches(&Payload::Optical(optical()), Some(&[0, 3])).unwrap();
    assert_eq!(days.len(), 1);
    assert_eq!(days[0].batch.num_rows(), 2);
    let err = store::to_record_batches(&Payload::Optical(optical()), Some(&[9])).unwrap_err();
    assert!(err.to_string().contains("row 9"), "{err}");
}

/// Splits a payload into parts of the given sizes (rows in order).
fn split(payload: &Payload, sizes: &[usize]) -> Vec<Payload> {
    let mut start = 0;
    sizes
        .iter()
        .map(|&n| {
            let rows: Vec<usize> = (start..start + n).collect();
            start += n;
            payload.select(&rows)
        })
        .collect()
}

#[test]
fn parts_give_the_same_batches_as_their_concatenation() {
    for payload in [
        Payload::Optical(optical()),
        Payload::LineMonitoring(line_monitoring()),
        Payload::Latency(latency()),
    ] {
        let n = payload.row_count().unwrap();
        let mut doubled = payload.clone();
        doubled.append(&payload);
        for sizes in [vec![n, n], vec![1, n - 1, 0, n], vec![1; 2 * n]] {
            let parts = split(&doubled, &sizes);
            let from_parts = store::parts_to_record_batches(&parts).unwrap();
            let whole = store::to_record_batches(&doubled, None).unwrap();
            assert_eq!(from_parts.len(), whole.len());
            for (a, b) in from_parts.iter().zip(&whole) {
                assert_eq!(a.day, b.day);
                assert_eq!(a.batch, b.batch, "{} parts of {sizes:?}", payload.table().name);
            }
        }
    }
}

#[test]
fn parts_keep_their_own_interval_and_missing_min_max_becomes_null() {
    let first = optical();
    let mut second = optical();
    second.interval_ns = 60_000_000_000;
    second.q_db.as_mut().unwrap().min.clear();
    second.q_db.as_mut().unwrap().max.clear();
    let days = store::parts_to_record_batches(&[Payload::Optical(first), Payload::Optical(second)]).unwrap();
    let day0 = &days[0].batch;
    // Day 0 holds rows 0, 1, 3 of each part: 6 rows.
    assert_eq!(day0.num_rows(), 6);
    let col = |name: &str| day0.column(day0.schema().index_of(name).unwrap()).clone();
    let intervals = col("interval_ns");
    let intervals = intervals
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap();
    let mut seen: Vec<i64> = intervals.values().to_vec();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen, [60_000_000_000, 900_000_000_000]);
    assert_eq!(
        col("q_db_min").null_count(),
        3,
        "the second part's rows have no min"
    );
    assert_eq!(col("q_db_avg").null_count(), 0);
    assert_eq!(col("pre_fec_ber_min").null_count(), 6, "neither part has min/max");
}

#[test]
fn parts_of_different_tables_or_cables_are_refused() {
    let mut other_cable = optical();
    other_cable.cable_id = "c2".into();
    for second in [
        Payload::LineMonitoring(line_monitoring()),
        Payload::Optical(other_cable),
    ] {
        let err = store::parts_to_record_batches(&[Payload::Optical(optical()), second]).unwrap_err();
        assert!(
            err.to_string().contains("part 1 is"),
            "the error names the part: {err}"
        );
    }
}
