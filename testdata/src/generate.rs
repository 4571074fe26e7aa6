//! Generating a scenario's telemetry: one payload per (cable, direction, kind of telemetry), built
//! in parallel, then either written to the stored-table layout ([`write_tables`]) or cut into
//! station batches for streaming ([`station_streams`]). Both start from the same payloads, so
//! `generate` and `stream` with the same arguments produce the same rows.
//!
//! Who reports what: the receiving station reports the optical rows of its incoming direction, the
//! line-monitoring equipment at the transmitting end reports the loop-back sweeps of its outgoing
//! direction, and the sending station reports the delay probes it sends.

use std::{collections::BTreeMap, path::Path};

use cablewatch_proto::{
    CableId, StationId,
    store::{self, ParquetOptions},
    time::NANOS_PER_DAY,
    topology::{Cable, FIBER_DELAY_US_PER_KM},
    wire::{
        Direction, IntervalStats, LatencyKind, LatencySamples, LineMonitoringSamples, OpticalChannelSamples,
        Payload,
    },
};
use rand::RngExt;
use rayon::prelude::*;

use crate::{
    SimError,
    effects::{FiberEffects, LossState, loss_states},
    events::{self, Event, EventKind},
    optics::ber_from_q_db,
    physics::Physics,
    plant::{self, EQUIPMENT_DELAY_US, diurnal, gauss, rng_for},
    scenario::Scenario,
};

/// Kinds of telemetry, in the order payloads are generated and streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Optical channel PM.
    Optical,
    /// Line-monitoring sweeps.
    LineMonitoring,
    /// Delay probes.
    Latency,
}

/// All rows of one kind of telemetry for one cable and direction (within one day of the scenario).
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// Index of the cable in the topology.
    pub cable_index: usize,
    /// 0 for A to B, 1 for B to A.
    pub direction: u8,
    /// What the rows are.
    pub kind: Kind,
    /// The station that reports these rows.
    pub station: StationId,
    /// The rows, in time order.
    pub payload: Payload,
}

/// A scenario made concrete: its physics drawn and its events placed, ready to generate day by day.
#[derive(Debug, Clone)]
pub struct Simulation<'a> {
    /// The scenario.
    pub scenario: &'a Scenario,
    /// The seed.
    pub seed: u64,
    /// The plant's physics and noise, drawn for the seed.
    pub physics: Physics,
    /// Every injected event.
    pub events: Vec<Event>,
}

impl<'a> Simulation<'a> {
    /// Draws the scenario's physics and places its events with `seed`.
    pub fn new(scenario: &'a Scenario, seed: u64) -> Result<Self, SimError> {
        let events = events::plan(&scenario.topology, scenario.window(), &scenario.events, seed)?;
        Ok(Self {
            scenario,
            seed,
            physics: scenario.physics(seed),
            events,
        })
    }

    /// Number of (UTC-aligned from the start) days the scenario spans.
    pub fn days(&self) -> usize {
        let span = self.scenario.end_ns() - self.scenario.start_ns;
        usize::try_from((span + NANOS_PER_DAY - 1) / NANOS_PER_DAY).unwrap_or(0)
    }

    /// Every unit of day `day` (0-based), generated in parallel; the result does not depend on the
    /// number of threads.
    pub fn generate_day(&self, day: usize) -> Vec<Unit> {
        let scenario = self.scenario;
        let from = scenario.start_ns + day as i64 * NANOS_PER_DAY;
        let to = (from + NANOS_PER_DAY).min(scenario.end_ns());
        let mut jobs = Vec::new();
        for ci in 0..scenario.topology.cables.len() {
            for dir in [0u8, 1] {
                for kind in [Kind::Optical, Kind::LineMonitoring, Kind::Latency] {
                    jobs.push((ci, dir, kind));
                }
            }
        }
        jobs.into_par_iter()
            .map(|(ci, dir, kind)| {
                let cable = &scenario.topology.cables[ci];
                let (near, far) = if dir == 0 {
                    (&cable.a_station, &cable.b_station)
                } else {
                    (&cable.b_station, &cable.a_station)
                };
                let station = if kind == Kind::Optical { far } else { near };
                let ctx = UnitContext::new(self, ci, dir, station, day as u64, from, to);
                let payload = match kind {
                    Kind::Optical => Payload::Optical(optical(&ctx)),
                    Kind::LineMonitoring => Payload::LineMonitoring(line_monitoring(&ctx)),
                    Kind::Latency => Payload::Latency(latency(&ctx)),
                };
                Unit {
                    cable_index: ci,
                    direction: dir,
                    kind,
                    station: station.clone(),
                    payload,
                }
            })
            .collect()
    }

    /// Every unit of the whole scenario (days concatenated per unit). For small scenarios; large
    /// ones go day by day through [`Simulation::generate_day`].
    pub fn generate_all(&self) -> Vec<Unit> {
        let mut units: Vec<Unit> = Vec::new();
        for day in 0..self.days() {
            for u in self.generate_day(day) {
                match units
                    .iter_mut()
                    .find(|x| (x.cable_index, x.direction, x.kind) == (u.cable_index, u.direction, u.kind))
                {
                    Some(x) => x.payload.append(&u.payload),
                    None => units.push(u),
                }
            }
        }
        units
    }
}

/// Generates every unit of `scenario` with `seed` (events included).
pub fn generate(scenario: &Scenario, seed: u64) -> Result<Vec<Unit>, SimError> {
    Ok(Simulation::new(scenario, seed)?.generate_all())
}

/// What generating one unit needs: the cable, its fibers' baselines and effects, the time slice.
struct UnitContext<'a> {
    scenario: &'a Scenario,
    physics: &'a Physics,
    seed: u64,
    ci: usize,
    dir: u8,
    day: u64,
    from: i64,
    to: i64,
    cable: &'a Cable,
    fibers: Vec<plant::FiberBaseline>,
    effects: Vec<FiberEffects>,
    gaps: Vec<(i64, i64)>,
    /// Clock skews of the reporting station and of the far end: from, to, us.
    own_skew: Vec<(i64, i64, f64)>,
    far_skew: Vec<(i64, i64, f64)>,
}

fn skew_us(skews: &[(i64, i64, f64)], t: i64) -> f64 {
    skews
        .iter()
        .filter(|&&(a, b, _)| a <= t && t < b)
        .map(|s| s.2)
        .sum()
}

impl<'a> UnitContext<'a> {
    fn new(
        sim: &'a Simulation<'_>,
        ci: usize,
        dir: u8,
        station: &StationId,
        day: u64,
        from: i64,
        to: i64,
    ) -> Self {
        let scenario = sim.scenario;
        let cable = &scenario.topology.cables[ci];
        let fibers = (1..=cable.fiber_pairs)
            .map(|fp| plant::fiber_baseline(sim.seed, &sim.physics, ci as u64, cable, u64::from(dir), fp))
            .collect();
        let effects = (1..=cable.fiber_pairs)
            .map(|fp| {
                let receiver = if dir == 0 {
                    &cable.b_station
                } else {
                    &cable.a_station
                };
                FiberEffects::compile(&sim.events, &cable.id, ci, fp, dir, receiver)
            })
            .collect();
        let gaps = sim
            .events
            .iter()
            .filter(|e| e.kind == EventKind::DataGap && e.station.as_ref() == Some(station))
            .map(|e| (e.start_ns, e.end_ns))
            .collect();
        let far = if *station == cable.a_station {
            &cable.b_station
        } else {
            &cable.a_station
        };
        let skews = |st: &StationId| -> Vec<(i64, i64, f64)> {
            sim.events
                .iter()
                .filter(|e| e.kind == EventKind::ClockSkew && e.station.as_ref() == Some(st))
                .map(|e| (e.start_ns, e.end_ns, e.magnitude))
                .collect()
        };
        let (own_skew, far_skew) = (skews(station), skews(far));
        Self {
            scenario,
            physics: &sim.physics,
            seed: sim.seed,
            ci,
            dir,
            day,
            from,
            to,
            cable,
            fibers,
            effects,
            gaps,
            own_skew,
            far_skew,
        }
    }

    /// A repeater's drift (a random walk of [`Physics::lm_drift_db_per_sqrt_day`]) at the start of
    /// this unit's day and of the next, dB.
    fn drift_knots(&self, fp: u32, repeater: u32) -> (f64, f64) {
        let sd = self.physics.lm_drift_db_per_sqrt_day;
        if sd == 0.0 {
            return (0.0, 0.0);
        }
        let mut rng = rng_for(
            self.seed,
            &[
                8,
                self.ci as u64,
                u64::from(self.dir),
                u64::from(fp),
                u64::from(repeater),
            ],
        );
        let mut walk = 0.0;
        for _ in 0..self.day {
            walk += gauss(&mut rng, sd);
        }
        (walk, walk + gauss(&mut rng, sd))
    }

    /// The fiber-wide weak SOP wobbles of fiber pair `fp` that reach into this unit's day: (from,
    /// to, krad/s added to every channel). Drawn per day, so the day before is looked at too.
    fn wobbles(&self, fp: u32) -> Vec<(i64, i64, f64)> {
        let rate = self.physics.sop_wobbles_per_month / 30.0;
        let mut out = Vec::new();
        if rate <= 0.0 {
            return out;
        }
        let day_ns = cablewatch_proto::time::NANOS_PER_DAY;
        for day in self.day.saturating_sub(1)..=self.day {
            let mut rng = rng_for(
                self.seed,
                &[9, self.ci as u64, u64::from(self.dir), u64::from(fp), day],
            );
            // Poisson count by inversion: rates are well under one a day.
            let (mut k, mut p, u) = (0, (-rate).exp(), rng.random::<f64>());
            let mut cdf = p;
            while u > cdf && k < 20 {
                k += 1;
                p *= rate / f64::from(k);
                cdf += p;
            }
            let start = self.scenario.start_ns + day as i64 * day_ns;
            for _ in 0..k {
                let from = start + (rng.random::<f64>() * day_ns as f64) as i64;
                let minutes = 15.0 + 105.0 * rng.random::<f64>();
                let to = from + (minutes * 60e9) as i64;
                out.push((from, to, 0.1 + 0.3 * rng.random::<f64>()));
            }
        }
        out
    }

    /// The time the reporting station stamps on a measurement made at true time `t`.
    fn stamp(&self, t: i64) -> i64 {
        t + (skew_us(&self.own_skew, t) * 1000.0) as i64
    }

    fn rng(&self, what: u64) -> rand::rngs::StdRng {
        rng_for(self.seed, &[what, self.ci as u64, u64::from(self.dir), self.day])
    }

    /// Sample times at `period_s` within this unit's slice, on the scenario's grid.
    fn times(&self, period_s: u32) -> impl Iterator<Item = i64> + '_ {
        let (from, to) = (self.from, self.to);
        self.scenario
            .times(period_s)
            .skip_while(move |&t| t < from)
            .take_while(move |&t| t < to)
            .filter(|&t| !self.gaps.iter().any(|&(a, b)| a <= t && t < b))
    }
}

fn wire_direction(dir: u8) -> i32 {
    if dir == 0 {
        Direction::AToB.into()
    } else {
        Direction::BToA.into()
    }
}

/// Pushes avg, min and max with `min = avg - lo`, `max = avg + hi` (`lo`, `hi` >= 0).
fn push_stat(s: &mut IntervalStats, avg: f64, lo: f64, hi: f64) {
    s.avg.push(avg as f32);
    s.min.push((avg - lo.abs()) as f32);
    s.max.push((avg + hi.abs()) as f32);
}

fn optical(ctx: &UnitContext<'_>) -> OpticalChannelSamples {
    let mut rng = ctx.rng(2);
    let interval = i64::from(ctx.physics.cadence.optical_s) * 1_000_000_000;
    let mut p = OpticalChannelSamples {
        cable_id: ctx.cable.id.to_string(),
        interval_ns: interval,
        ..Default::default()
    };
    let states: Vec<Vec<LossState>> = ctx
        .fibers
        .iter()
        .zip(&ctx.effects)
        .map(|(f, fx)| {
            // The shore span ending at the receiving station: the last going A to B, the first
            // going B to A.
            let receiving = if ctx.dir == 0 {
                ctx.cable.repeaters() + 1
            } else {
                1
            };
            loss_states(ctx.cable, f, fx, ctx.physics.rx_residual, receiving)
        })
        .collect();
    let ph = ctx.physics;
    let wobbles: Vec<Vec<(i64, i64, f64)>> = (1..=ctx.cable.fiber_pairs).map(|fp| ctx.wobbles(fp)).collect();
    let mut stats: [IntervalStats; 9] = Default::default();
    for t in ctx.times(ctx.physics.cadence.optical_s) {
        let d = diurnal(t);
        for (fp, ((fiber, fx), states)) in (1..).zip(ctx.fibers.iter().zip(&ctx.effects).zip(&states)) {
            if fx.in_outage(t, interval) {
                continue;
            }
            let state = &states[fx.active_steps(t)];
            let burst = fx.burst(t, interval);
            let power_step = fx.power_step(t);
            // Work at the receiving station: its received power steps; Q follows a little where
            // the receiver's own noise counts.
            let rx_step = fx.rx_step(t);
            let wobble: f64 = wobbles[fp as usize - 1]
                .iter()
                .filter(|w| w.0 < t && w.1 > t - interval)
                .map(|w| w.2)
                .sum();
            let stamp = ctx.stamp(t);
            for (ch, b) in (1..).zip(&fiber.channels) {
                let i = ch as usize - 1;
                p.time_unix_ns.push(stamp);
                p.fiber_pair.push(fp);
                p.direction.push(wire_direction(ctx.dir));
                p.channel.push(ch);
                let q = b.q_db + state.q_db[i] - fx.channel_drop(ch, t)
                    + 0.05 * rx_step.min(0.0)
                    + ph.diurnal_q_db * d
                    + gauss(&mut rng, ph.q_noise_db);
                let (q_lo, q_hi) = (
                    0.03 + gauss(&mut rng, 0.03).abs(),
                    0.03 + gauss(&mut rng, 0.03).abs(),
                );
                let rx = b.rx_power_dbm
                    + state.rx_db[i]
                    + power_step
                    + rx_step
                    + ph.diurnal_power_db * d
                    + gauss(&mut rng, ph.power_noise_db);
                push_stat(&mut stats[0], rx, 0.02, 0.02);
                push_stat(
                    &mut stats[1],
                    b.tx_power_dbm + power_step + gauss(&mut rng, 0.01),
                    0.01,
                    0.01,
                );
                push_stat(
                    &mut stats[2],
                    b.osnr_db + state.osnr_db[i] + 0.01 * d + gauss(&mut rng, 0.05),
                    0.05,
                    0.05,
                );
                let ber = ber_from_q_db(q);
                let (ber_min, ber_max) = (ber_from_q_db(q + q_hi), ber_from_q_db(q - q_lo));
                push_stat(&mut stats[3], ber, ber - ber_min, ber_max - ber);
                push_stat(&mut stats[4], q, q_lo, q_hi);
                push_stat(&mut stats[5], b.cd_ps_nm + gauss(&mut rng, 3.0), 2.0, 2.0);
                let dgd = (b.dgd_ps + gauss(&mut rng, 0.05 * b.dgd_ps)).max(0.01);
                push_stat(&mut stats[6], dgd, 0.1 * dgd, 0.1 * dgd);
                let pdl = (b.pdl_db + gauss(&mut rng, 0.03)).max(0.0);
                push_stat(&mut stats[7], pdl, 0.05_f64.min(pdl), 0.05);
                // Quiet SOP activity is heavy-tailed: log-normal around the channel's median, the
                // fastest moment of the interval further out in the tail, and now and then a lone
                // spike of a few krad/s on this channel only.
                let mut sop = b.sop_krad_s * gauss(&mut rng, ph.sop_tail_sigma).exp() + wobble;
                let mut peak = sop + b.sop_krad_s * gauss(&mut rng, ph.sop_tail_sigma + 0.3).exp();
                if rng.random::<f64>() < ph.sop_spike_rate {
                    peak = peak.max((rng.random::<f64>() * 5f64.ln()).exp());
                }
                if let Some((burst_peak, covered)) = burst {
                    // Every channel of the fiber sees the fiber being moved, with its own strength.
                    let seen = burst_peak * rng.random_range(0.4..1.0);
                    peak = peak.max(seen);
                    sop += seen * covered * 0.5;
                }
                push_stat(&mut stats[8], sop, sop * rng.random_range(0.5..0.9), peak - sop);
            }
        }
    }
    let [rx, tx, osnr, ber, q, cd, dgd, pdl, sop] = stats;
    p.rx_power_dbm = Some(rx);
    p.tx_power_dbm = Some(tx);
    p.osnr_db = Some(osnr);
    p.pre_fec_ber = Some(ber);
    p.q_db = Some(q);
    p.cd_ps_nm = Some(cd);
    p.dgd_ps = Some(dgd);
    p.pdl_db = Some(pdl);
    p.sop_roc_krad_s = Some(sop);
    p
}

fn line_monitoring(ctx: &UnitContext<'_>) -> LineMonitoringSamples {
    let mut rng = ctx.rng(3);
    let mut p = LineMonitoringSamples {
        cable_id: ctx.cable.id.to_string(),
        ..Default::default()
    };
    let ph = ctx.physics;
    let period = i64::from(ph.cadence.line_monitoring_s) * 1_000_000_000;
    // Each repeater's slow drift: a random walk through daily knots, interpolated within the day.
    let drift: Vec<Vec<(f64, f64)>> = (1..=ctx.cable.fiber_pairs)
        .map(|fp| {
            (1..=ctx.cable.repeaters())
                .map(|rep| ctx.drift_knots(fp, rep))
                .collect()
        })
        .collect();
    let day_start = ctx.scenario.start_ns + ctx.day as i64 * cablewatch_proto::time::NANOS_PER_DAY;
    for t in ctx.times(ph.cadence.line_monitoring_s) {
        let sweep = u64::try_from(t / period).unwrap_or(0);
        let into_day = (t - day_start) as f64 / cablewatch_proto::time::NANOS_PER_DAY as f64;
        for (fp, (fiber, fx)) in (1..).zip(ctx.fibers.iter().zip(&ctx.effects)) {
            if fx.in_outage(t, 1) {
                continue;
            }
            // The sweep's calibration offset, shared by every repeater of this fiber's sweep.
            let offset = gauss(
                &mut rng_for(
                    ctx.seed,
                    &[7, ctx.ci as u64, u64::from(ctx.dir), u64::from(fp), sweep],
                ),
                ph.lm_sweep_offset_db,
            );
            for (rep, gain) in (1..).zip(&fiber.loopback_gain_db) {
                let (k0, k1) = drift[fp as usize - 1][rep as usize - 1];
                let drifted = k0 + (k1 - k0) * into_day + offset;
                // The repeater is stored as the equipment numbers it; what it measures is the span
                // that feeds it in this direction.
                let span = ctx
                    .cable
                    .span_covered_by(events::direction_label(ctx.dir), rep)
                    .unwrap_or(0);
                p.time_unix_ns.push(ctx.stamp(t));
                p.sweep_id.push(sweep);
                p.fiber_pair.push(fp);
                p.direction.push(wire_direction(ctx.dir));
                p.repeater.push(rep);
                let g = gain + fx.loopback_change(span, t) + drifted + gauss(&mut rng, ph.lm_noise_db);
                p.loopback_gain_db.push(g as f32);
            }
        }
    }
    p
}

fn latency(ctx: &UnitContext<'_>) -> LatencySamples {
    let mut rng = ctx.rng(4);
    let cable = ctx.cable;
    let (src, dst) = if ctx.dir == 0 {
        (&cable.a_station, &cable.b_station)
    } else {
        (&cable.b_station, &cable.a_station)
    };
    let mut p = LatencySamples {
        cable_id: cable.id.to_string(),
        ..Default::default()
    };
    let base = cable.length_km * FIBER_DELAY_US_PER_KM + 2.0 * EQUIPMENT_DELAY_US;
    for t in ctx.times(ctx.physics.cadence.latency_s) {
        let d = diurnal(t);
        for (fp, (fiber, fx)) in (1..).zip(ctx.fibers.iter().zip(&ctx.effects)) {
            let (extra, path) = fx.delay(t);
            // A cut fiber carries no probe, unless its traffic was moved to another path.
            if fx.in_outage(t, 1) && path.is_none() {
                continue;
            }
            // One-way delay is the far end's receive stamp minus our send stamp: clock skews bias it.
            let skew = skew_us(&ctx.far_skew, t) - skew_us(&ctx.own_skew, t);
            let ph = ctx.physics;
            let mut delay = base
                + fiber.delay_offset_us
                + extra
                + skew
                + ph.diurnal_delay_us * d
                + gauss(&mut rng, ph.latency_jitter_us);
            if rng.random::<f64>() < ph.latency_outlier_rate {
                // Rare outliers: a probe queued behind other traffic in the terminal equipment.
                delay += rng.random_range(20.0..300.0);
            }
            p.time_unix_ns.push(ctx.stamp(t));
            p.fiber_pair.push(fp);
            p.direction.push(wire_direction(ctx.dir));
            p.src_station.push(src.to_string());
            p.dst_station.push(dst.to_string());
            p.kind.push(LatencyKind::OneWay.into());
            p.delay_us.push(delay);
            p.path_id
                .push(format!("{}/fp{fp}/{}", cable.id, path.unwrap_or("primary")));
        }
    }
    p
}

/// Row counts per stored table written by [`write_tables`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteSummary {
    /// Rows per table name.
    pub rows: BTreeMap<&'static str, usize>,
    /// Files written.
    pub files: usize,
}

/// Generates the whole simulation day by day and writes it to the stored-table layout under `data`:
/// one file per table, cable, UTC date and scenario day. Memory is bounded by one day of rows.
pub fn write_tables(sim: &Simulation<'_>, data: &Path) -> Result<WriteSummary, SimError> {
    let mut summary = WriteSummary::default();
    for day in 0..sim.days() {
        let units = sim.generate_day(day);
        let day_summary = write_units(sim.scenario, &units, data, &format!("sim-{day:05}"))?;
        for (table, rows) in day_summary.rows {
            *summary.rows.entry(table).or_default() += rows;
        }
        summary.files += day_summary.files;
    }
    Ok(summary)
}

/// What [`write_scenario`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScenarioFiles {
    /// The stored tables.
    pub tables: WriteSummary,
    /// Context records written (the logged events).
    pub records: usize,
}

/// Writes `sim` the way `cablewatch-sim generate` does: `dir/data` (the stored tables),
/// `dir/truth.json` (every event and the drawn physics), `dir/context/operator.jsonl` (what the
/// operator logged) and `dir/topology.toml`.
pub fn write_scenario(sim: &Simulation<'_>, dir: &Path) -> Result<ScenarioFiles, SimError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source: std::io::Error| SimError::Write { path, source }
    };
    let tables = write_tables(sim, &dir.join("data"))?;
    let truth_path = dir.join("truth.json");
    let truth = serde_json::to_string_pretty(&events::truth(sim)).map_err(|e| SimError::Scenario {
        origin: sim.scenario.name.clone(),
        reason: format!("truth.json: {e}"),
    })?;
    std::fs::write(&truth_path, truth + "\n").map_err(io(&truth_path))?;
    let context_dir = dir.join("context");
    std::fs::create_dir_all(&context_dir).map_err(io(&context_dir))?;
    let records = events::context_records(&sim.scenario.topology, &sim.events);
    let context_path = context_dir.join("operator.jsonl");
    cablewatch_proto::context::Context::write_jsonl(&context_path, &records).map_err(|e| {
        SimError::Scenario {
            origin: context_path.display().to_string(),
            reason: e.to_string(),
        }
    })?;
    let topology_path = dir.join("topology.toml");
    let topology = toml::to_string(&sim.scenario.topology).map_err(|e| SimError::Scenario {
        origin: sim.scenario.name.clone(),
        reason: format!("topology: {e}"),
    })?;
    std::fs::write(&topology_path, topology).map_err(io(&topology_path))?;
    Ok(ScenarioFiles {
        tables,
        records: records.len(),
    })
}

/// Writes `units` to the stored-table layout: one file `part-<stem>.parquet` per table, cable and
/// UTC date.
pub fn write_units(
    scenario: &Scenario,
    units: &[Unit],
    data: &Path,
    stem: &str,
) -> Result<WriteSummary, SimError> {
    // Group by (table, cable, day); units of direction A to B come first, keeping files sorted.
    let mut parts: BTreeMap<(&'static str, usize, i32), Vec<_>> = BTreeMap::new();
    let mut ordered: Vec<&Unit> = units.iter().collect();
    ordered.sort_by_key(|u| (u.kind, u.cable_index, u.direction));
    for unit in ordered {
        for day_batch in store::to_record_batches(&unit.payload, None)? {
            parts
                .entry((unit.payload.table().name, unit.cable_index, day_batch.day))
                .or_default()
                .push(day_batch.batch);
        }
    }
    let results: Vec<Result<(&'static str, usize), SimError>> = parts
        .into_par_iter()
        .map(|((table, ci, day), batches)| {
            let table = cablewatch_proto::tables::by_name(table).ok_or_else(|| SimError::Scenario {
                origin: "write".into(),
                reason: format!("no table {table}"),
            })?;
            let cable: &CableId = &scenario.topology.cables[ci].id;
            store::write_part(data, table, cable, day, stem, &batches, ParquetOptions::default())?;
            Ok((table.name, batches.iter().map(|b| b.num_rows()).sum()))
        })
        .collect();
    let mut summary = WriteSummary::default();
    for r in results {
        let (table, rows) = r?;
        *summary.rows.entry(table).or_default() += rows;
        summary.files += 1;
    }
    Ok(summary)
}

/// One station's batches, in the order it sends them.
#[derive(Debug, Clone, PartialEq)]
pub struct StationStream {
    /// The sending station.
    pub station: StationId,
    /// Payloads of at most the requested number of rows each.
    pub payloads: Vec<Payload>,
}

/// Cuts every unit into payloads of at most `batch_rows` rows and groups them by reporting station
/// (stations in id order; each station's payloads by first time, then cable, kind and direction).
pub fn station_streams(units: &[Unit], batch_rows: usize) -> Vec<StationStream> {
    // Per station: (first time, cable, kind, direction) as the send order, and the payload.
    type Part = ((i64, usize, Kind, u8), Payload);
    let mut by_station: BTreeMap<&StationId, Vec<Part>> = BTreeMap::new();
    let batch_rows = batch_rows.max(1);
    for u in units {
        let rows = u.payload.row_count().unwrap_or(0);
        for start in (0..rows).step_by(batch_rows) {
            let part = u.payload.slice(start..(start + batch_rows).min(rows));
            let first = part.first_time_ns().unwrap_or(i64::MIN);
            by_station
                .entry(&u.station)
                .or_default()
                .push(((first, u.cable_index, u.kind, u.direction), part));
        }
    }
    by_station
        .into_iter()
        .map(|(station, mut parts)| {
            parts.sort_by_key(|p| p.0);
            StationStream {
                station: station.clone(),
                payloads: parts.into_iter().map(|p| p.1).collect(),
            }
        })
        .collect()
}
