//! cablewatch-testdata: the landing-station simulator and the project's fixtures.
//!
//! A [`scenario::Scenario`] names a plant (topology file), a time range, cadences, the ranges its
//! physics and noise are drawn from per seed ([`physics`]) and the events to inject. [`events`] places the events (taps, insertions, reroutes, repairs, earthquakes, vessels,
//! maintenance, faults, ageing, data gaps) by seed and records the ground truth and the operator's
//! context records; [`effects`] turns them into what each fiber sees; [`generate`] produces telemetry
//! day by day with the physics of [`plant`] and [`optics`] (consistent Q, BER and OSNR, dispersion and
//! latency from length, span-loss steps through the accumulated-noise model), and either writes it in
//! the stored-table layout or cuts it into station batches that [`stream`] plays to a collector over
//! gRPC.

pub mod effects;
pub mod events;
pub mod generate;
pub mod optics;
pub mod physics;
pub mod plant;
pub mod scenario;
pub mod shapes;
pub mod stream;
pub mod suite;

/// Errors of the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The scenario file or name is not usable.
    #[error("scenario {origin}: {reason}")]
    Scenario {
        /// File or name.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// The scenario's topology is not valid.
    #[error(transparent)]
    Topology(#[from] cablewatch_proto::topology::TopologyError),
    /// Writing the stored tables failed.
    #[error(transparent)]
    Store(#[from] cablewatch_proto::store::StoreError),
    /// Streaming to the collector failed.
    #[error("station {station}: {reason}")]
    Stream {
        /// Station whose stream failed.
        station: String,
        /// What happened.
        reason: String,
    },
    /// Writing an output file failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}
