use cablewatch_collector::CollectorConfig;
use cablewatch_proto::{
    tables::OPTICAL_CHANNEL,
    wire::{AckStatus, Batch, v1::telemetry_ingest_client::TelemetryIngestClient},
};
use tokio_stream::StreamExt;
use tonic::Code;

use crate::{Harness, optical_batch, rows_per_sequence, stored, stream_ledger, wal_log_bytes};

/// A stream of `batches` as encoded bytes (some of which may not be batches at all): the
/// acknowledgements received, then the status the stream ended with (`None`: it ended OK).
async fn stream_raw(
    h: &Harness,
    batches: Vec<cablewatch_proto::codec::EncodedBatch>,
) -> (Vec<cablewatch_proto::wire::BatchAck>, Option<tonic::Status>) {
    let channel = tonic::transport::Channel::from_shared(h.collector.as_ref().unwrap().url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    let mut replies = cablewatch_proto::codec::stream_encoded_batches(&mut grpc, tokio_stream::iter(batches))
        .await
        .unwrap()
        .into_inner();
    let mut acks = Vec::new();
    loop {
        match replies.next().await {
            Some(Ok(ack)) => acks.push(ack),
            Some(Err(status)) => return (acks, Some(status)),
            None => return (acks, None),
        }
    }
}

/// A message that is not a batch, or one over the size limit, ends the stream with a status that
/// says what was wrong and after which batch, once the batches before it are acknowledged; the
/// batches after it are not read (the station sends them again), and the error is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_message_ends_the_stream_with_a_status_after_the_earlier_acks() {
    use cablewatch_proto::codec::EncodedBatch;
    let h = Harness::start().await;
    let batch = |s| EncodedBatch::new(&optical_batch(s, 4));
    // Field 1 (the station id, a string) holding bytes that are not UTF-8: not a Batch.
    let not_a_batch = EncodedBatch::from_encoded(2, bytes::Bytes::from_static(&[0x0a, 0x02, 0xff, 0xfe]));
    let (acks, status) = stream_raw(&h, vec![batch(0), batch(1), not_a_batch, batch(3)]).await;
    let seqs: Vec<u64> = acks.iter().map(|a| a.sequence).collect();
    assert_eq!(seqs, [0, 1]);
    assert!(acks.iter().all(|a| a.status() == AckStatus::Accepted));
    let status = status.expect("the stream must end with an error status");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("not a Batch") && status.message().contains("sequence 1"),
        "{}",
        status.message()
    );
    // Over the size limit: refused from its length prefix, before it is read.
    let too_large = EncodedBatch::from_encoded(
        6,
        bytes::Bytes::from(vec![0u8; cablewatch_collector::server::MAX_MESSAGE_BYTES + 1]),
    );
    let (acks, status) = stream_raw(&h, vec![batch(4), batch(5), too_large, batch(7)]).await;
    assert_eq!(acks.iter().map(|a| a.sequence).collect::<Vec<_>>(), [4, 5]);
    let status = status.expect("the stream must end with an error status");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(
        status.message().contains("too large") && status.message().contains("sequence 5"),
        "{}",
        status.message()
    );
    assert_eq!(h.stored_rows(&OPTICAL_CHANNEL).await, 4 * 4);
    let admin = h.collector.as_ref().unwrap().admin_addr().unwrap();
    let (_, body) = http_get(admin, "/metrics").await;
    assert_eq!(
        metric(&body, "cablewatch_stream_errors_total{reason=\"undecodable\"}"),
        1.0
    );
    assert_eq!(
        metric(&body, "cablewatch_stream_errors_total{reason=\"too_large\"}"),
        1.0
    );
}

#[tokio::test]
async fn unary_batch_is_stored_and_reads_back_with_polars() {
    let h = Harness::start().await;
    let ack = h
        .client()
        .await
        .send_batch(optical_batch(0, 16))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ack.status(), AckStatus::Accepted);
    assert_eq!((ack.accepted_rows, ack.rejected_rows, ack.sequence), (16, 0, 0));
    h.checkpoint().await;
    let df = stored(&h.data(), &OPTICAL_CHANNEL);
    assert_eq!(df.height(), 16);
    let q = df.column("q_db_avg").unwrap().f32().unwrap();
    let mut values: Vec<f32> = q.into_no_null_iter().collect();
    values.sort_by(f32::total_cmp);
    assert_eq!(values[0], 9.0);
    assert_eq!(values[15], 9.0 + 15.0 * 0.001);
    let cable = df.column("cable").unwrap().str().unwrap().get(0);
    assert_eq!(cable, Some("c1"));
}

/// Batches of one stream are stored concurrently; large and tiny ones alternate so that later ones
/// finish first, and the acknowledgements must still come back in the order sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_acks_every_batch_in_order() {
    let h = Harness::start().await;
    let sizes = |s: u64| if s.is_multiple_of(2) { 400 } else { 1 };
    let batches: Vec<Batch> = (0..60).map(|s| optical_batch(s, sizes(s))).collect();
    let mut acks = h
        .client()
        .await
        .stream_batches(tokio_stream::iter(batches))
        .await
        .unwrap()
        .into_inner();
    let mut seqs = Vec::new();
    while let Some(ack) = acks.next().await {
        let ack = ack.unwrap();
        assert_eq!(ack.status(), AckStatus::Accepted);
        seqs.push(ack.sequence);
    }
    assert_eq!(seqs, (0..60).collect::<Vec<_>>());
    assert_eq!(
        h.stored_rows(&OPTICAL_CHANNEL).await,
        (0..60).map(sizes).sum::<usize>()
    );
}

#[tokio::test]
async fn invalid_rows_are_rejected_with_counts_and_the_rest_stored() {
    let h = Harness::start().await;
    let mut batch = optical_batch(0, 8);
    let Some(cablewatch_proto::wire::Payload::Optical(p)) = batch.payload.as_mut() else {
        unreachable!()
    };
    p.q_db.as_mut().unwrap().avg[2] = f32::NAN;
    p.channel[5] = 99;
    p.osnr_db.as_mut().unwrap().min[6] = 25.0; // min above avg
    let ack = h.client().await.send_batch(batch).await.unwrap().into_inner();
    assert_eq!(ack.status(), AckStatus::Partial);
    assert_eq!((ack.accepted_rows, ack.rejected_rows), (5, 3));
    let fields: Vec<(u32, &str)> = ack.errors.iter().map(|e| (e.row, e.field.as_str())).collect();
    assert_eq!(fields, [(2, "q_db.avg"), (5, "channel"), (6, "osnr_db")]);
    assert!(
        ack.message.contains("3 rows rejected") && ack.message.contains("row 5 channel"),
        "{}",
        ack.message
    );
    assert_eq!(h.stored_rows(&OPTICAL_CHANNEL).await, 5);
}

#[tokio::test]
async fn retried_batch_is_acknowledged_again_and_stored_once_across_restart() {
    let mut h = Harness::start().await;
    let first = h
        .client()
        .await
        .send_batch(optical_batch(3, 12))
        .await
        .unwrap()
        .into_inner();
    assert!(!first.duplicate);
    let again = h
        .client()
        .await
        .send_batch(optical_batch(3, 12))
        .await
        .unwrap()
        .into_inner();
    assert!(again.duplicate);
    assert_eq!((again.status(), again.accepted_rows), (AckStatus::Accepted, 12));
    h.restart().await;
    let after_restart = h
        .client()
        .await
        .send_batch(optical_batch(3, 12))
        .await
        .unwrap()
        .into_inner();
    assert!(after_restart.duplicate);
    assert_eq!(h.stored_rows(&OPTICAL_CHANNEL).await, 12);
}

/// A batch sent again is answered with what was stored the first time, not with a count of the
/// copy: here the first copy had two invalid rows and the resent copy has none. It holds from
/// memory, after a restart that replays the log, and after one that reads `checkpoint.json`.
#[tokio::test]
async fn a_resent_batch_is_acknowledged_with_what_was_stored_the_first_time() {
    let mut h = Harness::start().await;
    let mut partial = optical_batch(5, 10);
    if let Some(cablewatch_proto::wire::Payload::Optical(p)) = partial.payload.as_mut()
        && let Some(rx) = p.rx_power_dbm.as_mut()
    {
        rx.avg[3] = f32::NAN;
        rx.avg[7] = f32::INFINITY;
    }
    async fn send(h: &Harness, b: Batch) -> cablewatch_proto::wire::BatchAck {
        h.client().await.send_batch(b).await.unwrap().into_inner()
    }
    let first = send(&h, partial).await;
    assert_eq!(
        (
            first.status(),
            first.accepted_rows,
            first.rejected_rows,
            first.duplicate
        ),
        (AckStatus::Partial, 8, 2, false)
    );
    let check = |ack: cablewatch_proto::wire::BatchAck, when: &str| {
        assert!(ack.duplicate, "{when}");
        assert_eq!(
            (ack.status(), ack.accepted_rows, ack.rejected_rows),
            (AckStatus::Partial, 8, 2),
            "{when}: {}",
            ack.message
        );
    };
    check(send(&h, optical_batch(5, 10)).await, "from memory");
    h.restart().await;
    check(send(&h, optical_batch(5, 10)).await, "after replaying the log");
    h.checkpoint().await;
    h.restart().await;
    check(
        send(&h, optical_batch(5, 10)).await,
        "after reading checkpoint.json",
    );
    assert_eq!(h.stored_rows(&OPTICAL_CHANNEL).await, 8);
}

#[tokio::test]
async fn batch_problems_get_status_codes_unary_and_rejected_acks_on_a_stream() {
    let h = Harness::start().await;
    let mut unknown = optical_batch(0, 4);
    if let Some(cablewatch_proto::wire::Payload::Optical(p)) = unknown.payload.as_mut() {
        p.cable_id = "nope".into();
    }
    let err = h.client().await.send_batch(unknown.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("nope"));

    let mut foreign = optical_batch(1, 4);
    foreign.station_id = "elsewhere".into();
    let err = h.client().await.send_batch(foreign).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    let mut ragged = optical_batch(2, 4);
    if let Some(cablewatch_proto::wire::Payload::Optical(p)) = ragged.payload.as_mut() {
        p.channel.pop();
    }
    let err = h.client().await.send_batch(ragged).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("channel"), "{}", err.message());

    // On a stream the bad batch is answered and the next one still goes through.
    let mut acks = h
        .client()
        .await
        .stream_batches(tokio_stream::iter([unknown, optical_batch(5, 4)]))
        .await
        .unwrap()
        .into_inner();
    let first = acks.next().await.unwrap().unwrap();
    assert_eq!(first.status(), AckStatus::Rejected);
    assert!(first.message.contains("NotFound"), "{}", first.message);
    let second = acks.next().await.unwrap().unwrap();
    assert_eq!((second.status(), second.sequence), (AckStatus::Accepted, 5));
    assert_eq!(h.stored_rows(&OPTICAL_CHANNEL).await, 4);
}

/// Ids of any length are answered with a bounded message: a megabyte station or cable id is named
/// by its first bytes and its length, with the code for a bad batch (not one that asks for a
/// retry), and the stream goes on.
#[tokio::test]
async fn oversized_ids_are_refused_with_a_bounded_message() {
    let h = Harness::start().await;
    let huge = "s".repeat(1 << 20);
    let mut long_station = optical_batch(0, 4);
    long_station.station_id = huge.clone();
    let err = h
        .client()
        .await
        .send_batch(long_station.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{:.200}", err.message());
    assert!(err.message().len() < 1_000, "{} bytes", err.message().len());
    assert!(err.message().contains("1048576 bytes"), "{}", err.message());

    let mut long_cable = optical_batch(1, 4);
    if let Some(cablewatch_proto::wire::Payload::Optical(p)) = long_cable.payload.as_mut() {
        p.cable_id = huge.clone();
    }
    let err = h.client().await.send_batch(long_cable).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{:.200}", err.message());
    assert!(err.message().len() < 1_000, "{} bytes", err.message().len());

    let mut acks = h
        .client()
        .await
        .stream_batches(tokio_stream::iter([long_station, optical_batch(2, 4)]))
        .await
        .unwrap()
        .into_inner();
    let first = acks.next().await.unwrap().unwrap();
    assert_eq!(first.status(), AckStatus::Rejected);
    assert!(first.message.len() < 1_000, "{} bytes", first.message.len());
    let second = acks.next().await.unwrap().unwrap();
    assert_eq!((second.status(), second.sequence), (AckStatus::Accepted, 2));
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let mut h = Harness::start().await;
    let url = h.collector.as_ref().unwrap().url();
    h.collector.take().unwrap().shutdown().await.unwrap();
    let result =
        cablewatch_proto::wire::v1::telemetry_ingest_client::TelemetryIngestClient::connect(url).await;
    assert!(result.is_err(), "still accepting connections after shutdown");
}

#[tokio::test]
async fn plain_text_off_loopback_is_refused() {
    let mut config = CollectorConfig::loopback(std::env::temp_dir());
    config.listen = "0.0.0.0:0".parse().unwrap();
    let err = cablewatch_collector::start(config).await.unwrap_err();
    assert!(err.to_string().contains("0.0.0.0"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_buffer_budget_batches_are_asked_to_retry_and_nothing_is_dropped() {
    let h = Harness::start_with(|c| {
        c.limits.max_buffered_rows = 30;
        c.flush_rows = 1_000_000;
        c.flush_interval = std::time::Duration::from_secs(3600);
    })
    .await;
    let mut client = h.client().await;
    let first = client
        .send_batch(optical_batch(0, 16))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.status(), AckStatus::Accepted);

    // On a stream the refusal is an ack asking for a retry; the stream stays open.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut acks = client
        .stream_batches(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    tx.send(optical_batch(1, 16)).await.unwrap();
    let refused = acks.next().await.unwrap().unwrap();
    assert_eq!(refused.status(), AckStatus::RetryLater);
    assert!(refused.retry_after_ms > 0 && refused.accepted_rows == 0);

    // The refusal asked for a checkpoint; once it has run, the same batch goes through.
    let store = h.collector.as_ref().unwrap().store().clone();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while store.buffered_rows().unwrap() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint after the overload"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tx.send(optical_batch(1, 16)).await.unwrap();
    let retried = acks.next().await.unwrap().unwrap();
    assert_eq!((retried.status(), retried.sequence), (AckStatus::Accepted, 1));

    // Unary callers get RESOURCE_EXHAUSTED with the wait in the message.
    let err = client.send_batch(optical_batch(2, 16)).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(err.message().contains("retry in"), "{}", err.message());
    assert_eq!(h.collector.as_ref().unwrap().ingest().overload_rejections(), 2);

    assert_eq!(
        h.stored_rows(&OPTICAL_CHANNEL).await,
        32,
        "accepted rows stored once, refused ones not at all"
    );
}

/// The buffered-rows budget holds with batches stored concurrently (a stream's pipeline): what is
/// buffered never passes it (before reservations, sixteen pipelined batches all passed the same
/// check), and a batch larger than the whole budget is told to split it, not to retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_buffer_budget_holds_under_pipelined_batches_and_too_large_ones_are_told_to_split() {
    const BUDGET: usize = 2_000;
    let h = Harness::start_with(|c| {
        c.limits.max_buffered_rows = BUDGET;
        c.flush_rows = 1_000_000;
        c.flush_interval = std::time::Duration::from_secs(3600);
    })
    .await;
    // A refusal asks for a checkpoint, which empties the buffers: watch them throughout.
    let store = h.collector.as_ref().unwrap().store().clone();
    let watching = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = {
        let (store, watching) = (store.clone(), watching.clone());
        tokio::spawn(async move {
            let mut peak = 0;
            while watching.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(store.buffered_rows().unwrap());
                tokio::task::yield_now().await;
            }
            peak
        })
    };
    let batches: Vec<Batch> = (0..64).map(|s| optical_batch(s, 100)).collect();
    let mut acks = h
        .client()
        .await
        .stream_batches(tokio_stream::iter(batches))
        .await
        .unwrap()
        .into_inner();
    let mut accepted = 0;
    while let Some(ack) = acks.next().await {
        let ack = ack.unwrap();
        if ack.status() == AckStatus::Accepted {
            accepted += ack.accepted_rows as usize;
        } else {
            assert_eq!(ack.status(), AckStatus::RetryLater);
        }
    }
    watching.store(false, std::sync::atomic::Ordering::Relaxed);
    let peak = watcher.await.unwrap();
    assert!(
        peak <= BUDGET,
        "{peak} rows buffered against a budget of {BUDGET}"
    );
    assert!(accepted >= BUDGET / 2, "only {accepted} rows admitted");
    assert_eq!(
        h.stored_rows(&OPTICAL_CHANNEL).await,
        accepted,
        "every accepted row stored"
    );

    let err = h
        .client()
        .await
        .send_batch(optical_batch(100, BUDGET + 1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange, "{}", err.message());
    assert!(err.message().contains("split"), "{}", err.message());
}

#[tokio::test]
async fn health_says_serving_and_reflection_lists_the_services() {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let h = Harness::start().await;
    let url = h.collector.as_ref().unwrap().url();
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel.clone());
    let check = health
        .check(HealthCheckRequest {
            service: "cablewatch.telemetry.v1.TelemetryIngest".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        check.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );

    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        responses.next().await.unwrap().unwrap().message_response
    else {
        panic!("no service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"cablewatch.telemetry.v1.TelemetryIngest".to_owned()),
        "{names:?}"
    );
    assert!(names.contains(&"grpc.health.v1.Health".to_owned()), "{names:?}");
}

pub(crate) async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

pub(crate) fn metric(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {series} in\n{body}"))
}

#[tokio::test]
async fn admin_port_serves_metrics_liveness_and_readiness() {
    let h = Harness::start().await;
    let admin = h.collector.as_ref().unwrap().admin_addr().unwrap();
    let mut client = h.client().await;
    client.send_batch(optical_batch(0, 10)).await.unwrap();
    let mut partial = optical_batch(1, 4);
    if let Some(cablewatch_proto::wire::Payload::Optical(p)) = partial.payload.as_mut() {
        p.channel[0] = 99;
    }
    client.send_batch(partial).await.unwrap();
    client.send_batch(optical_batch(0, 10)).await.unwrap(); // a retry

    let (status, body) = http_get(admin, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(
        metric(&body, "cablewatch_rows_accepted_total{station=\"south\"}"),
        13.0
    );
    assert_eq!(
        metric(&body, "cablewatch_rows_rejected_total{station=\"south\"}"),
        1.0
    );
    assert_eq!(
        metric(
            &body,
            "cablewatch_batches_total{station=\"south\",outcome=\"duplicate\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &body,
            "cablewatch_batches_total{station=\"south\",outcome=\"partial\"}"
        ),
        1.0
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let seen = metric(&body, "cablewatch_station_last_seen_seconds{station=\"south\"}");
    assert!((now - seen).abs() < 60.0, "last seen {seen}, now {now}");
    let syncs = metric(&body, "cablewatch_wal_sync_seconds_count");
    assert!(syncs >= 1.0);
    assert_eq!(
        metric(&body, "cablewatch_wal_sync_seconds_bucket{le=\"+Inf\"}"),
        syncs,
        "the histogram's last bucket counts every sync"
    );
    assert_eq!(metric(&body, "cablewatch_wal_quarantined_segments"), 0.0);
    assert_eq!(
        metric(
            &body,
            "cablewatch_overload_rejections_total{budget=\"free_disk\"}"
        ),
        0.0
    );
    assert!(metric(&body, "cablewatch_free_disk_bytes") > 0.0);
    assert_eq!(metric(&body, "cablewatch_buffered_rows"), 13.0);
    assert!(metric(&body, "cablewatch_backlog_bytes") > 0.0);
    assert_eq!(metric(&body, "cablewatch_admitting"), 1.0);

    h.checkpoint().await;
    let (_, body) = http_get(admin, "/metrics").await;
    assert_eq!(metric(&body, "cablewatch_buffered_rows"), 0.0);
    assert_eq!(metric(&body, "cablewatch_backlog_bytes"), 0.0);
    assert_eq!(metric(&body, "cablewatch_checkpoints_total"), 1.0);
    assert!(
        metric(&body, "cablewatch_data_bytes") > 0.0,
        "the part written counts"
    );
    assert_eq!(http_get(admin, "/livez").await.0, 200);
    assert_eq!(http_get(admin, "/readyz").await.0, 200);
}

/// Shutdown while stations stream: batches being stored are acknowledged and stored once, later
/// ones are refused with UNAVAILABLE, an idle stream is ended rather than holding the collector
/// open, and the final checkpoint leaves the log empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_in_flight_batches_and_ends_idle_streams() {
    const ROWS: usize = 16;
    let mut h = Harness::start().await;
    let collector = h.collector.take().unwrap();
    let url = collector.url();

    let mut idle = TelemetryIngestClient::connect(url.clone()).await.unwrap();
    let (idle_tx, idle_rx) = tokio::sync::mpsc::channel(1);
    let mut idle_acks = idle
        .stream_batches(tokio_stream::wrappers::ReceiverStream::new(idle_rx))
        .await
        .unwrap()
        .into_inner();
    idle_tx.send(optical_batch(10, ROWS)).await.unwrap();
    assert_eq!(
        idle_acks.next().await.unwrap().unwrap().status(),
        AckStatus::Accepted
    );

    let ranges = [20_000..40_000u64, 40_000..60_000, 60_000..80_000];
    let busy: Vec<_> = ranges
        .iter()
        .map(|r| tokio::spawn(stream_ledger(url.clone(), r.clone(), ROWS)))
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let stations = collector.ingest().metrics().stations();
        let accepted = stations
            .get("south")
            .and_then(|c| c.batches.get("accepted").copied())
            .unwrap_or(0);
        if accepted >= 60 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "load never started");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    tokio::time::timeout(std::time::Duration::from_secs(30), collector.shutdown())
        .await
        .expect("shutdown finishes although a station holds an idle stream open")
        .unwrap();

    let end = idle_acks.next().await;
    assert!(
        matches!(&end, Some(Err(s)) if s.code() == Code::Unavailable),
        "idle stream ended with UNAVAILABLE: {end:?}"
    );
    let mut ledger = vec![10];
    for (client, range) in busy.into_iter().zip(&ranges) {
        let (acked, _) = client.await.unwrap();
        assert!(
            acked.len() < range.clone().count(),
            "shutdown interrupted the load"
        );
        ledger.extend(acked);
    }
    let counts = rows_per_sequence(&stored(&h.data(), &OPTICAL_CHANNEL), ROWS);
    for seq in &ledger {
        assert_eq!(
            counts.get(seq),
            Some(&ROWS),
            "acknowledged batch {seq} stored once"
        );
    }
    assert!(counts.values().all(|&n| n == ROWS));
    assert_eq!(
        wal_log_bytes(&h.data()),
        0,
        "the final checkpoint leaves the log empty"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_disk_budget_batches_are_refused_counted_and_readiness_drops() {
    let h = Harness::start_with(|c| c.limits.max_data_bytes = Some(20_000)).await;
    let mut client = h.client().await;
    let mut accepted = 0;
    let mut refusal = None;
    for seq in 0..100 {
        match client.send_batch(optical_batch(seq, 16)).await {
            Ok(ack) => accepted += ack.into_inner().accepted_rows as usize,
            Err(status) => {
                refusal = Some(status);
                break;
            }
        }
    }
    let refusal = refusal.expect("the data budget is reached within 100 batches");
    assert_eq!(refusal.code(), Code::ResourceExhausted);
    assert!(
        refusal.message().contains("data-directory") && refusal.message().contains("retry in"),
        "{}",
        refusal.message()
    );
    assert!(accepted > 0);
    let collector = h.collector.as_ref().unwrap();
    assert_eq!(collector.ingest().admission().refusals(), [0, 0, 0, 1]);
    let admin = collector.admin_addr().unwrap();
    assert_eq!(http_get(admin, "/readyz").await.0, 503);
    let (_, body) = http_get(admin, "/metrics").await;
    assert_eq!(
        metric(
            &body,
            "cablewatch_batches_total{station=\"south\",outcome=\"over_data_bytes\"}"
        ),
        1.0
    );
    assert_eq!(metric(&body, "cablewatch_disk_ok"), 0.0);
    assert_eq!(
        h.stored_rows(&OPTICAL_CHANNEL).await,
        accepted,
        "what was accepted before the budget filled is kept"
    );
}
