//! The physics and noise of a simulated plant, drawn per seed from documented ranges.
//!
//! A detector is only as good as the variety it was tried on, so no physics or noise parameter of the
//! simulator is a single constant: each is drawn per seed from a physically plausible range
//! ([`PhysicsSpec::default_for`], the table in `testdata/README.md`), and a scenario pins any of them
//! with a key of its `[physics]` table (or its `[cadence]` table for sampling periods):
//!
//! ```toml
//! [cadence]
//! line_monitoring_s = { one_of = [900, 1800, 3600] }   # a choice, drawn per seed
//! [physics]
//! lm_noise_db = 0.03                                  # pinned
//! lm_sweep_offset_db = [0.0, 0.08]                    # a range, drawn uniformly per seed
//! ```
//!
//! Every parameter draws from its own generator (seed, parameter), so adding one does not change the
//! others' draws. The drawn values are written to `truth.json` (`physics`).

use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::{SimError, plant::rng_for};

/// How a parameter is chosen: pinned, drawn uniformly from a range, or drawn from a list of choices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Draw {
    /// This value.
    Fixed(f64),
    /// Uniform in `[lo, hi]`.
    Range([f64; 2]),
    /// One of these, each as likely.
    OneOf {
        /// The choices.
        one_of: Vec<f64>,
    },
}

impl Draw {
    fn check(&self, name: &str, min: f64, max: f64) -> Result<(), SimError> {
        let values: Vec<f64> = match self {
            Draw::Fixed(v) => vec![*v],
            Draw::Range([lo, hi]) => {
                if lo > hi {
                    return Err(bad(name, format!("range [{lo}, {hi}] has its ends reversed")));
                }
                vec![*lo, *hi]
            }
            Draw::OneOf { one_of } => {
                if one_of.is_empty() {
                    return Err(bad(name, "one_of lists no value".into()));
                }
                one_of.clone()
            }
        };
        for v in values {
            if !(v.is_finite() && v >= min && v <= max) {
                return Err(bad(name, format!("{v} is not in [{min}, {max}]")));
            }
        }
        Ok(())
    }

    fn draw(&self, seed: u64, stream: u64) -> f64 {
        let mut rng = rng_for(seed, &[200, stream]);
        match self {
            Draw::Fixed(v) => *v,
            Draw::Range([lo, hi]) => lo + (hi - lo) * rng.random::<f64>(),
            Draw::OneOf { one_of } => one_of[rng.random_range(0..one_of.len())],
        }
    }
}

fn bad(name: &str, reason: String) -> SimError {
    SimError::Scenario {
        origin: format!("[physics] / [cadence] {name}"),
        reason,
    }
}

/// Sampling periods, each pinned or drawn (`[cadence]`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CadenceSpec {
    /// Optical PM interval, seconds.
    pub optical_s: Option<Draw>,
    /// Line-monitoring sweep period, seconds.
    pub line_monitoring_s: Option<Draw>,
    /// Latency probe period, seconds.
    pub latency_s: Option<Draw>,
}

/// How often each kind of telemetry is sampled, once drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cadence {
    /// Optical PM interval, seconds (900 for 15-minute bins).
    pub optical_s: u32,
    /// Line-monitoring sweep period, seconds.
    pub line_monitoring_s: u32,
    /// Latency probe period, seconds.
    pub latency_s: u32,
}

macro_rules! physics {
    ($( $(#[doc = $doc:literal])* $name:ident: $default:expr, [$min:expr, $max:expr]; )*) => {
        /// Physics and noise parameters as a scenario gives them (`[physics]`): each pinned,
        /// drawn from a range or from choices; an absent key takes its documented default range.
        #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct PhysicsSpec {
            $( $(#[doc = $doc])* pub $name: Option<Draw>, )*
        }

        /// The physics and noise of one simulated plant, drawn for one seed.
        #[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
        pub struct Physics {
            /// Sampling periods.
            pub cadence: Cadence,
            $( $(#[doc = $doc])* pub $name: f64, )*
        }

        impl PhysicsSpec {
            /// Every parameter's documented default, as (name, draw, accepted bounds).
            pub fn defaults() -> Vec<(&'static str, Draw, [f64; 2])> {
                vec![$( (stringify!($name), $default, [$min, $max]), )*]
            }

            /// Replaces each parameter `other` gives (a suite's overrides of a scenario's).
            pub fn overlay(&mut self, other: &PhysicsSpec) {
                $( if other.$name.is_some() { self.$name = other.$name.clone(); } )*
            }

            /// Checks every given draw against its parameter's bounds.
            pub fn check(&self) -> Result<(), SimError> {
                $( if let Some(d) = &self.$name { d.check(stringify!($name), $min, $max)?; } )*
                Ok(())
            }

            fn resolve(&self, seed: u64, cadence: Cadence) -> Physics {
                let mut stream = 100u64;
                let mut next = |given: &Option<Draw>, default: Draw| {
                    stream += 1;
                    given.as_ref().unwrap_or(&default).draw(seed, stream)
                };
                Physics {
                    cadence,
                    $( $name: next(&self.$name, $default), )*
                }
            }
        }
    };
}

physics! {
    /// Line monitoring: noise of one repeater's loop-back gain in one sweep, dB (sd). HLLB
    /// repeatability is a few hundredths of a dB.
    lm_noise_db: Draw::Range([0.01, 0.05]), [0.0, 1.0];
    /// Line monitoring: calibration offset shared by every repeater of one sweep of one fiber, dB
    /// (sd): the terminal's launch and receive levels move between sweeps.
    lm_sweep_offset_db: Draw::Range([0.0, 0.08]), [0.0, 1.0];
    /// Line monitoring: slow drift of each repeater's loop-back gain, a random walk, dB per
    /// sqrt(day) (gain-control settling; the sea floor's temperature barely moves): at the top of
    /// the range a repeater wanders 0.02 dB in a month.
    lm_drift_db_per_sqrt_day: Draw::Range([0.0, 0.004]), [0.0, 0.2];
    /// Repeater saturation: the fraction of a span loss step still seen in far-end received power
    /// behind the saturated repeaters (0: fully restored).
    rx_residual: Draw::Range([0.01, 0.1]), [0.0, 1.0];
    /// SOP: the fiber's median quiet rate of change per channel, krad/s (each channel within a
    /// factor of two of it).
    sop_quiet_krad_s: Draw::Range([0.02, 0.5]), [0.001, 10.0];
    /// SOP: log-normal spread (sigma of ln) of quiet samples around a channel's median.
    sop_tail_sigma: Draw::Range([0.3, 1.0]), [0.0, 3.0];
    /// SOP: chance per channel and sample of a lone spike of 1 to 5 krad/s on that channel only
    /// (connector vibration, a transceiver's tracking glitch).
    sop_spike_rate: Draw::Range([0.0, 0.001]), [0.0, 0.1];
    /// SOP: fiber-wide weak wobbles (every channel up by 0.1 to 0.4 krad/s for 15 minutes to 2
    /// hours, nothing behind them: wind on aerial backhaul, building vibration) per fiber and month.
    sop_wobbles_per_month: Draw::Range([0.0, 3.0]), [0.0, 100.0];
    /// Optical: per-sample noise of each channel's Q, dB (sd).
    q_noise_db: Draw::Range([0.02, 0.1]), [0.0, 2.0];
    /// Optical: per-sample noise of each channel's received power, dB (sd).
    power_noise_db: Draw::Range([0.01, 0.05]), [0.0, 2.0];
    /// Optical: daily swing of Q from the shore ends' temperature, dB (amplitude).
    diurnal_q_db: Draw::Range([0.0, 0.05]), [0.0, 1.0];
    /// Optical: daily swing of received power, dB (amplitude).
    diurnal_power_db: Draw::Range([0.0, 0.1]), [0.0, 2.0];
    /// Latency: daily swing of one-way delay from buried shore ends and backhaul, us (amplitude).
    diurnal_delay_us: Draw::Range([0.0, 1.0]), [0.0, 50.0];
    /// Latency: per-probe jitter, us (sd).
    latency_jitter_us: Draw::Range([0.05, 2.0]), [0.0, 100.0];
    /// Latency: chance per probe of a queueing outlier of 20 to 300 us.
    latency_outlier_rate: Draw::Range([0.0, 0.01]), [0.0, 0.5];
}

/// Defaults of the sampling periods: 5 or 15-minute PM bins, sweeps every 15 minutes to an hour,
/// probes every 30 seconds to 5 minutes.
pub fn default_cadence() -> [(&'static str, Draw); 3] {
    [
        (
            "optical_s",
            Draw::OneOf {
                one_of: vec![300.0, 900.0],
            },
        ),
        (
            "line_monitoring_s",
            Draw::OneOf {
                one_of: vec![900.0, 1800.0, 3600.0],
            },
        ),
        (
            "latency_s",
            Draw::OneOf {
                one_of: vec![30.0, 60.0, 300.0],
            },
        ),
    ]
}

impl CadenceSpec {
    /// Checks the given periods: whole seconds, 1 s to a day.
    pub fn check(&self) -> Result<(), SimError> {
        for (name, d) in self.given() {
            if let Some(d) = d {
                d.check(name, 1.0, 86_400.0)?;
                let whole = match d {
                    Draw::Fixed(v) => v.fract() == 0.0,
                    Draw::Range(_) => true,
                    Draw::OneOf { one_of } => one_of.iter().all(|v| v.fract() == 0.0),
                };
                if !whole {
                    return Err(bad(name, "periods are whole seconds".into()));
                }
            }
        }
        Ok(())
    }

    /// Replaces each period `other` gives.
    pub fn overlay(&mut self, other: &CadenceSpec) {
        for (mine, theirs) in [
            (&mut self.optical_s, &other.optical_s),
            (&mut self.line_monitoring_s, &other.line_monitoring_s),
            (&mut self.latency_s, &other.latency_s),
        ] {
            if theirs.is_some() {
                mine.clone_from(theirs);
            }
        }
    }

    fn given(&self) -> [(&'static str, &Option<Draw>); 3] {
        [
            ("optical_s", &self.optical_s),
            ("line_monitoring_s", &self.line_monitoring_s),
            ("latency_s", &self.latency_s),
        ]
    }

    fn resolve(&self, seed: u64) -> Cadence {
        let defaults = default_cadence();
        let mut out = [0u32; 3];
        for (i, ((_, given), (_, default))) in self.given().into_iter().zip(defaults).enumerate() {
            let v = given.as_ref().unwrap_or(&default).draw(seed, 10 + i as u64);
            out[i] = v.round().max(1.0) as u32;
        }
        Cadence {
            optical_s: out[0],
            line_monitoring_s: out[1],
            latency_s: out[2],
        }
    }
}

impl Physics {
    /// Draws the physics of seed `seed` from `spec` and `cadence`.
    pub fn draw(spec: &PhysicsSpec, cadence: &CadenceSpec, seed: u64) -> Self {
        spec.resolve(seed, cadence.resolve(seed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_follow_the_spec_and_each_parameter_its_own_stream() {
        let spec: PhysicsSpec = toml::from_str(
            "lm_noise_db = 0.03\nlm_sweep_offset_db = [0.02, 0.04]\nsop_tail_sigma = { one_of = [0.4, 0.9] }",
        )
        .unwrap();
        spec.check().unwrap();
        let cadence: CadenceSpec = toml::from_str("line_monitoring_s = 21600").unwrap();
        let mut seen_tails = std::collections::BTreeSet::new();
        for seed in 0..40 {
            let p = Physics::draw(&spec, &cadence, seed);
            assert_eq!(p.lm_noise_db, 0.03);
            assert!((0.02..=0.04).contains(&p.lm_sweep_offset_db));
            assert!(p.sop_tail_sigma == 0.4 || p.sop_tail_sigma == 0.9);
            seen_tails.insert((p.sop_tail_sigma * 10.0) as u32);
            assert_eq!(p.cadence.line_monitoring_s, 21_600);
            assert!([300, 900].contains(&p.cadence.optical_s));
            // Unset keys take their default range.
            assert!((0.0..=0.004).contains(&p.lm_drift_db_per_sqrt_day));
            // Pinning one parameter leaves the others' draws alone.
            let q = Physics::draw(&PhysicsSpec::default(), &cadence, seed);
            assert_eq!(p.q_noise_db, q.q_noise_db);
        }
        assert_eq!(seen_tails.len(), 2, "both choices drawn over 40 seeds");
    }

    #[test]
    fn bad_draws_name_the_parameter() {
        let reversed: PhysicsSpec = toml::from_str("lm_noise_db = [0.05, 0.01]").unwrap();
        let err = reversed.check().unwrap_err().to_string();
        assert!(err.contains("lm_noise_db") && err.contains("reversed"), "{err}");
        let negative: PhysicsSpec = toml::from_str("q_noise_db = -1.0").unwrap();
        assert!(negative.check().unwrap_err().to_string().contains("q_noise_db"));
        assert!(toml::from_str::<PhysicsSpec>("lm_nosie_db = 0.1").is_err());
        let fractional: CadenceSpec = toml::from_str("latency_s = 0.5").unwrap();
        assert!(fractional.check().unwrap_err().to_string().contains("latency_s"));
    }
}
