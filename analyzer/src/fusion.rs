//! Fusion: evidence from all detectors joined per cable, fiber pair and direction in time into
//! findings, each classified, localized, scored and checked against every benign explanation.
//!
//! ```text
//! evidence --SOP bursts at the same time on several fibers or cables tagged environmental;
//!            opposite delay shifts in the two directions tagged clock skew-->
//!          --grouped per (cable, fiber pair, direction), a new group after a quiet gap-->
//!          --class from the signature (loss step in a span, outage, delay, path, burst)-->
//!          --every hypothesis checked: maintenance, repair, earthquake, vessel records; single
//!            fiber vs many; ageing at a repeater; clock-->  Finding (class, span, km, confidence,
//!            evidence, explanations)
//! ```

use std::collections::BTreeSet;

use cablewatch_proto::{
    context::{Context, ContextRecord},
    time::format_ns,
    topology::Topology,
};
use serde::{Deserialize, Serialize};

use crate::detect::{Evidence, EvidenceKind};

/// What a finding most likely is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// A loss step inside one span of one fiber, or a lone SOP burst on one fiber: what a tap leaves.
    TapLike,
    /// Loss of signal, then extra delay: a device inserted.
    InsertionLike,
    /// Path change or millisecond delay shift.
    Reroute,
    /// Terminal or repeater equipment: ageing, clock.
    Equipment,
    /// Many fibers or cables at once: earthquake, trawler, weather.
    Environmental,
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
    pub const ALL: [Class; 8] = [
        Class::TapLike,
        Class::InsertionLike,
        Class::Reroute,
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
}

impl Default for FusionConfig {
    fn default() -> Self {
        Self {
            gap_ns: 3 * 3_600_000_000_000,
            simultaneous_ns: 20 * 60_000_000_000,
            reroute_us: 300.0,
            insertion_us: 15.0,
        }
    }
}

/// Burst scope: how many fibers and cables burst together.
fn burst_scope(all: &[Evidence], e: &Evidence, within: i64) -> (usize, usize) {
    let together: Vec<&Evidence> = all
        .iter()
        .filter(|o| {
            o.kind == EvidenceKind::SopBurst
                && o.start_ns <= e.end_ns + within
                && o.end_ns + within >= e.start_ns
        })
        .collect();
    let fibers: BTreeSet<(&str, u32, &str)> = together
        .iter()
        .map(|o| (o.cable.as_str(), o.fiber_pair, o.direction.as_str()))
        .collect();
    let cables: BTreeSet<&str> = together.iter().map(|o| o.cable.as_str()).collect();
    (fibers.len(), cables.len())
}

/// True when a delay shift has an opposite partner in the other direction of the same fiber at the
/// same time: a station clock, not the fiber.
fn clock_like(all: &[Evidence], e: &Evidence, within: i64) -> bool {
    all.iter().any(|o| {
        o.kind == EvidenceKind::DelayShift
            && o.cable == e.cable
            && o.fiber_pair == e.fiber_pair
            && o.direction != e.direction
            && (o.start_ns - e.start_ns).abs() <= within
            && o.magnitude * e.magnitude < 0.0
            && (o.magnitude.abs() - e.magnitude.abs()).abs() <= 0.2 * e.magnitude.abs().max(1.0)
    })
}

/// Joins `evidence` into findings and checks them against `context`.
pub fn fuse(
    mut evidence: Vec<Evidence>,
    topology: &Topology,
    context: &Context,
    config: &FusionConfig,
) -> Vec<Finding> {
    evidence.sort_by(|a, b| {
        (&a.cable, a.fiber_pair, &a.direction, a.start_ns, a.kind, a.span).cmp(&(
            &b.cable,
            b.fiber_pair,
            &b.direction,
            b.start_ns,
            b.kind,
            b.span,
        ))
    });
    // Groups are runs of the sorted evidence: (first index, end time so far).
    let mut starts: Vec<usize> = Vec::new();
    let mut group_end = i64::MIN;
    for (i, e) in evidence.iter().enumerate() {
        let join = starts.last().is_some_and(|&g| {
            let first = &evidence[g];
            first.cable == e.cable
                && first.fiber_pair == e.fiber_pair
                && first.direction == e.direction
                && e.start_ns <= group_end.saturating_add(config.gap_ns)
                && e.kind != EvidenceKind::Ageing
                && first.kind != EvidenceKind::Ageing
        });
        if join {
            group_end = group_end.max(e.end_ns);
        } else {
            starts.push(i);
            group_end = e.end_ns;
        }
    }
    let ends = starts.iter().skip(1).copied().chain([evidence.len()]);
    let mut findings: Vec<Finding> = starts
        .iter()
        .zip(ends)
        .map(|(&a, b)| finding(evidence[a..b].to_vec(), &evidence, topology, context, config))
        .collect();
    findings.sort_by(|a, b| {
        (a.start_ns, &a.cable, a.fiber_pair, &a.direction).cmp(&(
            b.start_ns,
            &b.cable,
            b.fiber_pair,
            &b.direction,
        ))
    });
    for (i, f) in findings.iter_mut().enumerate() {
        f.id = format!("F{:04}", i + 1);
    }
    findings
}

fn finding(
    group: Vec<Evidence>,
    all: &[Evidence],
    topology: &Topology,
    context: &Context,
    config: &FusionConfig,
) -> Finding {
    let first = &group[0];
    let (cable, fiber_pair, direction) = (first.cable.clone(), first.fiber_pair, first.direction.clone());
    let start_ns = group.iter().map(|e| e.start_ns).min().unwrap_or(0);
    let end_ns = group.iter().map(|e| e.end_ns).max().unwrap_or(0);
    let of = |k: EvidenceKind| group.iter().filter(move |e| e.kind == k);
    // The largest loss step (most negative gain change) localizes the finding.
    let loss = of(EvidenceKind::LossStep)
        .filter(|e| e.magnitude < 0.0)
        .min_by(|a, b| a.magnitude.total_cmp(&b.magnitude));
    let delay = of(EvidenceKind::DelayShift)
        .filter(|e| !clock_like(all, e, config.simultaneous_ns))
        .max_by(|a, b| a.magnitude.abs().total_cmp(&b.magnitude.abs()));
    let clock = of(EvidenceKind::DelayShift).any(|e| clock_like(all, e, config.simultaneous_ns));
    let burst = of(EvidenceKind::SopBurst).max_by(|a, b| a.magnitude.total_cmp(&b.magnitude));
    let scope = burst.map(|b| burst_scope(all, b, config.simultaneous_ns));
    let outage = of(EvidenceKind::Outage).next().is_some();
    let path = of(EvidenceKind::PathChange).next().is_some();
    let ageing = of(EvidenceKind::Ageing).next();
    let qstep = of(EvidenceKind::QStep).next();
    let shared_burst = scope.is_some_and(|(fibers, cables)| cables >= 2 || fibers >= 3);
    let span = loss.and_then(|e| e.span).or(ageing.and_then(|e| e.span));
    let spans = topology.cable(&cable).map(|c| c.spans()).unwrap_or_default();
    let km = span
        .and_then(|s| spans.get(s as usize - 1))
        .map(|s| (s.start_km, s.end_km));

    let signature = if ageing.is_some() {
        Class::Equipment
    } else if path || delay.is_some_and(|d| d.magnitude.abs() >= config.reroute_us) {
        Class::Reroute
    } else if outage && loss.is_none() && delay.is_some_and(|d| d.magnitude >= config.insertion_us) {
        Class::InsertionLike
    } else if loss.is_some() {
        Class::TapLike
    } else if burst.is_some() && shared_burst {
        Class::Environmental
    } else if burst.is_some() && !outage {
        Class::TapLike
    } else if clock && delay.is_none() {
        Class::Equipment
    } else {
        Class::UnexplainedOther
    };

    // Every hypothesis, checked and recorded.
    let mut explanations = Vec::new();
    let mut explained_as: Option<Class> = None;
    let overlaps = |a: i64, b: i64| a <= end_ns && b >= start_ns;
    let ns = |t: chrono::DateTime<chrono::Utc>| t.timestamp_nanos_opt().unwrap_or(0);
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
    let mut check = |name: &str, found: Option<String>, none: String, class: Option<Class>| {
        if found.is_some() && explained_as.is_none() {
            explained_as = class;
        }
        explanations.push(Hypothesis {
            hypothesis: name.to_owned(),
            supported: found.is_some(),
            reason: found.unwrap_or(none),
        });
    };
    let maintenance = on_cable.iter().find_map(|r| match r {
        ContextRecord::Maintenance(m)
            if overlaps(ns(m.start), ns(m.end))
                && (m.fiber_pairs.is_empty() || m.fiber_pairs.contains(&fiber_pair)) =>
        {
            Some(format!("{} ({}) {} to {}", m.id, m.description, m.start, m.end))
        }
        _ => None,
    });
    check(
        "planned maintenance",
        maintenance,
        "no change-calendar entry on this cable and fiber pair overlaps".into(),
        Some(Class::Maintenance),
    );
    let repair = on_cable.iter().find_map(|r| match r {
        ContextRecord::Repair(m)
            if overlaps(ns(m.start) - 3_600_000_000_000, ns(m.end) + 6 * 3_600_000_000_000) =>
        {
            Some(format!(
                "{} at {:.1} km, {} to {}{}",
                m.id,
                m.fault_km,
                m.start,
                m.end,
                km.map(|(a, b)| if (a..=b).contains(&m.fault_km) {
                    ", in the flagged span".to_owned()
                } else {
                    ", outside the flagged span".to_owned()
                })
                .unwrap_or_default()
            ))
        }
        _ => None,
    });
    check(
        "cable repair",
        repair,
        "no repair ticket on this cable around this time".into(),
        Some(Class::Repair),
    );
    let quake = on_cable.iter().find_map(|r| match r {
        ContextRecord::Seismic(m) if (ns(m.time) - start_ns).abs() <= 30 * 60_000_000_000 => {
            Some(format!("{} M{:.1} at {}", m.id, m.magnitude, m.time))
        }
        _ => None,
    });
    check(
        "earthquake",
        quake,
        "no catalogued earthquake listing this cable within 30 minutes".into(),
        Some(Class::Environmental),
    );
    let vessel = on_cable.iter().find_map(|r| match r {
        ContextRecord::Vessel(m)
            if overlaps(ns(m.start), ns(m.end)) && km.is_none_or(|(a, b)| m.km_from <= b && m.km_to >= a) =>
        {
            Some(format!(
                "{} ({}) over {:.0}-{:.0} km",
                m.id, m.vessel_type, m.km_from, m.km_to
            ))
        }
        _ => None,
    });
    check(
        "vessel contact",
        vessel,
        "no AIS track over the cable (and span) at this time".into(),
        Some(Class::Environmental),
    );
    check(
        "many fibers or cables at once (environment)",
        scope
            .filter(|_| shared_burst)
            .map(|(f, c)| format!("SOP bursts on {f} fibers of {c} cables within 20 minutes")),
        match scope {
            Some((f, c)) => format!("burst on {f} fiber(s) of {c} cable(s) only"),
            None => "no SOP burst".into(),
        },
        Some(Class::Environmental),
    );
    check(
        "repeater pump ageing (slow decline at one repeater)",
        ageing.map(|e| e.detail.clone()),
        "no steady decline; the change is a step".into(),
        Some(Class::Equipment),
    );
    check(
        "station clock (opposite one-way delay shifts in the two directions)",
        clock.then(|| "delay shifts in both directions cancel in the round trip".to_owned()),
        "no opposite shift in the other direction".into(),
        Some(Class::Equipment),
    );
    check(
        "single-channel equipment fault",
        None,
        if loss.is_some() || qstep.is_some() {
            "the change is fiber-wide (loop-back gain or median Q of all channels)".into()
        } else {
            "not a single-channel signature".into()
        },
        None,
    );
    let class = explained_as.unwrap_or(signature);
    let explained = explained_as.is_some();

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
        if qstep.is_some() {
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
            group
                .iter()
                .map(|e| e.detail.clone())
                .collect::<Vec<_>>()
                .join("; "),
        );
    }
    Finding {
        id: String::new(),
        class,
        signature_class: signature,
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
        loss_db,
        delay_us,
        sop_peak_krad_s: sop_peak,
        confidence,
        evidence: group,
        explanations,
    }
}
