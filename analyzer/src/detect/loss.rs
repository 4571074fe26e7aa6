//! Loss steps and repeater ageing from line monitoring, one fiber at a time.
//!
//! ```text
//! loop-back gain per (cable, direction, fiber pair, repeater)
//!   --grouped per fiber into a sweeps x repeaters grid (a sweep: the repeaters' rows within minutes)-->
//!   --each repeater's level and each sweep's common offset (median over its repeaters) removed-->
//!   --per repeater: white noise sigma (lag-1 differences), drift tau (lag-1-day differences)-->
//!   --step scan: every sweep as a candidate, up to 7 days before against up to 3 days after,
//!     z = (after - before) / sqrt(sigma^2 (1/n + 1/m) + tau^2 (T_after + T_before) / 3);
//!     the largest |z| over the threshold becomes a step and is taken out, then the next-->
//!     LossStep: span (the one this repeater measures in this direction), size, |z|, and the
//!     sweep at which the evidence after it first reached the threshold (when it was detectable)
//!   --trailing 14-day windows ending at each UTC midnight: a straight decline that fits better
//!     than any single step--> Ageing
//! ```
//!
//! Why this shape: a careful tap costs 0.02 to 0.1 dB, near one sweep's noise (0.01 to 0.05 dB),
//! so a single sweep cannot show it; the mean of n sweeps after the step can (a 0.05 dB step in
//! 0.03 dB noise stands 5 sigma above a long baseline after about 9 sweeps). What would fake a step:
//! the sweep's calibration moving every repeater at once (removed by the per-sweep median, which one
//! tapped repeater among many does not move), a repeater's slow drift (its variance over the two
//! windows is added to the noise: the test asks whether the step stands out of the drift, not
//! out of white noise alone), and single wild readings (clipped to 4 sigma around a running median).
//!
//! The threshold is not tuned: it is the quantile for a false-alarm budget of
//! [`LossConfig::false_steps_per_cable_month`], shared over every loop-back series of the cable and
//! every sweep a month holds (Bonferroni over positions and series, two-sided). The noise it
//! divides by is estimated, and at a 5-sigma bar an estimate 15 % low makes a false step ten times
//! as likely: each repeater's white noise (a winsorized variance of its lag-1 differences) is
//! moderated by the spread of all the cable's repeaters' (empirical Bayes, as limma does for genes),
//! and the quantile is Student's t with the degrees of freedom the moderated estimate is worth. It depends on the
//! sweep period and the cable's size, not on how much data a run reads, so a daily run and a run
//! over the month apply the same test to each sweep; and each test reads only 7 days before and 3
//! after its sweep, so a run that re-reads [`LossConfig::reach_ns`] before its new data decides every
//! step it has not yet settled the way one run over everything would.

use std::collections::BTreeMap;

use cablewatch_proto::topology::Topology;
use rayon::prelude::*;
use serde::Serialize;

use super::{Evidence, EvidenceKind, evidence};
use crate::{
    robust::{MAD_TO_SIGMA, median_in_place},
    series::{Series, SeriesKey},
};

const DAY_NS: i64 = 86_400_000_000_000;

/// Settings of the line-monitoring detector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LossConfig {
    /// How far before a candidate step its baseline reaches, ns.
    pub before_ns: i64,
    /// How far after a candidate step the evidence for it accumulates, ns.
    pub after_ns: i64,
    /// False loss steps allowed per cable and month of data, over all its loop-back series: sets
    /// the threshold.
    pub false_steps_per_cable_month: f64,
    /// Smallest step reported, dB: below what any tap costs (1 % tapped is 0.044 dB).
    pub min_step_db: f64,
    /// Most steps taken from one series in one run.
    pub max_steps: usize,
    /// Length of the trailing window the ageing test fits a decline on, ns.
    pub ageing_window_ns: i64,
    /// Smallest decline over that window that counts as ageing, dB.
    pub min_ageing_db: f64,
}

impl Default for LossConfig {
    fn default() -> Self {
        Self {
            before_ns: 7 * DAY_NS,
            after_ns: 3 * DAY_NS,
            false_steps_per_cable_month: 0.1,
            min_step_db: 0.02,
            max_steps: 8,
            ageing_window_ns: 14 * DAY_NS,
            min_ageing_db: 0.05,
        }
    }
}

impl LossConfig {
    /// How much data before its new data a run must read again to decide everything the way one
    /// run over all of it would: the longest window any test here reads.
    pub fn reach_ns(&self) -> i64 {
        (self.before_ns + self.after_ns).max(self.ageing_window_ns)
    }
}

/// The upper-tail normal quantile: z with P(Z > z) = p.
pub fn upper_quantile(p: f64) -> f64 {
    std::f64::consts::SQRT_2 * statrs::function::erf::erfc_inv(2.0 * p.clamp(1e-300, 0.5))
}

/// The chance each single step test may take of a false alarm on a cable with `series`
/// loop-back series sampled every `period_ns`: one tail, the budget shared over every series and
/// every sweep of a month, both signs.
pub fn step_probability(config: &LossConfig, series: usize, period_ns: i64) -> f64 {
    let sweeps_per_month = (30.0 * DAY_NS as f64 / period_ns.max(1) as f64).max(1.0);
    let tests = series.max(1) as f64 * sweeps_per_month;
    config.false_steps_per_cable_month / tests / 2.0
}

/// The |z| for one-tailed chance `p` when the noise variance is an estimate with `dof` degrees of
/// freedom: Student's t. A sweep's noise is estimated, not known, and at a 5-sigma bar a noise
/// estimate 15 % low makes a false step ten times as likely; the t quantile pays for that.
pub fn threshold_with_dof(p: f64, dof: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    if !dof.is_finite() || dof > 1e5 {
        return upper_quantile(p);
    }
    match StudentsT::new(0.0, 1.0, dof.max(1.0)) {
        Ok(t) => -t.inverse_cdf(p.clamp(1e-300, 0.5)),
        Err(_) => upper_quantile(p),
    }
}

/// Trigamma, the derivative of digamma: the variance of the log of a chi-square over its degrees
/// of freedom is `trigamma(dof / 2)`.
fn trigamma(mut x: f64) -> f64 {
    let mut acc = 0.0;
    while x < 6.0 {
        acc += 1.0 / (x * x);
        x += 1.0;
    }
    let (x2, x3) = (x * x, x * x * x);
    acc + 1.0 / x + 1.0 / (2.0 * x2) + 1.0 / (6.0 * x3) - 1.0 / (30.0 * x3 * x2) + 1.0 / (42.0 * x3 * x2 * x2)
        - 1.0 / (30.0 * x3 * x3 * x3)
}

/// The x with `trigamma(x) = v` (trigamma falls from infinity to 0), by bisection on log x.
fn trigamma_inverse(v: f64) -> f64 {
    let (mut lo, mut hi) = (1e-8f64.ln(), 1e8f64.ln());
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if trigamma(mid.exp()) > v {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (0.5 * (lo + hi)).exp()
}

/// What the cable's repeaters say about one repeater's noise before its own sweeps do: a prior
/// variance and how many degrees of freedom it is worth (empirical Bayes, as limma moderates a
/// gene's variance with all genes': Smyth 2004). Each repeater's estimate is a scaled chi-square;
/// the spread of their logs beyond what sampling alone gives is how much repeaters truly differ.
/// Median and MAD, so the few repeaters that stepped do not move it. Infinite degrees of freedom
/// when they do not differ beyond sampling (then every repeater takes the cable's variance).
fn noise_prior(estimates: &[(f64, f64)]) -> Option<(f64, f64)> {
    let usable: Vec<(f64, f64)> = estimates
        .iter()
        .copied()
        .filter(|(v, d)| v.is_finite() && *v > 0.0 && *d >= 2.0)
        .collect();
    if usable.len() < 5 {
        return None;
    }
    let mut e: Vec<f64> = usable
        .iter()
        .map(|&(v, d)| v.ln() - statrs::function::gamma::digamma(d / 2.0) + (d / 2.0).ln())
        .collect();
    let mut d: Vec<f64> = usable.iter().map(|(_, d)| trigamma(d / 2.0)).collect();
    let sampling = median_in_place(&mut d)?;
    let center = median_in_place(&mut e)?;
    let spread = robust_var(&e, Some(center))?;
    let excess = spread - sampling;
    if excess <= sampling * 1e-3 {
        return Some((center.exp(), f64::INFINITY));
    }
    let d0 = 2.0 * trigamma_inverse(excess);
    let s0 = (center + statrs::function::gamma::digamma(d0 / 2.0) - (d0 / 2.0).ln()).exp();
    Some((s0, d0))
}

/// One fiber's loop-back gain: sweeps by repeaters, and the residuals left when each repeater's
/// level and each sweep's common offset are removed.
#[derive(Debug, Clone)]
struct Grid {
    /// Sweep times (the first row of each sweep), ascending.
    times: Vec<i64>,
    /// Repeaters (as stored), ascending.
    repeaters: Vec<u32>,
    /// Gains as stored, `repeaters x times`, NaN where a repeater was not reported in a sweep.
    raw: Vec<Vec<f64>>,
    /// Residuals, same shape.
    residual: Vec<Vec<f64>>,
    /// The common offset removed from each sweep, dB.
    offsets: Vec<f64>,
}

/// Rows closer than this to the previous row's time belong to the same sweep (a sweep of a long
/// cable takes minutes; the shortest period stored is 15 minutes).
const SAME_SWEEP_NS: i64 = 5 * 60_000_000_000;

/// A step known on one repeater: (repeater's row in the grid, first sweep time after it, size).
type KnownStep = (usize, i64, f64);

fn grid(series: &[&Series]) -> Grid {
    let mut all: Vec<i64> = series.iter().flat_map(|s| s.times_ns.iter().copied()).collect();
    all.sort_unstable();
    let mut times: Vec<i64> = Vec::new();
    for t in all {
        if times.last().is_none_or(|&last| t - last > SAME_SWEEP_NS) {
            times.push(t);
        }
    }
    let sweep_of = |t: i64| times.partition_point(|&s| s <= t).saturating_sub(1);
    let raw: Vec<Vec<f64>> = series
        .iter()
        .map(|s| {
            let mut row = vec![f64::NAN; times.len()];
            for (&t, &v) in s.times_ns.iter().zip(s.values.iter()) {
                if v.is_finite() {
                    row[sweep_of(t)] = v;
                }
            }
            row
        })
        .collect();
    let mut g = Grid {
        repeaters: series.iter().map(|s| s.key.index).collect(),
        residual: Vec::new(),
        offsets: Vec::new(),
        raw,
        times,
    };
    g.remove_offsets(&[]);
    g
}

impl Grid {
    /// Residuals: each repeater's level and each sweep's offset (the median over its repeaters,
    /// when there are three or more) taken out, both estimated with the `known` steps removed.
    /// With few repeaters the median is the middle of a handful, and a repeater that steps from
    /// above them to below changes which are in the middle: the offsets would step a little on
    /// every sweep after it, and every other repeater with them. Found steps are therefore
    /// removed and the offsets estimated again.
    fn remove_offsets(&mut self, known: &[KnownStep]) {
        let corrected: Vec<Vec<f64>> = self
            .raw
            .iter()
            .enumerate()
            .map(|(r, row)| {
                let mut row = row.clone();
                for &(_, from, size) in known.iter().filter(|k| k.0 == r) {
                    let first = self.times.partition_point(|&t| t < from);
                    row[first..].iter_mut().for_each(|v| *v -= size);
                }
                row
            })
            .collect();
        let levels: Vec<f64> = corrected
            .iter()
            .map(|row| median_in_place(&mut row.clone()).unwrap_or(0.0))
            .collect();
        self.offsets = (0..self.times.len())
            .map(|s| {
                let mut v: Vec<f64> = corrected
                    .iter()
                    .zip(&levels)
                    .map(|(r, l)| r[s] - l)
                    .filter(|x| x.is_finite())
                    .collect();
                if v.len() >= 3 {
                    median_in_place(&mut v).unwrap_or(0.0)
                } else {
                    0.0
                }
            })
            .collect();
        self.residual = self
            .raw
            .iter()
            .zip(&levels)
            .map(|(row, l)| row.iter().zip(&self.offsets).map(|(x, o)| x - l - o).collect())
            .collect();
    }
}

/// Noise of one repeater's residuals, from robust spreads of differences (a step here and there
/// moves few of them): white sigma per sweep from lag-1 differences; and drift per day from
/// differences a day or more apart, in two forms. For the step test the spread is taken around
/// zero, so a steady slope counts as drift (over the two windows it moves the means apart as a
/// step would); for the ageing test around the differences' median, so the slope it looks for is
/// not counted as noise.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Noise {
    sigma: f64,
    /// Degrees of freedom of `sigma`'s square (infinite when it is the cable's, known well).
    dof: f64,
    /// Drift variance per day, slopes included (for steps).
    tau2_per_day: f64,
    /// Drift variance per day about the mean slope (for ageing).
    wander2_per_day: f64,
}

/// Robust variance (MAD around `center`, or around their median when `None`) of `d`.
fn robust_var(d: &[f64], center: Option<f64>) -> Option<f64> {
    let c = match center {
        Some(c) => c,
        None => median_in_place(&mut d.to_vec())?,
    };
    let mut a: Vec<f64> = d.iter().map(|v| (v - c).abs()).collect();
    median_in_place(&mut a).map(|m| (m * MAD_TO_SIGMA).powi(2))
}

impl Noise {
    /// The noise a repeater's tests use: its own white noise, the cable's drift, and its own
    /// steady slope on top (the difference between its drift taken around zero and around the
    /// median: a slope moves every difference, drift about as many up as down).
    fn with_own(self, own: Noise) -> Noise {
        Noise {
            sigma: own.sigma,
            dof: own.dof,
            tau2_per_day: self.tau2_per_day + (own.tau2_per_day - own.wander2_per_day).max(0.0),
            wander2_per_day: self.wander2_per_day,
        }
    }

    /// This noise with its white variance moderated by the prior `(s0^2, d0)`: the weighted mean of
    /// the two variances, worth the sum of their degrees of freedom.
    fn moderated(self, prior: Option<(f64, f64)>) -> Noise {
        let Some((s0, d0)) = prior else { return self };
        if !self.sigma.is_finite() {
            return self;
        }
        let v = self.sigma * self.sigma;
        let (v, dof) = if d0.is_infinite() {
            (s0, f64::INFINITY)
        } else {
            ((d0 * s0 + self.dof * v) / (d0 + self.dof), d0 + self.dof)
        };
        Noise {
            sigma: v.sqrt(),
            dof,
            ..self
        }
    }
}

/// A repeater's noise for its tests. Its own drift is measured with the steps it shows taken out
/// first (found with the cable's drift alone): a step in its series would otherwise count as its
/// own slope and drift, and hide itself.
fn own_noise(
    times: &[i64],
    x: &[f64],
    own: Noise,
    pooled: Noise,
    threshold: f64,
    config: &LossConfig,
) -> Noise {
    pooled.with_own(without_own_steps(times, x, own, pooled, threshold, config))
}

/// A repeater's own noise measured with its steps (found with the cable's drift alone) taken out.
fn without_own_steps(
    times: &[i64],
    x: &[f64],
    own: Noise,
    pooled: Noise,
    threshold: f64,
    config: &LossConfig,
) -> Noise {
    let first = pooled.with_own(Noise {
        tau2_per_day: 0.0,
        wander2_per_day: 0.0,
        ..own
    });
    let found = steps(times, x, &first, threshold, config);
    if found.is_empty() {
        return own;
    }
    let mut y = x.to_vec();
    for s in &found {
        y[s.at..].iter_mut().for_each(|v| *v -= s.size);
    }
    Noise {
        sigma: own.sigma,
        dof: own.dof,
        ..noise(times, &y)
    }
}

/// White noise from lag-1 differences; drift from how the differences of day-long block means
/// grow with their distance. For blocks of T days, means L blocks apart differ with variance
/// 2 sigma^2 / k + tau^2 T (L - 1/3) (a random walk's), so the growth from L = 1 to L = 7 is
/// tau^2 T per block whatever the white noise: one sweep's noise (0.03 dB) hides a day's drift
/// (0.004 dB), its growth over a week does not.
fn noise(times: &[i64], x: &[f64]) -> Noise {
    let none = Noise {
        sigma: f64::NAN,
        dof: 0.0,
        tau2_per_day: 0.0,
        wander2_per_day: 0.0,
    };
    if x.len() < 6 {
        return none;
    }
    let lag1: Vec<f64> = x.windows(2).map(|w| w[1] - w[0]).collect();
    let Some(v1) = white_var(&lag1) else {
        return none;
    };
    // Day-long blocks (at least four sweeps each), by time.
    let mut blocks: Vec<(f64, usize, i64, i64)> = Vec::new(); // (sum, count, first, last)
    for (&t, &v) in times.iter().zip(x) {
        match blocks.last_mut() {
            Some(b) if t - b.2 < DAY_NS || b.1 < 4 => {
                b.0 += v;
                b.1 += 1;
                b.3 = t;
            }
            _ => blocks.push((v, 1, t, t)),
        }
    }
    blocks.retain(|b| b.1 >= 4);
    let means: Vec<f64> = blocks.iter().map(|b| b.0 / b.1 as f64).collect();
    let far = (means.len() / 3).min(7);
    let (mut tau2, mut wander2) = (0.0, 0.0);
    if far >= 2 {
        let mut span: Vec<f64> = blocks
            .windows(2)
            .map(|w| (w[1].2 - w[0].2) as f64 / DAY_NS as f64)
            .collect();
        let t = median_in_place(&mut span).unwrap_or(1.0).max(1e-3);
        let diffs =
            |lag: usize| -> Vec<f64> { (lag..means.len()).map(|i| means[i] - means[i - lag]).collect() };
        let (near_d, far_d) = (diffs(1), diffs(far));
        // Unclamped: one repeater's estimate is noisy, and a cable's repeaters are pooled before it
        // is used.
        let growth = |center: Option<f64>, center_far: Option<f64>| -> f64 {
            match (robust_var(&near_d, center), robust_var(&far_d, center_far)) {
                (Some(a), Some(b)) => (b - a) / (t * (far - 1) as f64),
                _ => 0.0,
            }
        };
        tau2 = growth(Some(0.0), Some(0.0));
        wander2 = growth(None, None);
    }
    Noise {
        sigma: (v1 / 2.0).sqrt(),
        dof: WHITE_DOF_PER_SAMPLE * (x.len() - 1) as f64,
        tau2_per_day: tau2,
        wander2_per_day: wander2,
    }
}

/// Where lag-1 differences are winsorized, in their robust sigmas: far enough out that Gaussian
/// noise loses 2.2 % of its variance (put back by [`WINSOR_KEEPS`]), near enough that a step's one
/// large difference adds at most 6.25 samples' worth.
const WINSOR_AT: f64 = 2.5;
/// The share of a Gaussian's variance left after winsorizing at [`WINSOR_AT`]:
/// `(2 Phi(c) - 1) - 2 c phi(c) + 2 c^2 (1 - Phi(c))`.
const WINSOR_KEEPS: f64 = 0.977_56;
/// Degrees of freedom per sample of the winsorized variance of lag-1 differences (measured over
/// 20,000 Gaussian series of 120: 0.64 per sample, against 0.31 for the MAD; successive
/// differences share a sample, so even the plain variance has only 2/3 per sample).
const WHITE_DOF_PER_SAMPLE: f64 = 0.64;

/// The variance of differences `d`, winsorized around zero at [`WINSOR_AT`] robust sigmas: nearly
/// as efficient as the plain variance on Gaussian noise, and a few steps or wild readings barely
/// move it.
fn white_var(d: &[f64]) -> Option<f64> {
    let mad = robust_var(d, Some(0.0))?.sqrt();
    if mad == 0.0 {
        return Some(0.0);
    }
    let c = WINSOR_AT * mad;
    let sum: f64 = d.iter().map(|v| v.clamp(-c, c).powi(2)).sum();
    Some(sum / d.len() as f64 / WINSOR_KEEPS)
}

/// `x` with single wild readings pulled back to 4 sigma of the median of their five neighbours.
fn clip_spikes(x: &mut [f64], sigma: f64) {
    let orig = x.to_vec();
    for (i, v) in x.iter_mut().enumerate() {
        let lo = i.saturating_sub(2);
        let hi = (i + 3).min(orig.len());
        let mut w = orig[lo..hi].to_vec();
        if let Some(m) = median_in_place(&mut w) {
            *v = v.clamp(m - 4.0 * sigma, m + 4.0 * sigma);
        }
    }
}

/// Prefix sums for window means.
struct Prefix {
    sum: Vec<f64>,
}

impl Prefix {
    fn new(x: &[f64]) -> Self {
        let mut sum = Vec::with_capacity(x.len() + 1);
        sum.push(0.0);
        for v in x {
            sum.push(sum[sum.len() - 1] + v);
        }
        Self { sum }
    }

    fn mean(&self, a: usize, b: usize) -> f64 {
        (self.sum[b] - self.sum[a]) / (b - a) as f64
    }
}

/// One step test: the step size and its z at sample `i` with the before window `[lo, i)` and the
/// after window `[i, hi)`.
fn step_z(times: &[i64], p: &Prefix, n: &Noise, lo: usize, i: usize, hi: usize) -> (f64, f64) {
    let (m, k) = ((i - lo) as f64, (hi - i) as f64);
    let d = p.mean(i, hi) - p.mean(lo, i);
    let days = |a: usize, b: usize| (times[b] - times[a]) as f64 / DAY_NS as f64;
    let var =
        n.sigma * n.sigma * (1.0 / k + 1.0 / m) + n.tau2_per_day * (days(lo, i) + days(i, hi - 1)) / 3.0;
    (d, d / var.sqrt().max(1e-12))
}

/// Fewest samples before and after a step for it to be tested: four sweeps of baseline, and a
/// second sweep confirming the first.
const MIN_BEFORE: usize = 4;
const MIN_AFTER: usize = 2;

/// A step found in one series.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Step {
    /// First sample after it.
    at: usize,
    /// Size, dB (after minus before).
    size: f64,
    /// |z| with the full windows.
    z: f64,
    /// Samples after it when |z| first reached the threshold.
    confirmed_after: usize,
    /// Samples in the windows.
    before: usize,
    after: usize,
    /// The sample before the first position it may be at, and the last (see [`support`]).
    earliest: usize,
    latest: usize,
}

/// How far the windows reach before and after a candidate, ns: as far as the configuration allows
/// while white noise dominates, shorter where drift does. For windows of T days either side with
/// k sweeps a day, the variance of the step is 2 sigma^2 / (k T) + 2 tau^2 T / 3, least at
/// T = sqrt(3 sigma^2 / (k tau^2)); never under a day.
fn reach(n: &Noise, per_day: f64, config: &LossConfig) -> (i64, i64) {
    let best_days = if n.tau2_per_day > 0.0 {
        (3.0 * n.sigma * n.sigma / (per_day.max(1e-9) * n.tau2_per_day)).sqrt()
    } else {
        f64::INFINITY
    };
    let best = (best_days * DAY_NS as f64).min(i64::MAX as f64 / 4.0) as i64;
    (
        best.clamp(DAY_NS.min(config.before_ns), config.before_ns),
        best.clamp(DAY_NS.min(config.after_ns), config.after_ns),
    )
}

/// The window bounds of every candidate position `i`: `[lo[i], i)` and `[i, hi[i])`, as many sweeps
/// as `before_ns` and `after_ns` hold at the usual period. Counted in sweeps, not in time: across a
/// loss of signal (a repair's week without sweeps) the baseline is the sweeps before it.
fn windows(times: &[i64], before_ns: i64, after_ns: i64) -> (Vec<usize>, Vec<usize>) {
    let p = period(times).max(1);
    let before = usize::try_from(before_ns / p)
        .unwrap_or(usize::MAX)
        .max(MIN_BEFORE);
    let after = usize::try_from(after_ns / p).unwrap_or(usize::MAX).max(MIN_AFTER);
    let n = times.len();
    (
        (0..n).map(|i| i.saturating_sub(before)).collect(),
        (0..n).map(|i| (i + after).min(n)).collect(),
    )
}

/// Where a step found at `i` (test `z`) most likely is: the split of its windows `[lo, hi)` that
/// fits them best as two levels (least squares: the largest `n1 n2 / (n1 + n2) (m2 - m1)^2`),
/// among positions whose own test also clears `threshold`. The test's z leans late: a position a
/// few sweeps after the step keeps a long baseline that those sweeps barely dilute, while one
/// before it loses a share of its short after-window, so its maximum is often sweeps late.
fn most_likely_at(
    times: &[i64],
    p: &Prefix,
    n: &Noise,
    (lo, hi): (&[usize], &[usize]),
    i: usize,
    z: f64,
    threshold: f64,
) -> Option<usize> {
    let (a, b) = (lo[i], hi[i]);
    let fit = |j: usize| {
        let (n1, n2) = ((j - a) as f64, (b - j) as f64);
        let d = p.mean(j, b) - p.mean(a, j);
        (d * z.signum() > 0.0).then(|| n1 * n2 / (n1 + n2) * d * d)
    };
    (a + 1..b)
        .filter(|&j| j >= lo[j] + MIN_BEFORE && hi[j] >= j + MIN_AFTER)
        .filter(|&j| step_z(times, p, n, lo[j], j, hi[j]).1 * z.signum() >= threshold)
        .filter_map(|j| fit(j).map(|f| (j, f)))
        .max_by(|x, y| x.1.total_cmp(&y.1))
        .map(|(j, _)| j)
}

/// How much less likely than the best a step's position may be and still be where it happened:
/// 1/20 (a support interval, as Royall's; for a shift of known size this is about a 95 %
/// interval). In the log-likelihood of white noise of variance sigma^2, positions whose two-level
/// fit leaves at most `2 ln 20` sigma^2 more squared residual than the best one's.
const SUPPORT_LOG_RATIO: f64 = 2.995_732_273_553_991; // ln 20

/// Where a step shown at sample `i` (windows `[lo, hi)`) may have happened: the first and last
/// positions whose two-level fit of those windows is within [`SUPPORT_LOG_RATIO`] of the best
/// (the least squares' own), the first taken back one sample (a step shows at the first sweep
/// after it, so it happened after the sweep before). A faint step's support is many sweeps wide;
/// a step first seen after a gap in the sweeps happened in the gap, never after the sweep it
/// shows at.
fn support(p: &Prefix, n: &Noise, lo: usize, hi: usize, i: usize) -> (usize, usize) {
    let gain = |j: usize| {
        let (n1, n2) = ((j - lo) as f64, (hi - j) as f64);
        let d = p.mean(j, hi) - p.mean(lo, j);
        n1 * n2 / (n1 + n2) * d * d
    };
    let size = p.mean(i, hi) - p.mean(lo, i);
    let best = (lo + 1..hi)
        .filter(|&j| (p.mean(j, hi) - p.mean(lo, j)) * size > 0.0)
        .map(gain)
        .fold(gain(i), f64::max);
    let bar = 2.0 * SUPPORT_LOG_RATIO * n.sigma * n.sigma;
    let within = |j: usize| (p.mean(j, hi) - p.mean(lo, j)) * size > 0.0 && best - gain(j) <= bar;
    let first = (lo + 1..=i).find(|&j| within(j)).unwrap_or(i);
    let last = (i..hi).rev().find(|&j| within(j)).unwrap_or(i);
    (first.saturating_sub(1), last)
}

/// Steps of one repeater's residual series, largest first, each taken out before the next is
/// looked for.
fn steps(times: &[i64], x: &[f64], n: &Noise, threshold: f64, config: &LossConfig) -> Vec<Step> {
    let mut work = x.to_vec();
    let per_day = DAY_NS as f64 / period(times).max(1) as f64;
    let (before_ns, after_ns) = reach(n, per_day, config);
    let (lo, hi) = windows(times, before_ns, after_ns);
    let mut out: Vec<Step> = Vec::new();
    while out.len() < config.max_steps {
        let p = Prefix::new(&work);
        let best = (0..times.len())
            .filter(|&i| i >= lo[i] + MIN_BEFORE && hi[i] >= i + MIN_AFTER)
            .filter(|&i| !out.iter().any(|s| s.at == i))
            .map(|i| (i, step_z(times, &p, n, lo[i], i, hi[i])))
            .max_by(|a, b| a.1.1.abs().total_cmp(&b.1.1.abs()));
        let Some((i, (size, z))) = best else { break };
        if z.abs() < threshold || !z.is_finite() {
            break;
        }
        let (i, size, z) = most_likely_at(times, &p, n, (&lo, &hi), i, z, threshold)
            .filter(|&j| !out.iter().any(|s| s.at == j))
            .map_or((i, size, z), |j| {
                let (size, z) = step_z(times, &p, n, lo[j], j, hi[j]);
                (j, size, z)
            });
        // When would a run have seen it: the first sweep after which the evidence reached the
        // threshold.
        let confirmed_after = (i + MIN_AFTER..=hi[i])
            .find(|&h| step_z(times, &p, n, lo[i], i, h).1.abs() >= threshold)
            .map_or(hi[i] - i, |h| h - i);
        let (earliest, latest) = support(&p, n, lo[i], hi[i], i);
        out.push(Step {
            at: i,
            size,
            z: z.abs(),
            confirmed_after,
            before: i - lo[i],
            after: hi[i] - i,
            earliest,
            latest,
        });
        for v in &mut work[i..] {
            *v -= size;
        }
    }
    out
}

/// Declines of one repeater: per trailing window ending at a UTC midnight, the least-squares slope,
/// its z against the white noise and the drift, and whether a straight line fits better than the
/// best single step. The first window that passes is reported.
fn ageing(
    times: &[i64],
    x: &[f64],
    n: &Noise,
    threshold: f64,
    config: &LossConfig,
) -> Option<(usize, usize, f64, f64)> {
    let first_day = times.first()?.div_euclid(DAY_NS) + 1;
    let last_day = times.last()?.div_euclid(DAY_NS);
    for day in first_day..=last_day {
        let end_t = day * DAY_NS;
        let start_t = end_t - config.ageing_window_ns;
        if start_t < times[0] {
            continue;
        }
        let a = times.partition_point(|&t| t < start_t);
        let b = times.partition_point(|&t| t < end_t);
        if b < a + 8 {
            continue;
        }
        // A decline is a trend through the window: with a gap of a quarter of it (a repair's
        // outage) any two clusters fit a line as well as a step.
        let widest_gap = times[a..b].windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
        if times[a] - start_t > config.ageing_window_ns / 4
            || end_t - times[b - 1] > config.ageing_window_ns / 4
            || widest_gap > config.ageing_window_ns / 4
        {
            continue;
        }
        let xs: Vec<f64> = times[a..b]
            .iter()
            .map(|&t| (t - start_t) as f64 / DAY_NS as f64)
            .collect();
        let ys = &x[a..b];
        let k = xs.len() as f64;
        let (mx, my) = (xs.iter().sum::<f64>() / k, ys.iter().sum::<f64>() / k);
        let sxx: f64 = xs.iter().map(|v| (v - mx) * (v - mx)).sum();
        let slope = xs.iter().zip(ys).map(|(a, b)| (a - mx) * (b - my)).sum::<f64>() / sxx;
        let span_days = config.ageing_window_ns as f64 / DAY_NS as f64;
        // Slope variance: white noise, plus a random walk's (6 tau^2 / 5T for an OLS slope).
        let var = n.sigma * n.sigma / sxx + 6.0 * n.wander2_per_day / (5.0 * span_days);
        let z = slope / var.sqrt().max(1e-12);
        if slope * span_days > -config.min_ageing_db || z > -threshold {
            continue;
        }
        let line_rss: f64 = xs
            .iter()
            .zip(ys)
            .map(|(a, b)| (b - my - slope * (a - mx)).powi(2))
            .sum();
        if line_rss < best_step_rss(ys) {
            return Some((a, b, slope, z));
        }
    }
    None
}

/// Residual sum of squares of the best fit of `y` by two levels (one step anywhere).
fn best_step_rss(y: &[f64]) -> f64 {
    let n = y.len();
    let total: f64 = y.iter().sum();
    let total_sq: f64 = y.iter().map(|v| v * v).sum();
    let mut left = 0.0;
    let mut best = total * total / n as f64;
    for (k, v) in y.iter().enumerate().take(n.saturating_sub(1)) {
        left += v;
        let (nl, nr) = ((k + 1) as f64, (n - k - 1) as f64);
        best = best.max(left * left / nl + (total - left) * (total - left) / nr);
    }
    (total_sq - best).max(0.0)
}

/// The usual time between sweeps.
fn period(times: &[i64]) -> i64 {
    let mut d: Vec<i64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    if d.is_empty() {
        return DAY_NS;
    }
    let mid = d.len() / 2;
    *d.select_nth_unstable(mid).1
}

/// Loss steps and ageing of every fiber's loop-back series (one [`Series`] per repeater), fibers
/// in parallel.
pub fn line_monitoring(series: &[Series], topology: &Topology, config: &LossConfig) -> Vec<Evidence> {
    let mut fibers: BTreeMap<(&str, &str, u32), Vec<&Series>> = BTreeMap::new();
    for s in series {
        fibers
            .entry((s.key.cable.as_str(), s.key.direction.as_str(), s.key.fiber_pair))
            .or_default()
            .push(s);
    }
    let mut per_cable: BTreeMap<&str, usize> = BTreeMap::new();
    for s in series {
        *per_cable.entry(s.key.cable.as_str()).or_default() += 1;
    }
    let fibers: Vec<_> = fibers.into_iter().collect();
    let mut prepared: Vec<(&str, Prepared<'_>)> = fibers
        .par_iter()
        .map(|((cable, _, _), repeaters)| (*cable, prepare(repeaters)))
        .collect();
    // Each repeater's white noise moderated by its cable's: one repeater's month of six-hourly
    // sweeps pins its noise to about 8 %, and the few estimated low would carry most false steps.
    let mut estimates: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for (cable, p) in &prepared {
        let e = estimates.entry(cable).or_default();
        e.extend(p.noises.values().map(|n| (n.sigma * n.sigma, n.dof)));
    }
    let priors: BTreeMap<&str, Option<(f64, f64)>> = estimates
        .iter()
        .map(|(cable, e)| (*cable, noise_prior(e)))
        .collect();
    for (cable, p) in &mut prepared {
        let prior = priors.get(cable).copied().flatten();
        p.noises.values_mut().for_each(|n| *n = n.moderated(prior));
    }
    // The drift of a cable's repeaters as a population: one repeater's estimate scatters by about
    // as much as the drift itself, and a repeater that stepped (a tap, a repair) inflates its own;
    // the median over the cable's repeaters is neither (the estimate is a difference of two
    // spreads, about as likely too high as too low).
    let mut drift: BTreeMap<&str, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for (cable, p) in &prepared {
        let d = drift.entry(cable).or_default();
        for n in p.noises.values().filter(|n| n.sigma.is_finite()) {
            d.0.push(n.tau2_per_day);
            d.1.push(n.wander2_per_day);
        }
    }
    let pool = |drift: BTreeMap<&'_ str, (Vec<f64>, Vec<f64>)>| -> BTreeMap<String, Noise> {
        drift
            .into_iter()
            .map(|(cable, (mut tau2, mut wander2))| {
                let n = Noise {
                    sigma: f64::NAN,
                    dof: f64::INFINITY,
                    tau2_per_day: median_in_place(&mut tau2).unwrap_or(0.0).max(0.0),
                    wander2_per_day: median_in_place(&mut wander2).unwrap_or(0.0).max(0.0),
                };
                (cable.to_owned(), n)
            })
            .collect()
    };
    let quiet = Noise {
        sigma: f64::NAN,
        dof: f64::INFINITY,
        tau2_per_day: 0.0,
        wander2_per_day: 0.0,
    };
    let first = pool(drift);
    // Again with each repeater's own steps taken out: on a small cable many of its series may
    // hold a step (a repair steps a span on every fiber), and a step counts as drift.
    let clean: Vec<Vec<Noise>> = prepared
        .par_iter()
        .map(|(cable, p)| {
            let series = per_cable.get(cable).copied().unwrap_or(1);
            let chance = step_probability(config, series, period(&p.grid.times));
            let pooled = first.get(*cable).copied().unwrap_or(quiet);
            p.grid
                .repeaters
                .iter()
                .zip(&p.grid.residual)
                .filter_map(|(r, row)| {
                    let own = p.noises[r];
                    if !own.sigma.is_finite() || own.sigma <= 0.0 {
                        return None;
                    }
                    let (times, mut x) = finite(&p.grid.times, row);
                    clip_spikes(&mut x, own.sigma);
                    let threshold = threshold_with_dof(chance, own.dof);
                    Some(without_own_steps(&times, &x, own, pooled, threshold, config))
                })
                .collect()
        })
        .collect();
    let mut drift: BTreeMap<&str, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for ((cable, _), noises) in prepared.iter().zip(&clean) {
        let d = drift.entry(cable).or_default();
        for n in noises {
            d.0.push(n.tau2_per_day);
            d.1.push(n.wander2_per_day);
        }
    }
    let pooled = pool(drift);
    prepared
        .into_par_iter()
        .flat_map_iter(|(cable, p)| {
            let pooled = pooled.get(cable).copied().unwrap_or(quiet);
            fiber(
                p,
                pooled,
                topology,
                per_cable.get(cable).copied().unwrap_or(1),
                config,
            )
        })
        .collect()
}

/// One fiber's grid and each repeater's own noise.
struct Prepared<'a> {
    repeaters: &'a [&'a Series],
    grid: Grid,
    noises: BTreeMap<u32, Noise>,
}

fn prepare<'a>(repeaters: &'a [&'a Series]) -> Prepared<'a> {
    let g = grid(repeaters);
    let noises = g
        .repeaters
        .iter()
        .zip(&g.residual)
        .map(|(r, row)| {
            let (t, x) = finite(&g.times, row);
            (*r, noise(&t, &x))
        })
        .collect();
    Prepared {
        repeaters,
        grid: g,
        noises,
    }
}

/// The times and values of `row` where it has a value.
fn finite(times: &[i64], row: &[f64]) -> (Vec<i64>, Vec<f64>) {
    times
        .iter()
        .zip(row)
        .filter(|(_, v)| v.is_finite())
        .map(|(&t, &v)| (t, v))
        .unzip()
}

fn fiber(
    p: Prepared<'_>,
    pooled: Noise,
    topology: &Topology,
    cable_series: usize,
    config: &LossConfig,
) -> Vec<Evidence> {
    let (mut g, repeaters, noises) = (p.grid, p.repeaters, &p.noises);
    if g.times.len() < MIN_BEFORE + MIN_AFTER {
        return Vec::new();
    }
    let chance = step_probability(config, cable_series, period(&g.times));
    // The offsets are estimated again with the strongest step found taken out, one step at a
    // time (see `Grid::remove_offsets`): on a fiber of a few repeaters, two that stepped can move
    // the median of every sweep between their steps, and the others would seem to step with it;
    // taking out the strongest first, a step such a shift made up is never the strongest.
    let mut known: Vec<KnownStep> = Vec::new();
    let mut out = fiber_pass(&g, repeaters, noises, pooled, chance, topology, config);
    for _ in 0..config.max_steps {
        let row_of = |e: &Found| g.repeaters.iter().position(|&r| r == e.span_repeater);
        let strongest = out
            .iter()
            .filter(|e| e.kind == EvidenceKind::LossStep && e.magnitude.abs() > 3.0 * e.sigma)
            .filter(|e| {
                !known
                    .iter()
                    .any(|k| Some(k.0) == row_of(e) && (k.1 - e.start_ns).abs() <= SAME_SWEEP_NS)
            })
            .max_by(|a, b| a.evidence.sigmas.total_cmp(&b.evidence.sigmas));
        let Some(next) = strongest.and_then(|e| Some((row_of(e)?, e.start_ns, e.magnitude))) else {
            break;
        };
        known.push(next);
        g.remove_offsets(&known);
        out = fiber_pass(&g, repeaters, noises, pooled, chance, topology, config);
    }
    out.into_iter().map(|e| e.evidence).collect()
}

/// A piece of evidence with the repeater whose series it came from.
struct Found {
    kind: EvidenceKind,
    span_repeater: u32,
    /// The repeater's white noise per sweep, dB.
    sigma: f64,
    start_ns: i64,
    magnitude: f64,
    evidence: Evidence,
}

fn fiber_pass(
    g: &Grid,
    repeaters: &[&Series],
    noises: &BTreeMap<u32, Noise>,
    pooled: Noise,
    chance: f64,
    topology: &Topology,
    config: &LossConfig,
) -> Vec<Found> {
    let offset_spread = {
        let mut o: Vec<f64> = g.offsets.iter().map(|o| o.abs()).collect();
        median_in_place(&mut o).unwrap_or(0.0) * MAD_TO_SIGMA
    };
    let key0 = &repeaters[0].key;
    let cable = topology.cable(&key0.cable);
    let mut out = Vec::new();
    for (r, row) in g.repeaters.iter().zip(&g.residual) {
        let key = SeriesKey {
            index: *r,
            ..key0.clone()
        };
        let span = cable.and_then(|c| c.span_covered_by(&key.direction, *r));
        let (times, mut x) = finite(&g.times, row);
        let own = noises[r];
        if !own.sigma.is_finite() || own.sigma <= 0.0 {
            continue;
        }
        clip_spikes(&mut x, own.sigma);
        let threshold = threshold_with_dof(chance, own.dof);
        let n = own_noise(&times, &x, own, pooled, threshold, config);
        let covers = match span {
            Some(s) => format!("repeater {r} (measures span {s} in {})", key.direction),
            None => format!("repeater {r}"),
        };
        let found = |e: Evidence| Found {
            kind: e.kind,
            span_repeater: *r,
            sigma: n.sigma,
            start_ns: e.start_ns,
            magnitude: e.magnitude,
            evidence: e,
        };
        if let Some((a, b, slope, z)) = ageing(&times, &x, &n, threshold, config) {
            let mut e = evidence(&key, EvidenceKind::Ageing, times[a], times[b - 1]);
            e.span = span;
            e.magnitude = slope;
            e.unit = "dB/day".into();
            e.sigmas = z.abs();
            e.threshold = threshold;
            e.detected_ns = times[b - 1];
            e.detail = format!(
                "{covers} loop-back gain falls {:.4} dB/day over the {:.0} days to {} ({:.1} sigma of its noise and drift), a straight decline rather than a step",
                -slope,
                config.ageing_window_ns as f64 / DAY_NS as f64,
                cablewatch_proto::time::format_ns(times[b - 1]),
                z.abs()
            );
            out.push(found(e));
            continue;
        }
        for s in steps(&times, &x, &n, threshold, config) {
            if s.size.abs() < config.min_step_db {
                continue;
            }
            let t = times[s.at];
            let mut e = evidence(&key, EvidenceKind::LossStep, t, t);
            e.span = span;
            e.magnitude = s.size;
            e.unit = "dB".into();
            e.sigmas = s.z;
            e.threshold = threshold;
            e.detected_ns = times[s.at + s.confirmed_after - 1];
            e.placed_within_ns = Some((times[s.earliest], times[s.latest]));
            e.detail = format!(
                "{covers} loop-back gain {} by {:.3} dB: {:.1} sigma with {} sweeps after against {} before (threshold {:.1}); noise {:.3} dB per sweep, drift {:.4} dB/sqrt(day), sweep offsets of {:.3} dB removed; conclusive after {} sweeps; happened after the sweep of {} and by {} (where its fit is at least 1/20 as likely as at its best)",
                if s.size < 0.0 { "dropped" } else { "rose" },
                s.size.abs(),
                s.z,
                s.after,
                s.before,
                threshold,
                n.sigma,
                n.tau2_per_day.sqrt(),
                offset_spread,
                s.confirmed_after,
                cablewatch_proto::time::format_ns(times[s.earliest]),
                cablewatch_proto::time::format_ns(times[s.latest])
            );
            out.push(found(e));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use ndarray::Array1;

    use super::*;

    const HOUR: i64 = 3_600_000_000_000;

    /// Deterministic standard normal samples (xorshift + Box-Muller).
    fn gaussian(seed: u64, n: usize) -> Vec<f64> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut uniform = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| (-2.0 * uniform().ln()).sqrt() * (std::f64::consts::TAU * uniform()).cos())
            .collect()
    }

    fn topology() -> Topology {
        Topology::from_toml_file(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../testdata/topology.toml"
        )))
        .unwrap()
    }

    /// A fiber of `bay-1` (18 repeaters) in `direction`, sweeps every `period_h` hours for `days`:
    /// noise `sigma`, a common offset of `offset` sd per sweep, and `step` dB at repeater `rep` from
    /// sweep `at` on.
    fn fiber_series(
        seed: u64,
        direction: &str,
        period_h: i64,
        days: i64,
        sigma: f64,
        offset: f64,
        step: Option<(u32, usize, f64)>,
    ) -> Vec<Series> {
        let n = (days * 24 / period_h) as usize;
        let offsets: Vec<f64> = gaussian(seed ^ 0xABCD, n)
            .into_iter()
            .map(|v| v * offset)
            .collect();
        (1..=18u32)
            .map(|r| {
                let noise = gaussian(seed * 100 + u64::from(r), n);
                let values: Vec<f64> = (0..n)
                    .map(|i| {
                        let s = match step {
                            Some((rep, at, db)) if rep == r && i >= at => db,
                            _ => 0.0,
                        };
                        -32.0 + f64::from(r) * 0.1 + offsets[i] + sigma * noise[i] + s
                    })
                    .collect();
                Series {
                    key: SeriesKey {
                        cable: "bay-1".into(),
                        direction: direction.into(),
                        fiber_pair: 1,
                        index: r,
                    },
                    times_ns: Array1::from_iter(
                        (0..n as i64).map(|i| 1_790_000_000_000_000_000 + i * period_h * HOUR),
                    ),
                    values: Array1::from_vec(values),
                }
            })
            .collect()
    }

    /// Every fiber of `bay-1` (4 pairs, both directions), the step on pair 1.
    fn cable_series(
        seed: u64,
        direction: &str,
        period_h: i64,
        days: i64,
        step: Option<(u32, usize, f64)>,
    ) -> Vec<Series> {
        let mut all = Vec::new();
        for fp in 1..=4u32 {
            for d in ["a_to_b", "b_to_a"] {
                let mut s = fiber_series(
                    seed * 10 + u64::from(fp) * 2 + u64::from(d == "b_to_a"),
                    d,
                    period_h,
                    days,
                    0.03,
                    0.08,
                    step.filter(|_| fp == 1 && d == direction),
                );
                s.iter_mut().for_each(|s| s.key.fiber_pair = fp);
                all.extend(s);
            }
        }
        all
    }

    #[test]
    fn a_faint_step_under_large_sweep_offsets_is_found_in_its_span_with_its_delay() {
        // 0.06 dB in 0.03 dB noise, with sweep offsets of 0.08 dB that hide it in the raw values;
        // six-hourly sweeps for 20 days, the step on day 12 at repeater 7 going B to A (span 8).
        let at = 48;
        let s = cable_series(3, "b_to_a", 6, 20, Some((7, at, -0.06)));
        let ev = line_monitoring(&s, &topology(), &LossConfig::default());
        assert_eq!(ev.len(), 1, "{ev:#?}");
        let e = &ev[0];
        assert_eq!((e.kind, e.span), (EvidenceKind::LossStep, Some(8)));
        assert!((e.magnitude + 0.06).abs() < 0.02, "{}", e.magnitude);
        assert_eq!(e.start_ns, s[0].times_ns[at], "placed at its sweep");
        // Conclusive within three days of sweeps, not at the first one.
        let delay_h = (e.detected_ns - e.start_ns) / HOUR;
        assert!((6..=72).contains(&delay_h), "detected after {delay_h} h");
    }

    #[test]
    fn a_faint_step_is_placed_where_it_happened_not_sweeps_late() {
        // 0.07 dB in 0.03 dB noise on six-hourly sweeps, at sweep 48 of 80, over 24 seeds.
        let at = 48;
        let mut errors = Vec::new();
        for seed in 0..24 {
            let s = cable_series(seed + 500, "a_to_b", 6, 20, Some((5, at, -0.07)));
            let ev = line_monitoring(&s, &topology(), &LossConfig::default());
            let Some(e) = ev.iter().find(|e| e.span == Some(5)) else {
                continue;
            };
            let i = s[0].times_ns.iter().position(|&t| t == e.start_ns).unwrap();
            errors.push(i as i64 - at as i64);
        }
        assert!(errors.len() >= 16, "found in {} of 24: {errors:?}", errors.len());
        let late = errors.iter().filter(|&&e| e > 1).count();
        let off = errors.iter().filter(|&&e| e != 0).count();
        assert!(late <= 2 && off * 3 <= errors.len(), "sweeps off: {errors:?}");
    }

    #[test]
    fn where_a_step_may_be_covers_where_it_was_and_a_gap_it_was_in() {
        // Over 24 seeds of a faint step (0.07 dB in 0.03 dB noise, six-hourly): the times it is
        // placed between hold the true one nearly always, and span hours, not days.
        let at = 48;
        let (mut found, mut covered, mut widths) = (0, 0, Vec::new());
        for seed in 0..24 {
            let s = cable_series(seed + 700, "a_to_b", 6, 20, Some((5, at, -0.07)));
            let ev = line_monitoring(&s, &topology(), &LossConfig::default());
            let Some(e) = ev.iter().find(|e| e.span == Some(5)) else {
                continue;
            };
            let (from, to) = e.placed_within_ns.expect("a step says where it may be");
            let t = s[0].times_ns[at];
            found += 1;
            covered += usize::from(from < t && t <= to);
            widths.push((to - from) / HOUR);
        }
        assert!(
            found >= 16 && covered + 1 >= found,
            "{covered} of {found}: {widths:?}"
        );
        widths.sort_unstable();
        assert!(widths[widths.len() / 2] <= 24, "hours: {widths:?}");

        // A large step first seen after five days without sweeps (a repair) happened in the gap:
        // from the last sweep before it to the first after, not later.
        let mut s = cable_series(3, "a_to_b", 6, 30, Some((5, 60, -0.3)));
        for series in &mut s {
            let keep: Vec<usize> = (0..series.times_ns.len())
                .filter(|&i| !(40..60).contains(&i))
                .collect();
            series.times_ns = keep.iter().map(|&i| series.times_ns[i]).collect();
            series.values = keep.iter().map(|&i| series.values[i]).collect();
        }
        let ev = line_monitoring(&s, &topology(), &LossConfig::default());
        let e = ev
            .iter()
            .find(|e| e.span == Some(5) && e.fiber_pair == 1 && e.direction == "a_to_b")
            .expect("the step across the gap");
        let times = &s[0].times_ns;
        assert_eq!(e.start_ns, times[40], "first sweep after the gap");
        assert_eq!(e.placed_within_ns, Some((times[39], times[40])));
    }

    #[test]
    fn offsets_drift_and_spikes_alone_make_no_step() {
        for seed in 0..4 {
            let mut s = cable_series(seed + 10, "a_to_b", 1, 30, None);
            // Every repeater wanders (a random walk of 0.004 dB/sqrt(day), the top of the
            // simulator's range), one repeater also slopes down 0.004 dB/day (a pump beginning to
            // age, not yet two weeks of it), and one reading is wild.
            let n = s[4].values.len();
            for (k, series) in s.iter_mut().enumerate() {
                let steps = gaussian(seed * 1000 + k as u64, n);
                let mut walk = 0.0;
                for (i, v) in series.values.iter_mut().enumerate() {
                    walk += 0.004 / 24f64.sqrt() * steps[i];
                    *v += walk;
                }
            }
            for i in n / 2..n {
                s[4].values[i] -= 0.004 * (i - n / 2) as f64 / 24.0;
            }
            s[9].values[n / 2] += 0.5;
            let ev = line_monitoring(&s, &topology(), &LossConfig::default());
            assert!(ev.is_empty(), "seed {seed}: {ev:#?}");
        }
    }

    #[test]
    fn a_large_step_is_placed_and_sized_and_a_steady_decline_is_ageing() {
        let mut s = fiber_series(5, "a_to_b", 1, 30, 0.03, 0.0, Some((3, 400, -0.5)));
        let n = s[11].values.len();
        for i in 0..n {
            s[11].values[i] -= 0.008 * i as f64 / 24.0;
        }
        let ev = line_monitoring(&s, &topology(), &LossConfig::default());
        let steps: Vec<_> = ev.iter().filter(|e| e.kind == EvidenceKind::LossStep).collect();
        assert_eq!(steps.len(), 1, "{ev:#?}");
        assert_eq!(steps[0].span, Some(3));
        assert!((steps[0].magnitude + 0.5).abs() < 0.02);
        assert_eq!(
            steps[0].detected_ns, s[0].times_ns[401],
            "a big step is conclusive at the second sweep"
        );
        let ageing: Vec<_> = ev.iter().filter(|e| e.kind == EvidenceKind::Ageing).collect();
        assert_eq!(ageing.len(), 1, "{ev:#?}");
        assert_eq!(ageing[0].span, Some(12));
        assert!(
            (ageing[0].magnitude + 0.008).abs() < 0.002,
            "{}",
            ageing[0].magnitude
        );
    }

    #[test]
    fn the_threshold_follows_the_budget_not_the_run_length() {
        let c = LossConfig::default();
        let known = |period_ns| threshold_with_dof(step_probability(&c, 1600, period_ns), f64::INFINITY);
        let (hourly, six_hourly) = (known(HOUR), known(6 * HOUR));
        assert!(hourly > six_hourly, "more sweeps, more tests, a higher bar");
        assert!((5.0..6.0).contains(&hourly), "{hourly}");
        assert!((upper_quantile(0.025) - 1.959_96).abs() < 1e-4);
    }

    #[test]
    fn an_estimated_noise_raises_the_bar_by_its_degrees_of_freedom() {
        use statrs::distribution::{ContinuousCDF, StudentsT};
        let p = step_probability(&LossConfig::default(), 1600, 6 * HOUR);
        let known = threshold_with_dof(p, f64::INFINITY);
        assert!((known - upper_quantile(p)).abs() < 1e-12);
        let mut last = f64::INFINITY;
        for dof in [20.0, 75.0, 300.0, 3000.0] {
            let t = threshold_with_dof(p, dof);
            // The t quantile is exact: its tail holds the chance asked for.
            let tail = StudentsT::new(0.0, 1.0, dof).unwrap().sf(t);
            assert!((tail / p - 1.0).abs() < 1e-3, "dof {dof}: {tail} for {p}");
            assert!(t > known && t < last, "dof {dof}: {t}");
            last = t;
        }
        assert!((trigamma(1.0) - std::f64::consts::PI.powi(2) / 6.0).abs() < 1e-9);
        assert!((trigamma_inverse(trigamma(37.5)) - 37.5).abs() < 1e-6);
    }

    #[test]
    fn repeaters_alike_share_the_cables_noise_and_unlike_ones_keep_some_of_their_own() {
        // 300 repeaters with 120 sweeps each; their own estimates scatter by sampling alone.
        let sample = |seed: u64, sigma: f64| -> Noise {
            let x: Vec<f64> = gaussian(seed, 120).into_iter().map(|v| v * sigma).collect();
            let t: Vec<i64> = (0..120).map(|i| i as i64 * 6 * HOUR).collect();
            noise(&t, &x)
        };
        let alike: Vec<Noise> = (0..300).map(|k| sample(k, 0.03)).collect();
        let own: Vec<f64> = alike.iter().map(|n| n.sigma / 0.03).collect();
        let lowest = own.iter().copied().fold(f64::INFINITY, f64::min);
        assert!(lowest < 0.9, "own estimates scatter: lowest {lowest}");
        let prior = noise_prior(
            &alike
                .iter()
                .map(|n| (n.sigma * n.sigma, n.dof))
                .collect::<Vec<_>>(),
        );
        let (s0, d0) = prior.unwrap();
        assert!((s0.sqrt() / 0.03 - 1.0).abs() < 0.03, "{}", s0.sqrt());
        assert!(
            d0 > 500.0,
            "alike repeaters: the cable's noise is worth much: {d0}"
        );
        for n in &alike {
            let m = n.moderated(prior);
            assert!(
                (m.sigma / 0.03 - 1.0).abs() < 0.05,
                "{} from {}",
                m.sigma,
                n.sigma
            );
        }
        // Repeaters whose noise truly differs (0.015 to 0.06 dB): each keeps much of its own.
        let unlike: Vec<Noise> = (0..300)
            .map(|k| sample(1000 + k, 0.015 * 4f64.powf(k as f64 / 299.0)))
            .collect();
        let prior = noise_prior(
            &unlike
                .iter()
                .map(|n| (n.sigma * n.sigma, n.dof))
                .collect::<Vec<_>>(),
        );
        let (_, d0) = prior.unwrap();
        assert!(d0.is_finite() && d0 < 200.0, "{d0}");
        let quiet = unlike[0].moderated(prior);
        let loud = unlike[299].moderated(prior);
        assert!(
            quiet.sigma < 0.03 && loud.sigma > 0.035,
            "{} {}",
            quiet.sigma,
            loud.sigma
        );
        assert!(quiet.dof > unlike[0].dof && quiet.dof < unlike[0].dof + d0 + 1.0);
    }
}
