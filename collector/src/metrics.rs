//! Counters for operators, rendered in the Prometheus text format by the admin port.
//!
//! Per station: batches by outcome, rows accepted and rejected, and the time the station was last
//! heard from, which stays (growing stale) when a station goes quiet, so an alert can fire on it.
//! Collector-wide: write-ahead log syncs and their total time, backlog not yet in Parquet, overload
//! refusals, checkpoints.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::Mutex,
    time::{SystemTime, UNIX_EPOCH},
};

use cablewatch_proto::wire::{AckStatus, BatchAck};

use crate::CollectorError;

/// Most stations tracked; more (only possible without a topology) are counted under `other`.
pub const MAX_STATIONS: usize = 10_000;

/// Counters of one station.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StationCounters {
    /// Batches by outcome (`accepted`, `partial`, `rejected`, `duplicate`, `retry_later`, `error`).
    pub batches: BTreeMap<&'static str, u64>,
    /// Rows stored.
    pub rows_accepted: u64,
    /// Rows rejected as invalid.
    pub rows_rejected: u64,
    /// Unix time of the last batch, seconds.
    pub last_seen_s: f64,
}

/// Per-station counters.
#[derive(Debug, Default)]
pub struct Metrics {
    stations: Mutex<BTreeMap<String, StationCounters>>,
}

impl Metrics {
    /// Records the outcome of one batch from `station`.
    pub fn observe(&self, station: &str, result: &Result<BatchAck, CollectorError>) {
        let Ok(mut stations) = self.stations.lock() else {
            return;
        };
        let known = stations.contains_key(station) || stations.len() < MAX_STATIONS;
        let valid = cablewatch_proto::StationId::try_new(station).is_ok();
        let name = if known && valid { station } else { "other" };
        let c = stations.entry(name.to_owned()).or_default();
        let outcome = match result {
            Ok(ack) if ack.duplicate => "duplicate",
            Ok(ack) => match ack.status() {
                AckStatus::Accepted => "accepted",
                AckStatus::Partial => "partial",
                AckStatus::RetryLater => "retry_later",
                AckStatus::Rejected | AckStatus::Unspecified => "rejected",
            },
            Err(CollectorError::Overloaded { .. }) => "retry_later",
            Err(_) => "error",
        };
        *c.batches.entry(outcome).or_default() += 1;
        if let Ok(ack) = result
            && !ack.duplicate
        {
            c.rows_accepted += u64::from(ack.accepted_rows);
            c.rows_rejected += u64::from(ack.rejected_rows);
        }
        c.last_seen_s = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
    }

    /// A copy of every station's counters.
    pub fn stations(&self) -> BTreeMap<String, StationCounters> {
        self.stations.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// Collector-wide values rendered next to the station counters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Gauges {
    /// 1 while admitting batches.
    pub admitting: bool,
    /// Rows waiting for a checkpoint.
    pub buffered_rows: u64,
    /// Write-ahead log bytes not yet in Parquet.
    pub backlog_bytes: u64,
    /// WAL syncs.
    pub wal_syncs: u64,
    /// Total time in WAL syncs, seconds.
    pub wal_sync_seconds: f64,
    /// WAL records.
    pub wal_records: u64,
    /// Batches refused over the buffer budget.
    pub overload_rejections: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// The Prometheus text exposition of `stations` and `g`.
pub fn render(stations: &BTreeMap<String, StationCounters>, g: &Gauges) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "cablewatch_batches_total",
        "counter",
        "Batches by reporting station and outcome.",
    );
    for (station, c) in stations {
        for (outcome, n) in &c.batches {
            let _ = writeln!(
                out,
                "cablewatch_batches_total{{station=\"{station}\",outcome=\"{outcome}\"}} {n}"
            );
        }
    }
    type Value = fn(&StationCounters) -> String;
    let per_station: [(&str, &str, &str, Value); 3] = [
        (
            "cablewatch_rows_accepted_total",
            "counter",
            "Rows durably stored, by station.",
            |c| c.rows_accepted.to_string(),
        ),
        (
            "cablewatch_rows_rejected_total",
            "counter",
            "Rows rejected as invalid, by station.",
            |c| c.rows_rejected.to_string(),
        ),
        (
            "cablewatch_station_last_seen_seconds",
            "gauge",
            "Unix time of the station's last batch; stays, growing stale, when the station goes quiet.",
            |c| format!("{:.3}", c.last_seen_s),
        ),
    ];
    for (name, kind, help, value) in per_station {
        family(&mut out, name, kind, help);
        for (station, c) in stations {
            let _ = writeln!(out, "{name}{{station=\"{station}\"}} {}", value(c));
        }
    }
    let scalars: [(&str, &str, &str, f64); 8] = [
        (
            "cablewatch_admitting",
            "gauge",
            "1 while the collector admits batches, 0 while shutting down.",
            f64::from(u8::from(g.admitting)),
        ),
        (
            "cablewatch_buffered_rows",
            "gauge",
            "Accepted rows waiting for the next checkpoint to Parquet.",
            g.buffered_rows as f64,
        ),
        (
            "cablewatch_backlog_bytes",
            "gauge",
            "Write-ahead log bytes not yet checkpointed to Parquet.",
            g.backlog_bytes as f64,
        ),
        (
            "cablewatch_wal_syncs_total",
            "counter",
            "Write-ahead log fdatasync calls (one per commit group).",
            g.wal_syncs as f64,
        ),
        (
            "cablewatch_wal_sync_seconds_total",
            "counter",
            "Time spent in write-ahead log syncs.",
            g.wal_sync_seconds,
        ),
        (
            "cablewatch_wal_records_total",
            "counter",
            "Batches written to the write-ahead log.",
            g.wal_records as f64,
        ),
        (
            "cablewatch_overload_rejections_total",
            "counter",
            "Batches asked to retry because the buffer budget was full.",
            g.overload_rejections as f64,
        ),
        (
            "cablewatch_checkpoints_total",
            "counter",
            "Checkpoints written to Parquet.",
            g.checkpoints as f64,
        ),
    ];
    for (name, kind, help, value) in scalars {
        family(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
    out
}
