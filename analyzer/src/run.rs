//! `cablewatch-analyzer run`: stored tables + topology + context -> findings.
//!
//! ```text
//! per table, the three at the same time on polars' thread pool:
//!   load (polars lazy scans per cable-day and direction, cable/time filters pushed down):
//!     loop-back gain per repeater | delay and path per fiber | optical aggregated per fiber and time
//!   --> detect (rayon over series)
//! --> evidence joined in table order --> fuse + explain --> findings.json, findings.parquet, summary
//! --> (unless --no-report) report::write_report --> report/index.html and the plots
//! ```

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Instant,
};

use cablewatch_proto::{
    context::Context,
    tables::{self, LATENCY, LINE_MONITORING},
    time::format_ns,
    topology::Topology,
};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{
    AnalyzerError, Result,
    detect::{self, DetectConfig, Evidence, EvidenceKind, Gap},
    error::polars_ctx,
    figures::Sources,
    fusion::{Class, Finding, FusionConfig, fuse},
    load::{Filter, has_data},
    report::{ReportInputs, ReportSummary, write_report},
    series::{load_fiber_optical, load_latency, load_series},
};

/// What to analyse.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Stored tables.
    pub data: PathBuf,
    /// Topology file.
    pub topology: PathBuf,
    /// Context records directory.
    pub context: Option<PathBuf>,
    /// Output directory.
    pub out: PathBuf,
    /// Time window.
    pub filter: Filter,
    /// Continue from the last run into `out`: analyse from its last data time minus `lookback_ns`
    /// (the baseline the detectors need), keep its findings before that time and add the new ones.
    pub resume: bool,
    /// How much already analysed data a resumed run reads again, ns.
    pub lookback_ns: i64,
    /// Also write the analysts' HTML report with its plots (`<out>/report/index.html`).
    pub report: bool,
    /// In the report, also write every plot as SVG beside its PNG (linked from the pages).
    pub svg: bool,
}

/// Default look-back of a resumed run: two weeks before the new data, the longest any detector
/// reads (a loss step's week of baseline and three days of sweeps after it; a repeater's two-week
/// ageing window), so a daily run decides what one run over everything would.
pub const DEFAULT_LOOKBACK_NS: i64 = 14 * 24 * 3_600_000_000_000;

/// The run's manifest, written next to the findings: what was analysed, for schedulers and `eval`.
pub const MANIFEST_FILE: &str = "run.json";

/// Contents of [`MANIFEST_FILE`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Analyzer version.
    pub version: String,
    /// Cables analysed.
    pub cables: Vec<String>,
    /// Window start asked for, RFC 3339 (`None`: from the first row).
    pub since: Option<String>,
    /// Window end asked for (`None`: to the last row).
    pub until: Option<String>,
    /// Rows read per table.
    pub rows: BTreeMap<String, usize>,
    /// Tables missing from the data directory.
    pub missing_tables: Vec<String>,
    /// Findings written.
    pub findings: usize,
    /// Of which suspicious and unexplained.
    pub unexplained_suspicious: usize,
    /// Reporting gaps and cable-wide silences (from the optical table).
    pub gaps: Vec<Gap>,
    /// Last sample time in the data analysed (this run's or, if it read nothing new, the previous
    /// run's), ns: where a resumed run continues.
    #[serde(default)]
    pub data_end_ns: Option<i64>,
    /// The same, RFC 3339.
    #[serde(default)]
    pub data_end: Option<String>,
    /// When resumed: the previous run's data end, from which findings are new.
    #[serde(default)]
    pub resumed_from: Option<String>,
    /// Findings new in this run (all of them when not resumed).
    #[serde(default)]
    pub new_findings: usize,
    /// Of which suspicious and unexplained: what the exit status 3 is about.
    #[serde(default)]
    pub new_unexplained_suspicious: usize,
    /// When resumed: ids of earlier findings this run, with more data, no longer makes.
    #[serde(default)]
    pub withdrawn: Vec<String>,
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Findings, in time order.
    pub findings: Vec<Finding>,
    /// Rows read per table.
    pub rows: BTreeMap<&'static str, usize>,
    /// Tables missing from the data directory (analysed without them).
    pub missing_tables: Vec<&'static str>,
    /// Wall seconds per stage (the three table stages run at the same time, so they overlap).
    pub stages: Vec<(&'static str, f64)>,
    /// Cables analysed.
    pub cables: Vec<String>,
    /// Stretches where a cable direction reported nothing while the rest of the plant did.
    pub gaps: Vec<Gap>,
    /// Per finding: new or updated in this run (all of them unless resumed).
    pub is_new: Vec<bool>,
    /// When resumed: the previous run's data end, ns.
    pub resumed_from_ns: Option<i64>,
    /// When resumed: ids of earlier findings this run no longer makes.
    pub withdrawn: Vec<String>,
    /// Last sample time analysed, ns.
    pub data_end_ns: Option<i64>,
    /// The HTML report, when one was written: its index page, findings drawn and reused.
    pub report: Option<ReportSummary>,
}

impl RunReport {
    /// Findings a scheduler should page someone for: suspicious, unexplained and new (or updated)
    /// in this run.
    pub fn unexplained_suspicious(&self) -> usize {
        self.new_findings()
            .iter()
            .filter(|f| f.class.suspicious() && !f.explained)
            .count()
    }

    /// The findings this run added or updated (all of them unless resumed).
    pub fn new_findings(&self) -> Vec<&Finding> {
        self.findings
            .iter()
            .zip(&self.is_new)
            .filter(|(_, new)| **new)
            .map(|(f, _)| f)
            .collect()
    }
}

/// How a resumed run's findings join the previous run's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Resume {
    /// The previous run's data end, ns: findings after it are new.
    end: i64,
    /// From here on this run had every detector's full context before each finding (it read
    /// [`RunOptions::lookback_ns`] before `end`, and the longest baseline a detector reads is a
    /// week), so its findings replace the previous run's, ns.
    recompute_from: i64,
}

/// Longest a resumed run reads back to take in the whole of an earlier finding that is still
/// open, ns: a repair's ten days without light and the week of baseline before it.
const MAX_REREAD_NS: i64 = 45 * 24 * 3_600_000_000_000;

/// Where a resumed run starts reading: `lookback` before the previous run's data end, or earlier
/// where a finding of that run reaching into the look-back began earlier (a repair's outage, a
/// burst days before its faint step became conclusive), with a week of baseline before it, so that
/// the finding is decided again from all of its evidence, as one run over everything decides it.
fn resume_read_from(old: &[Finding], end: i64, lookback: i64, config: &DetectConfig) -> i64 {
    let from = end.saturating_sub(lookback.max(0));
    let open = old
        .iter()
        .filter(|f| f.end_ns >= from)
        .map(|f| f.start_ns.saturating_sub(config.loss.before_ns))
        .min()
        .unwrap_or(from);
    from.min(open).max(end.saturating_sub(MAX_REREAD_NS))
}

/// Whether two findings on one fiber rest on the same observation: a piece of evidence of the same
/// kind within a few hours (a step's placement may move with more sweeps after it). An ageing
/// finding and a repair's path change overlap in time without being versions of each other.
fn shares_evidence(a: &Finding, b: &Finding) -> bool {
    const NEAR_NS: i64 = 6 * 3_600_000_000_000;
    a.evidence.iter().any(|x| {
        b.evidence.iter().any(|y| {
            x.kind == y.kind
                && ((x.start_ns - y.start_ns).abs() <= NEAR_NS
                    // A repeater's decline goes on: each run reports the first window it sees.
                    || (x.kind == EvidenceKind::Ageing && x.span == y.span))
        })
    })
}

/// Whether `a` and `b` are the same finding as far as an analyst is concerned.
fn same_verdict(a: &Finding, b: &Finding) -> bool {
    (a.class, a.explained, a.span, a.start_ns, a.evidence.len())
        == (b.class, b.explained, b.span, b.start_ns, b.evidence.len())
}

/// Joins a resumed run's findings to the previous run's. A new finding that overlaps an earlier one
/// on its fiber replaces it (keeping its id) where this run decided it with full context (it
/// reaches past `recompute_from`; the run read from a week before the start of every earlier
/// finding that did), and is then new only if its verdict changed; before that the earlier version
/// stays. A new finding overlapping none is added when it reaches where this run had full context
/// or became conclusive after the previous run's data (a faint step, an ageing window). Earlier
/// findings reaching past `recompute_from` that this run, with more data, no longer makes are
/// withdrawn: one run over everything would not make them either. Returns the findings in time
/// order, which are new, and the ids withdrawn.
fn merge_resumed(
    old: Vec<Finding>,
    new: Vec<Finding>,
    resume: Resume,
) -> (Vec<Finding>, Vec<bool>, Vec<String>) {
    let mut next_id = old
        .iter()
        .filter_map(|f| f.id.strip_prefix('F')?.parse::<usize>().ok())
        .max()
        .unwrap_or(0)
        + 1;
    // (finding, new, replaced by this run)
    let mut kept: Vec<(Finding, bool, bool)> = old.into_iter().map(|f| (f, false, false)).collect();
    for mut f in new {
        let overlapping: Vec<usize> = (0..kept.len())
            .filter(|&i| {
                let (o, _, taken) = (&kept[i].0, kept[i].1, kept[i].2);
                !taken
                    && o.cable == f.cable
                    && o.fiber_pair == f.fiber_pair
                    && o.direction == f.direction
                    && (o.span == f.span || o.span.is_none() || f.span.is_none())
                    && o.start_ns <= f.end_ns
                    && o.end_ns >= f.start_ns
                    && shares_evidence(o, &f)
            })
            .collect();
        let decided_here = f.end_ns >= resume.recompute_from;
        match overlapping.first() {
            Some(&i) if decided_here => {
                let changed = !same_verdict(&kept[i].0, &f);
                f.id = kept[i].0.id.clone();
                for &j in overlapping.iter().skip(1).rev() {
                    kept.remove(j);
                }
                kept[i] = (f, changed, true);
            }
            Some(_) => {}
            None if decided_here || f.detected_ns > resume.end || f.end_ns > resume.end => {
                f.id = format!("F{next_id:04}");
                next_id += 1;
                kept.push((f, true, true));
            }
            None => {}
        }
    }
    let mut withdrawn = Vec::new();
    kept.retain(|(f, _, taken)| {
        let keep = *taken || f.end_ns < resume.recompute_from;
        if !keep {
            withdrawn.push(f.id.clone());
        }
        keep
    });
    kept.sort_by(|(a, ..), (b, ..)| a.report_order(b));
    let (mut findings, is_new): (Vec<Finding>, Vec<bool>) = kept.into_iter().map(|(f, n, _)| (f, n)).unzip();
    crate::fusion::incidents(&mut findings);
    (findings, is_new, withdrawn)
}

/// Reads a JSON file written by `run` (or another tool, named in errors as `what`).
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| AnalyzerError::input(path, 0, format!("cannot read: {e}")))?;
    serde_json::from_str(&text).map_err(|e| AnalyzerError::input(path, e.line(), format!("not {what}: {e}")))
}

/// The file `run` writes its findings to, under `out`.
pub const FINDINGS_FILE: &str = "findings.json";

/// The previous run in `out`, if it left a manifest and findings.
fn previous_run(out: &Path) -> Result<Option<(Manifest, Vec<Finding>)>> {
    let manifest_path = out.join(MANIFEST_FILE);
    let findings_path = out.join(FINDINGS_FILE);
    if !manifest_path.exists() || !findings_path.exists() {
        return Ok(None);
    }
    Ok(Some((
        read_json(&manifest_path, "a run manifest")?,
        read_json(
            &findings_path,
            "a findings.json written by `cablewatch-analyzer run`",
        )?,
    )))
}

/// What one table's stage gives the run.
struct TableStage {
    /// Stage name, for the timings.
    name: &'static str,
    /// The table read.
    table: &'static str,
    /// Rows (optical: channel samples) read.
    rows: usize,
    /// The last sample time seen.
    data_end_ns: Option<i64>,
    /// What the detectors found.
    evidence: Vec<Evidence>,
    /// Gaps in reporting (optical only).
    gaps: Vec<Gap>,
    /// Wall time of the stage, s.
    secs: f64,
}

/// The last time of any series.
fn last_time<'a>(times: impl IntoIterator<Item = Option<&'a i64>>) -> Option<i64> {
    times.into_iter().flatten().copied().max()
}

/// Progress as the table stages report it (from any thread).
type Report<'r> = dyn Fn(Progress<'_>) + Sync + 'r;

fn partitions_of<'r>(report: &'r Report<'r>, table: &'static str) -> impl FnMut(usize, usize) + Send + 'r {
    move |done, total| report(Progress::Partitions { table, done, total })
}

fn line_monitoring_stage(
    options: &RunOptions,
    topology: &Topology,
    config: &DetectConfig,
    report: &Report<'_>,
) -> Result<TableStage> {
    report(Progress::Stage(
        "line monitoring: loading loop-back gain per repeater",
    ));
    let t = Instant::now();
    let lm = load_series(
        &options.data,
        &LINE_MONITORING,
        Some(tables::col::REPEATER),
        tables::col::LOOPBACK_GAIN_DB,
        &options.filter,
        &mut partitions_of(report, LINE_MONITORING.name),
    )?;
    report(Progress::Stage(&format!(
        "line monitoring: detecting on {} series",
        lm.len()
    )));
    Ok(TableStage {
        name: "line monitoring",
        table: LINE_MONITORING.name,
        rows: lm.iter().map(|s| s.values.len()).sum(),
        data_end_ns: last_time(lm.iter().map(|s| s.times_ns.last())),
        evidence: detect::line_monitoring(&lm, topology, &config.loss),
        gaps: Vec::new(),
        secs: t.elapsed().as_secs_f64(),
    })
}

fn latency_stage(options: &RunOptions, config: &DetectConfig, report: &Report<'_>) -> Result<TableStage> {
    report(Progress::Stage("latency: loading delay and path per fiber"));
    let t = Instant::now();
    let (lat, paths) = load_latency(
        &options.data,
        &options.filter,
        &mut partitions_of(report, LATENCY.name),
    )?;
    report(Progress::Stage(&format!(
        "latency: detecting on {} series",
        lat.len()
    )));
    let mut evidence = detect::latency(&lat, config);
    evidence.extend(detect::path_changes(&paths));
    Ok(TableStage {
        name: "latency",
        table: LATENCY.name,
        rows: lat.iter().map(|s| s.values.len()).sum(),
        data_end_ns: last_time(lat.iter().map(|s| s.times_ns.last())),
        evidence,
        gaps: Vec::new(),
        secs: t.elapsed().as_secs_f64(),
    })
}

fn optical_stage(options: &RunOptions, config: &DetectConfig, report: &Report<'_>) -> Result<TableStage> {
    report(Progress::Stage("optical: aggregating channels per fiber"));
    let t = Instant::now();
    let fibers = load_fiber_optical(
        &options.data,
        &options.filter,
        &mut partitions_of(report, tables::OPTICAL_CHANNEL.name),
    )?;
    let reported = detect::reporting_times(&fibers);
    report(Progress::Stage(&format!(
        "optical: detecting on {} fibers",
        fibers.len()
    )));
    let mut evidence = detect::optical(&fibers, &reported, config);
    let (gaps, cable_outages) = detect::silences(&fibers, &reported);
    evidence.extend(cable_outages);
    Ok(TableStage {
        name: "optical",
        table: tables::OPTICAL_CHANNEL.name,
        rows: fibers.iter().flat_map(|f| &f.channels).map(|&n| n as usize).sum(),
        data_end_ns: last_time(fibers.iter().map(|f| f.times_ns.last())),
        evidence,
        gaps,
        secs: t.elapsed().as_secs_f64(),
    })
}

/// What a run tells its caller as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress<'a> {
    /// A stage begins.
    Stage(&'a str),
    /// Partitions (cable-days) of a table read so far.
    Partitions {
        /// The table.
        table: &'static str,
        /// Read.
        done: usize,
        /// To read.
        total: usize,
    },
    /// Findings whose plots are drawn so far.
    Figures {
        /// Drawn.
        done: usize,
        /// To draw.
        total: usize,
    },
}

/// Runs the analysis; `progress` hears each stage and the partitions read.
///
/// Everything runs on polars' thread pool (`POLARS_MAX_THREADS` threads, default one per core):
/// the analyzer's parallel loops and polars' Parquet decoding then share one set of threads. With
/// rayon's global pool beside it, two pools took turns on the same cores, and polars called from
/// a thread outside its pool waited by spinning (measured in `benches/README.md`).
pub fn run(options: &RunOptions, progress: impl FnMut(Progress<'_>) + Send) -> Result<RunReport> {
    polars_core::runtime::THREAD_POOL.install(|| run_in_pool(options, progress))
}

fn run_in_pool(options: &RunOptions, mut progress: impl FnMut(Progress<'_>) + Send) -> Result<RunReport> {
    let topology = Topology::from_toml_file(&options.topology)
        .map_err(|e| AnalyzerError::input(&options.topology, 0, e))?;
    let context = match &options.context {
        Some(dir) => {
            let c = Context::load_dir(dir).map_err(|e| AnalyzerError::input(dir, 0, e))?;
            c.check_against(&topology)
                .map_err(|e| AnalyzerError::input(dir, 0, e))?;
            c
        }
        None => Context::default(),
    };
    if let Some(cable) = &options.filter.cable
        && topology.cable(cable).is_none()
    {
        return Err(AnalyzerError::input(
            &options.topology,
            0,
            format!("cable {cable:?} is not in the topology"),
        ));
    }
    let present: Vec<&'static tables::Table> = tables::ALL
        .into_iter()
        .filter(|t| has_data(&options.data, t))
        .collect();
    if present.is_empty() {
        return Err(AnalyzerError::NoData {
            dir: options.data.clone(),
            tables: tables::ALL.map(|t| t.name).join(", "),
        });
    }
    let missing_tables: Vec<&'static str> = tables::ALL
        .into_iter()
        .filter(|t| !present.iter().any(|p| p.name == t.name))
        .map(|t| t.name)
        .collect();
    let cables: Vec<String> = match &options.filter.cable {
        Some(c) => vec![c.clone()],
        None => topology.cables.iter().map(|c| c.id.to_string()).collect(),
    };
    // Resuming: read again from the previous data end minus the look-back.
    let previous = if options.resume {
        previous_run(&options.out)?
    } else {
        None
    };
    let resumed_from_ns = previous.as_ref().and_then(|(m, _)| m.data_end_ns);
    if let Some((m, _)) = &previous
        && m.cables != cables
    {
        return Err(AnalyzerError::input(
            options.out.join(MANIFEST_FILE),
            0,
            format!(
                "--resume continues a run over cables {:?}, this one is over {:?}: use the same --cable or another --out",
                m.cables, cables
            ),
        ));
    }
    let config = DetectConfig::default();
    let mut filter = options.filter.clone();
    let mut read_from_ns = None;
    if let (Some(end), Some((_, old))) = (resumed_from_ns, &previous) {
        let from = resume_read_from(old, end, options.lookback_ns, &config);
        read_from_ns = Some(from);
        filter.since_ns = Some(filter.since_ns.map_or(from, |s| s.max(from)));
        progress(Progress::Stage(&format!(
            "resuming after {} (reading from {})",
            format_ns(end),
            format_ns(from)
        )));
    }
    let asked = options.filter.clone();
    let options = &RunOptions {
        filter,
        ..options.clone()
    };
    let has = |t: &tables::Table| present.iter().any(|p| p.name == t.name);
    // The three tables' stages run at the same time on the pool: one stage's reading, which uses
    // the second core poorly, overlaps another's detection. Their outputs are joined in a fixed
    // order, so findings do not depend on which finished first.
    let shared = std::sync::Mutex::new(&mut progress);
    let report = |p: Progress<'_>| {
        let mut guard = shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        (*guard)(p)
    };
    let stage_of = |table: &tables::Table, run: &(dyn Fn() -> Result<TableStage> + Sync)| {
        if has(table) { run().map(Some) } else { Ok(None) }
    };
    let (lm, (lat, optical)) = rayon::join(
        || {
            stage_of(&LINE_MONITORING, &|| {
                line_monitoring_stage(options, &topology, &config, &report)
            })
        },
        || {
            rayon::join(
                || stage_of(&LATENCY, &|| latency_stage(options, &config, &report)),
                || {
                    stage_of(&tables::OPTICAL_CHANNEL, &|| {
                        optical_stage(options, &config, &report)
                    })
                },
            )
        },
    );
    let mut stages = Vec::new();
    let mut rows = BTreeMap::new();
    let mut evidence: Vec<Evidence> = Vec::new();
    let mut gaps: Vec<Gap> = Vec::new();
    let mut data_end_ns: Option<i64> = None;
    for out in [lm?, lat?, optical?].into_iter().flatten() {
        stages.push((out.name, out.secs));
        rows.insert(out.table, out.rows);
        evidence.extend(out.evidence);
        gaps.extend(out.gaps);
        data_end_ns = data_end_ns.max(out.data_end_ns);
    }
    progress(Progress::Stage(&format!(
        "fusing {} pieces of evidence",
        evidence.len()
    )));
    let t = Instant::now();
    let mut findings = fuse(evidence, &gaps, &topology, &context, &FusionConfig::default());
    stages.push(("fusion", t.elapsed().as_secs_f64()));
    let mut is_new = vec![true; findings.len()];
    let mut withdrawn = Vec::new();
    if let (Some(end), Some(read_from), Some((_, old))) = (resumed_from_ns, read_from_ns, previous) {
        let resume = Resume {
            end,
            recompute_from: read_from.saturating_add(config.loss.before_ns).min(end),
        };
        (findings, is_new, withdrawn) = merge_resumed(old, findings, resume);
    }
    let data_end_ns = match (data_end_ns, resumed_from_ns) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let mut report = RunReport {
        report: None,
        findings,
        rows,
        missing_tables,
        stages,
        cables,
        gaps,
        is_new,
        resumed_from_ns,
        withdrawn,
        data_end_ns,
    };
    write_outputs(&options.out, &report.findings)?;
    let manifest = Manifest {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        cables: report.cables.clone(),
        since: options.filter.since_ns.map(format_ns),
        until: options.filter.until_ns.map(format_ns),
        rows: report.rows.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        missing_tables: report.missing_tables.iter().map(|t| (*t).to_owned()).collect(),
        findings: report.findings.len(),
        unexplained_suspicious: report
            .findings
            .iter()
            .filter(|f| f.class.suspicious() && !f.explained)
            .count(),
        gaps: report.gaps.clone(),
        data_end_ns: report.data_end_ns,
        data_end: report.data_end_ns.map(format_ns),
        resumed_from: report.resumed_from_ns.map(format_ns),
        new_findings: report.new_findings().len(),
        new_unexplained_suspicious: report.unexplained_suspicious(),
        withdrawn: report.withdrawn.clone(),
    };
    write_atomic(
        &options.out.join(MANIFEST_FILE),
        serde_json::to_string_pretty(&manifest).unwrap_or_default() + "\n",
    )?;
    if options.report {
        progress(Progress::Stage(&format!(
            "drawing the report: plots of {} findings",
            report.findings.len()
        )));
        let inputs = ReportInputs {
            sources: Sources {
                data: &options.data,
                topology: &topology,
                context: &context,
                svg: options.svg,
            },
            findings: &report.findings,
            manifest: &manifest,
            filter: &asked,
        };
        let shared = std::sync::Mutex::new(&mut progress);
        let t = Instant::now();
        let summary = write_report(&options.out, inputs, |done, total| {
            let mut guard = shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            (*guard)(Progress::Figures { done, total })
        })?;
        report.stages.push(("report", t.elapsed().as_secs_f64()));
        report.report = Some(summary);
    } else if options
        .out
        .join(crate::report::REPORT_DIR)
        .join("index.html")
        .is_file()
    {
        // Kept (a daily report may sit beside frequent alert-only runs), but said to be older.
        tracing::warn!(out = %options.out.display(), "report/ is from an earlier run (--no-report)");
        progress(Progress::Stage(
            "report/ is from an earlier run and was not updated (--no-report)",
        ));
    }
    Ok(report)
}

/// Writes `text` to `path` through a temporary file in the same directory and a rename.
fn write_atomic(path: &Path, text: String) -> Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> AnalyzerError + '_ {
    move |e| AnalyzerError::input(path, 0, format!("cannot write: {e}"))
}

/// Writes `findings.json` (everything) and `findings.parquet` (one row per finding, evidence and
/// explanations as JSON text) under `out`, each through a temporary file and a rename.
pub fn write_outputs(out: &Path, findings: &[Finding]) -> Result<()> {
    std::fs::create_dir_all(out).map_err(io_err(out))?;
    let json_path = out.join(FINDINGS_FILE);
    let text = serde_json::to_string_pretty(findings).map_err(|e| AnalyzerError::input(&json_path, 0, e))?;
    write_atomic(&json_path, text + "\n")?;

    /// One column of the findings table: `value` of every finding.
    fn column<T>(name: &str, findings: &[Finding], value: impl Fn(&Finding) -> T) -> Column
    where
        Series: NamedFrom<Vec<T>, [T]>,
    {
        Column::new(name.into(), findings.iter().map(value).collect::<Vec<T>>())
    }
    let f = findings;
    let mut df = DataFrame::new(
        findings.len(),
        vec![
            column("id", f, |f| f.id.clone()),
            column("class", f, |f| f.class.name().to_owned()),
            column("incident", f, |f| f.incident.clone()),
            column("signature_class", f, |f| f.signature_class.name().to_owned()),
            column("explained", f, |f| f.explained),
            column("cable", f, |f| f.cable.clone()),
            column("fiber_pair", f, |f| f.fiber_pair),
            column("direction", f, |f| f.direction.clone()),
            column("span", f, |f| f.span),
            column("km_from", f, |f| f.km_from),
            column("km_to", f, |f| f.km_to),
            column("start_ns", f, |f| f.start_ns),
            column("end_ns", f, |f| f.end_ns),
            column("loss_db", f, |f| f.loss_db),
            column("delay_us", f, |f| f.delay_us),
            column("sop_peak_krad_s", f, |f| f.sop_peak_krad_s),
            column("confidence", f, |f| f.confidence),
            column("summary", f, |f| f.summary.clone()),
            column("evidence_json", f, |f| {
                serde_json::to_string(&f.evidence).unwrap_or_default()
            }),
            column("explanations_json", f, |f| {
                serde_json::to_string(&f.explanations).unwrap_or_default()
            }),
        ],
    )
    .map_err(polars_ctx("building the findings table"))?;
    let parquet_path = out.join("findings.parquet");
    let tmp = out.join(".findings.parquet.tmp");
    let file = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    ParquetWriter::new(file)
        .finish(&mut df)
        .map_err(polars_ctx(format!("writing {}", parquet_path.display())))?;
    std::fs::rename(&tmp, &parquet_path).map_err(io_err(&parquet_path))?;
    Ok(())
}

/// The one-screen summary.
pub fn summary(report: &RunReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let rows: Vec<String> = report.rows.iter().map(|(t, n)| format!("{t} {n}")).collect();
    let _ = writeln!(s, "read: {}", rows.join(", "));
    if !report.missing_tables.is_empty() {
        let _ = writeln!(
            s,
            "missing tables (analysed without them): {}",
            report.missing_tables.join(", ")
        );
    }
    if !report.gaps.is_empty() {
        let _ = writeln!(s, "gaps (no optical rows while the rest of the plant reported):");
        for g in report.gaps.iter().take(10) {
            let _ = writeln!(
                s,
                "  {} {} {} to {}{}: {}",
                g.cable,
                g.direction,
                g.start,
                g.end,
                if g.ongoing { " (ongoing)" } else { "" },
                g.cause
            );
        }
        if report.gaps.len() > 10 {
            let _ = writeln!(s, "  ... {} more in run.json", report.gaps.len() - 10);
        }
    }
    if let Some(from) = report.resumed_from_ns {
        let _ = writeln!(
            s,
            "resumed after {}: {} new or updated findings, {} kept from earlier runs",
            format_ns(from),
            report.new_findings().len(),
            report.findings.len() - report.new_findings().len()
        );
        if !report.withdrawn.is_empty() {
            let _ = writeln!(
                s,
                "withdrawn (no longer made with the data since): {}",
                report.withdrawn.join(", ")
            );
        }
    }
    let count = |of: &[&Finding]| {
        of.iter()
            .map(|f| f.incident.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    let all: Vec<&Finding> = report.findings.iter().collect();
    let _ = writeln!(s, "findings: {} in {} incidents", all.len(), count(&all));
    for class in Class::ALL {
        let of: Vec<&Finding> = report.findings.iter().filter(|f| f.class == class).collect();
        if of.is_empty() {
            continue;
        }
        let unexplained = of.iter().filter(|f| !f.explained).count();
        let _ = writeln!(
            s,
            "  {:<18} {:>4} in {:>3} incidents ({} unexplained)",
            class.name(),
            of.len(),
            count(&of),
            unexplained
        );
    }
    let mut top: Vec<&Finding> = report
        .new_findings()
        .into_iter()
        .filter(|f| f.class.suspicious() && !f.explained)
        .collect();
    top.sort_by(|a, b| b.confidence.total_cmp(&a.confidence).then(a.report_order(b)));
    // One line per incident: its most confident finding, and how many more it holds.
    let mut shown: Vec<(&Finding, usize)> = Vec::new();
    for f in top {
        match shown.iter_mut().find(|(g, _)| g.incident == f.incident) {
            Some((_, more)) => *more += 1,
            None => shown.push((f, 0)),
        }
    }
    if !shown.is_empty() {
        let _ = writeln!(
            s,
            "unexplained suspicious incidents{}, most confident first:",
            if report.resumed_from_ns.is_some() {
                " (new or updated)"
            } else {
                ""
            }
        );
        for (f, more) in shown.iter().take(10) {
            let also = if *more > 0 {
                format!(" (+{more} more finding{})", if *more > 1 { "s" } else { "" })
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "  {} {} {} {:.2} {}{also}",
                f.incident, f.id, f.start, f.confidence, f.summary
            );
        }
        if shown.len() > 10 {
            let _ = writeln!(s, "  ... {} more incidents in findings.json", shown.len() - 10);
        }
    }
    let stages: Vec<String> = report
        .stages
        .iter()
        .map(|(n, secs)| format!("{n} {secs:.2} s"))
        .collect();
    let _ = writeln!(s, "time: {} (the tables' stages overlap)", stages.join(", "));
    s
}
