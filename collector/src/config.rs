//! Collector configuration: where to listen, where to store, which plant to validate against.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use cablewatch_proto::store::ParquetOptions;

/// What a collector runs with.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    /// gRPC listen address; port 0 picks a free port. Plain text, so loopback only for now.
    pub listen: SocketAddr,
    /// Root of the stored tables.
    pub data_dir: PathBuf,
    /// Topology file to validate cables, fiber pairs, channels and repeaters against. Without one,
    /// only the structure and physical ranges of rows are checked.
    pub topology: Option<PathBuf>,
    /// Parquet writer settings.
    pub parquet: ParquetOptions,
    /// Checkpoint when this many accepted rows are buffered; default 500,000.
    pub flush_rows: usize,
    /// Checkpoint at least this often while rows are buffered; default 10 s.
    pub flush_interval: Duration,
    /// Most accepted rows held in memory awaiting a checkpoint; past it batches are answered
    /// `RETRY_LATER` / `RESOURCE_EXHAUSTED`. Default 4,000,000 (about 600 MB of optical rows).
    pub max_buffered_rows: usize,
    /// Store accepted rows (the default). `false` validates and acknowledges without storing
    /// anything: only for measuring the transport ceiling in benchmarks.
    pub persist: bool,
    /// HTTP admin port (`/metrics`, `/livez`, `/readyz`); `None` turns it off. Loopback only while
    /// the collector serves plain text.
    pub admin_listen: Option<SocketAddr>,
}

impl CollectorConfig {
    /// A loopback collector storing under `data_dir`, with defaults for everything else.
    pub fn loopback(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            topology: None,
            parquet: ParquetOptions::default(),
            flush_rows: 500_000,
            flush_interval: Duration::from_secs(10),
            max_buffered_rows: 4_000_000,
            persist: true,
            admin_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        }
    }
}
