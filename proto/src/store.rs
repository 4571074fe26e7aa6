//! Wire batches -> Arrow record batches -> Parquet files, for every writer of the stored tables.
//!
//! [`to_record_batches`] splits a batch's rows by UTC date (one partition each), sorts them by the
//! table's sort key and builds arrays with the schema of [`crate::tables`]. [`write_part`] persists
//! record batches durably: zstd Parquet written to a temporary name, fsynced, renamed into its
//! partition, and the directory fsynced, so a crash leaves either the whole file or none of it.

use std::{
    collections::BTreeMap,
    fs::{self, File},
    io,
    path::{Path, PathBuf},
    sync::Arc,
};

use arrow::{
    array::{
        ArrayRef, Float32Array, Float64Array, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray,
        UInt32Array, UInt64Array, new_null_array,
    },
    datatypes::DataType,
    error::ArrowError,
};
use parquet::{
    arrow::ArrowWriter,
    basic::Encoding,
    basic::{Compression, ZstdLevel},
    errors::ParquetError,
    file::{metadata::SortingColumn, properties::WriterProperties},
    schema::types::ColumnPath,
};

use crate::{
    CableId, layout,
    tables::{self, ColumnType, Table},
    time,
    wire::{
        Direction, IntervalStats, LatencyKind, LatencySamples, LineMonitoringSamples, OpticalChannelSamples,
        Payload, ShapeError,
    },
};

/// Errors turning batches into files.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The batch's columns disagree on the row count.
    #[error(transparent)]
    Shape(#[from] ShapeError),
    /// A row holds an enum value that has no stored label (unspecified or unknown).
    #[error("row {row}: {column} = {value} is not a valid value")]
    BadEnum {
        /// Column name.
        column: &'static str,
        /// Row index in the batch.
        row: usize,
        /// The raw enum number.
        value: i32,
    },
    /// A row index passed in is past the end of the batch.
    #[error("row {row} selected but the batch has {rows} rows")]
    RowOutOfRange {
        /// The index.
        row: usize,
        /// The batch's row count.
        rows: usize,
    },
    /// Arrow refused the arrays (a bug: the schema and the builders disagree).
    #[error("building {table} record batch: {source}")]
    Arrow {
        /// Table name.
        table: &'static str,
        /// Arrow's error.
        source: ArrowError,
    },
    /// The Parquet writer failed.
    #[error("writing {path}: {source}")]
    Parquet {
        /// File being written.
        path: PathBuf,
        /// Parquet's error.
        source: ParquetError,
    },
    /// A file system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// Result alias for this module.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Rows of one UTC day of one batch, ready to write to that day's partition.
#[derive(Debug, Clone)]
pub struct DayBatch {
    /// Epoch day (days since 1970-01-01) of every row.
    pub day: i32,
    /// The rows, sorted by the table's sort key.
    pub batch: RecordBatch,
}

/// Converts the selected rows of `payload` (all rows when `rows` is `None`) into one sorted record
/// batch per UTC day, in day order.
pub fn to_record_batches(payload: &Payload, rows: Option<&[usize]>) -> Result<Vec<DayBatch>> {
    let n = payload.row_count()?;
    let all: Vec<usize>;
    let rows = match rows {
        Some(r) => {
            if let Some(&bad) = r.iter().find(|&&i| i >= n) {
                return Err(StoreError::RowOutOfRange { row: bad, rows: n });
            }
            r
        }
        None => {
            all = (0..n).collect();
            &all
        }
    };
    let times = payload.times_ns();
    let mut by_day: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    for &i in rows {
        by_day.entry(time::epoch_day(times[i])).or_default().push(i);
    }
    by_day
        .into_iter()
        .map(|(day, mut idx)| {
            let batch = match payload {
                Payload::Optical(p) => optical(p, &mut idx)?,
                Payload::LineMonitoring(p) => line_monitoring(p, &mut idx)?,
                Payload::Latency(p) => latency(p, &mut idx)?,
            };
            Ok(DayBatch { day, batch })
        })
        .collect()
}

fn direction_labels(dirs: &[i32], idx: &[usize]) -> Result<ArrayRef> {
    let labels = idx
        .iter()
        .map(|&i| {
            Direction::try_from(dirs[i])
                .ok()
                .and_then(Direction::storage_label)
                .ok_or(StoreError::BadEnum {
                    column: tables::col::DIRECTION,
                    row: i,
                    value: dirs[i],
                })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(StringArray::from(labels)))
}

fn times(t: &[i64], idx: &[usize]) -> ArrayRef {
    Arc::new(TimestampNanosecondArray::from_iter_values(idx.iter().map(|&i| t[i])).with_timezone("UTC"))
}

fn u32s(v: &[u32], idx: &[usize]) -> ArrayRef {
    Arc::new(UInt32Array::from_iter_values(idx.iter().map(|&i| v[i])))
}

fn f32s(v: &[f32], idx: &[usize]) -> ArrayRef {
    Arc::new(Float32Array::from_iter_values(idx.iter().map(|&i| v[i])))
}

fn strings(v: &[String], idx: &[usize]) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(idx.iter().map(|&i| v[i].as_str())))
}

fn stats_columns(s: Option<&IntervalStats>, idx: &[usize], out: &mut Vec<ArrayRef>) {
    let empty = IntervalStats::default();
    let s = s.unwrap_or(&empty);
    out.push(f32s(&s.avg, idx));
    for v in [&s.min, &s.max] {
        if v.is_empty() {
            out.push(new_null_array(&DataType::Float32, idx.len()));
        } else {
            out.push(f32s(v, idx));
        }
    }
}

fn finish(table: &'static Table, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
    RecordBatch::try_new(table.arrow_schema(), columns).map_err(|source| StoreError::Arrow {
        table: table.name,
        source,
    })
}

/// Sorts `idx` by `key(i)`, then `i`. The keys are computed once into a flat vector and sorted
/// there: comparing through the index fetched four columns per comparison from all over memory,
/// which made sorting a seventh of a checkpoint.
fn sort_by_cached_key<K: Ord + Copy>(idx: &mut [usize], key: impl Fn(usize) -> K) {
    let mut keyed: Vec<(K, usize)> = idx.iter().map(|&i| (key(i), i)).collect();
    keyed.sort_unstable();
    for (slot, (_, i)) in idx.iter_mut().zip(keyed) {
        *slot = i;
    }
}

/// An order-preserving packing of a direction and two unsigned keys.
fn pack_key(direction: i32, a: u32, b: u32) -> u128 {
    let d = (direction as u32) ^ 0x8000_0000;
    (u128::from(d) << 64) | (u128::from(a) << 32) | u128::from(b)
}

fn optical(p: &OpticalChannelSamples, idx: &mut [usize]) -> Result<RecordBatch> {
    sort_by_cached_key(idx, |i| {
        (
            pack_key(p.direction[i], p.fiber_pair[i], p.channel[i]),
            p.time_unix_ns[i],
        )
    });
    let mut cols = vec![
        times(&p.time_unix_ns, idx),
        u32s(&p.fiber_pair, idx),
        direction_labels(&p.direction, idx)?,
        u32s(&p.channel, idx),
        Arc::new(Int64Array::from_value(p.interval_ns, idx.len())) as ArrayRef,
    ];
    for (_, stats) in p.stats() {
        stats_columns(stats, idx, &mut cols);
    }
    finish(&tables::OPTICAL_CHANNEL, cols)
}

fn line_monitoring(p: &LineMonitoringSamples, idx: &mut [usize]) -> Result<RecordBatch> {
    sort_by_cached_key(idx, |i| {
        (
            pack_key(p.direction[i], p.fiber_pair[i], p.repeater[i]),
            p.time_unix_ns[i],
        )
    });
    let cols = vec![
        times(&p.time_unix_ns, idx),
        Arc::new(UInt64Array::from_iter_values(idx.iter().map(|&i| p.sweep_id[i]))) as ArrayRef,
        u32s(&p.fiber_pair, idx),
        direction_labels(&p.direction, idx)?,
        u32s(&p.repeater, idx),
        f32s(&p.loopback_gain_db, idx),
    ];
    finish(&tables::LINE_MONITORING, cols)
}

fn latency(p: &LatencySamples, idx: &mut [usize]) -> Result<RecordBatch> {
    idx.sort_unstable_by(|&a, &b| {
        let key = |i: usize| {
            (
                p.direction[i],
                p.fiber_pair[i],
                &p.src_station[i],
                &p.dst_station[i],
                p.time_unix_ns[i],
                i,
            )
        };
        key(a).cmp(&key(b))
    });
    let kinds = idx
        .iter()
        .map(|&i| {
            LatencyKind::try_from(p.kind[i])
                .ok()
                .and_then(LatencyKind::storage_label)
                .ok_or(StoreError::BadEnum {
                    column: tables::col::KIND,
                    row: i,
                    value: p.kind[i],
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let cols = vec![
        times(&p.time_unix_ns, idx),
        u32s(&p.fiber_pair, idx),
        direction_labels(&p.direction, idx)?,
        strings(&p.src_station, idx),
        strings(&p.dst_station, idx),
        Arc::new(StringArray::from(kinds)) as ArrayRef,
        Arc::new(Float64Array::from_iter_values(idx.iter().map(|&i| p.delay_us[i]))) as ArrayRef,
        strings(&p.path_id, idx),
    ];
    finish(&tables::LATENCY, cols)
}

/// Parquet writer settings for the stored tables.
#[derive(Debug, Clone, Copy)]
pub struct ParquetOptions {
    /// zstd level; default 1: on simulated telemetry level 3 made files 1 % smaller for a quarter
    /// more checkpoint CPU.
    pub zstd_level: i32,
    /// Largest row group; default 1,048,576 rows.
    pub max_row_group_rows: usize,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        Self {
            zstd_level: 1,
            max_row_group_rows: 1 << 20,
        }
    }
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_owned();
    move |source| StoreError::Io { op, path, source }
}

/// Opens and fsyncs a directory so that entries created or renamed in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

/// Creates `dir` and any missing parents, fsyncing each parent that gained an entry.
pub fn create_dir_durable(dir: &Path) -> Result<()> {
    // The empty path is the current directory (the parent of a relative `data`).
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_durable(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(io_err("create directory", dir)(e)),
    }
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => Ok(()),
    }
}

/// Writes `batches` (all of `table`'s schema, all of one cable and UTC day, each sorted by the table's
/// sort key and given in that order) as one Parquet file `part-<stem>.parquet` in its partition under
/// `data`, durably. Returns the file's path.
///
/// Costs one fsync of the file and one of its directory (plus one per new directory).
pub fn write_part(
    data: &Path,
    table: &'static Table,
    cable: &CableId,
    day: i32,
    stem: &str,
    batches: &[RecordBatch],
    options: ParquetOptions,
) -> Result<PathBuf> {
    let dir = layout::partition_dir(data, table, cable, day);
    create_dir_durable(&dir)?;
    let name = layout::part_file_name(stem);
    let final_path = dir.join(&name);
    let temp_path = dir.join(layout::temp_file_name(&name));

    let file = File::create(&temp_path).map_err(io_err("create", &temp_path))?;
    let schema = table.arrow_schema();
    let parquet_err = |source| StoreError::Parquet {
        path: temp_path.clone(),
        source,
    };
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(writer_properties(table, options)))
        .map_err(parquet_err)?;
    for batch in batches {
        writer.write(batch).map_err(parquet_err)?;
    }
    let file = writer.into_inner().map_err(parquet_err)?;
    file.sync_all().map_err(io_err("fsync", &temp_path))?;
    drop(file);
    fs::rename(&temp_path, &final_path).map_err(io_err("rename", &temp_path))?;
    sync_dir(&dir)?;
    Ok(final_path)
}

fn writer_properties(table: &Table, options: ParquetOptions) -> WriterProperties {
    let level = ZstdLevel::try_new(options.zstd_level).unwrap_or_default();
    let sorting = table
        .sort_key
        .iter()
        .filter_map(|key| table.columns.iter().position(|c| c.name == *key))
        .map(|i| SortingColumn {
            column_idx: i32::try_from(i).unwrap_or(i32::MAX),
            descending: false,
            nulls_first: false,
        })
        .collect();
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_row_count(Some(options.max_row_group_rows))
        .set_sorting_columns(Some(sorting))
        .set_created_by(format!("cablewatch {}", env!("CARGO_PKG_VERSION")));
    // Measurements are nearly all distinct: a dictionary costs a hash per value (it was the largest
    // single cost of a checkpoint) and saves nothing. Floats are stored byte-stream-split, which
    // groups exponent and mantissa bytes so zstd compresses them; times delta-encoded. Keys
    // (fiber pair, channel, repeater, direction, ids) keep dictionaries.
    for column in table.columns {
        let path = ColumnPath::from(column.name);
        let encoding = match column.ty {
            ColumnType::Float32 | ColumnType::Float64 => Some(Encoding::BYTE_STREAM_SPLIT),
            ColumnType::TimestampNsUtc | ColumnType::Int64 => Some(Encoding::DELTA_BINARY_PACKED),
            _ => None,
        };
        if let Some(encoding) = encoding {
            builder = builder
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_encoding(path, encoding);
        }
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cached-key sort gives the order of the plain tuple sort, for any signed direction and
    /// unsigned keys, ties broken by row.
    #[test]
    fn cached_key_sort_matches_the_plain_tuple_sort() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for n in [0, 1, 2, 17, 1000] {
            let dir: Vec<i32> = (0..n).map(|_| (next() % 5) as i32 - 2).collect();
            let a: Vec<u32> = (0..n).map(|_| [0, 1, u32::MAX][(next() % 3) as usize]).collect();
            let b: Vec<u32> = (0..n).map(|_| (next() % 4) as u32 * 0x4000_0000).collect();
            let t: Vec<i64> = (0..n).map(|_| (next() % 7) as i64 - 3).collect();
            let mut fast: Vec<usize> = (0..n).rev().collect();
            sort_by_cached_key(&mut fast, |i| (pack_key(dir[i], a[i], b[i]), t[i]));
            let mut plain: Vec<usize> = (0..n).collect();
            plain.sort_by_key(|&i| (dir[i], a[i], b[i], t[i], i));
            assert_eq!(fast, plain, "n = {n}");
        }
    }
}
