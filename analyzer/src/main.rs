//! `cablewatch-analyzer`: analyses stored cable telemetry; `demo` runs the whole system end to end.

use std::io::IsTerminal as _;
use std::{io::Write as _, path::PathBuf, process::ExitCode};

use cablewatch_analyzer::{AnalyzerError, demo, load::Filter, summary::summarize};
use cablewatch_proto::time::parse_time;
use clap::{Parser, Subcommand};

/// Finds tapping signatures in submarine-cable telemetry and explains the benign ones.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Summarises the stored tables under a data directory: rows, time ranges, per-series baselines.
    Inspect {
        /// Root of the stored tables.
        #[arg(long, env = "CABLEWATCH_DATA_DIR")]
        data: PathBuf,
        /// Only this cable.
        #[arg(long)]
        cable: Option<String>,
        /// Only from this time (RFC 3339 or YYYY-MM-DD, UTC).
        #[arg(long)]
        since: Option<String>,
        /// Only before this time (RFC 3339 or YYYY-MM-DD, UTC).
        #[arg(long)]
        until: Option<String>,
    },
    /// Runs the whole system on an embedded scenario: simulated stations -> gRPC collector -> Parquet
    /// -> analyzer.
    Demo {
        /// Output directory.
        #[arg(long, default_value = "demo-out")]
        out: PathBuf,
        /// Named scenario or scenario file.
        #[arg(long, default_value = "small")]
        scenario: String,
        /// Simulation seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Rows per streamed batch.
        #[arg(long, default_value_t = 1000)]
        batch_rows: usize,
    },
}

/// Exit code for bad input (arguments, files).
const EXIT_BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CABLEWATCH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = match e.downcast_ref::<AnalyzerError>() {
                Some(
                    AnalyzerError::NoData { .. }
                    | AnalyzerError::MissingTable { .. }
                    | AnalyzerError::Schema { .. },
                ) => EXIT_BAD_INPUT,
                _ if e
                    .downcast_ref::<cablewatch_proto::time::TimeParseError>()
                    .is_some() =>
                {
                    EXIT_BAD_INPUT
                }
                _ => 1,
            };
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::from(code)
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match args.command {
        Command::Inspect {
            data,
            cable,
            since,
            until,
        } => {
            let filter = Filter {
                cable,
                since_ns: since.as_deref().map(parse_time).transpose()?,
                until_ns: until.as_deref().map(parse_time).transpose()?,
            };
            let summary = summarize(&data, &filter)?;
            write!(out, "{summary}")?;
        }
        Command::Demo {
            out: dir,
            scenario,
            seed,
            batch_rows,
        } => {
            let options = demo::DemoOptions {
                out: dir,
                scenario,
                seed,
                batch_rows,
            };
            let runtime = tokio::runtime::Runtime::new()?;
            let report = runtime.block_on(demo::run(&options, |stage| {
                let _ = writeln!(std::io::stderr(), "[demo] {stage}");
            }))?;
            let rows: u64 = report.streams.iter().map(|s| s.accepted_rows).sum();
            let rejected: u64 = report.streams.iter().map(|s| s.rejected_rows).sum();
            writeln!(
                out,
                "collector stored {rows} rows ({rejected} rejected) from {} stations in {:.1} s ({:.0} rows/s acknowledged)",
                report.streams.len(),
                report.stream_secs,
                rows as f64 / report.stream_secs
            )?;
            write!(out, "{}", report.summary)?;
            writeln!(out, "stored tables: {}", report.data_dir.display())?;
        }
    }
    Ok(())
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
