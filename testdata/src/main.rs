//! `cablewatch-sim`: generates landing-station telemetry with ground truth, to files or to a collector.

use std::io::IsTerminal as _;
use std::{path::PathBuf, time::Instant};

use anyhow::Context as _;
use cablewatch_testdata::{
    generate::{Simulation, station_streams, write_scenario},
    scenario::{Scenario, named_scenarios},
    stream::{ClientTls, Pace, StreamOptions, stream_all},
};
use clap::{Parser, Subcommand};

/// Simulates submarine-cable landing stations: optical PM, line monitoring and latency probes, with
/// injected benign and malicious events and their ground truth.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

/// Scenario selection shared by the subcommands.
#[derive(Debug, clap::Args)]
struct ScenarioArgs {
    /// Named scenario (see `list`) or scenario file.
    #[arg(long, default_value = "small")]
    scenario: String,
    /// Random seed; the same seed gives the same rows and events.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Override the scenario's length, days.
    #[arg(long)]
    days: Option<f64>,
    /// Override the optical PM interval: seconds, or with a unit (`60s`, `1m`, `15m`).
    #[arg(long, value_parser = parse_cadence)]
    cadence: Option<u32>,
}

impl ScenarioArgs {
    fn load(&self) -> anyhow::Result<Scenario> {
        let mut s = Scenario::load(&self.scenario)?;
        if let Some(days) = self.days {
            anyhow::ensure!(days > 0.0 && days <= 3660.0, "--days {days} is not in (0, 3660]");
            s.days = days;
        }
        if let Some(c) = self.cadence {
            s.cadence.optical_s = Some(cablewatch_testdata::physics::Draw::Fixed(f64::from(c)));
        }
        Ok(s)
    }
}

fn parse_cadence(text: &str) -> Result<u32, String> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u32 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a cadence like 60, 60s, 1m or 15m"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{text:?}: unit must be s, m or h")),
    };
    if secs == 0 {
        return Err("cadence must be at least 1 s".into());
    }
    Ok(secs)
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Writes a scenario in the stored-table layout (`OUT/data`), with `OUT/truth.json` (every
    /// injected event), `OUT/context/*.jsonl` (what the operator logged) and `OUT/topology.toml`.
    Generate {
        #[command(flatten)]
        scenario: ScenarioArgs,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Streams a scenario to a collector, one client per landing station, day by day.
    Stream {
        /// Collector URL.
        #[arg(long, env = "CABLEWATCH_COLLECTOR", default_value = "http://127.0.0.1:50051")]
        collector: String,
        #[command(flatten)]
        scenario: ScenarioArgs,
        /// Rows per batch.
        #[arg(long, default_value_t = 1000)]
        batch_rows: usize,
        /// `fast` (as fast as acks allow), `realtime`, or a speed-up like `3600x`.
        #[arg(long, default_value = "fast", value_parser = parse_pace)]
        speed: Speed,
        /// Connect over TLS with per-station client certificates from this directory (`ca.pem`,
        /// `<station>.pem`, `<station>.key`: what `cablewatch-collector dev-certs` writes).
        #[arg(long, env = "CABLEWATCH_TLS_DIR")]
        tls_dir: Option<PathBuf>,
    },
    /// Lists the named scenarios.
    List,
}

/// Playback speed of `stream`: scenario seconds per wall-clock second, or as fast as acks allow.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Speed(Option<f64>);

fn parse_pace(text: &str) -> Result<Speed, String> {
    match text {
        "fast" => Ok(Speed(None)),
        "realtime" => Ok(Speed(Some(1.0))),
        x => x
            .strip_suffix('x')
            .and_then(|n| n.parse::<f64>().ok())
            .filter(|n| *n > 0.0 && n.is_finite())
            .map(|n| Speed(Some(n)))
            .ok_or_else(|| format!("{text:?} is not fast, realtime or a speed-up like 60x")),
    }
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
        Command::Generate { scenario, out: dir } => {
            let seed = scenario.seed;
            let scenario = scenario.load()?;
            let started = Instant::now();
            let sim = Simulation::new(&scenario, seed)?;
            let files = write_scenario(&sim, &dir)?;
            let secs = started.elapsed().as_secs_f64();
            let summary = files.tables;
            let rows: usize = summary.rows.values().sum();
            for (table, n) in &summary.rows {
                writeln!(out, "{table:>16}: {n} rows")?;
            }
            let malicious = sim.events.iter().filter(|e| e.malicious).count();
            writeln!(
                out,
                "{} events ({malicious} malicious, {} logged as context records)",
                sim.events.len(),
                files.records
            )?;
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
            batch_rows,
            speed,
            tls_dir,
        } => {
            let tls = tls_dir.map(|d| std::sync::Arc::new(ClientTls::from_dir(&d)));
            let seed = scenario.seed;
            let scenario = scenario.load()?;
            let sim = Simulation::new(&scenario, seed)?;
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let started = Instant::now();
            let (mut rows, mut rejected, mut batches, mut duplicates) = (0, 0, 0, 0);
            let pace = speed.0.map(|speed| Pace {
                scenario_start_ns: scenario.start_ns,
                wall_start: Instant::now(),
                speed,
            });
            for day in 0..sim.days() {
                let streams = station_streams(&sim.generate_day(day), batch_rows);
                let options = StreamOptions {
                    epoch: day as u64 + 1,
                    pace,
                    tls: tls.clone(),
                    ..StreamOptions::default()
                };
                for r in runtime.block_on(stream_all(&collector, streams, options))? {
                    rows += r.accepted_rows;
                    rejected += r.rejected_rows;
                    batches += r.batches;
                    duplicates += r.duplicates;
                }
            }
            let secs = started.elapsed().as_secs_f64();
            writeln!(
                out,
                "streamed {batches} batches ({duplicates} already stored before): {rows} rows accepted, {rejected} rejected, in {secs:.2} s ({:.0} rows/s acknowledged)",
                rows as f64 / secs
            )?;
        }
        Command::List => {
            for name in named_scenarios() {
                let s = Scenario::load(name)?;
                writeln!(out, "{name:>10}: {}", s.description)?;
            }
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

    #[test]
    fn speeds_and_cadences_parse() {
        assert_eq!(parse_pace("fast"), Ok(Speed(None)));
        assert_eq!(parse_pace("3600x"), Ok(Speed(Some(3600.0))));
        assert!(parse_pace("warp").is_err());
        assert_eq!(parse_cadence("15m"), Ok(900));
        assert_eq!(parse_cadence("60"), Ok(60));
        assert!(parse_cadence("0s").is_err());
    }
}
