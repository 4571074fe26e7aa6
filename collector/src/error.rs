//! The collector's errors and their one mapping to gRPC status codes.

use cablewatch_proto::{store::StoreError, topology::TopologyError, wire::ShapeError};

/// Everything that can go wrong in the collector.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    /// The batch is malformed as a whole (columns of different lengths, no payload).
    #[error("malformed batch: {0}")]
    Shape(#[from] ShapeError),
    /// The batch names a station id that is not a valid id.
    #[error("station_id {station:?} is not a valid id: {reason}")]
    BadStation {
        /// The id sent.
        station: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The batch is for a cable the topology does not know.
    #[error("unknown cable {cable:?}")]
    UnknownCable {
        /// The cable id sent.
        cable: String,
    },
    /// The station is not at either end of the cable it reports on.
    #[error("station {station} does not land cable {cable}")]
    StationNotOnCable {
        /// The station.
        station: String,
        /// The cable.
        cable: String,
    },
    /// The write-ahead log failed; the batch was not acknowledged.
    #[error(transparent)]
    Wal(#[from] crate::wal::WalError),
    /// Recovery state could not be read or written.
    #[error("recovery state {path}: {reason}")]
    Recovery {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Writing the rows failed; nothing of the batch was acknowledged.
    #[error("storing batch: {0}")]
    Store(#[from] StoreError),
    /// The storage task panicked or was cancelled.
    #[error("storage task failed: {0}")]
    Task(String),
    /// Accepting the batch would exceed the memory budget; it was not stored.
    #[error(
        "over the buffer budget ({buffered} rows waiting for a checkpoint, limit {limit}); retry in {retry_after_ms} ms"
    )]
    Overloaded {
        /// Rows buffered now.
        buffered: usize,
        /// The budget.
        limit: usize,
        /// Suggested wait.
        retry_after_ms: u32,
    },
    /// The collector is shutting down and admits no more batches.
    #[error("collector is shutting down")]
    ShuttingDown,
    /// The topology file could not be loaded.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// The configured listen address is not allowed (plain text off loopback).
    #[error("refusing to listen on {addr} without TLS: plain text is served on loopback only")]
    PlaintextNotLoopback {
        /// The address.
        addr: std::net::SocketAddr,
    },
    /// The configuration file is not usable.
    #[error("configuration {path}: {reason}")]
    Config {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong, naming the key.
        reason: String,
    },
    /// A part of the server could not be set up.
    #[error("setting up {what}: {reason}")]
    Startup {
        /// Which part.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// Binding or serving failed.
    #[error("serving on {addr}: {source}")]
    Serve {
        /// The address.
        addr: std::net::SocketAddr,
        /// What failed.
        source: std::io::Error,
    },
}

/// Result alias for the collector.
pub type Result<T, E = CollectorError> = std::result::Result<T, E>;

/// The one mapping from collector errors to gRPC status codes. Exhaustive on purpose: a new error
/// variant does not compile until it is given a code here.
pub fn to_status(err: &CollectorError) -> tonic::Status {
    use tonic::Code;
    let code = match err {
        CollectorError::Shape(_) | CollectorError::BadStation { .. } => Code::InvalidArgument,
        CollectorError::UnknownCable { .. } => Code::NotFound,
        CollectorError::StationNotOnCable { .. } => Code::PermissionDenied,
        CollectorError::ShuttingDown | CollectorError::Wal(_) => Code::Unavailable,
        CollectorError::Overloaded { .. } => Code::ResourceExhausted,
        CollectorError::Store(_) | CollectorError::Task(_) => Code::Internal,
        CollectorError::Topology(_)
        | CollectorError::Recovery { .. }
        | CollectorError::Startup { .. }
        | CollectorError::Config { .. }
        | CollectorError::PlaintextNotLoopback { .. }
        | CollectorError::Serve { .. } => Code::FailedPrecondition,
    };
    tonic::Status::new(code, err.to_string())
}
