//! From a generated scenario to findings to `eval`, with the quality goals asserted: a small fixed
//! scenario of the tiny plant where every attack is above the detectable floor and every benign event
//! is logged or has a benign signature.

use std::process::Command;

use cablewatch_analyzer::{
    eval::{self, EvalConfig},
    run::run,
};
use cablewatch_testdata::{
    events::{EventKind, FixedEvent},
    scenario::Scenario,
};

const HOUR: i64 = 3_600_000_000_000;

/// Writes the scenario like `cablewatch-sim generate` does and runs the analyzer on it; returns the
/// directory (data/, context/, truth.json, out/).
fn generate_and_run() -> tempfile::TempDir {
    let mut s = Scenario::load("tiny").unwrap();
    s.days = 6.0;
    let fixed = |kind, hours: i64, fp, dir: &str, span, magnitude, logged| FixedEvent {
        kind,
        cable: cablewatch_proto::CableId::try_new("tiny-1").unwrap(),
        start: chrono::DateTime::<chrono::Utc>::from_timestamp_nanos(s.start_ns + hours * HOUR),
        fiber_pair: fp,
        direction: (!dir.is_empty()).then(|| dir.to_owned()),
        span,
        channel: None,
        magnitude: Some(magnitude),
        logged,
        bend: Some(false),
        duration_h: None,
        sop_peak_krad_s: None,
    };
    s.events.fixed = vec![
        fixed(EventKind::ClipOnTap, 20, Some(1), "a_to_b", Some(2), 0.25, None),
        fixed(EventKind::ClipOnTap, 40, Some(2), "b_to_a", Some(4), 0.12, None),
        fixed(
            EventKind::ActiveInsertion,
            60,
            Some(1),
            "b_to_a",
            Some(3),
            40.0,
            None,
        ),
        fixed(EventKind::Maintenance, 80, Some(2), "", None, 0.3, Some(true)),
        fixed(EventKind::Earthquake, 100, None, "", None, 6.5, Some(true)),
        fixed(EventKind::ClockSkew, 120, None, "", None, 500.0, None),
    ];
    let dir = tempfile::tempdir().unwrap();
    let options = crate::run::write_tiny(&s, 11, dir.path());
    run(&options, |_| {}).unwrap();
    dir
}

#[test]
fn a_fixed_scenario_meets_the_quality_goals_and_eval_reports_them() {
    let dir = generate_and_run();
    let scored = eval::load(&dir.path().join("out"), &dir.path().join("truth.json")).unwrap();
    assert_eq!(scored.cables, 1, "run.json lists the one cable analysed");
    let e = eval::evaluate(&[scored], &EvalConfig::default());
    let goal = |name: &str| e.goals.iter().find(|g| g.name.contains(name)).unwrap();
    // Both taps are above the goal's floor (0.25 and 0.12 dB), found, unexplained and localized to
    // their span; the insertion is found as one; nothing benign looks like an attack.
    assert_eq!(goal(">= 0.1 dB").value, Some(1.0), "{}", eval::table(&e));
    assert_eq!(goal(">= 0.1 dB").cases, 2);
    assert_eq!(goal("right span").value, Some(1.0), "{}", eval::table(&e));
    assert_eq!(goal("right span").cases, 2);
    assert_eq!(goal("insertions").value, Some(1.0), "{}", eval::table(&e));
    assert_eq!(
        e.false_tap_like + e.false_insertion_like,
        0,
        "{}",
        eval::table(&e)
    );
    assert!(
        e.benign_found >= 3,
        "maintenance, earthquake and clock skew leave findings"
    );
    assert_eq!(goal("called malicious").value, Some(0.0), "{}", eval::table(&e));
    assert_eq!(e.benign_as_benign, e.benign_found, "{}", eval::table(&e));
    // Every goal with cases is met; the kinds this scenario lacks have none.
    assert!(
        e.goals.iter().all(|g| g.met != Some(false)),
        "{}",
        eval::table(&e)
    );
    assert_eq!(goal("splice-in").met, None);
    let kind = |k: EventKind| e.kinds.iter().find(|s| s.kind == k).unwrap();
    assert_eq!(
        kind(EventKind::ClockSkew).all.correct,
        1,
        "clock skew is equipment"
    );
    assert_eq!(kind(EventKind::Maintenance).all.correct, 1);
    // Conclusive within a sweep or two of the event (taps this size need no accumulation).
    let delay = kind(EventKind::ClipOnTap).delay_max_min.unwrap();
    assert!((0.0..=90.0).contains(&delay), "detection delay {delay} min");

    // The command line prints the same as a table and as JSON.
    let bin = env!("CARGO_BIN_EXE_cablewatch-analyzer");
    let args = |json: bool| {
        let mut c = Command::new(bin);
        c.arg("eval")
            .arg("--findings")
            .arg(dir.path().join("out"))
            .arg("--truth")
            .arg(dir.path().join("truth.json"));
        if json {
            c.arg("--json");
        }
        c.output().unwrap()
    };
    let table = args(false);
    assert!(table.status.success());
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(
        text.contains("quality goals:") && text.contains("clip_on_tap"),
        "{text}"
    );
    let json = args(true);
    assert!(json.status.success());
    let parsed: eval::Evaluation = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(parsed.goals, e.goals);
}

#[test]
fn eval_names_the_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("findings.json"), "[]").unwrap();
    std::fs::write(dir.path().join("truth.json"), "{\"scenario\": 1}").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cablewatch-analyzer"))
        .arg("eval")
        .arg("--findings")
        .arg(dir.path())
        .arg("--truth")
        .arg(dir.path().join("truth.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("truth.json") && err.contains("cablewatch-sim"),
        "{err}"
    );
}
