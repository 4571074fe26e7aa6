//! Durable storage of accepted rows: write-ahead log first, Parquet parts at checkpoints.
//!
//! ```text
//! append:     dedup check -> WAL record (batch + accepted rows), fdatasync (grouped) -> buffer -> ack
//! checkpoint: write lock: rotate WAL at cut N, take the buffers, snapshot dedup
//!             -> parts `part-ckpt-N.parquet` per table, cable and day (fsync, rename, dir fsync;
//!                keys spread over one thread per core, arrays gathered from the buffered batches)
//!             -> `checkpoint.json` {cut N, dedup, crc32} (atomic) -> delete WAL segments below N
//! open:       delete parts of checkpoints newer than `checkpoint.json` (unfinished: the WAL still
//!             holds their rows) -> replay WAL records from the cut -> checkpoint
//! ```
//!
//! Appends hold a read lock across the WAL write and the buffer insert, and a checkpoint takes the
//! write lock to cut, so every record below the cut is in the buffers it writes and none above.

use std::{
    collections::{BTreeMap, HashSet},
    fs,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    thread,
};

use cablewatch_proto::{
    CableId, layout,
    store::{self, ParquetOptions, sync_dir},
    tables,
    wire::{Batch, Payload},
};
use prost::Message;
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;
use tracing::{error, info, warn};

use crate::{
    CollectorError, Result,
    dedup::{Dedup, StoredCounts},
    wal::{Wal, WalConfig},
};

/// Name of the checkpoint file in the WAL directory.
const CHECKPOINT_FILE: &str = "checkpoint.json";
/// Stem prefix of the parts a checkpoint writes.
const PART_PREFIX: &str = "ckpt-";

/// One WAL record: the batch as received and which of its rows were accepted.
#[derive(Clone, PartialEq, prost::Message)]
struct WalEntry {
    #[prost(message, optional, tag = "1")]
    batch: Option<Batch>,
    #[prost(uint32, repeated, tag = "2")]
    accepted: Vec<u32>,
}

/// `checkpoint.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct CheckpointFile {
    /// Every WAL record below this index is in parts.
    cut: u64,
    /// Batches stored up to the cut.
    dedup: Dedup,
    /// CRC-32 of the JSON of `(cut, dedup)`, so that damage which still parses is found (a flipped
    /// digit in the cut would skip acknowledged records of the log). Files written before it
    /// existed have none and are trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crc32: Option<u32>,
}

impl CheckpointFile {
    /// CRC-32 of the JSON of `(cut, dedup)` (deterministic: the index's maps are ordered).
    fn checksum(&self) -> std::result::Result<u32, serde_json::Error> {
        serde_json::to_vec(&(self.cut, &self.dedup)).map(|json| crc32fast::hash(&json))
    }
}

/// Where and how the store keeps data.
#[derive(Debug, Clone)]
pub struct DurableConfig {
    /// Root of the stored tables.
    pub data_dir: PathBuf,
    /// Write-ahead log settings; its directory defaults to `<data>/_wal`.
    pub wal: WalConfig,
    /// Parquet writer settings.
    pub parquet: ParquetOptions,
}

impl DurableConfig {
    /// Defaults for `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Self {
            wal: WalConfig::new(data_dir.join("_wal")),
            data_dir,
            parquet: ParquetOptions::default(),
        }
    }
}

/// What [`DurableStore::append`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Durably logged now.
    Stored,
    /// Already stored before, with the row counts it was stored with when they are still known.
    Duplicate(Option<StoredCounts>),
    /// The same batch is being stored by another call right now; ask the station to retry.
    InFlight,
}

#[derive(Debug, Default)]
struct Buffers {
    /// Accepted rows by (table name, cable), as received. A checkpoint gathers each key's parts
    /// straight into sorted Arrow arrays, so rows are copied once, from the wire batch to the array.
    payloads: BTreeMap<(&'static str, String), Vec<Payload>>,
    rows: usize,
}

/// What a checkpoint wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointReport {
    /// WAL cut.
    pub cut: u64,
    /// Rows written.
    pub rows: usize,
    /// Part files written.
    pub files: usize,
}

/// WAL, buffers, dedup index and checkpoints.
#[derive(Debug)]
pub struct DurableStore {
    config: DurableConfig,
    wal: Wal,
    /// Appends hold it shared across WAL write and buffer insert; a checkpoint holds it exclusively
    /// while it cuts the WAL and takes the buffers.
    cut_guard: RwLock<()>,
    buffers: Mutex<Buffers>,
    dedup: Mutex<Dedup>,
    in_flight: Mutex<HashSet<(String, u64, u64)>>,
    checkpointing: tokio::sync::Mutex<()>,
    /// Checkpoints written.
    checkpoints: AtomicU64,
    /// WAL bytes appended up to the last checkpoint's cut.
    checkpointed_bytes: AtomicU64,
    /// Bytes of Parquet files under the data directory: found on open, then added by checkpoints.
    parquet_bytes: AtomicU64,
}

fn poisoned<T>(_: T) -> CollectorError {
    CollectorError::Task("a lock was poisoned by a panic".into())
}

impl DurableStore {
    /// Opens the store: recovers the WAL, removes parts of unfinished checkpoints, replays, and
    /// checkpoints what was recovered.
    pub async fn open(config: DurableConfig) -> Result<Arc<Self>> {
        let (wal, recovery) = Wal::open(config.wal.clone())?;
        let (checkpoint, rebuilt) = read_checkpoint(&config, recovery.first_segment)?;
        let removed = remove_unfinished_parts(&config.data_dir, checkpoint.cut)?;
        let parquet_bytes = parquet_bytes_under(&config.data_dir);
        let store = Arc::new(Self {
            config,
            wal,
            cut_guard: RwLock::new(()),
            buffers: Mutex::new(Buffers::default()),
            dedup: Mutex::new(checkpoint.dedup),
            in_flight: Mutex::new(HashSet::new()),
            checkpointing: tokio::sync::Mutex::new(()),
            checkpoints: AtomicU64::new(0),
            checkpointed_bytes: AtomicU64::new(0),
            parquet_bytes: AtomicU64::new(parquet_bytes),
        });
        let mut replayed = 0;
        {
            let mut buffers = store.buffers.lock().map_err(poisoned)?;
            for record in recovery.records.iter().filter(|r| r.index >= checkpoint.cut) {
                let entry = match WalEntry::decode(record.payload.as_slice()) {
                    Ok(e) => e,
                    Err(e) => {
                        warn!(index = record.index, error = %e, "Skipped an undecodable write-ahead log record.");
                        continue;
                    }
                };
                let Some(batch) = entry.batch else { continue };
                let accepted: Vec<usize> = entry.accepted.iter().map(|&i| i as usize).collect();
                store.dedup.lock().map_err(poisoned)?.insert(
                    &batch.station_id,
                    batch.stream_epoch,
                    batch.sequence,
                    stored_counts(&batch, &accepted),
                );
                if let Some(payload) = batch.payload {
                    buffer(&mut buffers, payload, &accepted);
                }
                replayed += 1;
            }
        }
        info!(
            replayed,
            removed_unfinished_parts = removed,
            cut = checkpoint.cut,
            "Recovered stored batches."
        );
        if replayed > 0 {
            store.checkpoint().await?;
        } else if rebuilt {
            let dedup = store.dedup.lock().map_err(poisoned)?.clone();
            write_checkpoint_file(&store.config, checkpoint.cut, &dedup)?;
        }
        Ok(store)
    }

    /// Whether the batch is already durably stored.
    pub fn is_duplicate(&self, station: &str, epoch: u64, seq: u64) -> Result<bool> {
        Ok(self.dedup.lock().map_err(poisoned)?.contains(station, epoch, seq))
    }

    /// Durably stores rows `accepted` of `batch`; returns once they are in the WAL on disk.
    pub async fn append(&self, batch: Batch, accepted: &[usize]) -> Result<Appended> {
        let key = (batch.station_id.clone(), batch.stream_epoch, batch.sequence);
        {
            let dedup = self.dedup.lock().map_err(poisoned)?;
            if dedup.contains(&key.0, key.1, key.2) {
                return Ok(Appended::Duplicate(dedup.counts(&key.0, key.1, key.2)));
            }
            drop(dedup);
            if !self.in_flight.lock().map_err(poisoned)?.insert(key.clone()) {
                return Ok(Appended::InFlight);
            }
        }
        let result = self.log_and_buffer(batch, accepted).await;
        self.in_flight.lock().map_err(poisoned)?.remove(&key);
        result.map(|()| Appended::Stored)
    }

    async fn log_and_buffer(&self, batch: Batch, accepted: &[usize]) -> Result<()> {
        let record = wal_record(&batch, accepted);
        // Held until the rows are buffered: a checkpoint cannot cut between the two.
        let _guard = self.cut_guard.read().await;
        self.wal.append(record).await?;
        self.dedup.lock().map_err(poisoned)?.insert(
            &batch.station_id,
            batch.stream_epoch,
            batch.sequence,
            stored_counts(&batch, accepted),
        );
        if let Some(payload) = batch.payload {
            buffer(&mut *self.buffers.lock().map_err(poisoned)?, payload, accepted);
        }
        Ok(())
    }

    /// Checkpoints written since start.
    pub fn checkpoints(&self) -> u64 {
        self.checkpoints.load(Ordering::Relaxed)
    }

    /// Write-ahead log bytes appended since the last checkpoint's cut: data not yet in Parquet.
    pub fn backlog_bytes(&self) -> u64 {
        let appended = self.wal.stats().bytes.load(Ordering::Relaxed);
        appended.saturating_sub(self.checkpointed_bytes.load(Ordering::Relaxed))
    }

    /// Root of the stored tables.
    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// Bytes the data directory holds: Parquet parts plus write-ahead log not yet checkpointed.
    pub fn data_bytes(&self) -> u64 {
        self.parquet_bytes.load(Ordering::Relaxed) + self.backlog_bytes()
    }

    /// The write-ahead log's counters.
    pub fn wal_stats(&self) -> &crate::wal::WalStats {
        self.wal.stats()
    }

    /// Rows waiting for the next checkpoint.
    pub fn buffered_rows(&self) -> Result<usize> {
        Ok(self.buffers.lock().map_err(poisoned)?.rows)
    }

    /// Writes every buffered row as Parquet parts and drops the WAL segments they came from.
    pub async fn checkpoint(&self) -> Result<CheckpointReport> {
        let _one_at_a_time = self.checkpointing.lock().await;
        let (cut, taken, dedup, cut_bytes) = {
            let _exclusive = self.cut_guard.write().await;
            let cut = self.wal.rotate().await?;
            let cut_bytes = self.wal.stats().bytes.load(Ordering::Relaxed);
            let taken = std::mem::take(&mut *self.buffers.lock().map_err(poisoned)?);
            let dedup = self.dedup.lock().map_err(poisoned)?.clone();
            (cut, taken, dedup, cut_bytes)
        };
        if taken.rows == 0 {
            self.checkpointed_bytes.store(cut_bytes, Ordering::Relaxed);
            self.wal.remove_before(cut)?;
            return Ok(CheckpointReport {
                cut,
                ..CheckpointReport::default()
            });
        }
        let config = self.config.clone();
        let rows = taken.rows;
        let (taken, written) = tokio::task::spawn_blocking(move || {
            let written = write_checkpoint(&config, cut, &taken, &dedup);
            (taken, written)
        })
        .await
        .map_err(|e| CollectorError::Task(e.to_string()))?;
        match written {
            Ok((files, bytes)) => {
                self.parquet_bytes.fetch_add(bytes, Ordering::Relaxed);
                self.checkpointed_bytes.store(cut_bytes, Ordering::Relaxed);
                self.checkpoints.fetch_add(1, Ordering::Relaxed);
                self.wal.remove_before(cut)?;
                Ok(CheckpointReport { cut, rows, files })
            }
            Err(e) => {
                // Keep the rows for the next checkpoint; their WAL segments stay until then.
                let mut buffers = self.buffers.lock().map_err(poisoned)?;
                buffers.rows += taken.rows;
                for (key, mut parts) in taken.payloads {
                    buffers.payloads.entry(key).or_default().append(&mut parts);
                }
                Err(e)
            }
        }
    }
}

/// Rows of `batch` stored (`accepted`) and rejected.
fn stored_counts(batch: &Batch, accepted: &[usize]) -> StoredCounts {
    let rows = batch
        .payload
        .as_ref()
        .and_then(|p| p.row_count().ok())
        .unwrap_or(accepted.len());
    StoredCounts {
        accepted: u32::try_from(accepted.len()).unwrap_or(u32::MAX),
        rejected: u32::try_from(rows.saturating_sub(accepted.len())).unwrap_or(u32::MAX),
    }
}

/// The WAL record of a batch, encoded as a `WalEntry` without copying the batch first.
fn wal_record(batch: &Batch, accepted: &[usize]) -> Vec<u8> {
    let accepted: Vec<u32> = accepted
        .iter()
        .map(|&i| u32::try_from(i).unwrap_or(u32::MAX))
        .collect();
    let len = batch.encoded_len();
    let mut buf = Vec::with_capacity(len + 16 + 5 * accepted.len());
    // `message::encode(1, batch, ..)`, with the body written into a pre-sized slice.
    prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, &mut buf);
    prost::encoding::encode_varint(len as u64, &mut buf);
    cablewatch_proto::codec::append_encoded(batch, &mut buf);
    prost::encoding::uint32::encode_packed(2, &accepted, &mut buf);
    buf
}

/// Adds the accepted rows of `payload`: moved as it is when every row was accepted.
fn buffer(buffers: &mut Buffers, payload: Payload, accepted: &[usize]) {
    if accepted.is_empty() {
        return;
    }
    let all = payload.row_count().is_ok_and(|n| n == accepted.len());
    let rows = if all { payload } else { payload.select(accepted) };
    buffers.rows += accepted.len();
    let key = (rows.table().name, rows.cable_id().to_owned());
    buffers.payloads.entry(key).or_default().push(rows);
}

/// Writes the parts and the checkpoint file; on failure removes the parts it wrote. Returns the
/// number of parts and their bytes.
fn write_checkpoint(
    config: &DurableConfig,
    cut: u64,
    taken: &Buffers,
    dedup: &Dedup,
) -> Result<(usize, u64)> {
    let mut written = Vec::new();
    let result = write_parts(config, cut, taken, &mut written)
        .and_then(|()| write_checkpoint_file(config, cut, dedup));
    if result.is_err() {
        for part in &written {
            let _ = fs::remove_file(part);
        }
    }
    let bytes = written
        .iter()
        .filter_map(|p| fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    result.map(|()| (written.len(), bytes))
}

/// Total size of the `.parquet` files under `dir` (the write-ahead log directory has none).
pub fn parquet_bytes_under(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else { continue };
            let path = entry.path();
            if kind.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                total += entry.metadata().map_or(0, |m| m.len());
            }
        }
    }
    total
}

/// Writes every (table, cable) key's parts, keys spread over up to one thread per core: a checkpoint
/// is most of the collector's work, and on one thread it could not keep up with what two cores
/// acknowledge. Every file written is listed in `written`, also when a key failed.
fn write_parts(config: &DurableConfig, cut: u64, taken: &Buffers, written: &mut Vec<PathBuf>) -> Result<()> {
    let stem = format!("{PART_PREFIX}{cut:020}");
    let jobs: Vec<_> = taken
        .payloads
        .iter()
        .filter(|(_, parts)| !parts.is_empty())
        .collect();
    let next = AtomicUsize::new(0);
    let work = || {
        let mut mine = Vec::new();
        while let Some(((table, cable), parts)) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
            if let Err(e) = write_key(config, &stem, table, cable, parts, &mut mine) {
                return (mine, Err(e));
            }
        }
        (mine, Ok(()))
    };
    let workers = thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len());
    let results: Vec<(Vec<PathBuf>, Result<()>)> = if workers <= 1 {
        vec![work()]
    } else {
        thread::scope(|scope| {
            let handles: Vec<_> = (0..workers).map(|_| scope.spawn(work)).collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        (
                            Vec::new(),
                            Err(CollectorError::Task("checkpoint writer panicked".into())),
                        )
                    })
                })
                .collect()
        })
    };
    let mut first_error = None;
    for (mine, result) in results {
        written.extend(mine);
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Writes one (table, cable) key's parts: one sorted Parquet file per UTC day.
fn write_key(
    config: &DurableConfig,
    stem: &str,
    table: &str,
    cable: &str,
    parts: &[Payload],
    written: &mut Vec<PathBuf>,
) -> Result<()> {
    let table = tables::by_name(table).ok_or_else(|| CollectorError::Task(format!("no table {table}")))?;
    let cable = CableId::try_new(cable).map_err(|_| CollectorError::UnknownCable {
        cable: cablewatch_proto::ids::preview(cable),
    })?;
    for day in store::parts_to_record_batches(parts)? {
        written.push(store::write_part(
            &config.data_dir,
            table,
            &cable,
            day.day,
            stem,
            &[day.batch],
            config.parquet,
        )?);
    }
    Ok(())
}

/// The checkpoint file, and whether it had to be rebuilt. A missing or damaged file (unreadable,
/// not a checkpoint, or not matching its checksum) does not stop the collector (a start that fails
/// would fail again, for ever): the damaged file is moved aside as
/// `checkpoint.json.damaged-<unix time>`, and the cut is rebuilt from what is on disk. Every
/// record the log still holds (at or above its oldest segment's first index) is replayed, and
/// parts of checkpoints beyond that point are removed as unfinished: a checkpoint deletes log
/// segments only after its parts and its checkpoint file are durable, so their rows are all still
/// in the log. With no log left, every part is kept. The dedup index is rebuilt from the replayed
/// records only, so a batch stored before the last checkpoint and sent again is stored twice: the
/// log says so, loudly.
fn read_checkpoint(config: &DurableConfig, first_segment: Option<u64>) -> Result<(CheckpointFile, bool)> {
    let path = config.wal.dir.join(CHECKPOINT_FILE);
    let problem = match fs::read(&path) {
        Ok(bytes) => match serde_json::from_slice::<CheckpointFile>(&bytes) {
            Ok(checkpoint)
                if checkpoint
                    .crc32
                    .is_some_and(|crc| checkpoint.checksum().ok() != Some(crc)) =>
            {
                "its checksum does not match its content (the file is damaged)".to_owned()
            }
            Ok(mut checkpoint) => {
                checkpoint.dedup.upgrade();
                return Ok((checkpoint, false));
            }
            Err(e) => format!("it is not a checkpoint ({e})"),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if first_segment.is_none_or(|first| first == 0) && newest_part_cut(&config.data_dir).is_none() {
                // A new data directory, or one whose first checkpoint has not run yet.
                return Ok((CheckpointFile::default(), false));
            }
            "it is missing, but parts or a trimmed log are there".to_owned()
        }
        Err(e) => format!("it cannot be read ({e})"),
    };
    if path.exists() {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let aside = config.wal.dir.join(format!("{CHECKPOINT_FILE}.damaged-{stamp}"));
        fs::rename(&path, &aside).map_err(|e| CollectorError::Recovery {
            path: path.clone(),
            reason: format!("{problem}, and moving it aside failed: {e}"),
        })?;
        sync_dir(&config.wal.dir)?;
    }
    let cut = first_segment
        .or_else(|| newest_part_cut(&config.data_dir))
        .unwrap_or_default();
    error!(
        checkpoint = %path.display(),
        cut,
        "The checkpoint file is unusable: {problem}. Moved it aside and rebuilt the cut from the \
         write-ahead log and the parts; everything the log holds is replayed. The index of stored \
         batches only knows the replayed ones: a batch stored before and sent again now would be \
         stored twice."
    );
    Ok((
        CheckpointFile {
            cut,
            ..CheckpointFile::default()
        },
        true,
    ))
}

/// The cut of the newest checkpoint that wrote parts under `data` (`part-ckpt-<cut>.parquet`).
fn newest_part_cut(data: &Path) -> Option<u64> {
    let mut newest = None;
    let mut stack = vec![data.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|k| k.is_dir()) {
                stack.push(path);
            } else if let Some(cut) = part_cut(&path) {
                newest = newest.max(Some(cut));
            }
        }
    }
    newest
}

/// The cut in a checkpoint part's name, `part-ckpt-<cut>.parquet`.
fn part_cut(path: &Path) -> Option<u64> {
    path.file_name()?
        .to_str()?
        .strip_prefix("part-")?
        .strip_prefix(PART_PREFIX)?
        .strip_suffix(".parquet")?
        .parse()
        .ok()
}

fn write_checkpoint_file(config: &DurableConfig, cut: u64, dedup: &Dedup) -> Result<()> {
    let path = config.wal.dir.join(CHECKPOINT_FILE);
    let temp = config.wal.dir.join(format!(".{CHECKPOINT_FILE}.tmp"));
    let mut checkpoint = CheckpointFile {
        cut,
        dedup: dedup.clone(),
        crc32: None,
    };
    let io = |reason: std::io::Error| CollectorError::Recovery {
        path: path.clone(),
        reason: reason.to_string(),
    };
    checkpoint.crc32 = Some(checkpoint.checksum().map_err(|e| io(std::io::Error::other(e)))?);
    let bytes = serde_json::to_vec(&checkpoint).map_err(|e| io(std::io::Error::other(e)))?;
    fs::write(&temp, bytes).map_err(io)?;
    fs::File::open(&temp).and_then(|f| f.sync_all()).map_err(io)?;
    fs::rename(&temp, &path).map_err(io)?;
    sync_dir(&config.wal.dir)?;
    Ok(())
}

/// Deletes parts written by checkpoints after `cut` that never finished (their rows are still in
/// the WAL and will be written again). Returns how many were removed.
fn remove_unfinished_parts(data: &Path, cut: u64) -> Result<usize> {
    let mut removed = 0;
    for table in tables::ALL {
        let dir = layout::table_dir(data, table);
        let Ok(cables) = fs::read_dir(&dir) else { continue };
        for cable_dir in cables.filter_map(|e| e.ok()).map(|e| e.path()) {
            let Ok(dates) = fs::read_dir(&cable_dir) else {
                continue;
            };
            for date_dir in dates.filter_map(|e| e.ok()).map(|e| e.path()) {
                let Ok(parts) = fs::read_dir(&date_dir) else {
                    continue;
                };
                for part in parts.filter_map(|e| e.ok()).map(|e| e.path()) {
                    let name = part.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                    let stale_temp = name.starts_with('.') && name.ends_with(".tmp");
                    let unfinished = part_cut(&part).is_some_and(|n| n > cut);
                    if stale_temp || unfinished {
                        fs::remove_file(&part).map_err(|e| CollectorError::Recovery {
                            path: part.clone(),
                            reason: e.to_string(),
                        })?;
                        warn!(part = %part.display(), "Removed a part of an unfinished checkpoint; its rows are replayed from the write-ahead log.");
                        removed += 1;
                    }
                }
                sync_dir(&date_dir)?;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use cablewatch_proto::wire::{Direction, LineMonitoringSamples};

    use super::*;

    #[test]
    fn wal_record_decodes_as_an_entry_without_copying_the_batch_first() {
        let batch = Batch {
            station_id: "s".into(),
            stream_epoch: 3,
            sequence: 9,
            payload: Some(Payload::LineMonitoring(LineMonitoringSamples {
                cable_id: "c".into(),
                time_unix_ns: vec![1, 2],
                sweep_id: vec![1, 1],
                fiber_pair: vec![1, 1],
                direction: vec![Direction::AToB as i32; 2],
                repeater: vec![1, 2],
                loopback_gain_db: vec![-30.0, -31.0],
            })),
        };
        let entry = WalEntry::decode(wal_record(&batch, &[1]).as_slice()).unwrap();
        assert_eq!(entry.batch.as_ref(), Some(&batch));
        assert_eq!(entry.accepted, [1]);
    }
}
