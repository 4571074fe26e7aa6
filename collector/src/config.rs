//! Collector configuration: where to listen, where to store, which plant to validate against.
//!
//! Read from a TOML file (`collector/collector.example.toml` documents every key) by
//! [`CollectorConfig::from_toml_file`]; flags and environment variables override it.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    path::PathBuf,
    time::Duration,
};

use cablewatch_proto::{StationId, store::ParquetOptions};
use serde::Deserialize;

use crate::{CollectorError, limits::Limits, tls::TlsSettings};

/// What a collector runs with.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    /// gRPC listen address; port 0 picks a free port. Without `tls`, loopback only unless
    /// `plaintext_off_loopback`.
    pub listen: SocketAddr,
    /// TLS with client certificates; `None` serves plain text.
    pub tls: Option<TlsSettings>,
    /// Allow plain text (gRPC without `tls`, and the admin port) on addresses other than loopback.
    pub plaintext_off_loopback: bool,
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
    /// Memory and disk budgets; past one, batches are answered `RETRY_LATER` / `RESOURCE_EXHAUSTED`.
    pub limits: Limits,
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
            tls: None,
            plaintext_off_loopback: false,
            data_dir: data_dir.into(),
            topology: None,
            parquet: ParquetOptions::default(),
            flush_rows: 500_000,
            flush_interval: Duration::from_secs(10),
            limits: Limits::default(),
            persist: true,
            admin_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    #[serde(default)]
    plaintext_off_loopback: bool,
    admin_listen: Option<String>,
    data_dir: Option<PathBuf>,
    topology: Option<PathBuf>,
    #[serde(default)]
    checkpoint: CheckpointSection,
    #[serde(default)]
    limits: LimitsSection,
    tls: Option<TlsSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsSection {
    cert: PathBuf,
    key: PathBuf,
    client_ca: PathBuf,
    #[serde(default)]
    identities: BTreeMap<String, BTreeSet<StationId>>,
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
    max_in_flight_bytes: Option<u64>,
    min_free_disk_bytes: Option<u64>,
    max_data_bytes: Option<u64>,
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
        let l = file.limits;
        c.limits = Limits {
            max_buffered_rows: l.max_buffered_rows.unwrap_or(c.limits.max_buffered_rows),
            max_in_flight_bytes: l.max_in_flight_bytes.unwrap_or(c.limits.max_in_flight_bytes),
            min_free_disk_bytes: l.min_free_disk_bytes.unwrap_or(c.limits.min_free_disk_bytes),
            max_data_bytes: l.max_data_bytes.or(c.limits.max_data_bytes),
        };
        c.plaintext_off_loopback = file.plaintext_off_loopback;
        c.tls = file.tls.map(|t| TlsSettings {
            cert: base.join(t.cert),
            key: base.join(t.key),
            client_ca: base.join(t.client_ca),
            identities: t.identities,
        });
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
        assert_eq!((c.flush_rows, c.limits), (500_000, Limits::default()));
        assert!(c.tls.is_none() && !c.plaintext_off_loopback);
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

    #[test]
    fn tls_section_and_limits_parse_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "listen = \"0.0.0.0:50051\"\n[limits]\nmin_free_disk_bytes = 5\nmax_data_bytes = 7\n\
             [tls]\ncert = \"certs/c.pem\"\nkey = \"certs/c.key\"\nclient_ca = \"certs/ca.pem\"\n\
             [tls.identities]\n\"bude.example\" = [\"bude\"]\n",
        )
        .unwrap();
        let c = CollectorConfig::from_toml_file(&path).unwrap();
        assert_eq!(
            (c.limits.min_free_disk_bytes, c.limits.max_data_bytes),
            (5, Some(7))
        );
        assert_eq!(c.limits.max_buffered_rows, Limits::default().max_buffered_rows);
        let tls = c.tls.unwrap();
        assert_eq!(tls.cert, dir.path().join("certs/c.pem"));
        assert_eq!(tls.identities["bude.example"].len(), 1);

        std::fs::write(
            &path,
            "[tls]\ncert = \"a\"\nkey = \"b\"\nclient_ca = \"c\"\n[tls.identities]\nx = [\"../etc\"]\n",
        )
        .unwrap();
        let err = CollectorConfig::from_toml_file(&path).unwrap_err().to_string();
        assert!(err.contains("identities") || err.contains("../etc"), "{err}");
    }
}
