//! Running a collector: load the topology, recover the store, bind, serve, checkpoint in the
//! background, and shut down gracefully.
//!
//! Shutdown first stops admitting batches (late callers get `UNAVAILABLE`), lets in-flight batches
//! finish storing and be acknowledged, closes the listener, and writes a last checkpoint so that
//! everything acknowledged is in Parquet and the write-ahead log is empty.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use cablewatch_proto::topology::Topology;
use tokio::{
    net::TcpListener,
    sync::{Notify, oneshot, watch},
    task::JoinHandle,
};
use tracing::{error, info};

use cablewatch_proto::wire::{FILE_DESCRIPTOR_SET, v1::telemetry_ingest_server::TelemetryIngestServer};
use tonic::transport::server::TcpIncoming;
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    CollectorConfig, CollectorError, Result,
    durable::{DurableConfig, DurableStore},
    service::{Ingest, IngestService},
};

/// Largest batch message accepted, bytes: about 50,000 optical rows with every statistic.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// Streams (calls) one connection may have open at once; with [`MAX_MESSAGE_BYTES`] this bounds
/// what one connection can make the server decode at a time, and with [`STREAM_WINDOW_BYTES`]
/// what it can leave unread. A station needs one per table it streams; more calls wait their turn
/// in the client.
pub const MAX_CONCURRENT_STREAMS: u32 = 16;
/// HTTP/2 flow-control window of one stream (hyper's default): what a station may send on a
/// stream beyond what the collector has read. One megabyte keeps a stream busy over a 100 ms
/// round trip at 10 MB/s.
pub const STREAM_WINDOW_BYTES: u32 = 1024 * 1024;
/// HTTP/2 flow-control window of a connection, sized so that flow control, not h2's guard against
/// floods of small frames, is what holds back a station that sends faster than its batches are
/// stored.
///
/// h2 charges every DATA frame that is received and not yet read with `256 - len` bytes when it is
/// shorter than 256 bytes, against a budget of half the connection window, and ends the connection
/// with `GOAWAY ENHANCE_YOUR_CALM "too_many_data_frames"` when the budget is spent. With hyper's
/// 1 MiB connection window that took about 2,800 unread one-row latency batches (75 bytes, one per
/// frame, as gRPC stacks other than tonic write them): a station pipelining small batches lost its
/// connection. Unread data on a connection is at most [`MAX_CONCURRENT_STREAMS`] ×
/// [`STREAM_WINDOW_BYTES`] (16 MiB), so with frames of at least [`MIN_FRAME_BYTES`] the charge is
/// at most that × (256 − 32) / 32 = 112 MiB, within half of this window; a peer sending smaller
/// frames than any batch needs is still cut off, which is what the guard is for.
pub const CONNECTION_WINDOW_BYTES: u32 = 256 * 1024 * 1024;
/// Smallest DATA frame a station's gRPC stack is expected to send: a one-row batch with its 5-byte
/// gRPC prefix is over 60 bytes.
pub const MIN_FRAME_BYTES: u64 = 32;
const _: () = assert!(
    MAX_CONCURRENT_STREAMS as u64 * STREAM_WINDOW_BYTES as u64 * (256 - MIN_FRAME_BYTES) / MIN_FRAME_BYTES
        <= CONNECTION_WINDOW_BYTES as u64 / 2
);
/// Largest HTTP/2 frame a client may send. A 1,000-row optical batch is about 120 kB: in one frame
/// instead of eight of HTTP/2's default 16 kB, each handled and copied on its own.
pub const MAX_FRAME_BYTES: u32 = 256 * 1024;

/// A collector serving in the background.
#[derive(Debug)]
pub struct RunningCollector {
    addr: SocketAddr,
    tls: bool,
    ingest: Arc<Ingest>,
    store: Arc<DurableStore>,
    health: HealthReporter,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<()>>,
    stop_checkpoints: watch::Sender<bool>,
    checkpoints: JoinHandle<()>,
    admin_addr: Option<SocketAddr>,
    admin: Option<JoinHandle<()>>,
}

impl RunningCollector {
    /// The address it listens on (with the real port when the config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`, or `https://localhost:<port>` with TLS, for clients.
    pub fn url(&self) -> String {
        if self.tls {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("http://{}", self.addr)
        }
    }

    /// The admin port's address, when it runs.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The ingest service's state, for inspection.
    pub fn ingest(&self) -> &Arc<Ingest> {
        &self.ingest
    }

    /// The durable store, for inspection.
    pub fn store(&self) -> &Arc<DurableStore> {
        &self.store
    }

    /// Stops admitting, drains in-flight batches, stops serving, and checkpoints everything.
    pub async fn shutdown(mut self) -> Result<()> {
        self.ingest.stop_admitting();
        self.health
            .set_not_serving::<TelemetryIngestServer<IngestService>>()
            .await;
        self.health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let served = self.task.await.map_err(|e| CollectorError::Task(e.to_string()));
        let _ = self.stop_checkpoints.send(true);
        let _ = self.checkpoints.await;
        if let Some(admin) = self.admin.take() {
            let _ = admin.await;
        }
        let last = self.store.checkpoint().await?;
        info!(rows = last.rows, files = last.files, "Final checkpoint written.");
        served?
    }
}

/// Loads the topology, binds `config.listen` and starts serving.
pub async fn start(config: CollectorConfig) -> Result<RunningCollector> {
    let plaintext = config.tls.is_none().then_some(config.listen);
    for addr in plaintext.into_iter().chain(config.admin_listen) {
        if !addr.ip().is_loopback() && !config.plaintext_off_loopback {
            return Err(CollectorError::PlaintextNotLoopback { addr });
        }
    }
    let tls = config.tls.as_ref().map(|t| t.server_config()).transpose()?;
    let topology = config
        .topology
        .as_deref()
        .map(Topology::from_toml_file)
        .transpose()?;
    match &topology {
        Some(t) => info!(
            cables = t.cables.len(),
            stations = t.stations.len(),
            "Loaded topology."
        ),
        None => info!("No topology given: checking rows for structure and physical ranges only."),
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| CollectorError::Serve {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| CollectorError::Serve {
        addr: config.listen,
        source,
    })?;
    let mut durable = DurableConfig::new(&config.data_dir);
    durable.parquet = config.parquet;
    let store = DurableStore::open(durable).await?;
    let flush = Arc::new(Notify::new());
    let ingest = Ingest::new(
        Arc::clone(&store),
        topology,
        config.flush_rows,
        config.limits,
        Arc::clone(&flush),
        config.tls.as_ref().map(|t| t.authorizer()),
    );
    let ingest = if config.persist {
        ingest
    } else {
        ingest.without_persistence()
    };
    let (stop_checkpoints, stopping) = watch::channel(false);
    let checkpoints = tokio::spawn(run_checkpoints(
        Arc::clone(&store),
        flush,
        config.flush_interval,
        stopping,
    ));
    let service = Arc::clone(&ingest)
        .into_server()
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<TelemetryIngestServer<IngestService>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| CollectorError::Startup {
            what: "gRPC reflection",
            reason: e.to_string(),
        })?;
    let (stop, stopped) = oneshot::channel::<()>();
    let mut builder = tonic::transport::Server::builder()
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
        .max_frame_size(Some(MAX_FRAME_BYTES))
        .http2_keepalive_interval(Some(Duration::from_secs(30)));
    let tls_on = tls.is_some();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls).map_err(|e| CollectorError::Startup {
            what: "TLS",
            reason: e.to_string(),
        })?;
    }
    let task = tokio::spawn(async move {
        builder
            .add_service(health_service)
            .add_service(reflection)
            .add_service(service)
            // Our own listener (bound before serving, to report the port), so tonic's default
            // TCP_NODELAY must be set here: without it Nagle's algorithm holds back acks and flow
            // control updates behind the peer's delayed ACKs and streams stall.
            .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), async {
                let _ = stopped.await;
            })
            .await
            .map_err(|e| CollectorError::Serve {
                addr,
                source: std::io::Error::other(e),
            })
    });
    let (admin_addr, admin) = match config.admin_listen {
        Some(admin_listen) => {
            let mut stopping = stop_checkpoints.subscribe();
            let (bound, serve) = crate::admin::bind(admin_listen, Arc::clone(&ingest), async move {
                let _ = stopping.changed().await;
            })
            .await?;
            info!(addr = %bound, "Admin port listening: /metrics, /livez, /readyz.");
            (Some(bound), Some(tokio::spawn(serve)))
        }
        None => (None, None),
    };
    info!(%addr, tls = tls_on, data_dir = %config.data_dir.display(), "Collector listening.");
    Ok(RunningCollector {
        addr,
        tls: tls_on,
        ingest,
        store,
        health,
        stop: Some(stop),
        task,
        stop_checkpoints,
        checkpoints,
        admin_addr,
        admin,
    })
}

/// Checkpoints when asked (enough rows buffered) or every `interval`, until told to stop.
async fn run_checkpoints(
    store: Arc<DurableStore>,
    flush: Arc<Notify>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = flush.notified() => {},
            _ = tokio::time::sleep(interval) => {},
            _ = stop.changed() => return,
        }
        match store.buffered_rows() {
            Ok(0) => continue,
            Ok(_) => {}
            Err(e) => error!(error = %e, "Cannot read the buffer size."),
        }
        match store.checkpoint().await {
            Ok(report) => info!(
                rows = report.rows,
                files = report.files,
                cut = report.cut,
                "Checkpoint written."
            ),
            Err(e) => {
                error!(error = %e, "Checkpoint failed; the rows stay buffered and in the write-ahead log.")
            }
        }
    }
}
