//! The gRPC service: one batch in, one acknowledgement out, after the rows are durably stored.
//!
//! The unary `SendBatch` answers a batch-level problem with a gRPC status. The streaming
//! `StreamBatches` answers it with a `REJECTED` acknowledgement instead and keeps the stream open, so
//! one bad batch does not make a station reconnect and resend everything after it; only conditions of
//! the collector itself (shutting down, storage failing) end a stream with a status.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use cablewatch_proto::{
    CableId, StationId,
    topology::Topology,
    wire::{
        AckStatus, Batch, BatchAck,
        v1::telemetry_ingest_server::{TelemetryIngest, TelemetryIngestServer},
    },
};
use tokio::sync::{Notify, mpsc};
use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, info, warn};

use crate::{
    CollectorError, Result,
    durable::{Appended, DurableStore},
    error::to_status,
    metrics::{Gauges, Metrics},
    validate::{self, Rules},
};

/// Earliest time accepted: replay of history back to 2000-01-01 is allowed.
const MIN_TIME_NS: i64 = 946_684_800 * 1_000_000_000;
/// Largest clock skew into the future accepted.
const MAX_FUTURE_SKEW: Duration = Duration::from_secs(300);
/// Acknowledgements buffered per stream before the stream stops reading batches.
const ACK_BUFFER: usize = 64;
/// Wait asked of a station whose batch is being stored by another call right now.
const IN_FLIGHT_RETRY_MS: u32 = 200;
/// Wait asked of a station when the buffer budget is full: about one checkpoint.
const OVERLOAD_RETRY_MS: u32 = 500;

/// State shared by every call.
#[derive(Debug)]
pub struct Ingest {
    store: Arc<DurableStore>,
    topology: Option<Topology>,
    admitting: AtomicBool,
    flush_rows: usize,
    max_buffered_rows: usize,
    flush: Arc<Notify>,
    overloaded: AtomicU64,
    persist: bool,
    metrics: Metrics,
}

impl Ingest {
    /// A service storing into `store`, validating against `topology` when given, and notifying
    /// `flush` when `flush_rows` rows are buffered.
    pub fn new(
        store: Arc<DurableStore>,
        topology: Option<Topology>,
        flush_rows: usize,
        max_buffered_rows: usize,
        flush: Arc<Notify>,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            topology,
            admitting: AtomicBool::new(true),
            flush_rows,
            max_buffered_rows,
            flush,
            overloaded: AtomicU64::new(0),
            persist: true,
            metrics: Metrics::default(),
        })
    }

    /// Turns storing off (benchmarks of the transport ceiling only); see `CollectorConfig::persist`.
    pub fn without_persistence(self: Arc<Self>) -> Arc<Self> {
        Arc::new(Self {
            store: Arc::clone(&self.store),
            topology: self.topology.clone(),
            admitting: AtomicBool::new(true),
            flush_rows: self.flush_rows,
            max_buffered_rows: self.max_buffered_rows,
            flush: Arc::clone(&self.flush),
            overloaded: AtomicU64::new(0),
            persist: false,
            metrics: Metrics::default(),
        })
    }

    /// Per-station counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Whether batches are admitted (false once shutdown started).
    pub fn is_admitting(&self) -> bool {
        self.admitting.load(Ordering::SeqCst)
    }

    /// The collector-wide values of the metrics page.
    pub fn gauges(&self) -> Gauges {
        let wal = self.store.wal_stats();
        Gauges {
            admitting: self.is_admitting(),
            buffered_rows: self.store.buffered_rows().unwrap_or_default() as u64,
            backlog_bytes: self.store.backlog_bytes(),
            wal_syncs: wal.syncs.load(Ordering::Relaxed),
            wal_sync_seconds: wal.sync_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            wal_records: wal.records.load(Ordering::Relaxed),
            overload_rejections: self.overload_rejections(),
            checkpoints: self.store.checkpoints(),
        }
    }

    /// Batches turned away because the buffer budget was full.
    pub fn overload_rejections(&self) -> u64 {
        self.overloaded.load(Ordering::Relaxed)
    }

    /// Stops admitting batches: later calls get `UNAVAILABLE`.
    pub fn stop_admitting(&self) {
        self.admitting.store(false, Ordering::SeqCst);
    }

    /// The tonic service for this state.
    pub fn into_server(self: Arc<Self>) -> TelemetryIngestServer<IngestService> {
        TelemetryIngestServer::new(IngestService { inner: self })
    }

    /// Validates and durably stores one batch, says what happened, and counts it.
    pub async fn handle(self: &Arc<Self>, batch: Batch) -> Result<BatchAck> {
        let station = batch.station_id.clone();
        let result = self.handle_uncounted(batch).await;
        self.metrics.observe(&station, &result);
        result
    }

    async fn handle_uncounted(self: &Arc<Self>, batch: Batch) -> Result<BatchAck> {
        if !self.admitting.load(Ordering::SeqCst) {
            return Err(CollectorError::ShuttingDown);
        }
        let station =
            StationId::try_new(batch.station_id.as_str()).map_err(|e| CollectorError::BadStation {
                station: batch.station_id.clone(),
                reason: e.to_string(),
            })?;
        let payload = batch.payload()?;
        let rows = payload.row_count()?;
        let cable_id = payload.cable_id();
        let unknown = || CollectorError::UnknownCable {
            cable: cable_id.to_owned(),
        };
        let cable = CableId::try_new(cable_id).map_err(|_| unknown())?;
        if let Some(t) = &self.topology {
            let c = t.cable(cable_id).ok_or_else(unknown)?;
            if c.a_station != station && c.b_station != station {
                return Err(CollectorError::StationNotOnCable {
                    station: station.to_string(),
                    cable: cable_id.to_owned(),
                });
            }
        }
        let (epoch, sequence) = (batch.stream_epoch, batch.sequence);
        let station_id = station;
        let this = Arc::clone(self);
        let (verdict, batch) = tokio::task::spawn_blocking(move || {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + MAX_FUTURE_SKEW;
            let rules = Rules {
                topology: this.topology.as_ref(),
                min_time_ns: MIN_TIME_NS,
                max_time_ns: i64::try_from(now.as_nanos()).unwrap_or(i64::MAX),
            };
            let cable_def = this.topology.as_ref().and_then(|t| t.cable(cable.as_str()));
            let verdict = batch
                .payload()
                .map(|payload| validate::validate(payload, cable_def, &rules, rows))
                .unwrap_or_default();
            (verdict, batch)
        })
        .await
        .map_err(|e| CollectorError::Task(e.to_string()))?;
        let buffered = self.store.buffered_rows()?;
        if !verdict.accepted.is_empty()
            && buffered + verdict.accepted.len() > self.max_buffered_rows
            && !self.store.is_duplicate(station_id.as_str(), epoch, sequence)?
        {
            self.flush.notify_one();
            self.overloaded.fetch_add(1, Ordering::Relaxed);
            warn!(station = %station_id, sequence, buffered, "Buffer budget full: asked the station to retry.");
            return Err(CollectorError::Overloaded {
                buffered,
                limit: self.max_buffered_rows,
                retry_after_ms: OVERLOAD_RETRY_MS,
            });
        }
        let appended = if verdict.accepted.is_empty() || !self.persist {
            Appended::Stored
        } else {
            self.store.append(batch, &verdict.accepted).await?
        };
        if appended == Appended::InFlight {
            return Ok(BatchAck {
                stream_epoch: epoch,
                sequence,
                status: AckStatus::RetryLater.into(),
                message: "the same batch is being stored by another call; send it again".into(),
                retry_after_ms: IN_FLIGHT_RETRY_MS,
                ..BatchAck::default()
            });
        }
        if appended == Appended::Stored && self.store.buffered_rows()? >= self.flush_rows {
            self.flush.notify_one();
        }
        let duplicate = appended == Appended::Duplicate;

        let accepted = verdict.accepted.len();
        let status = match (accepted, verdict.rejected) {
            (_, 0) => AckStatus::Accepted,
            (0, _) => AckStatus::Rejected,
            _ => AckStatus::Partial,
        };
        if verdict.rejected > 0 {
            warn!(
                station = %station_id,
                sequence,
                accepted,
                rejected = verdict.rejected,
                "Rejected invalid rows. {}",
                verdict.message()
            );
        }
        debug!(station = %station_id, sequence, accepted, duplicate, "Stored batch.");
        Ok(BatchAck {
            stream_epoch: epoch,
            sequence,
            status: status.into(),
            accepted_rows: u32::try_from(accepted).unwrap_or(u32::MAX),
            rejected_rows: u32::try_from(verdict.rejected).unwrap_or(u32::MAX),
            message: verdict.message(),
            duplicate,
            retry_after_ms: 0,
            errors: verdict.errors,
        })
    }
}

/// The tonic-facing wrapper of [`Ingest`].
#[derive(Debug, Clone)]
pub struct IngestService {
    inner: Arc<Ingest>,
}

fn rejected_ack(epoch: u64, sequence: u64, err: &CollectorError) -> BatchAck {
    let status = to_status(err);
    BatchAck {
        stream_epoch: epoch,
        sequence,
        status: AckStatus::Rejected.into(),
        message: format!("{:?}: {}", status.code(), status.message()),
        ..BatchAck::default()
    }
}

/// Whether an error is about the batch (answered with a REJECTED ack on a stream) rather than about
/// the collector (which ends the stream).
fn is_batch_problem(err: &CollectorError) -> bool {
    matches!(
        err,
        CollectorError::Shape(_)
            | CollectorError::BadStation { .. }
            | CollectorError::UnknownCable { .. }
            | CollectorError::StationNotOnCable { .. }
    )
}

#[tonic::async_trait]
impl TelemetryIngest for IngestService {
    async fn send_batch(&self, request: Request<Batch>) -> std::result::Result<Response<BatchAck>, Status> {
        self.inner
            .handle(request.into_inner())
            .await
            .map(Response::new)
            .map_err(|e| to_status(&e))
    }

    type StreamBatchesStream =
        Pin<Box<dyn Stream<Item = std::result::Result<BatchAck, Status>> + Send + 'static>>;

    async fn stream_batches(
        &self,
        request: Request<Streaming<Batch>>,
    ) -> std::result::Result<Response<Self::StreamBatchesStream>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(ACK_BUFFER);
        let ingest = Arc::clone(&self.inner);
        tokio::spawn(async move {
            while let Some(next) = inbound.next().await {
                let batch = match next {
                    Ok(b) => b,
                    Err(status) => {
                        info!(code = ?status.code(), "Station stream ended with an error: {}", status.message());
                        break;
                    }
                };
                let (epoch, sequence) = (batch.stream_epoch, batch.sequence);
                let reply = match ingest.handle(batch).await {
                    Ok(ack) => Ok(ack),
                    Err(CollectorError::Overloaded { retry_after_ms, .. }) => Ok(BatchAck {
                        stream_epoch: epoch,
                        sequence,
                        status: AckStatus::RetryLater.into(),
                        message: "collector buffer full; send this batch again".into(),
                        retry_after_ms,
                        ..BatchAck::default()
                    }),
                    Err(e) if is_batch_problem(&e) => {
                        warn!(sequence, error = %e, "Rejected batch.");
                        Ok(rejected_ack(epoch, sequence, &e))
                    }
                    Err(e) => Err(to_status(&e)),
                };
                let end = reply.is_err();
                if tx.send(reply).await.is_err() || end {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
