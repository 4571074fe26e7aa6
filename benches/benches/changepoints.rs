//! Time per series of the analyzer's change-point engine (default configuration) on the 25 real
//! labelled RTT traces in `testdata/rtt-shao/real`, one thread, best of several repetitions per
//! trace, with the quality figures alongside; then on long generated series of 10 k, 100 k and
//! 1 M points (levels lasting 200 to 20,000 samples, noise that changes scale, 0.1 % spikes, one
//! long quiet stretch), where the search's cost in the length shows.
//! `benches/scripts/ruptures_side_by_side.py` times ruptures' C search on the same RTT series and
//! this bench's engine side in one run (it calls this bench with `--rtt-only --json`: one line of
//! JSON with each trace's best time and change count).
//!
//! Run: `cargo bench -p cablewatch-benches --bench changepoints [-- --reps N] [--rtt-only] [--json]`.
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
    let rtt_only = args.iter().any(|a| a == "--rtt-only");
    let json = args.iter().any(|a| a == "--json");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/rtt-shao/real");
    let traces = read_labelled_dir(&dir).unwrap();
    let config = Config::default();
    let mut total_ms = 0.0;
    let mut samples = 0;
    let mut per_series = Vec::new();
    let mut rows = Vec::new();
    for t in &traces {
        let mut changes = 0;
        let best = (0..reps)
            .map(|_| {
                let started = Instant::now();
                let found = segment(&t.values, &config);
                let ms = started.elapsed().as_secs_f64() * 1e3;
                changes = found.change_points.len();
                std::hint::black_box(found);
                ms
            })
            .fold(f64::INFINITY, f64::min);
        if !json {
            println!("{:<12} {:>6} samples {best:8.2} ms", t.name, t.values.len());
        }
        rows.push(format!(
            r#"{{"name":"{}","samples":{},"ms":{best},"changes":{changes}}}"#,
            t.name,
            t.values.len()
        ));
        total_ms += best;
        samples += t.values.len();
        per_series.push(best);
    }
    if json {
        println!(r#"{{"traces":[{}]}}"#, rows.join(","));
        return;
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
    if rtt_only {
        return;
    }
    for n in [10_000usize, 100_000, 1_000_000] {
        let (y, changes) = long_series(n, 7);
        let mut found = 0;
        let best = (0..reps.min(3))
            .map(|_| {
                let started = Instant::now();
                let s = segment(&y, &config);
                found = s.change_points.len();
                std::hint::black_box(s);
                started.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min);
        println!(
            "{n:>9} points: {best:.3} s ({:.2} us per point), {found} change points found, {changes} generated (one thread, best of {})",
            best * 1e6 / n as f64,
            reps.min(3)
        );
    }
}

/// A long series: levels lasting 200 to 20,000 samples (log-uniform), shifts of 3 to 10 noise
/// sigmas, the noise scale changing now and then, 0.1 % spikes, and the middle fifth one quiet
/// level. Returns the values and the number of changes made.
fn long_series(n: usize, seed: u64) -> (Vec<f64>, usize) {
    let mut s = seed;
    let mut u = move || {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        (s.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    };
    let gauss = |u: &mut dyn FnMut() -> f64| (0..12).map(|_| u()).sum::<f64>() - 6.0;
    let (mut level, mut sigma, mut left, mut changes) = (50.0, 1.0, 0usize, 0);
    let quiet = (2 * n / 5)..(3 * n / 5);
    let y = (0..n)
        .map(|i| {
            if left == 0 && !quiet.contains(&i) {
                left = (200.0 * 100f64.powf(u())) as usize;
                if i > 0 {
                    changes += 1;
                    if u() < 0.8 {
                        level += (3.0 + 7.0 * u()) * sigma * if u() < 0.5 { -1.0 } else { 1.0 };
                    } else {
                        sigma = 0.5 + 2.0 * u();
                    }
                }
            }
            left = left.saturating_sub(1);
            let spike = if u() < 0.001 { 20.0 * sigma } else { 0.0 };
            level + sigma * gauss(&mut u) + spike
        })
        .collect();
    (y, changes)
}
