//! Resource budgets: what the collector holds in memory and on disk, and the admission check that
//! turns a batch away (with a retry delay, counted) before it would exceed one.
//!
//! - buffered rows: accepted rows waiting for a checkpoint to Parquet ([`Limits::max_buffered_rows`]),
//!   with the rows of batches being stored right now reserved, so that concurrent batches stay
//!   within it; a batch larger than the whole budget is told to split (`OUT_OF_RANGE`);
//! - in-flight bytes: encoded size of the batches being validated and logged right now, process-wide
//!   ([`Limits::max_in_flight_bytes`]); one batch is always admitted when nothing else is in flight,
//!   so a batch larger than the budget (but within the message size limit) is slow, not refused;
//! - free disk: space that must stay free on the data directory's file system
//!   ([`Limits::min_free_disk_bytes`]), read with `statvfs` at most once a second;
//! - data bytes: Parquet parts plus write-ahead log the data directory may hold
//!   ([`Limits::max_data_bytes`], off by default).
//!
//! Every refusal is a [`CollectorError::Overloaded`] naming the budget: `RETRY_LATER` on a stream,
//! `RESOURCE_EXHAUSTED` on the unary call, counted per budget here and per station in the metrics.

use std::{
    path::PathBuf,
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use crate::{CollectorError, Result, error::Budget};

/// Wait asked of a station when memory is full: about one checkpoint.
pub const MEMORY_RETRY_MS: u32 = 500;
/// Wait asked of a station when the disk budget is exhausted: an operator has to act.
pub const DISK_RETRY_MS: u32 = 10_000;
/// How long a free-space reading is reused.
const FREE_SPACE_TTL: Duration = Duration::from_secs(1);

/// The budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most accepted rows held in memory awaiting a checkpoint. Default 4,000,000 (about 600 MB of
    /// optical rows).
    pub max_buffered_rows: usize,
    /// Most bytes of batches being validated and logged at once. Default 256 MiB.
    pub max_in_flight_bytes: u64,
    /// Free space to leave on the data directory's file system. Default 1 GiB.
    pub min_free_disk_bytes: u64,
    /// Most bytes of Parquet parts and write-ahead log under the data directory; `None` = no limit.
    pub max_data_bytes: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_buffered_rows: 4_000_000,
            max_in_flight_bytes: 256 << 20,
            min_free_disk_bytes: 1 << 30,
            max_data_bytes: None,
        }
    }
}

/// Admission against [`Limits`], shared by every call.
#[derive(Debug)]
pub struct Admission {
    limits: Limits,
    data_dir: PathBuf,
    in_flight: AtomicU64,
    /// Rows admitted against the buffered-rows budget and not yet in the buffers.
    reserved_rows: AtomicU64,
    free: Mutex<Option<(Instant, u64)>>,
    refused: [AtomicU64; 4],
    /// The last disk check refused a batch (cleared by the next one that passes).
    disk_refusing: AtomicBool,
}

/// Bytes reserved for one batch; released when dropped.
#[derive(Debug)]
pub struct InFlight<'a> {
    admission: &'a Admission,
    bytes: u64,
}

/// Rows reserved in the buffered-rows budget for one batch; released when dropped.
#[derive(Debug)]
pub struct RowsReserved<'a> {
    admission: &'a Admission,
    rows: u64,
}

impl Drop for RowsReserved<'_> {
    fn drop(&mut self) {
        self.admission
            .reserved_rows
            .fetch_sub(self.rows, Ordering::AcqRel);
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.admission.in_flight.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

fn index(budget: Budget) -> usize {
    match budget {
        Budget::BufferedRows => 0,
        Budget::InFlightBytes => 1,
        Budget::FreeDisk => 2,
        Budget::DataBytes => 3,
    }
}

/// Every budget, in the order of [`Admission::refusals`].
pub const BUDGETS: [Budget; 4] = [
    Budget::BufferedRows,
    Budget::InFlightBytes,
    Budget::FreeDisk,
    Budget::DataBytes,
];

impl Admission {
    /// Admission for a collector storing under `data_dir`.
    pub fn new(limits: Limits, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            limits,
            data_dir: data_dir.into(),
            in_flight: AtomicU64::new(0),
            reserved_rows: AtomicU64::new(0),
            free: Mutex::new(None),
            refused: Default::default(),
            disk_refusing: AtomicBool::new(false),
        }
    }

    /// The budgets.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Refuses a batch over `budget`: counts it and builds the error.
    pub fn refuse(&self, budget: Budget, used: u64, limit: u64) -> CollectorError {
        self.refused[index(budget)].fetch_add(1, Ordering::Relaxed);
        let retry_after_ms = match budget {
            Budget::BufferedRows | Budget::InFlightBytes => MEMORY_RETRY_MS,
            Budget::FreeDisk | Budget::DataBytes => DISK_RETRY_MS,
        };
        CollectorError::Overloaded {
            budget,
            used,
            limit,
            retry_after_ms,
        }
    }

    /// Batches refused per budget, in the order of [`BUDGETS`].
    pub fn refusals(&self) -> [u64; 4] {
        BUDGETS.map(|b| self.refused[index(b)].load(Ordering::Relaxed))
    }

    /// Bytes of batches in flight now.
    pub fn in_flight_bytes(&self) -> u64 {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Reserves `bytes` of the in-flight budget for one batch.
    pub fn reserve(&self, bytes: u64) -> Result<InFlight<'_>> {
        let max = self.limits.max_in_flight_bytes;
        let mut current = self.in_flight.load(Ordering::Acquire);
        loop {
            if current > 0 && current.saturating_add(bytes) > max {
                return Err(self.refuse(Budget::InFlightBytes, current, max));
            }
            match self.in_flight.compare_exchange_weak(
                current,
                current + bytes,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return Ok(InFlight {
                        admission: self,
                        bytes,
                    });
                }
                Err(now) => current = now,
            }
        }
    }

    /// Reserves room for `incoming` rows in the buffers, which hold `buffered` now: the
    /// reservation lasts until the rows are in the buffers (drop it after appending). Batches
    /// checked at the same time count each other's reservations, so together they stay within the
    /// budget; without that, sixteen pipelined batches of each stream all passed a check of the same
    /// `buffered` and held 95,000 rows against a budget of 20,000. A batch larger than the whole
    /// budget can never fit: [`CollectorError::BatchTooLarge`], so that it is split, not retried.
    pub fn reserve_rows(&self, buffered: usize, incoming: usize) -> Result<RowsReserved<'_>> {
        let max = self.limits.max_buffered_rows as u64;
        let incoming64 = incoming as u64;
        if incoming64 > max {
            return Err(CollectorError::BatchTooLarge {
                rows: incoming,
                limit: self.limits.max_buffered_rows,
            });
        }
        let mut reserved = self.reserved_rows.load(Ordering::Acquire);
        loop {
            let used = (buffered as u64).saturating_add(reserved);
            if incoming > 0 && used.saturating_add(incoming64) > max {
                return Err(self.refuse(Budget::BufferedRows, used, max));
            }
            match self.reserved_rows.compare_exchange_weak(
                reserved,
                reserved + incoming64,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return Ok(RowsReserved {
                        admission: self,
                        rows: incoming64,
                    });
                }
                Err(now) => reserved = now,
            }
        }
    }

    /// Free bytes on the data directory's file system (cached for a second); `None` when it cannot
    /// be read (then the free-disk budget is not enforced, and the failure is logged).
    pub fn free_disk_bytes(&self) -> Option<u64> {
        let mut cached = self.free.lock().ok()?;
        if let Some((at, free)) = *cached
            && at.elapsed() < FREE_SPACE_TTL
        {
            return Some(free);
        }
        match rustix::fs::statvfs(&self.data_dir) {
            Ok(s) => {
                let free = s.f_bavail.saturating_mul(s.f_frsize);
                *cached = Some((Instant::now(), free));
                Some(free)
            }
            Err(e) => {
                tracing::warn!(dir = %self.data_dir.display(), error = %e, "Cannot read free disk space.");
                None
            }
        }
    }

    /// Checks the disk budgets for `incoming` more bytes, with `data_bytes` already stored.
    pub fn check_disk(&self, incoming: u64, data_bytes: u64) -> Result<()> {
        let checked = self.check_disk_uncached(incoming, data_bytes);
        self.disk_refusing.store(checked.is_err(), Ordering::Relaxed);
        checked
    }

    fn check_disk_uncached(&self, incoming: u64, data_bytes: u64) -> Result<()> {
        if let Some(free) = self.free_disk_bytes() {
            let min = self.limits.min_free_disk_bytes;
            if free < min.saturating_add(incoming) {
                return Err(self.refuse(Budget::FreeDisk, free, min));
            }
        }
        if let Some(max) = self.limits.max_data_bytes
            && data_bytes.saturating_add(incoming) > max
        {
            return Err(self.refuse(Budget::DataBytes, data_bytes, max));
        }
        Ok(())
    }

    /// Whether the disk budgets leave room for more data (for `/readyz`): false while the last
    /// batch checked was refused for disk, or while a budget is exhausted outright.
    pub fn disk_ok(&self, data_bytes: u64) -> bool {
        if self.disk_refusing.load(Ordering::Relaxed) {
            return false;
        }
        let free_ok = self
            .free_disk_bytes()
            .is_none_or(|free| free >= self.limits.min_free_disk_bytes);
        let data_ok = self.limits.max_data_bytes.is_none_or(|max| data_bytes < max);
        free_ok && data_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(limits: Limits) -> (tempfile::TempDir, Admission) {
        let dir = tempfile::tempdir().unwrap();
        let a = Admission::new(limits, dir.path());
        (dir, a)
    }

    #[test]
    fn in_flight_budget_admits_one_batch_alone_and_releases_on_drop() {
        let (_dir, a) = admission(Limits {
            max_in_flight_bytes: 100,
            ..Limits::default()
        });
        let big = a.reserve(250).unwrap();
        assert_eq!(a.in_flight_bytes(), 250);
        let err = a.reserve(1).unwrap_err();
        assert!(matches!(
            err,
            CollectorError::Overloaded {
                budget: Budget::InFlightBytes,
                used: 250,
                limit: 100,
                ..
            }
        ));
        drop(big);
        let a1 = a.reserve(60).unwrap();
        let a2 = a.reserve(40).unwrap();
        assert!(a.reserve(1).is_err());
        drop((a1, a2));
        assert_eq!(a.in_flight_bytes(), 0);
        assert_eq!(a.refusals(), [0, 2, 0, 0]);
    }

    #[test]
    fn disk_budgets_refuse_with_the_budget_named() {
        let (_dir, a) = admission(Limits {
            min_free_disk_bytes: u64::MAX / 2,
            ..Limits::default()
        });
        assert!(a.free_disk_bytes().is_some_and(|f| f > 0));
        let err = a.check_disk(10, 0).unwrap_err();
        assert!(err.to_string().contains("free-disk"), "{err}");
        assert!(!a.disk_ok(0));

        let (_dir, a) = admission(Limits {
            min_free_disk_bytes: 0,
            max_data_bytes: Some(1000),
            ..Limits::default()
        });
        a.check_disk(400, 600).unwrap();
        assert!(a.disk_ok(999) && !a.disk_ok(1000));
        let err = a.check_disk(401, 600).unwrap_err();
        assert!(err.to_string().contains("data-directory"), "{err}");
        assert!(matches!(
            err,
            CollectorError::Overloaded {
                retry_after_ms: DISK_RETRY_MS,
                ..
            }
        ));
        assert!(!a.disk_ok(600), "not ready while batches are refused for disk");
        a.check_disk(100, 600).unwrap();
        assert!(a.disk_ok(600), "ready again once a batch fits");
        assert_eq!(a.refusals(), [0, 0, 0, 1]);
    }

    #[test]
    fn buffered_rows_budget_counts_refusals() {
        let (_dir, a) = admission(Limits {
            max_buffered_rows: 10,
            ..Limits::default()
        });
        drop(a.reserve_rows(5, 5).unwrap());
        drop(a.reserve_rows(50, 0).unwrap());
        assert!(a.reserve_rows(6, 5).is_err());
        assert_eq!(a.refusals()[0], 1);
    }

    /// Batches admitted at the same time see each other's reservations: together they stay within
    /// the budget (checked against the same buffered count, every one of them used to pass).
    #[test]
    fn concurrent_reservations_stay_within_the_budget() {
        let (_dir, a) = admission(Limits {
            max_buffered_rows: 1_000,
            ..Limits::default()
        });
        let held: Vec<_> = (0..16).filter_map(|_| a.reserve_rows(200, 100).ok()).collect();
        assert_eq!(held.len(), 8, "200 buffered + 8 x 100 reserved = the budget");
        assert_eq!(a.refusals()[0], 8);
        drop(held);
        assert_eq!(
            a.reserve_rows(200, 800).unwrap().rows,
            800,
            "released when dropped"
        );
    }

    /// A batch larger than the whole budget is told to split, not to retry (it never fits).
    #[test]
    fn a_batch_larger_than_the_budget_is_refused_as_too_large() {
        let (_dir, a) = admission(Limits {
            max_buffered_rows: 1_000,
            ..Limits::default()
        });
        let err = a.reserve_rows(0, 1_001).unwrap_err();
        assert!(
            matches!(
                err,
                CollectorError::BatchTooLarge {
                    rows: 1_001,
                    limit: 1_000
                }
            ),
            "{err}"
        );
        assert_eq!(crate::error::to_status(&err).code(), tonic::Code::OutOfRange);
        assert!(err.to_string().contains("split"), "{err}");
    }
}
