//! Ingest throughput of the real collector over loopback: simulated stations stream 1,000-sample
//! optical batches concurrently into an in-process server, with durable acknowledgements (WAL
//! group commit, checkpoints to Parquet) and again with persistence off (the transport ceiling).
//!
//! Run: `cargo bench -p cablewatch-benches --bench ingest [-- [--rounds N] [--days N] [--durable-only | --ceiling-only]]`.
//! Prints acknowledged samples per second, the ratio to the ceiling, and peak resident memory.
#![allow(missing_docs, clippy::print_stdout, clippy::unwrap_used)]

use std::time::Instant;

// The allocator the collector binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use cablewatch_collector::CollectorConfig;
use cablewatch_proto::wire::Payload;
use cablewatch_testdata::{
    generate::{Simulation, StationStream, station_streams},
    scenario::Scenario,
    stream::{StreamOptions, stream_all},
};

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

async fn run(streams: Vec<StationStream>, persist: bool, topology: &std::path::Path) -> (u64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = CollectorConfig::loopback(dir.path().join("data"));
    config.topology = Some(topology.to_owned());
    config.persist = persist;
    if let Some(level) = std::env::var("CABLEWATCH_BENCH_ZSTD_LEVEL")
        .ok()
        .and_then(|l| l.parse().ok())
    {
        config.parquet.zstd_level = level;
    }
    let collector = cablewatch_collector::start(config).await.unwrap();
    let options = StreamOptions {
        window: 32,
        ..StreamOptions::default()
    };
    let started = Instant::now();
    let samples: u64 = streams
        .iter()
        .flat_map(|s| &s.payloads)
        .map(|p| p.row_count().unwrap_or(0) as u64)
        .sum();
    let reports = stream_all(&collector.url(), streams, options).await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    let buffered = collector.store().buffered_rows().unwrap_or(0);
    let collector_checkpoints = collector.store().checkpoints();
    let wal = collector.store().wal_stats();
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    let (records, syncs, sync_s, wal_mb) = (
        load(&wal.records),
        load(&wal.syncs).max(1),
        load(&wal.sync_nanos) as f64 / 1e9,
        load(&wal.bytes) as f64 / 1e6,
    );
    collector.shutdown().await.unwrap();
    let all_in_parquet = started.elapsed().as_secs_f64();
    let parquet_mb = cablewatch_collector::durable::parquet_bytes_under(dir.path()) as f64 / 1e6;
    let retries: u64 = reports.iter().map(|r| r.retries).sum();
    let checkpoints = collector_checkpoints;
    if persist {
        println!(
            "{:>42}: {retries} batches sent again after RETRY_LATER, {checkpoints} checkpoints",
            "backpressure"
        );
        println!(
            "{:>42}: {parquet_mb:.0} MB of Parquet; {buffered} rows still buffered at the last ack, \
             all in Parquet after {all_in_parquet:.2} s ({:.0} samples/s acknowledged and checkpointed)",
            "stored",
            samples as f64 / all_in_parquet
        );
        println!(
            "{:>42}: {wal_mb:.0} MB in {records} records, {syncs} syncs ({:.1} records and {:.2} ms each), \
             {sync_s:.2} s writing and syncing",
            "write-ahead log",
            records as f64 / syncs as f64,
            sync_s * 1e3 / syncs as f64
        );
    }
    (reports.iter().map(|r| r.accepted_rows).sum(), secs)
}

fn main() {
    cablewatch_collector::alloc::tune_allocator(cablewatch_collector::alloc::COLLECTOR);
    // Only optical rows: they are the volume; one day of the large scenario (1-minute samples).
    let scenario = Scenario::load("large").unwrap();
    let sim = Simulation::new(&scenario, 1).unwrap();
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1));
    // `-- --days N`: more data than the collector may buffer (4 M rows) shows whether checkpoints
    // keep up, not just how fast acknowledgements go.
    let days: usize = arg("--days").and_then(|n| n.parse().ok()).unwrap_or(1);
    let units: Vec<_> = (0..days)
        .flat_map(|day| sim.generate_day(day))
        .filter(|u| matches!(u.payload, Payload::Optical(_)))
        .collect();
    let streams = station_streams(&units, 1000);
    let samples: usize = streams
        .iter()
        .flat_map(|s| &s.payloads)
        .map(|p| p.row_count().unwrap())
        .sum();
    let dir = tempfile::tempdir().unwrap();
    let topology = dir.path().join("topology.toml");
    std::fs::write(&topology, toml::to_string(&scenario.topology).unwrap()).unwrap();
    println!(
        "ingest: {} station streams, {} batches of <= 1,000 optical samples, {samples} samples",
        streams.len(),
        streams.iter().map(|s| s.payloads.len()).sum::<usize>()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // `-- --durable-only` / `-- --ceiling-only` run one half (e.g. under a profiler); `-- --rounds N`
    // repeats both (the machine's speed drifts by a fifth between minutes; the median says more).
    let rounds: usize = arg("--rounds").and_then(|n| n.parse().ok()).unwrap_or(1);
    let modes = [
        ("persistence off (transport ceiling)", false),
        ("durable (WAL group commit + checkpoints)", true),
    ];
    let modes: Vec<_> = modes
        .into_iter()
        .filter(|(_, persist)| {
            !(args.iter().any(|a| a == "--durable-only") && !persist
                || args.iter().any(|a| a == "--ceiling-only") && *persist)
        })
        .collect();
    let mut rates = vec![Vec::new(); modes.len()];
    for round in 1..=rounds {
        let mut this_round = Vec::new();
        for (m, &(label, persist)) in modes.iter().enumerate() {
            if round > 1 || m > 0 {
                // Let the previous run's writeback settle: it slows whatever runs next.
                runtime.block_on(async { tokio::time::sleep(std::time::Duration::from_secs(5)).await });
            }
            let (acked, secs) = runtime.block_on(run(streams.clone(), persist, &topology));
            assert_eq!(
                acked as usize, samples,
                "{label}: not every sample was acknowledged"
            );
            let rate = acked as f64 / secs;
            rates[m].push(rate);
            this_round.push(rate);
            println!("{label:>42}: {acked} samples in {secs:.2} s = {rate:.0} samples/s");
        }
        if let [ceiling, durable] = this_round[..] {
            println!("{:>42}: {:.2}", "durable / ceiling", durable / ceiling);
        }
    }
    if rounds > 1 {
        for ((label, _), rates) in modes.iter().zip(&mut rates) {
            rates.sort_by(f64::total_cmp);
            println!(
                "{label:>42}: min {:.2} M, median {:.2} M, max {:.2} M samples/s over {rounds} rounds",
                rates[0] / 1e6,
                rates[rates.len() / 2] / 1e6,
                rates[rates.len() - 1] / 1e6
            );
        }
    }
    println!(
        "peak resident memory of the process (simulator, clients and collector): {:.0} MB",
        peak_rss_mb()
    );
}
