//! Persisting a batch's valid rows: Arrow record batches written durably as Parquet parts.
//!
//! Each batch becomes one part file per UTC day it touches, named after the batch's identity
//! (`part-<station>-<epoch>-<sequence>.parquet`). That name makes a retried batch find its own file
//! and store nothing twice, across restarts too. The write is complete (fsync of file and directory)
//! before the caller acknowledges.

use std::path::{Path, PathBuf};

use cablewatch_proto::{
    CableId, StationId, layout,
    store::{self, ParquetOptions},
    wire::Payload,
};

use crate::Result;

/// Identity of a batch: who sent it, in which stream epoch, with which sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BatchKey {
    /// Sending station.
    pub station: StationId,
    /// Stream epoch.
    pub epoch: u64,
    /// Sequence number within the epoch.
    pub sequence: u64,
}

impl BatchKey {
    /// The part-file stem for this batch.
    pub fn file_stem(&self) -> String {
        format!("{}-{}-{}", self.station, self.epoch, self.sequence)
    }
}

/// What persisting did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Persisted {
    /// Files written now.
    pub written: Vec<PathBuf>,
    /// True when every part of this batch was already on disk (a retry).
    pub duplicate: bool,
}

/// Writes rows `accepted` of `payload` for `cable` under `data`. Blocking: call off the async runtime.
pub fn persist(
    data: &Path,
    key: &BatchKey,
    cable: &CableId,
    payload: &Payload,
    accepted: &[usize],
    options: ParquetOptions,
) -> Result<Persisted> {
    let mut out = Persisted::default();
    if accepted.is_empty() {
        return Ok(out);
    }
    let table = payload.table();
    let stem = key.file_stem();
    let mut existing = 0;
    let day_batches = store::to_record_batches(payload, Some(accepted))?;
    let parts = day_batches.len();
    for day_batch in day_batches {
        let path =
            layout::partition_dir(data, table, cable, day_batch.day).join(layout::part_file_name(&stem));
        if path.exists() {
            existing += 1;
            continue;
        }
        let written = store::write_part(
            data,
            table,
            cable,
            day_batch.day,
            &stem,
            &[day_batch.batch],
            options,
        )?;
        out.written.push(written);
    }
    out.duplicate = existing == parts;
    Ok(out)
}
