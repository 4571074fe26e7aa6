//! `cablewatch-analyzer`: analyses stored cable telemetry; `demo` runs the whole system end to end.

use std::io::IsTerminal as _;
use std::{io::Write as _, path::PathBuf, process::ExitCode, time::Instant};

use cablewatch_analyzer::{
    AnalyzerError,
    changepoint::{self, Config},
    demo, eval,
    load::Filter,
    run, series_csv,
    summary::summarize,
};
use cablewatch_collector::alloc;
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
        #[command(flatten)]
        window: Window,
    },
    /// Runs the whole system on an embedded scenario: simulated stations -> gRPC collector -> Parquet
    /// -> analyzer -> findings and the HTML report (under --out).
    Demo {
        /// Output directory.
        #[arg(long, default_value = "demo-out")]
        out: PathBuf,
        /// Named scenario or scenario file.
        #[arg(long, default_value = demo::DEFAULT_SCENARIO)]
        scenario: String,
        /// Simulation seed.
        #[arg(long, default_value_t = demo::DEFAULT_SEED)]
        seed: u64,
        /// Rows per streamed batch.
        #[arg(long, default_value_t = 1000)]
        batch_rows: usize,
    },
    /// Analyses stored telemetry: writes findings.json, findings.parquet and run.json to --out and
    /// prints a summary (progress on stderr). Exit status: 0 no unexplained suspicious finding, 3
    /// unexplained suspicious findings (tap-like, insertion-like, reroute; with --resume: new or
    /// updated ones), 2 bad input, 1 internal error.
    Run {
        /// Root of the stored tables.
        #[arg(long, env = "CABLEWATCH_DATA_DIR")]
        data: PathBuf,
        /// Topology file (TOML).
        #[arg(long)]
        topology: PathBuf,
        /// Directory of context records (*.jsonl): maintenance, repairs, earthquakes, vessels.
        #[arg(long)]
        context: Option<PathBuf>,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        window: Window,
        /// Continue from the last run into --out (its run.json): analyse only what came since its
        /// last data time, with --lookback of earlier data as the baseline; keep its findings and
        /// add the new ones. Exit status 3 then means new unexplained suspicious findings. Without
        /// a previous run, analyses everything.
        #[arg(long)]
        resume: bool,
        /// With --resume: how much earlier data to read again (e.g. 14d, 36h). The default, two
        /// weeks, is the longest any detector reads, so daily runs find what one run over
        /// everything finds; less is faster but decides steps near the cut with less baseline.
        #[arg(long, default_value = "14d", value_parser = parse_duration, requires = "resume")]
        lookback: i64,
        /// Skip the analysts' HTML report and its plots (<out>/report/index.html), e.g. for a
        /// frequent scheduled run whose findings a later run reports.
        #[arg(long)]
        no_report: bool,
        /// In the report, also write every plot as SVG (vector, for print and zoom), linked beside
        /// each PNG.
        #[arg(long, conflicts_with = "no_report")]
        svg: bool,
    },
    /// Scores findings against a simulator's truth.json: precision, recall and F1 per event kind and
    /// magnitude bin, span localization, detection delay, false alarms per cable-month, and the
    /// quality goals. Repeat --findings/--truth (in pairs) to pool several runs.
    Eval {
        /// A `run` output directory (findings.json, run.json), or a findings.json file.
        #[arg(long, required_unless_present = "suite")]
        findings: Vec<PathBuf>,
        /// The scenario's truth.json, one per --findings, in the same order.
        #[arg(long, required_unless_present = "suite")]
        truth: Vec<PathBuf>,
        /// Instead: generate, analyse and score every scenario and seed of a suite (`tuning`,
        /// `heldout`, or a suite file; testdata/README.md says which is for what).
        #[arg(long, conflicts_with_all = ["findings", "truth"])]
        suite: Option<String>,
        /// With --suite: where the generated scenarios are kept (reused while their truth is
        /// unchanged).
        #[arg(long, default_value = "eval-work", requires = "suite")]
        work: PathBuf,
        /// With --suite: generate every scenario again (after a change to the simulator).
        #[arg(long, requires = "suite")]
        regenerate: bool,
        /// A finding may start this many minutes before an event.
        #[arg(long, default_value_t = 60.0)]
        before_min: f64,
        /// ... and this many minutes after the event's end.
        #[arg(long, default_value_t = 360.0)]
        after_min: f64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Runs the change-point engine with its default configuration on one series and prints JSON:
    /// `change_points` (0-based rows where a new segment begins), segments, outliers, timing.
    Changepoints {
        /// CSV with the header `t,value`; an empty value is missing.
        #[arg(long, required_unless_present_any = ["labelled", "suite"])]
        input: Option<PathBuf>,
        /// Instead: score the engine on a directory of labelled traces (`epoch;rtt;cp`, e.g.
        /// testdata/rtt-shao/real) with the published one-to-one, 2-sample matching.
        #[arg(long, conflicts_with = "input")]
        labelled: Option<PathBuf>,
        /// With --labelled or --suite: print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Instead: score the engine on one part of every labelled set (RTT traces and generated
        /// shapes): `tuning`, what defaults may be chosen on, or `heldout`, what is reported
        /// (testdata/README.md says which series are which).
        #[arg(long, value_enum, conflicts_with_all = ["input", "labelled"])]
        suite: Option<changepoint::suite::Part>,
        /// The engine's settings as JSON, over its defaults (e.g. `{"trend": true}`); the JSON
        /// output of --input lists them all.
        #[arg(long)]
        engine: Option<String>,
        /// With --suite: the folder holding the RTT traces' `real/` and `artificial_truth/`.
        #[arg(long, default_value = "testdata/rtt-shao", requires = "suite")]
        rtt: PathBuf,
        /// With --suite: the folder of real series annotated by people (`annotations.json` and
        /// one `t,value` CSV per series).
        #[arg(long, default_value = "testdata/tcpd", requires = "suite")]
        annotated: PathBuf,
    },
}

/// Which cable and time range to read.
#[derive(Debug, clap::Args)]
struct Window {
    /// Only this cable.
    #[arg(long)]
    cable: Option<String>,
    /// Only from this time (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long)]
    since: Option<String>,
    /// Only before this time (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long)]
    until: Option<String>,
}

impl Window {
    fn filter(self) -> anyhow::Result<Filter> {
        Ok(Filter {
            cable: self.cable,
            since_ns: self.since.as_deref().map(parse_time).transpose()?,
            until_ns: self.until.as_deref().map(parse_time).transpose()?,
        })
    }
}

/// mimalloc, as in the collector: with glibc malloc an eighth of `run`'s time on the `large`
/// scenario went to the kernel zeroing fresh pages for the per-partition columns and matrices.
/// Settings: `cablewatch_collector::alloc::ANALYZER`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `run`'s progress on stderr: a line per stage; on a terminal also one bar of the partitions
/// (cable-days) read over all tables, with each table's count (the tables are read at the same
/// time), redrawn in place.
struct ProgressLine {
    terminal: bool,
    open: bool,
    /// (table, done, total) of each table heard of, in the order first heard.
    tables: Vec<(&'static str, usize, usize)>,
}

impl ProgressLine {
    const WIDTH: usize = 30;

    fn new(terminal: bool) -> Self {
        Self {
            terminal,
            open: false,
            tables: Vec::new(),
        }
    }

    fn show(&mut self, p: run::Progress<'_>) {
        let mut err = std::io::stderr().lock();
        match p {
            run::Progress::Stage(text) => {
                self.finish();
                let _ = writeln!(err, "[run] {text}");
            }
            run::Progress::Partitions { table, done, total } if self.terminal && total > 0 => {
                match self.tables.iter_mut().find(|t| t.0 == table) {
                    Some(t) => (t.1, t.2) = (done, total),
                    None => self.tables.push((table, done, total)),
                }
                let (all_done, all) = self.tables.iter().fold((0, 0), |a, t| (a.0 + t.1, a.1 + t.2));
                let filled = Self::WIDTH * all_done / all.max(1);
                let each: Vec<String> = self
                    .tables
                    .iter()
                    .map(|(t, d, n)| format!("{t} {d}/{n}"))
                    .collect();
                let _ = write!(
                    err,
                    "\r[run]   [{}{}] {all_done}/{all} cable-days ({})",
                    "#".repeat(filled),
                    "-".repeat(Self::WIDTH - filled),
                    each.join(", ")
                );
                let _ = err.flush();
                self.open = true;
            }
            run::Progress::Figures { done, total } if self.terminal && total > 0 => {
                let filled = Self::WIDTH * done / total;
                let _ = write!(
                    err,
                    "\r[run]   [{}{}] {done}/{total} findings plotted",
                    "#".repeat(filled),
                    "-".repeat(Self::WIDTH - filled),
                );
                let _ = err.flush();
                self.open = true;
            }
            run::Progress::Partitions { .. } | run::Progress::Figures { .. } => {}
        }
    }

    fn finish(&mut self) {
        if self.open {
            let _ = writeln!(std::io::stderr());
            self.open = false;
        }
    }
}

/// A duration like `7d`, `36h`, `90m` or `3600s`, in ns.
fn parse_duration(text: &str) -> Result<i64, String> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: i64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 7d, 36h, 90m or 3600s"))?;
    let unit_ns: i64 = match unit {
        "d" => 86_400_000_000_000,
        "h" => 3_600_000_000_000,
        "m" => 60_000_000_000,
        "s" => 1_000_000_000,
        _ => return Err(format!("{text:?} is not a duration like 7d, 36h, 90m or 3600s")),
    };
    n.checked_mul(unit_ns)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// Exit code for bad input (arguments, files).
const EXIT_BAD_INPUT: u8 = 2;
/// Exit code of `run` when it succeeded and found unexplained suspicious findings.
const EXIT_UNEXPLAINED: u8 = 3;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CABLEWATCH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let tuning = alloc::tune_allocator(alloc::ANALYZER);
    tracing::debug!(?tuning, "Allocator settings.");
    match run(Args::parse()) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = match e.downcast_ref::<AnalyzerError>() {
                Some(
                    AnalyzerError::NoData { .. }
                    | AnalyzerError::MissingTable { .. }
                    | AnalyzerError::Schema { .. }
                    | AnalyzerError::Input { .. },
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

fn run(args: Args) -> anyhow::Result<u8> {
    let mut out = std::io::stdout().lock();
    match args.command {
        Command::Inspect { data, window } => {
            let filter = window.filter()?;
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
                report
                    .streams
                    .iter()
                    .map(|s| s.station.as_str())
                    .collect::<std::collections::BTreeSet<_>>()
                    .len(),
                report.stream_secs,
                rows as f64 / report.stream_secs
            )?;
            writeln!(out, "stored tables: {}", report.data_dir.display())?;
            writeln!(out)?;
            write!(out, "{}", run::summary(&report.run))?;
            writeln!(
                out,
                "findings: {}",
                report.run_dir.join(run::FINDINGS_FILE).display()
            )?;
            writeln!(
                out,
                "what the simulator injected: {} (score with `cablewatch-analyzer eval --findings {} --truth {}`)",
                report.truth_file.display(),
                report.run_dir.display(),
                report.truth_file.display()
            )?;
            if let Some(r) = &report.run.report {
                writeln!(out, "report: {} (open it in a browser)", r.index.display())?;
            }
        }
        Command::Run {
            data,
            topology,
            context,
            out: dir,
            window,
            resume,
            lookback,
            no_report,
            svg,
        } => {
            let options = run::RunOptions {
                data,
                topology,
                context,
                out: dir.clone(),
                filter: window.filter()?,
                resume,
                lookback_ns: lookback,
                report: !no_report,
                svg,
            };
            let mut bar = ProgressLine::new(std::io::stderr().is_terminal());
            let report = run::run(&options, |p| bar.show(p))?;
            bar.finish();
            write!(out, "{}", run::summary(&report))?;
            writeln!(
                out,
                "wrote {} and {}",
                dir.join(run::FINDINGS_FILE).display(),
                dir.join("findings.parquet").display()
            )?;
            if let Some(r) = &report.report {
                writeln!(
                    out,
                    "report: {} ({} findings plotted, {} kept from the last report)",
                    r.index.display(),
                    r.drawn,
                    r.reused
                )?;
            }
            if report.unexplained_suspicious() > 0 {
                return Ok(EXIT_UNEXPLAINED);
            }
        }
        Command::Eval {
            findings,
            truth,
            suite,
            work,
            regenerate,
            before_min,
            after_min,
            json,
        } => {
            let minutes = |m: f64| (m * 60e9) as i64;
            let config = eval::EvalConfig {
                before_ns: minutes(before_min),
                after_ns: minutes(after_min),
            };
            if let Some(suite) = suite {
                let options = eval::suite::SuiteOptions {
                    suite,
                    work,
                    regenerate,
                };
                let runs = eval::suite::run_suite(&options, |line| {
                    tracing::info!("{line}");
                    if !json {
                        let _ = writeln!(std::io::stderr(), "{line}");
                    }
                })?;
                let scored: Vec<eval::Scored> = runs.into_iter().map(|r| r.scored).collect();
                let evaluation = eval::evaluate(&scored, &config);
                if json {
                    serde_json::to_writer_pretty(&mut out, &evaluation)?;
                    writeln!(out)?;
                } else {
                    write!(out, "{}", eval::table(&evaluation))?;
                }
                return Ok(0);
            }
            if findings.len() != truth.len() {
                return Err(AnalyzerError::input(
                    &truth[0],
                    0,
                    format!(
                        "{} --findings but {} --truth: give one truth.json per findings directory",
                        findings.len(),
                        truth.len()
                    ),
                )
                .into());
            }
            let runs = findings
                .iter()
                .zip(&truth)
                .map(|(f, t)| eval::load(f, t))
                .collect::<Result<Vec<_>, _>>()?;
            let evaluation = eval::evaluate(&runs, &config);
            if json {
                serde_json::to_writer_pretty(&mut out, &evaluation)?;
                writeln!(out)?;
            } else {
                write!(out, "{}", eval::table(&evaluation))?;
            }
        }
        Command::Changepoints {
            input,
            labelled,
            json,
            suite,
            rtt,
            annotated,
            engine,
        } => {
            let config: Config = match engine {
                Some(text) => {
                    serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("--engine `{text}`: {e}"))?
                }
                None => Config::default(),
            };
            if let Some(part) = suite {
                let report = changepoint::suite::run_suite(&rtt, &annotated, part, &config)?;
                if json {
                    serde_json::to_writer_pretty(&mut out, &report)?;
                    writeln!(out)?;
                } else {
                    write!(out, "{}", changepoint::suite::format_report(&report))?;
                }
            } else if let Some(dir) = labelled {
                let traces = series_csv::read_labelled_dir(&dir)?;
                let started = Instant::now();
                let eval = series_csv::evaluate(&traces, &config, 2);
                let secs = started.elapsed().as_secs_f64();
                if json {
                    serde_json::to_writer_pretty(&mut out, &eval)?;
                    writeln!(out)?;
                } else {
                    writeln!(
                        out,
                        "{:<12} {:>7} {:>6} {:>9} {:>4} {:>9} {:>6} {:>5}",
                        "trace", "samples", "labels", "detected", "tp", "precision", "recall", "F2"
                    )?;
                    for t in &eval.traces {
                        writeln!(
                            out,
                            "{:<12} {:>7} {:>6} {:>9} {:>4} {:>9.3} {:>6.3} {:>5.3}",
                            t.name,
                            t.samples,
                            t.score.labels,
                            t.score.detections,
                            t.score.true_positives,
                            t.precision,
                            t.recall,
                            t.f2
                        )?;
                    }
                    writeln!(
                        out,
                        "median over {} traces: precision {:.3}, recall {:.3}, F2 {:.3} (mean F2 {:.3}); {:.0} ms",
                        eval.traces.len(),
                        eval.median_precision,
                        eval.median_recall,
                        eval.median_f2,
                        eval.mean_f2,
                        secs * 1e3
                    )?;
                }
            } else if let Some(path) = input {
                let series = series_csv::read_t_value(&path)?;
                let started = Instant::now();
                let found = changepoint::segment(&series.values, &config);
                let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
                let report = serde_json::json!({
                    "change_points": found.change_points,
                    "change_times": found.change_points.iter().map(|&i| &series.t[i]).collect::<Vec<_>>(),
                    "samples": series.values.len(),
                    "missing": found.missing,
                    "outliers": found.outliers,
                    "noise_sigma": found.noise_sigma,
                    "segments": found.segments,
                    "config": config,
                    "elapsed_ms": elapsed_ms,
                });
                serde_json::to_writer_pretty(&mut out, &report)?;
                writeln!(out)?;
            }
        }
    }
    Ok(0)
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
