//! Univariate series from CSV files, for the `changepoints` command and its evaluation.
//!
//! Two formats: the command's own `t,value` (a header, then one row per sample; an empty value is
//! missing; `t` is kept as text), and the labelled RTT traces of Shao et al. (`epoch;rtt;cp`, see
//! `testdata/rtt-shao/README.md`), whose `-3`/`-4` failed pings are missing values and whose `cp`
//! column marks the labelled changes. A folder of `t,value` series with an `annotations.json` of
//! several people's change points each (`testdata/tcpd/README.md`) is read by
//! [`read_annotated_dir`].

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::{
    AnalyzerError, Result,
    changepoint::{Config, Score, segment},
};

/// A series read from a `t,value` file.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvSeries {
    /// The `t` column, as written.
    pub t: Vec<String>,
    /// Values; NaN where missing.
    pub values: Vec<f64>,
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| AnalyzerError::input(path, 0, format!("cannot read: {e}")))
}

/// Reads a `t,value` CSV: header `t,value`, one sample per row, empty value = missing.
pub fn read_t_value(path: &Path) -> Result<CsvSeries> {
    let text = read_text(path)?;
    let mut lines = text.lines().enumerate();
    let header = lines
        .next()
        .map(|(_, l)| l.trim_end_matches('\r').trim())
        .unwrap_or_default();
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    if columns != ["t", "value"] {
        return Err(AnalyzerError::input(
            path,
            1,
            format!("the header must be `t,value`, found `{header}`"),
        ));
    }
    let mut out = CsvSeries {
        t: Vec::new(),
        values: Vec::new(),
    };
    for (i, line) in lines {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let Some((t, v)) = line.split_once(',') else {
            return Err(AnalyzerError::input(
                path,
                i + 1,
                format!("expected `t,value`, found `{line}`"),
            ));
        };
        let v = v.trim();
        let value = if v.is_empty() {
            f64::NAN
        } else {
            match v.parse::<f64>() {
                Ok(x) if x.is_finite() => x,
                _ => {
                    return Err(AnalyzerError::input(
                        path,
                        i + 1,
                        format!("value `{v}` is not a finite number (leave it empty if missing)"),
                    ));
                }
            }
        };
        out.t.push(t.trim().to_owned());
        out.values.push(value);
    }
    Ok(out)
}

/// One labelled RTT trace.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledTrace {
    /// File name.
    pub name: String,
    /// RTT, ms; NaN for failed pings.
    pub values: Vec<f64>,
    /// Rows where a labelled segment begins.
    pub labels: Vec<usize>,
}

/// Reads one labelled trace (`epoch;rtt;cp`, decimal comma allowed, `-3`/`-4` = failed ping).
pub fn read_labelled(path: &Path) -> Result<LabelledTrace> {
    let text = read_text(path)?;
    let mut trace = LabelledTrace {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        values: Vec::new(),
        labels: Vec::new(),
    };
    for (i, line) in text.lines().enumerate().skip(1) {
        let line = line.trim_end_matches(['\r', ';']);
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(';').collect();
        let [_, rtt, cp] = fields[..] else {
            return Err(AnalyzerError::input(
                path,
                i + 1,
                format!("expected `epoch;rtt;cp`, found `{line}`"),
            ));
        };
        let rtt: f64 = rtt
            .replace(',', ".")
            .parse()
            .map_err(|_| AnalyzerError::input(path, i + 1, format!("rtt `{rtt}` is not a number")))?;
        if cp.trim() == "1" {
            trace.labels.push(trace.values.len());
        }
        trace
            .values
            .push(if rtt == -3.0 || rtt == -4.0 { f64::NAN } else { rtt });
    }
    Ok(trace)
}

/// Every `*.csv` trace under `dir`, by file name.
pub fn read_labelled_dir(dir: &Path) -> Result<Vec<LabelledTrace>> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| AnalyzerError::input(dir, 0, format!("cannot list: {e}")))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(AnalyzerError::input(dir, 0, "no *.csv traces"));
    }
    paths.iter().map(|p| read_labelled(p)).collect()
}

/// A series whose change points several people marked.
#[derive(Debug, Clone, PartialEq)]
pub struct AnnotatedSeries {
    /// Name (the file name without `.csv`).
    pub name: String,
    /// Values; NaN where missing.
    pub values: Vec<f64>,
    /// Each annotator's change points (rows where a new segment begins), by annotator id.
    pub annotations: Vec<Vec<usize>>,
    /// What a published run of another method found on it, when `binseg_default.json` lists it.
    pub reference: Option<Reference>,
}

/// A published method's answer on one annotated series.
#[derive(Debug, Clone, PartialEq)]
pub enum Reference {
    /// The change points it reported.
    Found(Vec<usize>),
    /// It failed on the series (`null` in the file).
    Failed,
}

/// Name of the optional file beside `annotations.json` with the change points the benchmark's
/// default run of binary segmentation reported, `{"series": [row, ...] or null}`.
pub const REFERENCE_FILE: &str = "binseg_default.json";

/// Reads `dir/annotations.json` (`{"series": {"annotator": [row, ...]}}`) and, for every series it
/// names, `dir/<series>.csv` in the `t,value` format. Sorted by name.
pub fn read_annotated_dir(dir: &Path) -> Result<Vec<AnnotatedSeries>> {
    type Annotations = std::collections::BTreeMap<String, std::collections::BTreeMap<String, Vec<usize>>>;
    let path = dir.join("annotations.json");
    let annotations: Annotations = serde_json::from_str(&read_text(&path)?).map_err(|e| {
        AnalyzerError::input(&path, e.line(), format!("not series -> annotator -> rows: {e}"))
    })?;
    if annotations.is_empty() {
        return Err(AnalyzerError::input(&path, 0, "names no series"));
    }
    let reference_path = dir.join(REFERENCE_FILE);
    let mut references: std::collections::BTreeMap<String, Option<Vec<usize>>> = if reference_path.exists() {
        serde_json::from_str(&read_text(&reference_path)?).map_err(|e| {
            AnalyzerError::input(
                &reference_path,
                e.line(),
                format!("not series -> [row, ...] or null: {e}"),
            )
        })?
    } else {
        Default::default()
    };
    if let Some(name) = references.keys().find(|k| !annotations.contains_key(*k)) {
        return Err(AnalyzerError::input(
            &reference_path,
            0,
            format!("`{name}` is not in annotations.json"),
        ));
    }
    annotations
        .into_iter()
        .map(|(name, by_annotator)| {
            let csv = dir.join(format!("{name}.csv"));
            let values = read_t_value(&csv)?.values;
            let annotations: Vec<Vec<usize>> = by_annotator.into_values().collect();
            if let Some(&row) = annotations.iter().flatten().find(|&&r| r >= values.len()) {
                return Err(AnalyzerError::input(
                    &path,
                    0,
                    format!(
                        "`{name}` has a change at row {row}, past its {} rows",
                        values.len()
                    ),
                ));
            }
            let reference = references
                .remove(&name)
                .map(|r| r.map_or(Reference::Failed, Reference::Found));
            Ok(AnnotatedSeries {
                name,
                values,
                annotations,
                reference,
            })
        })
        .collect()
}

/// The engine's score on one trace.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TraceScore {
    /// File name.
    pub name: String,
    /// Samples.
    pub samples: usize,
    /// Matching result.
    pub score: Score,
    /// Precision.
    pub precision: f64,
    /// Recall.
    pub recall: f64,
    /// F2.
    pub f2: f64,
}

/// Scores per trace and their medians.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Evaluation {
    /// Per trace, in input order.
    pub traces: Vec<TraceScore>,
    /// Median precision.
    pub median_precision: f64,
    /// Median recall.
    pub median_recall: f64,
    /// Median F2.
    pub median_f2: f64,
    /// Mean F2.
    pub mean_f2: f64,
}

/// Runs the engine with `config` on every trace (in parallel) and scores it with a `margin`-sample
/// one-to-one matching.
pub fn evaluate(traces: &[LabelledTrace], config: &Config, margin: usize) -> Evaluation {
    let scored: Vec<TraceScore> = traces
        .par_iter()
        .map(|t| {
            let found = segment(&t.values, config);
            let score = Score::new(&t.labels, &found.change_points, margin);
            TraceScore {
                name: t.name.clone(),
                samples: t.values.len(),
                precision: score.precision(),
                recall: score.recall(),
                f2: score.f2(),
                score,
            }
        })
        .collect();
    let median = |f: fn(&TraceScore) -> f64| {
        let mut v: Vec<f64> = scored.iter().map(f).collect();
        crate::robust::median_in_place(&mut v).unwrap_or(f64::NAN)
    };
    Evaluation {
        median_precision: median(|t| t.precision),
        median_recall: median(|t| t.recall),
        median_f2: median(|t| t.f2),
        mean_f2: scored.iter().map(|t| t.f2).sum::<f64>() / scored.len().max(1) as f64,
        traces: scored,
    }
}
