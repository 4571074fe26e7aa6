//! The figures of one finding, drawn from the stored tables around it (issue 6, in progress).
//!
//! ```text
//! finding (cable, direction, fiber pair, time) + data dir
//!   --polars scan: the cable's partitions, the window around the finding, the fiber's rows-->
//!   Q of every channel + their median --plot::TimePlot--> <out>/<finding id>-q.png
//! ```
//!
//! So far: Q of every channel of the fiber as its change from its own level before the finding,
//! overlaid, with their median and its level before and after. The span view, SOP and latency timelines and context records follow.

use std::path::{Path, PathBuf};

use cablewatch_proto::tables::{OPTICAL_CHANNEL, col as c};
use polars::prelude::*;

use crate::{
    AnalyzerError,
    fusion::Finding,
    load::{Filter, scan},
    plot::{Line, Marker, PlotError, TimePlot, draw_time_plot},
};

/// What can go wrong drawing a finding's figures.
#[derive(Debug, thiserror::Error)]
pub enum FigureError {
    /// Reading the stored tables failed.
    #[error(transparent)]
    Load(#[from] AnalyzerError),
    /// polars failed on the finding's rows.
    #[error("reading the rows of {finding}: {source}")]
    Rows {
        /// The finding's id.
        finding: String,
        /// polars' error.
        source: PolarsError,
    },
    /// Drawing failed.
    #[error(transparent)]
    Plot(#[from] PlotError),
}

/// How much time before the finding's start and after its end the figures show.
pub const WINDOW_NS: i64 = 12 * 3_600_000_000_000;

/// Median of the finite values (NaN when none).
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    crate::robust::median_in_place(&mut v).unwrap_or(f64::NAN)
}

/// Q of every channel of the finding's fiber from [`WINDOW_NS`] before its start to as long after
/// its end, each as its change from its own median before the start, thin and grey, under their
/// median per time in black; a mark at the start with the median change before and after it.
/// Written as `<out>/<id>-q.png`.
pub fn channel_q(data: &Path, finding: &Finding, out: &Path) -> Result<PathBuf, FigureError> {
    let filter = Filter {
        cable: Some(finding.cable.clone()),
        since_ns: Some(finding.start_ns - WINDOW_NS),
        until_ns: Some(finding.end_ns + WINDOW_NS),
    };
    let rows = |e: PolarsError| FigureError::Rows {
        finding: finding.id.clone(),
        source: e,
    };
    let df = scan(data, &OPTICAL_CHANNEL, &filter)?
        .filter(
            col(c::DIRECTION)
                .eq(lit(finding.direction.as_str()))
                .and(col(c::FIBER_PAIR).eq(lit(finding.fiber_pair))),
        )
        .select([
            col(c::CHANNEL),
            col(c::TIME).cast(DataType::Int64).alias("t"),
            col(c::Q_DB_AVG).cast(DataType::Float64).alias("q"),
        ])
        .sort(["t", c::CHANNEL], Default::default())
        .collect()
        .map_err(rows)?;
    let channel = df.column(c::CHANNEL).and_then(|s| s.u32()).map_err(rows)?;
    let t = df.column("t").and_then(|s| s.i64()).map_err(rows)?;
    let q = df.column("q").and_then(|s| s.f64()).map_err(rows)?;
    // Per channel: times and Q.
    let mut channels: std::collections::BTreeMap<u32, (Vec<i64>, Vec<f64>)> = Default::default();
    for ((ch, t), q) in channel.iter().zip(t.iter()).zip(q.iter()) {
        let (Some(ch), Some(t)) = (ch, t) else { continue };
        let entry = channels.entry(ch).or_default();
        entry.0.push(t);
        entry.1.push(q.unwrap_or(f64::NAN));
    }
    // Each channel as its change from its own level before the finding: channels sit at different
    // Q, and a tap moves them all by the same small amount, which shows once they share a zero.
    for (t, q) in channels.values_mut() {
        let level = median(
            t.iter()
                .zip(q.iter())
                .filter(|(t, _)| **t < finding.start_ns)
                .map(|(_, q)| *q),
        );
        q.iter_mut().for_each(|v| *v -= level);
    }
    // Per time: the changes of all channels.
    let mut at: std::collections::BTreeMap<i64, Vec<f64>> = Default::default();
    for (t, q) in channels.values() {
        for (&t, &q) in t.iter().zip(q) {
            at.entry(t).or_default().push(q);
        }
    }
    let times: Vec<i64> = at.keys().copied().collect();
    let at_time: Vec<Vec<f64>> = at.into_values().collect();
    let medians: Vec<f64> = at_time.into_iter().map(|v| median(v.into_iter())).collect();
    let before = median(
        times
            .iter()
            .zip(&medians)
            .filter(|(t, _)| **t < finding.start_ns)
            .map(|(_, &q)| q),
    );
    let after = median(
        times
            .iter()
            .zip(&medians)
            .filter(|(t, _)| **t > finding.end_ns)
            .map(|(_, &q)| q),
    );
    let mut lines: Vec<Line<'_>> = channels
        .values()
        .enumerate()
        .map(|(i, (t, q))| Line {
            label: if i == 0 {
                format!("each of {} channels", channels.len())
            } else {
                String::new()
            },
            faint: true,
            times_ns: t,
            values: q,
        })
        .collect();
    lines.push(Line {
        label: "median over channels".into(),
        faint: false,
        times_ns: &times,
        values: &medians,
    });
    let plot = TimePlot {
        title: format!(
            "{} {}: Q change per channel, {} fiber pair {} {}",
            finding.id,
            finding.class.name(),
            finding.cable,
            finding.fiber_pair,
            finding.direction
        ),
        y_label: "Q change from the level before (dB)".into(),
        lines,
        markers: vec![Marker {
            time_ns: finding.start_ns,
            label: format!("median over channels: {:+.3} dB after", after - before),
        }],
    };
    std::fs::create_dir_all(out)
        .map_err(|e| AnalyzerError::input(out, 0, format!("cannot create the plot directory: {e}")))?;
    let path = out.join(format!("{}-q.png", finding.id));
    draw_time_plot(&plot, &path)?;
    Ok(path)
}
