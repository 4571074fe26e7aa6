//! The cablewatch collector: landing stations stream telemetry batches in over gRPC; each batch is
//! validated row by row ([`validate`]), its valid rows are written to the write-ahead log ([`wal`],
//! group commit) and buffered, and only then is it acknowledged ([`service`]). Checkpoints turn the
//! buffers into Parquet parts in the stored-table layout and trim the log ([`durable`]); retries are
//! recognised by ([`dedup`]). [`server`] wires the service to a listener (TLS with client
//! certificates bound to station ids: [`tls`]), runs checkpoints and shuts down gracefully.
//!
//! ```text
//! station --Batch--> service --> validate --valid rows--> WAL (fdatasync) --> buffer --BatchAck--> station
//!                                                      checkpoint: buffer --> Parquet parts --> trim WAL
//! ```

pub mod admin;
pub mod alloc;
pub mod config;
pub mod dedup;
pub mod durable;
pub mod error;
pub mod limits;
pub mod metrics;
pub mod server;
pub mod service;
pub mod tls;
pub mod validate;
pub mod wal;

pub use config::CollectorConfig;
pub use error::{CollectorError, Result};
pub use server::{RunningCollector, start};
