//! What is in a data directory: rows and time range per table and cable, and robust per-series
//! baselines (median and MAD sigma, computed in parallel) of the metrics the detectors watch.

use std::{collections::BTreeMap, fmt, path::Path};

use cablewatch_proto::{
    tables::{self, LATENCY, LINE_MONITORING, OPTICAL_CHANNEL, Table},
    time::format_ns,
};
use polars::prelude::*;
use rayon::prelude::*;

use crate::{
    AnalyzerError, Result,
    error::polars_ctx,
    load::{Filter, has_data, scan},
    robust::median_sigma,
    series::load_series,
};

/// Rows and time range of one cable in one table.
#[derive(Debug, Clone, PartialEq)]
pub struct CableRows {
    /// Cable id.
    pub cable: String,
    /// Rows.
    pub rows: u64,
    /// Earliest time, ns.
    pub first_ns: i64,
    /// Latest time, ns.
    pub last_ns: i64,
}

/// Robust baseline of one metric on one cable, over all its series.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricBaseline {
    /// Table name.
    pub table: &'static str,
    /// Metric column.
    pub metric: &'static str,
    /// Cable id.
    pub cable: String,
    /// Number of series.
    pub series: usize,
    /// Median over series of each series' median.
    pub median: f64,
    /// Median over series of each series' MAD sigma: the typical noise of one series.
    pub sigma: f64,
}

/// Everything [`summarize`] found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Per table (by name), per cable rows.
    pub tables: BTreeMap<&'static str, Vec<CableRows>>,
    /// Baselines of the watched metrics.
    pub baselines: Vec<MetricBaseline>,
}

impl Summary {
    /// Total rows in `table`.
    pub fn rows(&self, table: &str) -> u64 {
        self.tables
            .get(table)
            .map_or(0, |c| c.iter().map(|r| r.rows).sum())
    }
}

/// The metrics summarised, with the column that indexes their series.
const WATCHED: [(&Table, Option<&str>, &str); 4] = [
    (
        &OPTICAL_CHANNEL,
        Some(tables::col::CHANNEL),
        tables::col::Q_DB_AVG,
    ),
    (
        &OPTICAL_CHANNEL,
        Some(tables::col::CHANNEL),
        tables::col::SOP_ROC_KRAD_S_MAX,
    ),
    (
        &LINE_MONITORING,
        Some(tables::col::REPEATER),
        tables::col::LOOPBACK_GAIN_DB,
    ),
    (&LATENCY, None, tables::col::DELAY_US),
];

/// Summarises every table present under `data`.
pub fn summarize(data: &Path, filter: &Filter) -> Result<Summary> {
    let mut summary = Summary::default();
    for table in tables::ALL {
        if !has_data(data, table) {
            continue;
        }
        summary
            .tables
            .insert(table.name, cable_rows(data, table, filter)?);
    }
    if summary.tables.is_empty() {
        return Err(AnalyzerError::NoData {
            dir: data.to_owned(),
            tables: tables::ALL.map(|t| t.name).join(", "),
        });
    }
    for (table, index, metric) in WATCHED {
        if !has_data(data, table) {
            continue;
        }
        let series = load_series(data, table, index, metric, filter, &mut |_, _| {})?;
        let stats: Vec<(String, f64, f64)> = series
            .par_iter()
            .filter_map(|s| {
                let (m, sd) = median_sigma(s.values.as_slice()?)?;
                Some((s.key.cable.clone(), m, sd))
            })
            .collect();
        let mut per_cable: BTreeMap<String, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
        for (cable, m, sd) in stats {
            let e = per_cable.entry(cable).or_default();
            e.0.push(m);
            e.1.push(sd);
        }
        for (cable, (medians, sigmas)) in per_cable {
            summary.baselines.push(MetricBaseline {
                table: table.name,
                metric,
                cable,
                series: medians.len(),
                median: median_sigma(&medians).map_or(f64::NAN, |x| x.0),
                sigma: median_sigma(&sigmas).map_or(f64::NAN, |x| x.0),
            });
        }
    }
    Ok(summary)
}

fn cable_rows(data: &Path, table: &'static Table, filter: &Filter) -> Result<Vec<CableRows>> {
    let t = || col(tables::col::TIME).cast(DataType::Int64);
    let df = scan(data, table, filter)?
        .group_by([col(tables::col::CABLE)])
        .agg([
            len().alias("rows"),
            t().min().alias("first"),
            t().max().alias("last"),
        ])
        .sort([tables::col::CABLE], SortMultipleOptions::default())
        .collect()
        .map_err(polars_ctx(format!("counting rows of {}", table.name)))?;
    let read = || -> PolarsResult<Vec<CableRows>> {
        let cable = df.column(tables::col::CABLE)?.str()?;
        let rows = df.column("rows")?.cast(&DataType::UInt64)?;
        let rows = rows.u64()?;
        let first = df.column("first")?.i64()?;
        let last = df.column("last")?.i64()?;
        Ok((0..df.height())
            .map(|i| CableRows {
                cable: cable.get(i).unwrap_or_default().to_owned(),
                rows: rows.get(i).unwrap_or_default(),
                first_ns: first.get(i).unwrap_or_default(),
                last_ns: last.get(i).unwrap_or_default(),
            })
            .collect())
    };
    read().map_err(polars_ctx(format!("reading row counts of {}", table.name)))
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (table, cables) in &self.tables {
            writeln!(f, "{table}: {} rows", self.rows(table))?;
            for c in cables {
                writeln!(
                    f,
                    "  {:<12} {:>10} rows  {} .. {}",
                    c.cable,
                    c.rows,
                    format_ns(c.first_ns),
                    format_ns(c.last_ns)
                )?;
            }
        }
        writeln!(
            f,
            "baselines (median over series of the series median; sigma = typical per-series noise):"
        )?;
        for b in &self.baselines {
            writeln!(
                f,
                "  {:<10} {:<22} {:>5} series  median {:>12.4}  sigma {:>8.4}",
                b.cable, b.metric, b.series, b.median, b.sigma
            )?;
        }
        Ok(())
    }
}
