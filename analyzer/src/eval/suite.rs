//! `eval --suite`: every scenario and seed of a suite generated (kept in a work directory and
//! reused while its truth is unchanged), analysed with `run`, and scored together.
//!
//! ```text
//! suite (testdata/suites/*.toml: scenarios, seeds, physics ranges)
//!   --per scenario and seed: the simulation planned; generated into <work>/<suite>/<scenario>-<seed>
//!     unless the truth.json there is the same (events and drawn physics)-->
//!   --run (no report) into .../out--> findings + truth --> Scored, pooled by [`super::evaluate`]
//! ```

use std::path::{Path, PathBuf};

use cablewatch_testdata::{
    events::{Truth, truth},
    generate::{Simulation, write_scenario},
    suite::Suite,
};

use super::{Scored, load};
use crate::{
    AnalyzerError, Result,
    load::Filter,
    run::{DEFAULT_LOOKBACK_NS, RunOptions, run},
};

/// What to evaluate and where to keep the generated scenarios.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    /// Named suite (`tuning`, `heldout`) or suite file.
    pub suite: String,
    /// Work directory: `<work>/<suite>/<scenario>-<seed>/` per run.
    pub work: PathBuf,
    /// Generate again even where the truth is unchanged (after a change to the simulator's
    /// physics, which the truth does not show).
    pub regenerate: bool,
}

/// One run of a suite, scored, with where it lives.
#[derive(Debug, Clone)]
pub struct SuiteRun {
    /// `scenario/seed`.
    pub label: String,
    /// Its directory.
    pub dir: PathBuf,
    /// Whether it was generated now (or reused).
    pub generated: bool,
    /// Its findings and truth.
    pub scored: Scored,
}

fn sim_error(dir: &Path) -> impl Fn(cablewatch_testdata::SimError) -> AnalyzerError + '_ {
    move |e| AnalyzerError::input(dir, 0, e)
}

/// Whether `dir` already holds `wanted`'s data: same events and physics in its truth.json.
fn up_to_date(dir: &Path, wanted: &Truth) -> bool {
    let Ok(text) = std::fs::read_to_string(dir.join("truth.json")) else {
        return false;
    };
    let stored: Option<Truth> = serde_json::from_str(&text).ok();
    stored.is_some_and(|t| t == *wanted) && dir.join("data").is_dir()
}

/// Generates (where needed), analyses and loads every run of the suite; `progress` hears a line
/// per step.
pub fn run_suite(options: &SuiteOptions, mut progress: impl FnMut(&str)) -> Result<Vec<SuiteRun>> {
    let suite = Suite::load(&options.suite).map_err(|e| AnalyzerError::input(&options.suite, 0, e))?;
    let mut out = Vec::new();
    for r in &suite.runs {
        let scenario = suite.scenario(r).map_err(sim_error(Path::new(&r.scenario)))?;
        for &seed in &r.seeds {
            let label = format!("{}/{seed}", scenario.name);
            let dir = options
                .work
                .join(&suite.name)
                .join(format!("{}-{seed}", scenario.name));
            let sim = Simulation::new(&scenario, seed).map_err(sim_error(&dir))?;
            let generated = options.regenerate || !up_to_date(&dir, &truth(&sim));
            if generated {
                progress(&format!("{label}: generating into {}", dir.display()));
                if dir.exists() {
                    std::fs::remove_dir_all(&dir)
                        .map_err(|e| AnalyzerError::input(&dir, 0, format!("cannot clear: {e}")))?;
                }
                write_scenario(&sim, &dir).map_err(sim_error(&dir))?;
            }
            progress(&format!("{label}: analysing"));
            let options = RunOptions {
                data: dir.join("data"),
                topology: dir.join("topology.toml"),
                context: Some(dir.join("context")),
                out: dir.join("out"),
                filter: Filter::default(),
                resume: false,
                lookback_ns: DEFAULT_LOOKBACK_NS,
                report: false,
                svg: false,
            };
            run(&options, |_| {})?;
            let scored = load(&options.out, &dir.join("truth.json"))?;
            out.push(SuiteRun {
                label,
                dir,
                generated,
                scored,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use cablewatch_testdata::scenario::Scenario;

    use super::*;

    /// A suite's generated data is reused while its truth is unchanged: the truth as written reads
    /// back equal to the truth drawn again (every float of it, to the last bit), so a second `eval`
    /// does not regenerate everything.
    #[test]
    fn a_written_truth_reads_back_equal_so_generated_data_is_reused() {
        let scenario = Scenario::load("month").expect("embedded scenario");
        for seed in [1, 77, 401] {
            let sim = Simulation::new(&scenario, seed).expect("simulation");
            let wanted = truth(&sim);
            let dir = tempfile::tempdir().expect("temp dir");
            std::fs::create_dir(dir.path().join("data")).expect("data dir");
            let text = serde_json::to_string_pretty(&wanted).expect("serialize");
            std::fs::write(dir.path().join("truth.json"), text + "\n").expect("write");
            assert!(
                up_to_date(dir.path(), &wanted),
                "seed {seed}: truth.json does not read back equal"
            );
        }
    }
}
