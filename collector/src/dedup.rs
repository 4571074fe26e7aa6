//! Which batches are already stored: per station and stream epoch, the set of sequence numbers seen.
//!
//! Stored compactly as "every sequence below `below`" plus the few seen above it, so the index stays
//! small however long a stream runs. Only the newest [`EPOCHS_KEPT`] epochs of a station are kept: a
//! station that restarted that many times will not resend batches of its oldest streams.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Epochs remembered per station.
pub const EPOCHS_KEPT: usize = 8;

/// Sequence numbers seen in one epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqSet {
    /// Every sequence number below this was seen.
    pub below: u64,
    /// Seen sequence numbers at or above `below`.
    pub above: BTreeSet<u64>,
}

impl SeqSet {
    /// Whether `seq` was seen.
    pub fn contains(&self, seq: u64) -> bool {
        seq < self.below || self.above.contains(&seq)
    }

    /// Records `seq`; returns false if it was already there.
    pub fn insert(&mut self, seq: u64) -> bool {
        if self.contains(seq) {
            return false;
        }
        self.above.insert(seq);
        while self.above.remove(&self.below) {
            self.below += 1;
        }
        true
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

    /// Records the batch; returns false if it was already there.
    pub fn insert(&mut self, station: &str, epoch: u64, seq: u64) -> bool {
        let epochs = self.stations.entry(station.to_owned()).or_default();
        let fresh = epochs.entry(epoch).or_default().insert(seq);
        while epochs.len() > EPOCHS_KEPT {
            epochs.pop_first();
        }
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_order_sequences_compact_to_a_watermark() {
        let mut s = SeqSet::default();
        for seq in [2, 0, 3, 1, 7] {
            assert!(s.insert(seq));
        }
        assert!(!s.insert(3));
        assert_eq!(s.below, 4);
        assert_eq!(s.above.iter().copied().collect::<Vec<_>>(), [7]);
        assert!(s.contains(0) && s.contains(7) && !s.contains(5));
    }

    #[test]
    fn old_epochs_are_forgotten() {
        let mut d = Dedup::default();
        for epoch in 0..20 {
            d.insert("a", epoch, 0);
        }
        assert!(d.contains("a", 19, 0));
        assert!(!d.contains("a", 0, 0));
        assert_eq!(d.stations["a"].len(), EPOCHS_KEPT);
    }
}
