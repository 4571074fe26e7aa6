//! Which batches are already stored: per station and stream epoch, the sequence numbers seen.
//!
//! Stored as "every sequence below `below`" plus the runs of consecutive sequences seen above it, so
//! the index is as large as the number of gaps, not of batches: a stream that runs for a year
//! without a gap is one number. A gap is a batch the collector never stored (every row invalid, a
//! batch the station gave up on, a station that skipped numbers), and it stays a gap. The window is
//! bounded: at most [`RUNS_KEPT`] runs per epoch (the oldest run is forgotten when a gap opens one
//! more) and the newest [`EPOCHS_KEPT`] epochs per station. A batch whose sequence was forgotten is
//! stored again if it is sent again; a station resends only what was not acknowledged, which is
//! recent, so forgetting old runs trades a duplicate that does not happen for an index that cannot
//! grow.
//!
//! For the newest [`COUNTS_KEPT`] batches of each epoch it also keeps how many rows were stored and
//! rejected, so that the acknowledgement of a batch sent again reports what was stored the first
//! time (the resent copy may differ, or rows may have aged out of the accepted time window since),
//! not a count of the copy.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

/// Epochs remembered per station.
pub const EPOCHS_KEPT: usize = 8;
/// Runs of consecutive sequences remembered per epoch above its watermark (so at most this many
/// gaps). With 64, `checkpoint.json` holds at most a few kilobytes per station and epoch.
pub const RUNS_KEPT: usize = 64;
/// Batches per epoch whose stored and rejected row counts are remembered: the ones a station
/// resends after a broken connection are the last few windows of unacknowledged batches.
pub const COUNTS_KEPT: usize = 64;

/// Rows of a stored batch: durably stored, and rejected as invalid when it was first received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredCounts {
    /// Rows stored.
    pub accepted: u32,
    /// Rows rejected.
    pub rejected: u32,
}

/// Sequence numbers seen in one epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqSet {
    /// Every sequence number below this was seen.
    pub below: u64,
    /// Runs of seen sequence numbers above `below`, as `[first, end)` pairs, ascending, disjoint and
    /// not touching each other or `below`.
    #[serde(default)]
    pub runs: Vec<(u64, u64)>,
    /// The format before runs (each sequence number seen above `below`); read, never written.
    #[serde(default, skip_serializing)]
    above: Vec<u64>,
    /// Row counts of the newest [`COUNTS_KEPT`] batches recorded, as `(sequence, stored,
    /// rejected)` in the order they were recorded; only in a station's newest epoch (a station
    /// that renumbered does not resend the old numbers).
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    counts: VecDeque<(u64, u32, u32)>,
}

impl SeqSet {
    /// Whether `seq` was seen (and not forgotten).
    pub fn contains(&self, seq: u64) -> bool {
        if seq < self.below {
            return true;
        }
        // The last run starting at or before `seq`.
        let i = self.runs.partition_point(|&(first, _)| first <= seq);
        i > 0 && seq < self.runs[i - 1].1
    }

    /// Records `seq`; returns false if it was already there.
    pub fn insert(&mut self, seq: u64) -> bool {
        if self.contains(seq) {
            return false;
        }
        let i = self.runs.partition_point(|&(first, _)| first <= seq);
        let joins_before = i > 0 && self.runs[i - 1].1 == seq;
        let joins_after = self.runs.get(i).is_some_and(|&(first, _)| first == seq + 1);
        match (joins_before, joins_after) {
            (true, true) => {
                self.runs[i - 1].1 = self.runs[i].1;
                self.runs.remove(i);
            }
            (true, false) => self.runs[i - 1].1 = seq + 1,
            (false, true) => self.runs[i].0 = seq,
            (false, false) => self.runs.insert(i, (seq, seq + 1)),
        }
        // A run that reaches the watermark joins it.
        if let Some(&(first, end)) = self.runs.first()
            && first <= self.below
        {
            self.below = self.below.max(end);
            self.runs.remove(0);
        }
        if self.runs.len() > RUNS_KEPT {
            self.runs.remove(0);
        }
        true
    }

    /// Remembers the row counts of `seq` (the newest [`COUNTS_KEPT`] are kept).
    pub fn record_counts(&mut self, seq: u64, counts: StoredCounts) {
        self.counts.push_back((seq, counts.accepted, counts.rejected));
        while self.counts.len() > COUNTS_KEPT {
            self.counts.pop_front();
        }
    }

    /// The row counts of `seq`, if it is among the newest batches recorded.
    pub fn counts(&self, seq: u64) -> Option<StoredCounts> {
        self.counts
            .iter()
            .rev()
            .find(|&&(s, ..)| s == seq)
            .map(|&(_, accepted, rejected)| StoredCounts { accepted, rejected })
    }

    /// Converts the format before runs, once, after reading a checkpoint.
    fn upgrade(&mut self) {
        for seq in std::mem::take(&mut self.above) {
            self.insert(seq);
        }
    }
}

/// Batches seen, by station and epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dedup {
    /// Station id -> epoch -> sequence numbers.
    pub stations: BTreeMap<String, BTreeMap<u64, SeqSet>>,
}

impl Dedup {
    /// Whether the batch was seen.
    pub fn contains(&self, station: &str, epoch: u64, seq: u64) -> bool {
        self.stations
            .get(station)
            .and_then(|e| e.get(&epoch))
            .is_some_and(|s| s.contains(seq))
    }

    /// Records the batch and its row counts; returns false if it was already there.
    pub fn insert(&mut self, station: &str, epoch: u64, seq: u64, counts: StoredCounts) -> bool {
        let epochs = self.stations.entry(station.to_owned()).or_default();
        let set = epochs.entry(epoch).or_default();
        let fresh = set.insert(seq);
        if fresh {
            set.record_counts(seq, counts);
            for (_, older) in epochs.range_mut(..epoch) {
                older.counts.clear();
            }
        }
        while epochs.len() > EPOCHS_KEPT {
            epochs.pop_first();
        }
        fresh
    }

    /// The row counts the batch was stored with, if it is still remembered.
    pub fn counts(&self, station: &str, epoch: u64, seq: u64) -> Option<StoredCounts> {
        self.stations.get(station)?.get(&epoch)?.counts(seq)
    }

    /// Brings an index read from an older checkpoint to the current form.
    pub fn upgrade(&mut self) {
        for set in self.stations.values_mut().flat_map(BTreeMap::values_mut) {
            set.upgrade();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROWS: StoredCounts = StoredCounts {
        accepted: 192,
        rejected: 0,
    };

    /// The counts a batch was stored with are what a resend is answered with, for the newest
    /// batches of the newest epoch; they survive the checkpoint file.
    #[test]
    fn row_counts_of_the_newest_batches_are_kept_and_read_back() {
        let mut d = Dedup::default();
        let partial = StoredCounts {
            accepted: 8,
            rejected: 2,
        };
        d.insert("north", 1, 0, partial);
        for seq in 1..=COUNTS_KEPT as u64 {
            d.insert("north", 1, seq, ROWS);
        }
        assert_eq!(d.counts("north", 1, COUNTS_KEPT as u64), Some(ROWS));
        assert_eq!(d.counts("north", 1, 0), None, "the oldest counts are forgotten");
        d.insert("north", 1, 1_000, partial);
        assert!(
            !d.insert("north", 1, 1_000, ROWS),
            "a resend does not overwrite them"
        );
        let back: Dedup = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(back.counts("north", 1, 1_000), Some(partial));
        // A new epoch: the old one's counts go, its sequences stay.
        d.insert("north", 2, 0, ROWS);
        assert_eq!(d.counts("north", 1, 1_000), None);
        assert!(d.contains("north", 1, 1_000));
    }

    #[test]
    fn out_of_order_sequences_compact_to_a_watermark() {
        let mut s = SeqSet::default();
        for seq in [2, 0, 3, 1, 7] {
            assert!(s.insert(seq));
        }
        assert!(!s.insert(3));
        assert_eq!(s.below, 4);
        assert_eq!(s.runs, [(7, 8)]);
        assert!(s.contains(0) && s.contains(7) && !s.contains(5));
        for seq in [4, 9, 8] {
            assert!(s.insert(seq));
        }
        assert_eq!((s.below, s.runs.as_slice()), (5, &[(7, 10)][..]));
        assert!(s.insert(6));
        assert_eq!((s.below, s.runs.as_slice()), (5, &[(6, 10)][..]));
        assert!(s.insert(5));
        assert_eq!((s.below, s.runs.len()), (10, 0));
    }

    #[test]
    fn old_epochs_are_forgotten() {
        let mut d = Dedup::default();
        for epoch in 0..20 {
            d.insert("a", epoch, 0, ROWS);
        }
        assert!(d.contains("a", 19, 0));
        assert!(!d.contains("a", 0, 0));
        assert_eq!(d.stations["a"].len(), EPOCHS_KEPT);
    }

    /// One batch never stored, then 50,000 stored: the index stays a few numbers (before runs it
    /// held every one of the 50,000 and grew `checkpoint.json` to 289 kB).
    #[test]
    fn a_gap_keeps_the_index_small_however_many_batches_follow() {
        let mut d = Dedup::default();
        for seq in 1..=50_000 {
            assert!(d.insert("north", 3, seq, ROWS));
        }
        assert!(!d.contains("north", 3, 0));
        assert!(d.contains("north", 3, 1) && d.contains("north", 3, 50_000));
        assert!(!d.insert("north", 3, 25_000, ROWS));
        let json = serde_json::to_string(&d).unwrap();
        // The set is three numbers; the rest is the row counts of the newest batches.
        assert!(
            json.len() < 100 + COUNTS_KEPT * 20,
            "{} bytes: {json}",
            json.len()
        );
        // The missing batch arrives after all: the watermark moves past the run.
        assert!(d.insert("north", 3, 0, ROWS));
        assert_eq!(d.stations["north"][&3].below, 50_001);
    }

    /// Every other batch missing: the runs are bounded, the newest remembered, the oldest forgotten.
    #[test]
    fn many_gaps_keep_the_newest_runs_only() {
        let mut s = SeqSet::default();
        for seq in (1..200_000).step_by(2) {
            s.insert(seq);
        }
        assert_eq!(s.runs.len(), RUNS_KEPT);
        assert!(s.contains(199_999) && s.contains(199_999 - 2 * (RUNS_KEPT as u64 - 1)));
        assert!(!s.contains(1) && !s.contains(2));
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.len() < 2_000, "{} bytes", json.len());
    }

    /// A checkpoint written before runs (`above`: every sequence seen) still reads, as the same set.
    #[test]
    fn the_format_before_runs_reads_back_as_the_same_set() {
        let old = r#"{"stations":{"south":{"7":{"below":4,"above":[6,7,9]}}}}"#;
        let mut d: Dedup = serde_json::from_str(old).unwrap();
        d.upgrade();
        let s = &d.stations["south"][&7];
        assert_eq!((s.below, s.runs.as_slice()), (4, &[(6, 8), (9, 10)][..]));
        assert!(d.contains("south", 7, 3) && d.contains("south", 7, 9) && !d.contains("south", 7, 5));
        assert!(!serde_json::to_string(&d).unwrap().contains("above"));
    }
}
