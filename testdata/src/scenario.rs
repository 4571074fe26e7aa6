//! Scenarios: which plant, from when, for how long, at which cadences. Scenarios are TOML files
//! (format in `testdata/README.md`); the named ones ship inside the binary so that
//! `--scenario small` works from any directory.

use std::path::{Path, PathBuf};

use cablewatch_proto::{time, topology::Topology};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::{
    SimError,
    events::{EventsConfig, Window},
    physics::{CadenceSpec, Physics, PhysicsSpec},
};

/// Files shipped inside the binary: named scenarios and the example topology they use.
const EMBEDDED: &[(&str, &str)] = &[
    ("topology.toml", include_str!("../topology.toml")),
    ("topology-tiny.toml", include_str!("../topology-tiny.toml")),
    ("scenarios/benign.toml", include_str!("../scenarios/benign.toml")),
    ("scenarios/demo.toml", include_str!("../scenarios/demo.toml")),
    ("scenarios/faint.toml", include_str!("../scenarios/faint.toml")),
    ("scenarios/large.toml", include_str!("../scenarios/large.toml")),
    ("scenarios/month.toml", include_str!("../scenarios/month.toml")),
    ("scenarios/small.toml", include_str!("../scenarios/small.toml")),
    ("scenarios/taps.toml", include_str!("../scenarios/taps.toml")),
    ("scenarios/tiny.toml", include_str!("../scenarios/tiny.toml")),
];

/// Names of the scenarios shipped inside the binary.
pub fn named_scenarios() -> impl Iterator<Item = &'static str> {
    EMBEDDED
        .iter()
        .filter_map(|(path, _)| path.strip_prefix("scenarios/")?.strip_suffix(".toml"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    name: String,
    #[serde(default)]
    description: String,
    topology: String,
    start: DateTime<Utc>,
    days: f64,
    #[serde(default)]
    cadence: CadenceSpec,
    #[serde(default)]
    physics: PhysicsSpec,
    #[serde(default)]
    events: EventsConfig,
}

/// A scenario, with its topology loaded.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Scenario name.
    pub name: String,
    /// What it contains.
    pub description: String,
    /// The plant.
    pub topology: Topology,
    /// First sample time, ns since the epoch.
    pub start_ns: i64,
    /// Length, days.
    pub days: f64,
    /// Sampling periods, pinned or drawn per seed.
    pub cadence: CadenceSpec,
    /// Physics and noise, pinned or drawn per seed ([`crate::physics`]).
    pub physics: PhysicsSpec,
    /// Events to inject.
    pub events: EventsConfig,
}

impl Scenario {
    /// Loads a named scenario (`small`) or a scenario file path. A file's `topology` path is
    /// relative to the file.
    pub fn load(name_or_path: &str) -> Result<Self, SimError> {
        let embedded = format!("scenarios/{name_or_path}.toml");
        if let Some((_, text)) = EMBEDDED.iter().find(|(p, _)| *p == embedded) {
            return Self::parse(text, &embedded, |rel| {
                let joined = normalize(&Path::new("scenarios").join(rel));
                let text = EMBEDDED
                    .iter()
                    .find(|(p, _)| Path::new(p) == joined)
                    .map(|(_, t)| *t)
                    .ok_or_else(|| SimError::Scenario {
                        origin: embedded.clone(),
                        reason: format!("embedded topology {rel:?} not found"),
                    })?;
                Topology::from_toml_str(text, rel).map_err(SimError::from)
            });
        }
        let path = Path::new(name_or_path);
        if !path.is_file() {
            let names: Vec<_> = named_scenarios().collect();
            return Err(SimError::Scenario {
                origin: name_or_path.to_owned(),
                reason: format!("no such file, and not a named scenario ({})", names.join(", ")),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|e| SimError::Scenario {
            origin: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        Self::parse(&text, &path.display().to_string(), |rel| {
            Topology::from_toml_file(&dir.join(rel)).map_err(SimError::from)
        })
    }

    fn parse(
        text: &str,
        origin: &str,
        load_topology: impl FnOnce(&str) -> Result<Topology, SimError>,
    ) -> Result<Self, SimError> {
        let bad = |reason: String| SimError::Scenario {
            origin: origin.to_owned(),
            reason,
        };
        let file: ScenarioFile = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        if !(file.days.is_finite() && file.days > 0.0 && file.days <= 3660.0) {
            return Err(bad(format!("days: {} is not in (0, 3660]", file.days)));
        }
        file.cadence.check()?;
        file.physics.check()?;
        let start_ns = file
            .start
            .timestamp_nanos_opt()
            .ok_or_else(|| bad(format!("start: {} is out of range", file.start)))?;
        Ok(Self {
            name: file.name,
            description: file.description,
            topology: load_topology(&file.topology)?,
            start_ns,
            days: file.days,
            cadence: file.cadence,
            physics: file.physics,
            events: file.events,
        })
    }

    /// The scenario's time window.
    pub fn window(&self) -> Window {
        Window {
            start_ns: self.start_ns,
            end_ns: self.end_ns(),
        }
    }

    /// End of the scenario (exclusive), ns.
    pub fn end_ns(&self) -> i64 {
        self.start_ns + (self.days * time::NANOS_PER_DAY as f64) as i64
    }

    /// The physics of seed `seed`: the scenario's draws made.
    pub fn physics(&self, seed: u64) -> Physics {
        Physics::draw(&self.physics, &self.cadence, seed)
    }

    /// Sample times at `period_s` from start (inclusive) to end (exclusive).
    pub fn times(&self, period_s: u32) -> impl Iterator<Item = i64> + use<> {
        let step = i64::from(period_s) * 1_000_000_000;
        let (start, end) = (self.start_ns, self.end_ns());
        (0..).map(move |k| start + k * step).take_while(move |&t| t < end)
    }
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}
