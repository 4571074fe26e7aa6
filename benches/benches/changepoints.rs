//! Time per series of the analyzer's change-point engine (default configuration) on the 25 real
//! labelled RTT traces in `testdata/rtt-shao/real`, one thread, best of several repetitions per
//! trace, with the quality figures alongside. `benches/scripts/ruptures_rtt.py` times Python's
//! ruptures PELT on the same series for comparison.
//!
//! Run: `cargo bench -p cablewatch-benches --bench changepoints [-- --reps N]`.
#![allow(missing_docs, clippy::print_stdout, clippy::unwrap_used)]

use std::{path::PathBuf, time::Instant};

use cablewatch_analyzer::{
    changepoint::{Config, segment},
    series_csv::{evaluate, read_labelled_dir},
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let reps: usize = args
        .iter()
        .position(|a| a == "--reps")
        .and_then(|i| args.get(i + 1))
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/rtt-shao/real");
    let traces = read_labelled_dir(&dir).unwrap();
    let config = Config::default();
    let mut total_ms = 0.0;
    let mut samples = 0;
    let mut per_series = Vec::new();
    for t in &traces {
        let best = (0..reps)
            .map(|_| {
                let started = Instant::now();
                let found = segment(&t.values, &config);
                std::hint::black_box(found);
                started.elapsed().as_secs_f64() * 1e3
            })
            .fold(f64::INFINITY, f64::min);
        println!("{:<12} {:>6} samples {best:8.2} ms", t.name, t.values.len());
        total_ms += best;
        samples += t.values.len();
        per_series.push(best);
    }
    per_series.sort_by(f64::total_cmp);
    let eval = evaluate(&traces, &config, 2);
    println!(
        "{} series, {samples} samples: {total_ms:.1} ms in all, mean {:.2} ms, median {:.2} ms, max {:.2} ms per series, {:.2} us per sample (one thread, best of {reps})",
        traces.len(),
        total_ms / traces.len() as f64,
        per_series[per_series.len() / 2],
        per_series.last().copied().unwrap_or(0.0),
        total_ms * 1e3 / samples as f64
    );
    println!(
        "quality: median precision {:.3}, recall {:.3}, F2 {:.3} (mean F2 {:.3})",
        eval.median_precision, eval.median_recall, eval.median_f2, eval.mean_f2
    );
}
