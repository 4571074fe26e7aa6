//! Collector configuration: where to listen, where to store, which plant to validate against.
//!
//! Read from a TOML file (`collector/collector.example.toml` documents every key) by
//! [`CollectorConfig::from_toml_file`]; flags and environment variables override it.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use cablewatch_proto::store::ParquetOptions;
use serde::Deserialize;

use crate::CollectorError;

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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    admin_listen: Option<String>,
    data_dir: Option<PathBuf>,
    topology: Option<PathBuf>,
    #[serde(default)]
    checkpoint: CheckpointSection,
    #[serde(default)]
    limits: LimitsSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointSection {
    rows: Option<usize>,
    interval_s: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsSection {
    max_buffered_rows: Option<usize>,
}

/// Parses an admin address: `off` or a socket address.
pub fn parse_admin_listen(text: &str) -> Result<Option<SocketAddr>, String> {
    match text {
        "off" => Ok(None),
        addr => addr
            .parse()
            .map(Some)
            .map_err(|e| format!("admin_listen {addr:?} is not an address or \"off\": {e}")),
    }
}

impl CollectorConfig {
    /// Reads a TOML configuration file over the defaults; relative paths are resolved against the
    /// file's directory. Unknown keys are errors naming the key.
    pub fn from_toml_file(path: &std::path::Path) -> Result<Self, CollectorError> {
        let bad = |reason: String| CollectorError::Config {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let file: FileConfig = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let base = path.parent().unwrap_or(std::path::Path::new("."));
        let mut c = Self::loopback(base.join(file.data_dir.unwrap_or_else(|| PathBuf::from("data"))));
        c.admin_listen = Some(SocketAddr::from(([127, 0, 0, 1], 9464)));
        if let Some(listen) = file.listen {
            c.listen = listen;
        }
        if let Some(admin) = file.admin_listen {
            c.admin_listen = parse_admin_listen(&admin).map_err(bad)?;
        }
        c.topology = file.topology.map(|t| base.join(t));
        if let Some(rows) = file.checkpoint.rows {
            c.flush_rows = rows;
        }
        if let Some(s) = file.checkpoint.interval_s {
            if !(s.is_finite() && s > 0.0) {
                return Err(bad(format!(
                    "checkpoint.interval_s: {s} is not a positive number of seconds"
                )));
            }
            c.flush_interval = Duration::from_secs_f64(s);
        }
        if let Some(max) = file.limits.max_buffered_rows {
            c.max_buffered_rows = max;
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn example_file_parses_with_paths_relative_to_it() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("collector.example.toml");
        let c = CollectorConfig::from_toml_file(&path).unwrap();
        assert_eq!(c.listen, "127.0.0.1:50051".parse().unwrap());
        assert_eq!(c.admin_listen, Some("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(c.data_dir, path.parent().unwrap().join("data"));
        let topology = c.topology.unwrap();
        assert!(
            topology.is_file(),
            "{} should be the example plant",
            topology.display()
        );
        assert_eq!((c.flush_rows, c.max_buffered_rows), (500_000, 4_000_000));
        assert_eq!(c.flush_interval, Duration::from_secs(10));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[checkpoint]\nrow = 5\n").unwrap();
        let err = CollectorConfig::from_toml_file(&path).unwrap_err().to_string();
        assert!(err.contains("row") && err.contains("c.toml"), "{err}");
        std::fs::write(&path, "admin_listen = \"everywhere\"\n").unwrap();
        let err = CollectorConfig::from_toml_file(&path).unwrap_err().to_string();
        assert!(err.contains("everywhere"), "{err}");
    }
}
