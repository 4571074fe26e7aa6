//! Every explanation a finding is checked against, one function each.
//!
//! ```text
//! a finding's evidence + the run's other evidence + the cable's context records
//!   --benign explanations (each says which evidence it accounts for):
//!       records:    maintenance, repair, earthquake, vessel
//!       signatures: cable damage (every fiber steps in one span), many fibers at once, station
//!                   work (both fibers of a pair handled at a station), repeater ageing, station
//!                   clock, end of a reroute, single-channel fault
//!       context:    data quality (the evidence sits at a reporting gap; never explains it away)
//!   --the evidence no benign explanation accounts for, against the attacks, strongest first:
//!       reroute (the path moved), insertion (a device's delay on one fiber), tap (a loss step in a
//!       span of one fiber, or a handling burst on one fiber alone)
//! ```
//!
//! Each function returns an [`Assessment`]: whether it holds, what it accounts for, and the
//! evidence for and against it in words an analyst can check against the plots.

use cablewatch_proto::{
    context::ContextRecord,
    topology::{Cable, FIBER_DELAY_US_PER_KM},
};

use super::{Class, FusionConfig};
use crate::detect::{Evidence, EvidenceKind, Gap};

const MINUTE: i64 = 60_000_000_000;
const HOUR: i64 = 60 * MINUTE;

/// What a finding is checked in: its evidence, everything else the run saw, and the cable.
pub(super) struct Scene<'a> {
    /// The finding's evidence.
    pub group: &'a [Evidence],
    /// Every piece of evidence of the run.
    pub all: &'a [Evidence],
    /// The cable, when the topology has it.
    pub cable: Option<&'a Cable>,
    /// Context records on this cable.
    pub records: Vec<&'a ContextRecord>,
    /// Reporting gaps of the run.
    pub gaps: &'a [Gap],
    /// Fiber pair of the finding.
    pub fiber_pair: u32,
    /// Direction of the finding.
    pub direction: &'a str,
    /// Settings.
    pub config: &'a FusionConfig,
}

/// One explanation checked against a finding.
#[derive(Debug, Clone)]
pub(super) struct Assessment {
    /// What was checked.
    pub name: &'static str,
    /// The class it gives a finding it explains.
    pub class: Class,
    /// An attack (decides the class of what no benign explanation accounts for).
    pub malicious: bool,
    /// The record or signature that supports it, when one does.
    pub found: Option<String>,
    /// Which of the finding's evidence it accounts for.
    pub covers: Vec<bool>,
    /// Observations that speak for it.
    pub evidence_for: Vec<String>,
    /// Observations that speak against it.
    pub evidence_against: Vec<String>,
    /// Why not, when nothing supports it.
    pub none: String,
}

impl Assessment {
    fn new(name: &'static str, class: Class, n: usize) -> Self {
        Self {
            name,
            class,
            malicious: false,
            found: None,
            covers: vec![false; n],
            evidence_for: Vec::new(),
            evidence_against: Vec::new(),
            none: String::new(),
        }
    }

    /// Whether it holds: something supports it and it accounts for some evidence.
    pub(super) fn supported(&self) -> bool {
        self.found.is_some() && self.covers.iter().any(|&c| c)
    }
}

fn ns(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(0)
}

fn meets(e: &Evidence, a: i64, b: i64) -> bool {
    e.start_ns <= b && e.end_ns >= a
}

/// Who else burst within `within` of a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct BurstScope {
    /// Fibers of the burst's own cable (itself included).
    pub(super) own: usize,
    /// Fibers in all.
    pub(super) fibers: usize,
    /// Cables.
    pub(super) cables: usize,
    /// Fiber pairs of the burst's own cable.
    pub(super) pairs: usize,
}

impl BurstScope {
    /// Something that moves a whole cable: three or more of its fibers at once, or two of
    /// different pairs. An earthquake or a trawler moves every fiber of the cable (on a noisy
    /// plant only some of them clear their burst level); a hand at a patch panel the pair's two, a
    /// tapper one. Other cables bursting meanwhile do not make a lone fiber's burst environmental (a
    /// trawler on one cable and a tap on another can meet in a quarter of an hour).
    pub(super) fn shared(self) -> bool {
        self.own >= 3 || (self.own >= 2 && self.pairs >= 2)
    }
}

/// Fibers and cables that burst within `within` of `e`.
pub(super) fn burst_scope(all: &[Evidence], e: &Evidence, within: i64) -> BurstScope {
    let together: Vec<&Evidence> = all
        .iter()
        .filter(|o| {
            o.kind == EvidenceKind::SopBurst
                && o.start_ns <= e.end_ns + within
                && o.end_ns + within >= e.start_ns
        })
        .collect();
    let fibers: std::collections::BTreeSet<(&str, u32, &str)> = together
        .iter()
        .map(|o| (o.cable.as_str(), o.fiber_pair, o.direction.as_str()))
        .collect();
    let cables: std::collections::BTreeSet<&str> = together.iter().map(|o| o.cable.as_str()).collect();
    let own: Vec<&(&str, u32, &str)> = fibers.iter().filter(|f| f.0 == e.cable).collect();
    let pairs: std::collections::BTreeSet<u32> = own.iter().map(|f| f.1).collect();
    BurstScope {
        own: own.len(),
        fibers: fibers.len(),
        cables: cables.len(),
        pairs: pairs.len(),
    }
}

/// Whether a burst is shared by its cable's fibers (see [`BurstScope::shared`]).
pub(super) fn shared(scope: BurstScope) -> bool {
    scope.shared()
}

/// True when a delay shift has an opposite partner in the other direction of the same fiber pair
/// at the same time: a station clock, not the fiber.
pub(super) fn clock_like(all: &[Evidence], e: &Evidence, within: i64) -> bool {
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

impl Scene<'_> {
    fn n(&self) -> usize {
        self.group.len()
    }

    fn span_km(&self, span: u32) -> Option<(f64, f64)> {
        self.cable?
            .spans()
            .get((span as usize).wrapping_sub(1))
            .map(|s| (s.start_km, s.end_km))
    }

    /// Applies `covers_one` with every record to every piece of evidence: the first record that
    /// accounts for something is the one named.
    fn by_records(
        &self,
        a: &mut Assessment,
        covers_one: impl Fn(&ContextRecord, &Evidence) -> bool,
        describe: impl Fn(&ContextRecord) -> String,
    ) {
        a.covers = self
            .group
            .iter()
            .map(|e| self.records.iter().any(|r| covers_one(r, e)))
            .collect();
        a.found = self
            .records
            .iter()
            .find(|r| self.group.iter().any(|e| covers_one(r, e)))
            .map(|r| describe(r));
    }
}

/// Planned work at a station: outages, bursts, Q and power steps and path changes on the listed
/// fiber pairs; delay shifts that come with a path change or are terminal-sized (below an
/// insertion); loss only in the span that lands at that station.
pub(super) fn maintenance(s: &Scene<'_>) -> Assessment {
    let mut a = Assessment::new("planned maintenance", Class::Maintenance, s.n());
    let last_span = s.cable.map_or(0, |c| c.spans().len() as u32);
    let path_changed = s.group.iter().any(|e| e.kind == EvidenceKind::PathChange);
    s.by_records(
        &mut a,
        |r, e| match r {
            ContextRecord::Maintenance(m) => {
                let station_span = |span: u32| match &m.station {
                    Some(st) if s.cable.is_some_and(|c| c.a_station == *st) => span == 1,
                    Some(st) if s.cable.is_some_and(|c| c.b_station == *st) => span == last_span,
                    _ => span == 1 || span == last_span,
                };
                // A step shows at the first sample after it: allow one PM bin or sweep.
                meets(e, ns(m.start), ns(m.end) + 30 * MINUTE)
                    && (m.fiber_pairs.is_empty() || m.fiber_pairs.contains(&s.fiber_pair))
                    && (e.kind != EvidenceKind::LossStep || e.span.is_none_or(station_span))
                    && (e.kind != EvidenceKind::DelayShift
                        || path_changed
                        || e.magnitude.abs() < s.config.insertion_us)
                    && e.kind != EvidenceKind::Ageing
            }
            _ => false,
        },
        |r| match r {
            ContextRecord::Maintenance(m) => format!("{} ({}) {} to {}", m.id, m.description, m.start, m.end),
            _ => String::new(),
        },
    );
    a.none = "no change-calendar entry on this cable and fiber pair overlaps".into();
    if a.found.is_some() {
        for e in s
            .group
            .iter()
            .zip(&a.covers)
            .filter(|(_, c)| !**c)
            .map(|(e, _)| e)
        {
            match e.kind {
                EvidenceKind::LossStep => a.evidence_against.push(format!(
                    "the loss step is in span {}, not at the station being worked on",
                    e.span.map_or("?".into(), |v| v.to_string())
                )),
                EvidenceKind::DelayShift => a.evidence_against.push(format!(
                    "{:+.1} us of delay without a path change is more than terminal work adds",
                    e.magnitude
                )),
                _ => {}
            }
        }
    }
    a
}

/// A repair: the outage while it lasts, the traffic on another path meanwhile and its return, the
/// new splice loss in the span of the fault, the added slack (delay on every pair, or the ticket's
/// added length), bursts while the ship works.
pub(super) fn repair(s: &Scene<'_>) -> Assessment {
    let mut a = Assessment::new("cable repair", Class::Repair, s.n());
    s.by_records(
        &mut a,
        |r, e| match r {
            ContextRecord::Repair(m) => {
                let (from, to) = (ns(m.start) - HOUR, ns(m.end) + 6 * HOUR);
                let in_span = |span: u32| {
                    s.span_km(span)
                        .is_some_and(|(x, y)| (x..=y).contains(&m.fault_km))
                };
                meets(e, from, to)
                    && (m.fiber_pairs.is_empty() || m.fiber_pairs.contains(&s.fiber_pair))
                    && match e.kind {
                        EvidenceKind::LossStep => e.span.is_none_or(in_span),
                        // Traffic moved to a protection path while the cable was cut, and back
                        // (a move between two other paths meanwhile is not the repair's).
                        EvidenceKind::PathChange => e.magnitude.abs() <= 1.0,
                        EvidenceKind::DelayShift if e.magnitude.abs() >= s.config.reroute_us => {
                            s.group.iter().any(|p| {
                                p.kind == EvidenceKind::PathChange
                                    && p.magnitude.abs() <= 1.0
                                    // Probes every few minutes, reduced to blocks: within two hours.
                                    && (p.start_ns - e.start_ns).abs() <= 2 * HOUR
                            }) || (e.start_ns - ns(m.start)).abs() <= HOUR
                                || (e.start_ns - ns(m.end)).abs() <= 6 * HOUR
                        }
                        EvidenceKind::DelayShift => match m.added_km {
                            Some(km) => {
                                let expected = km * FIBER_DELAY_US_PER_KM;
                                (e.magnitude - expected).abs() <= (0.1 * expected).max(2.0)
                            }
                            None => e.magnitude > 0.0 && e.magnitude <= 100.0,
                        },
                        EvidenceKind::Ageing => false,
                        _ => true,
                    }
            }
            _ => false,
        },
        |r| match r {
            ContextRecord::Repair(m) => format!("{} at {:.1} km, {} to {}", m.id, m.fault_km, m.start, m.end),
            _ => String::new(),
        },
    );
    a.none = "no repair ticket on this cable and fiber pair around this time".into();
    if a.found.is_some() {
        for e in s
            .group
            .iter()
            .zip(&a.covers)
            .filter(|(_, c)| !**c)
            .map(|(e, _)| e)
        {
            if e.kind == EvidenceKind::LossStep {
                a.evidence_against.push(format!(
                    "the loss step is in span {}, not the span of the repaired fault",
                    e.span.map_or("?".into(), |v| v.to_string())
                ));
            }
        }
    }
    a
}

/// Earthquakes move polarization; they do not add loss or delay.
pub(super) fn earthquake(s: &Scene<'_>) -> Assessment {
    let mut a = Assessment::new("earthquake", Class::Environmental, s.n());
    s.by_records(
        &mut a,
        |r, e| match r {
            ContextRecord::Seismic(m) => {
                e.kind == EvidenceKind::SopBurst && (e.start_ns - ns(m.time)).abs() <= 30 * MINUTE
            }
            _ => false,
        },
        |r| match r {
            ContextRecord::Seismic(m) => format!("{} M{:.1} at {}", m.id, m.magnitude, m.time),
            _ => String::new(),
        },
    );
    a.none = "no catalogued earthquake listing this cable within 30 minutes of a burst".into();
    a
}

/// A vessel over the cable: its contact moves polarization while it passes.
pub(super) fn vessel(s: &Scene<'_>) -> Assessment {
    let mut a = Assessment::new("vessel contact", Class::Environmental, s.n());
    s.by_records(
        &mut a,
        |r, e| match r {
            ContextRecord::Vessel(m) => e.kind == EvidenceKind::SopBurst && meets(e, ns(m.start), ns(m.end)),
            _ => false,
        },
        |r| match r {
            ContextRecord::Vessel(m) => format!(
                "{} ({}) over {:.0}-{:.0} km",
                m.id, m.vessel_type, m.km_from, m.km_to
            ),
            _ => String::new(),
        },
    );
    a.none = "no AIS track over the cable during a burst".into();
    a
}

/// How far apart in time the loss steps of one damage may be placed on different fibers (each
/// fiber's step is placed at its own sweeps, and a faint one later).
const DAMAGE_SLACK_NS: i64 = 12 * HOUR;

/// The evidence of other fibers of `e`'s cable that lost light in `span` (where `lost_light_at`
/// says a piece of evidence lost it) within [`DAMAGE_SLACK_NS`] of `e`, the steps' placements
/// allowed for.
fn others_losing_light<'a>(
    all: &'a [Evidence],
    e: &'a Evidence,
    span: u32,
    lost_light_at: impl Fn(&Evidence) -> Option<u32> + 'a,
) -> impl Iterator<Item = &'a Evidence> + 'a {
    all.iter().filter(move |o| {
        o.cable == e.cable
            && (o.fiber_pair, o.direction.as_str()) != (e.fiber_pair, e.direction.as_str())
            && lost_light_at(o) == Some(span)
            && may_be_within(e, o, DAMAGE_SLACK_NS)
    })
}

/// Whether `a` and `b` may have happened within `slack` of each other, where each may be in the
/// times it was placed between (see [`Evidence::placed_within`]).
fn may_be_within(a: &Evidence, b: &Evidence, slack: i64) -> bool {
    let ((a0, a1), (b0, b1)) = (a.placed_within(), b.placed_within());
    a0 - slack <= b1 && b0 - slack <= a1
}

/// Where a loss step lost light: its span.
fn loss_step_span(e: &Evidence) -> Option<u32> {
    (e.kind == EvidenceKind::LossStep && e.magnitude < 0.0)
        .then_some(e.span)
        .flatten()
}

/// Whether loss step `e` is one of three or more fibers of its cable losing light in the same span
/// within [`DAMAGE_SLACK_NS`] (and the steps' placements): damage to the cable, not to one fiber.
fn cable_wide_loss(all: &[Evidence], e: &Evidence) -> bool {
    let Some(span) = e.span else { return false };
    let others: std::collections::BTreeSet<(u32, &str)> = others_losing_light(all, e, span, loss_step_span)
        .map(|o| (o.fiber_pair, o.direction.as_str()))
        .collect();
    others.len() >= 2
}

/// Cable damage: a trawler, an anchor or a landslide strains the whole cable, so every fiber pair
/// loses light in the same span at the same time, logged or not. A tap is on one fiber.
pub(super) fn cable_damage(s: &Scene<'_>) -> Assessment {
    let mut a = Assessment::new(
        "cable damage (every fiber of the cable loses light in the same span)",
        Class::CableDamage,
        s.n(),
    );
    // Where a fiber lost light: the span of its loss step, or, for a drop in the power it
    // receives, the shore span before its receiving station (line monitoring does not see that
    // span in that direction; no repeater after it restores the power).
    let receiving_span = |direction: &str| match (direction, s.cable) {
        (cablewatch_proto::tables::DIRECTION_A_TO_B, Some(c)) => Some(c.repeaters() + 1),
        (cablewatch_proto::tables::DIRECTION_B_TO_A, Some(_)) => Some(1),
        _ => None,
    };
    let lost_light_at = |e: &Evidence| -> Option<u32> {
        match e.kind {
            EvidenceKind::PowerStep if e.magnitude < 0.0 => receiving_span(&e.direction),
            _ => loss_step_span(e),
        }
    };
    // How many fibers can show a loss in `span` at all.
    let able = |span: u32| {
        s.cable.map_or(usize::MAX, |c| {
            ["a_to_b", "b_to_a"]
                .iter()
                .filter(|d| c.repeater_covering(d, span).is_some() || receiving_span(d) == Some(span))
                .count()
                * c.fiber_pairs as usize
        })
    };
    let mut best: Option<(u32, Vec<String>)> = None;
    for (i, e) in s.group.iter().enumerate() {
        let Some(span) = lost_light_at(e) else {
            continue;
        };
        let others: Vec<String> = others_losing_light(s.all, e, span, lost_light_at)
            .map(|o| {
                format!(
                    "fiber pair {} {} {:.3} dB{}",
                    o.fiber_pair,
                    o.direction,
                    -o.magnitude,
                    if o.kind == EvidenceKind::PowerStep {
                        " (received power)"
                    } else {
                        ""
                    }
                )
            })
            .collect();
        let others: Vec<String> = {
            let mut v = others;
            v.sort();
            v.dedup();
            v
        };
        // Two other fibers losing light in the same span within hours (or every other fiber that
        // could show it, on a small cable): independent false steps (a budget of 0.1 per
        // cable-month each) do not meet like that.
        // Or one other, in a span on the shelf, hours after something moved the whole cable: the
        // contact of a trawler or an anchor (on a noisy plant not every fiber's step clears its
        // threshold).
        let shallow = s.cable.is_some_and(|c| {
            s.span_km(span)
                .and_then(|(a, b)| c.depth_at_km((a + b) / 2.0))
                .is_some_and(|d| d < 1000.0)
        });
        let contact = s.all.iter().any(|o| {
            o.kind == EvidenceKind::SopBurst
                && o.cable == e.cable
                && o.start_ns <= e.placed_within().1
                && o.start_ns >= e.placed_within().0 - 24 * HOUR
                && shared(burst_scope(s.all, o, s.config.simultaneous_ns))
        });
        if others.len() >= 2
            || (!others.is_empty() && others.len() + 1 >= able(span))
            || (others.len() == 1 && shallow && contact)
        {
            a.covers[i] = true;
            if best.as_ref().is_none_or(|b| b.1.len() < others.len()) {
                best = Some((span, others));
            }
        }
    }
    match best {
        Some((span, others)) => {
            a.found = Some(format!(
                "{} other fibers of the cable lost light in span {span} within {} h",
                others.len(),
                DAMAGE_SLACK_NS / HOUR
            ));
            a.evidence_for
                .push(format!("loss steps in span {span} on {}", others.join(", ")));
            // The contact that caused it: a burst shared by the cable's fibers in the day before.
            let first = s.group.iter().map(|e| e.start_ns).min().unwrap_or(0);
            if let Some(contact) = s.all.iter().find(|o| {
                o.kind == EvidenceKind::SopBurst
                    && o.cable == s.group[0].cable
                    && o.start_ns <= first
                    && o.start_ns >= first - 24 * HOUR
                    && shared(burst_scope(s.all, o, s.config.simultaneous_ns))
            }) {
                a.evidence_for.push(format!(
                    "an SOP burst on the cable's fibers at {} (the contact)",
                    cablewatch_proto::time::format_ns(contact.start_ns)
                ));
            }
            for (i, e) in s.group.iter().enumerate() {
                if e.kind == EvidenceKind::SopBurst && shared(burst_scope(s.all, e, s.config.simultaneous_ns))
                {
                    a.covers[i] = true;
                }
            }
        }
        None => {
            a.none = if s.group.iter().any(|e| e.kind == EvidenceKind::LossStep) {
                "no other fiber of the cable lost light in the same span at the same time".into()
            } else {
                "no loss step".into()
            };
        }
    }
    a
}

/// Many fibers or cables at once: weather, an earthquake or a storm, not a hand on one fiber.
pub(super) fn environment(s: &Scene<'_>) -> Assessment {
    let mut a = Assessment::new(
        "many fibers or cables at once (environment)",
        Class::Environmental,
        s.n(),
    );
    let scopes: Vec<Option<BurstScope>> = s
        .group
        .iter()
        .map(|e| (e.kind == EvidenceKind::SopBurst).then(|| burst_scope(s.all, e, s.config.simultaneous_ns)))
        .collect();
    a.covers = scopes.iter().map(|sc| sc.is_some_and(shared)).collect();
    a.found = scopes.iter().flatten().filter(|sc| sc.shared()).max().map(|sc| {
        format!(
            "SOP bursts on {} fibers of this cable ({} of {} cables in all) within 20 minutes",
            sc.own, sc.fibers, sc.cables
        )
    });
    a.none = match scopes.iter().flatten().max() {
        Some(sc) => format!(
            "burst on {} fiber(s) of this cable only ({} of {} cable(s) in all)",
            sc.own, sc.fibers, sc.cables
        ),
        None => "no SOP burst".into(),
    };
    a
}

/// Work at a landing station on one fiber pair: both of its fibers are handled together at the
/// patch panel (a burst on the pair's two directions at once and nowhere else), and the power
/// received there may step; no span loses light.
pub(super) fn station_work(s: &Scene<'_>) -> Assessment {
    let mut a = Assessment::new(
        "station work on this fiber pair (both fibers handled at once, no loss in any span)",
        Class::Equipment,
        s.n(),
    );
    let within = s.config.simultaneous_ns;
    // A loss in a span of this fiber near the burst speaks for a tap, unless two other fibers of
    // the cable lost light in that span too (the cable was damaged meanwhile: not this fiber's),
    // or another burst of this fiber is nearer to it (handling of its own).
    let on_this_fiber = |o: &Evidence| {
        o.cable == s.group[0].cable && o.fiber_pair == s.fiber_pair && o.direction == s.direction
    };
    let loss_nearby = |t: i64| {
        s.all.iter().any(|o| {
            o.kind == EvidenceKind::LossStep
                && on_this_fiber(o)
                && (o.start_ns - t).abs() <= DAMAGE_SLACK_NS
                && !cable_wide_loss(s.all, o)
                && !s.all.iter().any(|b| {
                    b.kind == EvidenceKind::SopBurst
                        && on_this_fiber(b)
                        && (b.start_ns - o.start_ns).abs() < (t - o.start_ns).abs()
                })
        })
    };
    for (i, e) in s.group.iter().enumerate() {
        if e.kind != EvidenceKind::SopBurst || loss_nearby(e.start_ns) {
            continue;
        }
        // The pair's other fiber moved at once too: it burst, or the power it brings in stepped.
        let of_partner = |kind: EvidenceKind| {
            s.all.iter().find(|o| {
                o.cable == e.cable
                    && o.fiber_pair == e.fiber_pair
                    && o.direction != e.direction
                    && o.kind == kind
                    && match kind {
                        EvidenceKind::SopBurst => {
                            o.start_ns <= e.end_ns + within && o.end_ns + within >= e.start_ns
                        }
                        _ => (o.start_ns - e.end_ns).abs() <= HOUR,
                    }
            })
        };
        let partner_burst = of_partner(EvidenceKind::SopBurst);
        let partner = partner_burst.or_else(|| of_partner(EvidenceKind::PowerStep));
        // No fiber of the cable burst but the pair's (its partner's burst counted when it has one).
        let only_the_pair = burst_scope(s.all, e, within).own == 1 + usize::from(partner_burst.is_some());
        if let Some(p) = partner
            && only_the_pair
        {
            a.covers[i] = true;
            a.found = Some(format!(
                "both fibers of pair {} moved at once ({} burst {:.1} krad/s, {} {} {:+.2}) and no other fiber of the cable",
                e.fiber_pair,
                e.direction,
                e.magnitude,
                p.direction,
                if p.kind == EvidenceKind::SopBurst {
                    "burst"
                } else {
                    "received power stepped"
                },
                p.magnitude
            ));
            a.evidence_for
                .push("no loss step in any monitored span of this fiber within 12 hours".into());
        }
    }
    if a.found.is_some() {
        let t = s.group.iter().map(|e| e.start_ns).min().unwrap_or(0);
        for (i, e) in s.group.iter().enumerate() {
            if matches!(e.kind, EvidenceKind::PowerStep | EvidenceKind::QStep)
                && (e.start_ns - t).abs() <= 2 * HOUR
            {
                a.covers[i] = true;
                a.evidence_for.push(format!(
                    "{} {:+.3} {} at the receiving station",
                    if e.kind == EvidenceKind::PowerStep {
                        "received power stepped"
                    } else {
                        "Q stepped"
                    },
                    e.magnitude,
                    e.unit
                ));
            }
        }
    }
    a.none = if s.group.iter().any(|e| e.kind == EvidenceKind::SopBurst) {
        "the burst is not on both fibers of the pair alone, or a span lost light with it".into()
    } else {
        "no SOP burst".into()
    };
    a
}

/// A repeater's pump ageing: a slow straight decline at one repeater.
pub(super) fn ageing(s: &Scene<'_>) -> Assessment {
    let mut a = Assessment::new(
        "repeater pump ageing (slow decline at one repeater)",
        Class::Equipment,
        s.n(),
    );
    a.covers = s.group.iter().map(|e| e.kind == EvidenceKind::Ageing).collect();
    a.found = s
        .group
        .iter()
        .find(|e| e.kind == EvidenceKind::Ageing)
        .map(|e| e.detail.clone());
    a.none = "no steady decline; the change is a step".into();
    a
}

/// A station's clock or terminal: opposite delay shifts in the two directions, or the same shift
/// on every fiber pair.
pub(super) fn clock(s: &Scene<'_>) -> Assessment {
    let mut a = Assessment::new(
        "station clock or terminal (opposite shifts in the two directions, or one shift on every fiber pair)",
        Class::Equipment,
        s.n(),
    );
    a.covers = s
        .group
        .iter()
        .map(|e| {
            e.kind == EvidenceKind::StationShift
                || (e.kind == EvidenceKind::DelayShift && clock_like(s.all, e, s.config.simultaneous_ns))
        })
        .collect();
    a.found = match s.group.iter().find(|e| e.kind == EvidenceKind::StationShift) {
        Some(e) => Some(format!(
            "{:+.1} us shared by the cable's other fiber pairs in this direction at once",
            e.magnitude
        )),
        None => a
            .covers
            .iter()
            .any(|&c| c)
            .then(|| "delay shifts in both directions cancel in the round trip".to_owned()),
    };
    a.none = "no opposite shift in the other direction, no shift shared by every fiber pair".into();
    a
}

/// The end of a reroute: the path goes back to the fiber's usual one and the delay with it.
pub(super) fn end_of_reroute(s: &Scene<'_>) -> Assessment {
    let mut a = Assessment::new(
        "return to the usual path (end of a reroute)",
        Class::Reroute,
        s.n(),
    );
    let back = s
        .group
        .iter()
        .any(|e| e.kind == EvidenceKind::PathChange && e.magnitude < 0.0)
        && !s
            .group
            .iter()
            .any(|e| e.kind == EvidenceKind::PathChange && e.magnitude > 0.0);
    a.found = back.then(|| "the path changed back to the fiber's usual one".to_owned());
    a.covers = s
        .group
        .iter()
        .map(|e| {
            back && (e.kind == EvidenceKind::PathChange
                || (e.kind == EvidenceKind::DelayShift && e.magnitude.abs() >= s.config.reroute_us))
        })
        .collect();
    a.none = "no path change back to the usual path".into();
    a
}

/// One transponder failing: one channel's Q drops while the fiber's others do not.
pub(super) fn channel_fault(s: &Scene<'_>) -> Assessment {
    let mut a = Assessment::new("single-channel equipment fault", Class::Equipment, s.n());
    a.covers = s
        .group
        .iter()
        .map(|e| e.kind == EvidenceKind::ChannelFault)
        .collect();
    a.found = s
        .group
        .iter()
        .find(|e| e.kind == EvidenceKind::ChannelFault)
        .map(|e| e.detail.clone());
    let fiber_wide = s
        .group
        .iter()
        .any(|e| matches!(e.kind, EvidenceKind::LossStep | EvidenceKind::QStep));
    a.none = if fiber_wide {
        "the change is fiber-wide (loop-back gain or median Q of all channels)".into()
    } else {
        "not a single-channel signature".into()
    };
    a
}

/// The data around the evidence: a step placed at the edge of a reporting gap compares values
/// across the gap. Said so the analyst checks; it never explains evidence away (an attacker may
/// work while a station is silent).
pub(super) fn data_quality(s: &Scene<'_>) -> Assessment {
    let mut a = Assessment::new(
        "data quality (evidence at the edge of a reporting gap)",
        Class::UnexplainedOther,
        s.n(),
    );
    let cable = s.group[0].cable.as_str();
    let near: Vec<&Gap> = s
        .gaps
        .iter()
        .filter(|g| g.cable == cable && g.direction == s.direction)
        .filter(|g| {
            s.group.iter().any(|e| {
                matches!(
                    e.kind,
                    EvidenceKind::LossStep
                        | EvidenceKind::QStep
                        | EvidenceKind::DelayShift
                        | EvidenceKind::PowerStep
                ) && (e.start_ns - g.end_ns).abs() <= HOUR
            })
        })
        .collect();
    if let Some(g) = near.first() {
        a.evidence_for.push(format!(
            "{} {} sent nothing from {} to {} ({}): the step is measured across that gap",
            g.cable, g.direction, g.start, g.end, g.cause
        ));
    }
    a.none = if near.is_empty() {
        "no reporting gap of this cable and direction within an hour of a step".into()
    } else {
        "a reporting gap is next to the evidence: check the rows before and after it".into()
    };
    a
}

/// Every benign explanation, in the order they are applied (the first that accounts for a piece of
/// evidence is the one that explains it).
pub(super) fn benign(s: &Scene<'_>) -> Vec<Assessment> {
    vec![
        maintenance(s),
        repair(s),
        earthquake(s),
        vessel(s),
        cable_damage(s),
        environment(s),
        station_work(s),
        ageing(s),
        clock(s),
        end_of_reroute(s),
        channel_fault(s),
        data_quality(s),
    ]
}

/// The unexplained evidence, `left[i]` true for the finding's evidence no benign explanation
/// accounts for.
fn unexplained<'a>(s: &'a Scene<'_>, left: &'a [bool]) -> impl Iterator<Item = (usize, &'a Evidence)> + 'a {
    s.group.iter().enumerate().filter(move |(i, _)| left[*i])
}

/// A reroute: the fiber's path changed away from its usual one, or its delay moved by
/// milliseconds, with no record of planned work.
pub(super) fn reroute(s: &Scene<'_>, left: &[bool]) -> Assessment {
    let mut a = Assessment::new("reroute (traffic moved to another path)", Class::Reroute, s.n());
    a.malicious = true;
    for (i, e) in unexplained(s, left) {
        let path = e.kind == EvidenceKind::PathChange;
        let far = e.kind == EvidenceKind::DelayShift
            && e.magnitude.abs() >= s.config.reroute_us
            && !clock_like(s.all, e, s.config.simultaneous_ns);
        if path || far {
            a.covers[i] = true;
            a.evidence_for.push(if path {
                e.detail.clone()
            } else {
                format!(
                    "delay {:+.0} us, more than any device adds: another route",
                    e.magnitude
                )
            });
        }
    }
    if a.covers.iter().any(|&c| c) {
        a.found =
            Some("the path or its delay moved, and no change-calendar entry or repair covers it".into());
    }
    a.none = "no path change, no millisecond delay shift left unexplained".into();
    a
}

/// A device inserted in the fiber (an O-E-O regenerator or a mirror): tens to a hundred and more
/// microseconds of delay on this fiber alone, usually after a loss of signal. Its splices may cost
/// loss too; the delay decides, a loss step beside it does not make it a tap.
pub(super) fn insertion(s: &Scene<'_>, left: &[bool]) -> Assessment {
    let mut a = Assessment::new(
        "device inserted (delay on this fiber alone)",
        Class::InsertionLike,
        s.n(),
    );
    a.malicious = true;
    let mut delay = None;
    for (i, e) in unexplained(s, left) {
        if e.kind == EvidenceKind::DelayShift
            && e.magnitude >= s.config.insertion_us
            && e.magnitude < s.config.reroute_us
            && !clock_like(s.all, e, s.config.simultaneous_ns)
        {
            a.covers[i] = true;
            delay = Some(e.magnitude);
            a.evidence_for.push(format!(
                "{:+.1} us of delay on this fiber only (an O-E-O device adds about 100 us)",
                e.magnitude
            ));
        }
    }
    if delay.is_some() {
        a.found = Some("a delay step the size of an inserted device".into());
        for (i, e) in unexplained(s, left) {
            match e.kind {
                EvidenceKind::Outage => {
                    a.covers[i] = true;
                    a.evidence_for.push(format!(
                        "loss of signal for {:.0} min before it (the fiber cut to insert)",
                        e.magnitude
                    ));
                }
                EvidenceKind::LossStep if e.magnitude < 0.0 => {
                    a.covers[i] = true;
                    a.evidence_for.push(format!(
                        "{:.3} dB more loss in span {} (the device's splices)",
                        -e.magnitude,
                        e.span.map_or("?".into(), |v| v.to_string())
                    ));
                }
                EvidenceKind::SopBurst | EvidenceKind::QStep | EvidenceKind::PowerStep => a.covers[i] = true,
                _ => {}
            }
        }
        if !s.group.iter().any(|e| e.kind == EvidenceKind::Outage) {
            a.evidence_against
                .push("no loss of signal before the delay step (inserting a device cuts the fiber)".into());
        }
    }
    a.none = "no delay step of 15 to 300 us on this fiber alone".into();
    a
}

/// A tap: a loss step inside one span of this fiber alone, or the burst of a fiber being handled
/// with nothing else behind it.
pub(super) fn tap(s: &Scene<'_>, left: &[bool]) -> Assessment {
    let mut a = Assessment::new(
        "tap (loss in one span of this fiber, or handling of it)",
        Class::TapLike,
        s.n(),
    );
    a.malicious = true;
    let outage = unexplained(s, left).any(|(_, e)| e.kind == EvidenceKind::Outage);
    // A loss of signal on this fiber, even one a repair explains: a repair adds the same length of
    // cable to every fiber (a delay shift of the whole cable, split off as the station's), so a few
    // microseconds more on this fiber alone after it are a splice of its own.
    let cut = s.group.iter().any(|e| e.kind == EvidenceKind::Outage);
    for (i, e) in unexplained(s, left) {
        match e.kind {
            EvidenceKind::LossStep if e.magnitude < 0.0 => {
                a.covers[i] = true;
                a.evidence_for.push(format!(
                    "{:.3} dB loss step in span {} of this fiber ({:.1} sigma)",
                    -e.magnitude,
                    e.span.map_or("?".into(), |v| v.to_string()),
                    e.sigmas
                ));
            }
            EvidenceKind::SopBurst if !shared(burst_scope(s.all, e, s.config.simultaneous_ns)) => {
                a.covers[i] = true;
                a.evidence_for.push(format!(
                    "SOP burst {:.0} krad/s on this fiber alone (handling)",
                    e.magnitude
                ));
            }
            // A fiber cut and spliced again: a few microseconds more (the splitter's pigtails).
            EvidenceKind::DelayShift
                if cut
                    && e.magnitude > 0.0
                    && e.magnitude < s.config.insertion_us
                    && !clock_like(s.all, e, s.config.simultaneous_ns) =>
            {
                a.covers[i] = true;
                a.evidence_for.push(format!(
                    "{:+.1} us of delay after a loss of signal on this fiber alone: cut and spliced again",
                    e.magnitude
                ));
            }
            _ => {}
        }
    }
    // Loss in the shore span before the receiving station, which line monitoring does not see in
    // this direction: the power received drops with it (no repeater after it restores it).
    let handled_alone = a
        .covers
        .iter()
        .zip(s.group)
        .any(|(c, e)| *c && e.kind == EvidenceKind::SopBurst);
    for (i, e) in unexplained(s, left) {
        if e.kind == EvidenceKind::PowerStep && e.magnitude < 0.0 && (handled_alone || outage) {
            a.covers[i] = true;
            a.evidence_for.push(format!(
                "the power received dropped {:.3} dB with the handling: loss in the shore span before the receiving station, which line monitoring does not see in this direction",
                -e.magnitude
            ));
        }
    }
    let loss = a.covers.iter().zip(s.group).any(|(c, e)| {
        *c && matches!(
            e.kind,
            EvidenceKind::LossStep | EvidenceKind::PowerStep | EvidenceKind::DelayShift
        )
    });
    let burst = a
        .covers
        .iter()
        .zip(s.group)
        .any(|(c, e)| *c && e.kind == EvidenceKind::SopBurst);
    if loss || (burst && !outage) {
        a.found = Some(if loss {
            "light lost inside one span of this fiber".into()
        } else {
            "this fiber alone was handled".into()
        });
        for (i, e) in unexplained(s, left) {
            if matches!(e.kind, EvidenceKind::QStep | EvidenceKind::Outage) {
                a.covers[i] = true;
            }
        }
        if !loss {
            a.evidence_against
                .push("no loss step in any monitored span (yet): a tap costs some light".into());
        }
        if !burst {
            a.evidence_against
                .push("no SOP burst on this fiber: fitting a tap moves the fiber".into());
        }
    } else {
        a.covers = vec![false; s.n()];
    }
    a.none = "no loss step in a span of this fiber and no burst on it alone left unexplained".into();
    a
}

/// The attacks, strongest first: the first that holds decides the class of what is left.
pub(super) fn malicious(s: &Scene<'_>, left: &[bool]) -> Vec<Assessment> {
    vec![reroute(s, left), insertion(s, left), tap(s, left)]
}

#[cfg(test)]
mod tests {
    //! One test per hypothesis: what it holds for, and the look-alike it must not take.

    use cablewatch_proto::{
        CableId,
        context::{Repair, Seismic, VesselPass},
        topology::Topology,
    };

    use super::*;

    const T: i64 = 1_790_000_000_000_000_000;

    fn topology() -> Topology {
        // One 310 km cable, 4 repeaters (5 spans), 2 fiber pairs.
        Topology::from_toml_file(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../testdata/topology-tiny.toml"
        )))
        .unwrap()
    }

    fn ev(
        kind: EvidenceKind,
        fp: u32,
        dir: &str,
        minutes: i64,
        magnitude: f64,
        span: Option<u32>,
    ) -> Evidence {
        Evidence {
            kind,
            cable: "tiny-1".into(),
            direction: dir.into(),
            fiber_pair: fp,
            span,
            start_ns: T + minutes * MINUTE,
            end_ns: T + minutes * MINUTE,
            magnitude,
            unit: String::new(),
            sigmas: 8.0,
            detected_ns: T + minutes * MINUTE,
            placed_within_ns: None,
            threshold: 0.0,
            detail: format!("{kind:?}"),
        }
    }

    /// Checks `check` on the finding made of `group` (all on the first piece's fiber), with `others`
    /// elsewhere in the run and `records` on the cable.
    fn assess(
        check: impl Fn(&Scene<'_>) -> Assessment,
        group: &[Evidence],
        others: &[Evidence],
        records: &[ContextRecord],
    ) -> Assessment {
        let topology = topology();
        let all: Vec<Evidence> = group.iter().chain(others).cloned().collect();
        let config = FusionConfig::default();
        let scene = Scene {
            group,
            all: &all,
            cable: topology.cable("tiny-1"),
            records: records.iter().collect(),
            gaps: &[],
            fiber_pair: group[0].fiber_pair,
            direction: &group[0].direction,
            config: &config,
        };
        check(&scene)
    }

    fn attack(check: fn(&Scene<'_>, &[bool]) -> Assessment) -> impl Fn(&Scene<'_>) -> Assessment {
        move |s| check(s, &vec![true; s.group.len()])
    }

    fn utc(minutes: i64) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::<chrono::Utc>::from_timestamp_nanos(T + minutes * MINUTE)
    }

    fn cable() -> CableId {
        CableId::try_new("tiny-1").unwrap()
    }

    #[test]
    fn cable_damage_is_every_fiber_losing_light_in_one_span() {
        // Span 3 is seen by repeater 3 going A to B and repeater 2 going B to A: all four fibers.
        let step = |fp, dir, m| ev(EvidenceKind::LossStep, fp, dir, m, -0.2, Some(3));
        let others = [
            step(1, "b_to_a", 60),
            step(2, "a_to_b", 120),
            step(2, "b_to_a", 90),
        ];
        let a = assess(cable_damage, &[step(1, "a_to_b", 0)], &others, &[]);
        assert!(a.supported() && a.covers[0], "{a:?}");
        assert!(a.evidence_for[0].contains("span 3"), "{a:?}");
        // A tap: one fiber alone.
        let a = assess(cable_damage, &[step(1, "a_to_b", 0)], &[], &[]);
        assert!(!a.supported(), "{a:?}");
        // Span 1 only A to B sees (repeater 1); B to A it is the shore span before the receiving
        // station, where the loss shows in the power received.
        let shore = [
            ev(EvidenceKind::LossStep, 2, "a_to_b", 30, -0.2, Some(1)),
            ev(EvidenceKind::PowerStep, 1, "b_to_a", 10, -0.2, None),
            ev(EvidenceKind::PowerStep, 2, "b_to_a", 10, -0.2, None),
        ];
        let a = assess(
            cable_damage,
            &[ev(EvidenceKind::LossStep, 1, "a_to_b", 0, -0.2, Some(1))],
            &shore,
            &[],
        );
        assert!(a.supported(), "{a:?}");
    }

    #[test]
    fn station_work_is_both_fibers_of_a_pair_and_no_span() {
        let burst = |fp, dir| ev(EvidenceKind::SopBurst, fp, dir, 0, 8.0, None);
        let a = assess(station_work, &[burst(1, "a_to_b")], &[burst(1, "b_to_a")], &[]);
        assert!(a.supported(), "{a:?}");
        // The partner's received power instead of its burst.
        let power = ev(EvidenceKind::PowerStep, 1, "b_to_a", 15, -0.5, None);
        let a = assess(
            station_work,
            &[burst(1, "a_to_b")],
            std::slice::from_ref(&power),
            &[],
        );
        assert!(a.supported(), "{a:?}");
        // One fiber alone: handling of that fiber, not of the pair at a patch panel.
        let a = assess(station_work, &[burst(1, "a_to_b")], &[], &[]);
        assert!(!a.supported(), "{a:?}");
        // Loss in a span of the fiber at the same time: not station work.
        let loss = ev(EvidenceKind::LossStep, 1, "a_to_b", 30, -0.1, Some(2));
        let a = assess(
            station_work,
            &[burst(1, "a_to_b")],
            &[burst(1, "b_to_a"), loss.clone()],
            &[],
        );
        assert!(!a.supported(), "{a:?}");
        // The partner both burst and brought in less power (whichever is listed first).
        let a = assess(
            station_work,
            &[burst(1, "a_to_b")],
            &[power.clone(), burst(1, "b_to_a")],
            &[],
        );
        assert!(a.supported(), "{a:?}");
        // The same loss, but two other fibers lost light in that span meanwhile: the cable was
        // damaged, and the pair's burst is still the station's.
        let a = assess(
            station_work,
            &[burst(1, "a_to_b")],
            &[
                burst(1, "b_to_a"),
                loss.clone(),
                ev(EvidenceKind::LossStep, 2, "a_to_b", 40, -0.1, Some(2)),
                ev(EvidenceKind::LossStep, 3, "a_to_b", 50, -0.1, Some(2)),
            ],
            &[],
        );
        assert!(a.supported(), "{a:?}");
        // A loss hours later that came with a burst of its own (a tap after the work).
        let a = assess(
            station_work,
            &[burst(1, "a_to_b")],
            &[
                burst(1, "b_to_a"),
                ev(EvidenceKind::SopBurst, 1, "a_to_b", 440, 80.0, None),
                ev(EvidenceKind::LossStep, 1, "a_to_b", 445, -0.8, Some(2)),
            ],
            &[],
        );
        assert!(a.supported(), "{a:?}");
    }

    #[test]
    fn a_tap_is_loss_in_a_span_or_handling_of_one_fiber() {
        let burst = ev(EvidenceKind::SopBurst, 1, "a_to_b", 0, 40.0, None);
        let loss = ev(EvidenceKind::LossStep, 1, "a_to_b", 30, -0.06, Some(2));
        let a = assess(attack(tap), &[burst.clone(), loss.clone()], &[], &[]);
        assert!(a.supported() && a.covers.iter().all(|&c| c), "{a:?}");
        assert!(a.evidence_against.is_empty(), "{a:?}");
        // A burst shared by the cable's fibers is the environment's, not a tap's.
        let shared: Vec<Evidence> = [(1, "b_to_a"), (2, "a_to_b"), (2, "b_to_a")]
            .iter()
            .map(|&(fp, d)| ev(EvidenceKind::SopBurst, fp, d, 0, 40.0, None))
            .collect();
        let a = assess(attack(tap), std::slice::from_ref(&burst), &shared, &[]);
        assert!(!a.supported(), "{a:?}");
        // Spliced in: a loss of signal, then a few microseconds more.
        let splice = [
            ev(EvidenceKind::Outage, 1, "a_to_b", 0, 45.0, None),
            ev(EvidenceKind::DelayShift, 1, "a_to_b", 50, 4.0, None),
        ];
        let a = assess(attack(tap), &splice, &[], &[]);
        assert!(a.supported(), "{a:?}");
        // The same while a repair explains the loss of signal: the fiber's own microseconds are
        // still a splice (the repair's added cable lengthens every fiber alike).
        let scene_left = [false, true];
        let a = assess(move |s| tap(s, &scene_left), &splice, &[], &[]);
        assert!(a.supported() && a.covers[1], "{a:?}");
        // In the shore span before the receiving station: the power received drops with the handling.
        let shore = [burst, ev(EvidenceKind::PowerStep, 1, "a_to_b", 15, -0.08, None)];
        let a = assess(attack(tap), &shore, &[], &[]);
        assert!(a.supported() && a.covers[1], "{a:?}");
    }

    #[test]
    fn an_insertion_is_its_delay_whatever_loss_comes_with_it() {
        let group = [
            ev(EvidenceKind::Outage, 2, "b_to_a", 0, 60.0, None),
            ev(EvidenceKind::DelayShift, 2, "b_to_a", 65, 110.0, None),
            ev(EvidenceKind::LossStep, 2, "b_to_a", 70, -0.2, Some(3)),
        ];
        let a = assess(attack(insertion), &group, &[], &[]);
        assert!(a.supported() && a.covers.iter().all(|&c| c), "{a:?}");
        // A clock: the other direction moved the opposite way at once.
        let clock = ev(EvidenceKind::DelayShift, 2, "a_to_b", 65, -110.0, None);
        let a = assess(attack(insertion), &group[1..2], &[clock], &[]);
        assert!(!a.supported(), "{a:?}");
        // Milliseconds are a route, not a device.
        let far = ev(EvidenceKind::DelayShift, 2, "b_to_a", 0, 2500.0, None);
        assert!(!assess(attack(insertion), std::slice::from_ref(&far), &[], &[]).supported());
        assert!(assess(attack(reroute), &[far], &[], &[]).supported());
    }

    #[test]
    fn a_repair_explains_its_protection_path_not_a_detour_meanwhile() {
        let ticket = ContextRecord::Repair(Repair {
            id: "REP-1".into(),
            cable: cable(),
            fault_km: 150.0,
            start: utc(0),
            end: utc(3 * 24 * 60),
            fiber_pairs: vec![],
            added_km: Some(3.0),
            description: String::new(),
        });
        let mut away = ev(EvidenceKind::PathChange, 1, "a_to_b", 1, 1.0, None);
        away.detail = "path p -> p/alt".into();
        let moved = [away, ev(EvidenceKind::DelayShift, 1, "a_to_b", 1, 3000.0, None)];
        let a = assess(repair, &moved, &[], std::slice::from_ref(&ticket));
        assert!(a.supported() && a.covers.iter().all(|&c| c), "{a:?}");
        // A move from the protection path to yet another one, a day into the repair.
        let detour = [
            ev(EvidenceKind::PathChange, 1, "a_to_b", 24 * 60, 2.0, None),
            ev(EvidenceKind::DelayShift, 1, "a_to_b", 24 * 60, 1800.0, None),
        ];
        let a = assess(repair, &detour, &[], std::slice::from_ref(&ticket));
        assert!(a.covers.iter().all(|&c| !c), "{a:?}");
        assert!(assess(attack(reroute), &detour, &[], &[]).supported());
    }

    #[test]
    fn records_explain_bursts_in_their_time_and_nothing_else() {
        let quake = ContextRecord::Seismic(Seismic {
            id: "us7000".into(),
            time: utc(0),
            latitude: 0.0,
            longitude: 0.0,
            depth_km: 10.0,
            magnitude: 6.4,
            cables: vec![cable()],
        });
        let burst = ev(EvidenceKind::SopBurst, 1, "a_to_b", 10, 9.0, None);
        let loss = ev(EvidenceKind::LossStep, 1, "a_to_b", 10, -0.1, Some(2));
        let a = assess(
            earthquake,
            &[burst.clone(), loss.clone()],
            &[],
            std::slice::from_ref(&quake),
        );
        assert_eq!(a.covers, vec![true, false], "{a:?}");
        let late = ev(EvidenceKind::SopBurst, 1, "a_to_b", 120, 9.0, None);
        assert!(!assess(earthquake, &[late], &[], &[quake]).supported());
        let pass = ContextRecord::Vessel(VesselPass {
            id: "AIS-1".into(),
            cable: cable(),
            start: utc(0),
            end: utc(30),
            km_from: 10.0,
            km_to: 14.0,
            mmsi: None,
            vessel_type: "fishing".into(),
        });
        let a = assess(vessel, &[burst, loss], &[], &[pass]);
        assert_eq!(a.covers, vec![true, false], "{a:?}");
    }

    #[test]
    fn many_fibers_of_one_cable_are_the_environment() {
        let burst = |fp, dir| ev(EvidenceKind::SopBurst, fp, dir, 0, 9.0, None);
        let others = [burst(1, "b_to_a"), burst(2, "a_to_b")];
        assert!(assess(environment, &[burst(1, "a_to_b")], &others, &[]).supported());
        // Two fibers: a pair at a patch panel; another cable bursting meanwhile does not count.
        let mut elsewhere = burst(1, "a_to_b");
        elsewhere.cable = "other-9".into();
        let a = assess(
            environment,
            &[burst(1, "a_to_b")],
            &[burst(1, "b_to_a"), elsewhere],
            &[],
        );
        assert!(!a.supported(), "{a:?}");
    }

    #[test]
    fn equipment_signatures_account_for_their_own_evidence() {
        let decline = ev(EvidenceKind::Ageing, 2, "a_to_b", 0, -0.006, Some(4));
        let a = assess(ageing, &[decline], &[], &[]);
        assert!(a.supported(), "{a:?}");
        let fault = ev(EvidenceKind::ChannelFault, 2, "a_to_b", 0, -1.2, None);
        let step = ev(EvidenceKind::LossStep, 2, "a_to_b", 0, -0.1, Some(2));
        let a = assess(channel_fault, &[fault, step], &[], &[]);
        assert_eq!(a.covers, vec![true, false], "{a:?}");
        let shift = ev(EvidenceKind::DelayShift, 1, "a_to_b", 0, 500.0, None);
        let opposite = ev(EvidenceKind::DelayShift, 1, "b_to_a", 5, -500.0, None);
        assert!(assess(clock, std::slice::from_ref(&shift), &[opposite], &[]).supported());
        assert!(!assess(clock, &[shift], &[], &[]).supported());
        let mut back = ev(EvidenceKind::PathChange, 1, "a_to_b", 0, -1.0, None);
        back.detail = "path p/alt -> p (back to the usual path)".into();
        assert!(assess(end_of_reroute, &[back], &[], &[]).supported());
    }

    #[test]
    fn data_quality_names_a_gap_next_to_a_step_and_explains_nothing() {
        let topology = topology();
        let step = [ev(EvidenceKind::LossStep, 1, "a_to_b", 0, -0.1, Some(2))];
        let gap = Gap {
            cable: "tiny-1".into(),
            direction: "a_to_b".into(),
            start_ns: T - 3 * HOUR,
            end_ns: T - MINUTE,
            start: String::new(),
            end: String::new(),
            cause: "station not reporting".into(),
            ongoing: false,
        };
        let config = FusionConfig::default();
        let gaps = [gap];
        let scene = Scene {
            group: &step,
            all: &step,
            cable: topology.cable("tiny-1"),
            records: vec![],
            gaps: &gaps,
            fiber_pair: 1,
            direction: "a_to_b",
            config: &config,
        };
        let a = data_quality(&scene);
        assert!(!a.evidence_for.is_empty() && !a.supported(), "{a:?}");
        assert!(a.covers.iter().all(|&c| !c));
    }
}
