//! Counters for operators, rendered in the Prometheus text format by the admin port.
//!
//! Per station: batches by outcome, rows accepted and rejected, and the time the station was last
//! heard from, which stays (growing stale) when a station goes quiet, so an alert can fire on it.
//! Collector-wide: write-ahead log sync latency histogram and quarantined segments, backlog not yet
//! in Parquet, data and free disk bytes, in-flight bytes, refusals per budget, checkpoints.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::Mutex,
    time::{SystemTime, UNIX_EPOCH},
};

use cablewatch_proto::wire::{AckStatus, BatchAck};

use crate::{CollectorError, limits::BUDGETS, wal::SYNC_BUCKETS_S};

/// Most stations tracked; more (only possible without a topology) are counted under `other`.
pub const MAX_STATIONS: usize = 10_000;

/// Counters of one station.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StationCounters {
    /// Batches by outcome: `accepted`, `partial`, `rejected` (every row invalid), `duplicate`,
    /// `retry_later`, or the reason the batch was refused ([`CollectorError::reason`]).
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
            Err(e) => e.reason(),
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
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gauges {
    /// 1 while admitting batches.
    pub admitting: bool,
    /// The disk budgets leave room for more data.
    pub disk_ok: bool,
    /// Rows waiting for a checkpoint.
    pub buffered_rows: u64,
    /// Write-ahead log bytes not yet in Parquet.
    pub backlog_bytes: u64,
    /// Parquet and write-ahead log bytes under the data directory.
    pub data_bytes: u64,
    /// Free bytes on the data directory's file system, when readable.
    pub free_disk_bytes: Option<u64>,
    /// Bytes of batches being validated and logged now.
    pub in_flight_bytes: u64,
    /// WAL syncs.
    pub wal_syncs: u64,
    /// Total time in WAL syncs, seconds.
    pub wal_sync_seconds: f64,
    /// WAL syncs per latency bucket ([`SYNC_BUCKETS_S`], then slower), not cumulative.
    pub wal_sync_buckets: [u64; SYNC_BUCKETS_S.len() + 1],
    /// Segments quarantined as corrupt when the log was opened.
    pub wal_quarantined_segments: u64,
    /// WAL records.
    pub wal_records: u64,
    /// Batches refused per budget, in the order of [`BUDGETS`].
    pub refusals: [u64; 4],
    /// Checkpoints written.
    pub checkpoints: u64,
    /// Streams ended by a message that could not be read, in the order of
    /// [`StreamError::ALL`](crate::service::StreamError::ALL).
    pub stream_errors: [u64; 3],
    /// Batches stored whose acknowledgement could not be delivered (the station went away).
    pub acks_undelivered: u64,
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
    let scalars: [(&str, &str, &str, Option<f64>); 9] = [
        (
            "cablewatch_admitting",
            "gauge",
            "1 while the collector admits batches, 0 while shutting down.",
            Some(f64::from(u8::from(g.admitting))),
        ),
        (
            "cablewatch_disk_ok",
            "gauge",
            "1 while the free-disk and data-size budgets leave room, 0 when batches are refused for disk.",
            Some(f64::from(u8::from(g.disk_ok))),
        ),
        (
            "cablewatch_buffered_rows",
            "gauge",
            "Accepted rows waiting for the next checkpoint to Parquet.",
            Some(g.buffered_rows as f64),
        ),
        (
            "cablewatch_backlog_bytes",
            "gauge",
            "Write-ahead log bytes not yet checkpointed to Parquet.",
            Some(g.backlog_bytes as f64),
        ),
        (
            "cablewatch_data_bytes",
            "gauge",
            "Parquet parts and write-ahead log under the data directory.",
            Some(g.data_bytes as f64),
        ),
        (
            "cablewatch_free_disk_bytes",
            "gauge",
            "Free space on the data directory's file system.",
            g.free_disk_bytes.map(|b| b as f64),
        ),
        (
            "cablewatch_in_flight_bytes",
            "gauge",
            "Bytes of batches being validated and logged now.",
            Some(g.in_flight_bytes as f64),
        ),
        (
            "cablewatch_wal_records_total",
            "counter",
            "Batches written to the write-ahead log.",
            Some(g.wal_records as f64),
        ),
        (
            "cablewatch_checkpoints_total",
            "counter",
            "Checkpoints written to Parquet.",
            Some(g.checkpoints as f64),
        ),
    ];
    for (name, kind, help, value) in scalars {
        if let Some(value) = value {
            family(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
    }
    family(
        &mut out,
        "cablewatch_wal_quarantined_segments",
        "gauge",
        "Write-ahead log segments moved to quarantine as corrupt when the collector started; look in <data>/_wal/quarantine.",
    );
    let _ = writeln!(
        out,
        "cablewatch_wal_quarantined_segments {}",
        g.wal_quarantined_segments
    );
    family(
        &mut out,
        "cablewatch_wal_sync_seconds",
        "histogram",
        "Latency of write-ahead log fdatasync calls (one per commit group).",
    );
    let mut cumulative = 0;
    for (i, n) in g.wal_sync_buckets.iter().enumerate() {
        cumulative += n;
        let le = SYNC_BUCKETS_S
            .get(i)
            .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
        let _ = writeln!(
            out,
            "cablewatch_wal_sync_seconds_bucket{{le=\"{le}\"}} {cumulative}"
        );
    }
    let _ = writeln!(out, "cablewatch_wal_sync_seconds_sum {}", g.wal_sync_seconds);
    let _ = writeln!(out, "cablewatch_wal_sync_seconds_count {}", g.wal_syncs);
    family(
        &mut out,
        "cablewatch_overload_rejections_total",
        "counter",
        "Batches asked to retry later, by the budget that was full.",
    );
    for (budget, n) in BUDGETS.iter().zip(g.refusals) {
        let _ = writeln!(
            out,
            "cablewatch_overload_rejections_total{{budget=\"{}\"}} {n}",
            budget.label().trim_start_matches("over_")
        );
    }
    family(
        &mut out,
        "cablewatch_stream_errors_total",
        "counter",
        "Station streams ended by a message that could not be read (undecodable, too_large) or by a broken transport.",
    );
    for (kind, n) in crate::service::StreamError::ALL.iter().zip(g.stream_errors) {
        let _ = writeln!(
            out,
            "cablewatch_stream_errors_total{{reason=\"{}\"}} {n}",
            kind.label()
        );
    }
    family(
        &mut out,
        "cablewatch_acks_undelivered_total",
        "counter",
        "Batches stored whose acknowledgement the collector still held when the station went away (those already handed to the connection are not counted, so this is a lower bound); the station resends them and is told they are duplicates.",
    );
    let _ = writeln!(out, "cablewatch_acks_undelivered_total {}", g.acks_undelivered);
    out
}
