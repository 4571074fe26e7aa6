//! Fusion: evidence from all detectors joined per cable, fiber pair and direction in time into
//! findings, each classified, localized, scored and checked against every benign explanation.
//!
//! ```text
//! evidence --delay shifts shared by a cable's fiber pairs split off as the station's-->
//!          --grouped per (cable, fiber pair, direction), a new group after a quiet gap; a group
//!            with loss in several spans split per span-->
//!          --every hypothesis checked ([`hypotheses`]): the benign ones say which evidence they
//!            account for (records: maintenance, repair, earthquake, vessel; signatures: cable
//!            damage, many fibers, station work, ageing, clock, end of reroute, channel fault;
//!            data quality), the attacks (reroute, insertion, tap) classify what is left-->
//!          Finding (class, span, km, confidence, when it was conclusive, evidence, every
//!          hypothesis with the evidence for and against it) --> incidents
//! ```

use std::collections::BTreeSet;

use cablewatch_proto::{
    context::{Context, ContextRecord},
    time::format_ns,
    topology::Topology,
};
use serde::{Deserialize, Serialize};

mod hypotheses;

use hypotheses::{Assessment, burst_scope, shared};

use crate::detect::{Evidence, EvidenceKind, Gap};

/// What a finding most likely is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// A loss step inside one span of one fiber, or a lone SOP burst on one fiber: what a tap leaves.
    TapLike,
    /// A fiber's own delay grew by tens of microseconds or more with no loss step (usually after a
    /// loss of signal): a device inserted.
    InsertionLike,
    /// Path change or millisecond delay shift.
    Reroute,
    /// Terminal or repeater equipment: ageing, clock.
    Equipment,
    /// Many fibers or cables at once: earthquake, trawler, weather.
    Environmental,
    /// Every fiber pair of a cable lost light in the same span at once: the cable itself was damaged
    /// (a trawler or anchor, a landslide), logged or not. Needs a repair, not a counter-intelligence
    /// response.
    CableDamage,
    /// Planned work in the change calendar.
    Maintenance,
    /// A logged cable repair.
    Repair,
    /// Something changed and nothing above fits.
    UnexplainedOther,
}

impl Class {
    /// True for the classes an attacker's work falls in.
    pub fn suspicious(self) -> bool {
        matches!(self, Class::TapLike | Class::InsertionLike | Class::Reroute)
    }

    /// Every class, in report order.
    pub const ALL: [Class; 9] = [
        Class::TapLike,
        Class::InsertionLike,
        Class::Reroute,
        Class::CableDamage,
        Class::Equipment,
        Class::Environmental,
        Class::Maintenance,
        Class::Repair,
        Class::UnexplainedOther,
    ];

    /// The serialized name.
    pub fn name(self) -> &'static str {
        match self {
            Class::TapLike => "tap_like",
            Class::InsertionLike => "insertion_like",
            Class::Reroute => "reroute",
            Class::Equipment => "equipment",
            Class::Environmental => "environmental",
            Class::CableDamage => "cable_damage",
            Class::Maintenance => "maintenance",
            Class::Repair => "repair",
            Class::UnexplainedOther => "unexplained_other",
        }
    }
}

/// One benign (or malicious) explanation checked against a finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hypothesis {
    /// What was checked.
    pub hypothesis: String,
    /// Whether the evidence supports it.
    pub supported: bool,
    /// Why.
    pub reason: String,
    /// An attack (tap, insertion, reroute) rather than a benign explanation.
    #[serde(default)]
    pub malicious: bool,
    /// Observations that speak for it.
    #[serde(default)]
    pub evidence_for: Vec<String>,
    /// Observations that speak against it.
    #[serde(default)]
    pub evidence_against: Vec<String>,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// `F0001`, ... in time order.
    pub id: String,
    /// Classification after explanations.
    pub class: Class,
    /// Classification from the signature alone, before context records.
    pub signature_class: Class,
    /// True when a context record or a benign signature explains it.
    pub explained: bool,
    /// Cable.
    pub cable: String,
    /// Fiber pair.
    pub fiber_pair: u32,
    /// Direction.
    pub direction: String,
    /// Span (1-based) when line monitoring localizes it.
    pub span: Option<u32>,
    /// Span start, km from the A end.
    pub km_from: Option<f64>,
    /// Span end, km.
    pub km_to: Option<f64>,
    /// First evidence, RFC 3339.
    pub start: String,
    /// Last evidence, RFC 3339.
    pub end: String,
    /// First evidence, ns.
    pub start_ns: i64,
    /// Last evidence, ns.
    pub end_ns: i64,
    /// When the finding could first be reported: the earliest time its evidence was conclusive
    /// (a faint step needs sweeps after it), ns.
    #[serde(default)]
    pub detected_ns: i64,
    /// Loss step, dB (positive = more loss), when there is one.
    pub loss_db: Option<f64>,
    /// Delay shift, us, when there is one.
    pub delay_us: Option<f64>,
    /// SOP burst peak, krad/s, when there is one.
    pub sop_peak_krad_s: Option<f64>,
    /// 0..1.
    pub confidence: f64,
    /// One line for the analyst.
    pub summary: String,
    /// What the detectors saw.
    pub evidence: Vec<Evidence>,
    /// Every hypothesis checked.
    pub explanations: Vec<Hypothesis>,
    /// `I0001`, ...: findings with one cause share it (an earthquake's bursts on every fiber, a
    /// repair's outage on every fiber, a station clock on every pair, both directions of one
    /// reroute). Assigned by [`incidents`].
    #[serde(default)]
    pub incident: String,
}

impl Finding {
    /// The order of findings in reports: by start time, then cable, fiber, direction and span.
    pub fn report_order(&self, other: &Finding) -> std::cmp::Ordering {
        (
            self.start_ns,
            &self.cable,
            self.fiber_pair,
            &self.direction,
            self.span,
        )
            .cmp(&(
                other.start_ns,
                &other.cable,
                other.fiber_pair,
                &other.direction,
                other.span,
            ))
    }
}

/// Settings of the fusion step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FusionConfig {
    /// Evidence on one fiber further apart than this starts a new finding, ns.
    pub gap_ns: i64,
    /// Bursts on different fibers within this of each other are simultaneous, ns.
    pub simultaneous_ns: i64,
    /// Delay shifts at least this large are reroutes, us.
    pub reroute_us: f64,
    /// Delay shifts after an outage at least this large are insertions, us.
    pub insertion_us: f64,
    /// A loss step weaker than this (in noise sigmas of its series) makes a finding only with other
    /// evidence beside it (a burst, an outage, a Q change); alone it is noise or a slow drift.
    pub min_lone_step_sigmas: f64,
}

impl Default for FusionConfig {
    fn default() -> Self {
        Self {
            gap_ns: 3 * 3_600_000_000_000,
            simultaneous_ns: 20 * 60_000_000_000,
            reroute_us: 300.0,
            insertion_us: 15.0,
            min_lone_step_sigmas: 3.0,
        }
    }
}

/// How far apart a fiber's shift and a station shift it did not show separately may be.
const STATION_LOOKBACK_NS: i64 = 12 * 3_600_000_000_000;

/// Splits each delay shift into what the cable's fiber pairs share in that direction at that time
/// (a station clock or terminal moves every pair by the same microseconds) and what is the fiber's
/// own. A shift agreeing with at least half the pairs (and at least one other) becomes
/// `StationShift`; a concurrent one that does not keeps only its difference from the shared value.
fn split_station_delays(evidence: &mut [Evidence], topology: &Topology, within: i64) {
    let delays: Vec<usize> = (0..evidence.len())
        .filter(|&i| evidence[i].kind == EvidenceKind::DelayShift)
        .collect();
    let agree = |a: f64, b: f64| (a - b).abs() <= (0.01 * a.abs().max(b.abs())).max(1.0);
    let mut shared: Vec<(usize, f64, usize)> = Vec::new(); // (index, shared value, pairs sharing)
    let mut station = vec![false; evidence.len()];
    for &i in &delays {
        let e = &evidence[i];
        let pairs = topology
            .cable(&e.cable)
            .map_or(1, |c| c.fiber_pairs as usize)
            .max(1);
        let concurrent: Vec<usize> = delays
            .iter()
            .copied()
            .filter(|&j| {
                let o = &evidence[j];
                o.cable == e.cable
                    && o.direction == e.direction
                    && o.fiber_pair != e.fiber_pair
                    && (o.start_ns - e.start_ns).abs() <= within
            })
            .collect();
        let agreeing = concurrent
            .iter()
            .filter(|&&j| agree(evidence[j].magnitude, e.magnitude))
            .count();
        if agreeing >= 1 && agreeing + 1 >= pairs.div_ceil(2) {
            station[i] = true;
            shared.push((i, e.magnitude, agreeing + 1));
        }
    }
    for &i in &delays {
        let e = &evidence[i];
        if station[i] {
            continue;
        }
        // A station shift this fiber did not show on its own is inside its own shift (the fiber was
        // silent when it happened, say); look as far as a reporting gap.
        let near = |j: usize, window: i64| {
            let o = &evidence[j];
            o.cable == e.cable && o.direction == e.direction && (o.start_ns - e.start_ns).abs() <= window
        };
        let showed_own = shared
            .iter()
            .any(|&(j, _, _)| evidence[j].fiber_pair == e.fiber_pair && near(j, STATION_LOOKBACK_NS));
        let common: Vec<(f64, usize)> = shared
            .iter()
            .filter(|&&(j, _, _)| near(j, within) || (!showed_own && near(j, STATION_LOOKBACK_NS)))
            .map(|&(_, v, n)| (v, n))
            .collect();
        if let Some(&(value, n)) = common.first() {
            let own = e.magnitude - value;
            if agree(e.magnitude, value) {
                // The station's shift, placed a little apart from the other pairs': nothing of its
                // own.
                station[i] = true;
                continue;
            }
            let e = &mut evidence[i];
            e.detail = format!(
                "{}; {value:+.1} us of it is shared by {n} other fiber pairs (station-wide), {own:+.1} us is this fiber's own",
                e.detail
            );
            e.sigmas *= own.abs() / e.magnitude.abs().max(1e-9);
            e.magnitude = own;
        }
    }
    for (i, e) in evidence.iter_mut().enumerate() {
        if station[i] {
            e.kind = EvidenceKind::StationShift;
            e.detail = format!(
                "{}; every fiber pair of the cable in this direction shifted by the same amount at once: the station (clock or terminal), not the fiber",
                e.detail
            );
        }
    }
}

/// A loss step is known only to lie between the sweep before it and the sweep it shows at, and a
/// faint one a few sweeps either way (its test is nearly as strong there); one first seen after a
/// gap in the sweeps anywhere in the gap, but never after the sweep it shows at. Where the fiber
/// was handled within those times (a burst of this fiber alone, or the end of its loss of signal:
/// a splice), that is when the loss came, and the step is placed there so that they make one
/// finding.
fn place_steps_at_handling(evidence: &mut [Evidence], config: &FusionConfig) {
    // A loss of signal of the whole cable (a cut, a repair) is not one fiber's handling: it
    // overlaps other fibers' losses of signal.
    let cable_wide = |b: &Evidence| {
        evidence.iter().any(|o| {
            o.kind == EvidenceKind::Outage
                && o.cable == b.cable
                && (o.fiber_pair, o.direction.as_str()) != (b.fiber_pair, b.direction.as_str())
                && o.start_ns < b.end_ns
                && b.start_ns < o.end_ns
        })
    };
    let handled: Vec<(String, u32, String, i64, i64, &'static str, bool)> = evidence
        .iter()
        .filter_map(|b| match b.kind {
            EvidenceKind::SopBurst if !shared(burst_scope(evidence, b, config.simultaneous_ns)) => Some((
                b.cable.clone(),
                b.fiber_pair,
                b.direction.clone(),
                b.start_ns,
                b.end_ns,
                "burst",
                true,
            )),
            EvidenceKind::Outage => Some((
                b.cable.clone(),
                b.fiber_pair,
                b.direction.clone(),
                b.end_ns,
                b.end_ns,
                "end of the loss of signal",
                !cable_wide(b),
            )),
            _ => None,
        })
        .collect();
    // Steps placed most precisely first; a handling of this fiber alone already taken by a step in
    // another span is that step's (two taps do not share one fitting), so a vaguer step is left
    // where it is. While the whole cable was dark anything may have been done anywhere on it.
    let width = |e: &Evidence| {
        let (from, to) = e.placed_within();
        to - from
    };
    let mut order: Vec<usize> = (0..evidence.len())
        .filter(|&i| evidence[i].kind == EvidenceKind::LossStep && width(&evidence[i]) > 0)
        .collect();
    order.sort_by_key(|&i| width(&evidence[i]));
    let mut taken: Vec<(usize, Option<u32>)> = Vec::new();
    for i in order {
        let e = &mut evidence[i];
        let (from, to) = e.placed_within();
        let at = handled
            .iter()
            .enumerate()
            .filter(|(_, b)| b.0 == e.cable && b.1 == e.fiber_pair && b.2 == e.direction)
            .filter(|(_, b)| b.4 >= from && b.3 <= to)
            .filter(|(k, b)| !b.6 || !taken.iter().any(|&(t, span)| t == *k && span != e.span))
            .min_by_key(|(_, b)| (b.4 - e.start_ns).abs());
        let Some((k, b)) = at else { continue };
        taken.push((k, e.span));
        if b.4 != e.start_ns {
            e.detail = format!(
                "{}; placed at the {} at {} (its sweeps placed it at {}, between {} and {})",
                e.detail,
                b.5,
                format_ns(b.4),
                format_ns(e.start_ns),
                format_ns(from),
                format_ns(to)
            );
            e.start_ns = b.4;
            e.end_ns = b.4;
        }
    }
}

/// Which findings evidence may share: a reroute, a burst shared with other fibers or cables, and a
/// repeater's slow decline are each their own finding, so that they neither hide nor explain away a
/// loss step on the same fiber.
fn family(e: &Evidence, shared_burst: bool, config: &FusionConfig) -> u8 {
    match e.kind {
        EvidenceKind::PathChange => 1,
        EvidenceKind::DelayShift if e.magnitude.abs() >= config.reroute_us => 1,
        EvidenceKind::SopBurst if shared_burst => 2,
        EvidenceKind::Ageing => 3,
        _ => 0,
    }
}

/// Joins `evidence` into findings and checks them against `context`.
pub fn fuse(
    mut evidence: Vec<Evidence>,
    gaps: &[Gap],
    topology: &Topology,
    context: &Context,
    config: &FusionConfig,
) -> Vec<Finding> {
    split_station_delays(&mut evidence, topology, config.simultaneous_ns);
    place_steps_at_handling(&mut evidence, config);
    let families: Vec<u8> = evidence
        .iter()
        .map(|e| {
            let shared = e.kind == EvidenceKind::SopBurst && {
                shared(burst_scope(&evidence, e, config.simultaneous_ns))
            };
            family(e, shared, config)
        })
        .collect();
    let all = evidence.clone();
    let mut keyed: Vec<(u8, Evidence)> = families.into_iter().zip(evidence).collect();
    keyed.sort_by(|(fa, a), (fb, b)| {
        (
            &a.cable,
            a.fiber_pair,
            &a.direction,
            fa,
            a.start_ns,
            a.kind,
            a.span,
        )
            .cmp(&(
                &b.cable,
                b.fiber_pair,
                &b.direction,
                fb,
                b.start_ns,
                b.kind,
                b.span,
            ))
    });
    // Groups are runs of the sorted evidence: same fiber and family, no quiet gap longer than
    // `gap_ns`, and never two ageing declines together.
    let mut groups: Vec<Vec<Evidence>> = Vec::new();
    let mut group_end = i64::MIN;
    let mut group_family = u8::MAX;
    for (fam, e) in keyed {
        let join = groups.last().is_some_and(|g| {
            let first = &g[0];
            first.cable == e.cable
                && first.fiber_pair == e.fiber_pair
                && first.direction == e.direction
                && fam == group_family
                && fam != 3
                && e.start_ns <= group_end.saturating_add(config.gap_ns)
        });
        if join {
            group_end = group_end.max(e.end_ns);
            if let Some(g) = groups.last_mut() {
                g.push(e);
            }
        } else {
            group_end = e.end_ns;
            group_family = fam;
            groups.push(vec![e]);
        }
    }
    let mut findings: Vec<Finding> = groups
        .into_iter()
        .flat_map(split_by_span)
        .filter(|g| {
            !g.iter()
                .all(|e| e.kind == EvidenceKind::LossStep && e.sigmas < config.min_lone_step_sigmas)
        })
        .map(|g| finding(g, &all, gaps, topology, context, config))
        .collect();
    findings.sort_by(Finding::report_order);
    for (i, f) in findings.iter_mut().enumerate() {
        f.id = format!("F{:04}", i + 1);
    }
    incidents(&mut findings);
    findings
}

/// How far apart in time findings of one incident may be, ns.
const INCIDENT_SLACK_NS: i64 = 30 * 60_000_000_000;

/// Groups `findings` (in report order) into incidents: same class and explanation, overlapping in
/// time (within half an hour), and on the same cable and fiber pair for suspicious ones (each
/// fiber pair is its own possible attack), the same cable for repairs and maintenance, anywhere for
/// environmental and equipment causes (an earthquake, a station clock on several cables).
pub fn incidents(findings: &mut [Finding]) {
    let n = findings.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let together = |a: &Finding, b: &Finding| {
        a.class == b.class
            && a.explained == b.explained
            && a.start_ns <= b.end_ns + INCIDENT_SLACK_NS
            && b.start_ns <= a.end_ns + INCIDENT_SLACK_NS
            && match a.class {
                Class::Environmental | Class::Equipment => true,
                Class::Maintenance | Class::Repair | Class::CableDamage => a.cable == b.cable,
                _ => a.cable == b.cable && a.fiber_pair == b.fiber_pair && a.span == b.span,
            }
    };
    for i in 0..n {
        for j in i + 1..n {
            // Report order is by start: nothing later can overlap once starts pass the end.
            if findings[j].start_ns > findings[i].end_ns + INCIDENT_SLACK_NS {
                break;
            }
            if together(&findings[i], &findings[j]) {
                let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                parent[a.max(b)] = a.min(b);
            }
        }
    }
    let mut numbers: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    for (i, f) in findings.iter_mut().enumerate() {
        let r = root(&mut parent, i);
        let next = numbers.len() + 1;
        let k = *numbers.entry(r).or_insert(next);
        f.incident = format!("I{k:04}");
    }
}

/// A group with loss steps in several spans becomes one group per span: each span is its own
/// place on the cable, explained (or not) on its own. Evidence without a span stays with the span
/// of the largest step.
fn split_by_span(group: Vec<Evidence>) -> Vec<Vec<Evidence>> {
    let spans: BTreeSet<u32> = group
        .iter()
        .filter(|e| e.kind == EvidenceKind::LossStep)
        .filter_map(|e| e.span)
        .collect();
    if spans.len() < 2 {
        return vec![group];
    }
    let main = group
        .iter()
        .filter(|e| e.kind == EvidenceKind::LossStep)
        .max_by(|a, b| a.magnitude.abs().total_cmp(&b.magnitude.abs()))
        .and_then(|e| e.span);
    let mut out: Vec<Vec<Evidence>> = spans.iter().map(|_| Vec::new()).collect();
    for e in group {
        let span = if e.kind == EvidenceKind::LossStep {
            e.span
        } else {
            main
        };
        let at = span.and_then(|s| spans.iter().position(|&x| x == s)).unwrap_or(0);
        out[at].push(e);
    }
    out
}

/// How much a piece of evidence weighs when choosing what explains a finding: the change an
/// attacker cannot avoid first.
fn weight(kind: EvidenceKind) -> u8 {
    match kind {
        EvidenceKind::LossStep => 7,
        EvidenceKind::Outage => 6,
        EvidenceKind::DelayShift => 5,
        EvidenceKind::PathChange => 4,
        EvidenceKind::QStep | EvidenceKind::ChannelFault | EvidenceKind::PowerStep => 3,
        EvidenceKind::SopBurst => 2,
        EvidenceKind::StationShift => 1,
        EvidenceKind::Ageing => 0,
    }
}

fn kind_name(kind: EvidenceKind) -> &'static str {
    match kind {
        EvidenceKind::LossStep => "loss step",
        EvidenceKind::Ageing => "ageing",
        EvidenceKind::QStep => "Q step",
        EvidenceKind::SopBurst => "SOP burst",
        EvidenceKind::Outage => "outage",
        EvidenceKind::DelayShift => "delay shift",
        EvidenceKind::PathChange => "path change",
        EvidenceKind::StationShift => "station-wide delay shift",
        EvidenceKind::ChannelFault => "single-channel Q drop",
        EvidenceKind::PowerStep => "received power step",
    }
}

fn kinds_text(group: &[Evidence], which: impl Fn(usize) -> bool) -> String {
    let names: BTreeSet<&str> = (0..group.len())
        .filter(|&i| which(i))
        .map(|i| match (group[i].kind, group[i].span) {
            (EvidenceKind::LossStep, Some(_)) => "loss step",
            (k, _) => kind_name(k),
        })
        .collect();
    names.into_iter().collect::<Vec<_>>().join(", ")
}

/// The class of a finding from its assessments: the attack that holds on the evidence no benign
/// explanation accounts for, strongest first; with everything accounted for, the class of the
/// explanation of the weightiest evidence; otherwise unexplained. Returns the class, whether it is
/// explained, and which benign assessment accounts for each piece of evidence.
fn decide(
    scene: &hypotheses::Scene<'_>,
    benign: &[Assessment],
) -> (Class, bool, Vec<Option<usize>>, Vec<Assessment>) {
    let group = scene.group;
    let explained_by: Vec<Option<usize>> = (0..group.len())
        .map(|i| benign.iter().position(|c| c.found.is_some() && c.covers[i]))
        .collect();
    let left: Vec<bool> = explained_by.iter().map(Option::is_none).collect();
    let attacks = hypotheses::malicious(scene, &left);
    if left.iter().all(|l| !l) {
        let class = (0..group.len())
            .max_by_key(|&i| (weight(group[i].kind), std::cmp::Reverse(explained_by[i])))
            .and_then(|i| explained_by[i])
            .map_or(Class::UnexplainedOther, |c| benign[c].class);
        return (class, true, explained_by, attacks);
    }
    let class = attacks
        .iter()
        .find(|a| a.supported())
        .map_or(Class::UnexplainedOther, |a| a.class);
    (class, false, explained_by, attacks)
}

/// The hypotheses that rest on the operator's records rather than on the telemetry.
const RECORD_HYPOTHESES: [&str; 4] = [
    "planned maintenance",
    "cable repair",
    "earthquake",
    "vessel contact",
];

#[allow(clippy::too_many_arguments)]
fn finding(
    group: Vec<Evidence>,
    all: &[Evidence],
    gaps: &[Gap],
    topology: &Topology,
    context: &Context,
    config: &FusionConfig,
) -> Finding {
    let first = &group[0];
    let (cable, fiber_pair, direction) = (first.cable.clone(), first.fiber_pair, first.direction.clone());
    let start_ns = group.iter().map(|e| e.start_ns).min().unwrap_or(0);
    let end_ns = group.iter().map(|e| e.end_ns).max().unwrap_or(0);
    let topo = topology.cable(&cable);
    let spans = topo.map(|c| c.spans()).unwrap_or_default();
    let span_km = |s: u32| {
        spans
            .get((s as usize).wrapping_sub(1))
            .map(|s| (s.start_km, s.end_km))
    };
    let on_cable: Vec<&ContextRecord> = context
        .records
        .iter()
        .filter(|r| match r {
            ContextRecord::Maintenance(m) => m.cable.as_str() == cable,
            ContextRecord::Repair(m) => m.cable.as_str() == cable,
            ContextRecord::Seismic(m) => m.cables.iter().any(|c| c.as_str() == cable),
            ContextRecord::Vessel(m) => m.cable.as_str() == cable,
        })
        .collect();
    let scene = hypotheses::Scene {
        group: &group,
        all,
        cable: topo,
        records: on_cable,
        gaps,
        fiber_pair,
        direction: &direction,
        config,
    };
    let benign = hypotheses::benign(&scene);
    let (class, explained, explained_by, attacks) = decide(&scene, &benign);
    // What the telemetry alone says, without the operator's records.
    let signature_class = {
        let telemetry: Vec<Assessment> = benign
            .iter()
            .map(|a| {
                let mut a = a.clone();
                if RECORD_HYPOTHESES.contains(&a.name) {
                    a.found = None;
                }
                a
            })
            .collect();
        decide(&scene, &telemetry).0
    };
    let explanations: Vec<Hypothesis> = benign
        .iter()
        .chain(&attacks)
        .map(|c| {
            let accounted = kinds_text(&group, |i| c.covers[i]);
            let unaccounted = kinds_text(&group, |i| explained_by[i].is_none());
            let supported = c.supported();
            Hypothesis {
                hypothesis: c.name.to_owned(),
                supported,
                malicious: c.malicious,
                reason: match &c.found {
                    Some(f) if !accounted.is_empty() && c.malicious => format!("{f}: the {accounted}"),
                    Some(f) if !accounted.is_empty() => {
                        if unaccounted.is_empty() {
                            format!("{f}: accounts for the {accounted}")
                        } else {
                            format!("{f}: accounts for the {accounted}, not the {unaccounted}")
                        }
                    }
                    Some(f) => format!("{f}: accounts for none of the evidence"),
                    None => c.none.clone(),
                },
                evidence_for: c.evidence_for.clone(),
                evidence_against: c.evidence_against.clone(),
            }
        })
        .collect();
    let focus: Vec<&Evidence> = if explained {
        group.iter().collect()
    } else {
        group
            .iter()
            .zip(&explained_by)
            .filter(|(_, by)| by.is_none())
            .map(|(e, _)| e)
            .collect()
    };
    // When the finding could first be reported: when the evidence that decides its class was
    // conclusive (a faint step after enough sweeps), else its first conclusive evidence.
    let deciding = attacks
        .iter()
        .find(|a| a.supported())
        .map(|a| &a.covers)
        .filter(|_| !explained);
    let detected_ns = group
        .iter()
        .enumerate()
        .filter(|(i, _)| deciding.is_none_or(|c| c[*i]))
        .map(|(_, e)| e.detected_ns)
        .min()
        .unwrap_or(end_ns);
    // What the analyst reads: the evidence that decided the class.
    let loss = focus
        .iter()
        .filter(|e| e.kind == EvidenceKind::LossStep && e.magnitude < 0.0)
        .min_by(|a, b| a.magnitude.total_cmp(&b.magnitude))
        .copied();
    let ageing = focus.iter().find(|e| e.kind == EvidenceKind::Ageing).copied();
    let delay = focus
        .iter()
        .filter(|e| e.kind == EvidenceKind::DelayShift)
        .max_by(|a, b| a.magnitude.abs().total_cmp(&b.magnitude.abs()))
        .copied();
    let burst = focus
        .iter()
        .filter(|e| e.kind == EvidenceKind::SopBurst)
        .max_by(|a, b| a.magnitude.total_cmp(&b.magnitude))
        .copied();
    let shared_burst = burst.is_some_and(|b| shared(burst_scope(all, b, config.simultaneous_ns)));
    let outage = focus.iter().any(|e| e.kind == EvidenceKind::Outage);
    let path = focus.iter().any(|e| e.kind == EvidenceKind::PathChange);
    let qstep = focus.iter().any(|e| e.kind == EvidenceKind::QStep);
    let span = loss.and_then(|e| e.span).or(ageing.and_then(|e| e.span));
    let km = span.and_then(span_km);
    let loss_db = loss.map(|e| -e.magnitude);
    let delay_us = delay.map(|e| e.magnitude);
    let sop_peak = burst.map(|e| e.magnitude);
    let confidence = {
        let mut miss = 1.0;
        if let Some(l) = loss {
            miss *= 1.0 - (l.sigmas / 12.0).clamp(0.2, 0.95);
        }
        if burst.is_some() {
            miss *= if shared_burst { 0.8 } else { 0.5 };
        }
        if let Some(d) = delay {
            miss *= 1.0 - (d.sigmas / 12.0).clamp(0.2, 0.95);
        }
        if outage {
            miss *= 0.7;
        }
        if qstep {
            miss *= 0.8;
        }
        if path {
            miss *= 0.1;
        }
        if ageing.is_some() {
            miss *= 0.2;
        }
        ((1.0 - miss) * 1000.0_f64).round() / 1000.0
    };
    let mut parts = Vec::new();
    if let (Some(l), Some(s)) = (loss_db, span) {
        parts.push(format!("{l:.3} dB loss step in span {s}"));
    }
    if outage {
        parts.push("loss of signal".into());
    }
    if let Some(d) = delay_us {
        parts.push(format!("{d:+.1} us delay"));
    }
    if path {
        parts.push("path change".into());
    }
    if let Some(p) = sop_peak {
        parts.push(format!("SOP burst {p:.0} krad/s"));
    }
    if let Some(a) = ageing {
        parts.push(a.detail.clone());
    }
    if parts.is_empty() {
        parts.push(
            focus
                .iter()
                .map(|e| e.detail.clone())
                .collect::<Vec<_>>()
                .join("; "),
        );
    }
    Finding {
        id: String::new(),
        class,
        signature_class,
        explained,
        summary: format!(
            "{}: {} on {cable} fiber pair {fiber_pair} {direction}{}",
            class.name(),
            parts.join(", "),
            if explained { " (explained)" } else { "" }
        ),
        cable,
        fiber_pair,
        direction,
        span,
        km_from: km.map(|k| k.0),
        km_to: km.map(|k| k.1),
        start: format_ns(start_ns),
        end: format_ns(end_ns),
        start_ns,
        end_ns,
        detected_ns,
        loss_db,
        delay_us,
        sop_peak_krad_s: sop_peak,
        confidence,
        evidence: group,
        explanations,
        incident: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use cablewatch_proto::context::{Maintenance, Repair};

    use super::*;

    const HOUR: i64 = 3_600_000_000_000;

    fn tiny() -> Topology {
        Topology::from_toml_file(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../testdata/topology-tiny.toml"
        )))
        .unwrap()
    }

    fn ev(kind: EvidenceKind, fp: u32, dir: &str, t: i64, magnitude: f64, span: Option<u32>) -> Evidence {
        Evidence {
            kind,
            cable: "tiny-1".into(),
            direction: dir.into(),
            fiber_pair: fp,
            span,
            start_ns: t,
            end_ns: t,
            magnitude,
            unit: String::new(),
            sigmas: 10.0,
            detected_ns: t,
            placed_within_ns: None,
            threshold: 0.0,
            detail: String::new(),
        }
    }

    fn fuse_(
        evidence: Vec<Evidence>,
        topology: &Topology,
        context: &Context,
        config: &FusionConfig,
    ) -> Vec<Finding> {
        fuse(evidence, &[], topology, context, config)
    }

    fn utc(ns: i64) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::<chrono::Utc>::from_timestamp_nanos(ns)
    }

    #[test]
    fn a_shift_on_every_pair_is_the_station_and_a_larger_one_keeps_its_own_part() {
        let mut evidence = vec![
            // Both pairs shift by 500 us at once in one direction: a station clock.
            ev(EvidenceKind::DelayShift, 1, "a_to_b", 10 * HOUR, 500.0, None),
            ev(EvidenceKind::DelayShift, 2, "a_to_b", 10 * HOUR, 500.3, None),
            // The other direction: the same, ten minutes apart.
            ev(EvidenceKind::DelayShift, 2, "b_to_a", 11 * HOUR, 500.0, None),
            ev(
                EvidenceKind::DelayShift,
                1,
                "b_to_a",
                11 * HOUR + HOUR / 6,
                499.8,
                None,
            ),
        ];
        evidence.push(ev(EvidenceKind::DelayShift, 1, "b_to_a", 14 * HOUR, 540.0, None));
        split_station_delays(&mut evidence, &tiny(), 20 * 60_000_000_000);
        assert_eq!(evidence[0].kind, EvidenceKind::StationShift);
        assert_eq!(evidence[1].kind, EvidenceKind::StationShift);
        assert_eq!(evidence[2].kind, EvidenceKind::StationShift);
        assert_eq!(evidence[3].kind, EvidenceKind::StationShift);
        // Pair 1 b_to_a showed the station shift on its own, so its later 540 us is all its own.
        assert_eq!(evidence[4].kind, EvidenceKind::DelayShift);
        assert_eq!(evidence[4].magnitude, 540.0);

        // A pair that did not show the station shift separately carries it inside its own step.
        let mut hidden = vec![
            ev(EvidenceKind::DelayShift, 1, "a_to_b", 10 * HOUR, 500.0, None),
            ev(EvidenceKind::DelayShift, 2, "a_to_b", 10 * HOUR, 500.0, None),
            ev(EvidenceKind::DelayShift, 3, "a_to_b", 13 * HOUR, 540.0, None),
        ];
        let mut topo = tiny();
        topo.cables[0].fiber_pairs = 3;
        split_station_delays(&mut hidden, &topo, 20 * 60_000_000_000);
        assert_eq!(hidden[2].kind, EvidenceKind::DelayShift);
        assert!(
            (hidden[2].magnitude - 40.0).abs() < 1e-9,
            "{}",
            hidden[2].magnitude
        );
    }

    #[test]
    fn maintenance_at_a_station_does_not_explain_loss_in_a_wet_span() {
        let topology = tiny();
        let context = Context {
            records: vec![ContextRecord::Maintenance(Maintenance {
                id: "CHG-1".into(),
                cable: cablewatch_proto::CableId::try_new("tiny-1").unwrap(),
                start: utc(10 * HOUR),
                end: utc(12 * HOUR),
                fiber_pairs: vec![1],
                station: Some(cablewatch_proto::StationId::try_new("north").unwrap()),
                description: "terminal work".into(),
            })],
        };
        // Outage and burst during the window: maintenance. A loss step in span 3 (mid-sea) with
        // them: a splice-in tap hiding behind the window.
        let station_only = vec![
            ev(
                EvidenceKind::Outage,
                1,
                "a_to_b",
                10 * HOUR + HOUR / 4,
                20.0,
                None,
            ),
            ev(
                EvidenceKind::SopBurst,
                1,
                "a_to_b",
                10 * HOUR + HOUR / 3,
                80.0,
                None,
            ),
        ];
        let f = fuse_(
            station_only.clone(),
            &topology,
            &context,
            &FusionConfig::default(),
        );
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].class, f[0].explained), (Class::Maintenance, true));

        let mut with_tap = station_only;
        with_tap.push(ev(EvidenceKind::LossStep, 1, "a_to_b", 11 * HOUR, -0.2, Some(3)));
        let f = fuse_(with_tap, &topology, &context, &FusionConfig::default());
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].class, f[0].explained),
            (Class::TapLike, false),
            "{:#?}",
            f[0]
        );
        assert_eq!(f[0].span, Some(3));
        let m = &f[0].explanations[0];
        assert!(m.supported && m.reason.contains("not the loss step"), "{m:?}");

        // A loss step in span 1, which lands at the station being worked on, is the work.
        let shore = vec![ev(EvidenceKind::LossStep, 1, "a_to_b", 11 * HOUR, -0.2, Some(1))];
        let f = fuse_(shore, &topology, &context, &FusionConfig::default());
        assert_eq!((f[0].class, f[0].explained), (Class::Maintenance, true));

        // 100 us more delay without a path change is not terminal work: a device inserted under
        // cover of the window. With a path change it is the work (traffic moved).
        let inserted = vec![
            ev(
                EvidenceKind::Outage,
                1,
                "a_to_b",
                10 * HOUR + HOUR / 4,
                20.0,
                None,
            ),
            ev(
                EvidenceKind::DelayShift,
                1,
                "a_to_b",
                10 * HOUR + HOUR / 2,
                100.0,
                None,
            ),
        ];
        let f = fuse_(inserted.clone(), &topology, &context, &FusionConfig::default());
        assert_eq!(
            (f[0].class, f[0].explained),
            (Class::InsertionLike, false),
            "{:#?}",
            f[0]
        );
        let mut moved = inserted;
        moved.push(ev(
            EvidenceKind::PathChange,
            1,
            "a_to_b",
            10 * HOUR + HOUR / 2,
            1.0,
            None,
        ));
        moved[1].magnitude = 2000.0;
        let f = fuse_(moved, &topology, &context, &FusionConfig::default());
        assert!(
            f.iter().all(|f| f.explained && f.class == Class::Maintenance),
            "{f:#?}"
        );
    }

    #[test]
    fn one_cause_on_many_fibers_is_one_incident_and_attacks_on_two_pairs_are_two() {
        let mut topology = tiny();
        topology.cables[0].fiber_pairs = 4;
        let mut evidence = Vec::new();
        // A burst on all eight fibers at once: environmental, one incident.
        for fp in 1..=4 {
            for dir in ["a_to_b", "b_to_a"] {
                evidence.push(ev(EvidenceKind::SopBurst, fp, dir, 10 * HOUR, 50.0, None));
            }
        }
        // Loss steps with bursts on pairs 1 and 3, days later and an hour apart: two tap-like
        // incidents (bursts on two pairs at once would be the cable moving).
        for (fp, h) in [(1, 60), (3, 61)] {
            evidence.push(ev(EvidenceKind::SopBurst, fp, "a_to_b", h * HOUR, 90.0, None));
            evidence.push(ev(
                EvidenceKind::LossStep,
                fp,
                "a_to_b",
                (h + 1) * HOUR,
                -0.3,
                Some(2),
            ));
        }
        let f = fuse_(evidence, &topology, &Context::default(), &FusionConfig::default());
        let of = |c: Class| -> BTreeSet<&str> {
            f.iter()
                .filter(|f| f.class == c)
                .map(|f| f.incident.as_str())
                .collect()
        };
        assert_eq!(f.iter().filter(|f| f.class == Class::Environmental).count(), 8);
        assert_eq!(of(Class::Environmental).len(), 1);
        assert_eq!(of(Class::TapLike).len(), 2);
        assert!(of(Class::TapLike).is_disjoint(&of(Class::Environmental)));
    }

    #[test]
    fn a_weak_loss_step_alone_is_not_a_finding_but_supports_a_burst() {
        let topology = tiny();
        let mut weak = ev(EvidenceKind::LossStep, 1, "a_to_b", 10 * HOUR, -0.06, Some(2));
        weak.sigmas = 2.2;
        let f = fuse_(
            vec![weak.clone()],
            &topology,
            &Context::default(),
            &FusionConfig::default(),
        );
        assert!(f.is_empty(), "{f:#?}");
        let burst = ev(
            EvidenceKind::SopBurst,
            1,
            "a_to_b",
            10 * HOUR - HOUR / 2,
            60.0,
            None,
        );
        let f = fuse_(
            vec![weak, burst],
            &topology,
            &Context::default(),
            &FusionConfig::default(),
        );
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].class, f[0].span), (Class::TapLike, Some(2)));
    }

    #[test]
    fn a_repair_explains_its_own_span_and_not_a_tap_made_while_the_cable_was_cut() {
        let topology = tiny();
        let context = Context {
            records: vec![ContextRecord::Repair(Repair {
                id: "REP-1".into(),
                cable: cablewatch_proto::CableId::try_new("tiny-1").unwrap(),
                fault_km: 150.0, // span 3: 118-183 km
                start: utc(10 * HOUR),
                end: utc(40 * HOUR),
                fiber_pairs: vec![],
                added_km: Some(3.0),
                description: String::new(),
            })],
        };
        let after = 40 * HOUR + HOUR / 2;
        let mut outage = ev(EvidenceKind::Outage, 2, "b_to_a", 10 * HOUR, 1800.0, None);
        outage.end_ns = 40 * HOUR;
        let evidence = vec![
            outage,
            ev(EvidenceKind::LossStep, 2, "b_to_a", after, -0.25, Some(3)),
            ev(EvidenceKind::LossStep, 2, "b_to_a", after, -0.12, Some(2)),
            ev(EvidenceKind::DelayShift, 2, "b_to_a", after, 3.0 * 4.897, None),
        ];
        let mut f = fuse_(evidence, &topology, &context, &FusionConfig::default());
        f.sort_by_key(|f| f.span);
        assert_eq!(f.len(), 2, "one finding per span: {f:#?}");
        assert_eq!(
            (f[0].span, f[0].class, f[0].explained),
            (Some(2), Class::TapLike, false)
        );
        assert_eq!(
            (f[1].span, f[1].class, f[1].explained),
            (Some(3), Class::Repair, true)
        );
        assert!(f[1].evidence.iter().any(|e| e.kind == EvidenceKind::Outage));
    }

    #[test]
    fn a_step_first_seen_after_a_gap_happened_in_the_gap_not_at_a_later_handling() {
        // The cable was dark from 10 h to 40 h; the first sweep after it shows span 2 of this fiber
        // 0.3 dB down (and span 3 0.35 dB). The step happened somewhere in the gap (the sweeps place it between the
        // last sweep before, at 9 h, and the first after). A day later this fiber alone is handled
        // (a burst at 60 h): the step must not move there, where it would become that handling's
        // and leave the cut's tap at the wrong time.
        let topology = tiny();
        let after = 40 * HOUR + HOUR / 2;
        let mut outage = ev(EvidenceKind::Outage, 2, "b_to_a", 10 * HOUR, 1800.0, None);
        outage.end_ns = 40 * HOUR;
        let mut step = ev(EvidenceKind::LossStep, 2, "b_to_a", after, -0.3, Some(2));
        step.placed_within_ns = Some((9 * HOUR, after));
        // The cut's own step in span 3 (a repair's splice, say) is placed at the end of the outage.
        let mut other = ev(EvidenceKind::LossStep, 2, "b_to_a", after, -0.35, Some(3));
        other.placed_within_ns = Some((9 * HOUR, after));
        let burst = ev(EvidenceKind::SopBurst, 2, "b_to_a", 60 * HOUR, 50.0, None);
        let f = fuse_(
            vec![outage, other, step, burst],
            &topology,
            &Context::default(),
            &FusionConfig::default(),
        );
        let tap = f
            .iter()
            .find(|f| f.span == Some(2))
            .unwrap_or_else(|| panic!("a finding in span 2: {f:#?}"));
        assert_eq!(tap.class, Class::TapLike);
        assert!(tap.start_ns <= after, "{tap:#?}");
        assert!(
            tap.evidence.iter().all(|e| e.kind != EvidenceKind::SopBurst),
            "the later burst is not the cut's: {tap:#?}"
        );
    }

    #[test]
    fn steps_in_two_spans_may_share_the_end_of_the_whole_cables_loss_of_signal() {
        // The cable was dark from 10 h to 40 h on every fiber. On fiber 2 b_to_a the last sweep
        // before it ran at 9 h; span 3 shows a step placed just before the cut by its noisy
        // sweeps and span 2 one placed after it. Both may be the cut's: placed at its end, not
        // one each side of it (only one fiber's own loss of signal is one fitting).
        let outage = |fp: u32, dir: &str| {
            let mut o = ev(EvidenceKind::Outage, fp, dir, 10 * HOUR, 1800.0, None);
            o.end_ns = 40 * HOUR;
            o
        };
        let after = 40 * HOUR + HOUR / 2;
        let mut early = ev(EvidenceKind::LossStep, 2, "b_to_a", 9 * HOUR, -0.35, Some(3));
        early.placed_within_ns = Some((6 * HOUR, after));
        let mut late = ev(EvidenceKind::LossStep, 2, "b_to_a", after, -0.2, Some(2));
        late.placed_within_ns = Some((9 * HOUR, after));
        let mut evidence = vec![
            outage(1, "a_to_b"),
            outage(1, "b_to_a"),
            outage(2, "a_to_b"),
            outage(2, "b_to_a"),
            early,
            late,
        ];
        place_steps_at_handling(&mut evidence, &FusionConfig::default());
        assert_eq!(evidence[4].start_ns, 40 * HOUR, "{}", evidence[4].detail);
        assert_eq!(evidence[5].start_ns, 40 * HOUR, "{}", evidence[5].detail);
    }

    #[test]
    fn a_return_to_the_usual_path_is_the_end_of_a_reroute_not_a_new_one() {
        let topology = tiny();
        let mut away = ev(EvidenceKind::PathChange, 1, "a_to_b", 10 * HOUR, 1.0, None);
        away.detail = "path p -> p/alt".into();
        let mut back = ev(EvidenceKind::PathChange, 1, "a_to_b", 30 * HOUR, -1.0, None);
        back.detail = "path p/alt -> p (back to the usual path)".into();
        let evidence = vec![
            away,
            ev(EvidenceKind::DelayShift, 1, "a_to_b", 10 * HOUR, 2000.0, None),
            back,
            ev(EvidenceKind::DelayShift, 1, "a_to_b", 30 * HOUR, -2000.0, None),
        ];
        let f = fuse_(evidence, &topology, &Context::default(), &FusionConfig::default());
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].class, f[0].explained), (Class::Reroute, false));
        assert_eq!((f[1].class, f[1].explained), (Class::Reroute, true));
    }
}
