//! Contract 2, the stored tables: names, columns, types and units, in one place.
//!
//! The collector builds Arrow record batches from these definitions ([`crate::store`]) and the
//! analyzer checks the schema it reads against them. Partition columns ([`PARTITION_COLUMNS`]) are
//! not stored inside the files: they come from the Hive-style directory names of [`crate::layout`],
//! as polars, pyarrow and DuckDB expect.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Logical type of a column, independent of the Arrow implementation reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// Nanoseconds since the Unix epoch, time zone UTC (Arrow `Timestamp(ns, "UTC")`).
    TimestampNsUtc,
    /// Calendar date (Arrow `Date32`); only the `date` partition column.
    Date,
    /// Unsigned 32-bit integer.
    UInt32,
    /// Unsigned 64-bit integer.
    UInt64,
    /// Signed 64-bit integer.
    Int64,
    /// 32-bit float: optical quantities, whose instruments resolve far less than f32 does.
    Float32,
    /// 64-bit float: delays, which need sub-microsecond resolution on 100 ms values.
    Float64,
    /// UTF-8 string (dictionary-encoded in Parquet when repetitive).
    Utf8,
}

impl ColumnType {
    /// The Arrow data type this column is written with.
    pub fn arrow_type(self) -> DataType {
        match self {
            ColumnType::TimestampNsUtc => DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            ColumnType::Date => DataType::Date32,
            ColumnType::UInt32 => DataType::UInt32,
            ColumnType::UInt64 => DataType::UInt64,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float32 => DataType::Float32,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Utf8 => DataType::Utf8,
        }
    }
}

/// One column of a stored table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Column name; a unit suffix (`_dbm`, `_db`, `_us`, ...) where the value has a unit.
    pub name: &'static str,
    /// Logical type.
    pub ty: ColumnType,
    /// Whether nulls may occur.
    pub nullable: bool,
    /// Unit, spelled out (`dBm`, `krad/s`), or `""` when dimensionless or categorical.
    pub unit: &'static str,
    /// What the column holds.
    pub doc: &'static str,
}

const fn col(name: &'static str, ty: ColumnType, unit: &'static str, doc: &'static str) -> Column {
    Column {
        name,
        ty,
        nullable: false,
        unit,
        doc,
    }
}

const fn opt(name: &'static str, ty: ColumnType, unit: &'static str, doc: &'static str) -> Column {
    Column {
        name,
        ty,
        nullable: true,
        unit,
        doc,
    }
}

/// A stored table: its directory name under the data root, columns and sort order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    /// Directory name under the data root, and the table's name everywhere.
    pub name: &'static str,
    /// Columns stored in each file, in order.
    pub columns: &'static [Column],
    /// Rows in every file are sorted by these columns, so one series is one contiguous run.
    pub sort_key: &'static [&'static str],
    /// What a row is.
    pub doc: &'static str,
}

impl Table {
    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&'static Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The Arrow schema files of this table are written with.
    pub fn arrow_schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .columns
            .iter()
            .map(|c| Field::new(c.name, c.ty.arrow_type(), c.nullable))
            .collect();
        Arc::new(Schema::new(fields))
    }
}

/// Column names, for code that refers to a column by name.
pub mod col {
    /// Measurement time (end of the reporting interval for optical samples).
    pub const TIME: &str = "time";
    /// Fiber pair, 1-based.
    pub const FIBER_PAIR: &str = "fiber_pair";
    /// Direction label, [`super::DIRECTION_A_TO_B`] or [`super::DIRECTION_B_TO_A`].
    pub const DIRECTION: &str = "direction";
    /// Channel number, 1-based.
    pub const CHANNEL: &str = "channel";
    /// Reporting interval length.
    pub const INTERVAL_NS: &str = "interval_ns";
    /// Received power, interval mean.
    pub const RX_POWER_DBM_AVG: &str = "rx_power_dbm_avg";
    /// OSNR, interval mean.
    pub const OSNR_DB_AVG: &str = "osnr_db_avg";
    /// Pre-FEC BER, interval mean.
    pub const PRE_FEC_BER_AVG: &str = "pre_fec_ber_avg";
    /// Q, interval mean.
    pub const Q_DB_AVG: &str = "q_db_avg";
    /// SOP rate of change, interval maximum.
    pub const SOP_ROC_KRAD_S_MAX: &str = "sop_roc_krad_s_max";
    /// Line-monitoring sweep id.
    pub const SWEEP_ID: &str = "sweep_id";
    /// Repeater number from the A end, 1-based.
    pub const REPEATER: &str = "repeater";
    /// Loop-back gain.
    pub const LOOPBACK_GAIN_DB: &str = "loopback_gain_db";
    /// Sending station.
    pub const SRC_STATION: &str = "src_station";
    /// Receiving station.
    pub const DST_STATION: &str = "dst_station";
    /// Latency kind label, [`super::LATENCY_ONE_WAY`] or [`super::LATENCY_ROUND_TRIP`].
    pub const KIND: &str = "kind";
    /// Measured delay.
    pub const DELAY_US: &str = "delay_us";
    /// Path identifier.
    pub const PATH_ID: &str = "path_id";
    /// Partition column: cable id.
    pub const CABLE: &str = "cable";
    /// Partition column: UTC date of the measurement.
    pub const DATE: &str = "date";
}

/// Stored value of `direction` for A-end to B-end.
pub const DIRECTION_A_TO_B: &str = "a_to_b";
/// Stored value of `direction` for B-end to A-end.
pub const DIRECTION_B_TO_A: &str = "b_to_a";
/// Stored value of latency `kind` for a one-way delay.
pub const LATENCY_ONE_WAY: &str = "one_way";
/// Stored value of latency `kind` for a round-trip time.
pub const LATENCY_ROUND_TRIP: &str = "round_trip";

use ColumnType::{Float32, Float64, Int64, TimestampNsUtc, UInt32, UInt64, Utf8};

/// Partition columns, encoded in directory names (`cable=<id>/date=<YYYY-MM-DD>`), not in files.
pub const PARTITION_COLUMNS: &[Column] = &[
    col(col::CABLE, Utf8, "", "Cable id, as in the topology file."),
    col(
        col::DATE,
        ColumnType::Date,
        "",
        "UTC date of the measurement time.",
    ),
];

macro_rules! stats {
    ($q:literal, $unit:literal, $what:literal) => {
        [
            col(
                concat!($q, "_avg"),
                Float32,
                $unit,
                concat!($what, ", mean over the interval."),
            ),
            opt(
                concat!($q, "_min"),
                Float32,
                $unit,
                concat!($what, ", minimum over the interval; null if not reported."),
            ),
            opt(
                concat!($q, "_max"),
                Float32,
                $unit,
                concat!($what, ", maximum over the interval; null if not reported."),
            ),
        ]
    };
}

const OPTICAL_COLUMNS: [Column; 32] = {
    let keys = [
        col(
            col::TIME,
            TimestampNsUtc,
            "ns",
            "End of the reporting interval, UTC.",
        ),
        col(col::FIBER_PAIR, UInt32, "", "Fiber pair, 1-based."),
        col(
            col::DIRECTION,
            Utf8,
            "",
            "a_to_b or b_to_a, relative to the cable's ends in the topology.",
        ),
        col(
            col::CHANNEL,
            UInt32,
            "",
            "Channel number in the cable's channel plan, 1-based.",
        ),
        col(
            col::INTERVAL_NS,
            Int64,
            "ns",
            "Length of the reporting interval; 0 for instantaneous samples.",
        ),
    ];
    let s = [
        stats!("rx_power_dbm", "dBm", "Received power at the far-end transponder"),
        stats!("tx_power_dbm", "dBm", "Launch power at the near-end transponder"),
        stats!("osnr_db", "dB", "Optical signal-to-noise ratio (0.1 nm)"),
        stats!("pre_fec_ber", "", "Pre-FEC bit error ratio"),
        stats!("q_db", "dB", "Q factor, 20 log10 Q"),
        stats!("cd_ps_nm", "ps/nm", "Residual chromatic dispersion"),
        stats!("dgd_ps", "ps", "Differential group delay"),
        stats!("pdl_db", "dB", "Polarization-dependent loss"),
        stats!(
            "sop_roc_krad_s",
            "krad/s",
            "Rate of change of the state of polarization"
        ),
    ];
    let mut out = [keys[0]; 32];
    let mut i = 0;
    while i < 5 {
        out[i] = keys[i];
        i += 1;
    }
    let mut q = 0;
    while q < 9 {
        let mut k = 0;
        while k < 3 {
            out[5 + q * 3 + k] = s[q][k];
            k += 1;
        }
        q += 1;
    }
    out
};

/// Per-channel optical performance samples: one row per (time, fiber pair, direction, channel).
pub const OPTICAL_CHANNEL: Table = Table {
    name: "optical_channel",
    columns: &OPTICAL_COLUMNS,
    sort_key: &[col::DIRECTION, col::FIBER_PAIR, col::CHANNEL, col::TIME],
    doc: "Per-channel optical performance monitoring from the terminal equipment.",
};

/// Line-monitoring loop-back gain: one row per (time, fiber pair, direction, repeater).
pub const LINE_MONITORING: Table = Table {
    name: "line_monitoring",
    columns: &[
        col(col::TIME, TimestampNsUtc, "ns", "Measurement time, UTC."),
        col(col::SWEEP_ID, UInt64, "", "Sweep that produced the measurement."),
        col(col::FIBER_PAIR, UInt32, "", "Fiber pair, 1-based."),
        col(col::DIRECTION, Utf8, "", "a_to_b or b_to_a."),
        col(
            col::REPEATER,
            UInt32,
            "",
            "Physical repeater from the A end, 1-based; it measures span k in a_to_b and span k+1 in b_to_a (topology::Cable::span_covered_by).",
        ),
        col(col::LOOPBACK_GAIN_DB, Float32, "dB", "High-loss loop-back gain."),
    ],
    sort_key: &[col::DIRECTION, col::FIBER_PAIR, col::REPEATER, col::TIME],
    doc: "Per-repeater loop-back gain from line monitoring equipment.",
};

/// Station-to-station delay probes: one row per probe.
pub const LATENCY: Table = Table {
    name: "latency",
    columns: &[
        col(col::TIME, TimestampNsUtc, "ns", "Time the probe was sent, UTC."),
        col(
            col::FIBER_PAIR,
            UInt32,
            "",
            "Fiber pair the probe travelled on, 1-based.",
        ),
        col(col::DIRECTION, Utf8, "", "a_to_b or b_to_a (outbound direction)."),
        col(col::SRC_STATION, Utf8, "", "Sending station id."),
        col(col::DST_STATION, Utf8, "", "Receiving (reflecting) station id."),
        col(col::KIND, Utf8, "", "one_way or round_trip."),
        col(col::DELAY_US, Float64, "us", "Measured delay."),
        col(
            col::PATH_ID,
            Utf8,
            "",
            "Identifier of the IP or optical path taken.",
        ),
    ],
    sort_key: &[
        col::DIRECTION,
        col::FIBER_PAIR,
        col::SRC_STATION,
        col::DST_STATION,
        col::TIME,
    ],
    doc: "Station-to-station one-way delay or round-trip time probes.",
};

/// Every stored table.
pub const ALL: [&Table; 3] = [&OPTICAL_CHANNEL, &LINE_MONITORING, &LATENCY];

/// The table named `name`.
pub fn by_name(name: &str) -> Option<&'static Table> {
    ALL.into_iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names_are_unique_and_sort_keys_exist() {
        for table in ALL {
            let mut names: Vec<_> = table.columns.iter().map(|c| c.name).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(
                names.len(),
                table.columns.len(),
                "duplicate column in {}",
                table.name
            );
            for key in table.sort_key {
                assert!(
                    table.column(key).is_some(),
                    "{}: sort key {key} missing",
                    table.name
                );
            }
            for p in PARTITION_COLUMNS {
                assert!(
                    table.column(p.name).is_none(),
                    "{}: partition column {} stored in file",
                    table.name,
                    p.name
                );
            }
        }
    }

    #[test]
    fn optical_table_has_every_wire_statistic_with_avg_min_max() {
        let wire = crate::wire::OpticalChannelSamples::default();
        for (name, _) in wire.stats() {
            for (suffix, nullable) in [("avg", false), ("min", true), ("max", true)] {
                let c = OPTICAL_CHANNEL
                    .column(&format!("{name}_{suffix}"))
                    .unwrap_or_else(|| panic!("missing {name}_{suffix}"));
                assert_eq!(c.ty, Float32);
                assert_eq!(c.nullable, nullable);
            }
        }
        assert_eq!(OPTICAL_CHANNEL.columns.len(), 5 + 9 * 3);
    }
}
