//! One protobuf message per optical row: the layout the columnar wire contract is compared with.
//! Same fields and types as `OpticalChannelSamples`, but each row is its own message.

use cablewatch_proto::wire::{IntervalStats, OpticalChannelSamples};

/// avg, min and max of one quantity for one row.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Stat {
    /// Mean.
    #[prost(float, tag = "1")]
    pub avg: f32,
    /// Minimum.
    #[prost(float, tag = "2")]
    pub min: f32,
    /// Maximum.
    #[prost(float, tag = "3")]
    pub max: f32,
}

/// One optical sample.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OpticalRow {
    /// Time, ns.
    #[prost(sfixed64, tag = "1")]
    pub time_unix_ns: i64,
    /// Fiber pair.
    #[prost(uint32, tag = "2")]
    pub fiber_pair: u32,
    /// Direction.
    #[prost(int32, tag = "3")]
    pub direction: i32,
    /// Channel.
    #[prost(uint32, tag = "4")]
    pub channel: u32,
    /// The nine statistics, in wire order.
    #[prost(message, repeated, tag = "5")]
    pub stats: Vec<Stat>,
}

/// A batch of rows.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OpticalRows {
    /// Cable id.
    #[prost(string, tag = "1")]
    pub cable_id: String,
    /// The rows.
    #[prost(message, repeated, tag = "2")]
    pub rows: Vec<OpticalRow>,
}

fn stat(s: Option<&IntervalStats>, i: usize) -> Stat {
    s.map_or(Stat::default(), |s| Stat {
        avg: s.avg[i],
        min: s.min.get(i).copied().unwrap_or_default(),
        max: s.max.get(i).copied().unwrap_or_default(),
    })
}

/// The same rows as `p`, one message each.
pub fn to_rows(p: &OpticalChannelSamples) -> OpticalRows {
    let rows = (0..p.time_unix_ns.len())
        .map(|i| OpticalRow {
            time_unix_ns: p.time_unix_ns[i],
            fiber_pair: p.fiber_pair[i],
            direction: p.direction[i],
            channel: p.channel[i],
            stats: p.stats().iter().map(|(_, s)| stat(*s, i)).collect(),
        })
        .collect();
    OpticalRows {
        cable_id: p.cable_id.clone(),
        rows,
    }
}
