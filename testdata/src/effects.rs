//! What events do to one fiber (cable, fiber pair, direction): loss steps, outages, SOP bursts,
//! delay steps and path changes, single-channel faults, amplifier ageing, power steps.
//!
//! Loss steps go through the link physics: an extra loss of x dB in span k raises that span's share
//! of the accumulated amplifier noise by 10^(x/10), so OSNR and Q drop a little on every channel of
//! the fiber (less the more spans there are), the saturated repeaters restore the power so far-end Rx
//! power moves by a few percent of x, and span k's loop-back gain drops by x.

use cablewatch_proto::{CableId, StationId, topology::Cable};

use crate::{
    events::{Event, EventKind},
    optics,
    plant::{FiberBaseline, ideal_q_db},
};

/// A persistent loss step in one span.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossStep {
    /// From when, ns.
    pub from_ns: i64,
    /// Span, 1-based.
    pub span: u32,
    /// Loss at 1550 nm, dB.
    pub db: f64,
    /// Growth per nm above 1550 nm, as a fraction of `db`.
    pub slope_per_nm: f64,
}

/// A burst of fast polarization change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Burst {
    /// Start, ns.
    pub from_ns: i64,
    /// End, ns.
    pub to_ns: i64,
    /// Peak rate of change, krad/s.
    pub peak_krad_s: f64,
}

/// Extra delay, optionally on another path.
#[derive(Debug, Clone, PartialEq)]
pub struct DelayStep {
    /// Start, ns.
    pub from_ns: i64,
    /// End, ns (`i64::MAX` when permanent).
    pub to_ns: i64,
    /// Extra delay, us.
    pub us: f64,
    /// Path id suffix while active (`None`: same path).
    pub path: Option<String>,
}

/// Everything that happens to one fiber during a scenario.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FiberEffects {
    /// Loss steps, by start time.
    pub loss_steps: Vec<LossStep>,
    /// Loss of signal, `[from, to)` ns.
    pub outages: Vec<(i64, i64)>,
    /// SOP bursts.
    pub bursts: Vec<Burst>,
    /// Delay changes.
    pub delays: Vec<DelayStep>,
    /// Single-channel Q drops: channel, from, to, dB.
    pub channel_faults: Vec<(u32, i64, i64, f64)>,
    /// Repeater ageing: the span the ageing repeater's loop-back covers in this direction, from, dB
    /// per day.
    pub ageing: Vec<(u32, i64, f64)>,
    /// Terminal power steps (maintenance): from, to, dB.
    pub power_steps: Vec<(i64, i64, f64)>,
    /// Steps of the power received at the far-end station only (station work there): from, to, dB.
    pub rx_steps: Vec<(i64, i64, f64)>,
}

const MINUTE: i64 = 60_000_000_000;

impl FiberEffects {
    /// Collects the effects of `events` on fiber pair `fp`, direction `dir` (0 = A to B) of `cable`,
    /// whose light is received at station `receiver`.
    pub fn compile(
        events: &[Event],
        cable: &CableId,
        cable_index: usize,
        fp: u32,
        dir: u8,
        receiver: &StationId,
    ) -> Self {
        let mut fx = Self::default();
        for e in events.iter().filter(|e| e.touches(cable, fp, dir)) {
            let span = e.span.unwrap_or(1);
            let burst = |from_ns: i64, to_ns: i64| Burst {
                from_ns,
                to_ns,
                peak_krad_s: e.sop_peak_krad_s,
            };
            match e.kind {
                EventKind::ClipOnTap => {
                    fx.bursts.push(burst(e.start_ns, e.end_ns));
                    fx.loss_steps.push(LossStep {
                        from_ns: e.end_ns,
                        span,
                        db: e.magnitude,
                        slope_per_nm: e.wavelength_slope,
                    });
                }
                EventKind::SpliceTap | EventKind::ActiveInsertion | EventKind::Repair => {
                    fx.bursts.push(burst(e.start_ns - MINUTE, e.start_ns + MINUTE));
                    fx.bursts
                        .push(burst(e.end_ns - 2 * MINUTE, e.end_ns + 2 * MINUTE));
                    fx.outages.push((e.start_ns, e.end_ns));
                    // A splitter or repair splice costs `magnitude`; an inserted device its splices.
                    let db = if e.kind == EventKind::ActiveInsertion {
                        e.loss_db
                    } else {
                        e.magnitude
                    };
                    if db > 0.0 {
                        fx.loss_steps.push(LossStep {
                            from_ns: e.end_ns,
                            span,
                            db,
                            slope_per_nm: 0.0,
                        });
                    }
                    if e.reroute_us > 0.0 {
                        // The traffic and the probes run on a protection path while the cable is cut.
                        fx.delays.push(DelayStep {
                            from_ns: e.start_ns,
                            to_ns: e.end_ns,
                            us: e.reroute_us,
                            path: Some("alt".into()),
                        });
                    }
                    fx.delays.push(DelayStep {
                        from_ns: e.end_ns,
                        to_ns: i64::MAX,
                        us: e.delay_us,
                        path: None,
                    });
                }
                EventKind::UnexplainedReroute | EventKind::Reroute => fx.delays.push(DelayStep {
                    from_ns: e.start_ns,
                    to_ns: e.end_ns,
                    us: e.delay_us,
                    // Planned moves use the protection path; an attacker's detour is its own.
                    path: Some(
                        if e.kind == EventKind::Reroute {
                            "alt"
                        } else {
                            "detour"
                        }
                        .into(),
                    ),
                }),
                EventKind::Maintenance => {
                    fx.bursts
                        .push(burst(e.start_ns, e.start_ns + e.outage_ns + 5 * MINUTE));
                    fx.outages.push((e.start_ns, e.start_ns + e.outage_ns));
                    fx.power_steps
                        .push((e.start_ns + e.outage_ns, e.end_ns, e.magnitude));
                }
                EventKind::Earthquake => {
                    // Seismic waves reach cables one after another, tens of seconds apart.
                    let lag = cable_index as i64 * 40_000_000_000;
                    fx.bursts.push(burst(e.start_ns + lag, e.end_ns + lag));
                }
                EventKind::VesselContact => fx.bursts.push(burst(e.start_ns, e.end_ns)),
                EventKind::VesselDamage => {
                    // The contact moves every fiber; the damage, hours later, costs each fiber its
                    // own share of loss in the span.
                    fx.bursts
                        .push(burst(e.start_ns, (e.start_ns + 20 * MINUTE).min(e.end_ns)));
                    let share = 0.7 + 0.6 * unit_hash(&[e.start_ns as u64, u64::from(fp), u64::from(dir)]);
                    fx.loss_steps.push(LossStep {
                        from_ns: e.end_ns,
                        span,
                        db: e.magnitude * share,
                        slope_per_nm: 0.0,
                    });
                }
                EventKind::StationWork => {
                    // Both fibers of the pair are handled at the station's patch panel; the power
                    // received there steps.
                    fx.bursts.push(burst(e.start_ns, e.end_ns));
                    if e.station.as_ref() == Some(receiver) {
                        fx.rx_steps.push((e.end_ns, i64::MAX, e.magnitude));
                    }
                }
                EventKind::TransponderFault => {
                    fx.channel_faults
                        .push((e.channel.unwrap_or(1), e.start_ns, e.end_ns, e.magnitude));
                }
                EventKind::AmplifierAgeing => fx.ageing.push((span, e.start_ns, e.magnitude)),
                EventKind::DataGap | EventKind::ClockSkew => {}
            }
        }
        fx.loss_steps.sort_by_key(|s| s.from_ns);
        fx
    }

    /// Whether the interval `(t - interval, t]` overlaps a loss of signal.
    pub fn in_outage(&self, t: i64, interval: i64) -> bool {
        self.outages
            .iter()
            .any(|&(a, b)| a < t && b > t - interval.max(1))
    }

    /// Number of loss steps in force at `t`.
    pub fn active_steps(&self, t: i64) -> usize {
        self.loss_steps.partition_point(|s| s.from_ns <= t)
    }

    /// The strongest burst overlapping `(t - interval, t]`, with the fraction of the interval it
    /// covers.
    pub fn burst(&self, t: i64, interval: i64) -> Option<(f64, f64)> {
        let lo = t - interval.max(1);
        self.bursts
            .iter()
            .filter(|b| b.from_ns < t && b.to_ns > lo)
            .map(|b| {
                let overlap = (b.to_ns.min(t) - b.from_ns.max(lo)) as f64 / interval.max(1) as f64;
                (b.peak_krad_s, overlap.clamp(0.0, 1.0))
            })
            .max_by(|a, b| a.0.total_cmp(&b.0))
    }

    /// Extra delay at `t`, us, and the path suffix in force.
    pub fn delay(&self, t: i64) -> (f64, Option<&str>) {
        let mut us = 0.0;
        let mut path = None;
        for d in self.delays.iter().filter(|d| d.from_ns <= t && t < d.to_ns) {
            us += d.us;
            if d.path.is_some() {
                path = d.path.as_deref();
            }
        }
        (us, path)
    }

    /// Q drop of `channel` at `t`, dB.
    pub fn channel_drop(&self, channel: u32, t: i64) -> f64 {
        self.channel_faults
            .iter()
            .filter(|&&(ch, a, b, _)| ch == channel && a <= t && t < b)
            .map(|f| f.3)
            .sum()
    }

    /// Step of the power received at the far-end station at `t`, dB.
    pub fn rx_step(&self, t: i64) -> f64 {
        self.rx_steps
            .iter()
            .filter(|&&(a, b, _)| a <= t && t < b)
            .map(|s| s.2)
            .sum()
    }

    /// Terminal power step at `t`, dB.
    pub fn power_step(&self, t: i64) -> f64 {
        self.power_steps
            .iter()
            .filter(|&&(a, b, _)| a <= t && t < b)
            .map(|s| s.2)
            .sum()
    }

    /// Loop-back gain change at `t` of the repeater that covers `span` in this fiber's direction
    /// ([`cablewatch_proto::topology::Cable::span_covered_by`]): minus the loss steps in that span,
    /// minus the repeater's ageing.
    pub fn loopback_change(&self, span: u32, t: i64) -> f64 {
        let steps: f64 = self.loss_steps[..self.active_steps(t)]
            .iter()
            .filter(|s| s.span == span)
            .map(|s| s.db)
            .sum();
        let ageing: f64 = self
            .ageing
            .iter()
            .filter(|&&(r, from, _)| r == span && from <= t)
            .map(|&(_, from, per_day)| {
                per_day * (t - from) as f64 / cablewatch_proto::time::NANOS_PER_DAY as f64
            })
            .sum();
        -steps - ageing
    }
}

/// OSNR, Q and Rx power shifts of every channel with the first `n` loss steps in force.
#[derive(Debug, Clone, PartialEq)]
pub struct LossState {
    /// Per channel OSNR change, dB.
    pub osnr_db: Vec<f64>,
    /// Per channel Q change, dB.
    pub q_db: Vec<f64>,
    /// Per channel Rx power change, dB.
    pub rx_db: Vec<f64>,
}

/// States for 0, 1, ..., all loss steps of `fx` on a fiber with baseline `fiber`; `rx_residual` is
/// the fraction of a span's loss still seen in far-end power behind the saturated repeaters.
/// `receiving_span` is the shore span that ends at the receiving station (no repeater after it):
/// its loss lowers the power received by all of itself and the OSNR not at all (signal and noise
/// are attenuated alike).
pub fn loss_states(
    cable: &Cable,
    fiber: &FiberBaseline,
    fx: &FiberEffects,
    rx_residual: f64,
    receiving_span: u32,
) -> Vec<LossState> {
    let base_noise: f64 = fiber.span_loss_db.iter().copied().map(optics::from_db).sum();
    (0..=fx.loss_steps.len())
        .map(|n| {
            let steps = &fx.loss_steps[..n];
            let mut state = LossState {
                osnr_db: Vec::with_capacity(fiber.channels.len()),
                q_db: Vec::with_capacity(fiber.channels.len()),
                rx_db: Vec::with_capacity(fiber.channels.len()),
            };
            for (ch, b) in (1..).zip(&fiber.channels) {
                let lambda = cable.channel_plan.wavelength_nm(ch);
                let mut extra_noise = 0.0;
                let mut total_db = 0.0;
                let mut unamplified_db = 0.0;
                for s in steps {
                    let db = s.db * (1.0 + s.slope_per_nm * (lambda - 1550.0)).max(0.0);
                    if s.span == receiving_span {
                        unamplified_db += db;
                        continue;
                    }
                    let span_loss = fiber
                        .span_loss_db
                        .get(s.span as usize - 1)
                        .copied()
                        .unwrap_or(10.0);
                    extra_noise += optics::from_db(span_loss + db) - optics::from_db(span_loss);
                    total_db += db;
                }
                let d_osnr = -optics::to_db((base_noise + extra_noise) / base_noise);
                let d_q = ideal_q_db(fiber.modulation, b.osnr_db + d_osnr)
                    - ideal_q_db(fiber.modulation, b.osnr_db);
                state.osnr_db.push(d_osnr);
                state.q_db.push(d_q);
                state.rx_db.push(-rx_residual * total_db - unamplified_db);
            }
            state
        })
        .collect()
}

/// A number in [0, 1) from `parts`, the same every time: per-fiber shares of one event that every
/// day's generation must agree on.
fn unit_hash(parts: &[u64]) -> f64 {
    use rand::RngExt;
    crate::plant::rng_for(0x5EED, parts).random::<f64>()
}
