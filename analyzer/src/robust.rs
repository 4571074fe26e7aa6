//! Outlier-robust statistics: median and median absolute deviation, and removal of a series'
//! daily cycle.

/// Scale that turns a MAD into a standard deviation for Gaussian data.
pub const MAD_TO_SIGMA: f64 = 1.482_602_218_505_602;

/// Median of `values` (reordered in place); NaNs are ignored; `None` when nothing is left.
pub fn median_in_place(values: &mut Vec<f64>) -> Option<f64> {
    values.retain(|v| !v.is_nan());
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mid = n / 2;
    let (_, upper, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    let upper = *upper;
    if n % 2 == 1 {
        return Some(upper);
    }
    let lower = values[..mid].iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((lower + upper) / 2.0)
}

/// Median and MAD-based sigma of `values` (NaNs ignored): [`median_in_place`] twice, with the
/// selections made on integer keys that order as [`f64::total_cmp`] orders the values (the same
/// result, selected faster: on long series the change-point engine's noise estimate was a fifth of
/// its instructions).
pub fn median_sigma(values: &[f64]) -> Option<(f64, f64)> {
    // total_cmp's key, which is its own inverse.
    let flip = |k: i64| k ^ (((k >> 63) as u64) >> 1) as i64;
    let key = |v: f64| flip(v.to_bits() as i64);
    let value = |k: i64| f64::from_bits(flip(k) as u64);
    let median = |keys: &mut [i64]| {
        let (n, mid) = (keys.len(), keys.len() / 2);
        let (lower, upper, _) = keys.select_nth_unstable(mid);
        let upper = value(*upper);
        if n % 2 == 1 {
            return upper;
        }
        let lower = lower.iter().copied().max().map_or(f64::NEG_INFINITY, value);
        (lower + upper) / 2.0
    };
    let mut keys = Vec::with_capacity(values.len());
    keys.extend(values.iter().filter(|v| !v.is_nan()).map(|&v| key(v)));
    if keys.is_empty() {
        return None;
    }
    let med = median(&mut keys);
    for k in &mut keys {
        *k = key((value(*k) - med).abs());
    }
    Some((med, median(&mut keys) * MAD_TO_SIGMA))
}

const DAY_NS: i64 = 86_400_000_000_000;
/// Bins of the daily profile: half hours.
const DIURNAL_BINS: usize = 48;
/// Fewest whole days that make a profile worth subtracting.
const DIURNAL_MIN_DAYS: i64 = 3;

/// `values` less their typical daily cycle (shore-end and backhaul temperature), so that a step
/// smaller than the cycle is not hidden in it; `None` when the series spans fewer than three days.
///
/// Each sample's deviation from the median of its UTC day is gathered by half hour of the day; the
/// median deviation of each half hour over all days is the profile, subtracted from the samples.
/// Medians throughout: a step or a burst on one day moves that day's deviations but not the
/// profile, and the profile has no level of its own, so steps keep their size.
pub fn without_diurnal(times_ns: &[i64], values: &[f64]) -> Option<Vec<f64>> {
    let (&first, &last) = (times_ns.first()?, times_ns.last()?);
    if last - first < DIURNAL_MIN_DAYS * DAY_NS || times_ns.len() != values.len() {
        return None;
    }
    let day = |t: i64| t.div_euclid(DAY_NS);
    let bin = |t: i64| (t.rem_euclid(DAY_NS) * DIURNAL_BINS as i64 / DAY_NS) as usize;
    // Median of each UTC day (times ascending, so days are runs).
    let mut deviations: Vec<Vec<f64>> = vec![Vec::new(); DIURNAL_BINS];
    let mut start = 0;
    while start < times_ns.len() {
        let d = day(times_ns[start]);
        let end = start + times_ns[start..].iter().take_while(|&&t| day(t) == d).count();
        let mut v = values[start..end].to_vec();
        if let Some(m) = median_in_place(&mut v) {
            for i in start..end {
                if values[i].is_finite() {
                    deviations[bin(times_ns[i])].push(values[i] - m);
                }
            }
        }
        start = end;
    }
    let profile: Vec<f64> = deviations
        .iter_mut()
        .map(|d| {
            if d.len() >= DIURNAL_MIN_DAYS as usize {
                median_in_place(d).unwrap_or(0.0)
            } else {
                0.0
            }
        })
        .collect();
    Some(
        times_ns
            .iter()
            .zip(values)
            .map(|(&t, &v)| v - profile[bin(t)])
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn median_sigma_is_median_in_place_twice() {
        let mut s = 7u64;
        let mut u = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        for n in 0..300usize {
            let v: Vec<f64> = (0..n)
                .map(|i| match i % 9 {
                    0 => -0.0,
                    1 => 0.0,
                    2 => f64::NAN,
                    3 => (u() - 0.5) * 1e-300,
                    _ => (u() - 0.5) * 10f64.powi((u() * 6.0) as i32 - 3),
                })
                .collect();
            let mut w = v.clone();
            let want = super::median_in_place(&mut w).and_then(|med| {
                let mut d: Vec<f64> = w.iter().map(|x| (x - med).abs()).collect();
                super::median_in_place(&mut d).map(|mad| (med, mad * super::MAD_TO_SIGMA))
            });
            let got = super::median_sigma(&v);
            assert_eq!(
                got.map(|(m, s)| (m.to_bits(), s.to_bits())),
                want.map(|(m, s)| (m.to_bits(), s.to_bits())),
                "n {n}"
            );
        }
    }

    use super::*;

    #[test]
    fn the_daily_cycle_goes_and_a_step_smaller_than_it_stays() {
        let minute = 60_000_000_000i64;
        let n = 10 * 24 * 4; // ten days of 15-minute samples
        let times: Vec<i64> = (0..n as i64)
            .map(|i| 1_790_000_000 * 1_000_000_000 + i * 15 * minute)
            .collect();
        let cycle =
            |t: i64| 0.02 * (std::f64::consts::TAU * t.rem_euclid(DAY_NS) as f64 / DAY_NS as f64).sin();
        let step_at = 6 * 24 * 4 + 17;
        let values: Vec<f64> = times
            .iter()
            .enumerate()
            .map(|(i, &t)| 12.0 + cycle(t) - if i >= step_at { 0.01 } else { 0.0 })
            .collect();
        let clean = without_diurnal(&times, &values).unwrap();
        let before = &clean[..step_at];
        let after = &clean[step_at..];
        let spread = |v: &[f64]| {
            v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
                - v.iter().copied().fold(f64::INFINITY, f64::min)
        };
        // The cycle (0.04 peak to peak) is gone to a few thousandths; the 0.01 step is intact.
        assert!(spread(&before[96..]) < 0.006, "{}", spread(&before[96..]));
        assert!(spread(&after[..after.len() - 96]) < 0.006);
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let step = mean(after) - mean(before);
        assert!((step + 0.01).abs() < 0.003, "{step}");
        // Too short a series to learn a daily cycle from.
        assert!(without_diurnal(&times[..200], &values[..200]).is_none());
    }

    fn naive_median(values: &[f64]) -> f64 {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    }

    #[test]
    fn median_matches_sorting_reference() {
        let mut state = 7u64;
        for n in 1..60 {
            let values: Vec<f64> = (0..n)
                .map(|_| {
                    state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    (state >> 33) as f64 / 1e6
                })
                .collect();
            let mut v = values.clone();
            assert_eq!(median_in_place(&mut v), Some(naive_median(&values)), "n = {n}");
        }
    }

    #[test]
    fn mad_ignores_outliers_and_nans() {
        let mut values = vec![1.0, 2.0, 3.0, 4.0, 5.0, f64::NAN];
        values.push(1e9);
        let (med, sigma) = median_sigma(&values).unwrap();
        assert_eq!(med, 3.5);
        assert!((sigma - 1.5 * MAD_TO_SIGMA).abs() < 1e-12);
        assert_eq!(median_sigma(&[f64::NAN]), None);
    }
}
