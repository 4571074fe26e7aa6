//! `cablewatch-analyzer eval`: the findings of one or more runs scored against the simulator's
//! ground truth (`truth.json`).
//!
//! ```text
//! findings.json + run.json (cables analysed)   truth.json (every injected event)
//!   --match: a finding matches an event when the cable, fiber pair and direction agree (an event's
//!     empty fiber pair or direction means all) and the finding's time range meets
//!     [event start - before, event end + after]-->
//!   --per event kind: recall (events with a matching finding of the class the kind should get),
//!     precision of that class, F1, the same per magnitude bin, detection delay-->
//!   --taps: span localization; benign events: share classified benign; tap-like findings that
//!     match no malicious event: false alarms per cable-month-->
//!   Evaluation (table or JSON), with the quality goals checked
//! ```
//!
//! Several runs (say, three seeds) are pooled: counts add up before the ratios are taken.
//! [`suite`] generates, analyses and pools a whole suite (`eval --suite heldout`).

pub mod suite;

use std::{collections::BTreeSet, path::Path};

use cablewatch_proto::time::parse_time;
use cablewatch_testdata::events::{Event, EventKind, Truth};
use serde::{Deserialize, Serialize};

use crate::{
    AnalyzerError, Result,
    fusion::{Class, Finding},
    run::{FINDINGS_FILE, MANIFEST_FILE, Manifest, read_json},
};

const MINUTE: i64 = 60_000_000_000;
const HOUR: i64 = 60 * MINUTE;
const MONTH_DAYS: f64 = 30.0;

/// How findings are matched to events.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EvalConfig {
    /// A finding may start this long before the event (sampling and segmentation slack), ns.
    pub before_ns: i64,
    /// ... and end this long after the event's end (a step shows at the next sweep or probe), ns.
    pub after_ns: i64,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            before_ns: HOUR,
            after_ns: 6 * HOUR,
        }
    }
}

/// One run to score: its findings, the truth of its scenario and how many cables it covered.
#[derive(Debug, Clone)]
pub struct Scored {
    /// The run's findings.
    pub findings: Vec<Finding>,
    /// The scenario's truth.
    pub truth: Truth,
    /// Cables the run analysed.
    pub cables: usize,
    /// Length of the scenario, days.
    pub days: f64,
    /// End of the scenario, ns.
    pub end_ns: i64,
    /// Line-monitoring sweep period of the scenario, ns, when its truth says (a loss step shows
    /// at the first sweep after it: findings may come that much later).
    pub sweep_ns: Option<i64>,
}

/// Reads `dir/findings.json` (or a findings.json path), `dir/run.json` when present, and `truth`.
pub fn load(findings: &Path, truth: &Path) -> Result<Scored> {
    let (dir, findings_path) = if findings.is_dir() {
        (findings.to_path_buf(), findings.join(FINDINGS_FILE))
    } else {
        (
            findings.parent().map(Path::to_path_buf).unwrap_or_default(),
            findings.to_path_buf(),
        )
    };
    let found: Vec<Finding> = read_json(
        &findings_path,
        "a findings.json written by `cablewatch-analyzer run`",
    )?;
    let truth_doc: Truth = read_json(truth, "a truth.json written by `cablewatch-sim generate`")?;
    let start = parse_time(&truth_doc.start).map_err(|e| AnalyzerError::input(truth, 0, e))?;
    let end = parse_time(&truth_doc.end).map_err(|e| AnalyzerError::input(truth, 0, e))?;
    if end <= start {
        return Err(AnalyzerError::input(
            truth,
            0,
            "scenario end is not after its start",
        ));
    }
    let sweep_ns = truth_doc
        .physics
        .map(|p| i64::from(p.cadence.line_monitoring_s) * 1_000_000_000);
    let manifest_path = dir.join(MANIFEST_FILE);
    let cables = if manifest_path.exists() {
        read_json::<Manifest>(&manifest_path, "a run manifest")?
            .cables
            .len()
    } else {
        // Without the run's manifest: every cable the truth or the findings mention.
        let mut seen: BTreeSet<&str> = found.iter().map(|f| f.cable.as_str()).collect();
        seen.extend(
            truth_doc
                .events
                .iter()
                .flat_map(|e| e.cables.iter().map(|c| c.as_str())),
        );
        seen.len()
    };
    Ok(Scored {
        findings: found,
        truth: truth_doc,
        cables: cables.max(1),
        days: (end - start) as f64 / (24.0 * HOUR as f64),
        end_ns: end,
        sweep_ns,
    })
}

/// The class a correct analysis gives `event`; `None` for events that leave no finding (data gaps
/// are reported as gaps, not findings).
pub fn expected_class(event: &Event) -> Option<Class> {
    Some(match event.kind {
        EventKind::ClipOnTap | EventKind::SpliceTap => Class::TapLike,
        EventKind::ActiveInsertion => Class::InsertionLike,
        EventKind::UnexplainedReroute => Class::Reroute,
        // A logged reroute is in the change calendar; an unlogged one looks like any other.
        EventKind::Reroute if event.logged => Class::Maintenance,
        EventKind::Reroute => Class::Reroute,
        EventKind::Maintenance => Class::Maintenance,
        EventKind::Repair => Class::Repair,
        EventKind::Earthquake | EventKind::VesselContact => Class::Environmental,
        EventKind::VesselDamage => Class::CableDamage,
        EventKind::TransponderFault
        | EventKind::AmplifierAgeing
        | EventKind::ClockSkew
        | EventKind::StationWork => Class::Equipment,
        EventKind::DataGap => return None,
    })
}

/// Whether finding `f` is what a correct analysis says about `event`: the expected class, or, for a
/// reroute, the explained end of it (the return to the usual path).
pub fn accepts(event: &Event, f: &Finding) -> bool {
    let expected = expected_class(event);
    expected == Some(f.class)
        || (matches!(event.kind, EventKind::Reroute | EventKind::UnexplainedReroute)
            && f.class == Class::Reroute
            && f.explained)
}

/// True for classes that say "benign".
pub fn benign_class(class: Class) -> bool {
    matches!(
        class,
        Class::Equipment | Class::Environmental | Class::Maintenance | Class::Repair | Class::CableDamage
    )
}

/// Bin edges for a magnitude unit (a bin is `[edge_i, edge_i+1)`).
fn bin_edges(unit: &str) -> &'static [f64] {
    match unit {
        "dB" => &[0.0, 0.05, 0.1, 0.2, 0.5],
        "us" => &[0.0, 20.0, 100.0, 1000.0],
        "krad/s" => &[0.0, 50.0, 100.0],
        "Mw" => &[0.0, 6.0, 7.0],
        "dB/day" => &[0.0, 0.005],
        "h" => &[0.0, 4.0],
        _ => &[0.0],
    }
}

fn bin_of(unit: &str, value: f64) -> usize {
    let edges = bin_edges(unit);
    edges.iter().rposition(|&e| value >= e).unwrap_or(0)
}

fn bin_label(unit: &str, i: usize) -> String {
    let edges = bin_edges(unit);
    match edges.get(i + 1) {
        Some(hi) => format!("{}-{} {unit}", edges[i], hi),
        None => format!(">= {} {unit}", edges[i]),
    }
}

/// The magnitude a finding measured in `unit`, when it has one.
fn measured(f: &Finding, unit: &str) -> Option<f64> {
    match unit {
        "dB" => f.loss_db,
        "us" => f.delay_us.map(f64::abs),
        "krad/s" => f.sop_peak_krad_s,
        _ => None,
    }
}

/// Whether finding `f` matches `event`, which may not show before `visible_ns` (the end of an
/// outage it happened in).
pub fn matches(f: &Finding, event: &Event, visible_ns: i64, config: &EvalConfig) -> bool {
    let (from, to) = placed(f);
    event.cables.iter().any(|c| c.as_str() == f.cable)
        && event.fiber_pair.is_none_or(|p| p == f.fiber_pair)
        && event.direction.as_deref().is_none_or(|d| d == f.direction)
        && from <= event.end_ns.max(visible_ns).saturating_add(config.after_ns)
        && to >= event.start_ns.saturating_sub(config.before_ns)
}

/// The times a finding says it is about: its own, and wherever its steps may have happened (a
/// faint step's sweeps place it only within hours; one first seen after a gap, anywhere in it).
fn placed(f: &Finding) -> (i64, i64) {
    f.evidence
        .iter()
        .filter(|e| e.placed_within_ns.is_some())
        .map(|e| e.placed_within())
        .fold((f.start_ns, f.end_ns), |(a, b), (c, d)| (a.min(c), b.max(d)))
}

/// When each event can first be seen: an event that ends inside another's loss of signal on the
/// same fiber (a tap made while the cable is cut for repair) shows only when the signal returns.
fn visible_from(events: &[Event]) -> Vec<i64> {
    events
        .iter()
        .map(|e| {
            events
                .iter()
                .filter(|o| {
                    o.id != e.id
                        && o.outage_ns > 0
                        && o.cables.iter().any(|c| e.cables.contains(c))
                        && (o.fiber_pair.is_none() || o.fiber_pair == e.fiber_pair)
                        && (o.direction.is_none() || o.direction == e.direction)
                        && o.start_ns <= e.end_ns
                        && o.start_ns.saturating_add(o.outage_ns) >= e.end_ns
                })
                .map(|o| o.start_ns.saturating_add(o.outage_ns))
                .fold(e.end_ns, i64::max)
        })
        .collect()
}

/// Whether an event leaves something behind once it is over (a loss, a delay, a decline), so that
/// it shows when a loss of signal around it ends.
fn leaves_a_trace(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::ClipOnTap
            | EventKind::SpliceTap
            | EventKind::ActiveInsertion
            | EventKind::Repair
            | EventKind::AmplifierAgeing
            | EventKind::VesselDamage
            | EventKind::StationWork
    )
}

/// Whether `e` began and ended inside another event's loss of signal on its fiber.
fn within_outage(events: &[Event], e: &Event) -> bool {
    events.iter().any(|o| {
        o.id != e.id
            && o.outage_ns > 0
            && o.cables.iter().any(|c| e.cables.contains(c))
            && (o.fiber_pair.is_none() || o.fiber_pair == e.fiber_pair)
            && (o.direction.is_none() || o.direction == e.direction)
            && o.start_ns <= e.start_ns
            && o.start_ns.saturating_add(o.outage_ns) >= e.end_ns
    })
}

/// Counts for one event kind, or one magnitude bin of it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Label: the kind, or the bin.
    pub label: String,
    /// Events.
    pub events: usize,
    /// Events with any matching finding.
    pub found: usize,
    /// Events with a matching finding of the expected class.
    pub correct: usize,
    /// Findings of the expected class matched to these events.
    pub true_findings: usize,
    /// Findings of the expected class that match no event expecting that class (for a bin: those
    /// whose own measured magnitude falls in it).
    pub false_findings: usize,
    /// correct / events.
    pub recall: Option<f64>,
    /// true / (true + false) findings.
    pub precision: Option<f64>,
    /// Harmonic mean of the two.
    pub f1: Option<f64>,
}

impl Counts {
    fn finish(&mut self) {
        self.recall = ratio(self.correct, self.events);
        self.precision = ratio(self.true_findings, self.true_findings + self.false_findings);
        self.f1 = match (self.precision, self.recall) {
            (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
            (Some(_), Some(_)) => Some(0.0),
            _ => None,
        };
    }
}

fn ratio(a: usize, b: usize) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// Scores for one event kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KindScore {
    /// The kind.
    pub kind: EventKind,
    /// The class a correct analysis gives it (`None`: no finding expected).
    pub expected: Option<Class>,
    /// Unit of the magnitudes.
    pub unit: String,
    /// Totals for the kind.
    pub all: Counts,
    /// Per magnitude bin.
    pub bins: Vec<Counts>,
    /// Detection delay of correctly found events (first matching finding minus event start), minutes:
    /// median.
    pub delay_median_min: Option<f64>,
    /// ... 90th percentile.
    pub delay_p90_min: Option<f64>,
    /// ... largest.
    pub delay_max_min: Option<f64>,
}

/// One quality goal of the analyzer issue, checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Goal {
    /// What is measured.
    pub name: String,
    /// `>=` or `<=`.
    pub op: String,
    /// The target.
    pub target: f64,
    /// The measured value (`None`: nothing to measure in these scenarios).
    pub value: Option<f64>,
    /// How many cases the value rests on.
    pub cases: usize,
    /// `Some(true)` when met.
    pub met: Option<bool>,
}

impl Goal {
    fn new(name: &str, op: &str, target: f64, value: Option<f64>, cases: usize) -> Self {
        let met = value.map(|v| if op == ">=" { v >= target } else { v <= target });
        Self {
            name: name.to_owned(),
            op: op.to_owned(),
            target,
            value,
            cases,
            met,
        }
    }
}

/// One event with how it was (not) found, for the analyst reading the evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventOutcome {
    /// Scenario and seed.
    pub run: String,
    /// Event id.
    pub id: String,
    /// Kind.
    pub kind: EventKind,
    /// Size and unit.
    pub magnitude: String,
    /// Classes of the matching findings (with ids).
    pub findings: Vec<String>,
    /// Found with the expected class.
    pub correct: bool,
    /// A benign event one of whose findings was suspicious and unexplained.
    #[serde(default)]
    pub called_malicious: bool,
}

/// Findings in one confidence bin, and how many were right.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    /// Lower edge (inclusive).
    pub lo: f64,
    /// Upper edge (exclusive; the last bin includes 1).
    pub hi: f64,
    /// Findings.
    pub findings: usize,
    /// ... matching an event that expects what the finding says.
    pub right: usize,
    /// Unexplained suspicious findings (what an analyst is paged for).
    pub suspicious: usize,
    /// ... that match an attack.
    pub attacks: usize,
}

const CALIBRATION_EDGES: [f64; 5] = [0.0, 0.5, 0.7, 0.9, 1.0];

/// The evaluation of one or more runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Runs scored (`scenario/seed`).
    pub runs: Vec<String>,
    /// Matching tolerances.
    pub before_min: f64,
    /// After the event's end.
    pub after_min: f64,
    /// Cable-months covered.
    pub cable_months: f64,
    /// Findings scored.
    pub findings: usize,
    /// Per event kind that occurred.
    pub kinds: Vec<KindScore>,
    /// Taps found as tap-like with a span.
    pub taps_localized: usize,
    /// ... of which in the right span.
    pub taps_right_span: usize,
    /// ... within one span.
    pub taps_within_one_span: usize,
    /// Benign events that left findings.
    pub benign_found: usize,
    /// ... all of whose findings have a benign class or are explained.
    pub benign_as_benign: usize,
    /// Unlogged planned reroutes: indistinguishable from unexplained ones in telemetry, so flagged
    /// for review and left out of the benign share.
    pub unlogged_reroutes: usize,
    /// Tap-like findings matching no malicious event.
    pub false_tap_like: usize,
    /// Insertion-like findings matching no malicious event.
    #[serde(default)]
    pub false_insertion_like: usize,
    /// Benign events that left an unexplained suspicious finding (tap-like, insertion-like,
    /// reroute): what an analyst would be paged for in vain.
    #[serde(default)]
    pub benign_called_malicious: usize,
    /// ... per cable-month.
    pub false_tap_like_per_cable_month: f64,
    /// Findings matching no event at all, per class.
    pub unmatched: Vec<(Class, usize)>,
    /// Events left out: made during a loss of signal that lasts to the end of the data, or come and
    /// gone during one without a trace.
    pub hidden: Vec<String>,
    /// How often findings of each confidence were right.
    pub calibration: Vec<CalibrationBin>,
    /// The issue's quality goals.
    pub goals: Vec<Goal>,
    /// Every malicious event and every benign event misclassified or missed.
    pub outcomes: Vec<EventOutcome>,
    /// Each false tap-like or insertion-like finding (`run id class cable/fiber/direction span
    /// start`): what to look at first when the false-alarm goal is missed.
    #[serde(default)]
    pub false_alarms: Vec<String>,
}

fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    Some(sorted[i])
}

/// Scores `runs` pooled.
pub fn evaluate(runs: &[Scored], config: &EvalConfig) -> Evaluation {
    let mut kinds: Vec<KindScore> = Vec::new();
    let mut delays: Vec<Vec<f64>> = Vec::new();
    let kind_slot = |kinds: &mut Vec<KindScore>, delays: &mut Vec<Vec<f64>>, e: &Event| -> usize {
        if let Some(i) = kinds
            .iter()
            .position(|k| k.kind == e.kind && k.expected == expected_class(e))
        {
            return i;
        }
        let n = bin_edges(&e.unit).len();
        kinds.push(KindScore {
            kind: e.kind,
            expected: expected_class(e),
            unit: e.unit.clone(),
            all: Counts {
                label: kind_label(e),
                ..Counts::default()
            },
            bins: (0..n)
                .map(|i| Counts {
                    label: bin_label(&e.unit, i),
                    ..Counts::default()
                })
                .collect(),
            delay_median_min: None,
            delay_p90_min: None,
            delay_max_min: None,
        });
        delays.push(Vec::new());
        kinds.len() - 1
    };
    let mut eval = Evaluation {
        runs: Vec::new(),
        before_min: config.before_ns as f64 / MINUTE as f64,
        after_min: config.after_ns as f64 / MINUTE as f64,
        cable_months: 0.0,
        findings: 0,
        kinds: Vec::new(),
        taps_localized: 0,
        taps_right_span: 0,
        taps_within_one_span: 0,
        benign_found: 0,
        benign_as_benign: 0,
        unlogged_reroutes: 0,
        false_tap_like: 0,
        false_insertion_like: 0,
        benign_called_malicious: 0,
        false_tap_like_per_cable_month: 0.0,
        unmatched: Vec::new(),
        hidden: Vec::new(),
        calibration: CALIBRATION_EDGES
            .windows(2)
            .map(|w| CalibrationBin {
                lo: w[0],
                hi: w[1],
                findings: 0,
                right: 0,
                suspicious: 0,
                attacks: 0,
            })
            .collect(),
        goals: Vec::new(),
        outcomes: Vec::new(),
        false_alarms: Vec::new(),
    };
    let mut unmatched = std::collections::BTreeMap::<Class, usize>::new();
    // Every kind of every run gets its slot first, so false findings of any run count against it.
    for e in runs.iter().flat_map(|r| &r.truth.events) {
        kind_slot(&mut kinds, &mut delays, e);
    }
    // Goal tallies: (found, events).
    let (mut big_taps, mut faint_taps, mut splice_taps, mut insertions, mut reroutes) =
        ((0, 0), (0, 0), (0, 0), (0, 0), (0, 0));
    for run in runs {
        // A step shows at the sweep after it, and a faint one is placed within a sweep or two:
        // with six-hourly sweeps a finding may come twelve hours after the event.
        let config = &EvalConfig {
            after_ns: config.after_ns.max(2 * run.sweep_ns.unwrap_or(0)),
            ..*config
        };
        let label = format!("{}/{}", run.truth.scenario, run.truth.seed);
        eval.runs.push(label.clone());
        eval.cable_months += run.cables as f64 * run.days / MONTH_DAYS;
        eval.findings += run.findings.len();
        let events = &run.truth.events;
        // matched[f] = events finding f matches. A finding that matches an event expecting its class
        // belongs to that event only (an earthquake's burst is not the ageing that runs for weeks on
        // the same fiber); failing that, a suspicious one belongs to the attacks it matches.
        let visible = visible_from(events);
        let matched: Vec<Vec<usize>> = run
            .findings
            .iter()
            .map(|f| {
                let all: Vec<usize> = (0..events.len())
                    .filter(|&i| matches(f, &events[i], visible[i], config))
                    .collect();
                let only = |keep: &dyn Fn(&Event) -> bool| -> Vec<usize> {
                    all.iter().copied().filter(|&i| keep(&events[i])).collect()
                };
                let expecting = only(&|e| accepts(e, f));
                let attacks = only(&|e| e.malicious);
                if !expecting.is_empty() {
                    expecting
                } else if !benign_class(f.class) && !attacks.is_empty() {
                    attacks
                } else {
                    all
                }
            })
            .collect();
        for (f, m) in run.findings.iter().zip(&matched) {
            let last = eval.calibration.len() - 1;
            let bin = eval
                .calibration
                .iter()
                .position(|b| f.confidence < b.hi)
                .unwrap_or(last);
            let b = &mut eval.calibration[bin];
            b.findings += 1;
            b.right += usize::from(m.iter().any(|&i| accepts(&events[i], f)));
            if f.class.suspicious() && !f.explained {
                b.suspicious += 1;
                b.attacks += usize::from(m.iter().any(|&i| events[i].malicious));
            }
            if m.is_empty() {
                *unmatched.entry(f.class).or_default() += 1;
            }
            if !m.iter().any(|&i| events[i].malicious) {
                match f.class {
                    Class::TapLike => eval.false_tap_like += 1,
                    Class::InsertionLike => eval.false_insertion_like += 1,
                    _ => continue,
                }
                let near: Vec<&str> = m.iter().map(|&i| events[i].id.as_str()).collect();
                eval.false_alarms.push(format!(
                    "{label} {} {} {}/{}/{}{} {}{}",
                    f.id,
                    f.class.name(),
                    f.cable,
                    f.fiber_pair,
                    f.direction,
                    f.span.map(|s| format!(" span {s}")).unwrap_or_default(),
                    f.start,
                    if near.is_empty() {
                        String::new()
                    } else {
                        format!(" (matches benign {})", near.join(", "))
                    }
                ));
            }
        }
        for (i, e) in events.iter().enumerate() {
            let inside_outage = visible[i] > e.end_ns;
            if inside_outage
                && (visible[i] >= run.end_ns || (!leaves_a_trace(e.kind) && within_outage(events, e)))
            {
                // Made during a loss of signal that lasts to the end of the data, or come and gone
                // while the cable was cut (a trawler passing a cable under repair): nothing to see.
                eval.hidden.push(format!("{label} {} {:?}", e.id, e.kind));
                continue;
            }
            let slot = kind_slot(&mut kinds, &mut delays, e);
            let bin = bin_of(&e.unit, e.magnitude);
            let of_event: Vec<&Finding> = run
                .findings
                .iter()
                .zip(&matched)
                .filter(|(_, m)| m.contains(&i))
                .map(|(f, _)| f)
                .collect();
            let expected = expected_class(e);
            let accepted: Vec<&Finding> = of_event.iter().copied().filter(|f| accepts(e, f)).collect();
            let correct: Vec<&Finding> = accepted
                .iter()
                .copied()
                .filter(|f| Some(f.class) == expected)
                .collect();
            let k = &mut kinds[slot];
            for c in [&mut k.all, &mut k.bins[bin]] {
                c.events += 1;
                c.found += usize::from(!of_event.is_empty());
                c.correct += usize::from(!correct.is_empty());
                c.true_findings += accepted.len();
            }
            // When the analysis could first have said so: the finding's conclusive time.
            let first = correct.iter().map(|f| detected(f)).min();
            if let Some(first) = first {
                delays[slot].push((first - e.start_ns) as f64 / MINUTE as f64);
            }
            let tally = |t: &mut (usize, usize), hit: bool| {
                t.0 += usize::from(hit);
                t.1 += 1;
            };
            let classed = !correct.is_empty() && correct.iter().any(|f| !f.explained);
            match e.kind {
                EventKind::ClipOnTap if e.magnitude >= 0.1 => tally(&mut big_taps, classed),
                EventKind::ClipOnTap if e.magnitude >= 0.05 => tally(
                    &mut faint_taps,
                    classed && first.is_some_and(|t| t - e.start_ns <= FAINT_WITHIN_NS),
                ),
                EventKind::SpliceTap => tally(&mut splice_taps, classed),
                EventKind::ActiveInsertion => tally(&mut insertions, classed),
                EventKind::UnexplainedReroute => tally(&mut reroutes, classed),
                _ => {}
            }
            if let (Some(span), Some(best)) = (
                e.span
                    .filter(|_| matches!(e.kind, EventKind::ClipOnTap | EventKind::SpliceTap)),
                correct
                    .iter()
                    .filter(|f| f.span.is_some())
                    .max_by(|a, b| a.loss_db.unwrap_or(0.0).total_cmp(&b.loss_db.unwrap_or(0.0))),
            ) {
                let got = best.span.unwrap_or(0);
                eval.taps_localized += 1;
                eval.taps_right_span += usize::from(got == span);
                eval.taps_within_one_span += usize::from(got.abs_diff(span) <= 1);
            }
            let unlogged_reroute = e.kind == EventKind::Reroute && !e.logged;
            let mut called_malicious = false;
            let mut as_benign =
                !of_event.is_empty() && of_event.iter().all(|f| benign_class(f.class) || f.explained);
            if !e.malicious && expected.is_some() && !of_event.is_empty() {
                if unlogged_reroute && !as_benign && of_event.iter().all(|f| f.class == Class::Reroute) {
                    eval.unlogged_reroutes += 1;
                    as_benign = true;
                } else {
                    eval.benign_found += 1;
                    eval.benign_as_benign += usize::from(as_benign);
                    called_malicious = of_event.iter().any(|f| f.class.suspicious() && !f.explained);
                    eval.benign_called_malicious += usize::from(called_malicious);
                }
            }
            if e.malicious || (expected.is_some() && (!as_benign || correct.is_empty())) {
                eval.outcomes.push(EventOutcome {
                    run: label.clone(),
                    id: e.id.clone(),
                    kind: e.kind,
                    magnitude: format!("{:.3} {}", e.magnitude, e.unit),
                    findings: of_event
                        .iter()
                        .map(|f| {
                            format!(
                                "{} {}{}{}",
                                f.id,
                                f.class.name(),
                                if f.explained { " (explained)" } else { "" },
                                f.span.map(|s| format!(" span {s}")).unwrap_or_default()
                            )
                        })
                        .collect(),
                    correct: !correct.is_empty(),
                    called_malicious,
                });
            }
        }
        // False findings per expected class: those matching no event that expects their class.
        for (f, m) in run.findings.iter().zip(&matched) {
            if m.iter().any(|&i| accepts(&events[i], f)) {
                continue;
            }
            for k in kinds.iter_mut().filter(|k| k.expected == Some(f.class)) {
                k.all.false_findings += 1;
                if let Some(v) = measured(f, &k.unit) {
                    k.bins[bin_of(&k.unit, v)].false_findings += 1;
                }
            }
        }
    }
    for (k, d) in kinds.iter_mut().zip(delays.iter_mut()) {
        k.all.finish();
        k.bins.iter_mut().for_each(Counts::finish);
        k.bins.retain(|b| b.events > 0 || b.false_findings > 0);
        d.sort_by(f64::total_cmp);
        k.delay_median_min = percentile(d, 0.5);
        k.delay_p90_min = percentile(d, 0.9);
        k.delay_max_min = d.last().copied();
    }
    kinds.sort_by_key(|k| (EventKind::ALL.iter().position(|&x| x == k.kind), k.expected));
    eval.kinds = kinds;
    eval.unmatched = unmatched.into_iter().collect();
    eval.false_tap_like_per_cable_month = if eval.cable_months > 0.0 {
        eval.false_tap_like as f64 / eval.cable_months
    } else {
        0.0
    };
    let suspicious_false = eval.false_tap_like + eval.false_insertion_like;
    let r = |(a, b): (usize, usize)| ratio(a, b);
    eval.goals = vec![
        Goal::new(
            "recall: clip-on taps >= 0.1 dB",
            ">=",
            0.9,
            r(big_taps),
            big_taps.1,
        ),
        Goal::new(
            "recall: clip-on taps 0.05-0.1 dB within 3 days",
            ">=",
            0.7,
            r(faint_taps),
            faint_taps.1,
        ),
        Goal::new("recall: splice-in taps", ">=", 1.0, r(splice_taps), splice_taps.1),
        Goal::new(
            "recall: active insertions",
            ">=",
            1.0,
            r(insertions),
            insertions.1,
        ),
        Goal::new("recall: unexplained reroutes", ">=", 1.0, r(reroutes), reroutes.1),
        Goal::new(
            "taps localized to the right span",
            ">=",
            0.95,
            ratio(eval.taps_right_span, eval.taps_localized),
            eval.taps_localized,
        ),
        Goal::new(
            "false tap-like or insertion-like per cable-month",
            "<=",
            0.5,
            (eval.cable_months > 0.0).then(|| suspicious_false as f64 / eval.cable_months),
            suspicious_false,
        ),
        Goal::new(
            "benign events called malicious",
            "<=",
            0.05,
            ratio(eval.benign_called_malicious, eval.benign_found),
            eval.benign_found,
        ),
    ];
    eval
}

/// How long after its start a faint tap must be reported to count (the goal: three days of
/// six-hourly sweeps).
const FAINT_WITHIN_NS: i64 = 3 * 24 * HOUR;

/// When a finding could first have been reported (files of older versions lack it: its end).
fn detected(f: &Finding) -> i64 {
    if f.detected_ns > 0 {
        f.detected_ns
    } else {
        f.end_ns
    }
}

fn kind_label(e: &Event) -> String {
    let name = serde_json::to_value(e.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    match e.kind {
        EventKind::Reroute if e.logged => format!("{name} (logged)"),
        EventKind::Reroute => format!("{name} (unlogged)"),
        _ => name,
    }
}

/// The evaluation as a table for a terminal.
pub fn table(eval: &Evaluation) -> String {
    use std::fmt::Write as _;
    let opt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.2}"));
    let mut s = String::new();
    let _ = writeln!(
        s,
        "runs: {}; {} findings; {:.1} cable-months; a finding matches an event from {:.0} min before it to {:.0} min (or two line-monitoring sweeps) after its end",
        eval.runs.join(", "),
        eval.findings,
        eval.cable_months,
        eval.before_min,
        eval.after_min
    );
    let _ = writeln!(
        s,
        "\n{:<32} {:>6} {:>6} {:>7} {:>6} {:>6} {:>6}  {:<15} {:>22}",
        "event kind / magnitude",
        "events",
        "found",
        "correct",
        "recall",
        "prec",
        "F1",
        "expected class",
        "delay med/p90/max h"
    );
    for k in &eval.kinds {
        let delay = match (k.delay_median_min, k.delay_p90_min, k.delay_max_min) {
            (Some(m), Some(p), Some(x)) => format!("{:.1} / {:.1} / {:.1}", m / 60.0, p / 60.0, x / 60.0),
            _ => "-".into(),
        };
        let row = |s: &mut String, c: &Counts, label: &str, class: &str, delay: &str| {
            let _ = writeln!(
                s,
                "{:<32} {:>6} {:>6} {:>7} {:>6} {:>6} {:>6}  {:<15} {:>22}",
                label,
                c.events,
                c.found,
                c.correct,
                opt(c.recall),
                opt(c.precision),
                opt(c.f1),
                class,
                delay
            );
        };
        let class = k.expected.map_or("(none)", Class::name);
        row(&mut s, &k.all, &k.all.label, class, &delay);
        if k.bins.len() > 1 {
            for b in &k.bins {
                row(&mut s, b, &format!("  {}", b.label), "", "");
            }
        }
    }
    let _ = writeln!(
        s,
        "\ntaps localized: {} of {} found as tap-like with a span in the right span ({} within one span)",
        eval.taps_right_span, eval.taps_localized, eval.taps_within_one_span
    );
    let _ = writeln!(
        s,
        "benign events: {} of {} that left findings classified benign, {} called malicious ({} unlogged planned reroutes flagged as reroutes, left out)",
        eval.benign_as_benign, eval.benign_found, eval.benign_called_malicious, eval.unlogged_reroutes
    );
    let _ = writeln!(
        s,
        "false tap-like findings: {} ({:.2} per cable-month); false insertion-like: {}",
        eval.false_tap_like, eval.false_tap_like_per_cable_month, eval.false_insertion_like
    );
    if !eval.unmatched.is_empty() {
        let parts: Vec<String> = eval
            .unmatched
            .iter()
            .map(|(c, n)| format!("{} {n}", c.name()))
            .collect();
        let _ = writeln!(s, "findings matching no event: {}", parts.join(", "));
    }
    if !eval.hidden.is_empty() {
        let _ = writeln!(
            s,
            "left out (made during a loss of signal lasting to the end of the data, or come and gone inside one): {}",
            eval.hidden.join(", ")
        );
    }
    let _ = writeln!(
        s,
        "\nconfidence    findings  right    unexplained suspicious  of which attacks"
    );
    for b in &eval.calibration {
        let share = |a: usize, n: usize| ratio(a, n).map_or("-".to_owned(), |r| format!("{r:.2}"));
        let _ = writeln!(
            s,
            "{:.1}-{:.1}     {:>8}  {:>5}    {:>22}  {:>16}",
            b.lo,
            b.hi,
            b.findings,
            share(b.right, b.findings),
            b.suspicious,
            share(b.attacks, b.suspicious)
        );
    }
    let _ = writeln!(s, "\nquality goals:");
    for g in &eval.goals {
        let verdict = match g.met {
            Some(true) => "met",
            Some(false) => "NOT MET",
            None => "n/a (no cases)",
        };
        let _ = writeln!(
            s,
            "  {:<52} {:>6} {} {:<5} over {:>3} cases  {}",
            g.name,
            opt(g.value),
            g.op,
            g.target,
            g.cases,
            verdict
        );
    }
    if !eval.false_alarms.is_empty() {
        let _ = writeln!(s, "\nfalse tap-like or insertion-like findings:");
        for f in &eval.false_alarms {
            let _ = writeln!(s, "  {f}");
        }
    }
    let outcome_line = |s: &mut String, o: &EventOutcome| {
        let _ = writeln!(
            s,
            "  {} {} {:?} {}: {}",
            o.run,
            o.id,
            o.kind,
            o.magnitude,
            if o.findings.is_empty() {
                "no finding".to_owned()
            } else {
                o.findings.join(", ")
            }
        );
    };
    let malicious: Vec<&EventOutcome> = eval.outcomes.iter().filter(|o| o.called_malicious).collect();
    if !malicious.is_empty() {
        let _ = writeln!(s, "\nbenign events called malicious:");
        for o in malicious {
            outcome_line(&mut s, o);
        }
    }
    let missed: Vec<&EventOutcome> = eval.outcomes.iter().filter(|o| !o.correct).collect();
    if !missed.is_empty() {
        let _ = writeln!(s, "\nevents missed or misclassified:");
        for o in missed {
            outcome_line(&mut s, o);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, kind: EventKind, start_h: i64, end_h: i64, fp: Option<u32>, magnitude: f64) -> Event {
        Event {
            id: id.into(),
            kind,
            malicious: kind.malicious(),
            logged: false,
            start: String::new(),
            end: String::new(),
            start_ns: start_h * HOUR,
            end_ns: end_h * HOUR,
            cables: vec![cablewatch_proto::CableId::try_new("c").unwrap()],
            fiber_pair: fp,
            direction: None,
            span: Some(2),
            km: None,
            channel: None,
            station: None,
            magnitude,
            unit: "dB".into(),
            wavelength_slope: 0.0,
            delay_us: 0.0,
            outage_ns: if kind == EventKind::Repair {
                (end_h - start_h) * HOUR
            } else {
                0
            },
            sop_peak_krad_s: 50.0,
            loss_db: 0.0,
            reroute_us: 0.0,
        }
    }

    /// One cable over 30 days, scored with these findings and truth.
    fn month(findings: Vec<Finding>, truth: Truth) -> Scored {
        Scored {
            findings,
            truth,
            cables: 1,
            days: 30.0,
            end_ns: 30 * 24 * HOUR,
            sweep_ns: None,
        }
    }

    fn finding(id: &str, class: Class, at_h: i64, span: Option<u32>) -> Finding {
        Finding {
            id: id.into(),
            class,
            signature_class: class,
            explained: benign_class(class),
            cable: "c".into(),
            fiber_pair: 1,
            direction: "a_to_b".into(),
            span,
            km_from: None,
            km_to: None,
            start: String::new(),
            end: String::new(),
            start_ns: at_h * HOUR,
            end_ns: at_h * HOUR,
            detected_ns: at_h * HOUR,
            loss_db: Some(0.3),
            delay_us: None,
            sop_peak_krad_s: None,
            confidence: 0.9,
            summary: String::new(),
            evidence: vec![],
            explanations: vec![],
            incident: String::new(),
        }
    }

    #[test]
    fn a_tap_made_during_a_repair_is_matched_when_the_signal_returns() {
        let truth = Truth {
            scenario: "t".into(),
            seed: 1,
            start: "2026-01-01T00:00:00Z".into(),
            end: "2026-01-31T00:00:00Z".into(),
            physics: None,
            events: vec![
                event("E1", EventKind::Repair, 10, 100, None, 0.3),
                event("E2", EventKind::ClipOnTap, 50, 50, Some(1), 0.3),
                event("E3", EventKind::ClipOnTap, 200, 200, Some(1), 0.15),
                // Two faint taps: one reported within three days of it, one only after four.
                event("E4", EventKind::ClipOnTap, 500, 500, Some(1), 0.07),
                event("E5", EventKind::ClipOnTap, 600, 600, Some(1), 0.07),
            ],
        };
        let faint = |id: &str, at_h: i64, detected_h: i64| {
            let mut f = finding(id, Class::TapLike, at_h, Some(2));
            f.detected_ns = detected_h * HOUR;
            f
        };
        let run = month(
            vec![
                finding("F1", Class::Repair, 100, Some(5)),
                finding("F2", Class::TapLike, 100, Some(2)),
                // A tap-like finding nowhere near an attack is a false alarm.
                finding("F3", Class::TapLike, 400, Some(3)),
                faint("F4", 500, 560),
                faint("F5", 600, 700),
            ],
            truth,
        );
        let e = evaluate(&[run], &EvalConfig::default());
        let taps = e.kinds.iter().find(|k| k.kind == EventKind::ClipOnTap).unwrap();
        assert_eq!((taps.all.events, taps.all.correct), (4, 3));
        assert_eq!(taps.all.true_findings, 3);
        assert_eq!(taps.all.false_findings, 1);
        assert_eq!(taps.all.precision, Some(0.75));
        assert_eq!((e.taps_localized, e.taps_right_span), (3, 3));
        // Delay: from the event to when the finding was conclusive.
        assert_eq!(taps.delay_max_min, Some(100.0 * 60.0));
        assert_eq!(e.false_tap_like, 1);
        assert_eq!(e.false_alarms.len(), 1);
        assert!(
            e.false_alarms[0].contains(" F3 tap_like "),
            "{:?}",
            e.false_alarms
        );
        assert!(table(&e).contains("false tap-like or insertion-like findings:\n  "));
        assert!((e.false_tap_like_per_cable_month - 1.0).abs() < 1e-9);
        let repair = e.kinds.iter().find(|k| k.kind == EventKind::Repair).unwrap();
        assert_eq!(repair.all.correct, 1);
        assert_eq!(
            (e.benign_found, e.benign_as_benign),
            (1, 1),
            "the tap-like finding is the tap's"
        );
        assert_eq!(e.benign_called_malicious, 0);
        let goal = |name: &str| e.goals.iter().find(|g| g.name.contains(name)).unwrap();
        let big = goal(">= 0.1 dB");
        assert_eq!((big.value, big.cases, big.met), (Some(0.5), 2, Some(false)));
        let faint = goal("within 3 days");
        assert_eq!((faint.value, faint.cases), (Some(0.5), 2));
        let false_alarms = goal("false tap-like");
        assert_eq!((false_alarms.cases, false_alarms.met), (1, Some(false)));
    }

    #[test]
    fn a_step_matches_an_event_anywhere_its_sweeps_place_it() {
        let truth = Truth {
            scenario: "t".into(),
            seed: 1,
            start: "2026-01-01T00:00:00Z".into(),
            end: "2026-01-31T00:00:00Z".into(),
            physics: None,
            events: vec![event("E1", EventKind::ClipOnTap, 100, 100, Some(1), 0.06)],
        };
        // A faint step placed a day late, its sweeps placing it anywhere from 90 h to 130 h.
        let step = |within: Option<(i64, i64)>| {
            let mut f = finding("F1", Class::TapLike, 124, Some(2));
            f.evidence.push(crate::detect::Evidence {
                kind: crate::detect::EvidenceKind::LossStep,
                cable: "c".into(),
                direction: "a_to_b".into(),
                fiber_pair: 1,
                span: Some(2),
                start_ns: 124 * HOUR,
                end_ns: 124 * HOUR,
                magnitude: -0.06,
                unit: "dB".into(),
                sigmas: 6.0,
                detected_ns: 140 * HOUR,
                threshold: 5.0,
                placed_within_ns: within.map(|(a, b)| (a * HOUR, b * HOUR)),
                detail: String::new(),
            });
            f
        };
        let score = |f: Finding| {
            let run = month(vec![f], truth.clone());
            let e = evaluate(&[run], &EvalConfig::default());
            (e.false_tap_like, e.taps_right_span)
        };
        assert_eq!(score(step(Some((90, 130)))), (0, 1));
        // Placed only from 110 h: not the tap at 100 h.
        assert_eq!(score(step(Some((110, 130)))), (1, 0));
        assert_eq!(score(step(None)), (1, 0));
    }

    /// A benign event one of whose findings is an unexplained tap is listed by name, even when
    /// another of its findings has the right class.
    #[test]
    fn a_benign_event_called_malicious_is_listed() {
        let truth = Truth {
            scenario: "t".into(),
            seed: 1,
            start: "2026-01-01T00:00:00Z".into(),
            end: "2026-01-31T00:00:00Z".into(),
            physics: None,
            events: vec![event("E1", EventKind::Maintenance, 100, 102, Some(1), 0.3)],
        };
        let run = month(
            vec![
                finding("F1", Class::Maintenance, 100, Some(2)),
                finding("F2", Class::TapLike, 101, Some(2)),
            ],
            truth,
        );
        let e = evaluate(&[run], &EvalConfig::default());
        assert_eq!(e.benign_called_malicious, 1);
        let listed: Vec<&EventOutcome> = e.outcomes.iter().filter(|o| o.called_malicious).collect();
        assert_eq!(listed.len(), 1, "{:?}", e.outcomes);
        assert_eq!(listed[0].id, "E1");
        let text = table(&e);
        let section = text
            .split("benign events called malicious:\n")
            .nth(1)
            .unwrap_or_else(|| panic!("{text}"));
        assert!(section.starts_with("  "), "{section}");
        assert!(
            section
                .lines()
                .next()
                .is_some_and(|l| l.contains(" E1 ") && l.contains("F2 tap_like")),
            "{section}"
        );
    }

    #[test]
    fn bins_cover_the_range() {
        assert_eq!(bin_of("dB", 0.01), 0);
        assert_eq!(bin_of("dB", 0.1), 2);
        assert_eq!(bin_of("dB", 0.19), 2);
        assert_eq!(bin_of("dB", 3.0), 4);
        assert_eq!(bin_label("dB", 4), ">= 0.5 dB");
        assert_eq!(bin_label("us", 0), "0-20 us");
    }
}
