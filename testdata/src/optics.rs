//! Optical link formulas the simulator uses to keep its signals consistent with each other.
//!
//! OSNR from the accumulated amplifier noise of every span, SNR from OSNR and transceiver noise,
//! pre-FEC BER from SNR for the modulation in use, and Q from BER by the industry definition
//! `Q = 20 log10(-Phi^-1(BER))` (BER 3.8e-3 is Q 8.53 dB).

/// Complementary error function, |relative error| < 1.2e-7 (Numerical Recipes `erfcc`).
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// Standard normal CDF.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// Inverse standard normal CDF for `p` in (0, 1): Acklam's rational approximation refined by one
/// Halley step, accurate to about 1e-9.
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let x = if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    let e = normal_cdf(x) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}

/// Q in dB from pre-FEC BER: `20 log10(-Phi^-1(BER))`.
pub fn q_db_from_ber(ber: f64) -> f64 {
    20.0 * (-normal_quantile(ber)).log10()
}

/// Pre-FEC BER from Q in dB (inverse of [`q_db_from_ber`]).
pub fn ber_from_q_db(q_db: f64) -> f64 {
    normal_cdf(-(10f64.powf(q_db / 20.0)))
}

/// Decibels to linear power ratio.
pub fn from_db(db: f64) -> f64 {
    10f64.powf(db / 10.0)
}

/// Linear power ratio to decibels.
pub fn to_db(linear: f64) -> f64 {
    10.0 * linear.log10()
}

/// Modulation format of a channel, chosen by the operator for the link's margin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modulation {
    /// Dual-polarization QPSK, for the longest links.
    Qpsk,
    /// Dual-polarization 16-QAM, where SNR allows.
    Qam16,
}

impl Modulation {
    /// Pre-FEC BER (Gray mapping) at symbol SNR `snr` (linear).
    pub fn ber(self, snr: f64) -> f64 {
        match self {
            Modulation::Qpsk => 0.5 * erfc((snr / 2.0).sqrt()),
            Modulation::Qam16 => 0.375 * erfc((snr / 10.0).sqrt()),
        }
    }
}

/// OSNR (0.1 nm reference) after a chain of spans with losses `span_loss_db`, per-channel launch
/// power `launch_dbm` and amplifier noise figure `nf_db`: the ASE of every span adds up.
pub fn osnr_db(span_loss_db: impl IntoIterator<Item = f64>, launch_dbm: f64, nf_db: f64) -> f64 {
    // 58 dB = -10 log10(h nu B_ref) in dBm for 0.1 nm at 1550 nm.
    let noise: f64 = span_loss_db.into_iter().map(from_db).sum();
    58.0 + launch_dbm - nf_db - to_db(noise)
}

/// Symbol SNR (dB) of a channel at `symbol_rate_gbd` from its OSNR and the transceiver's own SNR
/// ceiling `trx_snr_db`.
pub fn snr_db(osnr_db: f64, symbol_rate_gbd: f64, trx_snr_db: f64) -> f64 {
    let ase = from_db(osnr_db - to_db(symbol_rate_gbd / 12.5));
    to_db(1.0 / (1.0 / ase + 1.0 / from_db(trx_snr_db)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_and_ber_agree_with_published_pairs() {
        // DOMAIN.md: BER 3.8e-3 is 8.53 dB, 3.4e-2 is 5.23 dB.
        assert!((q_db_from_ber(3.8e-3) - 8.53).abs() < 0.01);
        assert!((q_db_from_ber(3.4e-2) - 5.23).abs() < 0.01);
        for q in [4.0, 6.5, 9.0, 12.0, 16.0] {
            assert!((q_db_from_ber(ber_from_q_db(q)) - q).abs() < 1e-6, "q {q}");
        }
    }

    #[test]
    fn quantile_inverts_cdf() {
        for p in [1e-12, 1e-6, 0.01, 0.3, 0.5, 0.9, 0.999] {
            let x = normal_quantile(p);
            assert!((normal_cdf(x) - p).abs() / p < 1e-6, "p {p}");
        }
    }

    #[test]
    fn extra_loss_in_one_span_of_many_barely_moves_osnr() {
        let base: Vec<f64> = vec![11.0; 100];
        let mut tapped = base.clone();
        tapped[40] += 0.1;
        let d = osnr_db(base, 0.0, 4.5) - osnr_db(tapped, 0.0, 4.5);
        assert!(d > 0.0 && d < 0.002, "OSNR drop {d}");
    }
}
