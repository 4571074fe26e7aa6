//! `cablewatch-analyzer run` end to end (read, detect, fuse, write) on a generated scenario: optical
//! rows per second, peak memory, and 1 thread against 2 (and against 1 thread confined to 1 core).
//!
//! The parent generates the scenario once (default `large`, seed 1, under
//! `$CARGO_TARGET_DIR/bench-data/`, reused by later runs) and runs each measurement in a child
//! process of this binary with `RAYON_NUM_THREADS` and `POLARS_MAX_THREADS` set, so that every
//! thread count gets fresh thread pools and its own peak resident memory (`VmHWM`).
//!
//! Run: `cargo bench -p cablewatch-benches --bench run [-- --scenario NAME --seed N --rounds R]`;
//! `--report` also draws the analysts' HTML report with its plots (the `report` stage).
#![allow(missing_docs, clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use cablewatch_analyzer::{
    load::Filter,
    run::{RunOptions, run},
};
use cablewatch_proto::context::Context;
use cablewatch_testdata::{
    events::context_records,
    generate::{Simulation, write_tables},
    scenario::Scenario,
};

/// The analyzer binary's allocator (and its settings, in `child`), so the bench measures what
/// `cablewatch-analyzer run` does.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// Peak resident memory of this process, bytes (Linux `VmHWM`).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn generate(name: &str, seed: u64, dir: &Path) {
    if dir.join("topology.toml").exists() {
        return;
    }
    println!("generating scenario {name} seed {seed} in {}", dir.display());
    let scenario = Scenario::load(name).unwrap();
    let sim = Simulation::new(&scenario, seed).unwrap();
    write_tables(&sim, &dir.join("data")).unwrap();
    std::fs::create_dir_all(dir.join("context")).unwrap();
    Context::write_jsonl(
        &dir.join("context/operator.jsonl"),
        &context_records(&scenario.topology, &sim.events),
    )
    .unwrap();
    // Written last: its presence marks a complete scenario.
    std::fs::write(
        dir.join("topology.toml"),
        toml::to_string(&scenario.topology).unwrap(),
    )
    .unwrap();
}

/// One measured run, in this (child) process; with `report`, `run` also draws the HTML report and
/// its plots (its time is the `report` stage).
fn child(dir: &Path, cores: Option<usize>, report: bool) {
    // Confined to the first `cores` CPUs this process may use, before any thread starts.
    if let Some(n) = cores {
        let allowed = rustix::thread::sched_getaffinity(None).unwrap();
        let mut set = rustix::thread::CpuSet::new();
        (0..rustix::thread::CpuSet::MAX_CPU)
            .filter(|&c| allowed.is_set(c))
            .take(n)
            .for_each(|c| set.set(c));
        rustix::thread::sched_setaffinity(None, &set).unwrap();
    }
    // As the analyzer binary does.
    cablewatch_collector::alloc::tune_allocator(cablewatch_collector::alloc::ANALYZER);
    let options = RunOptions {
        data: dir.join("data"),
        topology: dir.join("topology.toml"),
        context: Some(dir.join("context")),
        out: dir.join(format!("out-{}", std::process::id())),
        filter: Filter::default(),
        resume: false,
        lookback_ns: cablewatch_analyzer::run::DEFAULT_LOOKBACK_NS,
        report,
        svg: false,
    };
    let started = Instant::now();
    let report = run(&options, |_| {}).unwrap();
    let secs = started.elapsed().as_secs_f64();
    let optical = report.rows.get("optical_channel").copied().unwrap_or(0);
    let all: usize = report.rows.values().sum();
    let stages: Vec<String> = report
        .stages
        .iter()
        .map(|(n, s)| format!("{n} {s:.2} s"))
        .collect();
    std::fs::remove_dir_all(&options.out).ok();
    println!(
        "RESULT {secs:.3} {optical} {all} {} {} | {}",
        peak_rss().unwrap_or(0),
        report.findings.len(),
        stages.join(", ")
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let scenario = arg(&args, "--scenario").unwrap_or_else(|| "large".into());
    let seed: u64 = arg(&args, "--seed").and_then(|s| s.parse().ok()).unwrap_or(1);
    let rounds: usize = arg(&args, "--rounds").and_then(|s| s.parse().ok()).unwrap_or(2);
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("bench-data").join(format!("{scenario}-{seed}"));
    if args.iter().any(|a| a == "--child") {
        child(
            &dir,
            arg(&args, "--cores").and_then(|s| s.parse().ok()),
            args.iter().any(|a| a == "--report"),
        );
        return;
    }
    generate(&scenario, seed, &dir);
    let me = std::env::current_exe().unwrap();
    // (label, threads, cores): polars' "1 thread" still decodes on a second, asynchronous thread,
    // so one thread is also measured confined to one core.
    let setups: [(&str, usize, Option<usize>); 3] = [
        ("2 threads", 2, None),
        ("1 thread", 1, None),
        ("1 thread on 1 core", 1, Some(1)),
    ];
    let mut results: Vec<(usize, f64, usize, u64)> = Vec::new();
    for round in 0..rounds {
        for (setup, &(label, threads, cores)) in setups.iter().enumerate() {
            let mut command = Command::new(&me);
            command.args(["--child", "--scenario", &scenario, "--seed", &seed.to_string()]);
            if let Some(n) = cores {
                command.args(["--cores", &n.to_string()]);
            }
            if args.iter().any(|a| a == "--report") {
                command.arg("--report");
            }
            let out = command
                .env("RAYON_NUM_THREADS", threads.to_string())
                .env("POLARS_MAX_THREADS", threads.to_string())
                .output()
                .expect("running the child");
            let text = String::from_utf8_lossy(&out.stdout);
            let Some(line) = text.lines().find_map(|l| l.strip_prefix("RESULT ")) else {
                panic!("child failed: {}\n{}", text, String::from_utf8_lossy(&out.stderr));
            };
            let (nums, stages) = line.split_once(" | ").unwrap_or((line, ""));
            let f: Vec<&str> = nums.split_whitespace().collect();
            let secs: f64 = f[0].parse().unwrap();
            let optical: usize = f[1].parse().unwrap();
            let all: usize = f[2].parse().unwrap();
            let rss: u64 = f[3].parse().unwrap();
            println!(
                "round {} {label}: {secs:.2} s, {:.2} M optical rows/s ({:.2} M rows/s of all {all}), peak {:.2} GB, {} findings; {stages}",
                round + 1,
                optical as f64 / secs / 1e6,
                all as f64 / secs / 1e6,
                rss as f64 / 1e9,
                f[4]
            );
            results.push((setup, secs, optical, rss));
        }
    }
    let best = |t: usize| {
        results
            .iter()
            .filter(|r| r.0 == t)
            .map(|r| r.1)
            .fold(f64::INFINITY, f64::min)
    };
    let median = |t: usize| {
        let mut v: Vec<f64> = results.iter().filter(|r| r.0 == t).map(|r| r.1).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let optical = results.first().map_or(0, |r| r.2);
    let two = best(0);
    println!(
        "{scenario} seed {seed}, {rounds} rounds: 2 threads best {two:.2} s ({:.2} M optical rows/s), median {:.2} s; peak memory up to {:.2} GB",
        optical as f64 / two / 1e6,
        median(0),
        results.iter().map(|r| r.3).max().unwrap_or(0) as f64 / 1e9
    );
    for (setup, (label, _, _)) in setups.iter().enumerate().skip(1) {
        println!(
            "  {label}: best {:.2} s, median {:.2} s; 2 threads are {:.2}x faster (best), {:.2}x (medians)",
            best(setup),
            median(setup),
            best(setup) / two,
            median(setup) / median(0)
        );
    }
}
