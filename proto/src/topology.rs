//! The cable plant: landing stations and cables with their repeaters, fiber pairs and channel plans.
//!
//! Read from a TOML file (format in `docs/data-model.md`, example in `testdata/topology.toml`) by
//! [`Topology::from_toml_file`], which checks every field and names the first one that is wrong. The
//! collector validates rows against it (known cable, fiber pair, channel, repeater); the simulator
//! builds its plant from it; the analyzer localizes findings to spans and kilometres with it.
//!
//! Spans are numbered from the A end: span 1 runs from the A-end station to repeater 1, span k from
//! repeater k-1 to repeater k, and the last span (number = repeaters + 1) ends at the B-end station.

use std::{collections::HashSet, path::Path};

use serde::{Deserialize, Serialize};

use crate::{CableId, StationId};

/// Errors reading a topology file.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// The file could not be read.
    #[error("reading topology {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the topology format (unknown key, wrong type, bad id ...).
    #[error("topology {path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's error, with line, column and key.
        source: Box<toml::de::Error>,
    },
    /// A field holds a value that is not physically or logically possible.
    #[error("topology {path}: {field}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// Where: `cable[1] (atl-1).repeater_km[4]`.
        field: String,
        /// What is wrong.
        reason: String,
    },
}

/// A landing station.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Station {
    /// Station id, used in batches and partition paths.
    pub id: StationId,
    /// Human-readable name.
    pub name: String,
    /// Latitude, degrees north.
    pub latitude: f64,
    /// Longitude, degrees east.
    pub longitude: f64,
}

/// A cable's WDM channel plan, the same on every fiber pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelPlan {
    /// Number of channels; channel numbers run 1..=channels.
    pub channels: u32,
    /// Centre frequency of channel 1, THz.
    pub first_thz: f64,
    /// Spacing between adjacent channels, GHz.
    pub spacing_ghz: f64,
}

impl ChannelPlan {
    /// Centre frequency of `channel` (1-based), THz.
    pub fn frequency_thz(&self, channel: u32) -> f64 {
        self.first_thz + f64::from(channel.saturating_sub(1)) * self.spacing_ghz / 1000.0
    }

    /// Vacuum wavelength of `channel`, nm.
    pub fn wavelength_nm(&self, channel: u32) -> f64 {
        299_792.458 / self.frequency_thz(channel)
    }
}

/// A point-to-point repeatered cable between two landing stations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cable {
    /// Cable id, used in batches and partition paths.
    pub id: CableId,
    /// Human-readable name.
    pub name: String,
    /// Landing station at the A end (km 0).
    pub a_station: StationId,
    /// Landing station at the B end (km = length_km).
    pub b_station: StationId,
    /// Route length, km.
    pub length_km: f64,
    /// Number of fiber pairs, numbered 1..=fiber_pairs.
    pub fiber_pairs: u32,
    /// Repeater positions from the A end, km, strictly increasing; repeater k is element k-1.
    /// Empty for an unrepeatered cable.
    #[serde(default)]
    pub repeater_km: Vec<f64>,
    /// Water depth along the route as `[km, metres]` points, linearly interpolated; optional.
    #[serde(default)]
    pub depth_profile: Vec<[f64; 2]>,
    /// WDM channel plan.
    pub channel_plan: ChannelPlan,
}

/// One span between amplifiers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    /// Span number from the A end, 1-based.
    pub index: u32,
    /// Start, km from the A end.
    pub start_km: f64,
    /// End, km from the A end.
    pub end_km: f64,
}

impl Span {
    /// Length, km.
    pub fn length_km(&self) -> f64 {
        self.end_km - self.start_km
    }
}

/// Fiber group delay: 4.897 us per km (group index about 1.468).
pub const FIBER_DELAY_US_PER_KM: f64 = 4.897;

impl Cable {
    /// Number of repeaters.
    pub fn repeaters(&self) -> u32 {
        u32::try_from(self.repeater_km.len()).unwrap_or(u32::MAX)
    }

    /// The spans, A end first; there is one more span than repeaters.
    pub fn spans(&self) -> Vec<Span> {
        let mut edges = Vec::with_capacity(self.repeater_km.len() + 2);
        edges.push(0.0);
        edges.extend_from_slice(&self.repeater_km);
        edges.push(self.length_km);
        edges
            .windows(2)
            .zip(1..)
            .map(|(w, index)| Span {
                index,
                start_km: w[0],
                end_km: w[1],
            })
            .collect()
    }

    /// The span that contains position `km` (a repeater's position belongs to the span it ends).
    pub fn span_at_km(&self, km: f64) -> u32 {
        let after = self.repeater_km.partition_point(|&r| r < km);
        u32::try_from(after).unwrap_or(u32::MAX) + 1
    }

    /// Water depth at `km`, metres; `None` when the file gives no depth profile.
    pub fn depth_at_km(&self, km: f64) -> Option<f64> {
        let p = &self.depth_profile;
        let first = p.first()?;
        if km <= first[0] {
            return Some(first[1]);
        }
        for w in p.windows(2) {
            let ([k0, d0], [k1, d1]) = (w[0], w[1]);
            if km <= k1 {
                let f = if k1 > k0 { (km - k0) / (k1 - k0) } else { 1.0 };
                return Some(d0 + f * (d1 - d0));
            }
        }
        p.last().map(|l| l[1])
    }

    /// The span whose loss repeater `repeater` (numbered 1..=N from the A end, as the
    /// line-monitoring equipment reports it) measures on a fiber carrying light in `direction`
    /// (`a_to_b` or `b_to_a`); `None` for a repeater not on the cable or an unknown direction.
    ///
    /// A repeater's high-loss loop-back measures the span that feeds it. Light going A to B reaches
    /// repeater k through span k; light going B to A reaches it through span k + 1. So `a_to_b`
    /// covers spans 1..=N and not the B shore span N + 1, and `b_to_a` covers spans 2..=N + 1 and
    /// not the A shore span 1. This is the one place that mapping is made: the simulator, the
    /// collector's checks, the analyzer and its report all go through it (and
    /// [`Cable::repeater_covering`]).
    pub fn span_covered_by(&self, direction: &str, repeater: u32) -> Option<u32> {
        if repeater == 0 || repeater > self.repeaters() {
            return None;
        }
        match direction {
            crate::tables::DIRECTION_A_TO_B => Some(repeater),
            crate::tables::DIRECTION_B_TO_A => Some(repeater + 1),
            _ => None,
        }
    }

    /// The repeater whose loop-back measures `span` in `direction`, the inverse of
    /// [`Cable::span_covered_by`]; `None` where no repeater sees the span in that direction (the
    /// shore span at the receiving end's side: span N + 1 in `a_to_b`, span 1 in `b_to_a`).
    pub fn repeater_covering(&self, direction: &str, span: u32) -> Option<u32> {
        let repeater = match direction {
            crate::tables::DIRECTION_A_TO_B => span,
            crate::tables::DIRECTION_B_TO_A => span.checked_sub(1)?,
            _ => return None,
        };
        (1..=self.repeaters()).contains(&repeater).then_some(repeater)
    }

    /// One-way fiber propagation delay over the whole cable, microseconds.
    pub fn fiber_delay_us(&self) -> f64 {
        self.length_km * FIBER_DELAY_US_PER_KM
    }
}

/// The whole plant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Landing stations.
    #[serde(rename = "station")]
    pub stations: Vec<Station>,
    /// Cables.
    #[serde(rename = "cable")]
    pub cables: Vec<Cable>,
}

/// Shortest and longest span accepted, km: shorter is a data-entry error; longer cannot be bridged
/// without amplification even by an unrepeatered festoon.
const SPAN_KM_RANGE: (f64, f64) = (0.5, 500.0);

impl Topology {
    /// Reads and validates a topology file.
    pub fn from_toml_file(path: &Path) -> Result<Self, TopologyError> {
        let text = std::fs::read_to_string(path).map_err(|source| TopologyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses and validates topology TOML; `origin` names the source in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, TopologyError> {
        let topology: Topology = toml::from_str(text).map_err(|source| TopologyError::Parse {
            path: origin.to_owned(),
            source: Box::new(source),
        })?;
        topology
            .validate()
            .map_err(|(field, reason)| TopologyError::Invalid {
                path: origin.to_owned(),
                field,
                reason,
            })?;
        Ok(topology)
    }

    /// The cable with id `id`.
    pub fn cable(&self, id: &str) -> Option<&Cable> {
        self.cables.iter().find(|c| c.id.as_str() == id)
    }

    /// The station with id `id`.
    pub fn station(&self, id: &str) -> Option<&Station> {
        self.stations.iter().find(|s| s.id.as_str() == id)
    }

    /// Cables that land at station `id`.
    pub fn cables_at(&self, id: &str) -> impl Iterator<Item = &Cable> {
        self.cables
            .iter()
            .filter(move |c| c.a_station.as_str() == id || c.b_station.as_str() == id)
    }

    fn validate(&self) -> Result<(), (String, String)> {
        let bad = |field: String, reason: String| Err((field, reason));
        let mut ids = HashSet::new();
        for (i, s) in self.stations.iter().enumerate() {
            let at = format!("station[{i}] ({})", s.id);
            if !ids.insert(s.id.as_str()) {
                return bad(format!("{at}.id"), "duplicate station id".into());
            }
            if !(-90.0..=90.0).contains(&s.latitude) {
                return bad(
                    format!("{at}.latitude"),
                    format!("{} is outside -90..=90", s.latitude),
                );
            }
            if !(-180.0..=180.0).contains(&s.longitude) {
                return bad(
                    format!("{at}.longitude"),
                    format!("{} is outside -180..=180", s.longitude),
                );
            }
        }
        if self.cables.is_empty() {
            return bad("cable".into(), "the topology has no cables".into());
        }
        let mut cable_ids = HashSet::new();
        for (i, c) in self.cables.iter().enumerate() {
            let at = format!("cable[{i}] ({})", c.id);
            if !cable_ids.insert(c.id.as_str()) {
                return bad(format!("{at}.id"), "duplicate cable id".into());
            }
            for (field, st) in [("a_station", &c.a_station), ("b_station", &c.b_station)] {
                if !ids.contains(st.as_str()) {
                    return bad(format!("{at}.{field}"), format!("no station with id {st:?}"));
                }
            }
            if c.a_station == c.b_station {
                return bad(
                    format!("{at}.b_station"),
                    "a cable must join two different stations".into(),
                );
            }
            if !(c.length_km.is_finite() && c.length_km > 0.0 && c.length_km <= 40_000.0) {
                return bad(
                    format!("{at}.length_km"),
                    format!("{} is not in (0, 40000]", c.length_km),
                );
            }
            if !(1..=32).contains(&c.fiber_pairs) {
                return bad(
                    format!("{at}.fiber_pairs"),
                    format!("{} is not in 1..=32", c.fiber_pairs),
                );
            }
            let mut prev = 0.0;
            for (k, &km) in c.repeater_km.iter().chain([&c.length_km]).enumerate() {
                let field = if k < c.repeater_km.len() {
                    format!("{at}.repeater_km[{k}]")
                } else {
                    format!("{at}.length_km")
                };
                if !km.is_finite() || km <= prev {
                    return bad(
                        field,
                        format!("{km} km is not after the previous repeater at {prev} km"),
                    );
                }
                let span = km - prev;
                if span < SPAN_KM_RANGE.0 || span > SPAN_KM_RANGE.1 {
                    return bad(
                        field,
                        format!(
                            "span {} is {span:.1} km long; spans must be {}..={} km",
                            k + 1,
                            SPAN_KM_RANGE.0,
                            SPAN_KM_RANGE.1
                        ),
                    );
                }
                prev = km;
            }
            let mut prev_km = f64::NEG_INFINITY;
            for (k, [km, depth]) in c.depth_profile.iter().copied().enumerate() {
                let field = format!("{at}.depth_profile[{k}]");
                if !(km.is_finite() && km >= 0.0 && km <= c.length_km && km >= prev_km) {
                    return bad(
                        field,
                        format!("km {km} is not in order within 0..={}", c.length_km),
                    );
                }
                if !(depth.is_finite() && (0.0..=11_000.0).contains(&depth)) {
                    return bad(field, format!("depth {depth} m is not in 0..=11000"));
                }
                prev_km = km;
            }
            let plan = &c.channel_plan;
            if !(1..=400).contains(&plan.channels) {
                return bad(
                    format!("{at}.channel_plan.channels"),
                    format!("{} is not in 1..=400", plan.channels),
                );
            }
            if !(plan.spacing_ghz.is_finite() && plan.spacing_ghz > 0.0 && plan.spacing_ghz <= 1000.0) {
                return bad(
                    format!("{at}.channel_plan.spacing_ghz"),
                    format!("{} is not in (0, 1000]", plan.spacing_ghz),
                );
            }
            let last = plan.frequency_thz(plan.channels);
            if !(plan.first_thz >= 180.0 && last <= 240.0) {
                return bad(
                    format!("{at}.channel_plan"),
                    format!(
                        "channels span {:.3}..{last:.3} THz, outside the 180..240 THz (O to L band) range",
                        plan.first_thz
                    ),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
[[station]]
id = "a"
name = "A"
latitude = 1.0
longitude = 2.0

[[station]]
id = "b"
name = "B"
latitude = 3.0
longitude = 4.0

[[cable]]
id = "c1"
name = "C1"
a_station = "a"
b_station = "b"
length_km = 200.0
fiber_pairs = 2
repeater_km = [60.0, 130.0]
depth_profile = [[0.0, 0.0], [100.0, 4000.0], [200.0, 0.0]]
channel_plan = { channels = 4, first_thz = 192.0, spacing_ghz = 50.0 }
"#;

    #[test]
    fn spans_and_positions() {
        let t = Topology::from_toml_str(SMALL, "small").unwrap();
        let c = t.cable("c1").unwrap();
        let spans = c.spans();
        assert_eq!(spans.len(), 3);
        assert_eq!(
            (spans[2].index, spans[2].start_km, spans[2].end_km),
            (3, 130.0, 200.0)
        );
        assert_eq!(c.span_at_km(10.0), 1);
        assert_eq!(c.span_at_km(60.0), 1);
        assert_eq!(c.span_at_km(60.1), 2);
        assert_eq!(c.span_at_km(199.0), 3);
        assert_eq!(c.depth_at_km(50.0), Some(2000.0));
        assert!((c.channel_plan.frequency_thz(4) - 192.15).abs() < 1e-9);
        assert!((c.fiber_delay_us() - 979.4).abs() < 1e-9);
    }

    #[test]
    fn each_direction_covers_the_spans_that_feed_its_repeaters() {
        let t = Topology::from_toml_str(SMALL, "small").unwrap();
        let c = t.cable("c1").unwrap();
        // Two repeaters, three spans: A to B sees spans 1 and 2, B to A spans 2 and 3.
        let covered = |d: &str| -> Vec<Option<u32>> { (0..=3).map(|r| c.span_covered_by(d, r)).collect() };
        assert_eq!(covered("a_to_b"), vec![None, Some(1), Some(2), None]);
        assert_eq!(covered("b_to_a"), vec![None, Some(2), Some(3), None]);
        assert_eq!(c.span_covered_by("sideways", 1), None);
        let covering = |d: &str| -> Vec<Option<u32>> { (0..=4).map(|s| c.repeater_covering(d, s)).collect() };
        assert_eq!(covering("a_to_b"), vec![None, Some(1), Some(2), None, None]);
        assert_eq!(covering("b_to_a"), vec![None, None, Some(1), Some(2), None]);
        // Each mapping inverts the other wherever a span is covered.
        for d in ["a_to_b", "b_to_a"] {
            for r in 1..=c.repeaters() {
                let s = c.span_covered_by(d, r).unwrap();
                assert_eq!(c.repeater_covering(d, s), Some(r), "{d} repeater {r}");
            }
        }
    }

    fn invalid_field(text: &str) -> String {
        match Topology::from_toml_str(text, "t") {
            Err(TopologyError::Invalid { field, .. }) => field,
            other => panic!("expected an invalid-field error, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_the_field() {
        let out_of_order = SMALL.replace("[60.0, 130.0]", "[60.0, 50.0]");
        assert_eq!(invalid_field(&out_of_order), "cable[0] (c1).repeater_km[1]");
        let unknown_station = SMALL.replace("b_station = \"b\"", "b_station = \"zz\"");
        assert_eq!(invalid_field(&unknown_station), "cable[0] (c1).b_station");
        let past_end = SMALL.replace("[60.0, 130.0]", "[60.0, 230.0]");
        assert_eq!(invalid_field(&past_end), "cable[0] (c1).length_km");
        let bad_band = SMALL.replace("first_thz = 192.0", "first_thz = 150.0");
        assert_eq!(invalid_field(&bad_band), "cable[0] (c1).channel_plan");
    }

    #[test]
    fn parse_errors_name_the_key() {
        let unknown = SMALL.replace("fiber_pairs = 2", "fiber_pairs = 2\nfibre_pairs = 2");
        let err = Topology::from_toml_str(&unknown, "t").unwrap_err().to_string();
        assert!(err.contains("fibre_pairs"), "{err}");
        let bad_id = SMALL.replace("id = \"c1\"", "id = \"c/1\"");
        let err = Topology::from_toml_str(&bad_id, "t").unwrap_err().to_string();
        assert!(err.contains("c/1"), "{err}");
    }
}
