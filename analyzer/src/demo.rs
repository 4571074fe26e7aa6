//! The end-to-end demo on an embedded scenario: simulated landing stations stream telemetry over
//! gRPC into a real collector on loopback, the collector validates and stores it as Parquet, and the
//! analyzer reads the files back and summarises them.

use std::{path::PathBuf, time::Instant};

use cablewatch_collector::CollectorConfig;
use cablewatch_testdata::{
    generate::{Simulation, station_streams},
    scenario::Scenario,
    stream::{StreamOptions, StreamReport, stream_all},
};

use crate::{
    AnalyzerError, Result,
    load::Filter,
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
}

fn stage(stage: &'static str) -> impl Fn(String) -> AnalyzerError {
    move |reason| AnalyzerError::Demo { stage, reason }
}

/// Runs the demo; `progress` is told about each stage as it starts.
pub async fn run(options: &DemoOptions, progress: impl Fn(&str)) -> Result<DemoReport> {
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

    let mut config = CollectorConfig::loopback(&data_dir);
    config.topology = Some(topology_path);
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

    progress(&format!("analyzing {}", data_dir.display()));
    let dir = data_dir.clone();
    let summary = tokio::task::spawn_blocking(move || summarize(&dir, &Filter::default()))
        .await
        .map_err(|e| stage("analyze")(e.to_string()))??;
    Ok(DemoReport {
        streams,
        stream_secs,
        summary,
        data_dir,
    })
}
