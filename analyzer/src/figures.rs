//! The figures of the analysts' report, drawn from the stored tables.
//!
//! ```text
//! finding (cable, direction, fiber pair, time) + data dir + topology + context records
//!   --polars scans of the cable's partitions in the window around the finding-->
//!     optical: Q and SOP of every channel of the fiber      --> <id>-q.png, <id>-sop.png
//!     line monitoring: gain change per covered span, all fibers --> <id>-span.png
//!     latency: delay change per probe series, path changes  --> <id>-latency.png
//!   (context records in the window shaded on every time axis)
//! run's findings + data --> findings-timeline.png; per cable: loop-back gain heat map <cable>-spans.png
//! ```
//!
//! A figure with nothing to show (no line monitoring in the window, no probes on the fiber) is
//! left out, not drawn empty; any other failure is an error naming the finding or cable.

use std::{collections::BTreeMap, path::Path};

use cablewatch_proto::{
    context::{Context, ContextRecord},
    tables::{LATENCY, LINE_MONITORING, OPTICAL_CHANNEL, Table, col as c},
    topology::Topology,
};
use polars::prelude::*;

use crate::{
    AnalyzerError,
    fusion::{Class, Finding},
    load::{Filter, has_data, scan},
    plot::{
        Band, Event, EventPlot, Figure, HeatMap, Line, Marker, PlotError, ProfilePlot, ProfileSeries,
        TimePlot, render,
    },
};

/// What can go wrong drawing figures.
#[derive(Debug, thiserror::Error)]
pub enum FigureError {
    /// Reading the stored tables failed.
    #[error(transparent)]
    Load(#[from] AnalyzerError),
    /// polars failed on the rows of a figure.
    #[error("reading the rows of {subject}: {source}")]
    Rows {
        /// The finding's id or the cable.
        subject: String,
        /// polars' error.
        source: PolarsError,
    },
    /// Drawing failed.
    #[error(transparent)]
    Plot(#[from] PlotError),
}

/// How much time before the finding's start and after its end the figures show.
pub const WINDOW_NS: i64 = 12 * 3_600_000_000_000;

/// How much more Q is read either side of the window to learn its daily cycle.
pub const DIURNAL_CONTEXT_NS: i64 = 2 * 24 * 3_600_000_000_000;

/// One figure written: its file name (in the figure directory) and a caption for the report.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Drawn {
    /// File name of the PNG, relative to the directory it was written to.
    pub file: String,
    /// File name of the same figure as SVG, when asked for.
    pub svg: Option<String>,
    /// What it shows, one sentence.
    pub caption: String,
}

/// Where the figures read from.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    /// Stored tables.
    pub data: &'a Path,
    /// The plant.
    pub topology: &'a Topology,
    /// Context records.
    pub context: &'a Context,
    /// Also write every figure as SVG beside its PNG.
    pub svg: bool,
}

/// Where a figure goes: the directory, and whether an SVG is written beside the PNG.
#[derive(Debug, Clone, Copy)]
struct Target<'a> {
    dir: &'a Path,
    svg: bool,
}

/// Median of the finite values (NaN when none).
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    crate::robust::median_in_place(&mut v).unwrap_or(f64::NAN)
}

/// Writes `figure` to `<dir>/<file>` (a PNG) and, when asked, the same as SVG beside it; `Ok(None)`
/// when it has nothing to show.
fn write(
    figure: &impl Figure,
    to: Target<'_>,
    file: String,
    caption: String,
) -> Result<Option<Drawn>, FigureError> {
    match render(figure, &to.dir.join(&file)) {
        Ok(()) => {}
        Err(PlotError::Empty { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let svg = if to.svg {
        let name = Path::new(&file)
            .with_extension("svg")
            .to_string_lossy()
            .into_owned();
        render(figure, &to.dir.join(&name))?;
        Some(name)
    } else {
        None
    };
    Ok(Some(Drawn { file, svg, caption }))
}

/// `v` with a sign and `decimals` decimals, and no "-0.000".
fn signed(v: f64, decimals: usize) -> String {
    let text = format!("{v:+.decimals$}");
    if text[1..].chars().all(|c| c == '0' || c == '.') {
        text[1..].to_owned()
    } else {
        text
    }
}

/// A series in time: sample times and values.
type TimeSeries = (Vec<i64>, Vec<f64>);

/// Subtracts from each series its median before `before_ns` (channels sit at different levels,
/// probe series at different delays; a change shows once they share a zero).
fn as_change(series: &mut BTreeMap<impl Ord, TimeSeries>, before_ns: i64) {
    for (t, v) in series.values_mut() {
        let level = median(
            t.iter()
                .zip(v.iter())
                .filter(|(t, _)| **t < before_ns)
                .map(|(_, v)| *v),
        );
        v.iter_mut().for_each(|x| *x -= level);
    }
}

/// The median over series per time.
fn median_per_time(series: &BTreeMap<impl Ord, TimeSeries>) -> TimeSeries {
    let mut at: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for (t, v) in series.values() {
        for (&t, &v) in t.iter().zip(v) {
            at.entry(t).or_default().push(v);
        }
    }
    let times: Vec<i64> = at.keys().copied().collect();
    let values = at.into_values().map(|v| median(v.into_iter())).collect();
    (times, values)
}

/// The context records that touch `cable` (and, when given, fiber pair) between `from` and `to`,
/// as shaded bands.
pub fn context_bands(
    context: &Context,
    cable: &str,
    fiber_pair: Option<u32>,
    from_ns: i64,
    to_ns: i64,
) -> Vec<Band> {
    let pair_ok = |pairs: &[u32]| pairs.is_empty() || fiber_pair.is_none_or(|p| pairs.contains(&p));
    context
        .records
        .iter()
        .filter_map(|r| {
            let (start, end) = r.time_range();
            let (start_ns, end_ns) = (start.timestamp_nanos_opt()?, end.timestamp_nanos_opt()?);
            if end_ns < from_ns || start_ns > to_ns {
                return None;
            }
            let label = match r {
                ContextRecord::Maintenance(m) if m.cable.as_str() == cable && pair_ok(&m.fiber_pairs) => {
                    format!("maintenance {}", m.id)
                }
                ContextRecord::Repair(m) if m.cable.as_str() == cable && pair_ok(&m.fiber_pairs) => {
                    format!("repair {} at {:.0} km", m.id, m.fault_km)
                }
                ContextRecord::Seismic(s) if s.cables.iter().any(|c| c.as_str() == cable) => {
                    format!("earthquake M{:.1} {}", s.magnitude, s.id)
                }
                ContextRecord::Vessel(v) if v.cable.as_str() == cable => {
                    format!("{} over km {:.0}-{:.0}", v.vessel_type, v.km_from, v.km_to)
                }
                _ => return None,
            };
            Some(Band {
                start_ns,
                end_ns,
                label,
            })
        })
        .collect()
}

/// Every figure of one finding, written into `dir` as `<id>-<kind>.png`, in report order: Q, span
/// view, SOP, latency. Figures with nothing to show are left out.
pub fn finding_figures(
    sources: Sources<'_>,
    finding: &Finding,
    dir: &Path,
) -> Result<Vec<Drawn>, FigureError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| AnalyzerError::input(dir, 0, format!("cannot create the plot directory: {e}")))?;
    let window = Filter {
        cable: Some(finding.cable.clone()),
        since_ns: Some(finding.start_ns - WINDOW_NS),
        until_ns: Some(finding.end_ns + WINDOW_NS),
    };
    let bands = context_bands(
        sources.context,
        &finding.cable,
        Some(finding.fiber_pair),
        finding.start_ns - WINDOW_NS,
        finding.end_ns + WINDOW_NS,
    );
    let mut drawn = Vec::new();
    let dir = Target {
        dir,
        svg: sources.svg,
    };
    drawn.extend(optical(sources, finding, &window, &bands, dir)?);
    // The span view goes second: after the signals, where on the cable.
    if let Some(d) = span_view(sources, finding, &window, dir)? {
        drawn.insert(drawn.len().min(1), d);
    }
    drawn.extend(latency(sources, finding, &window, &bands, dir)?);
    Ok(drawn)
}

/// A scan of `table`, or `None` when the data directory has none of it (that figure is left out).
fn table_scan(data: &Path, table: &'static Table, filter: &Filter) -> Result<Option<LazyFrame>, FigureError> {
    match scan(data, table, filter) {
        Ok(lf) => Ok(Some(lf)),
        Err(AnalyzerError::MissingTable { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn rows_error(subject: &str) -> impl Fn(PolarsError) -> FigureError + '_ {
    move |e| FigureError::Rows {
        subject: subject.to_owned(),
        source: e,
    }
}

fn fiber_of(finding: &Finding) -> Expr {
    col(c::DIRECTION)
        .eq(lit(finding.direction.as_str()))
        .and(col(c::FIBER_PAIR).eq(lit(finding.fiber_pair)))
}

fn fiber_title(finding: &Finding) -> String {
    format!(
        "{} {} fiber pair {} {}",
        finding.id, finding.cable, finding.fiber_pair, finding.direction
    )
}

/// Q and SOP of every channel of the finding's fiber.
fn optical(
    sources: Sources<'_>,
    finding: &Finding,
    window: &Filter,
    bands: &[Band],
    dir: Target<'_>,
) -> Result<Vec<Drawn>, FigureError> {
    let rows = rows_error(&finding.id);
    // Q is read over days more than shown, to learn its daily cycle (see `channel_q`).
    let wide = Filter {
        since_ns: window.since_ns.map(|t| t - DIURNAL_CONTEXT_NS),
        until_ns: window.until_ns.map(|t| t + DIURNAL_CONTEXT_NS),
        ..window.clone()
    };
    let shown = |t: i64| window.since_ns.is_none_or(|s| t >= s) && window.until_ns.is_none_or(|u| t < u);
    let Some(lf) = table_scan(sources.data, &OPTICAL_CHANNEL, &wide)? else {
        return Ok(Vec::new());
    };
    let df = lf
        .filter(fiber_of(finding))
        .select([
            col(c::CHANNEL),
            col(c::TIME).cast(DataType::Int64).alias("t"),
            col(c::Q_DB_AVG).cast(DataType::Float64).alias("q"),
            col(c::SOP_ROC_KRAD_S_MAX).cast(DataType::Float64).alias("sop"),
        ])
        .sort(["t", c::CHANNEL], Default::default())
        .collect()
        .map_err(&rows)?;
    let channel = df.column(c::CHANNEL).and_then(|s| s.u32()).map_err(&rows)?;
    let t = df.column("t").and_then(|s| s.i64()).map_err(&rows)?;
    let q = df.column("q").and_then(|s| s.f64()).map_err(&rows)?;
    let sop = df.column("sop").and_then(|s| s.f64()).map_err(&rows)?;
    let mut q_of: BTreeMap<u32, TimeSeries> = BTreeMap::new();
    let mut sop_of: BTreeMap<u32, TimeSeries> = BTreeMap::new();
    for (((ch, t), q), s) in channel.iter().zip(t.iter()).zip(q.iter()).zip(sop.iter()) {
        let (Some(ch), Some(t)) = (ch, t) else { continue };
        let e = q_of.entry(ch).or_default();
        e.0.push(t);
        e.1.push(q.unwrap_or(f64::NAN));
        if shown(t) {
            let e = sop_of.entry(ch).or_default();
            e.0.push(t);
            e.1.push(s.unwrap_or(f64::NAN));
        }
    }
    // The other fibers of the cable: their SOP activity, median over channels and then over
    // fibers per time. An earthquake or a storm moves them all; a hand on one fiber only that one.
    let others = scan(sources.data, &OPTICAL_CHANNEL, window)?
        .filter(fiber_of(finding).not())
        .group_by([
            col(c::FIBER_PAIR),
            col(c::DIRECTION),
            col(c::TIME).cast(DataType::Int64).alias("t"),
        ])
        .agg([col(c::SOP_ROC_KRAD_S_MAX)
            .cast(DataType::Float64)
            .median()
            .alias("sop")])
        .group_by([col("t")])
        .agg([col("sop").median()])
        .sort(["t"], Default::default())
        .collect()
        .map_err(&rows)?;
    let other_sop: TimeSeries = (
        others
            .column("t")
            .and_then(|s| s.i64())
            .map_err(&rows)?
            .into_no_null_iter()
            .collect(),
        others
            .column("sop")
            .and_then(|s| s.f64())
            .map_err(&rows)?
            .iter()
            .map(|v| v.unwrap_or(f64::NAN))
            .collect(),
    );
    let mut drawn = Vec::new();
    if let Some(d) = channel_q(finding, q_of, &shown, bands, dir)? {
        drawn.push(d);
    }
    if let Some(d) = channel_sop(finding, &sop_of, &other_sop, bands, dir)? {
        drawn.push(d);
    }
    Ok(drawn)
}

/// Faint lines, one per series, the first labelled.
fn faint_lines<'a>(series: &'a BTreeMap<u32, TimeSeries>, what: &str) -> Vec<Line<'a>> {
    series
        .values()
        .enumerate()
        .map(|(i, (t, v))| Line {
            label: if i == 0 {
                format!("each of {} {what}", series.len())
            } else {
                String::new()
            },
            faint: true,
            times_ns: t,
            values: v,
        })
        .collect()
}

/// Q of every channel as its change from its own median before the finding, thin and grey, under
/// their median per time in black, with the median's level before and after drawn as lines.
///
/// Q follows the shore ends' temperature through the day by more than a tap's few thousandths of a
/// dB, so the daily cycle of the median (learnt from [`DIURNAL_CONTEXT_NS`] either side, as the Q
/// step detector does) is taken out of every line; then `shown` cuts the lines to the window.
fn channel_q(
    finding: &Finding,
    mut q_of: BTreeMap<u32, TimeSeries>,
    shown: &dyn Fn(i64) -> bool,
    bands: &[Band],
    dir: Target<'_>,
) -> Result<Option<Drawn>, FigureError> {
    as_change(&mut q_of, finding.start_ns);
    let (all_times, raw) = median_per_time(&q_of);
    let cycle: BTreeMap<i64, f64> = match crate::robust::without_diurnal(&all_times, &raw) {
        Some(flat) => all_times
            .iter()
            .zip(raw.iter().zip(&flat))
            .map(|(&t, (r, f))| (t, if (r - f).is_finite() { r - f } else { 0.0 }))
            .collect(),
        None => BTreeMap::new(),
    };
    let deseasoned = !cycle.is_empty();
    for (t, v) in q_of.values_mut() {
        for (x, t) in v.iter_mut().zip(t.iter()) {
            *x -= cycle.get(t).copied().unwrap_or(0.0);
        }
        let (kept_t, kept_v): (Vec<i64>, Vec<f64>) = t
            .iter()
            .zip(v.iter())
            .filter(|(t, _)| shown(**t))
            .map(|(&t, &v)| (t, v))
            .unzip();
        (*t, *v) = (kept_t, kept_v);
    }
    q_of.retain(|_, (t, _)| !t.is_empty());
    // Levels from the window's own rows, with the cycle out.
    as_change(&mut q_of, finding.start_ns);
    let (times, medians) = median_per_time(&q_of);
    let level = |keep: &dyn Fn(i64) -> bool| {
        median(
            times
                .iter()
                .zip(&medians)
                .filter(|(t, _)| keep(**t))
                .map(|(_, &q)| q),
        )
    };
    let before = level(&|t| t < finding.start_ns);
    let after = level(&|t| t > finding.end_ns);
    let first = times.first().copied().unwrap_or(finding.start_ns);
    let last = times.last().copied().unwrap_or(finding.end_ns);
    let before_line = ([first, finding.start_ns], [before, before]);
    let after_line = ([finding.end_ns, last], [after, after]);
    let mut lines = faint_lines(&q_of, "channels");
    lines.push(Line {
        label: "median over channels".into(),
        faint: false,
        times_ns: &times,
        values: &medians,
    });
    lines.push(Line {
        label: format!("level before {} dB", signed(before, 3)),
        faint: false,
        times_ns: &before_line.0,
        values: &before_line.1,
    });
    lines.push(Line {
        label: format!("level after {} dB", signed(after, 3)),
        faint: false,
        times_ns: &after_line.0,
        values: &after_line.1,
    });
    let change = after - before;
    let plot = TimePlot {
        title: format!("{}: Q change per channel", fiber_title(finding)),
        y_label: "Q change from the level before (dB)".into(),
        lines,
        markers: vec![Marker {
            time_ns: finding.start_ns,
            label: if change.is_finite() {
                format!(" {}: median Q {} dB", finding.class.name(), signed(change, 3))
            } else {
                format!(" {} starts", finding.class.name())
            },
        }],
        bands: bands.to_vec(),
    };
    let cycle_note = if deseasoned {
        " The daily cycle of Q (shore-end temperature), learnt from the days around, is taken out."
    } else {
        " (Too few days around to take out the daily cycle.)"
    };
    let caption = if change.is_finite() {
        format!(
            "Q of every channel of the fiber, as its change from its level before the finding; the median over channels moved by {} dB. A careful tap costs Q only thousandths of a dB: the span view shows it better.{cycle_note}",
            signed(change, 3)
        )
    } else {
        format!(
            "Q of every channel of the fiber, as its change from its level before the finding (no rows after it).{cycle_note}"
        )
    };
    write(&plot, dir, format!("{}-q.png", finding.id), caption)
}

/// SOP activity of every channel, grey, under its median over channels.
fn channel_sop(
    finding: &Finding,
    sop_of: &BTreeMap<u32, TimeSeries>,
    others: &TimeSeries,
    bands: &[Band],
    dir: Target<'_>,
) -> Result<Option<Drawn>, FigureError> {
    let (times, medians) = median_per_time(sop_of);
    if !medians.iter().any(|v| v.is_finite()) {
        // Nothing of this fiber; the other fibers alone would mislead.
        return Ok(None);
    }
    let baseline = median(
        times
            .iter()
            .zip(&medians)
            .filter(|(t, _)| **t < finding.start_ns)
            .map(|(_, &v)| v),
    );
    let peak = times
        .iter()
        .zip(&medians)
        .filter(|(t, _)| (finding.start_ns..=finding.end_ns.max(finding.start_ns)).contains(t))
        .map(|(_, &v)| v)
        .fold(f64::NAN, f64::max);
    let mut lines = faint_lines(sop_of, "channels");
    lines.push(Line {
        label: "median over channels".into(),
        faint: false,
        times_ns: &times,
        values: &medians,
    });
    if !others.0.is_empty() {
        lines.push(Line {
            label: "the cable's other fibers (median)".into(),
            faint: false,
            times_ns: &others.0,
            values: &others.1,
        });
    }
    let plot = TimePlot {
        title: format!("{}: polarization (SOP) activity", fiber_title(finding)),
        y_label: "SOP rate of change, max per bin (krad/s)".into(),
        lines,
        markers: vec![Marker {
            time_ns: finding.start_ns,
            label: if peak.is_finite() {
                format!(" peak {peak:.1} krad/s (baseline {baseline:.2})")
            } else {
                " finding starts".to_owned()
            },
        }],
        bands: bands.to_vec(),
    };
    let caption = format!(
        "Fastest state-of-polarization change per bin on each channel of the fiber (grey) and their median (black); in orange the median over the cable's other fiber pairs and directions. A fiber being handled bursts alone; an earthquake or storm moves every fiber. Median baseline before: {baseline:.2} krad/s."
    );
    write(&plot, dir, format!("{}-sop.png", finding.id), caption)
}

/// Loop-back gain change per span (each repeater at the span it measures) (median after the finding minus median before), the
/// finding's fiber in colour over every other fiber pair and direction in grey, with the flagged
/// span shaded and its km range named.
fn span_view(
    sources: Sources<'_>,
    finding: &Finding,
    window: &Filter,
    dir: Target<'_>,
) -> Result<Option<Drawn>, FigureError> {
    let Some(cable) = sources.topology.cable(&finding.cable) else {
        return Ok(None);
    };
    let rows = rows_error(&finding.id);
    let t = || col(c::TIME).cast(DataType::Int64);
    // Each sweep's common calibration offset (the median over the fiber's repeaters in that
    // sweep) taken out, as the detector does: what is left is what each span did.
    let raw = || col(c::LOOPBACK_GAIN_DB).cast(DataType::Float64);
    let gain = || col("gain");
    let Some(lf) = table_scan(sources.data, &LINE_MONITORING, window)? else {
        return Ok(None);
    };
    let sweep_median = raw()
        .median()
        .over([col(c::FIBER_PAIR), col(c::DIRECTION), col(c::SWEEP_ID)])
        .map_err(&rows)?;
    let df = lf
        .with_column((raw() - sweep_median).alias("gain"))
        .group_by([col(c::FIBER_PAIR), col(c::DIRECTION), col(c::REPEATER)])
        .agg([
            gain()
                .filter(t().lt(lit(finding.start_ns)))
                .median()
                .alias("before"),
            gain().filter(t().gt(lit(finding.end_ns))).median().alias("after"),
        ])
        .sort([c::FIBER_PAIR, c::DIRECTION, c::REPEATER], Default::default())
        .collect()
        .map_err(&rows)?;
    let fp = df.column(c::FIBER_PAIR).and_then(|s| s.u32()).map_err(&rows)?;
    let direction = df.column(c::DIRECTION).and_then(|s| s.str()).map_err(&rows)?;
    let repeater = df.column(c::REPEATER).and_then(|s| s.u32()).map_err(&rows)?;
    let before = df.column("before").and_then(|s| s.f64()).map_err(&rows)?;
    let after = df.column("after").and_then(|s| s.f64()).map_err(&rows)?;
    let spans = cable.spans();
    let (mut own, mut others) = (Vec::new(), Vec::new());
    for i in 0..df.height() {
        let (Some(fp), Some(d), Some(r)) = (fp.get(i), direction.get(i), repeater.get(i)) else {
            continue;
        };
        // Placed at the middle of the span this direction's repeater measures, so both directions
        // of a fiber pair line up on the same spans.
        let Some(km) = cable
            .span_covered_by(d, r)
            .and_then(|span| spans.get(span as usize - 1))
            .map(|s| (s.start_km + s.end_km) / 2.0)
        else {
            continue;
        };
        let change = after.get(i).unwrap_or(f64::NAN) - before.get(i).unwrap_or(f64::NAN);
        if fp == finding.fiber_pair && d == finding.direction {
            own.push((km, change));
        } else {
            others.push((km, change));
        }
    }
    if !own.iter().any(|(_, v)| v.is_finite()) {
        return Ok(None);
    }
    let highlight = match (finding.span, finding.km_from, finding.km_to) {
        (Some(span), Some(from), Some(to)) => Some((from, to, format!("span {span}: km {from:.1}-{to:.1}"))),
        _ => None,
    };
    let largest = own
        .iter()
        .filter(|(_, v)| v.is_finite())
        .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
        .copied();
    let plot = ProfilePlot {
        title: format!("{}: loop-back gain change per span", fiber_title(finding)),
        y_label: "gain after - before (dB)".into(),
        length_km: cable.length_km,
        series: vec![
            ProfileSeries {
                label: "other fiber pairs and directions".into(),
                faint: true,
                points: others,
            },
            ProfileSeries {
                label: format!("fiber pair {} {}", finding.fiber_pair, finding.direction),
                faint: false,
                points: own,
            },
        ],
        highlight,
    };
    let located = match (finding.span, finding.km_from, finding.km_to) {
        (Some(span), Some(from), Some(to)) => {
            format!("The finding is in span {span} (km {from:.1} to {to:.1}), shaded.")
        }
        _ => "Line monitoring did not place the finding in a span.".to_owned(),
    };
    let largest = largest.map_or(String::new(), |(km, v)| {
        format!(" The largest change on this fiber is {v:+.3} dB at km {km:.0}.")
    });
    let caption = format!(
        "Median loop-back gain after the finding minus before, per span along the cable (each repeater drawn at the middle of the span its loop-back measures in its direction, each sweep's common calibration offset taken out); this fiber in colour, every other fiber pair and direction in grey. {located}{largest}"
    );
    write(&plot, dir, format!("{}-span.png", finding.id), caption)
}

/// Delay of every probe series on the fiber as its change from its level before, with path changes
/// marked.
fn latency(
    sources: Sources<'_>,
    finding: &Finding,
    window: &Filter,
    bands: &[Band],
    dir: Target<'_>,
) -> Result<Option<Drawn>, FigureError> {
    let rows = rows_error(&finding.id);
    let Some(lf) = table_scan(sources.data, &LATENCY, window)? else {
        return Ok(None);
    };
    let df = lf
        .filter(fiber_of(finding))
        .select([
            col(c::SRC_STATION),
            col(c::DST_STATION),
            col(c::KIND),
            col(c::TIME).cast(DataType::Int64).alias("t"),
            col(c::DELAY_US),
            col(c::PATH_ID),
        ])
        .sort([c::SRC_STATION, c::DST_STATION, c::KIND, "t"], Default::default())
        .collect()
        .map_err(&rows)?;
    let src = df.column(c::SRC_STATION).and_then(|s| s.str()).map_err(&rows)?;
    let dst = df.column(c::DST_STATION).and_then(|s| s.str()).map_err(&rows)?;
    let kind = df.column(c::KIND).and_then(|s| s.str()).map_err(&rows)?;
    let t = df.column("t").and_then(|s| s.i64()).map_err(&rows)?;
    let delay = df.column(c::DELAY_US).and_then(|s| s.f64()).map_err(&rows)?;
    let path = df.column(c::PATH_ID).and_then(|s| s.str()).map_err(&rows)?;
    let mut names: Vec<String> = Vec::new();
    let mut series: BTreeMap<u32, TimeSeries> = BTreeMap::new();
    let mut markers: Vec<Marker> = Vec::new();
    let mut last: Option<(String, Option<&str>)> = None;
    for i in 0..df.height() {
        let (Some(s), Some(d), Some(k), Some(t)) = (src.get(i), dst.get(i), kind.get(i), t.get(i)) else {
            continue;
        };
        let name = format!("{s} to {d} ({})", k.replace('_', "-"));
        if names.last() != Some(&name) {
            names.push(name.clone());
        }
        let key = u32::try_from(names.len() - 1).unwrap_or(u32::MAX);
        let e = series.entry(key).or_default();
        e.0.push(t);
        e.1.push(delay.get(i).unwrap_or(f64::NAN));
        let p = path.get(i);
        if let Some((last_name, last_path)) = &last
            && *last_name == name
            && *last_path != p
            && markers.len() < 4
        {
            markers.push(Marker {
                time_ns: t,
                label: format!(" path {} -> {}", last_path.unwrap_or("?"), p.unwrap_or("?")),
            });
        }
        last = Some((name, p));
    }
    if series.is_empty() {
        return Ok(None);
    }
    as_change(&mut series, finding.start_ns);
    let shift = finding.delay_us;
    // Every probe faint; per series its median per bin in colour, so a shift of a few microseconds
    // shows under the probes' queueing noise.
    let smooth: BTreeMap<u32, TimeSeries> = series
        .iter()
        .map(|(k, (t, v))| (*k, bin_medians(t, v, LATENCY_BIN_NS)))
        .collect();
    let mut lines: Vec<Line<'_>> = series
        .values()
        .enumerate()
        .map(|(i, (t, v))| Line {
            label: if i == 0 {
                "each probe".into()
            } else {
                String::new()
            },
            faint: true,
            times_ns: t,
            values: v,
        })
        .collect();
    lines.extend(smooth.iter().map(|(k, (t, v))| Line {
        label: format!(
            "{}, 15-min median",
            names.get(*k as usize).map_or("", String::as_str)
        ),
        faint: false,
        times_ns: t,
        values: v,
    }));
    if markers.is_empty() {
        markers.push(Marker {
            time_ns: finding.start_ns,
            label: shift.map_or_else(
                || " no delay shift in the finding".to_owned(),
                |d| format!(" delay {d:+.1} us"),
            ),
        });
    }
    let plot = TimePlot {
        title: format!("{}: delay and path", fiber_title(finding)),
        y_label: "delay change from the level before (us)".into(),
        lines,
        markers,
        bands: bands.to_vec(),
    };
    let caption = format!(
        "Probe delay on the fiber, each probe series as its change from its level before the finding; dashed lines mark path changes{}.",
        shift.map_or(String::new(), |d| format!(
            "; the finding's delay shift is {d:+.1} us"
        ))
    );
    write(&plot, dir, format!("{}-latency.png", finding.id), caption)
}

/// Bin of the latency figure's median lines, ns.
const LATENCY_BIN_NS: i64 = 15 * 60_000_000_000;

/// The median of the values in each `bin_ns` bin that has any, at the bin's middle.
fn bin_medians(times: &[i64], values: &[f64], bin_ns: i64) -> TimeSeries {
    let mut bins: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for (&t, &v) in times.iter().zip(values) {
        bins.entry(t.div_euclid(bin_ns)).or_default().push(v);
    }
    bins.into_iter()
        .map(|(b, v)| (b * bin_ns + bin_ns / 2, median(v.into_iter())))
        .unzip()
}

/// The findings of a run on one time axis, one row per class; filled marks are unexplained.
pub fn findings_timeline(
    findings: &[Finding],
    range_ns: (i64, i64),
    dir: &Path,
    svg: bool,
) -> Result<Option<Drawn>, FigureError> {
    let rows: Vec<String> = Class::ALL.iter().map(|c| c.name().to_owned()).collect();
    let events = findings
        .iter()
        .map(|f| Event {
            time_ns: f.start_ns,
            row: Class::ALL.iter().position(|c| *c == f.class).unwrap_or(0),
            filled: !f.explained,
        })
        .collect();
    let plot = EventPlot {
        title: format!("All {} findings by class", findings.len()),
        rows,
        events,
        filled_means: "unexplained".into(),
        hollow_means: "explained (benign)".into(),
        range_ns,
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| AnalyzerError::input(dir, 0, format!("cannot create the plot directory: {e}")))?;
    write(
        &plot,
        Target { dir, svg },
        "findings-timeline.png".into(),
        "Every finding at its start time, one row per class; filled marks are unexplained, hollow ones have a benign explanation.".into(),
    )
}

/// First and last sample time under `data` in `filter`, from the smallest table present (line
/// monitoring, else latency, else optical), ns.
pub fn data_range(data: &Path, filter: &Filter) -> Result<Option<(i64, i64)>, FigureError> {
    let Some(table) = [&LINE_MONITORING, &LATENCY, &OPTICAL_CHANNEL]
        .into_iter()
        .find(|t| has_data(data, t))
    else {
        return Ok(None);
    };
    let rows = rows_error("the data window");
    let t = || col(c::TIME).cast(DataType::Int64);
    let range = scan(data, table, filter)?
        .select([t().min().alias("t0"), t().max().alias("t1")])
        .collect()
        .map_err(&rows)?;
    let first = |name: &str| range.column(name).and_then(|s| s.i64()).map(|s| s.get(0));
    Ok(first("t0").map_err(&rows)?.zip(first("t1").map_err(&rows)?))
}

/// Colour limit of the heat map, dB: a change this large or larger gets the end colour.
pub const HEAT_LIMIT_DB: f64 = 0.2;

/// Per cable: loop-back gain change from the first day, per span and time bin, the largest change
/// over the cable's fiber pairs and directions (so one fiber's tap shows), as a heat map.
pub fn span_heat_map(
    data: &Path,
    topology: &cablewatch_proto::topology::Topology,
    cable: &str,
    filter: &Filter,
    dir: &Path,
    svg: bool,
) -> Result<Option<Drawn>, FigureError> {
    let Some(plant) = topology.cable(cable) else {
        return Ok(None);
    };
    if !has_data(data, &LINE_MONITORING) {
        return Ok(None);
    }
    let window = Filter {
        cable: Some(cable.to_owned()),
        ..filter.clone()
    };
    let rows = rows_error(cable);
    let t = || col(c::TIME).cast(DataType::Int64);
    let range = scan(data, &LINE_MONITORING, &window)?
        .select([t().min().alias("t0"), t().max().alias("t1")])
        .collect()
        .map_err(&rows)?;
    let first = |name: &str| range.column(name).and_then(|s| s.i64()).map(|s| s.get(0));
    let (Some(t0), Some(t1)) = (first("t0").map_err(&rows)?, first("t1").map_err(&rows)?) else {
        return Ok(None);
    };
    // About 200 bins over the window, whole hours.
    let hour = 3_600_000_000_000_i64;
    let bin_ns = ((t1 - t0) / 200 / hour + 1) * hour;
    let df = scan(data, &LINE_MONITORING, &window)?
        .group_by([
            col(c::FIBER_PAIR),
            col(c::DIRECTION),
            col(c::REPEATER),
            ((t() - lit(t0)) / lit(bin_ns)).alias("bin"),
        ])
        .agg([col(c::LOOPBACK_GAIN_DB)
            .cast(DataType::Float64)
            .median()
            .alias("gain")])
        .sort(
            [c::FIBER_PAIR, c::DIRECTION, c::REPEATER, "bin"],
            Default::default(),
        )
        .collect()
        .map_err(&rows)?;
    let fp = df.column(c::FIBER_PAIR).and_then(|s| s.u32()).map_err(&rows)?;
    let direction = df.column(c::DIRECTION).and_then(|s| s.str()).map_err(&rows)?;
    let repeater = df.column(c::REPEATER).and_then(|s| s.u32()).map_err(&rows)?;
    let bin = df.column("bin").and_then(|s| s.i64()).map_err(&rows)?;
    let gain = df.column("gain").and_then(|s| s.f64()).map_err(&rows)?;
    let bins = usize::try_from((t1 - t0) / bin_ns + 1).unwrap_or(1);
    // Per series (fiber pair, direction, repeater): gain per bin.
    let mut series: BTreeMap<(u32, String, u32), Vec<f64>> = BTreeMap::new();
    for i in 0..df.height() {
        let (Some(fp), Some(d), Some(r), Some(b)) =
            (fp.get(i), direction.get(i), repeater.get(i), bin.get(i))
        else {
            continue;
        };
        let Ok(b) = usize::try_from(b) else { continue };
        let row = series
            .entry((fp, d.to_owned(), r))
            .or_insert_with(|| vec![f64::NAN; bins]);
        if let Some(cell) = row.get_mut(b) {
            *cell = gain.get(i).unwrap_or(f64::NAN);
        }
    }
    if series.is_empty() {
        return Ok(None);
    }
    let day_bins = usize::try_from(24 * hour / bin_ns).unwrap_or(1).max(1);
    // One row per span; each direction's repeater lands on the span its loop-back measures.
    let mut values = vec![vec![f64::NAN; bins]; plant.spans().len()];
    for ((_, d, r), gains) in &series {
        let baseline = median(gains.iter().take(day_bins).copied());
        let Some(row) = plant
            .span_covered_by(d, *r)
            .and_then(|span| values.get_mut(span as usize - 1))
        else {
            continue;
        };
        for (cell, g) in row.iter_mut().zip(gains) {
            let dev = g - baseline;
            if dev.is_finite() && !(cell.is_finite() && cell.abs() >= dev.abs()) {
                *cell = dev;
            }
        }
    }
    let plot = HeatMap {
        title: format!("{cable}: loop-back gain change from the first day, per span"),
        y_label: "span".into(),
        value_label: "gain change (dB), largest over fibers".into(),
        t0_ns: t0,
        bin_ns,
        values,
        limit: HEAT_LIMIT_DB,
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| AnalyzerError::input(dir, 0, format!("cannot create the plot directory: {e}")))?;
    write(
        &plot,
        Target { dir, svg },
        format!("{cable}-spans.png"),
        format!(
            "{cable}: per span and {}-hour bin, the loop-back gain change from the span's first day, the largest over fiber pairs and directions; vermillion is a loss, blue a gain, ±{HEAT_LIMIT_DB} dB or more at full colour, grey no data.",
            bin_ns / hour
        ),
    )
}
