//! The change-point engine: where a univariate series changes level, slope or noise.
//!
//! ```text
//! values (NaN = missing) --drop missing--> y --noise sigma from first differences (MAD)-->
//!   --isolated spikes (far from the samples either side) set aside--> y'
//!   --search: Gaussian cost of a line (or level) with its own variance per segment,
//!     penalty per change = penalty_per_log_n * ln(n); exact PELT, or seeded binary
//!     segmentation when PELT would be slow--> cuts
//!   --short excursions that return to the same line, then changes too small to matter, merged-->
//!   --indices mapped back--> change points (row where a new segment begins) + segment statistics
//! ```
//!
//! **What a segment is.** Each segment is a straight line with its own noise variance: the Gaussian
//! negative log-likelihood of its least-squares line (O(1) from prefix sums of y, x, x^2, x y, y^2).
//! A level shift, a break in a trend and a change of noise regime all register. A trend is not a
//! change. Before this, segments were levels, and a level model cuts any trend into a staircase:
//! on generated series with trends it flagged 33 of 40 change-free trends and scored below a
//! detector that reports nothing (F1 0.56 against 0.75), as an outside check on real economic and
//! demographic series had found. Fitting a slope per segment is the trend-aware cost that R's
//! changepoint and the TCPDBench study suggest; it keeps both kinds of noise change. The variance
//! is floored at a fraction of the series' noise, so that two samples on a line are not an
//! infinitely good segment. [`Config::levels`] keeps the older level model for the detectors, whose
//! inputs are physically levels.
//!
//! **Penalty.** BIC counts ln(n) per parameter in this cost (twice the negative log-likelihood): a
//! change adds a position, level and variance (3), and the level model doubled that to 6 because
//! telemetry noise is heavier-tailed than Gaussian. The slope adds one more, unweighted by the
//! doubling (a slope estimate averages the tails away): 7. Tried on the tuning part only
//! (`testdata/README.md`), 5, 6, 7 and 8 gave RTT median F2 0.730, 0.714, 0.730, 0.707 and shapes
//! F1 0.876, 0.887, 0.890, 0.886, so 7 stayed.
//!
//! **Dependence** ([`Config::dependence`], off by default). Autocorrelated noise makes a segment's
//! mean wander by the long-run variance, so white-noise penalties cut it. The option estimates the
//! lag-1 correlation from how two-step differences spread against one-step ones (blind to shifts
//! and trends, see [`lag1_correlation`]) and scales the penalty by (1 + phi) / (1 - phi). On the
//! tuning part it lost more true changes than it saved false ones, because seasons and short series
//! inflate the estimate (shapes F1 0.847 against 0.887 for trends alone). It stays an option, not the
//! default: a better estimate is open work.
//!
//! **Search.** PELT (Killick, Fearnhead and Eckley 2012) finds the exact penalised optimum, pruning
//! starts that can never again win. It prunes nothing inside a long homogeneous segment, so its
//! work grows with the square of the longest one: 300,000 points took over 30 s. The exact search
//! therefore runs within a budget of cost evaluations ([`EXACT_BUDGET`]). Past that, the seeded
//! binary segmentation of Kovacs, Li, Buhlmann and Munk (2023) proposes candidates in O(n log n):
//! the best split of every interval of a halving ladder of scales. The same PELT then runs over the
//! candidates only. Changes it may still miss are added, and it runs again until nothing is new:
//! the best split between two of its cuts, and the best position of each cut between its
//! neighbours. On short series, where both finish, the seeded search gives the exact answer in at
//! least 9 of 10 cases. Where it differs, the two answers are within a tenth of one change's
//! penalty (a near tie), which the tests check. 1 M points take about 2.6 s on one core
//! (`benches/README.md`).
//!
//! Two things a statistically optimal segmentation gets wrong for an analyst are handled around it.
//! - **Spikes**: a sample or two far from both neighbourhoods (queueing on a latency probe, a glitch
//!   in a PM bin). They are set aside first and returned as `outliers`.
//! - **Changes too small to matter.** A segment of a few samples between two segments on the same
//!   line is a transient excursion, not two changes. A change is also merged when all of these
//!   hold: its lines differ at the boundary (or drift apart over the shorter segment) by less than
//!   `min_shift_sigmas` of the series' noise and `min_shift_segment_sigmas` of the segments' own
//!   spread, and their spreads are within `min_scale_ratio`. It is real but too small to matter,
//!   so the neighbouring segments merge.
//!
//! [`Cusum`] is the streaming counterpart: a two-sided Page CUSUM on a robustly standardised series
//! that raises an alarm as soon as a shift is established and dates its start.
//!
//! The default [`Config`] is used for every signal type and sampling rate: every threshold is
//! relative to the series' own noise and length. [`suite`] scores it on data it was and was not
//! chosen on (`cablewatch-analyzer changepoints --suite heldout`). Held-out figures, 2026-12-05:
//! - real RTT traces (12): median F2 0.754, precision 0.569;
//! - the authors' synthetic traces: F2 0.746;
//! - generated shapes: F1 0.860 and covering 0.853, where reporting nothing scores 0.737 and 0.704.
//!   Smooth growth is still cut, in 31 of 40 change-free series.

pub mod suite;

/// Settings of the batch engine.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Shortest segment, samples.
    pub min_segment: usize,
    /// Penalty per change, in units of ln(n) (n: samples present). 3 is the BIC count for a change
    /// of mean and variance (position, mean, variance).
    pub penalty_per_log_n: f64,
    /// Variance floor as a fraction of the series' noise variance.
    pub variance_floor: f64,
    /// A sample is an outlier when it is further than this many noise sigmas from the median of
    /// its neighbourhood...
    pub outlier_sigmas: f64,
    /// ...of this many samples each side.
    pub outlier_half_window: usize,
    /// A change is kept only if the means either side differ by at least this many noise sigmas...
    pub min_shift_sigmas: f64,
    /// ...and at least this many of the noisier segment's own standard deviations...
    pub min_shift_segment_sigmas: f64,
    /// ...or the segments' standard deviations differ by at least this factor.
    pub min_scale_ratio: f64,
    /// A segment of at most this many samples between two segments at the same level (within the
    /// change thresholds) is a transient excursion, not two changes.
    pub max_excursion: usize,
    /// Each segment is a straight line (level and slope) rather than a level: a trend is not a
    /// change, a break in it is.
    pub trend: bool,
    /// Scale the penalty, and the smallest shift that matters, by the noise's dependence: with
    /// lag-1 correlation phi (estimated from first and second differences), a segment's mean
    /// wanders by the long-run variance, (1 + phi) / (1 - phi) times the white-noise one.
    pub dependence: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            min_segment: 2,
            penalty_per_log_n: 7.0,
            variance_floor: 0.25,
            outlier_sigmas: 4.0,
            outlier_half_window: 2,
            min_shift_sigmas: 3.0,
            min_shift_segment_sigmas: 2.0,
            min_scale_ratio: 6.0,
            max_excursion: 5,
            trend: true,
            dependence: false,
        }
    }
}

impl Config {
    /// Segments are levels (no slope), penalty 6 ln(n): the engine before trends, which the
    /// detectors keep. What they segment (block medians of loss, delay and Q) is physically a
    /// series of levels, with slow drift handled by the detectors themselves, and their
    /// thresholds were tuned with it (issue 15's goals).
    pub fn levels() -> Self {
        Self {
            penalty_per_log_n: 6.0,
            trend: false,
            ..Self::default()
        }
    }
}

/// One segment found by [`segment`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Segment {
    /// First row (index into the input, missing values included).
    pub start: usize,
    /// One past the last row.
    pub end: usize,
    /// Samples present in it (outliers excluded).
    pub samples: usize,
    /// Mean of its samples.
    pub mean: f64,
    /// Standard deviation of its samples (about their mean, also with trends).
    pub sigma: f64,
    /// Slope of its fitted line per row (0 unless [`Config::trend`]).
    pub slope: f64,
}

/// What [`segment`] found.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct Segmentation {
    /// Row indices where a new segment begins (never 0), ascending.
    pub change_points: Vec<usize>,
    /// The segments, in order, covering every row.
    pub segments: Vec<Segment>,
    /// Rows set aside as isolated outliers.
    pub outliers: Vec<usize>,
    /// Rows without a value.
    pub missing: usize,
    /// Robust noise sigma of the series (from first differences).
    pub noise_sigma: f64,
}

/// Segments `values` (NaN = missing) with `config`.
pub fn segment(values: &[f64], config: &Config) -> Segmentation {
    let present: Vec<usize> = (0..values.len()).filter(|&i| values[i].is_finite()).collect();
    let missing = values.len() - present.len();
    let y: Vec<f64> = present.iter().map(|&i| values[i]).collect();
    let noise_sigma = noise_sigma(&y);
    let outlier_local = outliers(&y, noise_sigma, config);
    let mut outlier_rows = Vec::with_capacity(outlier_local.len());
    let mut rows = Vec::with_capacity(y.len());
    let mut kept = Vec::with_capacity(y.len());
    let mut next_outlier = outlier_local.iter().peekable();
    for (j, (&row, &v)) in present.iter().zip(&y).enumerate() {
        if next_outlier.peek() == Some(&&j) {
            next_outlier.next();
            outlier_rows.push(row);
        } else {
            rows.push(row);
            kept.push(v);
        }
    }
    let floor = (config.variance_floor * noise_sigma * noise_sigma).max(f64::MIN_POSITIVE);
    let prefix = Prefix::new(&kept, &rows, floor, config.trend);
    // With dependent noise a segment's level wanders by the long-run variance: scale the penalty
    // by it, and measure the smallest shift that matters in the marginal sigma (the
    // difference-based noise sigma is the marginal one times sqrt(1 - phi)). The estimate of phi
    // is lowered by about two of its standard errors (2 / sqrt(n)), so that short series, whose
    // estimate scatters, are not given a penalty they do not need.
    let (penalty_scale, shift_sigma) = if config.dependence {
        let phi = (lag1_correlation(&kept) - 2.0 / (kept.len().max(1) as f64).sqrt()).max(0.0);
        ((1.0 + phi) / (1.0 - phi), noise_sigma / (1.0 - phi).sqrt())
    } else {
        (1.0, noise_sigma)
    };
    let cuts = search(&prefix, kept.len(), config, penalty_scale);
    let cuts = drop_small_changes(&prefix, &rows, cuts, kept.len(), shift_sigma, config);
    let change_points: Vec<usize> = cuts.iter().map(|&c| rows[c]).collect();
    // Bounds always hold 0 and the end, so there is at least one segment; with no samples its mean
    // and sigma are NaN (0 / 0).
    let bounds: Vec<usize> = std::iter::once(0)
        .chain(cuts.iter().copied())
        .chain(std::iter::once(kept.len()))
        .collect();
    let segments = bounds
        .windows(2)
        .map(|w| {
            let (a, b) = (w[0], w[1]);
            let part = &kept[a..b];
            let n = part.len() as f64;
            let mean = part.iter().sum::<f64>() / n;
            let var = part.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
            Segment {
                start: if a == 0 { 0 } else { rows[a] },
                end: if b == kept.len() { values.len() } else { rows[b] },
                samples: part.len(),
                mean,
                sigma: var.sqrt(),
                slope: if b > a { prefix.fit(a, b, &rows).slope } else { 0.0 },
            }
        })
        .collect();
    Segmentation {
        change_points,
        segments,
        outliers: outlier_rows,
        missing,
        noise_sigma,
    }
}

/// Robust noise sigma of `y` from its first differences: MAD of the differences / sqrt(2), which a
/// few level shifts do not inflate. Never zero for a non-constant series.
pub fn noise_sigma(y: &[f64]) -> f64 {
    let mut d: Vec<f64> = y.windows(2).map(|w| w[1] - w[0]).collect();
    let Some((_, sigma)) = crate::robust::median_sigma(&d) else {
        return 0.0;
    };
    if sigma > 0.0 {
        return sigma / std::f64::consts::SQRT_2;
    }
    // Quantised or mostly flat: the smallest non-zero step stands for the resolution.
    d.retain(|v| *v != 0.0);
    d.iter().map(|v| v.abs()).fold(f64::INFINITY, f64::min).min(1.0) * 0.5
}

/// Lag-1 correlation of the noise of `y`, from how its differences over two samples spread against
/// those over one: for AR(1) noise with coefficient phi, var(y[i+2] - y[i]) / var(y[i+1] - y[i]) is
/// 1 + phi. Robust spreads (MAD) make it blind to a few level shifts and spikes, and a linear trend
/// only moves the differences' median. Clamped to 0..=0.9 (a negative estimate is noise).
pub fn lag1_correlation(y: &[f64]) -> f64 {
    let spread = |lag: usize| {
        let d: Vec<f64> = y.windows(lag + 1).map(|w| w[lag] - w[0]).collect();
        crate::robust::median_sigma(&d).map_or(0.0, |(_, s)| s)
    };
    let (one, two) = (spread(1), spread(2));
    if one <= 0.0 || y.len() < 8 {
        return 0.0;
    }
    ((two / one).powi(2) - 1.0).clamp(0.0, 0.9)
}

/// Half width, in differences, of the neighbourhood whose noise scales the outlier limit.
const LOCAL_NOISE_HALF_WINDOW: usize = 8;

/// Indices of isolated outliers of `y`: far from both the `outlier_half_window` samples before it
/// and those after it. Far from one side means further from that side's median than
/// `outlier_sigmas` noise sigmas (the series' or, where larger, the neighbourhood's) and than the
/// side's own range. The first samples of a lasting shift agree with what follows them, and a
/// sample in a noisy episode is within the episode's noise, so neither is taken for an outlier; a
/// spike agrees with neither side.
fn outliers(y: &[f64], sigma: f64, config: &Config) -> Vec<usize> {
    let h = config.outlier_half_window;
    if h == 0 || y.len() < 2 * h + 1 || sigma <= 0.0 {
        return Vec::new();
    }
    let diffs: Vec<f64> = y.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
    let mut window = Vec::with_capacity(2 * LOCAL_NOISE_HALF_WINDOW.max(h));
    let mut out = Vec::new();
    for i in 0..y.len() {
        let lo = i.saturating_sub(LOCAL_NOISE_HALF_WINDOW);
        let hi = (i + LOCAL_NOISE_HALF_WINDOW).min(diffs.len());
        window.clear();
        window.extend_from_slice(&diffs[lo..hi]);
        let local = crate::robust::median_in_place(&mut window).unwrap_or(0.0) * crate::robust::MAD_TO_SIGMA
            / std::f64::consts::SQRT_2;
        let limit = config.outlier_sigmas * sigma.max(local);
        let mut far_from = |side: &[f64]| {
            window.clear();
            window.extend_from_slice(side);
            let Some(median) = crate::robust::median_in_place(&mut window) else {
                return true;
            };
            let (lo, hi) = window
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                });
            (y[i] - median).abs() > limit.max(hi - lo)
        };
        if far_from(&y[i.saturating_sub(h)..i]) && far_from(&y[i + 1..(i + h + 1).min(y.len())]) {
            out.push(i);
        }
    }
    out
}

/// A segment's fitted line: its level at its samples' mean position, slope per row, spread.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Fit {
    /// Mean position (row) of its samples.
    x: f64,
    /// Level at `x` (the mean of the samples).
    level: f64,
    /// Slope per row (0 without trends).
    slope: f64,
    /// Residual standard deviation, floored.
    sigma: f64,
}

impl Fit {
    /// The fitted value at row `x`.
    fn at(&self, x: f64) -> f64 {
        self.level + self.slope * (x - self.x)
    }
}

/// Prefix sums for O(1) segment costs, on values centred at their first sample and positions
/// relative to the first kept row, for accuracy.
struct Prefix {
    s1: Vec<f64>,
    s2: Vec<f64>,
    /// With trends: sums of x, x^2 and x y.
    sx: Vec<f64>,
    sxx: Vec<f64>,
    sxy: Vec<f64>,
    x0: f64,
    floor: f64,
    trend: bool,
}

impl Prefix {
    fn new(y: &[f64], rows: &[usize], floor: f64, trend: bool) -> Self {
        let c = y.first().copied().unwrap_or(0.0);
        let x0 = rows.first().map_or(0.0, |&r| r as f64);
        let cap = if trend { y.len() + 1 } else { 0 };
        let mut p = Self {
            s1: Vec::with_capacity(y.len() + 1),
            s2: Vec::with_capacity(y.len() + 1),
            sx: Vec::with_capacity(cap),
            sxx: Vec::with_capacity(cap),
            sxy: Vec::with_capacity(cap),
            x0,
            floor,
            trend,
        };
        let (mut a, mut b, mut sx, mut sxx, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
        p.s1.push(0.0);
        p.s2.push(0.0);
        if trend {
            p.sx.push(0.0);
            p.sxx.push(0.0);
            p.sxy.push(0.0);
        }
        for (v, &r) in y.iter().zip(rows) {
            let v = v - c;
            a += v;
            b += v * v;
            p.s1.push(a);
            p.s2.push(b);
            if trend {
                let x = r as f64 - x0;
                sx += x;
                sxx += x * x;
                sxy += x * v;
                p.sx.push(sx);
                p.sxx.push(sxx);
                p.sxy.push(sxy);
            }
        }
        p
    }

    /// Samples, residual sum of squares, slope and mean position (relative to `x0`) of `y[s..t]`.
    #[inline]
    fn rss(&self, s: usize, t: usize) -> (f64, f64, f64, f64) {
        let n = (t - s) as f64;
        let a = self.s1[t] - self.s1[s];
        let b = self.s2[t] - self.s2[s];
        let flat = b - a * a / n;
        if !self.trend {
            return (n, flat, 0.0, f64::NAN);
        }
        let sx = self.sx[t] - self.sx[s];
        let sxx = self.sxx[t] - self.sxx[s] - sx * sx / n;
        let sxy = self.sxy[t] - self.sxy[s] - sx * a / n;
        if sxx <= 0.0 {
            return (n, flat, 0.0, sx / n);
        }
        (n, (flat - sxy * sxy / sxx).max(0.0), sxy / sxx, sx / n)
    }

    /// Gaussian cost (twice the negative log-likelihood, constants dropped) of `y[s..t]` with its own
    /// level (and slope, with trends) and variance.
    #[inline]
    fn cost(&self, s: usize, t: usize) -> f64 {
        let (n, rss, _, _) = self.rss(s, t);
        n * (rss / n).max(self.floor).ln()
    }

    /// The fitted line of `y[s..t]`, in rows; without trends, a level.
    fn fit(&self, s: usize, t: usize, rows: &[usize]) -> Fit {
        let (n, rss, slope, mean_x) = self.rss(s, t);
        let mean = (self.s1[t] - self.s1[s]) / n;
        let x = if mean_x.is_finite() {
            mean_x + self.x0
        } else {
            (rows[s] + rows[t - 1]) as f64 / 2.0
        };
        Fit {
            x,
            level: mean,
            slope,
            sigma: (rss / n).max(self.floor).sqrt(),
        }
    }
}

/// Cost evaluations the exact search may spend before the seeded search takes over. PELT prunes
/// nothing inside a long homogeneous segment, so its work grows with the square of the longest
/// one; 5 x 10^6 evaluations take about 0.1 s with trends (a quiet 10,000-point series took
/// 0.42 s with four times this budget, all of it wasted before the seeded search ran).
const EXACT_BUDGET: u64 = 5_000_000;

/// The cuts (indices into the `n` values of `p` where a segment begins) minimising cost + penalty
/// per change: exactly (PELT) while that stays within [`EXACT_BUDGET`], else over the candidates
/// of a seeded binary segmentation ([`seeded_search`]).
fn search(p: &Prefix, n: usize, config: &Config, penalty_scale: f64) -> Vec<usize> {
    let m = config.min_segment.max(1);
    let beta = config.penalty_per_log_n * (n as f64).ln() * penalty_scale;
    partition(p, n, m, beta, m..=n, EXACT_BUDGET).unwrap_or_else(|| seeded_search(p, n, m, beta))
}

/// PELT: the cuts minimising cost + penalty `beta` per change, with segments of at least `m`
/// samples ending only at `ends` (ascending, the last one `n`). `None` when the pruned candidates
/// would need more than `budget` cost evaluations.
fn partition(
    p: &Prefix,
    n: usize,
    m: usize,
    beta: f64,
    ends: impl IntoIterator<Item = usize>,
    budget: u64,
) -> Option<Vec<usize>> {
    if n < 2 * m {
        return Some(Vec::new());
    }
    // f[t]: best cost of y[..t]; last[t]: where its last segment begins.
    let mut f = vec![f64::INFINITY; n + 1];
    let mut last = vec![0usize; n + 1];
    f[0] = -beta;
    let mut candidates: Vec<usize> = vec![0];
    // Ends already solved, waiting until a segment from them would be long enough.
    let mut pending = std::collections::VecDeque::new();
    let mut scratch: Vec<f64> = Vec::new();
    let mut spent = 0u64;
    for t in ends {
        if t < m {
            continue;
        }
        while pending.front().is_some_and(|&s| s + m <= t) {
            candidates.extend(pending.pop_front());
        }
        spent += candidates.len() as u64;
        if spent > budget {
            return None;
        }
        scratch.clear();
        let mut best = f64::INFINITY;
        let mut arg = 0;
        for &s in &candidates {
            let c = f[s] + p.cost(s, t);
            scratch.push(c);
            if c + beta < best {
                best = c + beta;
                arg = s;
            }
        }
        f[t] = best;
        last[t] = arg;
        // Prune: a start whose cost to t already exceeds the optimum can never win later.
        let mut k = 0;
        candidates.retain(|_| {
            let keep = scratch[k] <= best;
            k += 1;
            keep
        });
        if t < n {
            pending.push_back(t);
        }
    }
    let mut cuts = Vec::new();
    let mut t = n;
    while t > 0 {
        let s = last[t];
        if s > 0 {
            cuts.push(s);
        }
        t = s;
    }
    cuts.reverse();
    Some(cuts)
}

/// Shortest interval of the seeded binary segmentation, in samples (at least 4 minimum segments).
const SEEDED_MIN_INTERVAL: usize = 16;

/// The penalised optimum over a candidate set, for series too long for the exact search.
///
/// Candidates come from seeded binary segmentation (Kovacs, Li, Buhlmann and Munk 2023): at every
/// scale from the whole series down to [`SEEDED_MIN_INTERVAL`] samples, halving, intervals of that
/// length overlapping by half; each interval's best single split is a candidate if it gains more
/// than half the penalty (a change the optimum keeps gains at least the penalty against its
/// neighbours, and an interval at its own scale sees most of that). That is O(n log n) cost
/// evaluations. The optimum over the candidates (the same PELT, ends restricted) is then polished:
/// each cut moves to the best position between its neighbours within one minimum interval, until
/// none moves.
fn seeded_search(p: &Prefix, n: usize, m: usize, beta: f64) -> Vec<usize> {
    let floor = SEEDED_MIN_INTERVAL.max(4 * m);
    let gain = |a: usize, s: usize, b: usize| p.cost(a, b) - p.cost(a, s) - p.cost(s, b);
    let mut candidates = Vec::new();
    let mut len = n;
    loop {
        let step = (len / 2).max(1);
        let mut a = 0;
        loop {
            let b = (a + len).min(n);
            if b - a >= 2 * m {
                let best = (a + m..=b - m)
                    .map(|s| (gain(a, s, b), s))
                    .max_by(|x, y| x.0.total_cmp(&y.0));
                if let Some((g, s)) = best
                    && g > beta / 2.0
                {
                    candidates.push(s);
                }
            }
            if b == n {
                break;
            }
            a += step;
        }
        if len <= floor {
            break;
        }
        len = len.div_ceil(2).max(floor);
    }
    let mut candidates: std::collections::BTreeSet<usize> = candidates.into_iter().collect();
    let best_split = |a: usize, b: usize, lo: usize, hi: usize| {
        (lo.max(a + m)..=hi.min(b.saturating_sub(m)))
            .map(|s| (gain(a, s, b), s))
            .max_by(|x, y| x.0.total_cmp(&y.0).then(y.1.cmp(&x.1)))
    };
    let mut cuts = Vec::new();
    for _ in 0..32 {
        let ends = candidates.iter().copied().chain(std::iter::once(n));
        cuts = partition(p, n, m, beta, ends, u64::MAX).unwrap_or_default();
        // What the optimum over the candidates may still miss: a change between two of its
        // cuts that no seeded interval isolated (one close to another), and a better position
        // for each cut given its neighbours. Add them and solve again until nothing is new.
        let bounds: Vec<usize> = std::iter::once(0)
            .chain(cuts.iter().copied())
            .chain(std::iter::once(n))
            .collect();
        let mut added = false;
        for w in bounds.windows(2) {
            if let Some((g, s)) = best_split(w[0], w[1], 0, n)
                && g > beta / 2.0
            {
                added |= candidates.insert(s);
            }
        }
        for k in 1..bounds.len() - 1 {
            let (a, c, b) = (bounds[k - 1], bounds[k], bounds[k + 1]);
            if let Some((_, s)) = best_split(a, b, c.saturating_sub(floor), c + floor) {
                added |= candidates.insert(s);
            }
        }
        if !added {
            break;
        }
    }
    cuts
}

/// Removes, smallest first, the changes too small to matter: statistically clear on a quiet series
/// but below `min_shift_sigmas` noise sigmas (`shift_sigma`) in level at the boundary (with trends:
/// where the two fitted lines meet it, or the displacement a change of slope builds up over the
/// shorter segment) and below `min_scale_ratio` in spread. Neighbouring segments merge and are
/// re-compared.
fn drop_small_changes(
    p: &Prefix,
    rows: &[usize],
    mut cuts: Vec<usize>,
    n: usize,
    shift_sigma: f64,
    config: &Config,
) -> Vec<usize> {
    // Smallest shift of level that matters between segments with spreads s1 and s2.
    let needed = |s1: f64, s2: f64| {
        (config.min_shift_sigmas * shift_sigma)
            .max(config.min_shift_segment_sigmas * s1.max(s2))
            .max(f64::MIN_POSITIVE)
    };
    // Row between two samples (kept indices).
    let between = |b: usize| (rows[b - 1] + rows[b]) as f64 / 2.0;
    let effect = |a: usize, b: usize, c: usize| {
        let (f1, f2) = (p.fit(a, b, rows), p.fit(b, c, rows));
        let at = between(b);
        let span = (rows[b - 1] - rows[a]).min(rows[c - 1] - rows[b]) as f64 + 1.0;
        let shift = (f1.at(at) - f2.at(at))
            .abs()
            .max((f1.slope - f2.slope).abs() * span)
            / needed(f1.sigma, f2.sigma);
        let ratio = (f1.sigma.max(f2.sigma) / f1.sigma.min(f2.sigma).max(f64::MIN_POSITIVE)).ln()
            / config.min_scale_ratio.ln().max(f64::MIN_POSITIVE);
        shift.max(ratio)
    };
    // Transient excursions first: a short segment whose neighbours agree with each other.
    let mut k = 0;
    while k < cuts.len() {
        let a = if k == 0 { 0 } else { cuts[k - 1] };
        let b = cuts[k];
        if k > 0 && b - a <= config.max_excursion {
            let c = cuts.get(k + 1).copied().unwrap_or(n);
            let before = if k >= 2 { cuts[k - 2] } else { 0 };
            let (f1, f2) = (p.fit(before, a, rows), p.fit(b, c, rows));
            let at = (rows[a] + rows[b - 1]) as f64 / 2.0;
            if (f1.at(at) - f2.at(at)).abs() < needed(f1.sigma, f2.sigma) {
                cuts.drain(k - 1..=k);
                k = k.saturating_sub(1);
                continue;
            }
        }
        k += 1;
    }
    loop {
        let mut weakest: Option<(usize, f64)> = None;
        for k in 0..cuts.len() {
            let a = if k == 0 { 0 } else { cuts[k - 1] };
            let c = cuts.get(k + 1).copied().unwrap_or(n);
            let e = effect(a, cuts[k], c);
            if e < 1.0 && weakest.is_none_or(|(_, w)| e < w) {
                weakest = Some((k, e));
            }
        }
        match weakest {
            Some((k, _)) => {
                cuts.remove(k);
            }
            None => return cuts,
        }
    }
}

/// Scores detected change points against labelled ones as the RTT change-point literature does:
/// pairs are one-to-one and at most `margin` samples apart; among pairings with the most pairs the one
/// with the least total distance is taken.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Score {
    /// Labelled changes.
    pub labels: usize,
    /// Detected changes.
    pub detections: usize,
    /// Pairs.
    pub true_positives: usize,
}

impl Score {
    /// Matches `detected` to `labels` (both ascending row indices).
    pub fn new(labels: &[usize], detected: &[usize], margin: usize) -> Self {
        Self {
            labels: labels.len(),
            detections: detected.len(),
            true_positives: max_pairs(labels, detected, margin).0,
        }
    }

    /// TP / detections (1 when nothing was detected and nothing labelled, else 0 for no detections).
    pub fn precision(&self) -> f64 {
        if self.detections == 0 {
            return if self.labels == 0 { 1.0 } else { 0.0 };
        }
        self.true_positives as f64 / self.detections as f64
    }

    /// TP / labels (1 when nothing was labelled).
    pub fn recall(&self) -> f64 {
        if self.labels == 0 {
            return 1.0;
        }
        self.true_positives as f64 / self.labels as f64
    }

    /// F-beta with beta = 2: 5PR / (4P + R).
    pub fn f2(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            5.0 * p * r / (4.0 * p + r)
        }
    }
}

/// Maximum one-to-one pairing of two ascending index lists within `margin`, ties broken by least
/// total distance: (pairs, total distance). Optimal pairings on a line never cross, so a dynamic
/// programme over the two lists finds it.
pub fn max_pairs(a: &[usize], b: &[usize], margin: usize) -> (usize, usize) {
    // best[i][j] over a[..i], b[..j]: (pairs, -distance) maximised lexicographically.
    let w = b.len() + 1;
    let mut best = vec![(0usize, 0i64); (a.len() + 1) * w];
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let mut v = best[(i - 1) * w + j].max(best[i * w + j - 1]);
            let d = a[i - 1].abs_diff(b[j - 1]);
            if d <= margin {
                let (p, nd) = best[(i - 1) * w + j - 1];
                v = v.max((p + 1, nd - d as i64));
            }
            best[i * w + j] = v;
        }
    }
    let (p, nd) = best[a.len() * w + b.len()];
    (p, (-nd) as usize)
}

/// Streaming two-sided CUSUM on a series standardised by a robust baseline: alarms when the
/// cumulative evidence for a shift of at least `drift` sigmas exceeds `threshold` sigmas.
#[derive(Debug, Clone, PartialEq)]
pub struct Cusum {
    baseline: f64,
    sigma: f64,
    drift: f64,
    threshold: f64,
    up: f64,
    down: f64,
    up_start: u64,
    down_start: u64,
    seen: u64,
}

/// An alarm of [`Cusum`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Alarm {
    /// Sample number (0-based, counting every pushed sample) at which the alarm was raised.
    pub at: u64,
    /// Estimated first sample of the shift.
    pub since: u64,
    /// +1 for an upward shift, -1 for downward.
    pub sign: i8,
}

impl Cusum {
    /// A detector for shifts away from `baseline` in units of `sigma` (both from a robust baseline,
    /// e.g. median and MAD of a reference window). Defaults: `drift` 0.5, `threshold` 8 (about one
    /// false alarm in 10^5 Gaussian samples).
    pub fn new(baseline: f64, sigma: f64, drift: f64, threshold: f64) -> Self {
        Self {
            baseline,
            sigma: sigma.max(f64::MIN_POSITIVE),
            drift,
            threshold,
            up: 0.0,
            down: 0.0,
            up_start: 0,
            down_start: 0,
            seen: 0,
        }
    }

    /// Feeds one sample (NaN is skipped). After an alarm the statistics restart; [`Cusum::rebase`]
    /// moves the baseline to the new level.
    pub fn push(&mut self, value: f64) -> Option<Alarm> {
        let i = self.seen;
        self.seen += 1;
        if !value.is_finite() {
            return None;
        }
        let z = (value - self.baseline) / self.sigma;
        if self.up == 0.0 {
            self.up_start = i;
        }
        if self.down == 0.0 {
            self.down_start = i;
        }
        self.up = (self.up + z - self.drift).max(0.0);
        self.down = (self.down - z - self.drift).max(0.0);
        let alarm = if self.up > self.threshold {
            Some(Alarm {
                at: i,
                since: self.up_start,
                sign: 1,
            })
        } else if self.down > self.threshold {
            Some(Alarm {
                at: i,
                since: self.down_start,
                sign: -1,
            })
        } else {
            None
        };
        if alarm.is_some() {
            self.up = 0.0;
            self.down = 0.0;
        }
        alarm
    }

    /// Moves the baseline (after an alarm, to the new level).
    pub fn rebase(&mut self, baseline: f64) {
        self.baseline = baseline;
        self.up = 0.0;
        self.down = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64*, for reproducible test data without a dependency.
    fn rng(seed: u64) -> impl FnMut() -> f64 {
        let mut s = seed.max(1);
        move || {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            (s.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Approximately standard normal (sum of 12 uniforms).
    fn gauss(u: &mut impl FnMut() -> f64) -> f64 {
        (0..12).map(|_| u()).sum::<f64>() - 6.0
    }

    /// Optimal partitioning without pruning: the O(n^2) definition PELT must agree with.
    fn naive_optimum(p: &Prefix, n: usize, config: &Config) -> f64 {
        let m = config.min_segment;
        let beta = config.penalty_per_log_n * (n as f64).ln();
        let mut f = vec![f64::INFINITY; n + 1];
        f[0] = -beta;
        for t in m..=n {
            for s in (0..=t - m).filter(|&s| s == 0 || s >= m) {
                f[t] = f[t].min(f[s] + p.cost(s, t) + beta);
            }
        }
        f[n]
    }

    fn penalised_cost(p: &Prefix, n: usize, cuts: &[usize], config: &Config) -> f64 {
        let beta = config.penalty_per_log_n * (n as f64).ln();
        let bounds: Vec<usize> = std::iter::once(0)
            .chain(cuts.iter().copied())
            .chain([n])
            .collect();
        bounds.windows(2).map(|w| p.cost(w[0], w[1])).sum::<f64>() + beta * cuts.len() as f64
    }

    #[test]
    fn pelt_finds_the_same_optimum_as_unpruned_optimal_partitioning() {
        for seed in 1..40u64 {
            let mut u = rng(seed);
            let n = 30 + (u() * 170.0) as usize;
            let mut level = 0.0;
            let mut sigma = 1.0;
            let y: Vec<f64> = (0..n)
                .map(|_| {
                    if u() < 0.03 {
                        level += (u() - 0.5) * 8.0;
                    }
                    if u() < 0.01 {
                        sigma = 0.3 + 2.0 * u();
                    }
                    level + sigma * gauss(&mut u)
                })
                .collect();
            for (penalty, min_segment) in [(0.5, 1), (3.0, 2), (6.0, 3)] {
                let config = Config {
                    penalty_per_log_n: penalty,
                    min_segment,
                    ..Config::default()
                };
                let rows: Vec<usize> = (0..n).collect();
                let p = Prefix::new(&y, &rows, 0.05, false);
                let cuts = search(&p, n, &config, 1.0);
                let got = penalised_cost(&p, n, &cuts, &config);
                let want = naive_optimum(&p, n, &config);
                assert!(
                    (got - want).abs() <= 1e-9 * want.abs().max(1.0),
                    "seed {seed}, penalty {penalty}: PELT {got}, optimum {want}, cuts {cuts:?}"
                );
                assert!(cuts.windows(2).all(|w| w[1] - w[0] >= min_segment));
            }
        }
    }

    /// A random series with level and noise changes, as in the test above.
    fn changing_series(u: &mut impl FnMut() -> f64, n: usize) -> Vec<f64> {
        let mut level = 0.0;
        let mut sigma = 1.0;
        (0..n)
            .map(|_| {
                if u() < 0.01 {
                    level += (u() - 0.5) * 8.0;
                }
                if u() < 0.003 {
                    sigma = 0.3 + 2.0 * u();
                }
                level + sigma * gauss(u)
            })
            .collect()
    }

    #[test]
    fn the_seeded_search_finds_what_the_exact_search_finds() {
        let config = Config::default();
        let (mut same, mut total) = (0, 0);
        for seed in 1..60u64 {
            let mut u = rng(seed);
            let n = 300 + (u() * 2700.0) as usize;
            let y = changing_series(&mut u, n);
            let rows: Vec<usize> = (0..n).collect();
            let p = Prefix::new(&y, &rows, 0.05, false);
            let beta = config.penalty_per_log_n * (n as f64).ln();
            let exact = partition(&p, n, config.min_segment, beta, config.min_segment..=n, u64::MAX)
                .unwrap_or_default();
            let seeded = seeded_search(&p, n, config.min_segment, beta);
            total += 1;
            if seeded == exact {
                same += 1;
            } else {
                // Where they differ it is a near tie: the seeded answer is never better (the
                // exact one is optimal) and worse by less than a tenth of one change's penalty.
                let (a, b) = (
                    penalised_cost(&p, n, &exact, &config),
                    penalised_cost(&p, n, &seeded, &config),
                );
                assert!(
                    b >= a - 1e-6 * a.abs(),
                    "seed {seed}: seeded {b} below the optimum {a}"
                );
                assert!(
                    b - a <= beta / 10.0,
                    "seed {seed}: seeded {b} against {a}\n{exact:?}\n{seeded:?}"
                );
            }
        }
        assert!(same * 10 >= total * 9, "{same} of {total} the same");
    }

    #[test]
    fn long_homogeneous_series_leave_the_exact_search_for_the_seeded_one() {
        // 200,000 quiet samples and one shift: PELT would spend ~10^10 evaluations.
        let mut y = steps(&[(100_000, 0.0), (100_000, 2.0)], 0.5, 21);
        let rows: Vec<usize> = (0..y.len()).collect();
        let p = Prefix::new(&y, &rows, 0.05, false);
        let n = y.len();
        assert!(partition(&p, n, 2, 6.0 * (n as f64).ln(), 2..=n, EXACT_BUDGET).is_none());
        y[5] = f64::NAN;
        let found = segment(&y, &Config::default()).change_points;
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].abs_diff(100_000) <= 3, "{found:?}");
    }

    /// AR(1) noise with unit marginal variance.
    fn ar_noise(u: &mut impl FnMut() -> f64, n: usize, phi: f64) -> Vec<f64> {
        let mut e = gauss(u);
        (0..n)
            .map(|_| {
                e = phi * e + (1.0 - phi * phi).sqrt() * gauss(u);
                e
            })
            .collect()
    }

    #[test]
    fn noise_correlation_is_estimated_through_shifts_and_trends() {
        for (seed, phi) in [(31u64, 0.0), (32, 0.3), (33, 0.6)] {
            let mut u = rng(seed);
            let mut y = ar_noise(&mut u, 5000, phi);
            for (i, v) in y.iter_mut().enumerate() {
                *v += 0.002 * i as f64 + if i > 2500 { 4.0 } else { 0.0 };
            }
            let got = lag1_correlation(&y);
            assert!((got - phi).abs() < 0.1, "phi {phi}: estimated {got}");
        }
    }

    #[test]
    fn a_trend_is_not_a_change_but_a_break_in_it_is() {
        let mut u = rng(41);
        let n = 600;
        let trend = Config {
            trend: true,
            ..Config::default()
        };
        let y: Vec<f64> = (0..n).map(|i| 0.05 * i as f64 + 0.5 * gauss(&mut u)).collect();
        assert!(
            segment(&y, &Config::levels()).change_points.len() > 2,
            "levels cut a trend into steps"
        );
        assert_eq!(segment(&y, &trend).change_points, Vec::<usize>::new());
        // The same trend with a level break at 400.
        let broken: Vec<f64> = y
            .iter()
            .enumerate()
            .map(|(i, v)| v + if i >= 400 { 4.0 } else { 0.0 })
            .collect();
        let found = segment(&broken, &trend).change_points;
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].abs_diff(400) <= 2, "{found:?}");
    }

    #[test]
    fn correlated_noise_without_a_change_gets_none_when_dependence_is_allowed_for() {
        let with = Config {
            dependence: true,
            ..Config::default()
        };
        let (mut plain, mut allowed) = (0, 0);
        for seed in 50..60u64 {
            let mut u = rng(seed);
            let y = ar_noise(&mut u, 2000, 0.7);
            plain += segment(&y, &Config::default()).change_points.len();
            allowed += segment(&y, &with).change_points.len();
        }
        assert!(plain > 0, "white-noise penalties cut AR(0.7) noise: {plain}");
        assert_eq!(allowed, 0);
    }

    /// Brute force over every one-to-one pairing (small lists only).
    fn brute_pairs(a: &[usize], b: &[usize], margin: usize) -> (usize, usize) {
        fn go(a: &[usize], b: &[usize], used: &mut Vec<bool>, margin: usize) -> (usize, usize) {
            let Some((&x, rest)) = a.split_first() else {
                return (0, 0);
            };
            let mut best = go(rest, b, used, margin);
            for j in 0..b.len() {
                let d = x.abs_diff(b[j]);
                if !used[j] && d <= margin {
                    used[j] = true;
                    let (p, dist) = go(rest, b, used, margin);
                    used[j] = false;
                    let cand = (p + 1, dist + d);
                    if cand.0 > best.0 || (cand.0 == best.0 && cand.1 < best.1) {
                        best = cand;
                    }
                }
            }
            best
        }
        go(a, b, &mut vec![false; b.len()], margin)
    }

    #[test]
    fn pairing_matches_brute_force() {
        let mut u = rng(99);
        for _ in 0..500 {
            let mut pick = |k: usize| {
                let mut v: Vec<usize> = (0..k).map(|_| (u() * 30.0) as usize).collect();
                v.sort_unstable();
                v.dedup();
                v
            };
            let (a, b) = (pick(6), pick(7));
            assert_eq!(max_pairs(&a, &b, 2), brute_pairs(&a, &b, 2), "{a:?} {b:?}");
        }
    }

    #[test]
    fn score_follows_the_published_definitions() {
        // Labels 10, 50, 90; detections 11 (hit), 12 (a second detection for 10: false), 53 (3 away:
        // false), 200 (false). TP 1, P 1/4, R 1/3.
        let s = Score::new(&[10, 50, 90], &[11, 12, 53, 200], 2);
        assert_eq!(s.true_positives, 1);
        assert!((s.precision() - 0.25).abs() < 1e-12);
        assert!((s.recall() - 1.0 / 3.0).abs() < 1e-12);
        let (p, r) = (0.25, 1.0 / 3.0);
        assert!((s.f2() - 5.0 * p * r / (4.0 * p + r)).abs() < 1e-12);
        assert_eq!(Score::new(&[], &[], 2).f2(), 1.0);
        assert_eq!(Score::new(&[5], &[], 2).f2(), 0.0);
    }

    fn steps(levels: &[(usize, f64)], sigma: f64, seed: u64) -> Vec<f64> {
        let mut u = rng(seed);
        levels
            .iter()
            .flat_map(|&(n, level)| (0..n).map(move |_| level))
            .map(|level| level + sigma * gauss(&mut u))
            .collect()
    }

    #[test]
    fn finds_level_shifts_and_a_change_of_noise_and_ignores_spikes() {
        // 0 -> +1 (10 sigma) at 300, back to 0 at 600; noise x8 from 900 (above min_scale_ratio).
        let mut y = steps(&[(300, 0.0), (300, 1.0), (300, 0.0)], 0.1, 3);
        y.extend(steps(&[(300, 0.0)], 0.8, 4));
        for i in [100, 450, 750] {
            y[i] += 5.0;
        }
        y[200] = f64::NAN;
        let s = segment(&y, &Config::default());
        let found = &s.change_points;
        assert_eq!(found.len(), 3, "{found:?}");
        for (want, got) in [300usize, 600, 900].iter().zip(found) {
            assert!(want.abs_diff(*got) <= 2, "{want} vs {got}");
        }
        assert_eq!(s.outliers, vec![100, 450, 750]);
        assert_eq!(s.missing, 1);
        assert!((s.segments[1].mean - 1.0).abs() < 0.05);
        assert!((s.noise_sigma - 0.1).abs() < 0.1, "noise {}", s.noise_sigma);
        assert_eq!(s.segments.first().map(|x| x.start), Some(0));
        assert_eq!(s.segments.last().map(|x| x.end), Some(y.len()));
    }

    #[test]
    fn quiet_series_has_no_changes_and_short_excursions_are_not_changes() {
        let y = steps(&[(2000, 5.0)], 0.2, 8);
        assert!(segment(&y, &Config::default()).change_points.is_empty());
        // A 4-sample excursion that returns to the same level: transient.
        let mut y = steps(&[(500, 5.0)], 0.2, 9);
        for v in &mut y[200..204] {
            *v += 10.0;
        }
        assert!(segment(&y, &Config::default()).change_points.is_empty());
        // The same excursion that does not come back is a change.
        let mut y = steps(&[(500, 5.0)], 0.2, 9);
        for v in &mut y[200..] {
            *v += 10.0;
        }
        assert_eq!(segment(&y, &Config::default()).change_points, vec![200]);
    }

    #[test]
    fn small_but_clear_changes_below_the_minimum_shift_are_dropped() {
        // 1.5 noise sigmas over 2,000 samples: statistically clear, below min_shift_sigmas (3).
        let y = steps(&[(2000, 0.0), (2000, 0.15)], 0.1, 5);
        let config = Config::default();
        assert!(segment(&y, &config).change_points.is_empty());
        let sensitive = Config {
            min_shift_sigmas: 1.0,
            min_shift_segment_sigmas: 1.0,
            ..config
        };
        let found = segment(&y, &sensitive).change_points;
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].abs_diff(2000) < 30);
    }

    #[test]
    fn degenerate_inputs() {
        let config = Config::default();
        for y in [vec![], vec![1.0], vec![f64::NAN; 10], vec![3.0; 50]] {
            let s = segment(&y, &config);
            assert!(s.change_points.is_empty(), "{y:?}");
            assert_eq!(s.segments.len(), 1);
        }
    }

    #[test]
    fn cusum_alarms_after_a_shift_and_dates_its_start() {
        let y = steps(&[(500, 0.0), (200, 0.5)], 0.1, 11);
        let mut c = Cusum::new(0.0, 0.1, 0.5, 8.0);
        let alarms: Vec<Alarm> = y.iter().filter_map(|&v| c.push(v)).collect();
        let first = alarms.first().expect("an alarm");
        assert_eq!(first.sign, 1);
        assert!(first.at >= 500 && first.at < 510, "raised at {}", first.at);
        assert!(first.since.abs_diff(500) <= 3, "dated {}", first.since);
        let quiet = steps(&[(20_000, 0.0)], 0.1, 12);
        let mut c = Cusum::new(0.0, 0.1, 0.5, 8.0);
        assert_eq!(quiet.iter().filter_map(|&v| c.push(v)).count(), 0);
    }
}
