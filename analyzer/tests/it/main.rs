//! Analyzer integration tests: the end-to-end demo on the tiny scenario, the schema check against
//! the contract, filters and series extraction.
#![allow(clippy::unwrap_used, missing_docs)]

mod load;
