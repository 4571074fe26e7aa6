//! Loading stored tables with polars: a lazy scan of every part file of a table with Hive
//! partitions (`cable`, `date`), filters pushed down to the scan, and a check of the schema against
//! the contract in [`cablewatch_proto::tables`] so a wrong file fails loudly instead of misreading.

use std::path::{Path, PathBuf};

use cablewatch_proto::{
    layout,
    tables::{self, ColumnType, Table},
};
use polars::prelude::*;

use crate::{AnalyzerError, Result, error::polars_ctx};

/// Which rows to load.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this cable.
    pub cable: Option<String>,
    /// Only times at or after this, ns.
    pub since_ns: Option<i64>,
    /// Only times before this, ns.
    pub until_ns: Option<i64>,
}

/// The polars data type a contract column is read as.
pub fn polars_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::TimestampNsUtc => DataType::Datetime(TimeUnit::Nanoseconds, Some(TimeZone::UTC)),
        ColumnType::Date => DataType::Date,
        ColumnType::UInt32 => DataType::UInt32,
        ColumnType::UInt64 => DataType::UInt64,
        ColumnType::Int64 => DataType::Int64,
        ColumnType::Float32 => DataType::Float32,
        ColumnType::Float64 => DataType::Float64,
        ColumnType::Utf8 => DataType::String,
    }
}

/// True when `table` has at least one data file under `data`.
pub fn has_data(data: &Path, table: &Table) -> bool {
    fn any_parquet(dir: &Path) -> bool {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return false;
        };
        entries.filter_map(|e| e.ok()).any(|e| {
            let p = e.path();
            if p.is_dir() {
                any_parquet(&p)
            } else {
                p.extension().is_some_and(|x| x == layout::PARQUET_EXT)
                    && !p
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with('.'))
            }
        })
    }
    any_parquet(&layout::table_dir(data, table))
}

/// A lazy scan of `table` under `data`, filtered, with its schema checked against the contract.
pub fn scan(data: &Path, table: &'static Table, filter: &Filter) -> Result<LazyFrame> {
    let dir: PathBuf = layout::table_dir(data, table);
    if !has_data(data, table) {
        return Err(AnalyzerError::MissingTable {
            table: table.name,
            dir,
        });
    }
    let glob = layout::table_glob(data, table);
    let args = ScanArgsParquet {
        hive_options: HiveOptions::new_enabled(),
        ..Default::default()
    };
    let mut lf = LazyFrame::scan_parquet(PlRefPath::new(glob.to_string_lossy().as_ref()), args)
        .map_err(polars_ctx(format!("scanning {}", glob.display())))?;
    let schema = lf
        .collect_schema()
        .map_err(polars_ctx(format!("reading the schema of {}", dir.display())))?;
    check_schema(table, &dir, &schema)?;
    if let Some(cable) = &filter.cable {
        lf = lf.filter(col(tables::col::CABLE).eq(lit(cable.as_str())));
    }
    // Whole files are pruned by the `date` partition; rows by the physical time. (Comparing with a
    // UTC datetime literal loses the zone in polars' statistics pushdown without its `timezones`
    // feature, and the i64 comparison is exact anyway.)
    let time_ns = || col(tables::col::TIME).cast(DataType::Int64);
    let day = |ns: i64| lit(cablewatch_proto::time::epoch_day(ns)).cast(DataType::Date);
    if let Some(since) = filter.since_ns {
        lf = lf.filter(
            col(tables::col::DATE)
                .gt_eq(day(since))
                .and(time_ns().gt_eq(lit(since))),
        );
    }
    if let Some(until) = filter.until_ns {
        lf = lf.filter(
            col(tables::col::DATE)
                .lt_eq(day(until))
                .and(time_ns().lt(lit(until))),
        );
    }
    Ok(lf)
}

/// One partition of a table: the files of one cable and UTC day.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Partition {
    /// Cable id (from `cable=<id>`).
    pub cable: String,
    /// UTC day, days since 1970-01-01 (from `date=<YYYY-MM-DD>`).
    pub day: i32,
    /// The partition directory.
    pub dir: PathBuf,
}

/// The partitions of `table` under `data` that `filter` can touch, in (cable, day) order. Only
/// directories with at least one finished data file count.
pub fn partitions(data: &Path, table: &'static Table, filter: &Filter) -> Result<Vec<Partition>> {
    let dir = layout::table_dir(data, table);
    if !has_data(data, table) {
        return Err(AnalyzerError::MissingTable {
            table: table.name,
            dir,
        });
    }
    let list = |d: &Path| -> Result<Vec<(String, PathBuf)>> {
        let entries =
            std::fs::read_dir(d).map_err(|e| AnalyzerError::input(d, 0, format!("cannot list: {e}")))?;
        let mut out = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|e| AnalyzerError::input(d, 0, format!("cannot list: {e}")))?
                .path();
            if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                out.push((name.to_owned(), path.clone()));
            }
        }
        Ok(out)
    };
    let since_day = filter.since_ns.map(cablewatch_proto::time::epoch_day);
    let until_day = filter.until_ns.map(cablewatch_proto::time::epoch_day);
    let mut out = Vec::new();
    for (name, cable_dir) in list(&dir)? {
        let Some(cable) = name.strip_prefix("cable=") else {
            continue;
        };
        if filter.cable.as_deref().is_some_and(|c| c != cable) || !cable_dir.is_dir() {
            continue;
        }
        for (name, day_dir) in list(&cable_dir)? {
            let Some(date) = name.strip_prefix("date=") else {
                continue;
            };
            let day = cablewatch_proto::time::parse_time(date)
                .map(cablewatch_proto::time::epoch_day)
                .map_err(|e| AnalyzerError::input(&day_dir, 0, format!("not a date partition: {e}")))?;
            if since_day.is_some_and(|d| day < d) || until_day.is_some_and(|d| day > d) {
                continue;
            }
            let files: Vec<PathBuf> = list(&day_dir)?
                .into_iter()
                .filter(|(n, _)| !n.starts_with('.') && n.ends_with(&format!(".{}", layout::PARQUET_EXT)))
                .map(|(_, path)| path)
                .collect();
            if table.name == tables::LINE_MONITORING.name {
                for file in &files {
                    check_line_monitoring_contract(file)?;
                }
            }
            if !files.is_empty() {
                out.push(Partition {
                    cable: cable.to_owned(),
                    day,
                    dir: day_dir,
                });
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Refuses a line-monitoring file written before contract 2, where the simulator stored a `b_to_a`
/// loss in span k at repeater k: read with today's meaning of `repeater` (the physical repeater,
/// whose covered span depends on the direction) its `b_to_a` steps would land one span off.
fn check_line_monitoring_contract(file: &Path) -> Result<()> {
    use cablewatch_proto::store::{CONTRACT_KEY, CONTRACT_VERSION, contract_version};
    let version = contract_version(file).map_err(|e| AnalyzerError::input(file, 0, e))?;
    if version < 2 {
        return Err(AnalyzerError::input(
            file,
            0,
            format!(
                "written to stored-table contract {version} (no {CONTRACT_KEY} = {CONTRACT_VERSION} in its Parquet metadata), in which line_monitoring.repeater meant \"span k at repeater k\" in both directions; this analyzer reads it as the physical repeater numbered from the A end, whose span depends on the direction (docs/data-model.md). Regenerate the data with this version's cablewatch-sim or store it again through the collector"
            ),
        ));
    }
    Ok(())
}

/// A lazy scan of one partition's files with the time filter, its schema checked against the
/// contract (the partition columns come from the path, not the files).
pub fn scan_partition(p: &Partition, table: &'static Table, filter: &Filter) -> Result<LazyFrame> {
    let glob = p.dir.join(format!("*.{}", layout::PARQUET_EXT));
    let mut lf = LazyFrame::scan_parquet(
        PlRefPath::new(glob.to_string_lossy().as_ref()),
        Default::default(),
    )
    .map_err(|e| AnalyzerError::input(&glob, 0, format!("unreadable Parquet: {e}")))?;
    let schema = lf
        .collect_schema()
        .map_err(|e| AnalyzerError::input(&p.dir, 0, format!("unreadable Parquet: {e}")))?;
    check_columns(table, &p.dir, &schema, table.columns.iter())?;
    let time_ns = || col(tables::col::TIME).cast(DataType::Int64);
    if let Some(since) = filter.since_ns {
        lf = lf.filter(time_ns().gt_eq(lit(since)));
    }
    if let Some(until) = filter.until_ns {
        lf = lf.filter(time_ns().lt(lit(until)));
    }
    Ok(lf)
}

/// Checks that every contract column of `table` is in `schema` with the contract's type.
pub fn check_schema(table: &'static Table, dir: &Path, schema: &Schema) -> Result<()> {
    check_columns(
        table,
        dir,
        schema,
        table.columns.iter().chain(&tables::PARTITION_COLUMNS[..1]),
    )
}

fn check_columns<'a>(
    table: &'static Table,
    dir: &Path,
    schema: &Schema,
    columns: impl Iterator<Item = &'a tables::Column>,
) -> Result<()> {
    let problem = |column: &str, problem: String| AnalyzerError::Schema {
        table: table.name,
        dir: dir.to_owned(),
        column: column.to_owned(),
        problem,
    };
    for c in columns {
        let expected = polars_type(c.ty);
        match schema.get(c.name) {
            None => return Err(problem(c.name, "missing".into())),
            Some(found) if *found != expected => {
                return Err(problem(
                    c.name,
                    format!("stored as {found}, the contract says {expected}"),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}
