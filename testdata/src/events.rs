//! Injected events: what happens to the plant during a scenario, benign or malicious, and the ground
//! truth and operator records they leave.
//!
//! A scenario asks for events by kind and count (`[events]`, placed at random by the seed) or lists
//! them exactly (`[[event]]`). [`plan`] turns both into concrete [`Event`]s; [`truth`] writes them all
//! to `truth.json`; [`context_records`] writes only what a real operator would have in its change
//! calendar, repair tickets, seismic catalogue and AIS tracks: unlogged events stay unlogged.

use std::collections::BTreeMap;

use cablewatch_proto::{
    CableId, StationId,
    context::{ContextRecord, Maintenance, Repair, Seismic, VesselPass},
    tables::{DIRECTION_A_TO_B, DIRECTION_B_TO_A},
    time::{NANOS_PER_DAY, format_ns},
    topology::{Cable, Topology},
};
use chrono::{DateTime, Utc};
use rand::{RngExt, rngs::StdRng};
use serde::{Deserialize, Serialize};

use crate::{SimError, plant::rng_for};

const MINUTE: i64 = 60_000_000_000;
const HOUR: i64 = 60 * MINUTE;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Clip-on / macro-bend tap: SOP burst while fitting, then a persistent loss step in one span of
    /// one fiber, flat or rising with wavelength. Malicious.
    ClipOnTap,
    /// Fiber cut and a splitter spliced in: loss of signal, then a loss step and a few us of delay.
    /// Malicious.
    SpliceTap,
    /// Optical-electrical-optical device inserted: loss of signal, then about +100 us. Malicious.
    ActiveInsertion,
    /// Traffic moved to another path with nobody logging why. Malicious.
    UnexplainedReroute,
    /// Planned work at a landing station: short outage, power steps, SOP transients. Logged.
    Maintenance,
    /// Cable fault and repair: outage for days, then new splice loss and added length. Logged.
    Repair,
    /// Earthquake: SOP bursts on many channels, both directions, several cables. In the catalogue.
    Earthquake,
    /// Trawler or anchor over a shallow span: SOP burst on the whole cable. Sometimes in AIS records.
    VesselContact,
    /// Planned traffic reroute: millisecond latency step with a path change. Sometimes logged.
    Reroute,
    /// One transponder degrading: Q drop on a single channel. Not logged.
    TransponderFault,
    /// One repeater's pump ageing: slow monotone decline of its loop-back gain. Not logged.
    AmplifierAgeing,
    /// A station's reporting stops for hours: missing rows. Not logged.
    DataGap,
    /// A station's clock runs off (lost PTP/NTP) for hours: its timestamps shift, and one-way delays
    /// it measures or sends are biased by the skew, oppositely in the two directions. Not logged.
    ClockSkew,
    /// A trawler or anchor drags the cable and damages it: an SOP burst on the whole cable at the
    /// contact, then hours later a loss step on every fiber pair in the same shallow span. Sometimes
    /// in AIS records.
    VesselDamage,
    /// Unlogged work at a landing station on one fiber pair (a patch cord re-seated, a transponder
    /// swapped): an SOP burst on both fibers of the pair, and a step in the power received there; no
    /// loss in any span.
    StationWork,
}

impl EventKind {
    /// True for the kinds an attacker causes.
    pub fn malicious(self) -> bool {
        matches!(
            self,
            EventKind::ClipOnTap
                | EventKind::SpliceTap
                | EventKind::ActiveInsertion
                | EventKind::UnexplainedReroute
        )
    }

    /// Every kind, in a fixed order.
    pub const ALL: [EventKind; 15] = [
        EventKind::ClipOnTap,
        EventKind::SpliceTap,
        EventKind::ActiveInsertion,
        EventKind::UnexplainedReroute,
        EventKind::Maintenance,
        EventKind::Repair,
        EventKind::Earthquake,
        EventKind::VesselContact,
        EventKind::Reroute,
        EventKind::TransponderFault,
        EventKind::AmplifierAgeing,
        EventKind::DataGap,
        EventKind::ClockSkew,
        EventKind::VesselDamage,
        EventKind::StationWork,
    ];
}

/// One injected event, as recorded in `truth.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// `E0001`, ...
    pub id: String,
    /// What happened.
    pub kind: EventKind,
    /// Caused by an attacker.
    pub malicious: bool,
    /// Present in the operator's context records.
    pub logged: bool,
    /// Start, RFC 3339 (for people; `start_ns` is the value).
    #[serde(default)]
    pub start: String,
    /// End, RFC 3339.
    #[serde(default)]
    pub end: String,
    /// Start, ns since the epoch.
    pub start_ns: i64,
    /// End of the disturbance (the step itself persists after it for taps, repairs, insertions), ns.
    pub end_ns: i64,
    /// Affected cables (several for an earthquake).
    pub cables: Vec<CableId>,
    /// Affected fiber pair; `None` means all.
    pub fiber_pair: Option<u32>,
    /// Affected direction (`a_to_b`, `b_to_a`); `None` means both.
    pub direction: Option<String>,
    /// Affected span (1-based), where the event is inside one.
    pub span: Option<u32>,
    /// Position, km from the A end, where known.
    pub km: Option<f64>,
    /// Affected channel, for a single-channel fault.
    pub channel: Option<u32>,
    /// Affected station, for maintenance and data gaps.
    pub station: Option<StationId>,
    /// Size of the effect, in `unit`.
    pub magnitude: f64,
    /// Unit of `magnitude`: `dB`, `us`, `krad/s`, `dB/day`, `h`, `Mw`.
    pub unit: String,
    /// Loss growth with wavelength for bend taps, dB of extra loss per nm above 1550 nm, as a fraction
    /// of the magnitude (0 for a flat splitter).
    #[serde(default)]
    pub wavelength_slope: f64,
    /// Extra delay after the event, us (splice-in taps, insertions, repairs, reroutes).
    #[serde(default)]
    pub delay_us: f64,
    /// Outage (loss of signal) before the persistent effect, ns.
    #[serde(default)]
    pub outage_ns: i64,
    /// Peak SOP rate of change of the accompanying burst, krad/s; 0 when none.
    #[serde(default)]
    pub sop_peak_krad_s: f64,
    /// Persistent loss added in `span` after the event besides `magnitude`, dB: an insertion's
    /// splices.
    #[serde(default)]
    pub loss_db: f64,
    /// Extra delay while the traffic runs on another path during the event, us: a repair moves it.
    #[serde(default)]
    pub reroute_us: f64,
}

impl Event {
    /// Whether the event touches `cable`, fiber pair `fp` and direction `dir` (0 = A to B).
    pub fn touches(&self, cable: &CableId, fp: u32, dir: u8) -> bool {
        self.cables.contains(cable)
            && self.fiber_pair.is_none_or(|f| f == fp)
            && self
                .direction
                .as_deref()
                .is_none_or(|d| d == direction_label(dir))
    }
}

/// Stored label of direction index `dir` (0 = A to B).
pub fn direction_label(dir: u8) -> &'static str {
    if dir == 0 {
        DIRECTION_A_TO_B
    } else {
        DIRECTION_B_TO_A
    }
}

/// An event listed explicitly in a scenario file; unset fields are drawn like random ones.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedEvent {
    /// What happens.
    pub kind: EventKind,
    /// Cable (the first of several for an earthquake).
    pub cable: CableId,
    /// When it starts.
    pub start: DateTime<Utc>,
    /// Fiber pair.
    #[serde(default)]
    pub fiber_pair: Option<u32>,
    /// `a_to_b` or `b_to_a`.
    #[serde(default)]
    pub direction: Option<String>,
    /// Span, 1-based.
    #[serde(default)]
    pub span: Option<u32>,
    /// Channel, for a transponder fault.
    #[serde(default)]
    pub channel: Option<u32>,
    /// Size, in the kind's unit.
    #[serde(default)]
    pub magnitude: Option<f64>,
    /// Whether the operator logged it.
    #[serde(default)]
    pub logged: Option<bool>,
    /// Whether a bend tap's loss rises with wavelength.
    #[serde(default)]
    pub bend: Option<bool>,
    /// How long it lasts, hours (a repair's or insertion's outage, a reroute, a fault); drawn like a
    /// random one's when unset. Not for amplifier ageing, which lasts to the end.
    #[serde(default)]
    pub duration_h: Option<f64>,
    /// Peak SOP rate of its burst, krad/s, for kinds that burst; drawn when unset.
    #[serde(default)]
    pub sop_peak_krad_s: Option<f64>,
}

/// Events a scenario asks for: counts by kind placed at random, and explicit ones.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// How many of each kind to place at random.
    #[serde(default)]
    pub counts: BTreeMap<EventKind, u32>,
    /// Magnitude range per kind, in the kind's unit, drawn log-uniformly, in place of the kind's
    /// own range (`[events.magnitude] clip_on_tap = [0.02, 0.1]` for faint taps).
    #[serde(default)]
    pub magnitude: BTreeMap<EventKind, [f64; 2]>,
    /// Events placed exactly.
    #[serde(default)]
    pub fixed: Vec<FixedEvent>,
}

/// Where and when events may fall.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Scenario start, ns.
    pub start_ns: i64,
    /// Scenario end, ns.
    pub end_ns: i64,
}

fn pick<T: Clone>(rng: &mut StdRng, items: &[T]) -> T {
    items[rng.random_range(0..items.len())].clone()
}

/// A uniform draw from `lo..hi`.
pub(crate) fn uniform(rng: &mut StdRng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

/// Log-uniform draw: as many small magnitudes as large ones per decade.
fn log_uniform(rng: &mut StdRng, lo: f64, hi: f64) -> f64 {
    (lo.ln() + (hi.ln() - lo.ln()) * rng.random::<f64>()).exp()
}

/// Builds the concrete events of a scenario, deterministically from `seed`.
pub fn plan(
    topology: &Topology,
    window: Window,
    config: &EventsConfig,
    seed: u64,
) -> Result<Vec<Event>, SimError> {
    let mut rng = rng_for(seed, &[100]);
    let mut events = Vec::new();
    let span_ns = window.end_ns - window.start_ns;
    for (kind, &[lo, hi]) in &config.magnitude {
        if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && lo <= hi) {
            return Err(SimError::Scenario {
                origin: "[events.magnitude]".into(),
                reason: format!("{kind:?}: [{lo}, {hi}] is not a range of positive magnitudes"),
            });
        }
    }
    for (&kind, &count) in &config.counts {
        for _ in 0..count {
            // Leave a tenth of the window before and after, so every event has a baseline around it.
            let start =
                window.start_ns + span_ns / 10 + (rng.random::<f64>() * (span_ns as f64) * 0.8) as i64;
            let cable = pick(&mut rng, &topology.cables);
            let range = config.magnitude.get(&kind).copied();
            events.push(draw(&mut rng, topology, &cable, kind, start, None, range)?);
        }
    }
    for f in &config.fixed {
        let cable = topology
            .cable(f.cable.as_str())
            .ok_or_else(|| SimError::Scenario {
                origin: "[[events.fixed]]".into(),
                reason: format!("unknown cable {}", f.cable),
            })?;
        let start = f.start.timestamp_nanos_opt().unwrap_or(window.start_ns);
        events.push(draw(&mut rng, topology, cable, f.kind, start, Some(f), None)?);
    }
    events.sort_by_key(|e| (e.start_ns, e.kind));
    for (i, e) in events.iter_mut().enumerate() {
        e.id = format!("E{:04}", i + 1);
        if e.kind == EventKind::AmplifierAgeing {
            // Ageing goes on past the scenario; the truth says it lasted to the end.
            e.end_ns = e.end_ns.min(window.end_ns);
        }
        e.start = format_ns(e.start_ns);
        e.end = format_ns(e.end_ns);
    }
    Ok(events)
}

fn draw(
    rng: &mut StdRng,
    topology: &Topology,
    cable: &Cable,
    kind: EventKind,
    start: i64,
    fixed: Option<&FixedEvent>,
    range: Option<[f64; 2]>,
) -> Result<Event, SimError> {
    let spans = cable.spans();
    let fp = fixed
        .and_then(|f| f.fiber_pair)
        .unwrap_or_else(|| rng.random_range(1..=cable.fiber_pairs));
    let dir = fixed
        .and_then(|f| f.direction.clone())
        .unwrap_or_else(|| direction_label(rng.random_range(0..2)).to_owned());
    let bad = |reason: String| SimError::Scenario {
        origin: "[[events.fixed]]".into(),
        reason,
    };
    if dir != DIRECTION_A_TO_B && dir != DIRECTION_B_TO_A {
        return Err(bad(format!("direction {dir:?} is not a_to_b or b_to_a")));
    }
    let mut span = fixed
        .and_then(|f| f.span)
        .unwrap_or_else(|| rng.random_range(1..=spans.len() as u32));
    if matches!(kind, EventKind::VesselContact | EventKind::VesselDamage)
        && fixed.and_then(|f| f.span).is_none()
    {
        // Trawlers and anchors reach the cable only on the shelf.
        let shallow: Vec<u32> = spans
            .iter()
            .filter(|s| {
                cable
                    .depth_at_km((s.start_km + s.end_km) / 2.0)
                    .is_some_and(|d| d < 1000.0)
            })
            .map(|s| s.index)
            .collect();
        if !shallow.is_empty() {
            span = pick(rng, &shallow);
        }
    }
    if span == 0 || span as usize > spans.len() {
        return Err(bad(format!(
            "span {span} is not on {} (1..={})",
            cable.id,
            spans.len()
        )));
    }
    let s = spans[span as usize - 1];
    let km = uniform(rng, s.start_km, s.end_km);
    let ranged = range.map(|[lo, hi]| log_uniform(rng, lo, hi));
    let magnitude = fixed.and_then(|f| f.magnitude).or(ranged);
    let logged_default = match kind {
        EventKind::Maintenance | EventKind::Repair | EventKind::Earthquake => true,
        EventKind::VesselContact | EventKind::VesselDamage | EventKind::Reroute => rng.random::<f64>() < 0.5,
        _ => false,
    };
    let logged = fixed.and_then(|f| f.logged).unwrap_or(logged_default) && !kind.malicious();
    let mut e = Event {
        id: String::new(),
        start: String::new(),
        end: String::new(),
        kind,
        malicious: kind.malicious(),
        logged,
        start_ns: start,
        end_ns: start,
        cables: vec![cable.id.clone()],
        fiber_pair: Some(fp),
        direction: Some(dir),
        span: Some(span),
        km: Some(km),
        channel: None,
        station: None,
        magnitude: 0.0,
        unit: "dB".into(),
        wavelength_slope: 0.0,
        delay_us: 0.0,
        outage_ns: 0,
        sop_peak_krad_s: 0.0,
        loss_db: 0.0,
        reroute_us: 0.0,
    };
    match kind {
        EventKind::ClipOnTap => {
            e.magnitude = magnitude.unwrap_or_else(|| log_uniform(rng, 0.02, 1.0));
            let bend = fixed
                .and_then(|f| f.bend)
                .unwrap_or_else(|| rng.random::<f64>() < 0.5);
            // Bend loss grows with wavelength: +2 %/nm puts the red end of the C band ~1.7x the blue.
            e.wavelength_slope = if bend { 0.02 } else { 0.0 };
            e.end_ns = start + rng.random_range(1..=10) * MINUTE;
            // Fitting moves the fiber: tens of krad/s and more for most, a careful hand barely a
            // few (below what a fiber's own tail and handling floor let through).
            e.sop_peak_krad_s = log_uniform(rng, 1.0, 400.0);
        }
        EventKind::SpliceTap => {
            e.magnitude = magnitude.unwrap_or_else(|| log_uniform(rng, 0.1, 1.0) + 0.06);
            e.outage_ns = rng.random_range(20..=240) * MINUTE;
            e.end_ns = start + e.outage_ns;
            e.delay_us = uniform(rng, 1.0, 10.0);
            e.sop_peak_krad_s = log_uniform(rng, 100.0, 1000.0);
        }
        EventKind::ActiveInsertion => {
            e.delay_us = magnitude.unwrap_or_else(|| uniform(rng, 20.0, 150.0));
            e.magnitude = e.delay_us;
            e.unit = "us".into();
            e.outage_ns = rng.random_range(20..=180) * MINUTE;
            e.end_ns = start + e.outage_ns;
            e.sop_peak_krad_s = log_uniform(rng, 100.0, 1000.0);
            // The device is spliced in: two splices and its connectors cost loss in the span too.
            e.loss_db = uniform(rng, 0.03, 0.3);
        }
        EventKind::UnexplainedReroute | EventKind::Reroute => {
            e.delay_us = magnitude.unwrap_or_else(|| uniform(rng, 500.0, 8000.0));
            e.magnitude = e.delay_us;
            e.unit = "us".into();
            e.fiber_pair = Some(fp);
            e.direction = None;
            e.span = None;
            e.km = None;
            e.end_ns = start + rng.random_range(2..=72) * HOUR;
        }
        EventKind::Maintenance => {
            let station = if rng.random::<bool>() {
                &cable.a_station
            } else {
                &cable.b_station
            };
            e.station = Some(station.clone());
            e.direction = None;
            e.span = None;
            e.km = Some(if *station == cable.a_station {
                0.0
            } else {
                cable.length_km
            });
            e.magnitude = magnitude.unwrap_or_else(|| uniform(rng, 0.1, 0.8));
            e.outage_ns = rng.random_range(2..=30) * MINUTE;
            e.end_ns = start + rng.random_range(1..=4) * HOUR;
            e.sop_peak_krad_s = uniform(rng, 2.0, 20.0);
        }
        EventKind::Repair => {
            e.fiber_pair = None;
            e.direction = None;
            e.magnitude = magnitude.unwrap_or_else(|| uniform(rng, 0.1, 0.4));
            e.outage_ns = rng.random_range(2..=10) * NANOS_PER_DAY;
            e.end_ns = start + e.outage_ns;
            // Slack of at least twice the water depth, plus some.
            let depth_km = cable.depth_at_km(km).unwrap_or(3000.0) / 1000.0;
            let added_km = 2.0 * depth_km + uniform(rng, 0.5, 3.0);
            e.delay_us = added_km * cablewatch_proto::topology::FIBER_DELAY_US_PER_KM;
            e.sop_peak_krad_s = uniform(rng, 20.0, 200.0);
            // While the cable is cut the traffic (and the probes) run on a protection path.
            e.reroute_us = uniform(rng, 500.0, 5000.0);
        }
        EventKind::Earthquake => {
            e.fiber_pair = None;
            e.direction = None;
            e.span = None;
            // Several cables at once: every cable (the example plant's cables share an ocean).
            e.cables = topology.cables.iter().map(|c| c.id.clone()).collect();
            e.magnitude = magnitude.unwrap_or_else(|| uniform(rng, 5.0, 7.5));
            e.unit = "Mw".into();
            e.sop_peak_krad_s = uniform(rng, 3.0, 30.0);
            e.end_ns = start + rng.random_range(3..=15) * MINUTE;
        }
        EventKind::VesselContact => {
            e.fiber_pair = None;
            e.direction = None;
            e.sop_peak_krad_s = magnitude.unwrap_or_else(|| log_uniform(rng, 10.0, 200.0));
            e.magnitude = e.sop_peak_krad_s;
            e.unit = "krad/s".into();
            e.end_ns = start + rng.random_range(2..=30) * MINUTE;
        }
        EventKind::VesselDamage => {
            // Contact at the start (a burst on the whole cable); the damage shows as a loss step on
            // every fiber in the span at the end, hours later, as the strained fiber gives.
            e.fiber_pair = None;
            e.direction = None;
            e.magnitude = magnitude.unwrap_or_else(|| log_uniform(rng, 0.05, 0.5));
            e.sop_peak_krad_s = log_uniform(rng, 10.0, 200.0);
            e.end_ns = start + (uniform(rng, 0.5, 12.0) * HOUR as f64) as i64;
        }
        EventKind::StationWork => {
            let station = if rng.random::<bool>() {
                &cable.a_station
            } else {
                &cable.b_station
            };
            e.station = Some(station.clone());
            e.direction = None;
            e.span = None;
            e.km = Some(if *station == cable.a_station {
                0.0
            } else {
                cable.length_km
            });
            // Change of the power received at that station, dB (a loss, or a gain when a dirty
            // connector is cleaned).
            e.magnitude = magnitude.unwrap_or_else(|| {
                let size = uniform(rng, 0.1, 1.0);
                if rng.random::<f64>() < 0.75 {
                    -size
                } else {
                    size / 3.0
                }
            });
            e.sop_peak_krad_s = log_uniform(rng, 2.0, 30.0);
            e.end_ns = start + rng.random_range(1..=10) * MINUTE;
        }
        EventKind::TransponderFault => {
            e.channel = Some(
                fixed
                    .and_then(|f| f.channel)
                    .unwrap_or_else(|| rng.random_range(1..=cable.channel_plan.channels)),
            );
            e.span = None;
            e.km = None;
            e.magnitude = magnitude.unwrap_or_else(|| uniform(rng, 0.5, 3.0));
            e.end_ns = start + rng.random_range(6..=96) * HOUR;
        }
        EventKind::AmplifierAgeing => {
            e.magnitude = magnitude.unwrap_or_else(|| uniform(rng, 0.002, 0.01));
            e.unit = "dB/day".into();
            // A repeater ages; its loop-back shows it as the span that feeds it in this direction.
            let d = e.direction.clone().unwrap_or_default();
            let repeater = match cable.repeater_covering(&d, span) {
                Some(r) => r,
                None if fixed.and_then(|f| f.span).is_some() => {
                    return Err(bad(format!(
                        "amplifier_ageing: no repeater of {} covers span {span} in {d}",
                        cable.id
                    )));
                }
                None => rng.random_range(1..=cable.repeaters().max(1)),
            };
            e.span = cable.span_covered_by(&d, repeater);
            e.km = cable.repeater_km.get(repeater as usize - 1).copied();
            e.end_ns = i64::MAX / 2;
        }
        EventKind::ClockSkew => {
            at_station(rng, topology, cable, &mut e);
            let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
            e.magnitude = match (fixed.and_then(|f| f.magnitude), ranged) {
                (Some(m), _) => m,
                (None, Some(r)) => sign * r,
                (None, None) => sign * log_uniform(rng, 10.0, 2000.0),
            };
            e.unit = "us".into();
            e.end_ns = start + rng.random_range(1..=24) * HOUR;
        }
        EventKind::DataGap => {
            at_station(rng, topology, cable, &mut e);
            let hours = magnitude.unwrap_or_else(|| uniform(rng, 1.0, 8.0));
            e.magnitude = hours;
            e.unit = "h".into();
            e.end_ns = start + (hours * HOUR as f64) as i64;
        }
    }
    if let Some(peak) = fixed.and_then(|f| f.sop_peak_krad_s) {
        if !(peak.is_finite() && peak > 0.0) || e.sop_peak_krad_s == 0.0 {
            return Err(bad(format!(
                "sop_peak_krad_s {peak} for {kind:?}: a positive peak, for a kind that bursts"
            )));
        }
        e.sop_peak_krad_s = peak;
        if kind == EventKind::VesselContact {
            e.magnitude = peak;
        }
    }
    // A fixed duration replaces the drawn one after every draw, so the rest of the scenario stays
    // as the seed made it. Where the event is an outage from start to end, the outage follows.
    if let Some(hours) = fixed.and_then(|f| f.duration_h) {
        if kind == EventKind::AmplifierAgeing || !(hours.is_finite() && hours > 0.0) {
            return Err(bad(format!(
                "duration_h {hours} is not a positive number of hours for {kind:?}"
            )));
        }
        let duration = (hours * HOUR as f64) as i64;
        if e.outage_ns > 0 && e.outage_ns == e.end_ns - start {
            e.outage_ns = duration;
        }
        e.end_ns = start + duration;
    }
    Ok(e)
}

/// Scopes `e` to one landing station of `cable`, drawn at random, and every cable that lands there.
fn at_station(rng: &mut StdRng, topology: &Topology, cable: &Cable, e: &mut Event) {
    let station = if rng.random::<bool>() {
        &cable.a_station
    } else {
        &cable.b_station
    };
    e.station = Some(station.clone());
    e.cables = topology
        .cables_at(station.as_str())
        .map(|c| c.id.clone())
        .collect();
    e.fiber_pair = None;
    e.direction = None;
    e.span = None;
    e.km = None;
}

/// The ground truth document written as `truth.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    /// Scenario name.
    pub scenario: String,
    /// Seed used.
    pub seed: u64,
    /// Scenario start, RFC 3339.
    pub start: String,
    /// Scenario end, RFC 3339.
    pub end: String,
    /// The physics and noise drawn for the seed (absent in truth files of older versions).
    #[serde(default)]
    pub physics: Option<crate::physics::Physics>,
    /// Every injected event.
    pub events: Vec<Event>,
}

/// The truth document of a simulation: its scenario's name and window, its seed, physics and
/// events.
pub fn truth(sim: &crate::generate::Simulation<'_>) -> Truth {
    let window = sim.scenario.window();
    Truth {
        scenario: sim.scenario.name.clone(),
        seed: sim.seed,
        start: format_ns(window.start_ns),
        end: format_ns(window.end_ns),
        physics: Some(sim.physics),
        events: sim.events.clone(),
    }
}

fn utc(ns: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_nanos(ns)
}

/// The operator's records of the logged events: what cablewatch's analyzer gets as context.
pub fn context_records(topology: &Topology, events: &[Event]) -> Vec<ContextRecord> {
    let mut out = Vec::new();
    for (n, e) in events.iter().enumerate().filter(|(_, e)| e.logged) {
        let Some(cable) = e.cables.first() else { continue };
        let record = match e.kind {
            EventKind::Maintenance | EventKind::Reroute => ContextRecord::Maintenance(Maintenance {
                id: format!("CHG-{}", 1000 + n),
                cable: cable.clone(),
                start: utc(e.start_ns - 10 * MINUTE),
                end: utc(e.end_ns + 10 * MINUTE),
                fiber_pairs: e.fiber_pair.into_iter().collect(),
                station: e.station.clone(),
                description: if e.kind == EventKind::Reroute {
                    "traffic moved to protection path".into()
                } else {
                    "terminal equipment work".into()
                },
            }),
            EventKind::Repair => ContextRecord::Repair(Repair {
                id: format!("REP-{}", 100 + n),
                cable: cable.clone(),
                fault_km: e.km.unwrap_or_default(),
                start: utc(e.start_ns),
                end: utc(e.end_ns),
                fiber_pairs: vec![],
                added_km: Some(e.delay_us / cablewatch_proto::topology::FIBER_DELAY_US_PER_KM),
                description: "cable fault located and repaired by cable ship".into(),
            }),
            EventKind::Earthquake => {
                let c = topology.cable(cable.as_str());
                let (lat, lon) = c
                    .and_then(|c| topology.station(c.a_station.as_str()))
                    .map_or((0.0, 0.0), |s| (s.latitude, s.longitude));
                ContextRecord::Seismic(Seismic {
                    id: format!("sim{:06}", n),
                    time: utc(e.start_ns),
                    latitude: (lat - 3.0).clamp(-90.0, 90.0),
                    longitude: (lon - 8.0).clamp(-180.0, 180.0),
                    depth_km: 15.0,
                    magnitude: e.magnitude,
                    cables: e.cables.clone(),
                })
            }
            EventKind::VesselContact | EventKind::VesselDamage => ContextRecord::Vessel(VesselPass {
                id: format!("AIS-{}", 5000 + n),
                cable: cable.clone(),
                start: utc(e.start_ns - 20 * MINUTE),
                // The vessel passes at the contact; a damage step shows hours after it has gone.
                end: utc(if e.kind == EventKind::VesselDamage {
                    e.start_ns + 50 * MINUTE
                } else {
                    e.end_ns + 20 * MINUTE
                }),
                km_from: (e.km.unwrap_or_default() - 2.0).max(0.0),
                km_to: (e.km.unwrap_or_default() + 2.0)
                    .min(topology.cable(cable.as_str()).map_or(f64::MAX, |c| c.length_km)),
                mmsi: Some(224_000_000 + n as u64),
                vessel_type: "fishing".into(),
            }),
            _ => continue,
        };
        out.push(record);
    }
    out
}
