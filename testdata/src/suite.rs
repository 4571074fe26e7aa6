//! Evaluation suites: which scenarios and seeds are pooled for a quality figure, with the physics
//! ranges they are drawn from. `tuning` is what detectors may be tuned on; `heldout` (other seeds,
//! other and wider ranges, sweep periods never tuned on) is what figures are reported on
//! (`testdata/README.md`).
//!
//! ```toml
//! name = "heldout"
//! [cadence]                      # replaces the scenarios' keys for every run of the suite
//! line_monitoring_s = { one_of = [10800, 21600] }
//! [physics]
//! lm_noise_db = [0.02, 0.05]
//! [[run]]
//! scenario = "taps"
//! seeds = [101, 102, 103]
//! ```

use std::path::Path;

use serde::Deserialize;

use crate::{
    SimError,
    physics::{CadenceSpec, PhysicsSpec},
    scenario::Scenario,
};

/// Suites shipped inside the binary.
const EMBEDDED: &[(&str, &str)] = &[
    ("tuning", include_str!("../suites/tuning.toml")),
    ("heldout", include_str!("../suites/heldout.toml")),
];

/// One scenario of a suite and the seeds it is run with.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteRun {
    /// Named scenario or scenario file (relative to the suite file).
    pub scenario: String,
    /// Seeds.
    pub seeds: Vec<u64>,
}

/// A suite: scenarios, seeds, and the ranges their physics is drawn from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// Name.
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// Sampling periods for every run (over the scenario's).
    #[serde(default)]
    pub cadence: CadenceSpec,
    /// Physics ranges for every run (over the scenario's).
    #[serde(default)]
    pub physics: PhysicsSpec,
    /// The runs.
    #[serde(rename = "run")]
    pub runs: Vec<SuiteRun>,
    /// Directory scenario paths are relative to (none for an embedded suite).
    #[serde(skip)]
    pub dir: Option<std::path::PathBuf>,
}

/// Names of the suites shipped inside the binary.
pub fn named_suites() -> impl Iterator<Item = &'static str> {
    EMBEDDED.iter().map(|(n, _)| *n)
}

impl Suite {
    /// Loads a named suite (`heldout`) or a suite file.
    pub fn load(name_or_path: &str) -> Result<Self, SimError> {
        let bad = |reason: String| SimError::Scenario {
            origin: format!("suite {name_or_path}"),
            reason,
        };
        let (text, dir) = match EMBEDDED.iter().find(|(n, _)| *n == name_or_path) {
            Some((_, text)) => ((*text).to_owned(), None),
            None => {
                let path = Path::new(name_or_path);
                if !path.is_file() {
                    let names: Vec<_> = named_suites().collect();
                    return Err(bad(format!(
                        "no such file, and not a named suite ({})",
                        names.join(", ")
                    )));
                }
                let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
                (text, Some(path.parent().unwrap_or(Path::new(".")).to_path_buf()))
            }
        };
        let mut suite: Suite = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        suite.cadence.check()?;
        suite.physics.check()?;
        if suite.runs.iter().all(|r| r.seeds.is_empty()) {
            return Err(bad("no run with seeds".into()));
        }
        suite.dir = dir;
        Ok(suite)
    }

    /// The scenario of `run` with the suite's cadence and physics laid over it.
    pub fn scenario(&self, run: &SuiteRun) -> Result<Scenario, SimError> {
        let name = match &self.dir {
            Some(dir) if Path::new(&run.scenario).extension().is_some() => {
                dir.join(&run.scenario).to_string_lossy().into_owned()
            }
            _ => run.scenario.clone(),
        };
        let mut s = Scenario::load(&name)?;
        s.cadence.overlay(&self.cadence);
        s.physics.overlay(&self.physics);
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_suites_load_and_keep_tuning_and_heldout_seeds_apart() {
        let tuning = Suite::load("tuning").unwrap();
        let heldout = Suite::load("heldout").unwrap();
        let seeds = |s: &Suite| -> Vec<(String, u64)> {
            s.runs
                .iter()
                .flat_map(|r| r.seeds.iter().map(move |&x| (r.scenario.clone(), x)))
                .collect()
        };
        let t = seeds(&tuning);
        assert!(
            seeds(&heldout).iter().all(|h| !t.contains(h)),
            "a held-out run is also tuned on"
        );
        // The held-out sweep periods are a range never tuned on.
        let run = &heldout.runs[0];
        let s = heldout.scenario(run).unwrap();
        for seed in &run.seeds {
            let p = s.physics(*seed);
            assert!(p.cadence.line_monitoring_s >= 10_800, "{p:?}");
        }
        let s = tuning.scenario(&tuning.runs[0]).unwrap();
        assert!(s.physics(1).cadence.line_monitoring_s <= 3600);
        assert!(Suite::load("nope").unwrap_err().to_string().contains("heldout"));
    }
}
