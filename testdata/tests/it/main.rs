//! Simulator integration tests: physics of the generated rows, determinism, the stored layout read
//! back with polars, and the station streams.
#![allow(clippy::unwrap_used, missing_docs)]

mod events;
mod generate;
