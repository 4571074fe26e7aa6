//! Labelled univariate series of many shapes, for the change-point engine beyond latency traces.
//!
//! Real series that analysts hand the `changepoints` command are not all flat levels in white
//! noise: they trend, grow, follow a season, carry autocorrelated noise and rare spikes, and some are
//! only 15 to 100 points long. Each seed gives one series of every [`Shape`] in two lengths (short:
//! 15 to 100 points, long: 100 to 2,000), once with no change and once with one to four, and the
//! truth: the first index of every new regime. A change is a shift of level (most), of noise scale,
//! or of slope (in a trending series), each large enough to be seen against the noise it sits in
//! (its long-run standard deviation, which autocorrelation raises).
//!
//! Ranges, per series, drawn uniformly:
//! - noise: standard deviation 1; AR(1) coefficient 0 to [`Split::max_ar`]; in one series in four,
//!   1 % of samples are spikes of 5 to 15 standard deviations;
//! - trend: total rise over the series 2 to 30 noise sd, either sign;
//! - growth: exponential, rate 1 to 4 over the series, total rise 3 to 20 noise sd;
//! - season: a sine, period 4 to 24 samples, amplitude 0.5 to 3 noise sd;
//! - level shift 3 to 8 long-run sd (of the noise scale before it); noise scale x3 to x5 up or
//!   down; slope change giving 6 to 12 long-run sd of displacement over the segment after it (at
//!   most 50 samples);
//! - regimes at least 5 samples (short) or 20 (long) apart and from either end.
//!
//! Seeds below 500 are for tuning and draw AR coefficients up to 0.5; seeds from 500 are held out
//! and draw up to 0.8, a range tuning never sees (`testdata/README.md`).

use rand::{RngExt, rngs::StdRng};
use rand_distr::{Distribution, Normal};

use crate::{events::uniform, plant::rng_for};

/// The shape of a series' baseline (what is not a change).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// A constant level.
    Flat,
    /// A straight-line trend.
    Trend,
    /// Smooth exponential growth.
    Growth,
    /// A sine season around a constant level.
    Season,
    /// A season on a trend.
    SeasonTrend,
}

impl Shape {
    /// Its name in series names, reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Flat => "flat",
            Self::Trend => "trend",
            Self::Growth => "growth",
            Self::Season => "season",
            Self::SeasonTrend => "season_trend",
        }
    }
}

/// Every shape, in order.
pub const SHAPES: [Shape; 5] = [
    Shape::Flat,
    Shape::Trend,
    Shape::Growth,
    Shape::Season,
    Shape::SeasonTrend,
];

/// What kind of change a true change point is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// The level shifts.
    Level,
    /// The noise scale changes.
    Scale,
    /// The slope changes (trending shapes only).
    Slope,
}

/// One labelled series.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ShapeSeries {
    /// `shape-length-changes-seed`, e.g. `trend-short-2-7`.
    pub name: String,
    /// Its baseline shape.
    pub shape: Shape,
    /// AR(1) coefficient of its noise.
    pub ar: f64,
    /// The values.
    pub values: Vec<f64>,
    /// First index of each new regime, ascending (empty: no change).
    pub changes: Vec<usize>,
    /// The kind of each change.
    pub kinds: Vec<ChangeKind>,
}

/// Which part of the seed space a seed belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Seeds 0 to 499.
    Tuning,
    /// Seeds 500 and up.
    HeldOut,
}

impl Split {
    /// The split of `seed`.
    pub fn of(seed: u64) -> Self {
        if seed < 500 { Self::Tuning } else { Self::HeldOut }
    }

    /// Largest AR(1) coefficient drawn.
    pub fn max_ar(self) -> f64 {
        match self {
            Self::Tuning => 0.5,
            Self::HeldOut => 0.8,
        }
    }
}

fn normal(rng: &mut StdRng) -> f64 {
    Normal::new(0.0, 1.0).map_or(0.0, |n| n.sample(rng))
}

/// Every series of `seed`: each shape, short and long, without and with changes.
pub fn shapes(seed: u64) -> Vec<ShapeSeries> {
    let mut out = Vec::new();
    for (s, &shape) in SHAPES.iter().enumerate() {
        for (l, long) in [false, true].into_iter().enumerate() {
            for (c, with_changes) in [false, true].into_iter().enumerate() {
                let mut rng = rng_for(seed, &[0x5AA9E5, s as u64, l as u64, c as u64]);
                out.push(one(&mut rng, seed, shape, long, with_changes));
            }
        }
    }
    out
}

fn one(rng: &mut StdRng, seed: u64, shape: Shape, long: bool, with_changes: bool) -> ShapeSeries {
    let n = if long {
        rng.random_range(100..=2000usize)
    } else {
        rng.random_range(15..=100usize)
    };
    let gap = if long { 20 } else { 5 };
    let ar = uniform(rng, 0.0, Split::of(seed).max_ar());
    // The long-run standard deviation of unit AR(1) noise: what a shift must stand out from.
    let long_run = ((1.0 + ar) / (1.0 - ar)).sqrt();
    let trending = matches!(shape, Shape::Trend | Shape::Growth | Shape::SeasonTrend);
    let sign = |rng: &mut StdRng| if rng.random::<bool>() { 1.0 } else { -1.0 };
    let x = |i: usize| i as f64 / (n - 1) as f64;
    let mut baseline: Vec<f64> = match shape {
        Shape::Flat | Shape::Season => vec![0.0; n],
        Shape::Trend | Shape::SeasonTrend => {
            let rise = sign(rng) * uniform(rng, 2.0, 30.0);
            (0..n).map(|i| rise * x(i)).collect()
        }
        Shape::Growth => {
            let (rate, rise) = (uniform(rng, 1.0, 4.0), sign(rng) * uniform(rng, 3.0, 20.0));
            (0..n)
                .map(|i| rise * ((rate * x(i)).exp() - 1.0) / (rate.exp() - 1.0))
                .collect()
        }
    };
    if matches!(shape, Shape::Season | Shape::SeasonTrend) {
        let period = uniform(rng, 4.0, 24.0);
        let amplitude = uniform(rng, 0.5, 3.0);
        let phase = uniform(rng, 0.0, std::f64::consts::TAU);
        for (i, v) in baseline.iter_mut().enumerate() {
            *v += amplitude * (std::f64::consts::TAU * i as f64 / period + phase).sin();
        }
    }
    // Change positions: 1 to 4 (at most what fits with the spacing).
    let mut changes = Vec::new();
    if with_changes {
        let room = n / gap;
        let wanted = rng.random_range(1..=4usize).min(room.saturating_sub(1)).max(1);
        for _ in 0..200 {
            if changes.len() == wanted {
                break;
            }
            let c = rng.random_range(gap..=n - gap);
            if changes.iter().all(|&o: &usize| o.abs_diff(c) >= gap) {
                changes.push(c);
            }
        }
        changes.sort_unstable();
    }
    let mut kinds = Vec::with_capacity(changes.len());
    let mut scale = vec![1.0; n];
    for (k, &c) in changes.iter().enumerate() {
        let next = changes.get(k + 1).copied().unwrap_or(n);
        let roll = rng.random::<f64>();
        let kind = if roll < 0.7 {
            ChangeKind::Level
        } else if roll < 0.85 || !trending {
            ChangeKind::Scale
        } else {
            ChangeKind::Slope
        };
        match kind {
            ChangeKind::Level => {
                let shift = sign(rng) * uniform(rng, 3.0, 8.0) * long_run * scale[c - 1];
                for v in &mut baseline[c..] {
                    *v += shift;
                }
            }
            ChangeKind::Scale => {
                let factor = uniform(rng, 3.0, 5.0);
                let factor = if scale[c - 1] > 1.0 || rng.random::<bool>() {
                    1.0 / factor
                } else {
                    factor
                };
                let now = scale[c - 1] * factor;
                for s in &mut scale[c..] {
                    *s = now;
                }
            }
            ChangeKind::Slope => {
                let span = (next - c).min(50) as f64;
                let slope = sign(rng) * uniform(rng, 6.0, 12.0) * long_run * scale[c - 1] / span;
                for (j, v) in baseline[c..].iter_mut().enumerate() {
                    *v += slope * j as f64;
                }
            }
        }
        kinds.push(kind);
    }
    let spiky = rng.random::<f64>() < 0.25;
    // Stationary start, then e_i = ar e_{i-1} + sqrt(1 - ar^2) z_i: unit marginal variance.
    let mut e = normal(rng);
    let innovation = (1.0 - ar * ar).sqrt();
    let values = (0..n)
        .map(|i| {
            if i > 0 {
                e = ar * e + innovation * normal(rng);
            }
            let mut v = baseline[i] + scale[i] * e;
            if spiky && rng.random::<f64>() < 0.01 {
                v += sign(rng) * uniform(rng, 5.0, 15.0) * scale[i];
            }
            v
        })
        .collect();
    let name = format!(
        "{}-{}-{}-{seed}",
        shape.name(),
        if long { "long" } else { "short" },
        changes.len()
    );
    ShapeSeries {
        name,
        shape,
        ar,
        values,
        changes,
        kinds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_seed_gives_every_shape_both_lengths_with_and_without_changes() {
        let all = shapes(3);
        assert_eq!(all.len(), SHAPES.len() * 4);
        for s in &all {
            assert!(s.values.iter().all(|v| v.is_finite()), "{}", s.name);
            assert!((15..=2000).contains(&s.values.len()), "{}", s.name);
            assert_eq!(s.changes.len(), s.kinds.len());
            assert!(s.changes.windows(2).all(|w| w[0] < w[1]));
            assert!(s.ar >= 0.0 && s.ar <= Split::Tuning.max_ar());
        }
        let with: Vec<_> = all.iter().filter(|s| !s.changes.is_empty()).collect();
        assert_eq!(with.len(), SHAPES.len() * 2, "every with-changes series has one");
        assert_eq!(shapes(3), all, "the same seed gives the same series");
    }

    #[test]
    fn held_out_seeds_reach_noise_correlation_tuning_never_sees() {
        let most = |seeds: std::ops::Range<u64>| seeds.flat_map(shapes).map(|s| s.ar).fold(0.0f64, f64::max);
        assert!(most(0..10) <= 0.5);
        assert!(most(500..510) > 0.7);
    }

    #[test]
    fn a_level_change_moves_the_series_mean_by_several_noise_sigmas() {
        // Over many seeds: at a level change of a flat series, the median of the 5 samples after
        // it against the 5 before moves by more than half a noise sigma (the shift is 3 to 8).
        let mut checked = 0;
        for seed in 0..40 {
            for s in shapes(seed) {
                if s.shape != Shape::Flat {
                    continue;
                }
                for (&c, &k) in s.changes.iter().zip(&s.kinds) {
                    if k != ChangeKind::Level || c < 5 || c + 5 > s.values.len() {
                        continue;
                    }
                    let median = |r: &[f64]| {
                        let mut r = r.to_vec();
                        r.sort_by(f64::total_cmp);
                        r[r.len() / 2]
                    };
                    let w = 5.min(c).min(s.values.len() - c);
                    let shift = median(&s.values[c..c + w]) - median(&s.values[c - w..c]);
                    checked += 1;
                    assert!(shift.abs() > 0.5, "{} at {c}: {shift}", s.name);
                }
            }
        }
        assert!(checked > 10);
    }
}
