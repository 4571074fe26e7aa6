//! Contract 1, the wire: the generated `cablewatch.telemetry.v1` messages, client and server, plus
//! shape checks shared by everyone who builds or reads a batch.
//!
//! A batch is columnar: every per-row field is a packed repeated field. [`Payload::row_count`] checks
//! that all columns agree on the number of rows before anyone indexes into them.

use std::ops::Range;

/// Generated code for `cablewatch.telemetry.v1` (see `proto/cablewatch/telemetry/v1/telemetry.proto`).
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/cablewatch.telemetry.v1.rs"));
}

pub use v1::{
    AckStatus, Batch, BatchAck, Direction, IntervalStats, LatencyKind, LatencySamples, LineMonitoringSamples,
    OpticalChannelSamples, RowError, batch::Payload,
};

/// Encoded `FileDescriptorSet` of the wire contract, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/cablewatch_descriptor.bin"));

/// The wire contract's protobuf package.
pub const PACKAGE: &str = "cablewatch.telemetry.v1";

/// A batch whose columns disagree on the number of rows, or that carries no payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// The batch has no payload.
    #[error("batch has no payload (set one of optical, line_monitoring, latency)")]
    NoPayload,
    /// A column's length differs from the row count set by `time_unix_ns`.
    #[error("column {column} has {len} values but time_unix_ns has {rows}")]
    ColumnLength {
        /// Field name, as in the .proto file (`osnr_db.min`).
        column: String,
        /// Its length.
        len: usize,
        /// The batch's row count.
        rows: usize,
    },
    /// An `IntervalStats` has only one of `min` and `max`.
    #[error("{column}: min and max must both be present or both be empty (min {min}, max {max})")]
    UnpairedMinMax {
        /// Field name, as in the .proto file.
        column: &'static str,
        /// Length of `min`.
        min: usize,
        /// Length of `max`.
        max: usize,
    },
}

fn same_len(column: &str, len: usize, rows: usize) -> Result<(), ShapeError> {
    if len == rows {
        Ok(())
    } else {
        Err(ShapeError::ColumnLength {
            column: column.to_owned(),
            len,
            rows,
        })
    }
}

impl IntervalStats {
    /// True when `min` and `max` are reported.
    pub fn has_min_max(&self) -> bool {
        !self.min.is_empty()
    }

    fn check(stats: Option<&Self>, column: &'static str, rows: usize) -> Result<(), ShapeError> {
        let Some(s) = stats else {
            return same_len(&format!("{column}.avg"), 0, rows);
        };
        same_len(&format!("{column}.avg"), s.avg.len(), rows)?;
        match (s.min.len(), s.max.len()) {
            (0, 0) => Ok(()),
            (min, max) if min == rows && max == rows => Ok(()),
            (min, max) if min == max => same_len(&format!("{column}.min"), min, rows),
            (min, max) => Err(ShapeError::UnpairedMinMax { column, min, max }),
        }
    }
}

impl OpticalChannelSamples {
    /// The statistics columns with their field names, in .proto order.
    pub fn stats(&self) -> [(&'static str, Option<&IntervalStats>); 9] {
        [
            ("rx_power_dbm", self.rx_power_dbm.as_ref()),
            ("tx_power_dbm", self.tx_power_dbm.as_ref()),
            ("osnr_db", self.osnr_db.as_ref()),
            ("pre_fec_ber", self.pre_fec_ber.as_ref()),
            ("q_db", self.q_db.as_ref()),
            ("cd_ps_nm", self.cd_ps_nm.as_ref()),
            ("dgd_ps", self.dgd_ps.as_ref()),
            ("pdl_db", self.pdl_db.as_ref()),
            ("sop_roc_krad_s", self.sop_roc_krad_s.as_ref()),
        ]
    }

    /// Number of rows, after checking every column has it.
    pub fn row_count(&self) -> Result<usize, ShapeError> {
        let rows = self.time_unix_ns.len();
        same_len("fiber_pair", self.fiber_pair.len(), rows)?;
        same_len("direction", self.direction.len(), rows)?;
        same_len("channel", self.channel.len(), rows)?;
        for (name, stats) in self.stats() {
            IntervalStats::check(stats, name, rows)?;
        }
        Ok(rows)
    }
}

impl LineMonitoringSamples {
    /// Number of rows, after checking every column has it.
    pub fn row_count(&self) -> Result<usize, ShapeError> {
        let rows = self.time_unix_ns.len();
        same_len("sweep_id", self.sweep_id.len(), rows)?;
        same_len("fiber_pair", self.fiber_pair.len(), rows)?;
        same_len("direction", self.direction.len(), rows)?;
        same_len("repeater", self.repeater.len(), rows)?;
        same_len("loopback_gain_db", self.loopback_gain_db.len(), rows)?;
        Ok(rows)
    }
}

impl LatencySamples {
    /// Number of rows, after checking every column has it.
    pub fn row_count(&self) -> Result<usize, ShapeError> {
        let rows = self.time_unix_ns.len();
        same_len("fiber_pair", self.fiber_pair.len(), rows)?;
        same_len("direction", self.direction.len(), rows)?;
        same_len("src_station", self.src_station.len(), rows)?;
        same_len("dst_station", self.dst_station.len(), rows)?;
        same_len("kind", self.kind.len(), rows)?;
        same_len("delay_us", self.delay_us.len(), rows)?;
        same_len("path_id", self.path_id.len(), rows)?;
        Ok(rows)
    }
}

impl Payload {
    /// Number of rows, after checking every column has it.
    pub fn row_count(&self) -> Result<usize, ShapeError> {
        match self {
            Payload::Optical(p) => p.row_count(),
            Payload::LineMonitoring(p) => p.row_count(),
            Payload::Latency(p) => p.row_count(),
        }
    }

    /// The cable the payload is about.
    pub fn cable_id(&self) -> &str {
        match self {
            Payload::Optical(p) => &p.cable_id,
            Payload::LineMonitoring(p) => &p.cable_id,
            Payload::Latency(p) => &p.cable_id,
        }
    }

    /// Name of the stored table the payload's rows go to.
    pub fn table(&self) -> &'static crate::tables::Table {
        match self {
            Payload::Optical(_) => &crate::tables::OPTICAL_CHANNEL,
            Payload::LineMonitoring(_) => &crate::tables::LINE_MONITORING,
            Payload::Latency(_) => &crate::tables::LATENCY,
        }
    }
}

fn pick<T: Clone>(v: &[T], rows: &[usize]) -> Vec<T> {
    if v.is_empty() {
        return Vec::new();
    }
    rows.iter().filter_map(|&i| v.get(i).cloned()).collect()
}

impl IntervalStats {
    fn select(&self, rows: &[usize]) -> Self {
        Self {
            avg: pick(&self.avg, rows),
            min: pick(&self.min, rows),
            max: pick(&self.max, rows),
        }
    }
}

impl Payload {
    /// Rows `range` of the payload as a new payload of the same kind and cable.
    pub fn slice(&self, range: Range<usize>) -> Payload {
        self.select(&range.collect::<Vec<_>>())
    }

    /// The rows at `rows` (in that order) as a new payload of the same kind and cable. Unreported
    /// statistics stay empty; indices past the end are skipped.
    pub fn select(&self, rows: &[usize]) -> Payload {
        let r = rows;
        match self {
            Payload::Optical(p) => {
                let st = |s: &Option<IntervalStats>| s.as_ref().map(|s| s.select(r));
                Payload::Optical(OpticalChannelSamples {
                    cable_id: p.cable_id.clone(),
                    interval_ns: p.interval_ns,
                    time_unix_ns: pick(&p.time_unix_ns, r),
                    fiber_pair: pick(&p.fiber_pair, r),
                    direction: pick(&p.direction, r),
                    channel: pick(&p.channel, r),
                    rx_power_dbm: st(&p.rx_power_dbm),
                    tx_power_dbm: st(&p.tx_power_dbm),
                    osnr_db: st(&p.osnr_db),
                    pre_fec_ber: st(&p.pre_fec_ber),
                    q_db: st(&p.q_db),
                    cd_ps_nm: st(&p.cd_ps_nm),
                    dgd_ps: st(&p.dgd_ps),
                    pdl_db: st(&p.pdl_db),
                    sop_roc_krad_s: st(&p.sop_roc_krad_s),
                })
            }
            Payload::LineMonitoring(p) => Payload::LineMonitoring(LineMonitoringSamples {
                cable_id: p.cable_id.clone(),
                time_unix_ns: pick(&p.time_unix_ns, r),
                sweep_id: pick(&p.sweep_id, r),
                fiber_pair: pick(&p.fiber_pair, r),
                direction: pick(&p.direction, r),
                repeater: pick(&p.repeater, r),
                loopback_gain_db: pick(&p.loopback_gain_db, r),
            }),
            Payload::Latency(p) => Payload::Latency(LatencySamples {
                cable_id: p.cable_id.clone(),
                time_unix_ns: pick(&p.time_unix_ns, r),
                fiber_pair: pick(&p.fiber_pair, r),
                direction: pick(&p.direction, r),
                src_station: pick(&p.src_station, r),
                dst_station: pick(&p.dst_station, r),
                kind: pick(&p.kind, r),
                delay_us: pick(&p.delay_us, r),
                path_id: pick(&p.path_id, r),
            }),
        }
    }

    /// Appends the rows of `other` (same kind and cable) after this payload's rows. A payload of
    /// another kind is ignored.
    pub fn append(&mut self, other: &Payload) {
        fn stats(a: &mut Option<IntervalStats>, b: &Option<IntervalStats>) {
            if let (Some(a), Some(b)) = (a.as_mut(), b.as_ref()) {
                a.avg.extend_from_slice(&b.avg);
                a.min.extend_from_slice(&b.min);
                a.max.extend_from_slice(&b.max);
            } else if a.is_none() {
                a.clone_from(b);
            }
        }
        match (self, other) {
            (Payload::Optical(a), Payload::Optical(b)) => {
                a.time_unix_ns.extend_from_slice(&b.time_unix_ns);
                a.fiber_pair.extend_from_slice(&b.fiber_pair);
                a.direction.extend_from_slice(&b.direction);
                a.channel.extend_from_slice(&b.channel);
                stats(&mut a.rx_power_dbm, &b.rx_power_dbm);
                stats(&mut a.tx_power_dbm, &b.tx_power_dbm);
                stats(&mut a.osnr_db, &b.osnr_db);
                stats(&mut a.pre_fec_ber, &b.pre_fec_ber);
                stats(&mut a.q_db, &b.q_db);
                stats(&mut a.cd_ps_nm, &b.cd_ps_nm);
                stats(&mut a.dgd_ps, &b.dgd_ps);
                stats(&mut a.pdl_db, &b.pdl_db);
                stats(&mut a.sop_roc_krad_s, &b.sop_roc_krad_s);
            }
            (Payload::LineMonitoring(a), Payload::LineMonitoring(b)) => {
                a.time_unix_ns.extend_from_slice(&b.time_unix_ns);
                a.sweep_id.extend_from_slice(&b.sweep_id);
                a.fiber_pair.extend_from_slice(&b.fiber_pair);
                a.direction.extend_from_slice(&b.direction);
                a.repeater.extend_from_slice(&b.repeater);
                a.loopback_gain_db.extend_from_slice(&b.loopback_gain_db);
            }
            (Payload::Latency(a), Payload::Latency(b)) => {
                a.time_unix_ns.extend_from_slice(&b.time_unix_ns);
                a.fiber_pair.extend_from_slice(&b.fiber_pair);
                a.direction.extend_from_slice(&b.direction);
                a.src_station.extend_from_slice(&b.src_station);
                a.dst_station.extend_from_slice(&b.dst_station);
                a.kind.extend_from_slice(&b.kind);
                a.delay_us.extend_from_slice(&b.delay_us);
                a.path_id.extend_from_slice(&b.path_id);
            }
            _ => {}
        }
    }

    /// Measurement times of the rows.
    pub fn times_ns(&self) -> &[i64] {
        match self {
            Payload::Optical(p) => &p.time_unix_ns,
            Payload::LineMonitoring(p) => &p.time_unix_ns,
            Payload::Latency(p) => &p.time_unix_ns,
        }
    }

    /// Time of the first row, if any.
    pub fn first_time_ns(&self) -> Option<i64> {
        self.times_ns().first().copied()
    }
}

impl Batch {
    /// The payload, or [`ShapeError::NoPayload`].
    pub fn payload(&self) -> Result<&Payload, ShapeError> {
        self.payload.as_ref().ok_or(ShapeError::NoPayload)
    }
}

impl Direction {
    /// The value stored in the `direction` column: `a_to_b` or `b_to_a`; `None` when unspecified.
    pub fn storage_label(self) -> Option<&'static str> {
        match self {
            Direction::AToB => Some(crate::tables::DIRECTION_A_TO_B),
            Direction::BToA => Some(crate::tables::DIRECTION_B_TO_A),
            Direction::Unspecified => None,
        }
    }
}

impl LatencyKind {
    /// The value stored in the `kind` column: `one_way` or `round_trip`; `None` when unspecified.
    pub fn storage_label(self) -> Option<&'static str> {
        match self {
            LatencyKind::OneWay => Some(crate::tables::LATENCY_ONE_WAY),
            LatencyKind::RoundTrip => Some(crate::tables::LATENCY_ROUND_TRIP),
            LatencyKind::Unspecified => None,
        }
    }
}
