//! Splitting a table into series: one time-ordered array per (cable, direction, fiber pair, channel
//! or repeater), the unit every detector works on.
//!
//! Each partition (one cable-day) is read and reduced by one task, the partitions in parallel on
//! polars' thread pool: polars reads one direction at a time (a filtered scan) and projects only the
//! key columns and the metric from disk, and the frame is cut into runs of one series, each column
//! taken out of the frame as it is copied. The
//! runs of all days are then joined per series in time order. Optical rows become one
//! time-by-channel matrix per fiber and day; the per-time aggregates that need only that day
//! (channels reporting, median Q, median SOP) are computed at once, and the Q matrix is kept until
//! every day is read, for each channel's mean over the window. Memory is bounded by the partitions
//! in flight (one per thread) plus the result.

use cablewatch_proto::tables::{self, Table};
use ndarray::Array1;
use polars::prelude::*;

use crate::{
    AnalyzerError, Result,
    error::polars_ctx,
    load::{Filter, Partition, partitions, scan_partition},
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

impl SeriesKey {
    /// The key of a series read from partition `p` in direction `d` (an index into [`DIRECTIONS`]).
    fn of(p: &Partition, d: u32, fiber_pair: u32, index: u32) -> Self {
        Self {
            cable: p.cable.clone(),
            direction: DIRECTIONS[d as usize].to_owned(),
            fiber_pair,
            index,
        }
    }
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

/// The stored direction labels; a frame carries their index (`DIRECTIONS.len()` for anything else).
pub const DIRECTIONS: [&str; 2] = ["a_to_b", "b_to_a"];

/// Reads `columns` of every partition of `table` that `filter` touches, one direction at a time,
/// and hands each frame to `each` with the direction's index in [`DIRECTIONS`]; results come back
/// in (cable, day, direction) order.
///
/// Each partition is read and processed by one task, all tasks in parallel (no batches: a batch
/// waits for its slowest partition). Called inside polars' thread pool (see [`crate::run::run`]),
/// polars' own decoding and these tasks share one set of threads. `progress` hears (partitions
/// done, total) from whichever thread finishes one.
///
/// A partition is read as one filtered scan per direction: polars then never builds the direction
/// strings (on `large`, reading optical took 0.42-0.48 s instead of 0.66 s with 2 threads, and half
/// the memory). One more scan counts the rows with any other direction, which are bad input.
fn read_partitions<T: Send>(
    data: &std::path::Path,
    table: &'static Table,
    filter: &Filter,
    columns: Vec<Expr>,
    what: &str,
    each: impl Fn(u32, DataFrame) -> PolarsResult<T> + Sync,
    progress: &mut (dyn FnMut(usize, usize) + Send),
) -> Result<Vec<(Partition, u32, T)>> {
    use rayon::prelude::*;
    let all = partitions(data, table, filter)?;
    let direction = || col(tables::col::DIRECTION);
    let one = |p: &Partition| -> Result<Vec<(Partition, u32, T)>> {
        // A file polars cannot read is bad input: name it, do not call it an internal error.
        let unreadable =
            |e: PolarsError| AnalyzerError::input(&p.dir, 0, format!("{what}: unreadable Parquet: {e}"));
        let others = DIRECTIONS
            .iter()
            .fold(lit(true), |acc, d| acc.and(direction().neq(lit(*d))));
        let bad = scan_partition(p, table, filter)?
            .filter(others)
            .select([len().cast(DataType::UInt64).alias("n")])
            .collect()
            .and_then(|df| Ok(df.column("n")?.u64()?.get(0).unwrap_or(0)))
            .map_err(unreadable)?;
        if bad > 0 {
            return Err(AnalyzerError::Schema {
                table: table.name,
                dir: p.dir.clone(),
                column: tables::col::DIRECTION.to_owned(),
                problem: format!("a value other than {}", DIRECTIONS.join(" or ")),
            });
        }
        let mut out = Vec::with_capacity(DIRECTIONS.len());
        for (d, name) in DIRECTIONS.iter().enumerate() {
            let df = scan_partition(p, table, filter)?
                .filter(direction().eq(lit(*name)))
                .select(columns.clone())
                .collect()
                .map_err(unreadable)?;
            let t = each(d as u32, df).map_err(polars_ctx(format!("{what} from {}", p.dir.display())))?;
            out.push((p.clone(), d as u32, t));
        }
        Ok(out)
    };
    let done = std::sync::Mutex::new((0usize, progress));
    // Already there when called from `run`; callers outside (the summary, tests) join it here.
    let parts: Vec<Vec<(Partition, u32, T)>> = polars_core::runtime::THREAD_POOL.install(|| {
        all.par_iter()
            .map(|p| {
                let r = one(p)?;
                let mut guard = done.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let (count, report) = &mut *guard;
                *count += 1;
                report(*count, all.len());
                Ok(r)
            })
            .collect::<Result<_>>()
    })?;
    Ok(parts.into_iter().flatten().collect())
}

/// A numeric column's values, `missing` where null; without nulls, a straight copy of each chunk.
fn copy_values<T: PolarsNumericType>(ca: &ChunkedArray<T>, missing: T::Native) -> Vec<T::Native> {
    let mut out = Vec::with_capacity(ca.len());
    if ca.null_count() == 0 {
        for arr in ca.downcast_iter() {
            out.extend_from_slice(arr.values());
        }
    } else {
        out.extend(ca.iter().map(|x| x.unwrap_or(missing)));
    }
    out
}

// Each of these takes a column out of the frame and copies it: the frame's memory goes as ours
// comes, which keeps the peak per partition in flight lower.

fn u32s(df: &mut DataFrame, name: &str) -> PolarsResult<Vec<u32>> {
    Ok(copy_values(df.drop_in_place(name)?.u32()?, 0))
}

fn i64s(df: &mut DataFrame, name: &str) -> PolarsResult<Vec<i64>> {
    Ok(copy_values(df.drop_in_place(name)?.i64()?, 0))
}

fn f64s(df: &mut DataFrame, name: &str) -> PolarsResult<Vec<f64>> {
    Ok(copy_values(df.drop_in_place(name)?.f64()?, f64::NAN))
}

fn f32s(df: &mut DataFrame, name: &str) -> PolarsResult<Vec<f32>> {
    Ok(copy_values(df.drop_in_place(name)?.f32()?, f32::NAN))
}

/// The order that puts `times` ascending (stable), or `None` when they already are.
fn time_order(times: &[i64]) -> Option<Vec<usize>> {
    if times.is_sorted() {
        return None;
    }
    let mut order: Vec<usize> = (0..times.len()).collect();
    order.sort_by_key(|&i| times[i]);
    Some(order)
}

/// `values` in `order`.
fn permute<T: Copy>(values: &mut Vec<T>, order: &[usize]) {
    *values = order.iter().map(|&i| values[i]).collect();
}

/// One partition-direction's rows of each series, as runs: ((fiber pair, index), times, values).
type Runs = Vec<((u32, u32), Vec<i64>, Vec<f64>)>;

/// The key, time and value columns of a frame with `fiber_pair`, `index`, `t` and `v`, taken out
/// of it.
struct Rows {
    fiber_pair: Vec<u32>,
    index: Vec<u32>,
    t: Vec<i64>,
    v: Vec<f64>,
}

impl Rows {
    fn take(df: &mut DataFrame) -> PolarsResult<Self> {
        Ok(Self {
            fiber_pair: u32s(df, "fiber_pair")?,
            index: u32s(df, "index")?,
            t: i64s(df, "t")?,
            v: f64s(df, "v")?,
        })
    }

    /// The runs of one key; a key may come back later in the file.
    fn runs(&self) -> Runs {
        let mut runs: Runs = Vec::new();
        for i in 0..self.t.len() {
            let key = (self.fiber_pair[i], self.index[i]);
            match runs.last_mut() {
                Some((k, times, values)) if *k == key => {
                    times.push(self.t[i]);
                    values.push(self.v[i]);
                }
                _ => runs.push((key, vec![self.t[i]], vec![self.v[i]])),
            }
        }
        runs
    }
}

/// The columns [`Rows`] takes: `metric` of series keyed by `index_column` (`None`: one series
/// per fiber and direction).
fn series_columns(index_column: Option<&str>, metric: &str) -> Vec<Expr> {
    let index = match index_column {
        Some(c) => col(c).cast(DataType::UInt32),
        None => lit(0u32).cast(DataType::UInt32),
    };
    vec![
        col(tables::col::FIBER_PAIR),
        index.alias("index"),
        col(tables::col::TIME).cast(DataType::Int64).alias("t"),
        col(metric).cast(DataType::Float64).alias("v"),
    ]
}

/// Each series' runs of all partitions joined in time order.
fn join_runs(parts: impl IntoIterator<Item = (Partition, u32, Runs)>) -> Vec<Series> {
    let mut merged: std::collections::BTreeMap<SeriesKey, (Vec<i64>, Vec<f64>)> = Default::default();
    for (p, d, runs) in parts {
        for ((fiber_pair, index), times, values) in runs {
            let (t, v) = merged.entry(SeriesKey::of(&p, d, fiber_pair, index)).or_default();
            t.extend(times);
            v.extend(values);
        }
    }
    merged
        .into_iter()
        .map(|(key, (mut times, mut values))| {
            if let Some(order) = time_order(&times) {
                permute(&mut times, &order);
                permute(&mut values, &order);
            }
            Series {
                key,
                times_ns: Array1::from_vec(times),
                values: Array1::from_vec(values),
            }
        })
        .collect()
}

/// Loads `metric` of `table` as series keyed by `index_column` (`None`: one series per fiber and
/// direction), one partition (cable-day) at a time; `progress` hears (partitions done, total).
pub fn load_series(
    data: &std::path::Path,
    table: &'static Table,
    index_column: Option<&str>,
    metric: &str,
    filter: &Filter,
    progress: &mut (dyn FnMut(usize, usize) + Send),
) -> Result<Vec<Series>> {
    let parts = read_partitions(
        data,
        table,
        filter,
        series_columns(index_column, metric),
        &format!("loading {}.{metric}", table.name),
        |_, mut df| Ok(Rows::take(&mut df)?.runs()),
        progress,
    )?;
    Ok(join_runs(parts))
}

/// One fiber's optical samples of one partition (cable-day): Q as a time-by-channel matrix, kept
/// until every day is read (each channel's mean over the window needs them all), and the per-time
/// aggregates that need no other day, computed at once.
#[derive(Debug, Default)]
struct FiberDay {
    /// Sample times, ascending, unique.
    times: Vec<i64>,
    /// Channel ids, ascending: the matrix columns.
    channels: Vec<u32>,
    /// Q, dB, row-major (`times.len() x channels.len()`), NaN where a channel did not report.
    q: Vec<f32>,
    /// Channels reporting Q at each time.
    reporting: Vec<u32>,
    /// Median Q over the channels at each time, dB.
    q_median: Vec<f64>,
    /// Median SOP rate-of-change maximum over the channels at each time, krad/s.
    sop_median: Vec<f64>,
    /// Median received power over the channels at each time, dBm.
    rx_median: Vec<f64>,
}

/// Median of the finite values in `scratch` (reordered); the mean of the middle two for an even
/// count, as polars computes it.
fn median_of(scratch: &mut [f32]) -> f64 {
    let n = scratch.len();
    if n == 0 {
        return f64::NAN;
    }
    let (_, &mut hi, _) = scratch.select_nth_unstable_by(n / 2, f32::total_cmp);
    if n % 2 == 1 {
        return f64::from(hi);
    }
    let lo = scratch[..n / 2].iter().copied().fold(f32::NEG_INFINITY, f32::max);
    (f64::from(lo) + f64::from(hi)) / 2.0
}

/// The day of every fiber in one partition frame of one direction (`fiber_pair`, `ch`, `t`, `q`,
/// `sop`), by fiber pair.
fn fiber_days(mut df: DataFrame) -> PolarsResult<Vec<(u32, FiberDay)>> {
    let df = &mut df;
    let (fp, ch, t) = (u32s(df, "fiber_pair")?, u32s(df, "ch")?, i64s(df, "t")?);
    let (q, sop, rx) = (f32s(df, "q")?, f32s(df, "sop")?, f32s(df, "rx")?);
    // Rows of each fiber, as runs of one channel with ascending times.
    let mut fibers: std::collections::BTreeMap<u32, Vec<std::ops::Range<usize>>> = Default::default();
    let mut start = 0;
    for i in 1..=t.len() {
        let breaks = i == t.len() || fp[i] != fp[start] || ch[i] != ch[start] || t[i] <= t[i - 1];
        if breaks {
            fibers.entry(fp[start]).or_default().push(start..i);
            start = i;
        }
    }
    let mut out = Vec::with_capacity(fibers.len());
    for (key, runs) in fibers {
        // The union of the runs' times: usually every channel has the same ones.
        let mut times: Vec<i64> = Vec::new();
        for r in &runs {
            let ts = &t[r.clone()];
            if ts != times.as_slice() {
                let mut merged = Vec::with_capacity(times.len().max(ts.len()));
                let (mut a, mut b) = (0, 0);
                while a < times.len() || b < ts.len() {
                    let next = match (times.get(a), ts.get(b)) {
                        (Some(&x), Some(&y)) if x == y => {
                            a += 1;
                            b += 1;
                            x
                        }
                        (Some(&x), Some(&y)) if x < y => {
                            a += 1;
                            x
                        }
                        (Some(&x), None) => {
                            a += 1;
                            x
                        }
                        (_, Some(&y)) => {
                            b += 1;
                            y
                        }
                        (None, None) => break,
                    };
                    merged.push(next);
                }
                times = merged;
            }
        }
        let mut channels: Vec<u32> = runs.iter().map(|r| ch[r.start]).collect();
        channels.sort_unstable();
        channels.dedup();
        let w = channels.len();
        let rows = times.len();
        let mut q_matrix = vec![f32::NAN; rows * w];
        let mut sop_matrix = vec![f32::NAN; rows * w];
        let mut rx_matrix = vec![f32::NAN; rows * w];
        for r in &runs {
            let Ok(c) = channels.binary_search(&ch[r.start]) else {
                continue;
            };
            let same = t[r.clone()] == times[..];
            for (k, i) in r.clone().enumerate() {
                let row = if same {
                    k
                } else {
                    match times.binary_search(&t[i]) {
                        Ok(row) => row,
                        Err(_) => continue,
                    }
                };
                q_matrix[row * w + c] = q[i];
                sop_matrix[row * w + c] = sop[i];
                rx_matrix[row * w + c] = rx[i];
            }
        }
        let mut day = FiberDay {
            reporting: Vec::with_capacity(rows),
            q_median: Vec::with_capacity(rows),
            sop_median: Vec::with_capacity(rows),
            rx_median: Vec::with_capacity(rows),
            times,
            channels,
            q: q_matrix,
        };
        let mut scratch: Vec<f32> = Vec::with_capacity(w);
        for r in 0..rows {
            scratch.clear();
            scratch.extend(
                day.q[r * w..(r + 1) * w]
                    .iter()
                    .copied()
                    .filter(|v| v.is_finite()),
            );
            day.reporting.push(scratch.len() as u32);
            day.q_median.push(median_of(&mut scratch));
            scratch.clear();
            scratch.extend(
                sop_matrix[r * w..(r + 1) * w]
                    .iter()
                    .copied()
                    .filter(|v| v.is_finite()),
            );
            day.sop_median.push(median_of(&mut scratch));
            scratch.clear();
            scratch.extend(
                rx_matrix[r * w..(r + 1) * w]
                    .iter()
                    .copied()
                    .filter(|v| v.is_finite()),
            );
            day.rx_median.push(median_of(&mut scratch));
        }
        out.push((key, day));
    }
    Ok(out)
}

/// Per fiber and time, over the fiber's channels: how many reported, median Q, median SOP maximum,
/// median received power, and the lowest channel Q against that channel's own mean over the window (and which channel).
/// Each partition (cable-day) is read and reduced on its own, in parallel (only the seven columns
/// needed are read); what stays until the end is one Q matrix per fiber and day.
pub fn load_fiber_optical(
    data: &std::path::Path,
    filter: &Filter,
    progress: &mut (dyn FnMut(usize, usize) + Send),
) -> Result<Vec<crate::detect::FiberSeries>> {
    use rayon::prelude::*;
    use tables::{OPTICAL_CHANNEL, col as c};
    let parts = read_partitions(
        data,
        &OPTICAL_CHANNEL,
        filter,
        vec![
            col(c::FIBER_PAIR),
            col(c::CHANNEL).alias("ch"),
            col(c::TIME).cast(DataType::Int64).alias("t"),
            col(c::Q_DB_AVG).cast(DataType::Float32).alias("q"),
            col(c::SOP_ROC_KRAD_S_MAX).cast(DataType::Float32).alias("sop"),
            col(c::RX_POWER_DBM_AVG).cast(DataType::Float32).alias("rx"),
        ],
        "aggregating optical_channel per fiber",
        |_, df| fiber_days(df),
        progress,
    )?;
    // Each fiber's days, in order; joined in parallel, one fiber per task.
    let mut days: std::collections::BTreeMap<SeriesKey, Vec<FiberDay>> = Default::default();
    for (p, d, fibers) in parts {
        for (fiber_pair, day) in fibers {
            days.entry(SeriesKey::of(&p, d, fiber_pair, 0))
                .or_default()
                .push(day);
        }
    }
    Ok(days
        .into_par_iter()
        .map(|(key, days)| join_days(key, days))
        .collect())
}

/// One fiber's series over the window from its days: the per-time aggregates joined, and each
/// time's lowest channel against that channel's mean over all days (a channel missing from some
/// days is averaged over the days it reported).
fn join_days(key: SeriesKey, days: Vec<FiberDay>) -> crate::detect::FiberSeries {
    let mut sums: std::collections::BTreeMap<u32, (f64, usize)> = Default::default();
    for day in &days {
        let w = day.channels.len();
        for row in day.q.chunks_exact(w.max(1)) {
            for (&id, &v) in day.channels.iter().zip(row) {
                if v.is_finite() {
                    let s = sums.entry(id).or_default();
                    s.0 += f64::from(v);
                    s.1 += 1;
                }
            }
        }
    }
    let n: usize = days.iter().map(|d| d.times.len()).sum();
    let mut f = crate::detect::FiberSeries {
        key,
        times_ns: Vec::with_capacity(n),
        channels: Vec::with_capacity(n),
        q_db: Vec::with_capacity(n),
        sop_max: Vec::with_capacity(n),
        q_dev_min: Vec::with_capacity(n),
        worst_channel: Vec::with_capacity(n),
        rx_dbm: Vec::with_capacity(n),
    };
    for day in days {
        let w = day.channels.len();
        let means: Vec<f64> = day
            .channels
            .iter()
            .map(|id| sums.get(id).map_or(f64::NAN, |&(s, k)| s / k as f64))
            .collect();
        for r in 0..day.times.len() {
            let q = &day.q[r * w..(r + 1) * w];
            let worst = (0..w)
                .filter(|&c| q[c].is_finite())
                .map(|c| (f64::from(q[c]) - means[c], c))
                .min_by(|a, b| a.0.total_cmp(&b.0));
            f.q_dev_min.push(worst.map_or(f64::NAN, |w| w.0));
            f.worst_channel.push(worst.map_or(0, |w| day.channels[w.1]));
        }
        f.times_ns.extend(day.times);
        f.channels.extend(day.reporting);
        f.q_db.extend(day.q_median);
        f.sop_max.extend(day.sop_median);
        f.rx_dbm.extend(day.rx_median);
    }
    // Days arrive in order; only odd files (a sample stored under another day) need sorting.
    // Duplicate times (the same sample stored twice) are kept; the detectors see them as such.
    if let Some(order) = time_order(&f.times_ns) {
        permute(&mut f.times_ns, &order);
        permute(&mut f.channels, &order);
        permute(&mut f.q_db, &order);
        permute(&mut f.sop_max, &order);
        permute(&mut f.q_dev_min, &order);
        permute(&mut f.worst_channel, &order);
        permute(&mut f.rx_dbm, &order);
    }
    f
}

/// A change of a fiber's path identifier: (fiber, time of the first probe on the new path, path id).
pub type PathChange = (SeriesKey, i64, String);

/// One partition-direction's path ids, and each fiber pair's probes as (time, index into those ids).
type Probes = (Vec<String>, Vec<(u32, Vec<(i64, u32)>)>);

/// The probes of a frame's `path` column, with its rows' fiber pairs and times.
fn probes_of(df: &DataFrame, fp: &[u32], t: &[i64]) -> PolarsResult<Probes> {
    let mut ids: Vec<String> = Vec::new();
    let mut index: std::collections::HashMap<&str, u32> = Default::default();
    let mut fibers: Vec<(u32, Vec<(i64, u32)>)> = Vec::new();
    for (i, path) in df.column("path")?.str()?.iter().enumerate() {
        let path = path.unwrap_or_default();
        let id = *index.entry(path).or_insert_with(|| {
            ids.push(path.to_owned());
            (ids.len() - 1) as u32
        });
        // Rows come in runs of one fiber: look at the last one first.
        let at = match fibers.iter().rposition(|(f, _)| *f == fp[i]) {
            Some(at) => at,
            None => {
                fibers.push((fp[i], Vec::new()));
                fibers.len() - 1
            }
        };
        fibers[at].1.push((t[i], id));
    }
    Ok((ids, fibers))
}

/// The path changes of all partitions: each fiber's probes in time order across days, kept where
/// the path differs from the one before (and the first).
fn join_probes(parts: impl IntoIterator<Item = (Partition, u32, Probes)>) -> Vec<PathChange> {
    let mut ids: Vec<String> = Vec::new();
    let mut index: std::collections::HashMap<String, u32> = Default::default();
    let mut probes: std::collections::BTreeMap<SeriesKey, Vec<(i64, u32)>> = Default::default();
    for (p, d, (local, fibers)) in parts {
        let global: Vec<u32> = local
            .into_iter()
            .map(|id| {
                *index.entry(id.clone()).or_insert_with(|| {
                    ids.push(id);
                    (ids.len() - 1) as u32
                })
            })
            .collect();
        for (fiber_pair, rows) in fibers {
            probes
                .entry(SeriesKey::of(&p, d, fiber_pair, 0))
                .or_default()
                .extend(rows.into_iter().map(|(t, id)| (t, global[id as usize])));
        }
    }
    let mut out = Vec::new();
    for (key, mut rows) in probes {
        if !rows.is_sorted_by_key(|r| r.0) {
            // Stable: probes at the same time keep the order they were stored in.
            rows.sort_by_key(|r| r.0);
        }
        let mut last: Option<u32> = None;
        for (t, id) in rows {
            if last != Some(id) {
                out.push((key.clone(), t, ids[id as usize].clone()));
                last = Some(id);
            }
        }
    }
    out
}

/// The latency table in one read: the delay series of each fiber and direction (as
/// [`load_series`] gives them), and the changes of its path identifier, sorted by fiber and time.
/// Path ids become small integers per partition; each fiber's probes are then put in time order
/// across days.
pub fn load_latency(
    data: &std::path::Path,
    filter: &Filter,
    progress: &mut (dyn FnMut(usize, usize) + Send),
) -> Result<(Vec<Series>, Vec<PathChange>)> {
    use tables::{LATENCY, col as c};
    let mut columns = series_columns(None, c::DELAY_US);
    columns.push(col(c::PATH_ID).alias("path"));
    let parts = read_partitions(
        data,
        &LATENCY,
        filter,
        columns,
        "loading latency",
        |_, mut df| -> PolarsResult<(Runs, Probes)> {
            let rows = Rows::take(&mut df)?;
            Ok((rows.runs(), probes_of(&df, &rows.fiber_pair, &rows.t)?))
        },
        progress,
    )?;
    let (mut runs, mut probes) = (Vec::with_capacity(parts.len()), Vec::with_capacity(parts.len()));
    for (p, d, (r, pr)) in parts {
        runs.push((p.clone(), d, r));
        probes.push((p, d, pr));
    }
    Ok((join_runs(runs), join_probes(probes)))
}
