//! Analyzer integration tests: the end-to-end demo on the tiny scenario, the schema check against
//! the contract, filters and series extraction; the change-point engine on real labelled RTT traces
//! and through the command line.
#![allow(clippy::unwrap_used, missing_docs)]

mod changepoints;
mod eval;
mod load;
mod run;
