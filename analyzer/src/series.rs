//! Splitting a table into series: one time-ordered array per (cable, direction, fiber pair, channel
//! or repeater), the unit every detector works on.
//!
//! polars sorts and projects (only the key columns and the one metric are read from disk); the
//! sorted frame is then cut into contiguous runs, each copied once into ndarray arrays.

use cablewatch_proto::tables::{self, Table};
use ndarray::Array1;
use polars::prelude::*;

use crate::{
    Result,
    error::polars_ctx,
    load::{Filter, scan},
};

/// Identity of one series.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey {
    /// Cable id.
    pub cable: String,
    /// `a_to_b` or `b_to_a`.
    pub direction: String,
    /// Fiber pair.
    pub fiber_pair: u32,
    /// Channel (optical), repeater (line monitoring) or 0 (latency).
    pub index: u32,
}

/// One metric over time for one key.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Whose series this is.
    pub key: SeriesKey,
    /// Sample times, ns, ascending.
    pub times_ns: Array1<i64>,
    /// Values, in the metric's unit (NaN where the stored value was null).
    pub values: Array1<f64>,
}

/// Loads `metric` of `table` as series keyed by `index_column` (`None`: one series per fiber and
/// direction).
pub fn load_series(
    data: &std::path::Path,
    table: &'static Table,
    index_column: Option<&str>,
    metric: &str,
    filter: &Filter,
) -> Result<Vec<Series>> {
    let index = match index_column {
        Some(c) => col(c).cast(DataType::UInt32),
        None => lit(0u32).cast(DataType::UInt32),
    };
    let df = scan(data, table, filter)?
        .select([
            col(tables::col::CABLE),
            col(tables::col::DIRECTION),
            col(tables::col::FIBER_PAIR),
            index.alias("index"),
            col(tables::col::TIME).cast(DataType::Int64).alias("t"),
            col(metric).cast(DataType::Float64).alias("v"),
        ])
        .sort(
            ["cable", "direction", "fiber_pair", "index", "t"],
            SortMultipleOptions::default(),
        )
        .collect()
        .map_err(polars_ctx(format!("loading {}.{metric}", table.name)))?;
    split(&df).map_err(polars_ctx(format!(
        "splitting {}.{metric} into series",
        table.name
    )))
}

fn split(df: &DataFrame) -> PolarsResult<Vec<Series>> {
    let cable = df.column("cable")?.str()?;
    let direction = df.column("direction")?.str()?;
    let fiber_pair = df.column("fiber_pair")?.u32()?;
    let index = df.column("index")?.u32()?;
    let t = df.column("t")?.i64()?;
    let v = df.column("v")?.f64()?;
    let keys = cable
        .iter()
        .zip(direction.iter())
        .zip(fiber_pair.iter())
        .zip(index.iter());
    let mut out: Vec<Series> = Vec::new();
    let (mut times, mut values) = (Vec::new(), Vec::new());
    let mut current: Option<SeriesKey> = None;
    for ((((c, d), fp), ix), (t, v)) in keys.zip(t.iter().zip(v.iter())) {
        let same = current.as_ref().is_some_and(|k| {
            Some(k.cable.as_str()) == c
                && Some(k.direction.as_str()) == d
                && Some(k.fiber_pair) == fp
                && Some(k.index) == ix
        });
        if !same {
            if let Some(key) = current.take() {
                out.push(Series {
                    key,
                    times_ns: Array1::from_vec(std::mem::take(&mut times)),
                    values: Array1::from_vec(std::mem::take(&mut values)),
                });
            }
            current = Some(SeriesKey {
                cable: c.unwrap_or_default().to_owned(),
                direction: d.unwrap_or_default().to_owned(),
                fiber_pair: fp.unwrap_or_default(),
                index: ix.unwrap_or_default(),
            });
        }
        times.push(t.unwrap_or_default());
        values.push(v.unwrap_or(f64::NAN));
    }
    if let Some(key) = current {
        out.push(Series {
            key,
            times_ns: Array1::from_vec(times),
            values: Array1::from_vec(values),
        });
    }
    Ok(out)
}

/// Per fiber and time, over the fiber's channels: how many reported, median Q, median SOP maximum.
/// polars groups the rows; only the five columns needed are read.
pub fn load_fiber_optical(
    data: &std::path::Path,
    filter: &Filter,
) -> Result<Vec<crate::detect::FiberSeries>> {
    use tables::{OPTICAL_CHANNEL, col as c};
    // The mean, not the median: the same for this purpose (a fault lasting a tenth of the window
    // moves it by a tenth of its depth) and several times cheaper in the group-by.
    let channel_mean = col("q")
        .mean()
        .over([col(c::CABLE), col(c::DIRECTION), col(c::FIBER_PAIR), col("ch")])
        .map_err(polars_ctx("mean Q per channel"))?;
    let df = scan(data, &OPTICAL_CHANNEL, filter)?
        .select([
            col(c::CABLE),
            col(c::DIRECTION),
            col(c::FIBER_PAIR),
            col(c::TIME).cast(DataType::Int64).alias("t"),
            col(c::Q_DB_AVG).cast(DataType::Float64).alias("q"),
            col(c::SOP_ROC_KRAD_S_MAX).cast(DataType::Float64).alias("sop"),
            col(c::CHANNEL).alias("ch"),
        ])
        // Each channel's Q against its own mean over the window: a single channel that drops
        // stands out as the fiber's lowest, whatever its place in the band.
        .with_column((col("q") - channel_mean).alias("qdev"))
        .group_by([col(c::CABLE), col(c::DIRECTION), col(c::FIBER_PAIR), col("t")])
        .agg([
            len().cast(DataType::UInt32).alias("n"),
            col("q").median().alias("q"),
            col("sop").median().alias("sop"),
            col("qdev").min().alias("qdev_min"),
            col("ch").get(col("qdev").arg_min(), true).alias("worst"),
        ])
        .sort(
            ["cable", "direction", "fiber_pair", "t"],
            SortMultipleOptions::default(),
        )
        .collect()
        .map_err(polars_ctx("aggregating optical_channel per fiber"))?;
    split_fibers(&df).map_err(polars_ctx("splitting optical_channel into fibers"))
}

/// The key columns of a frame sorted by series, read row by row without allocating.
struct KeyColumns<'a> {
    cable: &'a StringChunked,
    direction: &'a StringChunked,
    fiber_pair: &'a UInt32Chunked,
}

impl<'a> KeyColumns<'a> {
    fn new(df: &'a DataFrame) -> PolarsResult<Self> {
        Ok(Self {
            cable: df.column("cable")?.str()?,
            direction: df.column("direction")?.str()?,
            fiber_pair: df.column("fiber_pair")?.u32()?,
        })
    }

    /// Whether row `i` belongs to the fiber `key`.
    fn is(&self, i: usize, key: &SeriesKey) -> bool {
        self.cable.get(i) == Some(key.cable.as_str())
            && self.direction.get(i) == Some(key.direction.as_str())
            && self.fiber_pair.get(i) == Some(key.fiber_pair)
    }

    /// The fiber of row `i`.
    fn key(&self, i: usize) -> SeriesKey {
        SeriesKey {
            cable: self.cable.get(i).unwrap_or_default().to_owned(),
            direction: self.direction.get(i).unwrap_or_default().to_owned(),
            fiber_pair: self.fiber_pair.get(i).unwrap_or_default(),
            index: 0,
        }
    }
}

fn split_fibers(df: &DataFrame) -> PolarsResult<Vec<crate::detect::FiberSeries>> {
    let keys = KeyColumns::new(df)?;
    let t = df.column("t")?.i64()?;
    let n = df.column("n")?.u32()?;
    let q = df.column("q")?.f64()?;
    let sop = df.column("sop")?.f64()?;
    let qdev = df.column("qdev_min")?.f64()?;
    let worst = df.column("worst")?.u32()?;
    let mut out: Vec<crate::detect::FiberSeries> = Vec::new();
    for i in 0..df.height() {
        if out.last().is_none_or(|f| !keys.is(i, &f.key)) {
            out.push(crate::detect::FiberSeries {
                key: keys.key(i),
                times_ns: Vec::new(),
                channels: Vec::new(),
                q_db: Vec::new(),
                sop_max: Vec::new(),
                q_dev_min: Vec::new(),
                worst_channel: Vec::new(),
            });
        }
        if let Some(f) = out.last_mut() {
            f.times_ns.push(t.get(i).unwrap_or_default());
            f.channels.push(n.get(i).unwrap_or_default());
            f.q_db.push(q.get(i).unwrap_or(f64::NAN));
            f.sop_max.push(sop.get(i).unwrap_or(f64::NAN));
            f.q_dev_min.push(qdev.get(i).unwrap_or(f64::NAN));
            f.worst_channel.push(worst.get(i).unwrap_or_default());
        }
    }
    Ok(out)
}

/// Path identifiers of the latency probes where they change: (fiber, time, path id) for the first
/// probe of each fiber and each probe whose path differs from the one before, sorted by fiber and
/// time.
pub fn load_paths(data: &std::path::Path, filter: &Filter) -> Result<Vec<(SeriesKey, i64, String)>> {
    use tables::{LATENCY, col as c};
    let df = scan(data, &LATENCY, filter)?
        .select([
            col(c::CABLE),
            col(c::DIRECTION),
            col(c::FIBER_PAIR),
            col(c::TIME).cast(DataType::Int64).alias("t"),
            col(c::PATH_ID),
        ])
        .sort(
            ["cable", "direction", "fiber_pair", "t"],
            SortMultipleOptions::default(),
        )
        .collect()
        .map_err(polars_ctx("loading latency.path_id"))?;
    let read = || -> PolarsResult<Vec<(SeriesKey, i64, String)>> {
        let keys = KeyColumns::new(&df)?;
        let t = df.column("t")?.i64()?;
        let path = df.column(c::PATH_ID)?.str()?;
        let mut out: Vec<(SeriesKey, i64, String)> = Vec::new();
        for i in 0..df.height() {
            let p = path.get(i).unwrap_or_default();
            let new_fiber = out.last().is_none_or(|(k, _, _)| !keys.is(i, k));
            if new_fiber || out.last().is_some_and(|(_, _, last)| last != p) {
                let key = match out.last() {
                    Some((k, _, _)) if !new_fiber => k.clone(),
                    _ => keys.key(i),
                };
                out.push((key, t.get(i).unwrap_or_default(), p.to_owned()));
            }
        }
        Ok(out)
    };
    read().map_err(polars_ctx("reading latency.path_id"))
}
