//! Integration tests of the contracts: the wire round-trips, tables written through the shared
//! definitions read back with polars, and the example topology validates.
#![allow(clippy::unwrap_used, missing_docs)]

mod tables;
mod topology;
mod wire;

use cablewatch_proto::wire::{
    Direction, IntervalStats, LatencyKind, LatencySamples, LineMonitoringSamples, OpticalChannelSamples,
};

/// 2026-11-21T00:00:00Z.
pub const T0: i64 = 1_795_219_200_000_000_000;

fn stats(avg: &[f32]) -> Option<IntervalStats> {
    Some(IntervalStats {
        avg: avg.to_vec(),
        min: avg.iter().map(|v| v - 0.5).collect(),
        max: avg.iter().map(|v| v + 0.5).collect(),
    })
}

/// Four optical rows, deliberately out of sort order, one of them on the next UTC day.
pub fn optical() -> OpticalChannelSamples {
    let b = Direction::BToA as i32;
    let a = Direction::AToB as i32;
    OpticalChannelSamples {
        cable_id: "c1".into(),
        interval_ns: 900_000_000_000,
        time_unix_ns: vec![T0 + 60, T0, T0 + 86_400_000_000_000, T0 + 30],
        fiber_pair: vec![2, 2, 1, 1],
        direction: vec![b, a, a, a],
        channel: vec![7, 7, 3, 4],
        rx_power_dbm: stats(&[-10.0, -11.0, -12.0, -13.0]),
        tx_power_dbm: stats(&[1.0, 1.1, 1.2, 1.3]),
        osnr_db: stats(&[18.0, 18.1, 18.2, 18.3]),
        pre_fec_ber: Some(IntervalStats {
            avg: vec![1e-3, 2e-3, 3e-3, 4e-3],
            min: vec![],
            max: vec![],
        }),
        q_db: stats(&[9.0, 9.1, 9.2, 9.3]),
        cd_ps_nm: stats(&[100_000.0, 100_001.0, 100_002.0, 100_003.0]),
        dgd_ps: stats(&[3.0, 3.1, 3.2, 3.3]),
        pdl_db: stats(&[1.0, 1.1, 1.2, 1.3]),
        sop_roc_krad_s: stats(&[0.5, 0.6, 0.7, 50.0]),
    }
}

/// Two line-monitoring rows.
pub fn line_monitoring() -> LineMonitoringSamples {
    LineMonitoringSamples {
        cable_id: "c1".into(),
        time_unix_ns: vec![T0, T0],
        sweep_id: vec![9, 9],
        fiber_pair: vec![1, 1],
        direction: vec![Direction::AToB as i32; 2],
        repeater: vec![2, 1],
        loopback_gain_db: vec![-31.5, -32.25],
    }
}

/// Two latency rows.
pub fn latency() -> LatencySamples {
    LatencySamples {
        cable_id: "c1".into(),
        time_unix_ns: vec![T0, T0 + 60_000_000_000],
        fiber_pair: vec![1, 1],
        direction: vec![Direction::AToB as i32; 2],
        src_station: vec!["a".into(), "a".into()],
        dst_station: vec!["b".into(), "b".into()],
        kind: vec![LatencyKind::OneWay as i32, LatencyKind::RoundTrip as i32],
        delay_us: vec![6097.25, 12_194.5],
        path_id: vec!["c1/fp1/primary".into(), "c1/fp1/backup".into()],
    }
}
