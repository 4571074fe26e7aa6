//! The cablewatch collector: landing stations stream telemetry batches in over gRPC; each batch is
//! validated row by row ([`validate`]), its valid rows become Arrow record batches and are written
//! durably as Parquet in the stored-table layout ([`persist`]), and only then is it acknowledged
//! ([`service`]). [`server`] wires the service to a listener and shuts it down gracefully.
//!
//! ```text
//! station --Batch--> service --rows--> validate --valid rows--> persist (Parquet, fsync) --BatchAck--> station
//! ```

pub mod config;
pub mod error;
pub mod persist;
pub mod server;
pub mod service;
pub mod validate;
pub mod wal;

pub use config::CollectorConfig;
pub use error::{CollectorError, Result};
pub use server::{RunningCollector, start};
