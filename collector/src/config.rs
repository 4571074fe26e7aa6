//! Collector configuration: where to listen, where to store, which plant to validate against.

use std::{net::SocketAddr, path::PathBuf};

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
}

impl CollectorConfig {
    /// A loopback collector storing under `data_dir`, with defaults for everything else.
    pub fn loopback(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            topology: None,
            parquet: ParquetOptions::default(),
        }
    }
}
