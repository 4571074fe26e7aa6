use std::path::PathBuf;

use cablewatch_analyzer::{
    fusion::Class,
    load::Filter,
    run::{RunOptions, run},
};
use cablewatch_proto::context::Context;
use cablewatch_testdata::{
    events::{EventKind, FixedEvent, context_records, truth},
    generate::{Simulation, write_tables},
    scenario::Scenario,
};

/// Writes a scenario of the tiny plant under `dir` like `cablewatch-sim generate` (data/, context/,
/// truth.json) and returns the options to analyse it into `dir/out`.
pub(crate) fn write_tiny(s: &Scenario, seed: u64, dir: &std::path::Path) -> RunOptions {
    let sim = Simulation::new(s, seed).unwrap();
    write_tables(&sim, &dir.join("data")).unwrap();
    std::fs::create_dir_all(dir.join("context")).unwrap();
    Context::write_jsonl(
        &dir.join("context/records.jsonl"),
        &context_records(&s.topology, &sim.events),
    )
    .unwrap();
    let t = truth(&sim);
    std::fs::write(dir.join("truth.json"), serde_json::to_string_pretty(&t).unwrap()).unwrap();
    RunOptions {
        data: dir.join("data"),
        topology: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/topology-tiny.toml"),
        context: Some(dir.join("context")),
        out: dir.join("out"),
        filter: Filter::default(),
        resume: false,
        lookback_ns: cablewatch_analyzer::run::DEFAULT_LOOKBACK_NS,
        report: false,
        svg: false,
    }
}

/// Three days of the tiny plant with a 0.3 dB clip-on tap (fiber pair 2, B to A, span 3) at hour 30
/// and a catalogued earthquake at hour 50.
pub(crate) fn tap_and_earthquake() -> Scenario {
    let mut s = Scenario::load("tiny").unwrap();
    s.days = 3.0;
    let at =
        |h: i64| chrono::DateTime::<chrono::Utc>::from_timestamp_nanos(s.start_ns + h * 3_600_000_000_000);
    let fixed = |kind, hours, magnitude| FixedEvent {
        kind,
        cable: cablewatch_proto::CableId::try_new("tiny-1").unwrap(),
        start: at(hours),
        fiber_pair: Some(2),
        direction: Some("b_to_a".into()),
        span: Some(3),
        channel: None,
        magnitude: Some(magnitude),
        logged: None,
        bend: Some(false),
        duration_h: None,
        sop_peak_krad_s: None,
    };
    s.events.fixed = vec![
        fixed(EventKind::ClipOnTap, 30, 0.3),
        fixed(EventKind::Earthquake, 50, 6.5),
    ];
    s
}

/// Three days of the tiny plant with a 0.3 dB clip-on tap (fiber pair 2, B to A, span 3) and a
/// catalogued earthquake: the tap is found, localized and left unexplained; the earthquake is
/// explained.
#[test]
fn run_finds_and_localizes_a_tap_and_explains_an_earthquake() {
    let s = tap_and_earthquake();
    let dir = tempfile::tempdir().unwrap();
    let options = write_tiny(&s, 3, dir.path());
    let report = run(&options, |_| {}).unwrap();
    let suspicious: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.class.suspicious() && !f.explained)
        .collect();
    assert_eq!(suspicious.len(), 1, "{:#?}", report.findings);
    let tap = suspicious[0];
    assert_eq!(tap.class, Class::TapLike);
    assert_eq!(
        (tap.cable.as_str(), tap.fiber_pair, tap.direction.as_str()),
        ("tiny-1", 2, "b_to_a")
    );
    assert_eq!(tap.span, Some(3));
    let loss = tap.loss_db.unwrap();
    assert!((loss - 0.3).abs() < 0.05, "loss {loss}");
    assert!(
        tap.sop_peak_krad_s.is_some(),
        "the fitting burst is part of the finding"
    );
    // Every benign explanation checked and none supported; of the attacks, the tap holds, with
    // the loss step and the burst as its evidence.
    assert!(
        tap.explanations
            .iter()
            .filter(|h| !h.malicious)
            .all(|h| !h.supported),
        "{:#?}",
        tap.explanations
    );
    let attacks: Vec<_> = tap
        .explanations
        .iter()
        .filter(|h| h.malicious && h.supported)
        .collect();
    assert_eq!(attacks.len(), 1, "{attacks:#?}");
    assert!(attacks[0].hypothesis.starts_with("tap"), "{attacks:#?}");
    assert!(
        attacks[0].evidence_for.iter().any(|e| e.contains("span 3"))
            && attacks[0].evidence_for.iter().any(|e| e.contains("SOP burst")),
        "{attacks:#?}"
    );
    // Its figures from the stored files: Q, span view, SOP, latency. A fiber with no rows in the
    // window gets none (no empty plots), and a data directory without tables is named.
    let plots = dir.path().join("plots");
    let topology = cablewatch_proto::topology::Topology::from_toml_file(&options.topology).unwrap();
    let context = Context::load_dir(options.context.as_ref().unwrap()).unwrap();
    let sources = cablewatch_analyzer::figures::Sources {
        data: &options.data,
        topology: &topology,
        context: &context,
        svg: false,
    };
    let drawn = cablewatch_analyzer::figures::finding_figures(sources, tap, &plots).unwrap();
    let files: Vec<String> = drawn.iter().map(|d| d.file.clone()).collect();
    let expected: Vec<String> = ["q", "span", "sop", "latency"]
        .iter()
        .map(|k| format!("{}-{k}.png", tap.id))
        .collect();
    assert_eq!(files, expected);
    let mut elsewhere = tap.clone();
    elsewhere.fiber_pair = 99;
    elsewhere.id = "F9999".into();
    let none = cablewatch_analyzer::figures::finding_figures(sources, &elsewhere, &plots).unwrap();
    assert!(none.is_empty(), "{none:?}");
    assert!(!plots.join("F9999-q.png").exists());
    let empty = tempfile::tempdir().unwrap();
    let nowhere = cablewatch_analyzer::figures::Sources {
        data: empty.path(),
        ..sources
    };
    let drawn = cablewatch_analyzer::figures::finding_figures(nowhere, tap, &plots).unwrap();
    assert!(drawn.is_empty(), "no tables, no figures: {drawn:?}");
    let quake: Vec<_> = report
        .findings
        .iter()
        .filter(|f| {
            f.start_ns >= s.start_ns + 49 * 3_600_000_000_000
                && f.start_ns < s.start_ns + 51 * 3_600_000_000_000
        })
        .collect();
    assert!(!quake.is_empty());
    assert!(
        quake
            .iter()
            .all(|f| f.class == Class::Environmental && f.explained),
        "{quake:#?}"
    );
    // Outputs: JSON with every finding, Parquet read back by polars with one row per finding.
    let json: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(options.out.join("findings.json")).unwrap()).unwrap();
    assert_eq!(json.len(), report.findings.len());
    let path = options.out.join("findings.parquet");
    let df = crate::scan_file(&path).collect().unwrap();
    assert_eq!(df.height(), report.findings.len());
    // Same input, same findings.
    let again = run(&options, |_| {}).unwrap();
    assert_eq!(again.findings, report.findings);
}

/// A scheduled run that resumes where the last one stopped reports the same findings as one run
/// over everything, says which are new, and a resume with no new data adds nothing.
#[test]
fn resumed_runs_add_up_to_a_full_run() {
    let mut s = Scenario::load("tiny").unwrap();
    s.days = 3.0;
    let hour = 3_600_000_000_000;
    s.events.fixed = vec![FixedEvent {
        kind: EventKind::ClipOnTap,
        cable: cablewatch_proto::CableId::try_new("tiny-1").unwrap(),
        start: chrono::DateTime::<chrono::Utc>::from_timestamp_nanos(s.start_ns + 50 * hour),
        fiber_pair: Some(1),
        direction: Some("a_to_b".into()),
        span: Some(2),
        channel: None,
        magnitude: Some(0.3),
        logged: None,
        bend: Some(false),
        duration_h: None,
        sop_peak_krad_s: None,
    }];
    let dir = tempfile::tempdir().unwrap();
    let full = write_tiny(&s, 4, dir.path());
    let full_report = run(&full, |_| {}).unwrap();
    assert_eq!(full_report.unexplained_suspicious(), 1);

    // The first scheduled run saw the first 36 hours; the next resumes.
    let out = dir.path().join("scheduled");
    let first = RunOptions {
        out: out.clone(),
        filter: Filter {
            until_ns: Some(s.start_ns + 36 * hour),
            ..Filter::default()
        },
        ..full.clone()
    };
    let before = run(&first, |_| {}).unwrap();
    assert_eq!(before.unexplained_suspicious(), 0, "the tap comes later");
    let resume = RunOptions {
        out: out.clone(),
        resume: true,
        lookback_ns: 24 * hour,
        ..full.clone()
    };
    let resumed = run(&resume, |_| {}).unwrap();
    assert_eq!(resumed.resumed_from_ns, before.data_end_ns);
    assert_eq!(resumed.unexplained_suspicious(), 1, "the tap is new");
    let key = |f: &cablewatch_analyzer::fusion::Finding| {
        (
            f.class,
            f.cable.clone(),
            f.fiber_pair,
            f.direction.clone(),
            f.span,
            f.start_ns,
        )
    };
    let mut a: Vec<_> = full_report.findings.iter().map(key).collect();
    let mut b: Vec<_> = resumed.findings.iter().map(key).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    // Earlier findings keep their ids.
    for f in &before.findings {
        assert!(resumed.findings.iter().any(|g| g.id == f.id), "{} kept", f.id);
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(manifest["new_unexplained_suspicious"], 1);

    // Nothing new since: nothing to report.
    let again = run(&resume, |_| {}).unwrap();
    assert_eq!(again.new_findings().len(), 0);
    assert_eq!(again.unexplained_suspicious(), 0);
    assert_eq!(again.findings.len(), resumed.findings.len());
}

/// A scheduled job runs daily with `--resume`; the README promises the findings of one run over
/// everything. A month of the tiny plant with evidence that a cut splits: a faint tap whose loss
/// needs days of sweeps after a weak burst, a repair whose outage spans several runs, a reroute
/// over two days, an insertion, a trawler damaging the cable, station work and a repeater ageing
/// (its decline needs two weeks). Thirty daily runs end with what one run over the month finds.
#[test]
fn a_month_in_daily_runs_finds_what_one_run_over_it_finds() {
    let mut s = Scenario::load("tiny").unwrap();
    s.days = 30.0;
    let day = 24 * 3_600_000_000_000_i64;
    let at =
        |d: f64| chrono::DateTime::<chrono::Utc>::from_timestamp_nanos(s.start_ns + (d * day as f64) as i64);
    let event =
        |kind, d: f64, fp: Option<u32>, dir: Option<&str>, span: Option<u32>, magnitude: f64| FixedEvent {
            kind,
            cable: cablewatch_proto::CableId::try_new("tiny-1").unwrap(),
            start: at(d),
            fiber_pair: fp,
            direction: dir.map(str::to_owned),
            span,
            channel: None,
            magnitude: Some(magnitude),
            logged: Some(kind == EventKind::Repair),
            bend: Some(false),
            duration_h: None,
            sop_peak_krad_s: None,
        };
    s.events.fixed = vec![
        event(EventKind::ClipOnTap, 4.3, Some(1), Some("a_to_b"), Some(2), 0.3),
        event(EventKind::ClipOnTap, 8.6, Some(2), Some("b_to_a"), Some(3), 0.07),
        event(
            EventKind::AmplifierAgeing,
            2.0,
            Some(2),
            Some("a_to_b"),
            Some(4),
            0.01,
        ),
        event(EventKind::Repair, 12.2, None, None, Some(3), 0.25),
        event(EventKind::UnexplainedReroute, 18.9, Some(1), None, None, 2500.0),
        event(
            EventKind::ActiveInsertion,
            21.4,
            Some(2),
            Some("a_to_b"),
            Some(1),
            90.0,
        ),
        event(EventKind::VesselDamage, 24.1, None, None, Some(1), 0.2),
        event(EventKind::StationWork, 26.7, Some(1), None, None, -0.5),
    ];
    s.events.fixed[3].duration_h = Some(60.0);
    let dir = tempfile::tempdir().unwrap();
    let whole = write_tiny(&s, 21, dir.path());
    let once = run(&whole, |_| {}).unwrap();
    let daily_out = dir.path().join("daily");
    let mut daily = None;
    for d in 1..=30 {
        let options = RunOptions {
            out: daily_out.clone(),
            resume: true,
            filter: Filter {
                until_ns: Some(s.start_ns + d * day),
                ..Filter::default()
            },
            ..whole.clone()
        };
        daily = Some(run(&options, |_| {}).unwrap());
    }
    let daily = daily.unwrap();
    // Compared: every finding but those resting only on loss steps within a tenth of their test's
    // threshold (each run estimates the noise from the data it reads, so a step at the threshold
    // may pass in one and not the other); a repeater's ageing by where it is (each run reports the
    // first two-week window in which the decline clears its test).
    let marginal = |f: &&cablewatch_analyzer::fusion::Finding| {
        f.evidence.iter().all(|e| {
            e.kind == cablewatch_analyzer::detect::EvidenceKind::LossStep && e.sigmas < 1.1 * e.threshold
        })
    };
    let key = |f: &cablewatch_analyzer::fusion::Finding| {
        let ageing = f
            .evidence
            .iter()
            .any(|e| e.kind == cablewatch_analyzer::detect::EvidenceKind::Ageing);
        (
            f.class,
            f.explained,
            f.fiber_pair,
            f.direction.clone(),
            f.span,
            if ageing { 0 } else { f.start_ns },
            f.evidence.len(),
        )
    };
    let mut a: Vec<_> = once.findings.iter().filter(|f| !marginal(f)).map(key).collect();
    let mut b: Vec<_> = daily.findings.iter().filter(|f| !marginal(f)).map(key).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b, "one run (left) and daily runs (right) differ");
    let marginal_count = |r: &cablewatch_analyzer::run::RunReport| r.findings.iter().filter(marginal).count();
    assert!(
        marginal_count(&once) + marginal_count(&daily) <= 2,
        "more than two findings at the threshold"
    );
    // The attacks are among them, each once.
    for class in [Class::TapLike, Class::InsertionLike, Class::Reroute] {
        assert!(
            once.findings.iter().any(|f| f.class == class && !f.explained),
            "no {class:?} finding: {:#?}",
            once.findings
        );
    }
}

/// Bad input stops `run` with exit status 2 and a message naming the file or field: a corrupt
/// Parquet file, a column of the wrong type, a direction that is not one, an unknown cable.
#[test]
fn bad_input_is_named_and_exits_2() {
    use polars::prelude::*;
    let mut s = Scenario::load("tiny").unwrap();
    s.days = 1.0;
    let dir = tempfile::tempdir().unwrap();
    let options = write_tiny(&s, 2, dir.path());
    let bin = env!("CARGO_BIN_EXE_cablewatch-analyzer");
    let run_cli = |extra: &[&str]| {
        let out = std::process::Command::new(bin)
            .arg("run")
            .arg("--data")
            .arg(&options.data)
            .arg("--topology")
            .arg(&options.topology)
            .arg("--out")
            .arg(dir.path().join("out-cli"))
            .args(extra)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8(out.stderr).unwrap())
    };
    let (code, err) = run_cli(&["--cable", "nope-9"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("nope-9") && err.contains("topology"), "{err}");

    let part = |table: &str| {
        let dir = options.data.join(table).join("cable=tiny-1");
        let day = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
        let file = std::fs::read_dir(&day).unwrap().next().unwrap().unwrap().path();
        (day, file)
    };
    // A column stored as text where the contract says float.
    let (day, file) = part("latency");
    let df = crate::scan_file(&file)
        .with_column(col("delay_us").cast(DataType::String))
        .collect()
        .unwrap();
    crate::overwrite(&file, df);
    let (code, err) = run_cli(&[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("delay_us") && err.contains(&*day.to_string_lossy()),
        "{err}"
    );

    // A line-monitoring file of contract 1 (its `b_to_a` repeaters meant spans): refused by name.
    let (_, file) = part("line_monitoring");
    let old = crate::scan_file(&file).collect().unwrap();
    crate::overwrite_as_contract_1(&file, old.clone());
    let (code, err) = run_cli(&[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&*file.to_string_lossy())
            && err.contains("contract 1")
            && err.contains("cablewatch-sim"),
        "{err}"
    );
    crate::overwrite(&file, old);

    // A direction that is neither `a_to_b` nor `b_to_a` (line monitoring is read first).
    let (day, file) = part("line_monitoring");
    let df = crate::scan_file(&file)
        .with_column(
            when(col("repeater").eq(lit(2u32)))
                .then(lit("sideways"))
                .otherwise(col("direction"))
                .alias("direction"),
        )
        .collect()
        .unwrap();
    crate::overwrite(&file, df);
    let (code, err) = run_cli(&[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("direction") && err.contains("a_to_b") && err.contains(&*day.to_string_lossy()),
        "{err}"
    );
    std::fs::remove_dir_all(options.data.join("line_monitoring")).unwrap();

    // A file that is not Parquet at all.
    let (day, file) = part("optical_channel");
    std::fs::write(&file, b"this is not parquet").unwrap();
    std::fs::remove_dir_all(options.data.join("latency")).unwrap();
    let (code, err) = run_cli(&[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&*day.to_string_lossy()) && err.contains("Parquet"),
        "{err}"
    );
}
