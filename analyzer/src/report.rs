//! The analysts' review report: static HTML with the plots, written by `run` next to the findings.
//!
//! ```text
//! findings + run manifest + stored tables + topology + context
//!   --figures (one finding per task, on the run's thread pool)--> report/plots/<id>-*.png
//!   --figures (overview)--> report/plots/findings-timeline.png, report/plots/<cable>-spans.png
//!   --HTML--> report/index.html (findings by severity, overview) and report/<id>.html (per finding:
//!             facts, plots, evidence, every explanation checked)
//! ```
//!
//! The next run into the same directory keeps the plots of findings that did not change
//! (`report/plots.json`), so a daily `--resume` job draws only what is new.
//!
//! The pages have no scripts and make no requests: every image is a file beside them, the style
//! is inline, so the report opens from a disk, a USB stick or an air-gapped share.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    sync::atomic::{AtomicUsize, Ordering},
};

use cablewatch_proto::{time::format_ns, topology::Topology};
use rayon::prelude::*;

use crate::{
    figures::{self, Drawn, FigureError, Sources},
    fusion::{Class, Finding},
    load::Filter,
    run::Manifest,
};

/// What can go wrong writing the report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A figure failed.
    #[error("report figure: {0}")]
    Figure(#[from] FigureError),
    /// A page could not be written.
    #[error("{}: cannot write the report: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The report's directory under the run's output directory.
pub const REPORT_DIR: &str = "report";

/// The plots' directory under the report's.
pub const PLOTS_DIR: &str = "plots";

/// How urgent a finding is for an analyst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Suspicious (tap-like, insertion-like, reroute) and unexplained: look now.
    High,
    /// Unexplained but not an attacker's signature (equipment, other).
    Medium,
    /// Explained by a context record or a benign signature: for the record.
    Low,
}

impl Severity {
    /// The severity of `finding`.
    pub fn of(finding: &Finding) -> Self {
        match (finding.explained, finding.class.suspicious()) {
            (false, true) => Severity::High,
            (false, false) => Severity::Medium,
            (true, _) => Severity::Low,
        }
    }

    /// Lower-case name, also the CSS class.
    pub fn name(self) -> &'static str {
        match self {
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }
}

/// The findings in report order: by severity, then confidence (highest first), then time.
pub fn by_severity(findings: &[Finding]) -> Vec<&Finding> {
    let mut sorted: Vec<&Finding> = findings.iter().collect();
    sorted.sort_by(|a, b| {
        Severity::of(a)
            .cmp(&Severity::of(b))
            .then(b.confidence.total_cmp(&a.confidence))
            .then(a.report_order(b))
    });
    sorted
}

/// What the report is about.
#[derive(Debug, Clone, Copy)]
pub struct ReportInputs<'a> {
    /// Stored tables, topology and context records.
    pub sources: Sources<'a>,
    /// Every finding of the run.
    pub findings: &'a [Finding],
    /// The run's manifest.
    pub manifest: &'a Manifest,
    /// The window the run analysed.
    pub filter: &'a Filter,
}

/// What [`write_report`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSummary {
    /// The index page.
    pub index: PathBuf,
    /// Findings whose plots were drawn in this run.
    pub drawn: usize,
    /// Findings whose plots from an earlier report were kept (unchanged finding, window wholly
    /// before that report's data end, files present).
    pub reused: usize,
}

/// The plots of the last report, for the next one to reuse: `report/plots.json`.
const PLOTS_MANIFEST: &str = "plots.json";

/// Contents of [`PLOTS_MANIFEST`].
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct PlotsManifest {
    /// Analyzer version that drew them (another version redraws everything).
    version: String,
    /// Whether SVGs were written too.
    svg: bool,
    /// The data end of that run, ns.
    data_end_ns: Option<i64>,
    /// Per finding id: a fingerprint of the finding and its figures.
    findings: std::collections::BTreeMap<String, (String, Vec<Drawn>)>,
}

/// A stable fingerprint of a finding (FNV-1a over its JSON), hex.
fn fingerprint(finding: &Finding) -> String {
    let text = serde_json::to_string(finding).unwrap_or_default();
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// The last time a finding's figures read: its end plus the window, plus the days the Q figure reads
/// for the daily cycle.
fn figures_reach_ns(finding: &Finding) -> i64 {
    finding
        .end_ns
        .saturating_add(figures::WINDOW_NS)
        .saturating_add(figures::DIURNAL_CONTEXT_NS)
}

/// Writes the report under `out/report/`; `progress(done, total)` hears each finding drawn (or
/// reused).
///
/// A scheduled series of runs into one directory redraws only what changed: a finding's plots from
/// the last report are kept when the finding is the same, everything its figures read lies before
/// that report's data end, and the files are still there. Plots and pages of findings that are gone
/// are removed.
pub fn write_report(
    out: &Path,
    inputs: ReportInputs<'_>,
    progress: impl Fn(usize, usize) + Sync,
) -> Result<ReportSummary, ReportError> {
    let dir = out.join(REPORT_DIR);
    let plots = dir.join(PLOTS_DIR);
    std::fs::create_dir_all(&plots).map_err(|source| ReportError::Write {
        path: plots.clone(),
        source,
    })?;
    let version = env!("CARGO_PKG_VERSION");
    let previous: PlotsManifest = std::fs::read_to_string(dir.join(PLOTS_MANIFEST))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .filter(|m: &PlotsManifest| m.version == version && m.svg == inputs.sources.svg)
        .unwrap_or_default();
    let reusable = |f: &Finding, print: &str| -> Option<Vec<Drawn>> {
        let (old_print, drawn) = previous.findings.get(&f.id)?;
        let files_there = drawn
            .iter()
            .all(|d| plots.join(&d.file).is_file() && d.svg.as_ref().is_none_or(|s| plots.join(s).is_file()));
        (old_print == print
            && previous.data_end_ns.is_some_and(|end| figures_reach_ns(f) <= end)
            && files_there)
            .then(|| drawn.clone())
    };
    let total = inputs.findings.len();
    let done = AtomicUsize::new(0);
    let reused = AtomicUsize::new(0);
    let per_finding: Vec<(String, Vec<Drawn>)> = inputs
        .findings
        .par_iter()
        .map(|f| {
            let print = fingerprint(f);
            let drawn = match reusable(f, &print) {
                Some(drawn) => {
                    reused.fetch_add(1, Ordering::Relaxed);
                    Ok(drawn)
                }
                None => figures::finding_figures(inputs.sources, f, &plots),
            };
            progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
            drawn.map(|d| (print, d))
        })
        .collect::<Result<_, _>>()?;
    let mut overview = Vec::new();
    let range = time_range(inputs)?;
    if let Some(range) = range
        && let Some(d) = figures::findings_timeline(inputs.findings, range, &plots, inputs.sources.svg)?
    {
        overview.push(d);
    }
    let heat: Vec<Option<Drawn>> = inputs
        .manifest
        .cables
        .par_iter()
        .map(|cable| {
            figures::span_heat_map(
                inputs.sources.data,
                inputs.sources.topology,
                cable,
                inputs.filter,
                &plots,
                inputs.sources.svg,
            )
        })
        .collect::<Result<_, _>>()?;
    overview.extend(heat.into_iter().flatten());

    for (finding, (_, drawn)) in inputs.findings.iter().zip(&per_finding) {
        let path = dir.join(format!("{}.html", finding.id));
        write_page(&path, &finding_page(finding, drawn, inputs.sources.topology))?;
    }
    let index = dir.join("index.html");
    write_page(&index, &index_page(inputs, &overview, range))?;
    let manifest = PlotsManifest {
        version: version.to_owned(),
        svg: inputs.sources.svg,
        data_end_ns: inputs.manifest.data_end_ns,
        findings: inputs
            .findings
            .iter()
            .zip(per_finding)
            .map(|(f, entry)| (f.id.clone(), entry))
            .collect(),
    };
    remove_stale(&dir, &manifest, &overview);
    write_page(
        &dir.join(PLOTS_MANIFEST),
        &(serde_json::to_string_pretty(&manifest).unwrap_or_default() + "\n"),
    )?;
    let reused = reused.into_inner();
    Ok(ReportSummary {
        index,
        drawn: total - reused,
        reused,
    })
}

/// Removes the pages and plots of findings no longer in the report (a resumed run can merge or
/// drop findings). Best effort: a file that cannot be removed stays.
fn remove_stale(dir: &Path, manifest: &PlotsManifest, overview: &[Drawn]) {
    let mut keep: std::collections::BTreeSet<String> = overview
        .iter()
        .chain(manifest.findings.values().flat_map(|(_, d)| d))
        .flat_map(|d| std::iter::once(d.file.clone()).chain(d.svg.clone()))
        .collect();
    let Ok(entries) = std::fs::read_dir(dir.join(PLOTS_DIR)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !keep.contains(&name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    keep = manifest.findings.keys().map(|id| format!("{id}.html")).collect();
    keep.insert("index.html".to_owned());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".html") && !keep.contains(&name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Writes `text` to `path` through a temporary file and a rename.
fn write_page(path: &Path, html: &str) -> Result<(), ReportError> {
    let tmp = path.with_extension("html.tmp");
    std::fs::write(&tmp, html)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| ReportError::Write {
            path: path.to_owned(),
            source,
        })
}

/// The window the timeline shows: the data's first and last sample in the run's window, widened
/// to every finding.
fn time_range(inputs: ReportInputs<'_>) -> Result<Option<(i64, i64)>, ReportError> {
    let data = figures::data_range(inputs.sources.data, inputs.filter)?;
    let findings = inputs
        .findings
        .iter()
        .map(|f| (f.start_ns, f.end_ns))
        .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)));
    Ok(match (data, findings) {
        (Some(d), Some(f)) => Some((d.0.min(f.0), d.1.max(f.1))),
        (d, f) => d.or(f),
    }
    .filter(|(a, z)| z > a))
}

/// `2026-10-05 15:21`: a UTC minute, for tables.
fn short_time(t_ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(t_ns)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// Text made safe for HTML.
pub fn escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&#39;"),
            c => s.push(c),
        }
    }
    s
}

const STYLE: &str = "
body { font-family: 'DejaVu Sans', 'Segoe UI', Helvetica, Arial, sans-serif; margin: 1.5em auto;
  max-width: 1100px; padding: 0 1em; color: #1a1a1a; line-height: 1.4; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
.meta { color: #555; font-size: 0.9em; }
table { border-collapse: collapse; width: 100%; font-size: 0.88em; margin: 0.6em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.45em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; position: sticky; top: 0; }
td.nw { white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.sev { font-weight: bold; padding: 0.05em 0.4em; border-radius: 3px; }
.sev.high { background: #d55e00; color: white; }
.sev.medium { background: #e69f00; color: black; }
.sev.low { background: #e8e8e8; color: #333; }
.counts span { display: inline-block; margin: 0 1em 0.4em 0; }
.alert { background: #fbe3d6; border-left: 4px solid #d55e00; padding: 0.5em 0.8em; }
.calm { background: #e4f1f8; border-left: 4px solid #0072b2; padding: 0.5em 0.8em; }
figure { margin: 1em 0 1.6em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #333; }
.yes { color: #0072b2; font-weight: bold; } .no { color: #555; }
a { color: #0060a0; }
";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(title)
    )
}

/// The finding's size in its own units: loss, delay, SOP peak.
fn magnitude(f: &Finding) -> String {
    let mut parts = Vec::new();
    if let Some(l) = f.loss_db {
        parts.push(format!("{l:.3} dB loss"));
    }
    if let Some(d) = f.delay_us {
        parts.push(format!("{d:+.1} us delay"));
    }
    if let Some(s) = f.sop_peak_krad_s {
        parts.push(format!("SOP {s:.0} krad/s"));
    }
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(", ")
    }
}

fn place(f: &Finding) -> String {
    match (f.span, f.km_from, f.km_to) {
        (Some(s), Some(a), Some(b)) => format!("span {s} (km {a:.1}-{b:.1})"),
        (Some(s), _, _) => format!("span {s}"),
        _ => "-".to_owned(),
    }
}

/// "9 checked; supported: repair R-1" or "9 checked, none supported".
fn explanations(f: &Finding) -> String {
    let supported: Vec<String> = f
        .explanations
        .iter()
        .filter(|h| h.supported)
        .map(|h| escape(&h.hypothesis))
        .collect();
    if supported.is_empty() {
        format!("{} checked, none supported", f.explanations.len())
    } else {
        format!(
            "{} checked; supported: {}",
            f.explanations.len(),
            supported.join("; ")
        )
    }
}

fn index_page(inputs: ReportInputs<'_>, overview: &[Drawn], range: Option<(i64, i64)>) -> String {
    let m = inputs.manifest;
    let mut b = String::new();
    let _ = writeln!(b, "<h1>cablewatch review report</h1>");
    let window = range.map_or("-".to_owned(), |(a, z)| {
        format!("{} to {}", format_ns(a), format_ns(z))
    });
    let rows: Vec<String> = m.rows.iter().map(|(t, n)| format!("{t} {n}")).collect();
    let _ = writeln!(
        b,
        "<p class=\"meta\">Cables {} &middot; window {} &middot; rows read: {} &middot; analyzer {}{}</p>",
        escape(&m.cables.join(", ")),
        escape(&window),
        escape(&rows.join(", ")),
        escape(&m.version),
        if m.missing_tables.is_empty() {
            String::new()
        } else {
            format!(
                " &middot; <b>missing tables: {}</b>",
                escape(&m.missing_tables.join(", "))
            )
        }
    );
    let high = inputs
        .findings
        .iter()
        .filter(|f| Severity::of(f) == Severity::High)
        .count();
    if high > 0 {
        let _ = writeln!(
            b,
            "<p class=\"alert\"><b>{high} suspicious finding{} without a benign explanation</b> (tap-like, insertion-like or reroute), listed first below.</p>",
            if high == 1 { "" } else { "s" }
        );
    } else {
        let _ = writeln!(
            b,
            "<p class=\"calm\">No suspicious finding without a benign explanation in this window.</p>"
        );
    }
    let _ = write!(b, "<p class=\"counts\">");
    for class in Class::ALL {
        let all = inputs.findings.iter().filter(|f| f.class == class).count();
        if all > 0 {
            let open = inputs
                .findings
                .iter()
                .filter(|f| f.class == class && !f.explained)
                .count();
            let _ = write!(
                b,
                "<span><b>{}</b> {all} ({open} unexplained)</span>",
                class.name()
            );
        }
    }
    let _ = writeln!(b, "</p>");

    let _ = writeln!(
        b,
        "<h2>Findings ({}), by severity</h2>\n<table id=\"findings\">\n<thead><tr><th>severity</th><th>finding</th><th>class</th><th>cable</th><th>fiber pair</th><th>where</th><th>start (UTC)</th><th>magnitude</th><th class=\"num\">confidence</th><th>explanations</th><th>incident</th></tr></thead>\n<tbody>",
        inputs.findings.len()
    );
    for f in by_severity(inputs.findings) {
        let sev = Severity::of(f);
        let _ = writeln!(
            b,
            "<tr><td><span class=\"sev {s}\">{s}</span></td><td><a href=\"{id}.html\">{id}</a></td><td>{class}{explained}</td><td>{cable}</td><td>{fp} {dir}</td><td>{place}</td><td class=\"nw\">{start}</td><td>{mag}</td><td class=\"num\">{conf:.2}</td><td>{expl}</td><td>{incident}</td></tr>",
            s = sev.name(),
            id = escape(&f.id),
            class = f.class.name(),
            explained = if f.explained { " (explained)" } else { "" },
            cable = escape(&f.cable),
            fp = f.fiber_pair,
            dir = escape(&f.direction),
            place = escape(&place(f)),
            start = escape(&short_time(f.start_ns)),
            mag = escape(&magnitude(f)),
            conf = f.confidence,
            expl = explanations(f),
            incident = escape(&f.incident),
        );
    }
    let _ = writeln!(b, "</tbody>\n</table>");

    if !overview.is_empty() {
        let _ = writeln!(b, "<h2>Overview</h2>");
        for d in overview {
            figure(&mut b, d);
        }
    }
    if !m.gaps.is_empty() {
        let _ = writeln!(
            b,
            "<h2>Reporting gaps ({})</h2>\n<p>Stretches where a cable direction sent no optical rows while the rest of the plant did; listed in <a href=\"../run.json\">run.json</a>.</p>",
            m.gaps.len()
        );
    }
    let _ = writeln!(
        b,
        "<h2>Files</h2>\n<p><a href=\"../findings.json\">findings.json</a> (every finding with its evidence), <a href=\"../findings.parquet\">findings.parquet</a> (one row per finding), <a href=\"../run.json\">run.json</a> (what was analysed).</p>"
    );
    page("cablewatch review report", &b)
}

fn figure(b: &mut String, d: &Drawn) {
    let vector = d.svg.as_ref().map_or(String::new(), |svg| {
        format!(" <a href=\"{PLOTS_DIR}/{}\">SVG</a>", escape(svg))
    });
    let _ = writeln!(
        b,
        "<figure><img src=\"{PLOTS_DIR}/{}\" alt=\"{}\" width=\"1000\" height=\"500\"><figcaption>{}{vector}</figcaption></figure>",
        escape(&d.file),
        escape(&d.caption),
        escape(&d.caption)
    );
}

fn finding_page(f: &Finding, drawn: &[Drawn], topology: &Topology) -> String {
    let mut b = String::new();
    let sev = Severity::of(f);
    let _ = writeln!(
        b,
        "<p><a href=\"index.html\">&larr; all findings</a></p>\n<h1>{} <span class=\"sev {s}\">{s}</span> {}</h1>\n<p>{}</p>",
        escape(&f.id),
        f.class.name(),
        escape(&f.summary),
        s = sev.name()
    );
    let cable_name = topology
        .cable(&f.cable)
        .map_or(String::new(), |c| format!(" ({})", c.name));
    let facts: [(&str, String); 11] = [
        (
            "class",
            format!(
                "{} (signature alone: {})",
                f.class.name(),
                f.signature_class.name()
            ),
        ),
        ("explained", if f.explained { "yes".into() } else { "no".into() }),
        ("cable", format!("{}{cable_name}", f.cable)),
        (
            "fiber pair, direction",
            format!("{} {}", f.fiber_pair, f.direction),
        ),
        ("where", place(f)),
        ("start (UTC)", f.start.clone()),
        ("end (UTC)", f.end.clone()),
        ("magnitude", magnitude(f)),
        (
            "confidence",
            format!("{:.2} (strength of evidence, not a probability)", f.confidence),
        ),
        ("incident", f.incident.clone()),
        ("severity", sev.name().into()),
    ];
    let _ = writeln!(b, "<table class=\"facts\">");
    for (k, v) in facts {
        let _ = writeln!(b, "<tr><th>{k}</th><td>{}</td></tr>", escape(&v));
    }
    let _ = writeln!(b, "</table>");
    let _ = writeln!(b, "<h2>Plots</h2>");
    if drawn.is_empty() {
        let _ = writeln!(b, "<p>No stored rows around this finding to plot.</p>");
    }
    for d in drawn {
        figure(&mut b, d);
    }
    let _ = writeln!(
        b,
        "<h2>Explanations checked</h2>\n<table><thead><tr><th>hypothesis</th><th>supported</th><th>why</th></tr></thead><tbody>"
    );
    for h in &f.explanations {
        let _ = writeln!(
            b,
            "<tr><td>{}</td><td class=\"{c}\">{c}</td><td>{}</td></tr>",
            escape(&h.hypothesis),
            escape(&h.reason),
            c = if h.supported { "yes" } else { "no" }
        );
    }
    let _ = writeln!(b, "</tbody></table>");
    let _ = writeln!(
        b,
        "<h2>Evidence ({})</h2>\n<table><thead><tr><th>kind</th><th>fiber pair</th><th>span</th><th>start (UTC)</th><th>end (UTC)</th><th class=\"num\">magnitude</th><th class=\"num\">sigmas</th><th>detail</th></tr></thead><tbody>",
        f.evidence.len()
    );
    for e in &f.evidence {
        let kind = serde_json::to_value(e.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let _ = writeln!(
            b,
            "<tr><td>{}</td><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{:.3} {}</td><td class=\"num\">{:.1}</td><td>{}</td></tr>",
            escape(&kind),
            e.fiber_pair,
            escape(&e.direction),
            e.span.map_or("-".into(), |s| s.to_string()),
            escape(&format_ns(e.start_ns)),
            escape(&format_ns(e.end_ns)),
            e.magnitude,
            escape(&e.unit),
            e.sigmas,
            escape(&e.detail)
        );
    }
    let _ = writeln!(
        b,
        "</tbody></table>\n<p>The same finding as data: <a href=\"../findings.json\">findings.json</a>, id {}.</p>",
        escape(&f.id)
    );
    page(&format!("{} {} - cablewatch", f.id, f.class.name()), &b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">O'Neil & co</a>"),
            "&lt;a href=&quot;x&quot;&gt;O&#39;Neil &amp; co&lt;/a&gt;"
        );
    }
}
