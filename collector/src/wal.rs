//! Write-ahead log: a batch is acknowledged only once its record is on disk.
//!
//! Records are appended to numbered segment files (`wal-<first index>.log`) by one writer thread.
//! Appends that arrive while a sync is in flight are written together and share one `fdatasync`
//! (group commit), so many concurrent station streams cost one disk flush per group, not per batch.
//!
//! Frame: `magic u32 | len u32 | index u64 | crc32 u32 | payload[len]`, little-endian; the CRC covers
//! `len`, `index` and the payload. On open, [`Wal::open`] reads every segment back:
//! - a record cut short at the end of the newest segment (a torn write from a crash) is truncated
//!   away: it was never acknowledged;
//! - a bad record followed by good ones (corruption) makes the segment **quarantined**: the original
//!   file is moved to `quarantine/` untouched, the good records are rewritten in its place, and the
//!   loss is reported in the log and in [`Recovery`]. Opening never fails because of bad content, so
//!   a corrupt log cannot make the collector crash-loop.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Read, Write},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use tokio::sync::oneshot;
use tracing::{error, info, warn};

/// Frame marker, "CWAL" little-endian.
const MAGIC: u32 = u32::from_le_bytes(*b"CWAL");
/// Bytes before the payload.
const HEADER: usize = 4 + 4 + 8 + 4;
/// Largest record accepted, bytes.
pub const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;

/// Errors of the write-ahead log.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WalError {
    /// A file operation failed.
    #[error("write-ahead log: {op} {path}: {reason}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which file.
        path: PathBuf,
        /// The OS error, as text (errors are shared by every append of a group).
        reason: String,
    },
    /// A record is larger than [`MAX_RECORD_BYTES`].
    #[error("write-ahead log: record of {len} bytes exceeds {MAX_RECORD_BYTES}")]
    TooLarge {
        /// Its size.
        len: usize,
    },
    /// The writer thread has stopped.
    #[error("write-ahead log is closed")]
    Closed,
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> WalError {
    let path = path.to_owned();
    move |e| WalError::Io {
        op,
        path,
        reason: e.to_string(),
    }
}

/// Settings of the log.
#[derive(Debug, Clone)]
pub struct WalConfig {
    /// Directory of the segment files.
    pub dir: PathBuf,
    /// A segment is closed and a new one started past this size; default 64 MiB.
    pub segment_bytes: u64,
    /// Most records written under one sync; default 1,024.
    pub max_group: usize,
}

impl WalConfig {
    /// Defaults, in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            segment_bytes: 64 * 1024 * 1024,
            max_group: 1024,
        }
    }
}

/// One record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its index, increasing across segments.
    pub index: u64,
    /// What was appended.
    pub payload: Vec<u8>,
}

/// What opening the log found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Every good record, by index.
    pub records: Vec<Record>,
    /// Bytes of torn tail truncated from the newest segment.
    pub truncated_bytes: u64,
    /// Segments moved to `quarantine/` because of corruption.
    pub quarantined: Vec<PathBuf>,
    /// Bytes skipped inside quarantined segments (records lost).
    pub corrupt_bytes: u64,
    /// First index of the oldest segment left (a segment's name promises that its records start
    /// there): every record the log still holds is at or above it.
    pub first_segment: Option<u64>,
}

/// Counters of the writer, for metrics.
#[derive(Debug, Default)]
pub struct WalStats {
    /// Records appended.
    pub records: AtomicU64,
    /// Syncs (`fdatasync`) done.
    pub syncs: AtomicU64,
    /// Total time spent in syncs, ns.
    pub sync_nanos: AtomicU64,
    /// Bytes appended.
    pub bytes: AtomicU64,
    /// Syncs per latency bucket (upper bounds [`SYNC_BUCKETS_S`], then one for slower).
    pub sync_buckets: [AtomicU64; SYNC_BUCKETS_S.len() + 1],
    /// Segments quarantined as corrupt when the log was opened.
    pub quarantined_segments: AtomicU64,
    /// Bytes of torn tail truncated when the log was opened.
    pub truncated_bytes: AtomicU64,
}

/// Upper bounds of the sync latency histogram buckets, seconds.
pub const SYNC_BUCKETS_S: [f64; 11] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0];

impl WalStats {
    fn observe_sync(&self, took: std::time::Duration) {
        let secs = took.as_secs_f64();
        let bucket = SYNC_BUCKETS_S
            .iter()
            .position(|&le| secs <= le)
            .unwrap_or(SYNC_BUCKETS_S.len());
        self.sync_buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// Syncs per latency bucket, not cumulative; the last is slower than every bound.
    pub fn sync_histogram(&self) -> [u64; SYNC_BUCKETS_S.len() + 1] {
        std::array::from_fn(|i| self.sync_buckets[i].load(Ordering::Relaxed))
    }
}

enum Request {
    Append(Vec<u8>, oneshot::Sender<Result<u64, WalError>>),
    Rotate(oneshot::Sender<Result<u64, WalError>>),
}

/// Handle to an open log; cheap to clone.
#[derive(Debug, Clone)]
pub struct Wal {
    tx: mpsc::Sender<Request>,
    stats: Arc<WalStats>,
    dir: PathBuf,
}

fn segment_name(first: u64) -> String {
    format!("wal-{first:020}.log")
}

fn segment_first(path: &Path) -> Option<u64> {
    path.file_name()?
        .to_str()?
        .strip_prefix("wal-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

/// Segment files of `dir`, by first index.
fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    let mut out: Vec<(u64, PathBuf)> = fs::read_dir(dir)
        .map_err(io_err("list", dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| segment_first(&p).map(|i| (i, p)))
        .collect();
    out.sort();
    Ok(out)
}

fn frame(index: u64, payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&len.to_le_bytes());
    crc.update(&index.to_le_bytes());
    crc.update(payload);
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&index.to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(payload);
}

/// The record starting at `buf[at..]`, if it is whole and its checksum holds.
fn parse_at(buf: &[u8], at: usize) -> Option<(Record, usize)> {
    let h = buf.get(at..at + HEADER)?;
    let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    if word(0) != MAGIC {
        return None;
    }
    let len = word(4) as usize;
    if len > MAX_RECORD_BYTES {
        return None;
    }
    let index = u64::from_le_bytes(h[8..16].try_into().ok()?);
    let payload = buf.get(at + HEADER..at + HEADER + len)?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&h[4..16]);
    crc.update(payload);
    (crc.finalize() == word(16)).then(|| {
        (
            Record {
                index,
                payload: payload.to_vec(),
            },
            HEADER + len,
        )
    })
}

/// Good records of one segment, the end of the last good record, and bytes skipped in between.
fn scan(buf: &[u8]) -> (Vec<Record>, usize, u64) {
    let (mut records, mut at, mut good_end, mut skipped) = (Vec::new(), 0, 0, 0u64);
    while at < buf.len() {
        if let Some((r, n)) = parse_at(buf, at) {
            skipped += (at - good_end) as u64;
            records.push(r);
            at += n;
            good_end = at;
        } else {
            at += 1; // resynchronise on the next frame marker
        }
    }
    (records, good_end, skipped)
}

impl Wal {
    /// Opens (creating if needed) the log in `config.dir`, recovers what is there and starts the
    /// writer thread. New records continue after the highest recovered index.
    pub fn open(config: WalConfig) -> Result<(Self, Recovery), WalError> {
        let dir = config.dir.clone();
        // The log's directory and every parent durably named: a log whose directory vanishes at a
        // power cut takes every acknowledged batch with it.
        create_dir_durable(&dir)?;
        let mut recovery = Recovery::default();
        let segs = segments(&dir)?;
        for (n, (_, path)) in segs.iter().enumerate() {
            let newest = n + 1 == segs.len();
            let mut buf = Vec::new();
            File::open(path)
                .and_then(|mut f| f.read_to_end(&mut buf))
                .map_err(io_err("read", path))?;
            let (records, good_end, skipped) = scan(&buf);
            let tail = (buf.len() - good_end) as u64;
            if skipped == 0 && (tail == 0 || newest) {
                if tail > 0 {
                    warn!(segment = %path.display(), bytes = tail, "Truncated a torn write at the end of the write-ahead log.");
                    let f = OpenOptions::new()
                        .write(true)
                        .open(path)
                        .map_err(io_err("open", path))?;
                    f.set_len(good_end as u64).map_err(io_err("truncate", path))?;
                    f.sync_all().map_err(io_err("fsync", path))?;
                    recovery.truncated_bytes += tail;
                }
            } else {
                let lost = skipped + tail;
                let quarantine = dir.join("quarantine");
                create_dir_durable(&quarantine)?;
                let stamp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs();
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let target = quarantine.join(format!("{name}.corrupt-{stamp}"));
                fs::rename(path, &target).map_err(io_err("quarantine", path))?;
                sync_dir(&quarantine)?;
                if !records.is_empty() {
                    let mut clean = Vec::new();
                    for r in &records {
                        frame(r.index, &r.payload, &mut clean);
                    }
                    let mut f = File::create(path).map_err(io_err("rewrite", path))?;
                    f.write_all(&clean).map_err(io_err("rewrite", path))?;
                    f.sync_all().map_err(io_err("fsync", path))?;
                }
                error!(
                    segment = %path.display(),
                    quarantined = %target.display(),
                    kept = records.len(),
                    lost_bytes = lost,
                    "Write-ahead log segment is corrupt: moved to quarantine, its good records kept."
                );
                recovery.quarantined.push(target);
                recovery.corrupt_bytes += lost;
            }
            recovery.records.extend(records);
        }
        sync_dir(&dir)?;
        recovery.first_segment = segments(&dir)?.first().map(|&(first, _)| first);
        recovery.records.sort_by_key(|r| r.index);
        recovery.records.dedup_by_key(|r| r.index);
        let next = recovery.records.last().map_or(0, |r| r.index + 1);
        let (tx, rx) = mpsc::channel();
        let stats = Arc::new(WalStats::default());
        stats
            .quarantined_segments
            .store(recovery.quarantined.len() as u64, Ordering::Relaxed);
        stats
            .truncated_bytes
            .store(recovery.truncated_bytes, Ordering::Relaxed);
        let writer = Writer::start(config, next, Arc::clone(&stats))?;
        thread::Builder::new()
            .name("wal-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(io_err("spawn writer for", &dir))?;
        info!(dir = %dir.display(), records = recovery.records.len(), next, "Opened write-ahead log.");
        Ok((Self { tx, stats, dir }, recovery))
    }

    /// Appends `payload` and returns its index once it is on disk.
    pub async fn append(&self, payload: Vec<u8>) -> Result<u64, WalError> {
        if payload.len() > MAX_RECORD_BYTES {
            return Err(WalError::TooLarge { len: payload.len() });
        }
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Request::Append(payload, done))
            .map_err(|_| WalError::Closed)?;
        wait.await.map_err(|_| WalError::Closed)?
    }

    /// Closes the current segment and starts a new one; returns the first index of the new segment.
    /// Every record below it is in closed segments that [`Wal::remove_before`] may delete.
    pub async fn rotate(&self) -> Result<u64, WalError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Request::Rotate(done))
            .map_err(|_| WalError::Closed)?;
        wait.await.map_err(|_| WalError::Closed)?
    }

    /// Deletes closed segments whose records all lie below `index` (they are persisted elsewhere).
    pub fn remove_before(&self, index: u64) -> Result<usize, WalError> {
        let segs = segments(&self.dir)?;
        let mut removed = 0;
        for pair in segs.windows(2) {
            let ((_, path), (next_first, _)) = (&pair[0], &pair[1]);
            if *next_first <= index {
                fs::remove_file(path).map_err(io_err("remove", path))?;
                removed += 1;
            }
        }
        if removed > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(removed)
    }

    /// The writer's counters.
    pub fn stats(&self) -> &WalStats {
        &self.stats
    }
}

fn create_dir_durable(dir: &Path) -> Result<(), WalError> {
    cablewatch_proto::store::create_dir_durable(dir).map_err(|e| WalError::Io {
        op: "create",
        path: dir.to_owned(),
        reason: e.to_string(),
    })
}

fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync", dir))
}

struct Writer {
    config: WalConfig,
    next: u64,
    file: File,
    path: PathBuf,
    size: u64,
    stats: Arc<WalStats>,
}

impl Writer {
    fn start(config: WalConfig, next: u64, stats: Arc<WalStats>) -> Result<Self, WalError> {
        // Continue in the newest segment if it has room; otherwise start one.
        let newest = segments(&config.dir)?.pop();
        let (path, size, next) = match newest {
            Some((first, p)) => {
                let size = fs::metadata(&p).map_err(io_err("stat", &p))?.len();
                // A segment's name promises that its records start at or after that index.
                (p, size, next.max(first))
            }
            None => (config.dir.join(segment_name(next)), 0, next),
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err("open", &path))?;
        sync_dir(&config.dir)?;
        let mut w = Self {
            config,
            next,
            file,
            path,
            size,
            stats,
        };
        if w.size >= w.config.segment_bytes {
            w.roll()?;
        }
        Ok(w)
    }

    fn roll(&mut self) -> Result<u64, WalError> {
        if self.size == 0 {
            return Ok(self.next);
        }
        self.file.sync_all().map_err(io_err("fsync", &self.path))?;
        self.path = self.config.dir.join(segment_name(self.next));
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io_err("open", &self.path))?;
        sync_dir(&self.config.dir)?;
        self.size = 0;
        Ok(self.next)
    }

    fn run(mut self, rx: mpsc::Receiver<Request>) {
        let mut group: Vec<(u64, oneshot::Sender<Result<u64, WalError>>)> = Vec::new();
        let mut buf = Vec::new();
        while let Ok(first) = rx.recv() {
            let mut pending = Some(first);
            // Take everything already waiting: those appends share this group's sync.
            while let Some(req) = pending.take().or_else(|| {
                (group.len() < self.config.max_group)
                    .then(|| rx.try_recv().ok())
                    .flatten()
            }) {
                match req {
                    Request::Append(payload, done) => {
                        frame(self.next, &payload, &mut buf);
                        group.push((self.next, done));
                        self.next += 1;
                    }
                    Request::Rotate(done) => {
                        let result = self.flush(&mut buf, &mut group).and_then(|()| self.roll());
                        let _ = done.send(result);
                    }
                }
            }
            if let Err(e) = self.flush(&mut buf, &mut group) {
                error!(error = %e, "Write-ahead log append failed; the batches are not acknowledged.");
            }
            if self.size >= self.config.segment_bytes
                && let Err(e) = self.roll()
            {
                error!(error = %e, "Write-ahead log could not start a new segment.");
            }
        }
    }

    /// Writes the pending frames, syncs once, and answers every waiter.
    fn flush(
        &mut self,
        buf: &mut Vec<u8>,
        group: &mut Vec<(u64, oneshot::Sender<Result<u64, WalError>>)>,
    ) -> Result<(), WalError> {
        if group.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let result = self
            .file
            .write_all(buf)
            .and_then(|()| self.file.sync_data())
            .map_err(io_err("append to", &self.path));
        let took = started.elapsed();
        self.stats.syncs.fetch_add(1, Ordering::Relaxed);
        self.stats.observe_sync(took);
        self.stats.sync_nanos.fetch_add(
            u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        if result.is_ok() {
            self.size += buf.len() as u64;
            self.stats
                .records
                .fetch_add(group.len() as u64, Ordering::Relaxed);
            self.stats.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
        } else {
            // Cut off whatever part of the group was written and go on in this segment: a full
            // disk fails every attempt, and a new segment per attempt would leave an empty file
            // per retry (hundreds of thousands over a weekend). The group's indices are not
            // reused; records in a segment may skip indices, its name is a lower bound. If the
            // cut fails too, start a new segment (the next open cuts the torn tail).
            let cut = self.file.set_len(self.size).and_then(|()| self.file.sync_all());
            if cut.is_err() {
                self.size = self.config.segment_bytes;
            }
        }
        if took > Duration::from_millis(500) {
            warn!(
                ms = took.as_millis() as u64,
                records = group.len(),
                "Slow write-ahead log sync."
            );
        }
        for (index, done) in group.drain(..) {
            let _ = done.send(result.clone().map(|()| index));
        }
        buf.clear();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(i: u64) -> Vec<u8> {
        format!("batch {i} {}", "x".repeat((i % 50) as usize)).into_bytes()
    }

    async fn fill(wal: &Wal, n: u64) -> Vec<u64> {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let wal = wal.clone();
                tokio::spawn(async move { wal.append(payload(i)).await.unwrap() })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_appends_share_syncs_and_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, rec) = Wal::open(WalConfig::new(dir.path())).unwrap();
        assert!(rec.records.is_empty());
        let mut indices = fill(&wal, 500).await;
        indices.sort_unstable();
        assert_eq!(indices, (0..500).collect::<Vec<_>>());
        let syncs = wal.stats().syncs.load(Ordering::Relaxed);
        assert!(
            syncs < 500,
            "group commit did not group: {syncs} syncs for 500 appends"
        );
        drop(wal);
        let (_, rec) = Wal::open(WalConfig::new(dir.path())).unwrap();
        assert_eq!(rec.records.len(), 500);
        let mut payloads: Vec<Vec<u8>> = rec.records.iter().map(|r| r.payload.clone()).collect();
        let mut want: Vec<Vec<u8>> = (0..500).map(payload).collect();
        payloads.sort();
        want.sort();
        assert_eq!(payloads, want);
        assert_eq!(rec.truncated_bytes + rec.corrupt_bytes, 0);
    }

    #[tokio::test]
    async fn segments_rotate_continue_after_reopen_and_are_removed_when_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = WalConfig::new(dir.path());
        config.segment_bytes = 400;
        let (wal, _) = Wal::open(config.clone()).unwrap();
        for i in 0..40 {
            assert_eq!(wal.append(payload(i)).await.unwrap(), i);
        }
        assert!(segments(dir.path()).unwrap().len() > 3);
        drop(wal);
        let (wal, rec) = Wal::open(config).unwrap();
        assert_eq!(
            rec.records.iter().map(|r| r.index).collect::<Vec<_>>(),
            (0..40).collect::<Vec<_>>()
        );
        assert_eq!(
            wal.append(payload(40)).await.unwrap(),
            40,
            "indices continue after reopen"
        );
        let cut = wal.rotate().await.unwrap();
        assert_eq!(cut, 41);
        wal.remove_before(cut).unwrap();
        let left = segments(dir.path()).unwrap();
        assert_eq!(left.len(), 1, "only the new, empty segment is left: {left:?}");
    }

    #[tokio::test]
    async fn torn_tail_is_truncated_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(WalConfig::new(dir.path())).unwrap();
        for i in 0..10 {
            wal.append(payload(i)).await.unwrap();
        }
        drop(wal);
        let (_, path) = segments(dir.path()).unwrap().pop().unwrap();
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let (wal, rec) = Wal::open(WalConfig::new(dir.path())).unwrap();
        assert_eq!(rec.records.len(), 9, "the torn record is dropped, the rest kept");
        assert!(rec.truncated_bytes > 0);
        assert!(rec.quarantined.is_empty(), "a torn tail is not corruption");
        assert_eq!(wal.append(payload(99)).await.unwrap(), 9);
        drop(wal);
        let (_, rec) = Wal::open(WalConfig::new(dir.path())).unwrap();
        assert_eq!(rec.records.len(), 10);
        assert_eq!(rec.truncated_bytes, 0);
    }

    #[tokio::test]
    async fn corrupt_record_quarantines_the_segment_and_keeps_the_good_records() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(WalConfig::new(dir.path())).unwrap();
        for i in 0..10 {
            wal.append(payload(i)).await.unwrap();
        }
        drop(wal);
        let (_, path) = segments(dir.path()).unwrap().pop().unwrap();
        let mut bytes = fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        fs::write(&path, &bytes).unwrap();

        let (wal, rec) = Wal::open(WalConfig::new(dir.path())).unwrap();
        assert_eq!(rec.quarantined.len(), 1);
        assert_eq!(
            fs::read(&rec.quarantined[0]).unwrap(),
            bytes,
            "quarantine keeps the original"
        );
        assert_eq!(
            rec.records.len(),
            9,
            "one record lost, the ones after it salvaged"
        );
        assert!(rec.records.iter().any(|r| r.index == 9));
        assert!(rec.corrupt_bytes > 0);
        wal.append(payload(10)).await.unwrap();
        drop(wal);
        let (_, rec) = Wal::open(WalConfig::new(dir.path())).unwrap();
        assert!(rec.quarantined.is_empty(), "the rewritten segment is clean");
        assert_eq!(rec.records.len(), 10);
    }

    #[tokio::test]
    async fn garbage_segment_never_stops_the_log_from_opening() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(segment_name(0)),
            b"not a log at all, just junk bytes",
        )
        .unwrap();
        fs::write(dir.path().join(segment_name(5)), b"").unwrap();
        let (wal, rec) = Wal::open(WalConfig::new(dir.path())).unwrap();
        assert!(rec.records.is_empty());
        assert_eq!(rec.quarantined.len(), 1);
        assert_eq!(
            wal.append(b"after".to_vec()).await.unwrap(),
            5,
            "indices never go below a segment's name"
        );
        assert!(
            !dir.path().join(segment_name(0)).exists(),
            "an all-garbage segment is only in quarantine"
        );
    }
}
