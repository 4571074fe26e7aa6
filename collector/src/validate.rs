//! Row validation: which rows of a batch may be stored.
//!
//! Every row is checked on its own, so one bad row does not cost the station the rest of its batch:
//! times within the accepted window, known fiber pair / channel / repeater (from the topology when
//! one is loaded), valid enums, finite values in physical ranges, and `min <= avg <= max` for interval
//! statistics. The result lists the rows to keep and names the first failures.

use cablewatch_proto::{
    StationId, tables,
    topology::{Cable, Topology},
    wire::{
        Direction, IntervalStats, LatencyKind, LatencySamples, LineMonitoringSamples, OpticalChannelSamples,
        Payload, RowError,
    },
};

/// Most rejected rows described in an acknowledgement.
pub const MAX_ROW_ERRORS: usize = 16;

/// Physical range accepted for each optical statistic, in wire order
/// ([`OpticalChannelSamples::stats`]). Wide on purpose: these catch broken instruments and
/// unit mix-ups (mW for dBm, linear for dB), not unusual plant.
pub const OPTICAL_RANGES: [(f32, f32); 9] = [
    (-60.0, 30.0),           // rx_power_dbm
    (-60.0, 30.0),           // tx_power_dbm
    (-10.0, 70.0),           // osnr_db
    (0.0, 0.5),              // pre_fec_ber
    (-10.0, 40.0),           // q_db
    (-300_000.0, 300_000.0), // cd_ps_nm: 17 ps/nm/km over 15,000 km uncompensated
    (0.0, 10_000.0),         // dgd_ps
    (0.0, 40.0),             // pdl_db
    (0.0, 100_000.0),        // sop_roc_krad_s: lightning reaches ~5,100 krad/s
];

/// Accepted loop-back gain range, dB.
pub const LOOPBACK_GAIN_RANGE_DB: (f32, f32) = (-60.0, 60.0);
/// Accepted delay range, us (up to 10 s).
pub const DELAY_RANGE_US: (f64, f64) = (0.0, 10_000_000.0);
/// Longest accepted path id, bytes.
pub const MAX_PATH_ID_LEN: usize = 256;

/// Where rows are checked against.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// The plant, when loaded.
    pub topology: Option<&'a Topology>,
    /// Earliest accepted time, ns (replay of history is allowed back to here).
    pub min_time_ns: i64,
    /// Latest accepted time, ns (now plus the allowed clock skew).
    pub max_time_ns: i64,
}

/// Outcome of validating one batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    /// Indices of the rows to store, ascending.
    pub accepted: Vec<usize>,
    /// Number of rows rejected.
    pub rejected: usize,
    /// The first [`MAX_ROW_ERRORS`] failures.
    pub errors: Vec<RowError>,
}

impl Verdict {
    /// A one-line description of the first failures, for the acknowledgement's message.
    pub fn message(&self) -> String {
        if self.rejected == 0 {
            return String::new();
        }
        let first: Vec<String> = self
            .errors
            .iter()
            .take(3)
            .map(|e| format!("row {} {}: {}", e.row, e.field, e.reason))
            .collect();
        format!("{} rows rejected; first: {}", self.rejected, first.join("; "))
    }
}

type RowResult = Result<(), (String, String)>;

fn fail(field: impl Into<String>, reason: impl Into<String>) -> RowResult {
    Err((field.into(), reason.into()))
}

/// Validates every row of `payload`. The batch's shape must already have been checked.
///
/// Optical batches (the volume) are first checked column by column, in loops the compiler
/// vectorises; only rows that fail there go through the row-by-row checks, which decide and name
/// the failure. Both apply the same rules (a test holds them to the same verdicts).
pub fn validate(payload: &Payload, cable: Option<&Cable>, rules: &Rules<'_>, rows: usize) -> Verdict {
    match payload {
        Payload::Optical(p) => {
            let suspects = optical_suspects(p, cable, rules, rows);
            validate_rows(payload, cable, rules, rows, |row| suspects[row])
        }
        _ => validate_rows(payload, cable, rules, rows, |_| true),
    }
}

/// Row-by-row validation of the rows `check(row)` selects; the others are accepted.
fn validate_rows(
    payload: &Payload,
    cable: Option<&Cable>,
    rules: &Rules<'_>,
    rows: usize,
    check: impl Fn(usize) -> bool,
) -> Verdict {
    let mut verdict = Verdict {
        accepted: Vec::with_capacity(rows),
        ..Verdict::default()
    };
    for row in 0..rows {
        if !check(row) {
            verdict.accepted.push(row);
            continue;
        }
        let result = match payload {
            Payload::Optical(p) => optical_row(p, cable, rules, row),
            Payload::LineMonitoring(p) => lm_row(p, cable, rules, row),
            Payload::Latency(p) => latency_row(p, cable, rules, row),
        };
        match result {
            Ok(()) => verdict.accepted.push(row),
            Err((field, reason)) => {
                verdict.rejected += 1;
                if verdict.errors.len() < MAX_ROW_ERRORS {
                    verdict.errors.push(RowError {
                        row: u32::try_from(row).unwrap_or(u32::MAX),
                        field,
                        reason,
                    });
                }
            }
        }
    }
    verdict
}

/// Marks every row that breaks one of [`optical_row`]'s rules, column by column. The ranges are
/// finite, so `lo <= v && v <= hi` also fails NaN and infinities.
fn optical_suspects(
    p: &OpticalChannelSamples,
    cable: Option<&Cable>,
    rules: &Rules<'_>,
    rows: usize,
) -> Vec<bool> {
    fn mark<T: Copy>(bad: &mut [bool], values: &[T], ok: impl Fn(T) -> bool) {
        for (b, &v) in bad.iter_mut().zip(values) {
            *b |= !ok(v);
        }
    }
    let mut bad = vec![false; rows];
    let (t0, t1) = (rules.min_time_ns, rules.max_time_ns);
    mark(&mut bad, &p.time_unix_ns, |t| t0 <= t && t <= t1);
    let pairs = fiber_pairs(cable);
    mark(&mut bad, &p.fiber_pair, |fp| 1 <= fp && fp <= pairs);
    let (a, b) = (Direction::AToB as i32, Direction::BToA as i32);
    mark(&mut bad, &p.direction, |d| d == a || d == b);
    let channels = channels(cable);
    mark(&mut bad, &p.channel, |ch| 1 <= ch && ch <= channels);
    for ((_, stats), (lo, hi)) in p.stats().into_iter().zip(OPTICAL_RANGES) {
        let Some(s) = stats else {
            bad.iter_mut().for_each(|b| *b = true);
            continue;
        };
        mark(&mut bad, &s.avg, |v| lo <= v && v <= hi);
        if s.has_min_max() {
            for (((b, &avg), &min), &max) in bad.iter_mut().zip(&s.avg).zip(&s.min).zip(&s.max) {
                *b |= !(lo <= min && max <= hi && min <= avg && avg <= max);
            }
        }
    }
    bad
}

/// Fiber pairs a row may name: the cable's, or 32 without a topology.
fn fiber_pairs(cable: Option<&Cable>) -> u32 {
    cable.map_or(32, |c| c.fiber_pairs)
}

/// Channels a row may name: the cable's plan, or 400 without a topology.
fn channels(cable: Option<&Cable>) -> u32 {
    cable.map_or(400, |c| c.channel_plan.channels)
}

fn common(rules: &Rules<'_>, cable: Option<&Cable>, t: i64, fiber_pair: u32, direction: i32) -> RowResult {
    if t < rules.min_time_ns || t > rules.max_time_ns {
        return fail(
            "time_unix_ns",
            format!(
                "{} is outside the accepted window {} .. {}",
                cablewatch_proto::time::format_ns(t),
                cablewatch_proto::time::format_ns(rules.min_time_ns),
                cablewatch_proto::time::format_ns(rules.max_time_ns)
            ),
        );
    }
    let pairs = fiber_pairs(cable);
    if !(1..=pairs).contains(&fiber_pair) {
        return fail("fiber_pair", format!("{fiber_pair} is not in 1..={pairs}"));
    }
    match Direction::try_from(direction) {
        Ok(Direction::AToB | Direction::BToA) => Ok(()),
        _ => fail(
            "direction",
            format!("{direction} is not DIRECTION_A_TO_B or DIRECTION_B_TO_A"),
        ),
    }
}

fn check_stats(name: &str, s: Option<&IntervalStats>, row: usize, (lo, hi): (f32, f32)) -> RowResult {
    let Some(s) = s else {
        return fail(format!("{name}.avg"), "missing");
    };
    let avg = s.avg[row];
    if !avg.is_finite() || avg < lo || avg > hi {
        return fail(format!("{name}.avg"), format!("{avg} is not in {lo}..={hi}"));
    }
    if s.has_min_max() {
        let (min, max) = (s.min[row], s.max[row]);
        if !(min.is_finite() && max.is_finite() && min <= avg && avg <= max) {
            return fail(name, format!("min {min} <= avg {avg} <= max {max} does not hold"));
        }
        if min < lo || max > hi {
            return fail(name, format!("min {min} or max {max} is not in {lo}..={hi}"));
        }
    }
    Ok(())
}

fn optical_row(p: &OpticalChannelSamples, cable: Option<&Cable>, rules: &Rules<'_>, row: usize) -> RowResult {
    common(
        rules,
        cable,
        p.time_unix_ns[row],
        p.fiber_pair[row],
        p.direction[row],
    )?;
    let channels = channels(cable);
    let ch = p.channel[row];
    if !(1..=channels).contains(&ch) {
        return fail("channel", format!("{ch} is not in 1..={channels}"));
    }
    for ((name, stats), range) in p.stats().into_iter().zip(OPTICAL_RANGES) {
        check_stats(name, stats, row, range)?;
    }
    Ok(())
}

fn lm_row(p: &LineMonitoringSamples, cable: Option<&Cable>, rules: &Rules<'_>, row: usize) -> RowResult {
    common(
        rules,
        cable,
        p.time_unix_ns[row],
        p.fiber_pair[row],
        p.direction[row],
    )?;
    let r = p.repeater[row];
    // The physical repeater, numbered from the A end; the span it measures depends on the direction
    // (`Cable::span_covered_by`), so every repeater of the cable covers a span in both directions.
    let direction = Direction::try_from(p.direction[row])
        .ok()
        .and_then(Direction::storage_label)
        .unwrap_or(tables::DIRECTION_A_TO_B);
    match cable {
        Some(c) if c.span_covered_by(direction, r).is_none() => {
            return fail(
                "repeater",
                format!(
                    "{r} is not in 1..={} (the cable's repeaters, numbered from the A end)",
                    c.repeaters()
                ),
            );
        }
        None if !(1..=1000).contains(&r) => return fail("repeater", format!("{r} is not in 1..=1000")),
        _ => {}
    }
    let g = p.loopback_gain_db[row];
    let (lo, hi) = LOOPBACK_GAIN_RANGE_DB;
    if !g.is_finite() || g < lo || g > hi {
        return fail("loopback_gain_db", format!("{g} is not in {lo}..={hi}"));
    }
    Ok(())
}

fn latency_row(p: &LatencySamples, cable: Option<&Cable>, rules: &Rules<'_>, row: usize) -> RowResult {
    common(
        rules,
        cable,
        p.time_unix_ns[row],
        p.fiber_pair[row],
        p.direction[row],
    )?;
    for (field, id) in [
        ("src_station", &p.src_station[row]),
        ("dst_station", &p.dst_station[row]),
    ] {
        if let Err(e) = StationId::try_new(id.as_str()) {
            return fail(field, e.to_string());
        }
        if let Some(t) = rules.topology
            && t.station(id).is_none()
        {
            return fail(field, format!("unknown station {id:?}"));
        }
    }
    match LatencyKind::try_from(p.kind[row]) {
        Ok(LatencyKind::OneWay | LatencyKind::RoundTrip) => {}
        _ => {
            return fail(
                "kind",
                format!("{} is not LATENCY_KIND_ONE_WAY or _ROUND_TRIP", p.kind[row]),
            );
        }
    }
    let d = p.delay_us[row];
    let (lo, hi) = DELAY_RANGE_US;
    if !d.is_finite() || d <= lo || d > hi {
        return fail("delay_us", format!("{d} is not in ({lo}, {hi}]"));
    }
    let path = &p.path_id[row];
    if path.is_empty() || path.len() > MAX_PATH_ID_LEN {
        return fail(
            "path_id",
            format!("must be 1..={MAX_PATH_ID_LEN} bytes, is {}", path.len()),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cablewatch_proto::wire::IntervalStats;

    fn xorshift(seed: u64) -> impl FnMut() -> u64 {
        let mut state = seed | 1;
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    /// A batch with values inside and outside every rule, including NaN and infinities.
    fn messy(rows: usize, seed: u64) -> OpticalChannelSamples {
        let mut next = xorshift(seed);
        let mut pick = |good: f32, bad: &[f32]| {
            let r = next() % 120;
            if (r as usize) < bad.len() {
                bad[r as usize]
            } else {
                good + (r as f32 - 60.0) * 0.004
            }
        };
        let mut stats = |i: usize, with_min_max: bool| {
            let (lo, hi) = OPTICAL_RANGES[i];
            let good = lo + (hi - lo) * 0.3;
            // Out of range, NaN, infinities, and both bounds exactly (allowed).
            let wild = [
                f32::NAN,
                f32::INFINITY,
                f32::NEG_INFINITY,
                lo - 1.0,
                hi + 1.0,
                lo,
                hi,
                lo,
                hi,
            ];
            let avg: Vec<f32> = (0..rows).map(|_| pick(good, &wild)).collect();
            let (min, max) = if with_min_max {
                // Spread a hundredth of the range; sometimes none, inverted, NaN or infinite.
                let d = (hi - lo) * 0.01;
                (
                    avg.iter()
                        .map(|a| a - d * pick(1.0, &[-1.0, f32::NAN, 0.0, 0.0]))
                        .collect(),
                    avg.iter()
                        .map(|a| a + d * pick(1.0, &[-1.0, f32::INFINITY, 0.0, 0.0]))
                        .collect(),
                )
            } else {
                (vec![], vec![])
            };
            Some(IntervalStats { avg, min, max })
        };
        let p = OpticalChannelSamples {
            cable_id: "c".into(),
            interval_ns: 60_000_000_000,
            time_unix_ns: vec![],
            fiber_pair: vec![],
            direction: vec![],
            channel: vec![],
            rx_power_dbm: stats(0, true),
            tx_power_dbm: stats(1, false),
            osnr_db: stats(2, true),
            pre_fec_ber: stats(3, true),
            q_db: stats(4, true),
            cd_ps_nm: stats(5, true),
            dgd_ps: stats(6, true),
            pdl_db: stats(7, true),
            sop_roc_krad_s: stats(8, true),
        };
        let mut next2 = xorshift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        OpticalChannelSamples {
            time_unix_ns: (0..rows)
                .map(|_| [1_000, 5_000, 9_999, 10_000, 3_000, 10_001, -1, 999][(next2() % 8) as usize])
                .collect(),
            fiber_pair: (0..rows).map(|_| (next2() % 34) as u32).collect(),
            direction: (0..rows)
                .map(|_| [1, 2, 1, 2, 1, 2, 0, 3][(next2() % 8) as usize])
                .collect(),
            channel: (0..rows)
                .map(|_| [0, 1, 48, 96, 400, 401, 7, 9][(next2() % 8) as usize])
                .collect(),
            ..p
        }
    }

    #[test]
    fn column_checks_give_the_row_by_row_verdict() {
        let rules = Rules {
            topology: None,
            min_time_ns: 1_000,
            max_time_ns: 10_000,
        };
        let mut rejected = 0;
        for seed in 1..40 {
            let rows = (seed as usize * 7) % 300;
            let o = messy(rows, seed);
            let suspects = optical_suspects(&o, None, &rules, rows)
                .iter()
                .filter(|&&b| b)
                .count();
            let p = Payload::Optical(o);
            let fast = validate(&p, None, &rules, rows);
            let slow = validate_rows(&p, None, &rules, rows, |_| true);
            assert_eq!(fast, slow, "seed {seed}");
            assert_eq!(
                suspects, slow.rejected,
                "seed {seed}: the column checks flag exactly the failures"
            );
            rejected += fast.rejected;
        }
        assert!(
            rejected > 100,
            "the batches must exercise rejection, got {rejected}"
        );
    }
}
