//! Splitting a table into series: one time-ordered array per (cable, direction, fiber pair, channel
//! or repeater), the unit every detector works on.
//!
//! Each partition (one cable-day) is read on its own, in parallel: polars projects only the key
//! columns and the metric from disk, and the frame is cut into runs of one series; the runs of all
//! days are then joined per series in time order. Optical rows become one time-by-channel matrix per
//! fiber, from which the per-time aggregates (median over channels, the lowest channel against its
//! own mean) are computed in Rust. Memory is bounded by the partitions in flight plus the result.

use cablewatch_proto::tables::{self, Table};
use ndarray::Array1;
use polars::prelude::*;

use crate::{
    AnalyzerError, Result,
    error::polars_ctx,
    load::{Filter, Partition, partitions, scan, scan_partition},
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

/// The stored direction labels; a frame carries their index (`DIRECTIONS.len()` for anything else).
pub const DIRECTIONS: [&str; 2] = ["a_to_b", "b_to_a"];

/// The direction column as an index into [`DIRECTIONS`].
fn direction_code() -> Expr {
    when(col(tables::col::DIRECTION).eq(lit(DIRECTIONS[0])))
        .then(lit(0u32))
        .when(col(tables::col::DIRECTION).eq(lit(DIRECTIONS[1])))
        .then(lit(1u32))
        .otherwise(lit(DIRECTIONS.len() as u32))
        .cast(DataType::UInt32)
        .alias("d")
}

/// Partitions read before their frames are processed together: enough to keep every core busy,
/// few enough to bound memory by a handful of cable-days.
const PARTITION_BATCH: usize = 8;

/// Reads `columns` of every partition of `table` that `filter` touches and hands each frame to
/// `each`; results come back in (cable, day) order. Partitions are read one after another (polars
/// decodes each with its own threads) in batches whose frames `each` then processes in parallel:
/// reading and processing in parallel at once would put two thread pools on the same cores.
fn read_partitions<T: Send>(
    data: &std::path::Path,
    table: &'static Table,
    filter: &Filter,
    columns: Vec<Expr>,
    what: &str,
    each: impl Fn(&DataFrame) -> PolarsResult<T> + Sync,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<(Partition, T)>> {
    use rayon::prelude::*;
    let all = partitions(data, table, filter)?;
    let read = |batch: &[Partition]| -> Result<Vec<(Partition, DataFrame)>> {
        batch
            .iter()
            .map(|p| {
                // A file polars cannot read is bad input: name it, do not call it an internal error.
                let df = scan_partition(p, table, filter)?
                    .select(columns.clone())
                    .collect()
                    .map_err(|e| {
                        AnalyzerError::input(&p.dir, 0, format!("{what}: unreadable Parquet: {e}"))
                    })?;
                let directions = df.column("d").and_then(|c| c.u32().cloned());
                if let Ok(d) = directions
                    && d.iter().any(|x| x.is_none_or(|x| x as usize >= DIRECTIONS.len()))
                {
                    return Err(AnalyzerError::Schema {
                        table: table.name,
                        dir: p.dir.clone(),
                        column: tables::col::DIRECTION.to_owned(),
                        problem: format!("a value other than {}", DIRECTIONS.join(" or ")),
                    });
                }
                Ok((p.clone(), df))
            })
            .collect()
    };
    let process = |frames: Vec<(Partition, DataFrame)>| -> Result<Vec<(Partition, T)>> {
        frames
            .into_par_iter()
            .map(|(p, df)| {
                let t = each(&df).map_err(polars_ctx(format!("{what} from {}", p.dir.display())))?;
                Ok((p, t))
            })
            .collect()
    };
    // A pipeline: the next batch is read (polars' decoding barely uses a second core) while the
    // frames of this one are processed.
    let batches: Vec<&[Partition]> = all.chunks(PARTITION_BATCH).collect();
    let mut out = Vec::with_capacity(all.len());
    let mut current = match batches.first() {
        Some(b) => Some(read(b)?),
        None => None,
    };
    for k in 0..batches.len() {
        let frames = current.take().unwrap_or_default();
        let (done, next) = rayon::join(
            || process(frames),
            || batches.get(k + 1).map(|b| read(b)).transpose(),
        );
        out.extend(done?);
        current = next?;
        progress(out.len(), all.len());
    }
    Ok(out)
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

fn u32s(df: &DataFrame, name: &str) -> PolarsResult<Vec<u32>> {
    Ok(copy_values(df.column(name)?.u32()?, 0))
}

fn i64s(df: &DataFrame, name: &str) -> PolarsResult<Vec<i64>> {
    Ok(copy_values(df.column(name)?.i64()?, 0))
}

/// Sorts `times` ascending and `values` with them, when they are not already.
fn sort_by_time<T: Copy>(times: &mut Vec<i64>, values: &mut Vec<T>) {
    if times.is_sorted() {
        return;
    }
    let mut order: Vec<usize> = (0..times.len()).collect();
    order.sort_by_key(|&i| times[i]);
    *times = order.iter().map(|&i| times[i]).collect();
    *values = order.iter().map(|&i| values[i]).collect();
}

/// Loads `metric` of `table` as series keyed by `index_column` (`None`: one series per fiber and
/// direction), one partition (cable-day) at a time; `progress` hears (partitions done, total).
pub fn load_series(
    data: &std::path::Path,
    table: &'static Table,
    index_column: Option<&str>,
    metric: &str,
    filter: &Filter,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<Series>> {
    let index = match index_column {
        Some(c) => col(c).cast(DataType::UInt32),
        None => lit(0u32).cast(DataType::UInt32),
    };
    type Runs = Vec<((u32, u32, u32), Vec<i64>, Vec<f64>)>;
    let parts = read_partitions(
        data,
        table,
        filter,
        vec![
            direction_code(),
            col(tables::col::FIBER_PAIR),
            index.alias("index"),
            col(tables::col::TIME).cast(DataType::Int64).alias("t"),
            col(metric).cast(DataType::Float64).alias("v"),
        ],
        &format!("loading {}.{metric}", table.name),
        |df| -> PolarsResult<Runs> {
            let (d, fp, ix, t) = (
                u32s(df, "d")?,
                u32s(df, "fiber_pair")?,
                u32s(df, "index")?,
                i64s(df, "t")?,
            );
            let v = copy_values(df.column("v")?.f64()?, f64::NAN);
            // Runs of one key; a key may come back later in the file.
            let mut runs: Runs = Vec::new();
            for i in 0..t.len() {
                let key = (d[i], fp[i], ix[i]);
                match runs.last_mut() {
                    Some((k, times, values)) if *k == key => {
                        times.push(t[i]);
                        values.push(v[i]);
                    }
                    _ => runs.push((key, vec![t[i]], vec![v[i]])),
                }
            }
            Ok(runs)
        },
        progress,
    )?;
    let mut merged: std::collections::BTreeMap<SeriesKey, (Vec<i64>, Vec<f64>)> = Default::default();
    for (p, runs) in parts {
        for ((d, fiber_pair, index), times, values) in runs {
            let key = SeriesKey {
                cable: p.cable.clone(),
                direction: DIRECTIONS[d as usize].to_owned(),
                fiber_pair,
                index,
            };
            let (t, v) = merged.entry(key).or_default();
            t.extend(times);
            v.extend(values);
        }
    }
    Ok(merged
        .into_iter()
        .map(|(key, (mut times, mut values))| {
            sort_by_time(&mut times, &mut values);
            Series {
                key,
                times_ns: Array1::from_vec(times),
                values: Array1::from_vec(values),
            }
        })
        .collect())
}

/// One fiber's optical samples as a time-by-channel matrix (NaN where a channel did not report).
#[derive(Debug, Default)]
struct FiberMatrix {
    /// Sample times, ascending, unique.
    times: Vec<i64>,
    /// Channel ids, ascending: the matrix columns.
    channels: Vec<u32>,
    /// Q, dB, row-major (`times.len() x channels.len()`).
    q: Vec<f32>,
    /// SOP rate-of-change maximum, krad/s, same layout.
    sop: Vec<f32>,
}

impl FiberMatrix {
    /// Appends `other` (later rows); columns are widened to the union of channels.
    fn append(&mut self, other: FiberMatrix) {
        if self.times.is_empty() {
            *self = other;
            return;
        }
        let mut other = other;
        if other.channels != self.channels {
            let mut all = self.channels.clone();
            all.extend(&other.channels);
            all.sort_unstable();
            all.dedup();
            if all != self.channels {
                *self = self.widened(&all);
            }
            other = other.widened(&all);
        }
        self.times.extend(other.times);
        self.q.extend(other.q);
        self.sop.extend(other.sop);
    }

    fn widened(&self, channels: &[u32]) -> FiberMatrix {
        let (w, nw) = (self.channels.len(), channels.len());
        let mut out = FiberMatrix {
            times: self.times.clone(),
            channels: channels.to_vec(),
            q: vec![f32::NAN; self.times.len() * nw],
            sop: vec![f32::NAN; self.times.len() * nw],
        };
        for (c, id) in self.channels.iter().enumerate() {
            let Ok(nc) = channels.binary_search(id) else {
                continue;
            };
            for r in 0..self.times.len() {
                out.q[r * nw + nc] = self.q[r * w + c];
                out.sop[r * nw + nc] = self.sop[r * w + c];
            }
        }
        out
    }

    /// Rows in time order (partitions arrive in day order; this only matters for odd files).
    fn sort_rows(&mut self) {
        if self.times.windows(2).all(|w| w[0] < w[1]) {
            return;
        }
        let w = self.channels.len();
        let mut order: Vec<usize> = (0..self.times.len()).collect();
        order.sort_by_key(|&i| self.times[i]);
        let row = |m: &[f32], i: usize| m[i * w..(i + 1) * w].to_vec();
        self.q = order.iter().flat_map(|&i| row(&self.q, i)).collect();
        self.sop = order.iter().flat_map(|&i| row(&self.sop, i)).collect();
        self.times = order.iter().map(|&i| self.times[i]).collect();
        // Duplicate times (the same sample stored twice) are kept; the detectors see them as such.
    }
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

/// The matrices of every fiber in one partition frame (`d`, `fiber_pair`, `ch`, `t`, `q`, `sop`).
fn fiber_matrices(df: &DataFrame) -> PolarsResult<Vec<((u32, u32), FiberMatrix)>> {
    let (d, fp, ch, t) = (
        u32s(df, "d")?,
        u32s(df, "fiber_pair")?,
        u32s(df, "ch")?,
        i64s(df, "t")?,
    );
    let floats =
        |name: &str| -> PolarsResult<Vec<f32>> { Ok(copy_values(df.column(name)?.f32()?, f32::NAN)) };
    let (q, sop) = (floats("q")?, floats("sop")?);
    // Rows of each fiber, as runs of one channel with ascending times.
    let mut fibers: std::collections::BTreeMap<(u32, u32), Vec<std::ops::Range<usize>>> = Default::default();
    let mut start = 0;
    for i in 1..=t.len() {
        let breaks =
            i == t.len() || d[i] != d[start] || fp[i] != fp[start] || ch[i] != ch[start] || t[i] <= t[i - 1];
        if breaks {
            fibers.entry((d[start], fp[start])).or_default().push(start..i);
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
        let mut m = FiberMatrix {
            q: vec![f32::NAN; times.len() * w],
            sop: vec![f32::NAN; times.len() * w],
            times,
            channels,
        };
        for r in &runs {
            let Ok(c) = m.channels.binary_search(&ch[r.start]) else {
                continue;
            };
            let same = t[r.clone()] == m.times[..];
            for (k, i) in r.clone().enumerate() {
                let row = if same {
                    k
                } else {
                    match m.times.binary_search(&t[i]) {
                        Ok(row) => row,
                        Err(_) => continue,
                    }
                };
                m.q[row * w + c] = q[i];
                m.sop[row * w + c] = sop[i];
            }
        }
        out.push((key, m));
    }
    Ok(out)
}

/// Per fiber and time, over the fiber's channels: how many reported, median Q, median SOP maximum,
/// and the lowest channel Q against that channel's own mean over the window (and which channel).
/// Each partition (cable-day) is read on its own, in parallel, as a time-by-channel matrix per
/// fiber; only the six columns needed are read.
pub fn load_fiber_optical(
    data: &std::path::Path,
    filter: &Filter,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<crate::detect::FiberSeries>> {
    use rayon::prelude::*;
    use tables::{OPTICAL_CHANNEL, col as c};
    let parts = read_partitions(
        data,
        &OPTICAL_CHANNEL,
        filter,
        vec![
            direction_code(),
            col(c::FIBER_PAIR),
            col(c::CHANNEL).alias("ch"),
            col(c::TIME).cast(DataType::Int64).alias("t"),
            col(c::Q_DB_AVG).cast(DataType::Float32).alias("q"),
            col(c::SOP_ROC_KRAD_S_MAX).cast(DataType::Float32).alias("sop"),
        ],
        "aggregating optical_channel per fiber",
        fiber_matrices,
        progress,
    )?;
    // Each fiber's days, in order; joined (a copy) in parallel, one fiber per task.
    let mut days: std::collections::BTreeMap<SeriesKey, Vec<FiberMatrix>> = Default::default();
    for (p, fibers) in parts {
        for ((d, fiber_pair), m) in fibers {
            let key = SeriesKey {
                cable: p.cable.clone(),
                direction: DIRECTIONS[d as usize].to_owned(),
                fiber_pair,
                index: 0,
            };
            days.entry(key).or_default().push(m);
        }
    }
    Ok(days
        .into_par_iter()
        .map(|(key, parts)| {
            let mut m = FiberMatrix::default();
            for part in parts {
                m.append(part);
            }
            m.sort_rows();
            aggregate(key, &m)
        })
        .collect())
}

/// The per-time aggregates of one fiber's matrix.
fn aggregate(key: SeriesKey, m: &FiberMatrix) -> crate::detect::FiberSeries {
    let w = m.channels.len();
    let mut means = vec![0.0f64; w];
    let mut counts = vec![0usize; w];
    for row in m.q.chunks_exact(w.max(1)) {
        for (c, &v) in row.iter().enumerate() {
            if v.is_finite() {
                means[c] += f64::from(v);
                counts[c] += 1;
            }
        }
    }
    for (mean, &n) in means.iter_mut().zip(&counts) {
        *mean = if n > 0 { *mean / n as f64 } else { f64::NAN };
    }
    let n = m.times.len();
    let mut f = crate::detect::FiberSeries {
        key,
        times_ns: m.times.clone(),
        channels: Vec::with_capacity(n),
        q_db: Vec::with_capacity(n),
        sop_max: Vec::with_capacity(n),
        q_dev_min: Vec::with_capacity(n),
        worst_channel: Vec::with_capacity(n),
    };
    let mut scratch: Vec<f32> = Vec::with_capacity(w);
    for r in 0..n {
        let (q, sop) = (&m.q[r * w..(r + 1) * w], &m.sop[r * w..(r + 1) * w]);
        scratch.clear();
        scratch.extend(q.iter().copied().filter(|v| v.is_finite()));
        let reporting = scratch.len();
        f.channels.push(reporting as u32);
        f.q_db.push(median_of(&mut scratch));
        scratch.clear();
        scratch.extend(sop.iter().copied().filter(|v| v.is_finite()));
        f.sop_max.push(median_of(&mut scratch));
        let worst = (0..w)
            .filter(|&c| q[c].is_finite())
            .map(|c| (f64::from(q[c]) - means[c], c))
            .min_by(|a, b| a.0.total_cmp(&b.0));
        f.q_dev_min.push(worst.map_or(f64::NAN, |w| w.0));
        f.worst_channel.push(worst.map_or(0, |w| m.channels[w.1]));
    }
    f
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
