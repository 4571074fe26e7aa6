//! `cablewatch-collector`: serves the telemetry ingest gRPC service until SIGINT or SIGTERM.

use std::io::IsTerminal as _;
use std::{net::SocketAddr, path::PathBuf};

use cablewatch_collector::{CollectorConfig, config::parse_admin_listen};
use clap::Parser;

/// Receives landing-station telemetry over gRPC and stores it durably as Parquet.
///
/// Settings come from flags, then environment variables, then `--config FILE`, then defaults.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// TOML configuration file (example: collector/collector.example.toml).
    #[arg(long, env = "CABLEWATCH_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (plain text: loopback only) [default: 127.0.0.1:50051].
    #[arg(long, env = "CABLEWATCH_LISTEN")]
    listen: Option<SocketAddr>,
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
            c.max_buffered_rows = v;
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
    let config = Args::parse().config()?;
    let running = cablewatch_collector::start(config).await?;
    shutdown_signal().await;
    tracing::info!("Shutting down: draining in-flight batches.");
    running.shutdown().await?;
    tracing::info!("Stopped.");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn arguments_are_consistent() {
        Args::command().debug_assert();
    }
}
