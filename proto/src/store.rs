//! Wire batches -> Arrow record batches -> Parquet files, for every writer of the stored tables.
//!
//! [`to_record_batches`] splits a batch's rows by UTC date (one partition each), sorts them by the
//! table's sort key and builds arrays with the schema of [`crate::tables`]. [`write_part`] persists
//! record batches durably: zstd Parquet written to a temporary name, fsynced, renamed into its
//! partition, and the directory fsynced, so a crash leaves either the whole file or none of it.

use std::{
    collections::{BTreeMap, HashMap},
    fs::{self, File},
    hash::{BuildHasherDefault, Hasher},
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
    file::{
        metadata::{KeyValue, SortingColumn},
        properties::WriterProperties,
        reader::{FileReader, SerializedFileReader},
    },
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
    /// Parts given to one file belong to different tables or cables.
    #[error("part {part} is {found}, expected {expected}")]
    MixedParts {
        /// Index of the first part that differs.
        part: usize,
        /// Table and cable of the first part.
        expected: String,
        /// Table and cable of the differing part.
        found: String,
    },
    /// More parts than a row index can address.
    #[error("{parts} parts given to one file; at most 2^32 are supported")]
    TooManyParts {
        /// The number of parts.
        parts: usize,
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

/// Rows of one UTC day, ready to write to that day's partition.
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
    let at = |r: usize| (0, u32::try_from(r).unwrap_or(u32::MAX));
    let idx: Vec<At> = match rows {
        Some(r) => {
            if let Some(&bad) = r.iter().find(|&&i| i >= n) {
                return Err(StoreError::RowOutOfRange { row: bad, rows: n });
            }
            r.iter().map(|&i| at(i)).collect()
        }
        None => (0..n).map(at).collect(),
    };
    build(std::slice::from_ref(payload), idx)
}

/// Converts every row of `parts` (payloads of one table and cable, such as the batches buffered
/// between two checkpoints) into one sorted record batch per UTC day, in day order. The arrays are
/// gathered straight from the parts: nothing is concatenated first.
pub fn parts_to_record_batches(parts: &[Payload]) -> Result<Vec<DayBatch>> {
    let mut idx = Vec::new();
    for (p, part) in parts.iter().enumerate() {
        let rows = part.row_count()?;
        let p = u32::try_from(p).map_err(|_| StoreError::TooManyParts { parts: parts.len() })?;
        idx.reserve(rows);
        idx.extend((0..rows).map(|r| (p, u32::try_from(r).unwrap_or(u32::MAX))));
    }
    build(parts, idx)
}

/// A row among several payloads: (part, row in the part).
type At = (u32, u32);

/// Values of one column across the parts, indexed by [`At`].
struct Parts<'a, T>(Vec<&'a [T]>);

impl<'a, T> Parts<'a, T> {
    fn new<P>(parts: &[&'a P], column: impl Fn(&'a P) -> &'a [T]) -> Self {
        Self(parts.iter().map(|&p| column(p)).collect())
    }

    fn get(&self, (p, r): At) -> &'a T {
        &self.0[p as usize][r as usize]
    }
}

impl<T: Copy> Parts<'_, T> {
    fn gather(&self, idx: &[At]) -> Vec<T> {
        idx.iter().map(|&at| *self.get(at)).collect()
    }
}

/// The parts as the variant of their first part; an error names a part of another table or cable.
fn same_kind<'a, P>(parts: &'a [Payload], pick: impl Fn(&'a Payload) -> Option<&'a P>) -> Result<Vec<&'a P>> {
    let (table, cable) = (parts[0].table().name, parts[0].cable_id());
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            pick(p)
                .filter(|_| p.cable_id() == cable)
                .ok_or_else(|| StoreError::MixedParts {
                    part: i,
                    expected: format!("{table} of cable {cable}"),
                    found: format!("{} of cable {}", p.table().name, p.cable_id()),
                })
        })
        .collect()
}

fn build(parts: &[Payload], idx: Vec<At>) -> Result<Vec<DayBatch>> {
    if parts.is_empty() {
        return Ok(Vec::new());
    }
    let times = Parts(parts.iter().map(Payload::times_ns).collect());
    let days = split_by_day(&times, idx);
    match &parts[0] {
        Payload::Optical(_) => {
            let ps = same_kind(parts, |p| {
                if let Payload::Optical(o) = p {
                    Some(o)
                } else {
                    None
                }
            })?;
            per_day(days, |idx| optical(&ps, idx))
        }
        Payload::LineMonitoring(_) => {
            let ps = same_kind(parts, |p| {
                if let Payload::LineMonitoring(o) = p {
                    Some(o)
                } else {
                    None
                }
            })?;
            per_day(days, |idx| line_monitoring(&ps, idx))
        }
        Payload::Latency(_) => {
            let ps = same_kind(parts, |p| {
                if let Payload::Latency(o) = p {
                    Some(o)
                } else {
                    None
                }
            })?;
            per_day(days, |idx| latency(&ps, idx))
        }
    }
}

/// One record batch per day's rows.
fn per_day(
    days: Vec<(i32, Vec<At>)>,
    batch: impl Fn(&mut [At]) -> Result<RecordBatch>,
) -> Result<Vec<DayBatch>> {
    days.into_iter()
        .map(|(day, mut idx)| {
            Ok(DayBatch {
                day,
                batch: batch(&mut idx)?,
            })
        })
        .collect()
}

/// Splits rows by UTC day, in day order; rows keep their order within a day. One day (the usual
/// case) costs one pass and no copy.
fn split_by_day(times: &Parts<'_, i64>, idx: Vec<At>) -> Vec<(i32, Vec<At>)> {
    let Some(&first) = idx.first() else {
        return Vec::new();
    };
    let day = |at: At| time::epoch_day(*times.get(at));
    let first_day = day(first);
    if idx.iter().all(|&at| day(at) == first_day) {
        return vec![(first_day, idx)];
    }
    let mut by_day: BTreeMap<i32, Vec<At>> = BTreeMap::new();
    for at in idx {
        by_day.entry(day(at)).or_default().push(at);
    }
    by_day.into_iter().collect()
}

fn direction_labels(dirs: &Parts<'_, i32>, idx: &[At]) -> Result<ArrayRef> {
    let labels = idx
        .iter()
        .map(|&at| {
            let value = *dirs.get(at);
            Direction::try_from(value)
                .ok()
                .and_then(Direction::storage_label)
                .ok_or(StoreError::BadEnum {
                    column: tables::col::DIRECTION,
                    row: at.1 as usize,
                    value,
                })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(StringArray::from(labels)))
}

fn times(t: &Parts<'_, i64>, idx: &[At]) -> ArrayRef {
    Arc::new(TimestampNanosecondArray::from(t.gather(idx)).with_timezone("UTC"))
}

fn u32s(v: &Parts<'_, u32>, idx: &[At]) -> ArrayRef {
    Arc::new(UInt32Array::from(v.gather(idx)))
}

fn f32s(v: &Parts<'_, f32>, idx: &[At]) -> ArrayRef {
    Arc::new(Float32Array::from(v.gather(idx)))
}

fn strings(v: &Parts<'_, String>, idx: &[At]) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(
        idx.iter().map(|&at| v.get(at).as_str()),
    ))
}

/// One statistic's avg, min and max columns. A part without min/max gives nulls for its rows; a part
/// without the statistic at all gives nulls in all three.
fn stats_columns<'a>(
    parts: &[&'a OpticalChannelSamples],
    stat: impl Fn(&'a OpticalChannelSamples) -> Option<&'a IntervalStats>,
    idx: &[At],
    out: &mut Vec<ArrayRef>,
) {
    let stats: Vec<Option<&IntervalStats>> = parts.iter().map(|&p| stat(p)).collect();
    let column = |values: fn(&IntervalStats) -> &[f32]| -> ArrayRef {
        let complete = stats.iter().all(|s| s.is_some_and(|s| !values(s).is_empty()));
        if complete {
            let cols = Parts(stats.iter().map(|s| s.map_or(&[][..], values)).collect());
            return f32s(&cols, idx);
        }
        if stats.iter().all(|s| s.is_none_or(|s| values(s).is_empty())) {
            return new_null_array(&DataType::Float32, idx.len());
        }
        Arc::new(
            idx.iter()
                .map(|&(p, r)| stats[p as usize].and_then(|s| values(s).get(r as usize).copied()))
                .collect::<Float32Array>(),
        )
    };
    out.push(column(|s| &s.avg));
    out.push(column(|s| &s.min));
    out.push(column(|s| &s.max));
}

fn finish(table: &'static Table, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
    RecordBatch::try_new(table.arrow_schema(), columns).map_err(|source| StoreError::Arrow {
        table: table.name,
        source,
    })
}

/// Sorts `idx` by `(series(at), time(at), at)`, `at` being the arrival order.
///
/// Rows are bucketed by series (a few hundred per cable and checkpoint) with one hash lookup each,
/// the buckets laid out in key order, and a bucket sorted by `(time, at)` only when it is not in that
/// order already (stations send in time order). A comparison sort of all rows on cached keys was the
/// largest cost of building a checkpoint's arrays before this.
fn sort_by_series(idx: &mut [At], series: impl Fn(At) -> u128, time: impl Fn(At) -> i64) {
    let mut ids: HashMap<u128, usize, BuildHasherDefault<SeriesHasher>> = HashMap::default();
    let mut keys: Vec<u128> = Vec::new();
    let mut counts: Vec<usize> = Vec::new();
    let mut group_of: Vec<usize> = Vec::with_capacity(idx.len());
    for &at in idx.iter() {
        let key = series(at);
        let g = *ids.entry(key).or_insert_with(|| {
            keys.push(key);
            counts.push(0);
            keys.len() - 1
        });
        counts[g] += 1;
        group_of.push(g);
    }
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_unstable_by_key(|&g| keys[g]);
    let mut start = vec![0; keys.len()];
    let mut offset = 0;
    for &g in &order {
        start[g] = offset;
        offset += counts[g];
    }
    let mut out = vec![(0, 0); idx.len()];
    let mut fill = start.clone();
    for (&at, &g) in idx.iter().zip(&group_of) {
        out[fill[g]] = at;
        fill[g] += 1;
    }
    for &g in &order {
        let bucket = &mut out[start[g]..start[g] + counts[g]];
        if !bucket.windows(2).all(|w| (time(w[0]), w[0]) < (time(w[1]), w[1])) {
            bucket.sort_unstable_by_key(|&at| (time(at), at));
        }
    }
    idx.copy_from_slice(&out);
}

/// A fast hash of a packed series key (splitmix64's finaliser); the keys are not attacker-chosen in
/// a way that matters here: the worst case is a slower checkpoint.
#[derive(Debug, Default)]
struct SeriesHasher(u64);

impl Hasher for SeriesHasher {
    fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 30;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^= x >> 27;
        x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u128(&mut self, v: u128) {
        self.0 = (v as u64)
            ^ ((v >> 64) as u64)
                .rotate_left(29)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// An order-preserving packing of a direction and two unsigned keys.
fn pack_key(direction: i32, a: u32, b: u32) -> u128 {
    let d = (direction as u32) ^ 0x8000_0000;
    (u128::from(d) << 64) | (u128::from(a) << 32) | u128::from(b)
}

fn optical(ps: &[&OpticalChannelSamples], idx: &mut [At]) -> Result<RecordBatch> {
    let t = Parts::new(ps, |p| &p.time_unix_ns);
    let fp = Parts::new(ps, |p| &p.fiber_pair);
    let dir = Parts::new(ps, |p| &p.direction);
    let ch = Parts::new(ps, |p| &p.channel);
    sort_by_series(
        idx,
        |at| pack_key(*dir.get(at), *fp.get(at), *ch.get(at)),
        |at| *t.get(at),
    );
    let interval: Vec<i64> = ps.iter().map(|p| p.interval_ns).collect();
    let mut cols = vec![
        times(&t, idx),
        u32s(&fp, idx),
        direction_labels(&dir, idx)?,
        u32s(&ch, idx),
        Arc::new(Int64Array::from_iter_values(
            idx.iter().map(|&(p, _)| interval[p as usize]),
        )) as ArrayRef,
    ];
    stats_columns(ps, |p| p.rx_power_dbm.as_ref(), idx, &mut cols);
    stats_columns(ps, |p| p.tx_power_dbm.as_ref(), idx, &mut cols);
    stats_columns(ps, |p| p.osnr_db.as_ref(), idx, &mut cols);
    stats_columns(ps, |p| p.pre_fec_ber.as_ref(), idx, &mut cols);
    stats_columns(ps, |p| p.q_db.as_ref(), idx, &mut cols);
    stats_columns(ps, |p| p.cd_ps_nm.as_ref(), idx, &mut cols);
    stats_columns(ps, |p| p.dgd_ps.as_ref(), idx, &mut cols);
    stats_columns(ps, |p| p.pdl_db.as_ref(), idx, &mut cols);
    stats_columns(ps, |p| p.sop_roc_krad_s.as_ref(), idx, &mut cols);
    finish(&tables::OPTICAL_CHANNEL, cols)
}

fn line_monitoring(ps: &[&LineMonitoringSamples], idx: &mut [At]) -> Result<RecordBatch> {
    let t = Parts::new(ps, |p| &p.time_unix_ns);
    let fp = Parts::new(ps, |p| &p.fiber_pair);
    let dir = Parts::new(ps, |p| &p.direction);
    let rep = Parts::new(ps, |p| &p.repeater);
    sort_by_series(
        idx,
        |at| pack_key(*dir.get(at), *fp.get(at), *rep.get(at)),
        |at| *t.get(at),
    );
    let cols = vec![
        times(&t, idx),
        Arc::new(UInt64Array::from(Parts::new(ps, |p| &p.sweep_id).gather(idx))) as ArrayRef,
        u32s(&fp, idx),
        direction_labels(&dir, idx)?,
        u32s(&rep, idx),
        f32s(&Parts::new(ps, |p| &p.loopback_gain_db), idx),
    ];
    finish(&tables::LINE_MONITORING, cols)
}

fn latency(ps: &[&LatencySamples], idx: &mut [At]) -> Result<RecordBatch> {
    let t = Parts::new(ps, |p| &p.time_unix_ns);
    let fp = Parts::new(ps, |p| &p.fiber_pair);
    let dir = Parts::new(ps, |p| &p.direction);
    let src = Parts::new(ps, |p| &p.src_station);
    let dst = Parts::new(ps, |p| &p.dst_station);
    let kind = Parts::new(ps, |p| &p.kind);
    idx.sort_unstable_by(|&a, &b| {
        let key = |at: At| {
            (
                *dir.get(at),
                *fp.get(at),
                src.get(at),
                dst.get(at),
                *t.get(at),
                at,
            )
        };
        key(a).cmp(&key(b))
    });
    let kinds = idx
        .iter()
        .map(|&at| {
            let value = *kind.get(at);
            LatencyKind::try_from(value)
                .ok()
                .and_then(LatencyKind::storage_label)
                .ok_or(StoreError::BadEnum {
                    column: tables::col::KIND,
                    row: at.1 as usize,
                    value,
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let cols = vec![
        times(&t, idx),
        u32s(&fp, idx),
        direction_labels(&dir, idx)?,
        strings(&src, idx),
        strings(&dst, idx),
        Arc::new(StringArray::from(kinds)) as ArrayRef,
        Arc::new(Float64Array::from(Parts::new(ps, |p| &p.delay_us).gather(idx))) as ArrayRef,
        strings(&Parts::new(ps, |p| &p.path_id), idx),
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

/// Parquet key-value metadata key holding the stored-table contract version a file was written to.
pub const CONTRACT_KEY: &str = "cablewatch.contract";

/// The stored-table contract version this build writes.
///
/// - 1 (files without the key): `line_monitoring.repeater` was "span k at repeater k" in both
///   directions; the simulator wrote a `b_to_a` loss in span k at repeater k.
/// - 2: `repeater` is the physical repeater numbered from the A end, as the equipment reports it, and
///   the span it measures depends on the direction ([`crate::topology::Cable::span_covered_by`]).
pub const CONTRACT_VERSION: u32 = 2;

/// The contract version `path` was written to: its [`CONTRACT_KEY`] metadata, 1 for a file without
/// it (written before the key existed).
pub fn contract_version(path: &Path) -> Result<u32> {
    let file = File::open(path).map_err(io_err("open", path))?;
    let reader = SerializedFileReader::new(file).map_err(|source| StoreError::Parquet {
        path: path.to_path_buf(),
        source,
    })?;
    let value = reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == CONTRACT_KEY).cloned())
        .and_then(|k| k.value);
    match value {
        None => Ok(1),
        Some(v) => v.trim().parse().map_err(|_| StoreError::Io {
            op: "read the contract version of",
            path: path.to_path_buf(),
            source: io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{CONTRACT_KEY} = {v:?} is not a version number"),
            ),
        }),
    }
}

/// Opens and fsyncs a directory so that entries created or renamed in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(test)]
    tests::SYNCED.with(|s| s.borrow_mut().push(dir.to_path_buf()));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

/// Directories whose names this process has made durable (their parents synced).
static DURABLE_DIRS: std::sync::Mutex<std::collections::BTreeSet<std::path::PathBuf>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// Creates `dir` and any missing parents, and makes each of their names durable: the parent of
/// every component is fsynced once per process, also when the component already existed. A
/// directory can exist without being durable: an earlier run created it and was killed before
/// syncing its parent, and a power cut then removes it with everything written under it since
/// (a checkpoint's parts, whose write-ahead log segments are already deleted). A parent this
/// process may not open (a home directory with only search permission) existed before it and is
/// not its to sync; that is skipped.
pub fn create_dir_durable(dir: &Path) -> Result<()> {
    // The empty path is the current directory (the parent of a relative `data`).
    if dir.as_os_str().is_empty() || DURABLE_DIRS.lock().is_ok_and(|d| d.contains(dir)) {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_durable(parent)?;
    }
    let created = match fs::create_dir(dir) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
        Err(e) => return Err(io_err("create directory", dir)(e)),
    };
    // A relative one-component path (`--data-dir data`) has the empty path as parent: its name
    // lives in the working directory, which is synced like any other parent.
    if let Some(parent) = dir.parent() {
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        match sync_dir(parent) {
            Err(StoreError::Io { source, .. })
                if !created && source.kind() == io::ErrorKind::PermissionDenied => {}
            other => other?,
        }
    }
    if let Ok(mut d) = DURABLE_DIRS.lock() {
        d.insert(dir.to_path_buf());
    }
    Ok(())
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
        .set_created_by(format!("cablewatch {}", env!("CARGO_PKG_VERSION")))
        .set_key_value_metadata(Some(vec![KeyValue::new(
            CONTRACT_KEY.to_owned(),
            CONTRACT_VERSION.to_string(),
        )]));
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

    thread_local! {
        /// Directories `sync_dir` synced on this thread, in order.
        pub(super) static SYNCED: std::cell::RefCell<Vec<PathBuf>> = const { std::cell::RefCell::new(Vec::new()) };
    }

    /// A directory an earlier run created but never made durable (killed before syncing its
    /// parent) is made durable now: its parent is synced although it already exists.
    #[test]
    fn an_existing_directory_has_its_parent_synced_once() {
        let root = tempfile::tempdir().unwrap();
        let left = root.path().join("data");
        fs::create_dir(&left).unwrap();
        SYNCED.with(|s| s.borrow_mut().clear());
        create_dir_durable(&left.join("_wal")).unwrap();
        let synced = SYNCED.with(|s| s.borrow().clone());
        assert!(synced.contains(&root.path().to_path_buf()), "{synced:?}");
        assert!(synced.contains(&left), "{synced:?}");
        assert!(left.join("_wal").is_dir());
        // Once per process: a second call syncs nothing.
        SYNCED.with(|s| s.borrow_mut().clear());
        create_dir_durable(&left.join("_wal")).unwrap();
        assert!(SYNCED.with(|s| s.borrow().is_empty()));
    }

    /// The series sort gives the order of the plain tuple sort, for any signed direction and
    /// unsigned keys, ties broken by arrival; with times in order (the fast path) and shuffled.
    #[test]
    fn series_sort_matches_the_plain_tuple_sort() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for n in [0, 1, 2, 17, 1000, 5000] {
            for times_in_order in [false, true] {
                let dir: Vec<i32> = (0..n).map(|_| (next() % 5) as i32 - 2).collect();
                let a: Vec<u32> = (0..n).map(|_| [0, 1, u32::MAX][(next() % 3) as usize]).collect();
                let b: Vec<u32> = (0..n).map(|_| (next() % 4) as u32 * 0x4000_0000).collect();
                let t: Vec<i64> = if times_in_order {
                    (0..n).map(|i| i as i64 / 3).collect()
                } else {
                    (0..n).map(|_| (next() % 7) as i64 - 3).collect()
                };
                // Two parts, the second given first: arrival order is (part, row).
                let half = n as u32 / 2;
                let row = |(p, r): At| (if p == 0 { r } else { half + r }) as usize;
                let mut fast: Vec<At> = (0..n as u32 - half)
                    .map(|r| (1, r))
                    .chain((0..half).map(|r| (0, r)))
                    .collect();
                sort_by_series(
                    &mut fast,
                    |at| {
                        let i = row(at);
                        pack_key(dir[i], a[i], b[i])
                    },
                    |at| t[row(at)],
                );
                let mut plain: Vec<At> = (0..half)
                    .map(|r| (0, r))
                    .chain((0..n as u32 - half).map(|r| (1, r)))
                    .collect();
                plain.sort_by_key(|&at| {
                    let i = row(at);
                    (dir[i], a[i], b[i], t[i], at)
                });
                assert_eq!(fast, plain, "n = {n}, times in order: {times_in_order}");
            }
        }
    }
}
