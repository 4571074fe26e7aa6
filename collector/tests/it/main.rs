//! Collector integration tests: a real server on 127.0.0.1, the generated gRPC client, real files
//! read back with polars.
#![allow(clippy::unwrap_used, missing_docs)]

mod binary;
mod http2;
mod ingest;
mod power_cut;
mod tls;

use std::path::{Path, PathBuf};

use cablewatch_collector::{CollectorConfig, RunningCollector};
use cablewatch_proto::wire::{
    AckStatus, Batch, Direction, IntervalStats, OpticalChannelSamples, Payload,
    v1::telemetry_ingest_client::TelemetryIngestClient,
};
use tokio_stream::StreamExt as _;
use tonic::transport::Channel;

pub const TOPOLOGY: &str = r#"
[[station]]
id = "north"
name = "North"
latitude = 50.0
longitude = -5.0

[[station]]
id = "south"
name = "South"
latitude = 43.0
longitude = -3.0

[[station]]
id = "elsewhere"
name = "Elsewhere"
latitude = 0.0
longitude = 0.0

[[cable]]
id = "c1"
name = "Cable one"
a_station = "north"
b_station = "south"
length_km = 300.0
fiber_pairs = 2
repeater_km = [70.0, 140.0, 210.0]
channel_plan = { channels = 8, first_thz = 192.0, spacing_ghz = 50.0 }

[[cable]]
id = "c2"
name = "Cable two"
a_station = "elsewhere"
b_station = "south"
length_km = 100.0
fiber_pairs = 1
channel_plan = { channels = 4, first_thz = 192.0, spacing_ghz = 50.0 }
"#;

/// A temporary directory with the test topology, and a free loopback port.
pub fn binary_setup() -> (tempfile::TempDir, u16) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("topology.toml"), TOPOLOGY).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    (dir, port)
}

/// 2026-11-01T00:00:00Z, safely in the past.
pub const T0: i64 = 1_793_491_200_000_000_000;

#[derive(Debug)]
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub collector: Option<RunningCollector>,
    tune: fn(&mut CollectorConfig),
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tune: fn(&mut CollectorConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("topology.toml"), TOPOLOGY).unwrap();
        let mut h = Self {
            dir,
            collector: None,
            tune,
        };
        h.restart().await;
        h
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub async fn restart(&mut self) {
        if let Some(c) = self.collector.take() {
            c.shutdown().await.unwrap();
        }
        let mut config = CollectorConfig::loopback(self.data());
        config.topology = Some(self.dir.path().join("topology.toml"));
        (self.tune)(&mut config);
        self.collector = Some(cablewatch_collector::start(config).await.unwrap());
    }

    /// Writes everything acknowledged so far to Parquet (it is durable in the WAL already).
    pub async fn checkpoint(&self) {
        self.collector
            .as_ref()
            .unwrap()
            .store()
            .checkpoint()
            .await
            .unwrap();
    }

    /// Rows of `table` in Parquet after a checkpoint of everything acknowledged so far.
    pub async fn stored_rows(&self, table: &cablewatch_proto::tables::Table) -> usize {
        self.checkpoint().await;
        stored(&self.data(), table).height()
    }

    pub async fn client(&self) -> TelemetryIngestClient<Channel> {
        TelemetryIngestClient::connect(self.collector.as_ref().unwrap().url())
            .await
            .unwrap()
    }
}

fn stat(avg: Vec<f32>) -> Option<IntervalStats> {
    Some(IntervalStats {
        min: avg.iter().map(|v| v - 0.1).collect(),
        max: avg.iter().map(|v| v + 0.1).collect(),
        avg,
    })
}

/// `rows` valid optical rows for cable c1, direction A to B (reported by the B end, `south`).
pub fn optical_batch(sequence: u64, rows: usize) -> Batch {
    let n = rows;
    let f = |base: f32| stat((0..n).map(|i| base + i as f32 * 0.001).collect());
    Batch {
        station_id: "south".into(),
        stream_epoch: 7,
        sequence,
        payload: Some(Payload::Optical(OpticalChannelSamples {
            cable_id: "c1".into(),
            interval_ns: 60_000_000_000,
            time_unix_ns: (0..n)
                .map(|i| T0 + (sequence as i64 * n as i64 + i as i64) * 1_000_000_000)
                .collect(),
            fiber_pair: (0..n).map(|i| 1 + (i % 2) as u32).collect(),
            direction: vec![Direction::AToB as i32; n],
            channel: (0..n).map(|i| 1 + (i % 8) as u32).collect(),
            rx_power_dbm: f(-12.0),
            tx_power_dbm: f(1.0),
            osnr_db: f(20.0),
            pre_fec_ber: Some(IntervalStats {
                avg: vec![1e-3; n],
                min: vec![5e-4; n],
                max: vec![2e-3; n],
            }),
            q_db: f(9.0),
            cd_ps_nm: f(6000.0),
            dgd_ps: f(1.0),
            pdl_db: f(0.8),
            sop_roc_krad_s: f(0.3),
        })),
    }
}

/// Every row stored under `data` for `table`, read with polars (on its own thread: polars' async
/// reader refuses to run inside a current-thread tokio runtime).
pub fn stored(data: &Path, table: &cablewatch_proto::tables::Table) -> polars::prelude::DataFrame {
    let glob = cablewatch_proto::layout::table_glob(data, table);
    std::thread::scope(|s| s.spawn(|| read(&glob)).join().unwrap())
}

fn read(glob: &Path) -> polars::prelude::DataFrame {
    use polars::prelude::*;
    LazyFrame::scan_parquet(
        PlRefPath::new(glob.to_string_lossy().as_ref()),
        ScanArgsParquet {
            hive_options: HiveOptions::new_enabled(),
            ..Default::default()
        },
    )
    .unwrap()
    .collect()
    .unwrap()
}

/// Streams batches `seqs` of `rows` rows each as fast as the collector reads them, until every one
/// is acknowledged or the stream ends (collector killed or shutting down). Returns the ledger: the
/// sequences acknowledged as stored, and the highest sequence sent.
pub async fn stream_ledger(url: String, seqs: std::ops::Range<u64>, rows: usize) -> (Vec<u64>, Option<u64>) {
    let Ok(mut client) = TelemetryIngestClient::connect(url).await else {
        return (Vec::new(), None);
    };
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let Ok(response) = client
        .stream_batches(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
    else {
        return (Vec::new(), None);
    };
    let mut acks = response.into_inner();
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX));
    let sender = {
        let sent = std::sync::Arc::clone(&sent);
        tokio::spawn(async move {
            for seq in seqs {
                if tx.send(optical_batch(seq, rows)).await.is_err() {
                    break;
                }
                sent.store(seq, std::sync::atomic::Ordering::SeqCst);
            }
        })
    };
    let mut acked = Vec::new();
    while let Some(Ok(ack)) = acks.next().await {
        if ack.status() == AckStatus::Accepted {
            acked.push(ack.sequence);
        }
    }
    sender.abort();
    let last = sent.load(std::sync::atomic::Ordering::SeqCst);
    (acked, (last != u64::MAX).then_some(last))
}

/// Stored rows per batch sequence of [`optical_batch`]es of `rows` rows (their times identify them).
pub fn rows_per_sequence(
    df: &polars::prelude::DataFrame,
    rows: usize,
) -> std::collections::BTreeMap<u64, usize> {
    use polars::prelude::*;
    let times = df
        .column(cablewatch_proto::tables::col::TIME)
        .unwrap()
        .cast(&DataType::Int64)
        .unwrap();
    let mut out = std::collections::BTreeMap::new();
    for t in times.i64().unwrap().into_no_null_iter() {
        let seq = ((t - T0) / 1_000_000_000) as u64 / rows as u64;
        *out.entry(seq).or_default() += 1;
    }
    out
}

/// Bytes of write-ahead log segments under `data` (0 once a final checkpoint has run).
pub fn wal_log_bytes(data: &Path) -> u64 {
    std::fs::read_dir(data.join("_wal"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}
