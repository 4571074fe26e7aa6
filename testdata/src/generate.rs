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
    optics::ber_from_q_db,
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

/// All rows of one kind of telemetry for one cable and direction.
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

/// Generates every unit of `scenario` with `seed`, in parallel; the result does not depend on the
/// number of threads.
pub fn generate(scenario: &Scenario, seed: u64) -> Vec<Unit> {
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
            let (station, payload) = match kind {
                Kind::Optical => (far.clone(), Payload::Optical(optical(scenario, seed, ci, dir))),
                Kind::LineMonitoring => (
                    near.clone(),
                    Payload::LineMonitoring(line_monitoring(scenario, seed, ci, dir)),
                ),
                Kind::Latency => (near.clone(), Payload::Latency(latency(scenario, seed, ci, dir))),
            };
            Unit {
                cable_index: ci,
                direction: dir,
                kind,
                station,
                payload,
            }
        })
        .collect()
}

fn wire_direction(dir: u8) -> i32 {
    if dir == 0 {
        Direction::AToB.into()
    } else {
        Direction::BToA.into()
    }
}

fn baselines(scenario: &Scenario, seed: u64, ci: usize, dir: u8) -> (&Cable, Vec<plant::FiberBaseline>) {
    let cable = &scenario.topology.cables[ci];
    let fibers = (1..=cable.fiber_pairs)
        .map(|fp| plant::fiber_baseline(seed, ci as u64, cable, u64::from(dir), fp))
        .collect();
    (cable, fibers)
}

/// Pushes avg, min and max with `min = avg - lo`, `max = avg + hi` (`lo`, `hi` >= 0).
fn push_stat(s: &mut IntervalStats, avg: f64, lo: f64, hi: f64) {
    s.avg.push(avg as f32);
    s.min.push((avg - lo.abs()) as f32);
    s.max.push((avg + hi.abs()) as f32);
}

fn optical(scenario: &Scenario, seed: u64, ci: usize, dir: u8) -> OpticalChannelSamples {
    let (cable, fibers) = baselines(scenario, seed, ci, dir);
    let mut rng = rng_for(seed, &[2, ci as u64, u64::from(dir)]);
    let mut p = OpticalChannelSamples {
        cable_id: cable.id.to_string(),
        interval_ns: i64::from(scenario.cadence.optical_s) * 1_000_000_000,
        ..Default::default()
    };
    let mut stats: [IntervalStats; 9] = Default::default();
    for t in scenario.times(scenario.cadence.optical_s) {
        let d = diurnal(t);
        for (fp, fiber) in (1..).zip(&fibers) {
            for (ch, b) in (1..).zip(&fiber.channels) {
                p.time_unix_ns.push(t);
                p.fiber_pair.push(fp);
                p.direction.push(wire_direction(dir));
                p.channel.push(ch);
                let q = b.q_db + 0.02 * d + gauss(&mut rng, 0.04);
                let (q_lo, q_hi) = (
                    0.03 + gauss(&mut rng, 0.03).abs(),
                    0.03 + gauss(&mut rng, 0.03).abs(),
                );
                push_stat(
                    &mut stats[0],
                    b.rx_power_dbm + 0.03 * d + gauss(&mut rng, 0.02),
                    0.02,
                    0.02,
                );
                push_stat(&mut stats[1], b.tx_power_dbm + gauss(&mut rng, 0.01), 0.01, 0.01);
                push_stat(
                    &mut stats[2],
                    b.osnr_db + 0.01 * d + gauss(&mut rng, 0.05),
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
                // Quiet SOP activity is heavy-tailed: log-normal around the channel's median.
                let sop = b.sop_krad_s * gauss(&mut rng, 0.5).exp();
                let peak = sop * (1.0 + gauss(&mut rng, 0.8).exp());
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

fn line_monitoring(scenario: &Scenario, seed: u64, ci: usize, dir: u8) -> LineMonitoringSamples {
    let (cable, fibers) = baselines(scenario, seed, ci, dir);
    let mut rng = rng_for(seed, &[3, ci as u64, u64::from(dir)]);
    let mut p = LineMonitoringSamples {
        cable_id: cable.id.to_string(),
        ..Default::default()
    };
    let period = i64::from(scenario.cadence.line_monitoring_s) * 1_000_000_000;
    for t in scenario.times(scenario.cadence.line_monitoring_s) {
        let sweep = u64::try_from(t / period).unwrap_or(0);
        for (fp, fiber) in (1..).zip(&fibers) {
            for (rep, gain) in (1..).zip(&fiber.loopback_gain_db) {
                p.time_unix_ns.push(t);
                p.sweep_id.push(sweep);
                p.fiber_pair.push(fp);
                p.direction.push(wire_direction(dir));
                p.repeater.push(rep);
                p.loopback_gain_db.push((gain + gauss(&mut rng, 0.03)) as f32);
            }
        }
    }
    p
}

fn latency(scenario: &Scenario, seed: u64, ci: usize, dir: u8) -> LatencySamples {
    let (cable, fibers) = baselines(scenario, seed, ci, dir);
    let mut rng = rng_for(seed, &[4, ci as u64, u64::from(dir)]);
    let (src, dst) = if dir == 0 {
        (&cable.a_station, &cable.b_station)
    } else {
        (&cable.b_station, &cable.a_station)
    };
    let mut p = LatencySamples {
        cable_id: cable.id.to_string(),
        ..Default::default()
    };
    let base = cable.length_km * FIBER_DELAY_US_PER_KM + 2.0 * EQUIPMENT_DELAY_US;
    for t in scenario.times(scenario.cadence.latency_s) {
        let d = diurnal(t);
        for (fp, fiber) in (1..).zip(&fibers) {
            let mut delay = base + fiber.delay_offset_us + 0.05 * d + gauss(&mut rng, 0.15);
            if rng.random::<f64>() < 0.002 {
                // Rare outliers: a probe queued behind other traffic in the terminal equipment.
                delay += rng.random_range(20.0..300.0);
            }
            p.time_unix_ns.push(t);
            p.fiber_pair.push(fp);
            p.direction.push(wire_direction(dir));
            p.src_station.push(src.to_string());
            p.dst_station.push(dst.to_string());
            p.kind.push(LatencyKind::OneWay.into());
            p.delay_us.push(delay);
            p.path_id.push(format!("{}/fp{fp}/primary", cable.id));
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

/// Writes every unit to the stored-table layout under `data`: one file per table, cable and day.
pub fn write_tables(scenario: &Scenario, units: &[Unit], data: &Path) -> Result<WriteSummary, SimError> {
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
            store::write_part(
                data,
                table,
                cable,
                day,
                "sim",
                &batches,
                ParquetOptions::default(),
            )?;
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
