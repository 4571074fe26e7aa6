//! Shared pieces of the cablewatch benchmarks.
//!
//! [`row_layout`] is the alternative wire encoding the columnar contract was measured against: one
//! protobuf message per row, as many telemetry protocols send it. It exists only for that comparison.

pub mod row_layout;

use cablewatch_proto::wire::{OpticalChannelSamples, Payload};
use cablewatch_testdata::{generate::generate, scenario::Scenario};

/// `rows` realistic optical rows (from the simulator's tiny scenario) as one columnar payload.
pub fn optical_payload(rows: usize) -> OpticalChannelSamples {
    let scenario = Scenario::load("tiny").unwrap_or_else(|e| panic!("embedded scenario: {e}"));
    let units = generate(&scenario, 1).unwrap_or_else(|e| panic!("generating: {e}"));
    let optical = units
        .iter()
        .find_map(|u| match &u.payload {
            Payload::Optical(p) if p.time_unix_ns.len() >= rows => Some(Payload::Optical(p.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("the tiny scenario has fewer than {rows} optical rows per unit"));
    match optical.slice(0..rows) {
        Payload::Optical(p) => p,
        _ => unreachable!("slice keeps the payload kind"),
    }
}
