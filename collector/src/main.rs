//! `cablewatch-collector`: serves the telemetry ingest gRPC service until SIGINT or SIGTERM.

use std::io::IsTerminal as _;
use std::{net::SocketAddr, path::PathBuf};

use cablewatch_collector::CollectorConfig;
use clap::Parser;

/// Receives landing-station telemetry over gRPC and stores it durably as Parquet.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (plain text: loopback only).
    #[arg(long, env = "CABLEWATCH_LISTEN", default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    /// Root directory of the stored tables.
    #[arg(long, env = "CABLEWATCH_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// Topology file (TOML) to validate cables, fiber pairs, channels and repeaters against.
    #[arg(long, env = "CABLEWATCH_TOPOLOGY")]
    topology: Option<PathBuf>,
    /// Write buffered rows to Parquet once this many are buffered.
    #[arg(long, env = "CABLEWATCH_FLUSH_ROWS", default_value_t = 500_000)]
    flush_rows: usize,
    /// HTTP admin port for /metrics, /livez and /readyz (loopback); `off` disables it.
    #[arg(long, env = "CABLEWATCH_ADMIN_LISTEN", default_value = "127.0.0.1:9464")]
    admin_listen: String,
    /// Most accepted rows held in memory awaiting Parquet; past it stations are asked to retry.
    #[arg(long, env = "CABLEWATCH_MAX_BUFFERED_ROWS", default_value_t = 4_000_000)]
    max_buffered_rows: usize,
    /// Write buffered rows to Parquet at least this often, seconds.
    #[arg(long, env = "CABLEWATCH_FLUSH_INTERVAL_S", default_value_t = 10.0)]
    flush_interval_s: f64,
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
    let args = Args::parse();
    let mut config = CollectorConfig::loopback(args.data_dir);
    config.listen = args.listen;
    config.topology = args.topology;
    config.flush_rows = args.flush_rows;
    config.max_buffered_rows = args.max_buffered_rows;
    config.admin_listen = match args.admin_listen.as_str() {
        "off" => None,
        addr => Some(
            addr.parse()
                .map_err(|e| anyhow::anyhow!("--admin-listen {addr:?}: {e}"))?,
        ),
    };
    anyhow::ensure!(
        args.flush_interval_s.is_finite() && args.flush_interval_s > 0.0,
        "--flush-interval-s must be a positive number of seconds"
    );
    config.flush_interval = std::time::Duration::from_secs_f64(args.flush_interval_s);
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
