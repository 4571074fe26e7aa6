//! Outlier-robust statistics: median and median absolute deviation.

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

/// Median and MAD-based sigma of `values`.
pub fn median_sigma(values: &[f64]) -> Option<(f64, f64)> {
    let mut v = values.to_vec();
    let med = median_in_place(&mut v)?;
    for x in &mut v {
        *x = (*x - med).abs();
    }
    let mad = median_in_place(&mut v)?;
    Some((med, mad * MAD_TO_SIGMA))
}

#[cfg(test)]
mod tests {
    use super::*;

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
