//! `cablewatch-sim`: generates landing-station telemetry with ground truth, to files or to a collector.

use std::io::IsTerminal as _;
use std::{path::PathBuf, time::Instant};

use anyhow::Context as _;
use cablewatch_testdata::{
    generate::{generate, station_streams, write_tables},
    scenario::{Scenario, named_scenarios},
    stream::{StreamOptions, stream_all},
};
use clap::{Parser, Subcommand};

/// Simulates submarine-cable landing stations: optical PM, line monitoring and latency probes.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Writes a scenario's telemetry in the stored-table layout.
    Generate {
        /// Named scenario or scenario file.
        #[arg(long, default_value = "small")]
        scenario: String,
        /// Random seed; the same seed gives the same rows.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output data directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Streams a scenario to a collector, one client per landing station.
    Stream {
        /// Collector URL.
        #[arg(long, env = "CABLEWATCH_COLLECTOR", default_value = "http://127.0.0.1:50051")]
        collector: String,
        /// Named scenario or scenario file.
        #[arg(long, default_value = "small")]
        scenario: String,
        /// Random seed; the same seed gives the same rows.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Rows per batch.
        #[arg(long, default_value_t = 1000)]
        batch_rows: usize,
    },
    /// Lists the named scenarios.
    List,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CABLEWATCH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let mut out = std::io::stdout().lock();
    use std::io::Write as _;
    match Args::parse().command {
        Command::Generate {
            scenario,
            seed,
            out: dir,
        } => {
            let scenario = Scenario::load(&scenario)?;
            let started = Instant::now();
            let units = generate(&scenario, seed);
            let summary = write_tables(&scenario, &units, &dir)?;
            let secs = started.elapsed().as_secs_f64();
            let rows: usize = summary.rows.values().sum();
            for (table, n) in &summary.rows {
                writeln!(out, "{table:>16}: {n} rows")?;
            }
            writeln!(
                out,
                "wrote {rows} rows in {} files to {} in {secs:.2} s ({:.0} rows/s)",
                summary.files,
                dir.display(),
                rows as f64 / secs
            )?;
        }
        Command::Stream {
            collector,
            scenario,
            seed,
            batch_rows,
        } => {
            let scenario = Scenario::load(&scenario)?;
            let streams = station_streams(&generate(&scenario, seed), batch_rows);
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let started = Instant::now();
            let reports = runtime.block_on(stream_all(&collector, streams, StreamOptions::default()))?;
            let secs = started.elapsed().as_secs_f64();
            let mut rows = 0;
            for r in &reports {
                rows += r.accepted_rows;
                writeln!(
                    out,
                    "{:>16}: {} batches acknowledged ({} already stored before), {} rows accepted, {} rejected",
                    r.station, r.batches, r.duplicates, r.accepted_rows, r.rejected_rows
                )?;
            }
            writeln!(
                out,
                "streamed {rows} rows in {secs:.2} s ({:.0} rows/s acknowledged)",
                rows as f64 / secs
            )?;
        }
        Command::List => {
            for name in named_scenarios() {
                writeln!(out, "{name}")?;
            }
        }
    }
    Ok(())
}
