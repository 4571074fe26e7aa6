//! The gRPC service: one batch in, one acknowledgement out, after the rows are durably stored.
//!
//! The unary `SendBatch` answers a batch-level problem with a gRPC status. The streaming
//! `StreamBatches` answers it with a `REJECTED` acknowledgement instead and keeps the stream open, so
//! one bad batch does not make a station reconnect and resend everything after it; only conditions of
//! the collector itself (shutting down, storage failing) end a stream with a status.
//!
//! A stream's batches are stored concurrently, up to `PIPELINE_DEPTH` at once, so that they share
//! write-ahead log syncs; a second task sends their acknowledgements in the order the batches came.
//! A batch for a station the caller may not write is the last one read from that stream.
//!
//! A message that cannot be read at all (not a `Batch`, or over the size limit) leaves nothing to
//! acknowledge, and the messages after it cannot be told apart from it, so it ends the stream: after
//! the acknowledgements of the batches before it, with `INVALID_ARGUMENT` (not a batch) or
//! `OUT_OF_RANGE` (too large), naming the last batch read, so that the station knows to fix or split
//! that one and resend the rest. Each is logged and counted (`cablewatch_stream_errors_total`).
//!
//! A station that goes away with acknowledgements still owed stops the reading of its stream; the
//! stored batches whose acknowledgements the collector still held are counted
//! (`cablewatch_acks_undelivered_total`), as the station will resend them as duplicates.

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
use prost::Message as _;
use tokio::{
    sync::{Notify, mpsc},
    task::JoinHandle,
};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, info, warn};

use crate::{
    CollectorError, Result,
    durable::{Appended, DurableStore},
    error::to_status,
    limits::{Admission, Limits},
    metrics::{Gauges, Metrics},
    tls::{Authorizer, Caller},
    validate::{self, Rules},
};

/// Earliest time accepted: replay of history back to 2000-01-01 is allowed.
const MIN_TIME_NS: i64 = 946_684_800 * 1_000_000_000;
/// Largest clock skew into the future accepted.
const MAX_FUTURE_SKEW: Duration = Duration::from_secs(300);
/// Acknowledgements buffered per stream before the stream stops reading batches.
const ACK_BUFFER: usize = 64;
/// Batches of one stream being stored at once. They share write-ahead log syncs: handled one at a
/// time, four stations' streams put 1.6 batches in each sync on average and the log spent three
/// quarters of the time syncing (`benches/README.md`).
const PIPELINE_DEPTH: usize = 16;
/// Wait asked of a station whose batch is being stored by another call right now.
const IN_FLIGHT_RETRY_MS: u32 = 200;

/// State shared by every call.
#[derive(Debug)]
pub struct Ingest {
    store: Arc<DurableStore>,
    topology: Option<Topology>,
    admitting: AtomicBool,
    /// Told when shutdown starts, so idle streams end instead of holding the server open.
    stopping: tokio::sync::watch::Sender<bool>,
    flush_rows: usize,
    admission: Admission,
    flush: Arc<Notify>,
    persist: bool,
    metrics: Metrics,
    authorizer: Option<Authorizer>,
    /// Streams ended by a message that could not be read, by [`StreamError`].
    stream_errors: [AtomicU64; StreamError::ALL.len()],
    /// Batches stored whose acknowledgement could not be delivered: the station went away.
    acks_undelivered: AtomicU64,
}

/// Why a stream ended before its station closed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamError {
    /// A message was not a `Batch` (`INVALID_ARGUMENT`).
    Undecodable,
    /// A message was over the size limit (`OUT_OF_RANGE`).
    TooLarge,
    /// The transport failed or the station went away mid-stream.
    Transport,
}

impl StreamError {
    /// Every kind, in the order of [`Gauges::stream_errors`].
    pub const ALL: [StreamError; 3] = [Self::Undecodable, Self::TooLarge, Self::Transport];

    /// Label in the metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::Undecodable => "undecodable",
            Self::TooLarge => "too_large",
            Self::Transport => "transport",
        }
    }

    /// What ended the stream (tonic's status for the message it could not read), and the status
    /// the station gets: what was wrong and which batch it came after.
    fn classify(status: &Status, last_read: Option<u64>) -> (Self, Status) {
        let after = last_read.map_or_else(
            || "before any batch was read".to_owned(),
            |s| format!("after the batch with sequence {s}"),
        );
        match status.code() {
            tonic::Code::OutOfRange => (
                Self::TooLarge,
                Status::out_of_range(format!(
                    "a message on this stream {after} is too large ({}); the stream was ended there: \
                     split that batch and send it and the ones after it again",
                    status.message()
                )),
            ),
            // tonic reports a message that prost cannot decode, or a frame cut short, as INTERNAL;
            // it is the station's message that is wrong.
            tonic::Code::Internal => (
                Self::Undecodable,
                Status::invalid_argument(format!(
                    "a message on this stream {after} is not a Batch ({}); the stream was ended \
                     there: send the batches after it again",
                    status.message()
                )),
            ),
            code => (
                Self::Transport,
                Status::new(code, format!("the stream broke {after}: {}", status.message())),
            ),
        }
    }
}

impl Ingest {
    /// A service storing into `store`, validating against `topology` when given, admitting within
    /// `limits`, and notifying `flush` when `flush_rows` rows are buffered. With an `authorizer`
    /// (TLS), callers may write only for the stations their certificate grants.
    pub fn new(
        store: Arc<DurableStore>,
        topology: Option<Topology>,
        flush_rows: usize,
        limits: Limits,
        flush: Arc<Notify>,
        authorizer: Option<Authorizer>,
    ) -> Arc<Self> {
        let admission = Admission::new(limits, store.data_dir());
        Arc::new(Self {
            store,
            topology,
            admitting: AtomicBool::new(true),
            stopping: tokio::sync::watch::Sender::new(false),
            flush_rows,
            admission,
            flush,
            persist: true,
            metrics: Metrics::default(),
            authorizer,
            stream_errors: Default::default(),
            acks_undelivered: AtomicU64::new(0),
        })
    }

    /// Turns storing off (benchmarks of the transport ceiling only); see `CollectorConfig::persist`.
    pub fn without_persistence(self: Arc<Self>) -> Arc<Self> {
        Arc::new(Self {
            store: Arc::clone(&self.store),
            topology: self.topology.clone(),
            admitting: AtomicBool::new(true),
            stopping: tokio::sync::watch::Sender::new(false),
            flush_rows: self.flush_rows,
            admission: Admission::new(*self.admission.limits(), self.store.data_dir()),
            flush: Arc::clone(&self.flush),
            persist: false,
            metrics: Metrics::default(),
            authorizer: self.authorizer.clone(),
            stream_errors: Default::default(),
            acks_undelivered: AtomicU64::new(0),
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
            disk_ok: self.admission.disk_ok(self.store.data_bytes()),
            buffered_rows: self.store.buffered_rows().unwrap_or_default() as u64,
            backlog_bytes: self.store.backlog_bytes(),
            data_bytes: self.store.data_bytes(),
            free_disk_bytes: self.admission.free_disk_bytes(),
            in_flight_bytes: self.admission.in_flight_bytes(),
            wal_syncs: wal.syncs.load(Ordering::Relaxed),
            wal_sync_seconds: wal.sync_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            wal_sync_buckets: wal.sync_histogram(),
            wal_quarantined_segments: wal.quarantined_segments.load(Ordering::Relaxed),
            wal_records: wal.records.load(Ordering::Relaxed),
            refusals: self.admission.refusals(),
            checkpoints: self.store.checkpoints(),
            stream_errors: self.stream_errors.each_ref().map(|n| n.load(Ordering::Relaxed)),
            acks_undelivered: self.acks_undelivered.load(Ordering::Relaxed),
        }
    }

    /// Streams ended by `kind` of error so far.
    pub fn stream_errors(&self, kind: StreamError) -> u64 {
        let i = StreamError::ALL
            .iter()
            .position(|&k| k == kind)
            .unwrap_or_default();
        self.stream_errors[i].load(Ordering::Relaxed)
    }

    /// Counts `batches` stored whose acknowledgements could not be delivered.
    fn count_undelivered(&self, batches: u64) {
        if batches > 0 {
            self.acks_undelivered.fetch_add(batches, Ordering::Relaxed);
            info!(
                batches,
                "A station went away before the acknowledgements of batches that were stored: it \
                 will resend them and be told they are duplicates."
            );
        }
    }

    /// Batches turned away over any budget.
    pub fn overload_rejections(&self) -> u64 {
        self.admission.refusals().iter().sum()
    }

    /// The budgets and their counters.
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// Who a call comes from: [`Caller::Local`] without TLS, else the client certificate's grant.
    pub fn caller<T>(&self, request: &Request<T>) -> Caller {
        match &self.authorizer {
            None => Caller::Local,
            Some(a) => a.caller(request.peer_certs().as_deref().map(Vec::as_slice)),
        }
    }

    /// Stops admitting batches: later calls get `UNAVAILABLE`, and open streams are ended with
    /// `UNAVAILABLE` once the batch they are storing (if any) is acknowledged.
    pub fn stop_admitting(&self) {
        self.admitting.store(false, Ordering::SeqCst);
        self.stopping.send_replace(true);
    }

    /// The tonic service for this state.
    pub fn into_server(self: Arc<Self>) -> TelemetryIngestServer<IngestService> {
        TelemetryIngestServer::new(IngestService { inner: self })
    }

    /// Validates and durably stores one batch from `caller`, says what happened, and counts it.
    pub async fn handle(self: &Arc<Self>, batch: Batch, caller: &Caller) -> Result<BatchAck> {
        let station = batch.station_id.clone();
        let result = self.handle_uncounted(batch, caller).await;
        self.metrics.observe(&station, &result);
        result
    }

    async fn handle_uncounted(self: &Arc<Self>, batch: Batch, caller: &Caller) -> Result<BatchAck> {
        if !self.admitting.load(Ordering::SeqCst) {
            return Err(CollectorError::ShuttingDown);
        }
        let station =
            StationId::try_new(batch.station_id.as_str()).map_err(|e| CollectorError::BadStation {
                station: cablewatch_proto::ids::preview(&batch.station_id),
                reason: e.to_string(),
            })?;
        caller.check(&station)?;
        let payload = batch.payload()?;
        let rows = payload.row_count()?;
        let cable_id = payload.cable_id();
        let unknown = || CollectorError::UnknownCable {
            cable: cablewatch_proto::ids::preview(cable_id),
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
        let bytes = batch.encoded_len() as u64;
        let _in_flight = self.admission.reserve(bytes)?;
        // A retry of a stored batch is answered, not budgeted: it adds nothing.
        let budgeted = self.persist && !self.store.is_duplicate(station_id.as_str(), epoch, sequence)?;
        if budgeted {
            self.admission.check_disk(bytes, self.store.data_bytes())?;
        }
        // Inline, not on the blocking pool: checking a 1,000-row batch column by column takes
        // microseconds, less than handing it to another thread and back.
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + MAX_FUTURE_SKEW;
        let rules = Rules {
            topology: self.topology.as_ref(),
            min_time_ns: MIN_TIME_NS,
            max_time_ns: i64::try_from(now.as_nanos()).unwrap_or(i64::MAX),
        };
        let cable_def = self.topology.as_ref().and_then(|t| t.cable(cable.as_str()));
        let verdict = validate::validate(payload, cable_def, &rules, rows);
        // Held until the rows are in the buffers.
        let _rows_reserved = if budgeted {
            let buffered = self.store.buffered_rows()?;
            Some(
                self.admission
                    .reserve_rows(buffered, verdict.accepted.len())
                    .inspect_err(|e| {
                        self.flush.notify_one();
                        warn!(station = %station_id, sequence, buffered, "Buffer budget: {e}.");
                    })?,
            )
        } else {
            None
        };
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
        // A batch sent again is answered with what was stored the first time, when that is still
        // remembered (the copy may differ); else with the copy's counts, and the message says so.
        let (duplicate, first) = match appended {
            Appended::Duplicate(first) => (true, first),
            _ => (false, None),
        };
        let (accepted, rejected) = first.map_or((verdict.accepted.len(), verdict.rejected), |c| {
            (c.accepted as usize, c.rejected as usize)
        });
        let status = match (accepted, rejected) {
            (_, 0) => AckStatus::Accepted,
            (0, _) => AckStatus::Rejected,
            _ => AckStatus::Partial,
        };
        if verdict.rejected > 0 && !duplicate {
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
        let message = match (duplicate, first) {
            (false, _) => verdict.message(),
            (true, Some(_)) => "already stored: these are the counts of the first time".to_owned(),
            (true, None) => format!(
                "already stored (its first counts are no longer kept: counted again from this copy) {}",
                verdict.message()
            )
            .trim_end()
            .to_owned(),
        };
        Ok(BatchAck {
            stream_epoch: epoch,
            sequence,
            status: status.into(),
            accepted_rows: u32::try_from(accepted).unwrap_or(u32::MAX),
            rejected_rows: u32::try_from(rejected).unwrap_or(u32::MAX),
            message,
            duplicate,
            retry_after_ms: 0,
            // Which rows were rejected the first time is not kept.
            errors: if first.is_some() {
                Vec::new()
            } else {
                verdict.errors
            },
        })
    }
}

/// What a stream sends back for one batch: an acknowledgement, or a status that ends the stream.
type Reply = std::result::Result<BatchAck, Status>;

/// Whether `reply` acknowledges rows that were stored.
fn stored(reply: &Reply) -> bool {
    reply
        .as_ref()
        .is_ok_and(|a| matches!(a.status(), AckStatus::Accepted | AckStatus::Partial))
}

/// The acknowledgements of a stream, on their way to the station. Dropped before its end (the
/// station went away), it counts the stored batches whose acknowledgements it still held.
struct AckStream {
    rx: mpsc::Receiver<Reply>,
    ingest: Arc<Ingest>,
}

impl Stream for AckStream {
    type Item = Reply;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Reply>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for AckStream {
    fn drop(&mut self) {
        self.rx.close();
        let mut held = 0;
        while let Ok(reply) = self.rx.try_recv() {
            held += u64::from(stored(&reply));
        }
        self.ingest.count_undelivered(held);
    }
}

/// The stream's answer to `handle`'s result: overload and batch problems are acknowledgements (the
/// station retries or fixes that batch); anything else ends the stream.
fn reply(result: Result<BatchAck>, epoch: u64, sequence: u64) -> Reply {
    match result {
        Ok(ack) => Ok(ack),
        Err(e @ CollectorError::Overloaded { retry_after_ms, .. }) => Ok(BatchAck {
            stream_epoch: epoch,
            sequence,
            status: AckStatus::RetryLater.into(),
            message: format!("{e}; send this batch again"),
            retry_after_ms,
            ..BatchAck::default()
        }),
        Err(e) if is_batch_problem(&e) => {
            warn!(sequence, error = %e, "Rejected batch.");
            Ok(rejected_ack(epoch, sequence, &e))
        }
        Err(e) => Err(to_status(&e)),
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
            | CollectorError::BatchTooLarge { .. }
            | CollectorError::UnknownCable { .. }
            | CollectorError::StationNotOnCable { .. }
    )
}

#[tonic::async_trait]
impl TelemetryIngest for IngestService {
    async fn send_batch(&self, request: Request<Batch>) -> std::result::Result<Response<BatchAck>, Status> {
        let caller = self.inner.caller(&request);
        self.inner
            .handle(request.into_inner(), &caller)
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
        let caller = self.inner.caller(&request);
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(ACK_BUFFER);
        // Batches of one stream are stored concurrently (up to PIPELINE_DEPTH), so that they share
        // write-ahead log syncs; their acknowledgements still go out in the order they came in.
        let (pending_tx, mut pending_rx) = mpsc::channel::<JoinHandle<Reply>>(PIPELINE_DEPTH);
        let ingest = Arc::clone(&self.inner);
        let mut stopping = ingest.stopping.subscribe();
        tokio::spawn(async move {
            let mut last_read: Option<u64> = None;
            loop {
                let next = tokio::select! {
                    biased;
                    () = pending_tx.closed() => break,
                    next = inbound.next() => next,
                    () = async { drop(stopping.wait_for(|stop| *stop).await) } => {
                        let status = to_status(&CollectorError::ShuttingDown);
                        let _ = pending_tx.send(tokio::spawn(async move { Err(status) })).await;
                        break;
                    }
                };
                let Some(next) = next else { break };
                let batch = match next {
                    Ok(b) => b,
                    Err(status) => {
                        let (kind, reply) = StreamError::classify(&status, last_read);
                        let i = StreamError::ALL
                            .iter()
                            .position(|&k| k == kind)
                            .unwrap_or_default();
                        ingest.stream_errors[i].fetch_add(1, Ordering::Relaxed);
                        if kind == StreamError::Transport {
                            info!(code = ?status.code(), last_read, "Station stream broke: {}", status.message());
                        } else {
                            warn!(code = ?reply.code(), last_read, "Ended a station stream: {}", reply.message());
                        }
                        // After the acknowledgements of the batches read before it.
                        let _ = pending_tx.send(tokio::spawn(async move { Err(reply) })).await;
                        break;
                    }
                };
                last_read = Some(batch.sequence);
                // A batch for a station this caller may not write ends the stream: read no further.
                let permitted =
                    StationId::try_new(batch.station_id.as_str()).map_or(true, |s| caller.check(&s).is_ok());
                let (ingest, caller) = (Arc::clone(&ingest), caller.clone());
                let task = tokio::spawn(async move {
                    let (epoch, sequence) = (batch.stream_epoch, batch.sequence);
                    reply(ingest.handle(batch, &caller).await, epoch, sequence)
                });
                if pending_tx.send(task).await.is_err() || !permitted {
                    break;
                }
            }
        });
        let ingest = Arc::clone(&self.inner);
        tokio::spawn(async move {
            // Once the station has gone away, no more batches are read, and the ones still being
            // stored are counted instead of answered: it will resend them and be told they are
            // duplicates.
            let (mut gone, mut undelivered) = (false, 0u64);
            while let Some(task) = pending_rx.recv().await {
                let reply = task
                    .await
                    .unwrap_or_else(|e| Err(to_status(&CollectorError::Task(e.to_string()))));
                let (end, stored) = (reply.is_err(), stored(&reply));
                if gone || tx.send(reply).await.is_err() {
                    if !gone {
                        gone = true;
                        pending_rx.close();
                    }
                    undelivered += u64::from(stored);
                }
                if end {
                    break;
                }
            }
            ingest.count_undelivered(undelivered);
        });
        Ok(Response::new(Box::pin(AckStream {
            rx,
            ingest: Arc::clone(&self.inner),
        })))
    }
}
