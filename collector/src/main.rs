//! `cablewatch-collector`: serves the telemetry ingest gRPC service until SIGINT or SIGTERM.

use std::io::IsTerminal as _;
use std::{net::SocketAddr, path::PathBuf};

use cablewatch_collector::{
    CollectorConfig,
    config::parse_admin_listen,
    tls::{TlsSettings, parse_identity, write_dev_certs},
};
use cablewatch_proto::{StationId, topology::Topology};
use clap::{Parser, Subcommand};

/// mimalloc: with glibc malloc a quarter of ingest CPU went to the kernel zeroing pages that were
/// returned and faulted in again around every batch (`benches/README.md`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Receives landing-station telemetry over gRPC and stores it durably as Parquet.
///
/// Settings come from flags, then environment variables, then `--config FILE`, then defaults.
#[derive(Debug, Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: Args,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Writes a throwaway CA, a collector certificate and one client certificate per station, plus
    /// `tls.toml` binding each station's certificate to that station. For trying TLS and for
    /// tests; use your own PKI in production.
    DevCerts {
        /// Directory to write into.
        #[arg(long)]
        out: PathBuf,
        /// A station to make a certificate for (repeatable).
        #[arg(long = "station")]
        stations: Vec<StationId>,
        /// Make certificates for every station of this topology file.
        #[arg(long)]
        topology: Option<PathBuf>,
        /// Extra host name or IP address for the collector certificate (repeatable; localhost,
        /// 127.0.0.1 and ::1 are always included).
        #[arg(long = "host")]
        hosts: Vec<String>,
    },
}

/// Serving settings.
#[derive(Debug, clap::Args)]
struct Args {
    /// TOML configuration file (example: collector/collector.example.toml).
    #[arg(long, env = "CABLEWATCH_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (plain text: loopback only) [default: 127.0.0.1:50051].
    #[arg(long, env = "CABLEWATCH_LISTEN")]
    listen: Option<SocketAddr>,
    /// PEM certificate chain to serve TLS with (with --tls-key and --tls-client-ca).
    #[arg(long, env = "CABLEWATCH_TLS_CERT", requires_all = ["tls_key", "tls_client_ca"])]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "CABLEWATCH_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// PEM CA certificate that station client certificates must chain to.
    #[arg(long, env = "CABLEWATCH_TLS_CLIENT_CA", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Certificate identity and the stations it may write: NAME=STATION[,STATION...] (repeatable;
    /// adds to the config file's [tls.identities]).
    #[arg(long = "tls-identity", value_parser = parse_identity)]
    tls_identities: Vec<(String, std::collections::BTreeSet<StationId>)>,
    /// Allow plain text (gRPC without TLS, the admin port) on addresses other than loopback.
    #[arg(long, env = "CABLEWATCH_PLAINTEXT_OFF_LOOPBACK")]
    plaintext_off_loopback: bool,
    /// Root directory of the stored tables [default: data].
    #[arg(long, env = "CABLEWATCH_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Topology file (TOML) to validate cables, fiber pairs, channels and repeaters against.
    #[arg(long, env = "CABLEWATCH_TOPOLOGY")]
    topology: Option<PathBuf>,
    /// HTTP admin port for /metrics, /livez and /readyz (loopback), or `off` [default: 127.0.0.1:9464].
    #[arg(long, env = "CABLEWATCH_ADMIN_LISTEN")]
    admin_listen: Option<String>,
    /// Most accepted rows held in memory awaiting Parquet; past it stations are asked to retry
    /// [default: 4000000].
    #[arg(long, env = "CABLEWATCH_MAX_BUFFERED_ROWS")]
    max_buffered_rows: Option<usize>,
    /// Most bytes of batches being validated and logged at once [default: 268435456].
    #[arg(long, env = "CABLEWATCH_MAX_IN_FLIGHT_BYTES")]
    max_in_flight_bytes: Option<u64>,
    /// Free space to leave on the data directory's file system, bytes [default: 1073741824].
    #[arg(long, env = "CABLEWATCH_MIN_FREE_DISK_BYTES")]
    min_free_disk_bytes: Option<u64>,
    /// Most bytes of Parquet and write-ahead log under the data directory [default: no limit].
    #[arg(long, env = "CABLEWATCH_MAX_DATA_BYTES")]
    max_data_bytes: Option<u64>,
    /// Write buffered rows to Parquet once this many are buffered [default: 500000].
    #[arg(long, env = "CABLEWATCH_FLUSH_ROWS")]
    flush_rows: Option<usize>,
    /// Write buffered rows to Parquet at least this often, seconds [default: 10].
    #[arg(long, env = "CABLEWATCH_FLUSH_INTERVAL_S")]
    flush_interval_s: Option<f64>,
}

impl Args {
    fn config(self) -> anyhow::Result<CollectorConfig> {
        let mut c = match &self.config {
            Some(path) => CollectorConfig::from_toml_file(path)?,
            None => {
                let mut c = CollectorConfig::loopback("data");
                c.listen = SocketAddr::from(([127, 0, 0, 1], 50051));
                c.admin_listen = Some(SocketAddr::from(([127, 0, 0, 1], 9464)));
                c
            }
        };
        if let Some(v) = self.listen {
            c.listen = v;
        }
        if let Some(v) = self.data_dir {
            c.data_dir = v;
        }
        if let Some(v) = self.topology {
            c.topology = Some(v);
        }
        if let Some(v) = self.admin_listen {
            c.admin_listen = parse_admin_listen(&v).map_err(anyhow::Error::msg)?;
        }
        if let Some(v) = self.max_buffered_rows {
            c.limits.max_buffered_rows = v;
        }
        if let Some(v) = self.max_in_flight_bytes {
            c.limits.max_in_flight_bytes = v;
        }
        if let Some(v) = self.min_free_disk_bytes {
            c.limits.min_free_disk_bytes = v;
        }
        if let Some(v) = self.max_data_bytes {
            c.limits.max_data_bytes = Some(v);
        }
        if self.plaintext_off_loopback {
            c.plaintext_off_loopback = true;
        }
        if let (Some(cert), Some(key), Some(client_ca)) = (self.tls_cert, self.tls_key, self.tls_client_ca) {
            let identities = c.tls.take().map(|t| t.identities).unwrap_or_default();
            c.tls = Some(TlsSettings {
                cert,
                key,
                client_ca,
                identities,
            });
        }
        if !self.tls_identities.is_empty() {
            let tls = c.tls.as_mut().ok_or_else(|| {
                anyhow::anyhow!("--tls-identity needs TLS: give --tls-cert or a [tls] section")
            })?;
            for (name, stations) in self.tls_identities {
                tls.identities.entry(name).or_default().extend(stations);
            }
        }
        if let Some(v) = self.flush_rows {
            c.flush_rows = v;
        }
        if let Some(v) = self.flush_interval_s {
            anyhow::ensure!(
                v.is_finite() && v > 0.0,
                "--flush-interval-s must be a positive number of seconds"
            );
            c.flush_interval = std::time::Duration::from_secs_f64(v);
        }
        Ok(c)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CABLEWATCH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let tuning = cablewatch_collector::alloc::tune_allocator(cablewatch_collector::alloc::COLLECTOR);
    tracing::debug!(?tuning, "Allocator settings.");
    let cli = Cli::parse();
    if let Some(Command::DevCerts {
        out,
        mut stations,
        topology,
        hosts,
    }) = cli.command
    {
        if let Some(t) = topology {
            stations.extend(Topology::from_toml_file(&t)?.stations.into_iter().map(|s| s.id));
        }
        stations.sort();
        stations.dedup();
        anyhow::ensure!(
            !stations.is_empty(),
            "give --station ID (repeatable) or --topology FILE"
        );
        let certs = write_dev_certs(&out, &stations, &hosts)?;
        let mut report = format!(
            "Wrote development certificates to {}:\n  {:<14} {}\n  {:<14} {} {}\n",
            out.display(),
            "CA",
            certs.ca.display(),
            "collector",
            certs.collector.0.display(),
            certs.collector.1.display()
        );
        for (station, (name, cert, key)) in &certs.stations {
            report.push_str(&format!(
                "  {:<14} {} {} (identity {name})\n",
                station.as_str(),
                cert.display(),
                key.display()
            ));
        }
        report.push_str(&format!(
            "Serve with: cablewatch-collector --config {} --data-dir data --listen 0.0.0.0:50051\n",
            certs.config.display()
        ));
        use std::io::Write as _;
        std::io::stdout().write_all(report.as_bytes())?;
        return Ok(());
    }
    let config = cli.serve.config()?;
    // Listen for the signals before starting: a SIGTERM that arrives while the log is replayed
    // (the port is bound by then) stops the collector cleanly once it is up, instead of killing it.
    let stop = shutdown_signal();
    let running = cablewatch_collector::start(config).await?;
    stop.await;
    tracing::info!("Shutting down: draining in-flight batches.");
    running.shutdown().await?;
    tracing::info!("Stopped.");
    Ok(())
}

/// Registers for SIGINT and SIGTERM now; the returned future ends when either arrives (also one
/// that arrived before it was polled).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let int = signal(SignalKind::interrupt());
        let term = signal(SignalKind::terminate());
        async move {
            match (int, term) {
                (Ok(mut int), Ok(mut term)) => {
                    tokio::select! {
                        _ = int.recv() => {},
                        _ = term.recv() => {},
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn arguments_are_consistent() {
        Cli::command().debug_assert();
    }
}
