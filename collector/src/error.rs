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
    /// The caller's certificate does not grant writing for this station.
    #[error("certificate identity {identity:?} may not write for station {station:?}")]
    NotPermitted {
        /// The certificate identity.
        identity: String,
        /// The station of the batch.
        station: String,
    },
    /// A TLS file or setting is not usable.
    #[error("TLS {path}: {reason}")]
    Tls {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
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
    /// Accepting the batch would exceed a budget (memory or disk); it was not stored.
    #[error("over the {budget} budget ({used} used, limit {limit}); retry in {retry_after_ms} ms")]
    Overloaded {
        /// Which budget: [`Budget`].
        budget: Budget,
        /// Amount in use now.
        used: u64,
        /// The budget.
        limit: u64,
        /// Suggested wait.
        retry_after_ms: u32,
    },
    /// The collector is shutting down and admits no more batches.
    #[error("collector is shutting down")]
    ShuttingDown,
    /// The batch has more valid rows than the buffered-rows budget holds at all: no wait lets it
    /// in, so the station is told to split it rather than to retry.
    #[error(
        "the batch has {rows} valid rows, more than the collector buffers at once ({limit}); split it into smaller batches"
    )]
    BatchTooLarge {
        /// Valid rows in the batch.
        rows: usize,
        /// The buffered-rows budget.
        limit: usize,
    },
    /// The topology file could not be loaded.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// The configured listen address is not allowed (plain text off loopback).
    #[error(
        "refusing to listen on {addr} in plain text: configure [tls], or allow it explicitly with plaintext_off_loopback"
    )]
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

/// The resource budgets that turn batches away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// Accepted rows waiting for a checkpoint.
    BufferedRows,
    /// Bytes of batches being validated and stored right now.
    InFlightBytes,
    /// Free space that must remain on the data directory's file system, bytes.
    FreeDisk,
    /// Bytes the data directory (tables and log) may hold.
    DataBytes,
}

impl Budget {
    /// Label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            Budget::BufferedRows => "over_buffered_rows",
            Budget::InFlightBytes => "over_in_flight_bytes",
            Budget::FreeDisk => "over_free_disk",
            Budget::DataBytes => "over_data_bytes",
        }
    }
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Budget::BufferedRows => "buffered-rows",
            Budget::InFlightBytes => "in-flight bytes",
            Budget::FreeDisk => "free-disk",
            Budget::DataBytes => "data-directory bytes",
        })
    }
}

/// Result alias for the collector.
pub type Result<T, E = CollectorError> = std::result::Result<T, E>;

/// The one mapping from collector errors to gRPC status codes. Exhaustive on purpose: a new error
/// variant does not compile until it is given a code here.
pub fn to_status(err: &CollectorError) -> tonic::Status {
    use tonic::Code;
    let code = match err {
        CollectorError::Shape(_) | CollectorError::BadStation { .. } => Code::InvalidArgument,
        CollectorError::BatchTooLarge { .. } => Code::OutOfRange,
        CollectorError::UnknownCable { .. } => Code::NotFound,
        CollectorError::StationNotOnCable { .. } | CollectorError::NotPermitted { .. } => {
            Code::PermissionDenied
        }
        CollectorError::ShuttingDown | CollectorError::Wal(_) => Code::Unavailable,
        CollectorError::Overloaded { .. } => Code::ResourceExhausted,
        CollectorError::Store(_) | CollectorError::Task(_) => Code::Internal,
        CollectorError::Topology(_)
        | CollectorError::Recovery { .. }
        | CollectorError::Startup { .. }
        | CollectorError::Config { .. }
        | CollectorError::Tls { .. }
        | CollectorError::PlaintextNotLoopback { .. }
        | CollectorError::Serve { .. } => Code::FailedPrecondition,
    };
    tonic::Status::new(code, err.to_string())
}

impl CollectorError {
    /// A short label for counting refusals by reason (the `reason` label of the metrics).
    pub fn reason(&self) -> &'static str {
        match self {
            CollectorError::Shape(_) | CollectorError::BadStation { .. } => "invalid_batch",
            CollectorError::BatchTooLarge { .. } => "batch_too_large",
            CollectorError::UnknownCable { .. } => "unknown_cable",
            CollectorError::StationNotOnCable { .. } | CollectorError::NotPermitted { .. } => {
                "permission_denied"
            }
            CollectorError::ShuttingDown => "shutting_down",
            CollectorError::Overloaded { budget, .. } => budget.label(),
            CollectorError::Wal(_)
            | CollectorError::Store(_)
            | CollectorError::Task(_)
            | CollectorError::Recovery { .. } => "storage_error",
            CollectorError::Topology(_)
            | CollectorError::Startup { .. }
            | CollectorError::Config { .. }
            | CollectorError::Tls { .. }
            | CollectorError::PlaintextNotLoopback { .. }
            | CollectorError::Serve { .. } => "setup",
        }
    }
}
