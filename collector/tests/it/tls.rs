//! TLS with client certificates over loopback: certificates made by the collector's own
//! `write_dev_certs`, each station's certificate bound to its station id.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

use cablewatch_collector::{
    CollectorConfig, RunningCollector,
    tls::{TlsSettings, write_dev_certs},
};
use cablewatch_proto::{
    StationId,
    tables::OPTICAL_CHANNEL,
    wire::{AckStatus, Batch, v1::telemetry_ingest_client::TelemetryIngestClient},
};
use tokio_stream::StreamExt as _;
use tonic::{
    Code,
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};

use crate::{TOPOLOGY, optical_batch, stored};

fn station(s: &str) -> StationId {
    StationId::try_new(s).unwrap()
}

fn batch_from(station_id: &str, sequence: u64) -> Batch {
    Batch {
        station_id: station_id.into(),
        ..optical_batch(sequence, 16)
    }
}

async fn start(dir: &Path) -> RunningCollector {
    std::fs::write(dir.join("topology.toml"), TOPOLOGY).unwrap();
    let certs = write_dev_certs(
        &dir.join("certs"),
        &[station("north"), station("south"), station("elsewhere")],
        &[],
    )
    .unwrap();
    // north and south are bound to themselves; elsewhere's certificate is valid but unbound.
    let identities: BTreeMap<_, _> = ["north", "south"]
        .iter()
        .map(|s| {
            let (name, _, _) = &certs.stations[&station(s)];
            (name.clone(), BTreeSet::from([station(s)]))
        })
        .collect();
    let mut config = CollectorConfig::loopback(dir.join("data"));
    config.topology = Some(dir.join("topology.toml"));
    config.tls = Some(TlsSettings {
        cert: certs.collector.0,
        key: certs.collector.1,
        client_ca: certs.ca,
        identities,
    });
    cablewatch_collector::start(config).await.unwrap()
}

/// A client presenting `identity` (a station name in `cert_dir`), trusting `ca_dir/ca.pem`.
async fn client(
    url: &str,
    ca_dir: &Path,
    cert_dir: &Path,
    identity: Option<&str>,
) -> Result<TelemetryIngestClient<Channel>, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(
        std::fs::read(ca_dir.join("ca.pem")).unwrap(),
    ));
    if let Some(id) = identity {
        tls = tls.identity(Identity::from_pem(
            std::fs::read(cert_dir.join(format!("{id}.pem"))).unwrap(),
            std::fs::read(cert_dir.join(format!("{id}.key"))).unwrap(),
        ));
    }
    let channel = Endpoint::from_shared(url.to_owned())
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await?;
    Ok(TelemetryIngestClient::new(channel))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_station_certificate_writes_only_its_own_station() {
    let dir = tempfile::tempdir().unwrap();
    let collector = start(dir.path()).await;
    let url = collector.url();
    assert!(url.starts_with("https://localhost:"), "{url}");
    let certs = dir.path().join("certs");

    let mut south = client(&url, &certs, &certs, Some("south")).await.unwrap();
    let ack = south
        .send_batch(batch_from("south", 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((ack.status(), ack.accepted_rows), (AckStatus::Accepted, 16));

    // South's certificate may not write north's batches, though north lands the same cable.
    let err = south.send_batch(batch_from("north", 1)).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(
        err.message().contains("north") && err.message().contains("south.station"),
        "the refusal names the station and the certificate: {}",
        err.message()
    );

    // On a stream: the good batch is acknowledged, then the stream ends with PERMISSION_DENIED.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut acks = south
        .stream_batches(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    tx.send(batch_from("south", 2)).await.unwrap();
    let ack = acks.next().await.unwrap().unwrap();
    assert_eq!((ack.sequence, ack.status()), (2, AckStatus::Accepted));
    tx.send(batch_from("north", 3)).await.unwrap();
    let end = acks.next().await.unwrap().unwrap_err();
    assert_eq!(end.code(), Code::PermissionDenied);

    // A valid certificate that no identity entry names may write nothing.
    let mut unbound = client(&url, &certs, &certs, Some("elsewhere")).await.unwrap();
    let err = unbound.send_batch(batch_from("south", 4)).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // No client certificate, a certificate from another CA, or plain text: no call gets through.
    let mut anonymous = client(&url, &certs, &certs, None).await.unwrap();
    assert!(anonymous.send_batch(batch_from("south", 5)).await.is_err());
    let other = dir.path().join("other-ca");
    write_dev_certs(&other, &[station("south")], &[]).unwrap();
    if let Ok(mut foreign) = client(&url, &certs, &other, Some("south")).await {
        assert!(foreign.send_batch(batch_from("south", 6)).await.is_err());
    }
    let plain = format!("http://127.0.0.1:{}", collector.local_addr().port());
    if let Ok(mut c) = TelemetryIngestClient::connect(plain).await {
        assert!(c.send_batch(batch_from("south", 7)).await.is_err());
    }

    let counters = collector.ingest().metrics().stations();
    assert_eq!(counters["north"].batches.get("permission_denied"), Some(&2));
    assert_eq!(counters["south"].batches.get("permission_denied"), Some(&1));
    collector.shutdown().await.unwrap();
    let rows = stored(&dir.path().join("data"), &OPTICAL_CHANNEL);
    assert_eq!(rows.height(), 32, "only south's two accepted batches are stored");
}

#[tokio::test]
async fn tls_may_listen_off_loopback_and_plain_text_only_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let certs = write_dev_certs(&dir.path().join("certs"), &[station("south")], &[]).unwrap();
    let mut config = CollectorConfig::loopback(dir.path().join("data"));
    config.listen = "0.0.0.0:0".parse().unwrap();
    config.admin_listen = None;
    config.tls = Some(TlsSettings {
        cert: certs.collector.0.clone(),
        key: certs.collector.1.clone(),
        client_ca: certs.ca.clone(),
        identities: BTreeMap::from([("x".to_owned(), BTreeSet::from([station("south")]))]),
    });
    let c = cablewatch_collector::start(config.clone()).await.unwrap();
    c.shutdown().await.unwrap();

    // The admin port is plain HTTP: off loopback only when explicitly allowed.
    config.admin_listen = Some("0.0.0.0:0".parse().unwrap());
    let err = cablewatch_collector::start(config.clone()).await.unwrap_err();
    assert!(err.to_string().contains("plaintext_off_loopback"), "{err}");

    config.tls = None;
    config.admin_listen = None;
    config.plaintext_off_loopback = true;
    let c = cablewatch_collector::start(config).await.unwrap();
    assert!(c.url().starts_with("http://0.0.0.0:"));
    c.shutdown().await.unwrap();
}
