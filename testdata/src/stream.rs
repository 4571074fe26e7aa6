//! Playing station streams to a collector over the gRPC contract: one client per landing station,
//! all concurrently, each with a window of unacknowledged batches; a batch answered
//! `RETRY_LATER` is sent again after the delay the collector asked for.
//!
//! With [`ClientTls`], each station connects over TLS presenting its own client certificate, as a
//! real landing station would; the collector lets it write only its own station's batches.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use cablewatch_proto::{
    codec::{EncodedBatch, stream_encoded_batches},
    wire::{AckStatus, Batch, Payload},
};
use tokio::sync::mpsc;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tracing::{debug, info};

use crate::{SimError, generate::StationStream};

/// What one station's stream achieved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamReport {
    /// The station.
    pub station: String,
    /// Batches acknowledged.
    pub batches: u64,
    /// Rows the collector stored.
    pub accepted_rows: u64,
    /// Rows the collector rejected.
    pub rejected_rows: u64,
    /// Batches the collector had already stored.
    pub duplicates: u64,
    /// Batches sent again after `RETRY_LATER`.
    pub retries: u64,
}

/// Playback speed: a batch is sent when the scenario clock reaches its first row.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Scenario time that corresponds to `wall_start`, ns.
    pub scenario_start_ns: i64,
    /// Wall-clock instant of `scenario_start_ns`.
    pub wall_start: Instant,
    /// Scenario seconds per wall-clock second (1 = real time).
    pub speed: f64,
}

impl Pace {
    fn due(&self, t_ns: i64) -> Instant {
        let secs = (t_ns - self.scenario_start_ns).max(0) as f64 / 1e9 / self.speed;
        self.wall_start + Duration::from_secs_f64(secs)
    }
}

/// TLS for station clients: the CA that signed the collector's certificate and a directory of
/// per-station client certificates named `<station>.pem` and `<station>.key` (the layout
/// `cablewatch-collector dev-certs` writes).
#[derive(Debug, Clone)]
pub struct ClientTls {
    /// PEM CA certificate the collector's certificate chains to.
    pub ca: PathBuf,
    /// Directory holding `<station>.pem` and `<station>.key`.
    pub cert_dir: PathBuf,
    /// Name to verify the collector's certificate against; default the URL's host.
    pub domain: Option<String>,
}

impl ClientTls {
    /// The layout of `cablewatch-collector dev-certs --out DIR`: `DIR/ca.pem`, `DIR/<station>.*`.
    pub fn from_dir(dir: &Path) -> Self {
        Self {
            ca: dir.join("ca.pem"),
            cert_dir: dir.to_owned(),
            domain: None,
        }
    }

    fn config(&self, station: &str) -> Result<ClientTlsConfig, String> {
        let read = |p: PathBuf| std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()));
        let ca = read(self.ca.clone())?;
        let cert = read(self.cert_dir.join(format!("{station}.pem")))?;
        let key = read(self.cert_dir.join(format!("{station}.key")))?;
        let mut config = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca))
            .identity(Identity::from_pem(cert, key));
        if let Some(domain) = &self.domain {
            config = config.domain_name(domain.clone());
        }
        Ok(config)
    }
}

/// Opens a channel to `url` for `station`, with its client certificate when `tls` is given.
pub async fn connect(url: &str, station: &str, tls: Option<&ClientTls>) -> Result<Channel, String> {
    let mut endpoint = Endpoint::from_shared(url.to_owned()).map_err(|e| format!("bad URL {url:?}: {e}"))?;
    if let Some(tls) = tls {
        endpoint = endpoint
            .tls_config(tls.config(station)?)
            .map_err(|e| format!("TLS settings for {station}: {e}"))?;
    }
    endpoint
        .connect()
        .await
        .map_err(|e| format!("connecting to {url}: {e}{}", source_chain(&e)))
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = String::new();
    let mut next = e.source();
    while let Some(s) = next {
        out.push_str(&format!(": {s}"));
        next = s.source();
    }
    out
}

/// Stream settings.
#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// Stream epoch every station uses (a retry of the whole run with the same epoch is idempotent).
    pub epoch: u64,
    /// Most batches in flight per station before waiting for acknowledgements.
    pub window: usize,
    /// Playback pace; `None` sends as fast as acknowledgements allow.
    pub pace: Option<Pace>,
    /// TLS with per-station client certificates; `None` connects in plain text.
    pub tls: Option<Arc<ClientTls>>,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            epoch: 1,
            window: 16,
            pace: None,
            tls: None,
        }
    }
}

/// Streams every station's batches to the collector at `url` concurrently, as fast as acks allow.
pub async fn stream_all(
    url: &str,
    streams: Vec<StationStream>,
    options: StreamOptions,
) -> Result<Vec<StreamReport>, SimError> {
    let mut tasks = Vec::new();
    for s in streams {
        let url = url.to_owned();
        let options = options.clone();
        tasks.push(tokio::spawn(
            async move { stream_station(&url, s, options).await },
        ));
    }
    let mut reports = Vec::new();
    for t in tasks {
        reports.push(t.await.map_err(|e| SimError::Stream {
            station: "?".into(),
            reason: e.to_string(),
        })??);
    }
    Ok(reports)
}

/// Streams one station's batches and waits for every acknowledgement.
pub async fn stream_station(
    url: &str,
    stream: StationStream,
    options: StreamOptions,
) -> Result<StreamReport, SimError> {
    let station = stream.station.to_string();
    let err = |reason: String| SimError::Stream {
        station: station.clone(),
        reason,
    };
    let channel = connect(url, &station, options.tls.as_deref())
        .await
        .map_err(err)?;
    let mut grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(64 * 1024 * 1024);
    let window = options.window.max(1);
    // Each batch is encoded once and kept (as shared bytes) until acknowledged, for RETRY_LATER.
    let (tx, rx) = mpsc::channel::<EncodedBatch>(window);
    let mut acks = stream_encoded_batches(&mut grpc, ReceiverStream::new(rx))
        .await
        .map_err(|e| {
            let hint = if url.starts_with("http://") && e.message().contains("h2 protocol error") {
                " (does the collector serve TLS? then use an https:// URL and --tls-dir)"
            } else {
                ""
            };
            err(format!("opening stream: {e}{hint}"))
        })?
        .into_inner();

    let pace = options.pace;
    let wait_until_due = |payload: &Payload| {
        let due = pace.zip(payload.first_time_ns()).map(|(p, t)| p.due(t));
        async move {
            if let Some(due) = due {
                tokio::time::sleep_until(due.into()).await;
            }
        }
    };
    let batch = |sequence: u64, payload: Payload| {
        EncodedBatch::new(&Batch {
            station_id: station.clone(),
            stream_epoch: options.epoch,
            sequence,
            payload: Some(payload),
        })
    };
    let total = stream.payloads.len();
    let mut pending = stream.payloads.into_iter().enumerate();
    let mut in_flight: HashMap<u64, EncodedBatch> = HashMap::new();
    let mut report = StreamReport {
        station: station.clone(),
        ..Default::default()
    };
    // Fill the window, then send one more for every acknowledgement.
    let closed = || err("stream closed by collector".into());
    for (seq, payload) in pending.by_ref().take(window) {
        wait_until_due(&payload).await;
        send_tracked(&tx, &mut in_flight, batch(seq as u64, payload))
            .await
            .map_err(|()| closed())?;
    }
    while report.batches < total as u64 {
        let ack = acks
            .next()
            .await
            .ok_or_else(|| err(format!("stream ended after {} of {total} acks", report.batches)))?
            .map_err(|s| {
                err(format!(
                    "collector ended the stream: {:?}: {}",
                    s.code(),
                    s.message()
                ))
            })?;
        if ack.status() == AckStatus::RetryLater {
            let again = in_flight
                .get(&ack.sequence)
                .cloned()
                .ok_or_else(|| err(format!("retry asked for unknown sequence {}", ack.sequence)))?;
            tokio::time::sleep(Duration::from_millis(u64::from(ack.retry_after_ms.max(1)))).await;
            report.retries += 1;
            tx.send(again).await.map_err(|_| closed())?;
            continue;
        }
        in_flight.remove(&ack.sequence);
        report.batches += 1;
        report.accepted_rows += u64::from(ack.accepted_rows);
        report.rejected_rows += u64::from(ack.rejected_rows);
        report.duplicates += u64::from(ack.duplicate);
        if ack.rejected_rows > 0 {
            debug!(station = %station, sequence = ack.sequence, "Collector rejected rows: {}", ack.message);
        }
        if let Some((seq, payload)) = pending.next() {
            wait_until_due(&payload).await;
            send_tracked(&tx, &mut in_flight, batch(seq as u64, payload))
                .await
                .map_err(|()| closed())?;
        }
    }
    info!(station = %station, batches = report.batches, rows = report.accepted_rows, "Station stream acknowledged.");
    Ok(report)
}

/// Sends `b` and remembers it until acknowledged, so a `RETRY_LATER` can resend it.
async fn send_tracked(
    tx: &mpsc::Sender<EncodedBatch>,
    in_flight: &mut HashMap<u64, EncodedBatch>,
    b: EncodedBatch,
) -> Result<(), ()> {
    in_flight.insert(b.sequence, b.clone());
    tx.send(b).await.map_err(|_| ())
}
