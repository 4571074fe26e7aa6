//! How well the engine generalizes: its scores on labelled series it was, and was not, tuned on.
//!
//! ```text
//! testdata/rtt-shao/real (25 RIPE Atlas traces, by file name: even positions tuning, odd held out)
//! testdata/rtt-shao/artificial_truth (20 generated traces, held out)   --segment--> P / R / F2, margin 2
//! testdata/tcpd (22 real series, 5 annotators each; by name: even tuning, odd held out)
//! cablewatch_testdata::shapes (seeds 1-20 tuning, 500-519 held out)  --segment--> F1 / covering, margin 5
//! ```
//!
//! RTT traces are scored as their authors scored them (one-to-one pairs at most 2 samples apart,
//! medians over traces of precision, recall and F2). The real series of other kinds (economics,
//! demography, prices, a well log: the Turing change-point dataset) and the generated shapes, with
//! few changes each and some without any, are scored with the two measures of the Turing
//! change-point benchmark (van den Burg and Williams 2020), which count the start of the series as
//! a change in every set: F1 of the pairs within 5 samples (precision against every annotator's
//! changes together, recall averaged over annotators), and the covering of each annotator's
//! partition by the found one, averaged. A detector that finds nothing scores well on both when
//! changes are rare, so its figures are printed beside the engine's: anything useful must beat
//! them. Beside them too, where the folder has `binseg_default.json`: what the benchmark's own
//! default run of binary segmentation (R's changepoint, MBIC penalty, the best default in its
//! study) found on the same series, scored the same way.

use std::path::Path;

use cablewatch_testdata::shapes::{SHAPES, Shape, ShapeSeries, shapes};
use rayon::prelude::*;

use super::{Config, max_pairs, segment};
use crate::{
    Result,
    series_csv::{
        AnnotatedSeries, Evaluation, LabelledTrace, Reference, evaluate, read_annotated_dir,
        read_labelled_dir,
    },
};

/// Which part of the labelled data to score on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// What the defaults may be chosen on.
    Tuning,
    /// What the figures are reported on.
    #[value(name = "heldout")]
    HeldOut,
}

/// Shape seeds of each part.
pub fn shape_seeds(part: Part) -> std::ops::Range<u64> {
    match part {
        Part::Tuning => 1..21,
        Part::HeldOut => 500..520,
    }
}

/// The part of a labelled set that `part` names: sorted by name, even positions (0, 2, ...) tune,
/// odd ones are held out.
fn alternate<T>(mut all: Vec<T>, name: impl Fn(&T) -> &str, part: Part) -> Vec<T> {
    let keep = match part {
        Part::Tuning => 0,
        Part::HeldOut => 1,
    };
    all.sort_by(|a, b| name(a).cmp(name(b)));
    all.into_iter()
        .enumerate()
        .filter(|(i, _)| i % 2 == keep)
        .map(|(_, t)| t)
        .collect()
}

/// The real RTT traces of `part`: sorted by file name, even positions (0, 2, ...) tune, odd ones
/// are held out.
pub fn rtt_part(all: Vec<LabelledTrace>, part: Part) -> Vec<LabelledTrace> {
    alternate(all, |t| &t.name, part)
}

/// The annotated real series of `part`, split the same way.
pub fn annotated_part(all: Vec<AnnotatedSeries>, part: Part) -> Vec<AnnotatedSeries> {
    alternate(all, |s| &s.name, part)
}

/// `v` with index 0 added, sorted, without repeats.
fn with_start(v: &[usize]) -> Vec<usize> {
    let mut s: Vec<usize> = std::iter::once(0).chain(v.iter().copied()).collect();
    s.sort_unstable();
    s.dedup();
    s
}

/// F1 of found change points against true ones as the Turing benchmark computes it for one
/// annotator: both sets also hold index 0, pairs are one-to-one and at most `margin` apart
/// (the pairing with the most pairs; the benchmark pairs greedily, which can only find fewer).
pub fn f1(truth: &[usize], found: &[usize], margin: usize) -> f64 {
    f1_annotated(&[truth.to_vec()], found, margin)
}

/// F1 against several annotators, as the benchmark computes it: precision is the share of found
/// changes (start included) paired with a change of any annotator, recall the mean over annotators
/// of the share of their changes (start included) that are paired.
pub fn f1_annotated(annotations: &[Vec<usize>], found: &[usize], margin: usize) -> f64 {
    let x = with_start(found);
    let union = with_start(&annotations.concat());
    let p = max_pairs(&union, &x, margin).0 as f64 / x.len() as f64;
    let r = annotations
        .iter()
        .map(|a| {
            let t = with_start(a);
            max_pairs(&t, &x, margin).0 as f64 / t.len() as f64
        })
        .sum::<f64>()
        / annotations.len().max(1) as f64;
    if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) }
}

/// Covering of each annotator's partition of `0..n` by the found one, averaged over annotators.
pub fn covering_annotated(annotations: &[Vec<usize>], found: &[usize], n: usize) -> f64 {
    annotations.iter().map(|a| covering(a, found, n)).sum::<f64>() / annotations.len().max(1) as f64
}

/// Covering of the true partition of `0..n` (cut at `truth`) by the found one (cut at `found`):
/// each true segment's best Jaccard overlap with a found segment, weighted by its length.
pub fn covering(truth: &[usize], found: &[usize], n: usize) -> f64 {
    if n == 0 {
        return 1.0;
    }
    let parts = |cuts: &[usize]| {
        let mut b: Vec<usize> = std::iter::once(0)
            .chain(cuts.iter().copied().filter(|&c| c > 0 && c < n))
            .chain(std::iter::once(n))
            .collect();
        b.sort_unstable();
        b.dedup();
        b.windows(2).map(|w| (w[0], w[1])).collect::<Vec<_>>()
    };
    let (g, p) = (parts(truth), parts(found));
    let jaccard = |(a0, a1): (usize, usize), (b0, b1): (usize, usize)| {
        let inter = a1.min(b1).saturating_sub(a0.max(b0));
        inter as f64 / (a1.max(b1) - a0.min(b0)) as f64
    };
    g.iter()
        .map(|&a| (a.1 - a.0) as f64 * p.iter().map(|&b| jaccard(a, b)).fold(0.0, f64::max))
        .sum::<f64>()
        / n as f64
}

/// Scores of one group of shape series.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ShapeRow {
    /// The shape, or `None` for all.
    pub shape: Option<Shape>,
    /// Series in the group.
    pub series: usize,
    /// Mean F1 (margin 5).
    pub f1: f64,
    /// Mean covering.
    pub covering: f64,
    /// The same for a detector that never finds a change.
    pub zero_f1: f64,
    /// Its covering.
    pub zero_covering: f64,
    /// Series without a true change.
    pub no_change: usize,
    /// Of those, series where the engine found one.
    pub no_change_flagged: usize,
    /// Change points found in all the group's series, and true ones.
    pub found: usize,
    /// True change points.
    pub truth: usize,
}

fn shape_row(shape: Option<Shape>, scored: &[(&ShapeSeries, Vec<usize>)]) -> ShapeRow {
    let group: Vec<_> = scored
        .iter()
        .filter(|(s, _)| shape.is_none_or(|sh| s.shape == sh))
        .collect();
    let n = group.len().max(1) as f64;
    let mean =
        |f: &dyn Fn(&ShapeSeries, &[usize]) -> f64| group.iter().map(|(s, c)| f(s, c)).sum::<f64>() / n;
    ShapeRow {
        shape,
        series: group.len(),
        f1: mean(&|s, c| f1(&s.changes, c, 5)),
        covering: mean(&|s, c| covering(&s.changes, c, s.values.len())),
        zero_f1: mean(&|s, _| f1(&s.changes, &[], 5)),
        zero_covering: mean(&|s, _| covering(&s.changes, &[], s.values.len())),
        no_change: group.iter().filter(|(s, _)| s.changes.is_empty()).count(),
        no_change_flagged: group
            .iter()
            .filter(|(s, c)| s.changes.is_empty() && !c.is_empty())
            .count(),
        found: group.iter().map(|(_, c)| c.len()).sum(),
        truth: group.iter().map(|(s, _)| s.changes.len()).sum(),
    }
}

/// The engine on one annotated real series.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AnnotatedRow {
    /// Series name.
    pub name: String,
    /// Rows.
    pub samples: usize,
    /// Change points found.
    pub found: Vec<usize>,
    /// F1 (margin 5) against the annotators.
    pub f1: f64,
    /// Covering of the annotators' partitions.
    pub covering: f64,
    /// The same for a detector that never finds a change.
    pub zero_f1: f64,
    /// Its covering.
    pub zero_covering: f64,
    /// F1 of the benchmark's published default run of binary segmentation, where the folder has
    /// it (a failed run scores as reporting nothing).
    pub binseg_f1: Option<f64>,
    /// Its covering.
    pub binseg_covering: Option<f64>,
}

/// The engine on the annotated real series of a part: per series, and means over them (the
/// benchmark's summary).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AnnotatedScores {
    /// Per series, by name.
    pub series: Vec<AnnotatedRow>,
    /// Mean F1.
    pub f1: f64,
    /// Mean covering.
    pub covering: f64,
    /// Mean F1 of reporting nothing.
    pub zero_f1: f64,
    /// Its mean covering.
    pub zero_covering: f64,
    /// Mean F1 of the published binary segmentation run, when every series has one.
    pub binseg_f1: Option<f64>,
    /// Its mean covering.
    pub binseg_covering: Option<f64>,
    /// Series on which that run failed (scored as reporting nothing).
    pub binseg_failed: usize,
}

/// The change points of a published run, as the benchmark scores them: R's changepoint package
/// reports the series' last row as a change, and the benchmark's scorer drops it (with it dropped,
/// the published scores are reproduced; see the tests). A failed run is scored as no change.
fn reference_cuts(reference: &Reference, n: usize) -> Vec<usize> {
    match reference {
        Reference::Found(cuts) => cuts.iter().copied().filter(|&c| c + 1 < n).collect(),
        Reference::Failed => Vec::new(),
    }
}

/// Scores `config` on annotated series.
pub fn score_annotated(all: &[AnnotatedSeries], config: &Config) -> AnnotatedScores {
    let series: Vec<AnnotatedRow> = all
        .par_iter()
        .map(|s| {
            let found = segment(&s.values, config).change_points;
            let n = s.values.len();
            let binseg = s.reference.as_ref().map(|r| reference_cuts(r, n));
            AnnotatedRow {
                binseg_f1: binseg.as_ref().map(|c| f1_annotated(&s.annotations, c, 5)),
                binseg_covering: binseg.as_ref().map(|c| covering_annotated(&s.annotations, c, n)),
                name: s.name.clone(),
                samples: n,
                f1: f1_annotated(&s.annotations, &found, 5),
                covering: covering_annotated(&s.annotations, &found, n),
                zero_f1: f1_annotated(&s.annotations, &[], 5),
                zero_covering: covering_annotated(&s.annotations, &[], n),
                found,
            }
        })
        .collect();
    let mean = |f: fn(&AnnotatedRow) -> f64| series.iter().map(f).sum::<f64>() / series.len().max(1) as f64;
    let all_have = |f: fn(&AnnotatedRow) -> Option<f64>| {
        let v: Option<Vec<f64>> = series.iter().map(f).collect();
        v.filter(|v| !v.is_empty())
            .map(|v| v.iter().sum::<f64>() / v.len() as f64)
    };
    AnnotatedScores {
        binseg_f1: all_have(|r| r.binseg_f1),
        binseg_covering: all_have(|r| r.binseg_covering),
        binseg_failed: all
            .iter()
            .filter(|s| s.reference == Some(Reference::Failed))
            .count(),
        f1: mean(|r| r.f1),
        covering: mean(|r| r.covering),
        zero_f1: mean(|r| r.zero_f1),
        zero_covering: mean(|r| r.zero_covering),
        series,
    }
}

/// The engine on one part of every labelled set.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SuiteReport {
    /// Which part.
    pub part: Part,
    /// Real RTT traces of the part.
    pub rtt: Evaluation,
    /// Real series of other kinds, annotated by people, of the part.
    pub annotated: AnnotatedScores,
    /// The generated RTT traces with their true changes (held out only: never tuned on).
    pub artificial: Option<Evaluation>,
    /// Per shape, then all together (last row).
    pub shapes: Vec<ShapeRow>,
}

/// Scores `config` on `part`: RTT traces under `rtt_dir` (`real/`, and `artificial_truth/` for the
/// held-out part), the annotated series under `annotated_dir` and the generated shapes of the
/// part's seeds.
pub fn run_suite(rtt_dir: &Path, annotated_dir: &Path, part: Part, config: &Config) -> Result<SuiteReport> {
    let rtt = rtt_part(read_labelled_dir(&rtt_dir.join("real"))?, part);
    let rtt = evaluate(&rtt, config, 2);
    let annotated = score_annotated(&annotated_part(read_annotated_dir(annotated_dir)?, part), config);
    let artificial = match part {
        Part::Tuning => None,
        Part::HeldOut => Some(evaluate(
            &read_labelled_dir(&rtt_dir.join("artificial_truth"))?,
            config,
            2,
        )),
    };
    let series: Vec<ShapeSeries> = shape_seeds(part).into_par_iter().flat_map(shapes).collect();
    let scored: Vec<(&ShapeSeries, Vec<usize>)> = series
        .par_iter()
        .map(|s| (s, segment(&s.values, config).change_points))
        .collect();
    let shapes = SHAPES
        .iter()
        .map(|&s| Some(s))
        .chain(std::iter::once(None))
        .map(|s| shape_row(s, &scored))
        .collect();
    Ok(SuiteReport {
        part,
        rtt,
        annotated,
        artificial,
        shapes,
    })
}

/// The report as the `changepoints --suite` command prints it.
pub fn format_report(r: &SuiteReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let part = match r.part {
        Part::Tuning => "tuning",
        Part::HeldOut => "held-out",
    };
    let rtt = |s: &mut String, what: &str, e: &Evaluation| {
        let _ = writeln!(
            s,
            "{what:<34} {:>3} traces  median precision {:.3}  recall {:.3}  F2 {:.3}  (margin 2)",
            e.traces.len(),
            e.median_precision,
            e.median_recall,
            e.median_f2
        );
    };
    rtt(&mut s, &format!("RTT real, {part} half"), &r.rtt);
    if let Some(a) = &r.artificial {
        rtt(&mut s, "RTT artificial, true changes", a);
    }
    let a = &r.annotated;
    let _ = writeln!(
        s,
        "\nreal series, {part} half ({} series, 5 annotators each)   F1 {:.3}  covering {:.3}   zero: F1 {:.3}  covering {:.3}",
        a.series.len(),
        a.f1,
        a.covering,
        a.zero_f1,
        a.zero_covering
    );
    if let (Some(f1), Some(cov)) = (a.binseg_f1, a.binseg_covering) {
        let _ = writeln!(
            s,
            "  published binary segmentation (default run) on the same series: F1 {f1:.3}  covering {cov:.3}{}",
            match a.binseg_failed {
                0 => String::new(),
                k => format!("  ({k} failed, scored as reporting nothing)"),
            }
        );
    }
    let opt = |v: Option<f64>| v.map_or_else(|| "  -  ".to_owned(), |v| format!("{v:.3}"));
    for row in &a.series {
        let _ = writeln!(
            s,
            "  {:<20} {:>5} rows {:>4} found   F1 {:.3}  covering {:.3}   zero: F1 {:.3}  covering {:.3}   binseg: F1 {}  covering {}",
            row.name,
            row.samples,
            row.found.len(),
            row.f1,
            row.covering,
            row.zero_f1,
            row.zero_covering,
            opt(row.binseg_f1),
            opt(row.binseg_covering)
        );
    }
    let _ = writeln!(
        s,
        "\nshapes ({part} seeds)   series   F1  covering   zero: F1  covering   no-change series flagged   found / true"
    );
    for row in &r.shapes {
        let name = row.shape.map_or("all", Shape::name);
        let _ = writeln!(
            s,
            "{name:<20} {:>7} {:>6.3} {:>9.3} {:>10.3} {:>9.3} {:>14} of {:<8} {:>6} / {}",
            row.series,
            row.f1,
            row.covering,
            row.zero_f1,
            row.zero_covering,
            row.no_change_flagged,
            row.no_change,
            row.found,
            row.truth
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f1_and_covering_follow_the_benchmark_definitions() {
        // Truth {0, 50}, found {0, 52, 80}: one pair besides the start; P 2/3, R 1.
        assert!((f1(&[50], &[52, 80], 5) - 0.8).abs() < 1e-12);
        // Nothing found, nothing true: the start alone, perfect.
        assert_eq!(f1(&[], &[], 5), 1.0);
        // Nothing found, one true: P 1, R 1/2.
        assert!((f1(&[50], &[], 5) - 2.0 / 3.0).abs() < 1e-12);
        // Covering: truth [0,50) [50,100), found nothing: each half overlaps the whole by 1/2.
        assert!((covering(&[50], &[], 100) - 0.5).abs() < 1e-12);
        assert_eq!(covering(&[50], &[50], 100), 1.0);
        // Found [0,40) [40,100): [0,50) best 40/50, [50,100) best 50/60.
        let want = (50.0 * 0.8 + 50.0 * (50.0 / 60.0)) / 100.0;
        assert!((covering(&[50], &[40], 100) - want).abs() < 1e-12);
    }

    #[test]
    fn annotated_scores_reproduce_the_benchmark_published_ones() {
        // well_log's five annotators (testdata/tcpd/annotations.json), 675 rows, and the scores
        // TCPDBench published for it (analysis/output/summaries/summary_well_log.json).
        let annotations = vec![
            vec![179, 255, 281, 311, 343, 402, 413, 422, 432, 462, 464],
            vec![179, 255, 281, 312, 343, 402, 412, 422, 432],
            vec![179, 255, 282, 312, 343, 402, 413, 422, 432],
            vec![177, 467],
            vec![
                4, 179, 255, 281, 311, 344, 402, 412, 422, 432, 462, 464, 521, 526, 620, 643, 661,
            ],
        ];
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(f1_annotated(&annotations, &[], 5), 0.23702252693437809));
        assert!(close(
            covering_annotated(&annotations, &[], 675),
            0.22457547325102878
        ));
        assert!(close(f1_annotated(&annotations, &[460], 5), 0.27915869980879543));
        assert!(close(
            covering_annotated(&annotations, &[460], 675),
            0.4527947707232932
        ));
        assert!(close(
            covering_annotated(&annotations, &[172], 675),
            0.4607875314959281
        ));
        // The published F1 for a change at 172 (0.2868: precision 0.5, recall 0.2011) counts 172
        // as paired with 177 for recall but not for precision; 177 - 172 is exactly the margin.
        // Pairing it in both gives precision 1.
        let recall = 0.20111111111111113;
        assert!(close(
            f1_annotated(&annotations, &[172], 5),
            2.0 * recall / (1.0 + recall)
        ));
    }

    #[test]
    fn published_binary_segmentation_runs_score_as_the_benchmark_scored_them() {
        // TCPDBench's published default scores for binseg (analysis/output/scores/
        // default_{f1,cover}_scores.json of alan-turing-institute/TCPDBench), from the raw runs in
        // testdata/tcpd/binseg_default.json.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/tcpd");
        let all = read_annotated_dir(&dir).unwrap();
        let scores = score_annotated(&all, &Config::default());
        let row = |name: &str| scores.series.iter().find(|r| r.name == name).unwrap();
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-9);
        assert!(close(row("construction").binseg_f1, 0.7090909090909091));
        assert!(close(row("construction").binseg_covering, 0.4662169703155342));
        assert!(close(row("shanghai_license").binseg_f1, 0.8679245283018869));
        assert!(close(row("shanghai_license").binseg_covering, 0.9196947071511531));
        assert!(close(row("bank").binseg_f1, 0.4));
        // The run failed on the series with missing values; it scores as reporting nothing.
        let coal = row("uk_coal_employ");
        assert_eq!(coal.binseg_f1, Some(coal.zero_f1));
        assert_eq!(scores.binseg_failed, 1);
        assert!(scores.binseg_f1.is_some() && scores.binseg_covering.is_some());
    }

    #[test]
    fn rtt_halves_are_disjoint_and_cover_every_trace() {
        let trace = |name: &str| LabelledTrace {
            name: name.to_owned(),
            values: vec![],
            labels: vec![],
        };
        let all: Vec<_> = ["c", "a", "e", "b", "d"].map(trace).to_vec();
        let names = |p| {
            rtt_part(all.clone(), p)
                .into_iter()
                .map(|t| t.name)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(Part::Tuning), ["a", "c", "e"]);
        assert_eq!(names(Part::HeldOut), ["b", "d"]);
    }
}
