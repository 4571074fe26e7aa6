//! The cablewatch analyzer: reads the stored tables with polars, finds tapping signatures and
//! explains the benign ones.
//!
//! ```text
//! <data>/<table>/cable=*/date=*/*.parquet --load (polars lazy scan per partition, schema checked
//! against the contract)--> series per repeater and fiber; optical as a time-by-channel matrix per
//! fiber --detect (rayon; accumulated step tests on line monitoring, the change-point engine on
//! delay, Q and power)--> evidence --fusion (per fiber and span; every group checked against each
//! hypothesis, benign and malicious)--> findings in incidents --> findings.json, findings.parquet,
//! run.json, report/ (HTML + plots) --eval (simulator truth, one scenario or a suite)--> scores
//! ```
//!
//! [`run`] is the scheduled job, [`eval`] scores it against a simulated scenario's ground truth,
//! [`changepoint`] is the engine on its own, [`summary`] the `inspect` overview, [`plot`] the
//! plotting foundation (time, along-cable, heat map and event plots with an embedded font),
//! [`figures`] a finding's and the overview's figures from the stored tables, [`report`] the
//! analysts' HTML report that `run` writes with them. [`demo`] runs the
//! whole system on an embedded scenario: simulated stations stream over gRPC into a real collector,
//! which stores Parquet that this crate then reads.

pub mod changepoint;
pub mod demo;
pub mod detect;
pub mod error;
pub mod eval;
pub mod figures;
pub mod fusion;
pub mod load;
pub mod plot;
pub mod report;
pub mod robust;
pub mod run;
pub mod series;
pub mod series_csv;
pub mod summary;

pub use error::{AnalyzerError, Result};
