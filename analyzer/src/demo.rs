//! The end-to-end demo on an embedded scenario: the whole system on one machine.
//!
//! ```text
//! scenario (default `demo`: ten days, one event of each kind to tell apart)
//!   --simulator, day by day--> one gRPC client per landing station
//!   --loopback--> a real collector (validate, write-ahead log, fsync, acknowledge, Parquet)
//!   --> <out>/data; the operator's records --> <out>/context; what really happened --> truth.json
//!   --run (the scheduled job: detect, fuse, explain)--> <out>/out: findings and report/index.html
//! ```

use std::{path::PathBuf, time::Instant};

use cablewatch_collector::CollectorConfig;
use cablewatch_testdata::{
    generate::{Simulation, station_streams},
    scenario::Scenario,
    stream::{StreamOptions, StreamReport, stream_all},
};

use cablewatch_proto::context::Context;
use cablewatch_testdata::events::{context_records, truth};

use crate::{
    AnalyzerError, Result,
    load::Filter,
    run::{DEFAULT_LOOKBACK_NS, RunOptions, RunReport},
    summary::{Summary, summarize},
};

/// What to run the demo on.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Output directory: `data/` (stored tables) and `topology.toml` go here.
    pub out: PathBuf,
    /// Named scenario or scenario file.
    pub scenario: String,
    /// Simulation seed.
    pub seed: u64,
    /// Rows per streamed batch.
    pub batch_rows: usize,
}

/// The scenario the demo plays unless told otherwise.
pub const DEFAULT_SCENARIO: &str = "demo";

/// The seed the demo uses unless told otherwise (the figures in the README were measured with it).
pub const DEFAULT_SEED: u64 = 4;

/// What the demo did.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// Per station stream results.
    pub streams: Vec<StreamReport>,
    /// Seconds spent streaming into the collector.
    pub stream_secs: f64,
    /// What the analyzer read back.
    pub summary: Summary,
    /// Where the stored tables are.
    pub data_dir: PathBuf,
    /// The analysis of the stored tables: findings and the report.
    pub run: RunReport,
    /// The run's output directory.
    pub run_dir: PathBuf,
    /// The scenario's ground truth (what the simulator injected).
    pub truth_file: PathBuf,
}

fn stage(stage: &'static str) -> impl Fn(String) -> AnalyzerError {
    move |reason| AnalyzerError::Demo { stage, reason }
}

/// Runs the demo; `progress` is told about each stage as it starts.
pub async fn run(options: &DemoOptions, progress: impl Fn(&str) + Sync) -> Result<DemoReport> {
    let scenario = Scenario::load(&options.scenario).map_err(|e| stage("scenario")(e.to_string()))?;
    std::fs::create_dir_all(&options.out)
        .map_err(|e| stage("output directory")(format!("{}: {e}", options.out.display())))?;
    let topology_path = options.out.join("topology.toml");
    let topology_text = toml::to_string(&scenario.topology).map_err(|e| stage("topology")(e.to_string()))?;
    std::fs::write(&topology_path, topology_text)
        .map_err(|e| stage("topology")(format!("{}: {e}", topology_path.display())))?;
    let data_dir = options.out.join("data");

    progress(&format!(
        "simulating scenario {:?}: {} cables, {} stations, {} days",
        scenario.name,
        scenario.topology.cables.len(),
        scenario.topology.stations.len(),
        scenario.days
    ));
    let sim = Simulation::new(&scenario, options.seed).map_err(|e| stage("scenario")(e.to_string()))?;
    // What the operator logged (maintenance calendar, repair tickets, seismic catalogue, AIS), and
    // what really happened, for `eval`.
    let context_dir = options.out.join("context");
    std::fs::create_dir_all(&context_dir)
        .map_err(|e| stage("context")(format!("{}: {e}", context_dir.display())))?;
    Context::write_jsonl(
        &context_dir.join("operator.jsonl"),
        &context_records(&scenario.topology, &sim.events),
    )
    .map_err(|e| stage("context")(e.to_string()))?;
    let truth_file = options.out.join("truth.json");
    let truth_text = serde_json::to_string_pretty(&truth(&sim)).map_err(|e| stage("truth")(e.to_string()))?;
    std::fs::write(&truth_file, truth_text + "\n")
        .map_err(|e| stage("truth")(format!("{}: {e}", truth_file.display())))?;

    let mut config = CollectorConfig::loopback(&data_dir);
    config.topology = Some(topology_path.clone());
    let collector = cablewatch_collector::start(config)
        .await
        .map_err(|e| stage("collector")(e.to_string()))?;
    progress(&format!(
        "streaming {} stations into the collector at {}",
        scenario.topology.stations.len(),
        collector.url()
    ));
    let started = Instant::now();
    let mut streamed = Ok(Vec::new());
    for day in 0..sim.days() {
        let streams = station_streams(&sim.generate_day(day), options.batch_rows);
        let stream_options = StreamOptions {
            epoch: day as u64 + 1,
            ..StreamOptions::default()
        };
        match stream_all(&collector.url(), streams, stream_options).await {
            Ok(reports) => {
                let rows: u64 = reports.iter().map(|r| r.accepted_rows).sum();
                progress(&format!(
                    "  day {}/{}: {rows} rows acknowledged ({:.1} s so far)",
                    day + 1,
                    sim.days(),
                    started.elapsed().as_secs_f64()
                ));
                if let Ok(all) = streamed.as_mut() {
                    all.extend(reports);
                }
            }
            Err(e) => {
                streamed = Err(e);
                break;
            }
        }
    }
    let stream_secs = started.elapsed().as_secs_f64();
    collector
        .shutdown()
        .await
        .map_err(|e| stage("collector shutdown")(e.to_string()))?;
    let streams = streamed.map_err(|e| stage("stream")(e.to_string()))?;

    progress(&format!("reading back {}", data_dir.display()));
    let dir = data_dir.clone();
    let summary = tokio::task::spawn_blocking(move || summarize(&dir, &Filter::default()))
        .await
        .map_err(|e| stage("analyze")(e.to_string()))??;
    let run_dir = options.out.join("out");
    progress(&format!(
        "analyzing the stored tables into {} (findings and report)",
        run_dir.display()
    ));
    let run_options = RunOptions {
        data: data_dir.clone(),
        topology: topology_path,
        context: Some(context_dir),
        out: run_dir.clone(),
        filter: Filter::default(),
        resume: false,
        lookback_ns: DEFAULT_LOOKBACK_NS,
        report: true,
        svg: false,
    };
    // The collector is shut down and nothing else runs on this runtime: the analysis may block it.
    let run = crate::run::run(&run_options, |p| {
        if let crate::run::Progress::Stage(text) = p {
            progress(&format!("  {text}"));
        }
    })?;
    Ok(DemoReport {
        streams,
        stream_secs,
        summary,
        data_dir,
        run,
        run_dir,
        truth_file,
    })
}
