//! Running a collector: load the topology, bind, serve, and shut down gracefully.
//!
//! Shutdown first stops admitting batches (late callers get `UNAVAILABLE`), then lets in-flight
//! batches finish storing and be acknowledged, then closes the listener.

use std::{net::SocketAddr, sync::Arc};

use cablewatch_proto::topology::Topology;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tokio_stream::wrappers::TcpListenerStream;
use tracing::info;

use crate::{CollectorConfig, CollectorError, Result, service::Ingest};

/// Largest batch message accepted, bytes: about 50,000 optical rows with every statistic.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// A collector serving in the background.
#[derive(Debug)]
pub struct RunningCollector {
    addr: SocketAddr,
    ingest: Arc<Ingest>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<()>>,
}

impl RunningCollector {
    /// The address it listens on (with the real port when the config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`, for clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops admitting, drains in-flight batches, and stops serving.
    pub async fn shutdown(mut self) -> Result<()> {
        self.ingest.stop_admitting();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.map_err(|e| CollectorError::Task(e.to_string()))?
    }
}

/// Loads the topology, binds `config.listen` and starts serving.
pub async fn start(config: CollectorConfig) -> Result<RunningCollector> {
    if !config.listen.ip().is_loopback() {
        return Err(CollectorError::PlaintextNotLoopback { addr: config.listen });
    }
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
    let ingest = Ingest::new(config.data_dir.clone(), topology, config.parquet);
    let service = Arc::clone(&ingest)
        .into_server()
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = stopped.await;
            })
            .await
            .map_err(|e| CollectorError::Serve {
                addr,
                source: std::io::Error::other(e),
            })
    });
    info!(%addr, data_dir = %config.data_dir.display(), "Collector listening.");
    Ok(RunningCollector {
        addr,
        ingest,
        stop: Some(stop),
        task,
    })
}
