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
