//! The simulated plant: per fiber, per direction, per channel baselines derived from the topology,
//! and the per-sample physics that turns them into telemetry rows.
//!
//! Every random draw comes from a generator seeded by (scenario seed, what, cable, direction, fiber
//! pair, index), so each series is reproducible on its own and series can be generated in parallel
//! in any order.

use cablewatch_proto::topology::Cable;
use rand::{RngExt, SeedableRng, rngs::StdRng};
use rand_distr::{Distribution, Normal};

use crate::{
    optics::{self, Modulation},
    physics::Physics,
};

/// Fiber attenuation of modern ultra-low-loss submarine fiber, dB/km.
pub const FIBER_LOSS_DB_PER_KM: f64 = 0.158;
/// Chromatic dispersion of large-effective-area submarine fiber at 1550 nm, ps/(nm km).
pub const DISPERSION_PS_NM_KM: f64 = 20.5;
/// Dispersion slope, ps/(nm^2 km).
pub const DISPERSION_SLOPE: f64 = 0.06;
/// PMD coefficient, ps/sqrt(km).
pub const PMD_PS_PER_SQRT_KM: f64 = 0.04;
/// Repeater noise figure, dB.
pub const NOISE_FIGURE_DB: f64 = 4.5;
/// Per-channel launch power into each span, dBm.
pub const LAUNCH_DBM: f64 = 1.0;
/// Transceiver symbol rate, GBd.
pub const SYMBOL_RATE_GBD: f64 = 32.0;
/// Transceiver SNR ceiling, dB.
pub const TRX_SNR_DB: f64 = 19.0;
/// Equipment delay at each end (transponder, DSP, FEC), us.
pub const EQUIPMENT_DELAY_US: f64 = 12.0;

/// A deterministic generator for one named stream of draws.
pub fn rng_for(seed: u64, parts: &[u64]) -> StdRng {
    // SplitMix64 over the parts: cheap, and distinct inputs give unrelated seeds.
    let mut h = seed ^ 0x9E37_79B9_7F4A_7C15;
    for &p in parts {
        h = h.wrapping_add(p).wrapping_add(0x9E37_79B9_7F4A_7C15);
        h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h ^= h >> 31;
    }
    StdRng::seed_from_u64(h)
}

/// Draws from N(0, sd).
pub fn gauss(rng: &mut StdRng, sd: f64) -> f64 {
    Normal::new(0.0, sd).map_or(0.0, |n| n.sample(rng))
}

/// Baseline of one fiber in one direction.
#[derive(Debug, Clone)]
pub struct FiberBaseline {
    /// Loss of each span, dB (span k is element k-1).
    pub span_loss_db: Vec<f64>,
    /// Loop-back gain of each repeater, dB.
    pub loopback_gain_db: Vec<f64>,
    /// Modulation the operator runs on this fiber.
    pub modulation: Modulation,
    /// Per-channel baselines, channel k is element k-1.
    pub channels: Vec<ChannelBaseline>,
    /// Extra fixed delay of this fiber's terminal path, us.
    pub delay_offset_us: f64,
}

/// Baseline of one channel.
#[derive(Debug, Clone, Copy)]
pub struct ChannelBaseline {
    /// Received power, dBm.
    pub rx_power_dbm: f64,
    /// Launch power at the terminal, dBm.
    pub tx_power_dbm: f64,
    /// OSNR, dB.
    pub osnr_db: f64,
    /// Q, dB (consistent with OSNR through the transceiver model).
    pub q_db: f64,
    /// Accumulated chromatic dispersion, ps/nm.
    pub cd_ps_nm: f64,
    /// Mean DGD, ps.
    pub dgd_ps: f64,
    /// PDL, dB.
    pub pdl_db: f64,
    /// Median quiet SOP rate of change, krad/s.
    pub sop_krad_s: f64,
}

/// Q (dB) of an ideal transceiver running `modulation` at `osnr_db`.
pub fn ideal_q_db(modulation: Modulation, osnr_db: f64) -> f64 {
    let snr = optics::from_db(optics::snr_db(osnr_db, SYMBOL_RATE_GBD, TRX_SNR_DB));
    optics::q_db_from_ber(modulation.ber(snr))
}

/// Builds the baseline of fiber pair `fp` in direction `dir` (0 = A to B, 1 = B to A).
pub fn fiber_baseline(
    seed: u64,
    physics: &Physics,
    cable_index: u64,
    cable: &Cable,
    dir: u64,
    fp: u32,
) -> FiberBaseline {
    let mut rng = rng_for(seed, &[1, cable_index, dir, u64::from(fp)]);
    let span_loss_db: Vec<f64> = cable
        .spans()
        .iter()
        .map(|s| s.length_km() * FIBER_LOSS_DB_PER_KM + 0.6 + gauss(&mut rng, 0.25))
        .collect();
    let loopback_gain_db = (0..cable.repeaters())
        .map(|_| -32.0 + gauss(&mut rng, 0.8))
        .collect();
    let plan = &cable.channel_plan;
    // Gain ripple across the band, a few tenths of a dB, shared by all channels of the fiber.
    let (ripple_amp, ripple_phase) = (
        0.3 + rng.random::<f64>() * 0.4,
        rng.random::<f64>() * std::f64::consts::TAU,
    );
    let ideal = ideal_q_db;
    let flat_osnr = optics::osnr_db(span_loss_db.iter().copied(), LAUNCH_DBM, NOISE_FIGURE_DB);
    // The operator runs 16QAM where it keeps 2 dB of Q above the FEC threshold (about 5.2 dB).
    let modulation = if ideal(Modulation::Qam16, flat_osnr - 1.0) > 7.2 {
        Modulation::Qam16
    } else {
        Modulation::Qpsk
    };
    let channels = (1..=plan.channels)
        .map(|ch| {
            let x = f64::from(ch - 1) / f64::from(plan.channels.max(2) - 1);
            let ripple = ripple_amp * (x * 9.0 + ripple_phase).sin() + gauss(&mut rng, 0.15);
            let osnr = flat_osnr + ripple - 0.3 * gauss(&mut rng, 1.0).abs();
            let lambda = plan.wavelength_nm(ch);
            let dispersion = DISPERSION_PS_NM_KM + DISPERSION_SLOPE * (lambda - 1550.0);
            ChannelBaseline {
                rx_power_dbm: -11.0 + ripple + gauss(&mut rng, 0.3),
                tx_power_dbm: 1.0 + gauss(&mut rng, 0.2),
                osnr_db: osnr,
                q_db: ideal(modulation, osnr) + gauss(&mut rng, 0.1),
                cd_ps_nm: dispersion * cable.length_km,
                dgd_ps: PMD_PS_PER_SQRT_KM * cable.length_km.sqrt() * (0.5 + rng.random::<f64>()),
                pdl_db: 0.4 + 0.8 * rng.random::<f64>(),
                // Each channel's quiet level within a factor of two of the fiber's.
                sop_krad_s: physics.sop_quiet_krad_s
                    * (std::f64::consts::LN_2 * (2.0 * rng.random::<f64>() - 1.0)).exp(),
            }
        })
        .collect();
    FiberBaseline {
        span_loss_db,
        loopback_gain_db,
        modulation,
        channels,
        delay_offset_us: rng.random::<f64>() * 2.0,
    }
}

/// Diurnal temperature swing of the shore ends and backhaul, as a fraction in -1..=1, peaking in the
/// mid-afternoon UTC.
pub fn diurnal(t_ns: i64) -> f64 {
    let day_fraction = t_ns.rem_euclid(cablewatch_proto::time::NANOS_PER_DAY) as f64
        / cablewatch_proto::time::NANOS_PER_DAY as f64;
    (std::f64::consts::TAU * (day_fraction - 0.375)).sin()
}
