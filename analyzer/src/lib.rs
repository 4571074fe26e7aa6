//! The cablewatch analyzer: reads the stored tables with polars, splits them into per-series arrays
//! and summarises them in parallel; the detectors, fusion and explanations build on this.
//!
//! ```text
//! <data>/<table>/cable=*/date=*/*.parquet --load (polars lazy scan, schema checked against the
//! contract)--> DataFrame --series (one ndarray per cable, direction, fiber pair, channel or
//! repeater)--> robust baselines (rayon) --> summary
//! ```
//!
//! [`demo`] runs the whole pipeline on an embedded scenario: simulated stations stream over gRPC into
//! a real collector, which stores Parquet that this crate then reads.

pub mod changepoint;
pub mod demo;
pub mod detect;
pub mod error;
pub mod eval;
pub mod fusion;
pub mod load;
pub mod robust;
pub mod run;
pub mod series;
pub mod series_csv;
pub mod summary;

pub use error::{AnalyzerError, Result};
