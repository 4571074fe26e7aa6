//! The contracts every cablewatch component shares.
//!
//! Data flows station -> [`wire`] (gRPC batches, columnar protobuf) -> collector -> [`store`]
//! (Arrow record batches written as Parquet files in the [`layout`] of the [`tables`]) -> analyzer.
//! The analyzer explains what it finds with the plant described by a [`topology`] file and the
//! operator's [`context`] records (maintenance, repairs, earthquakes, vessels).
//!
//! Nothing here knows about a particular reader: the stored tables are plain Parquet with Hive-style
//! partitions, readable by polars, pyarrow and DuckDB without this crate. The table definitions in
//! [`tables`] are the one place that names columns, types and units; the collector writes through
//! them and the analyzer checks what it reads against them.

pub mod codec;
pub mod context;
pub mod ids;
pub mod layout;
pub mod store;
pub mod tables;
pub mod time;
pub mod topology;
pub mod wire;

pub use ids::{CableId, IdError, StationId};
