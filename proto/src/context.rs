//! Context records: what the operator knows happened, used by the analyzer to explain findings.
//!
//! Records are JSON Lines files (`*.jsonl`) in one context directory, one object per line with a
//! `kind` of `maintenance`, `repair`, `seismic` or `vessel` (format in `docs/data-model.md`). They
//! come from change calendars, repair tickets, seismic catalogues and AIS vessel tracks. Times are
//! RFC 3339 strings. [`Context::load_dir`] reads them all and names the file and line of the first
//! bad record; [`Context::check_against`] checks cables and positions against a topology.

use std::{
    fs,
    io::{self, BufRead, Write},
    path::{Path, PathBuf},
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{CableId, StationId, topology::Topology};

/// Errors reading context records.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// A file or directory could not be read or written.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A line is not a valid record.
    #[error("{path}:{line}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What serde said, naming the field.
        source: serde_json::Error,
    },
    /// A record parsed but is inconsistent (end before start, unknown cable, position off the cable).
    #[error("{origin}: record {id:?}: {reason}")]
    Invalid {
        /// File and line, or another description of where the record came from.
        origin: String,
        /// The record's id.
        id: String,
        /// What is wrong.
        reason: String,
    },
}

/// Planned work from the operator's change calendar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Maintenance {
    /// Ticket id.
    pub id: String,
    /// Affected cable.
    pub cable: CableId,
    /// Start of the window.
    pub start: DateTime<Utc>,
    /// End of the window.
    pub end: DateTime<Utc>,
    /// Affected fiber pairs; empty means all.
    #[serde(default)]
    pub fiber_pairs: Vec<u32>,
    /// Landing station where the work happens, if at a station.
    #[serde(default)]
    pub station: Option<StationId>,
    /// Free text.
    #[serde(default)]
    pub description: String,
}

/// A cable repair: outage from the fault to restoration, new splices and added slack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repair {
    /// Ticket id.
    pub id: String,
    /// Repaired cable.
    pub cable: CableId,
    /// Fault position, km from the A end.
    pub fault_km: f64,
    /// When the fault occurred (start of the outage).
    pub start: DateTime<Utc>,
    /// When service was restored.
    pub end: DateTime<Utc>,
    /// Affected fiber pairs; empty means all.
    #[serde(default)]
    pub fiber_pairs: Vec<u32>,
    /// Cable length added by the repair (slack), km, if known.
    #[serde(default)]
    pub added_km: Option<f64>,
    /// Free text.
    #[serde(default)]
    pub description: String,
}

/// An earthquake from a seismic catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seismic {
    /// Catalogue event id.
    pub id: String,
    /// Origin time.
    pub time: DateTime<Utc>,
    /// Epicentre latitude, degrees north.
    pub latitude: f64,
    /// Epicentre longitude, degrees east.
    pub longitude: f64,
    /// Hypocentre depth, km.
    pub depth_km: f64,
    /// Magnitude.
    pub magnitude: f64,
    /// Cables the operator considers within reach; empty when not assessed.
    #[serde(default)]
    pub cables: Vec<CableId>,
}

/// A vessel over a cable section, from AIS tracks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VesselPass {
    /// Record id.
    pub id: String,
    /// Cable passed over.
    pub cable: CableId,
    /// First time the vessel was over the section.
    pub start: DateTime<Utc>,
    /// Last time the vessel was over the section.
    pub end: DateTime<Utc>,
    /// Section start, km from the A end.
    pub km_from: f64,
    /// Section end, km from the A end.
    pub km_to: f64,
    /// AIS MMSI, if known.
    #[serde(default)]
    pub mmsi: Option<u64>,
    /// Vessel type as reported (`fishing`, `cargo`, `cable_layer`, ...).
    #[serde(default)]
    pub vessel_type: String,
}

/// One context record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ContextRecord {
    /// Planned work.
    Maintenance(Maintenance),
    /// Cable repair.
    Repair(Repair),
    /// Earthquake.
    Seismic(Seismic),
    /// Vessel pass.
    Vessel(VesselPass),
}

impl ContextRecord {
    /// The record's id.
    pub fn id(&self) -> &str {
        match self {
            ContextRecord::Maintenance(r) => &r.id,
            ContextRecord::Repair(r) => &r.id,
            ContextRecord::Seismic(r) => &r.id,
            ContextRecord::Vessel(r) => &r.id,
        }
    }

    /// The record's kind, as in the `kind` field.
    pub fn kind(&self) -> &'static str {
        match self {
            ContextRecord::Maintenance(_) => "maintenance",
            ContextRecord::Repair(_) => "repair",
            ContextRecord::Seismic(_) => "seismic",
            ContextRecord::Vessel(_) => "vessel",
        }
    }

    /// Start and end of the record, UTC (equal for an earthquake).
    pub fn time_range(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        match self {
            ContextRecord::Maintenance(r) => (r.start, r.end),
            ContextRecord::Repair(r) => (r.start, r.end),
            ContextRecord::Seismic(r) => (r.time, r.time),
            ContextRecord::Vessel(r) => (r.start, r.end),
        }
    }

    /// Checks what can be checked without the topology: ordered times, finite positions, ranges.
    fn check(&self) -> Result<(), String> {
        let (start, end) = self.time_range();
        if end < start {
            return Err(format!("end {end} is before start {start}"));
        }
        match self {
            ContextRecord::Seismic(r) => {
                if !(-90.0..=90.0).contains(&r.latitude) || !(-180.0..=180.0).contains(&r.longitude) {
                    return Err(format!(
                        "epicentre {}, {} is not a position",
                        r.latitude, r.longitude
                    ));
                }
                if !(r.magnitude.is_finite() && (-2.0..=10.0).contains(&r.magnitude)) {
                    return Err(format!("magnitude {} is not in -2..=10", r.magnitude));
                }
            }
            ContextRecord::Vessel(r)
                if !(r.km_from.is_finite() && r.km_to.is_finite() && r.km_from <= r.km_to) =>
            {
                return Err(format!(
                    "km_from {} .. km_to {} is not a section",
                    r.km_from, r.km_to
                ));
            }
            ContextRecord::Repair(r) if r.added_km.is_some_and(|k| !(k.is_finite() && k >= 0.0)) => {
                return Err("added_km must be a non-negative number".into());
            }
            _ => {}
        }
        Ok(())
    }
}

/// All context records the analyzer knows, sorted by start time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    /// The records.
    pub records: Vec<ContextRecord>,
}

impl Context {
    /// Reads every `*.jsonl` file in `dir` (in name order); blank lines and lines starting with `#`
    /// are skipped.
    pub fn load_dir(dir: &Path) -> Result<Self, ContextError> {
        let io_err = |op, path: &Path| {
            let path = path.to_owned();
            move |source| ContextError::Io { op, path, source }
        };
        let mut files: Vec<PathBuf> = fs::read_dir(dir)
            .map_err(io_err("read directory", dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .collect();
        files.sort();
        let mut records = Vec::new();
        for path in files {
            let file = fs::File::open(&path).map_err(io_err("open", &path))?;
            for (n, line) in io::BufReader::new(file).lines().enumerate() {
                let line = line.map_err(io_err("read", &path))?;
                let trimmed = line.trim();
                if trimmed.is_empty() || trimmed.starts_with('#') {
                    continue;
                }
                let record: ContextRecord =
                    serde_json::from_str(trimmed).map_err(|source| ContextError::Parse {
                        path: path.clone(),
                        line: n + 1,
                        source,
                    })?;
                record.check().map_err(|reason| ContextError::Invalid {
                    origin: format!("{}:{}", path.display(), n + 1),
                    id: record.id().to_owned(),
                    reason,
                })?;
                records.push(record);
            }
        }
        records.sort_by_key(|r| r.time_range().0);
        Ok(Self { records })
    }

    /// Checks that every cable named exists and every position lies on its cable.
    pub fn check_against(&self, topology: &Topology) -> Result<(), ContextError> {
        for record in &self.records {
            let invalid = |reason: String| ContextError::Invalid {
                origin: format!("{} record", record.kind()),
                id: record.id().to_owned(),
                reason,
            };
            let (cables, positions): (Vec<&CableId>, Vec<f64>) = match record {
                ContextRecord::Maintenance(r) => (vec![&r.cable], vec![]),
                ContextRecord::Repair(r) => (vec![&r.cable], vec![r.fault_km]),
                ContextRecord::Seismic(r) => (r.cables.iter().collect(), vec![]),
                ContextRecord::Vessel(r) => (vec![&r.cable], vec![r.km_from, r.km_to]),
            };
            for cable in cables {
                let Some(c) = topology.cable(cable.as_str()) else {
                    return Err(invalid(format!("unknown cable {cable:?}")));
                };
                if let Some(km) = positions.iter().find(|&&km| !(0.0..=c.length_km).contains(&km)) {
                    return Err(invalid(format!(
                        "{km} km is not on {cable} (0..={} km)",
                        c.length_km
                    )));
                }
            }
        }
        Ok(())
    }

    /// Writes records as JSON Lines to `path`, one per line.
    pub fn write_jsonl(path: &Path, records: &[ContextRecord]) -> Result<(), ContextError> {
        let io_err = |source| ContextError::Io {
            op: "write",
            path: path.to_owned(),
            source,
        };
        let mut out = io::BufWriter::new(fs::File::create(path).map_err(io_err)?);
        for r in records {
            serde_json::to_writer(&mut out, r).map_err(|e| io_err(e.into()))?;
            out.write_all(b"\n").map_err(io_err)?;
        }
        out.flush().map_err(io_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Context, ContextError> {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("ops.jsonl"), text).unwrap();
        Context::load_dir(dir.path())
    }

    #[test]
    fn reads_every_kind_sorted_by_time() {
        let text = r#"
# change calendar export
{"kind":"vessel","id":"v1","cable":"c1","start":"2026-11-03T01:00:00Z","end":"2026-11-03T02:00:00Z","km_from":10,"km_to":12,"vessel_type":"fishing"}
{"kind":"maintenance","id":"m1","cable":"c1","start":"2026-11-01T01:00:00Z","end":"2026-11-01T03:00:00Z","station":"a"}
{"kind":"repair","id":"r1","cable":"c1","fault_km":55.5,"start":"2026-11-02T00:00:00Z","end":"2026-11-09T00:00:00Z","added_km":8.2}
{"kind":"seismic","id":"q1","time":"2026-11-04T05:06:07Z","latitude":10,"longitude":20,"depth_km":15,"magnitude":6.1}
"#;
        let ctx = load(text).unwrap();
        let kinds: Vec<_> = ctx.records.iter().map(ContextRecord::kind).collect();
        assert_eq!(kinds, ["maintenance", "repair", "vessel", "seismic"]);
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let err = load("{\"kind\":\"repair\",\"id\":\"r\",\"cable\":\"c1\",\"start\":\"2026-11-02T00:00:00Z\",\"end\":\"2026-11-09T00:00:00Z\"}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ops.jsonl:1") && err.contains("fault_km"), "{err}");
        let err = load("\n{\"kind\":\"maintenance\",\"id\":\"m\",\"cable\":\"c1\",\"start\":\"2026-11-02T00:00:00Z\",\"end\":\"2026-11-01T00:00:00Z\"}\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ops.jsonl:2") && err.contains("before start"),
            "{err}"
        );
    }
}
