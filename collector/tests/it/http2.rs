//! HTTP/2 as other gRPC stacks speak it: a raw `h2` client that writes every message in its own
//! DATA frame, as fast as the connection takes them (tonic's own client packs several messages
//! into one frame, so it never meets the server's limits on small frames).

use bytes::{Bytes, BytesMut};
use cablewatch_proto::wire::{AckStatus, Batch, BatchAck, Direction, LatencyKind, LatencySamples, Payload};
use prost::Message as _;

use crate::{
    Harness, T0,
    ingest::{http_get, metric},
};

/// A one-row round-trip latency batch: about 70 bytes on the wire, the smallest useful batch.
fn latency_batch(sequence: u64) -> Batch {
    Batch {
        station_id: "south".into(),
        stream_epoch: 9,
        sequence,
        payload: Some(Payload::Latency(LatencySamples {
            cable_id: "c1".into(),
            time_unix_ns: vec![T0 + sequence as i64 * 1_000_000_000],
            fiber_pair: vec![1],
            direction: vec![Direction::BToA as i32],
            src_station: vec!["south".into()],
            dst_station: vec!["north".into()],
            kind: vec![LatencyKind::RoundTrip as i32],
            delay_us: vec![3_000.0],
            path_id: vec!["p".into()],
        })),
    }
}

/// `batch` as a gRPC length-prefixed message.
fn grpc_frame(batch: &Batch) -> Bytes {
    let message = batch.encode_to_vec();
    let mut frame = Vec::with_capacity(5 + message.len());
    frame.push(0);
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(&message);
    Bytes::from(frame)
}

/// The `StreamBatches` request to `authority`.
fn stream_request(authority: &str) -> http::Request<()> {
    http::Request::builder()
        .method("POST")
        .uri(format!(
            "http://{authority}/cablewatch.telemetry.v1.TelemetryIngest/StreamBatches"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap()
}

/// What a raw stream of `n` one-row batches got: acknowledgements accepted, and how the stream or
/// the connection ended (`None`: grpc-status 0).
async fn one_frame_per_batch(h: &Harness, n: u64) -> (u64, Option<String>) {
    let url = h.collector.as_ref().unwrap().url();
    let authority = url.trim_start_matches("http://").to_owned();
    let tcp = tokio::net::TcpStream::connect(&authority).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    let connection = tokio::spawn(async move { connection.await.map_err(|e| e.to_string()) });
    let mut client = client.ready().await.unwrap();
    let (response, mut body) = client.send_request(stream_request(&authority), false).unwrap();
    let reader = tokio::spawn(async move {
        let mut accepted = 0u64;
        let result = async {
            let response = response.await.map_err(|e| e.to_string())?;
            let mut acks = response.into_body();
            let mut buf = BytesMut::new();
            while let Some(chunk) = acks.data().await {
                let chunk = chunk.map_err(|e| e.to_string())?;
                let _ = acks.flow_control().release_capacity(chunk.len());
                buf.extend_from_slice(&chunk);
                while buf.len() >= 5 {
                    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
                    if buf.len() < 5 + len {
                        break;
                    }
                    let message = buf.split_to(5 + len);
                    let ack = BatchAck::decode(&message[5..]).map_err(|e| e.to_string())?;
                    accepted += u64::from(ack.status() == AckStatus::Accepted);
                }
            }
            let trailers = acks.trailers().await.map_err(|e| e.to_string())?;
            let status = trailers
                .as_ref()
                .and_then(|t| t.get("grpc-status"))
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none")
                .to_owned();
            Ok::<_, String>((status != "0").then(|| format!("grpc-status {status}")))
        }
        .await;
        (accepted, result.unwrap_or_else(Some))
    });
    for seq in 0..n {
        if body.send_data(grpc_frame(&latency_batch(seq)), false).is_err() {
            break;
        }
        if seq % 256 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let _ = body.send_data(Bytes::new(), true);
    let (accepted, end) = reader.await.unwrap();
    // The connection ends once no handle to it is left.
    drop((client, body));
    let end = match (end, connection.await.unwrap()) {
        (Some(stream), Err(conn)) => Some(format!("{stream}; connection: {conn}")),
        (end, _) => end,
    };
    (accepted, end)
}

/// A station whose gRPC stack writes each small batch in its own DATA frame and sends faster than
/// the batches are stored keeps its connection: the server's flow-control windows stop it before
/// HTTP/2's guard against floods of small frames would end the connection (`GOAWAY`,
/// `ENHANCE_YOUR_CALM`, "too_many_data_frames"), and every batch is acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_station_sending_each_small_batch_in_its_own_frame_keeps_its_connection() {
    let h = Harness::start().await;
    let n = 20_000;
    let (accepted, end) =
        tokio::time::timeout(std::time::Duration::from_secs(120), one_frame_per_batch(&h, n))
            .await
            .expect("20,000 small batches were not acknowledged within two minutes");
    assert_eq!(
        end, None,
        "the stream ended badly after {accepted} acknowledgements"
    );
    assert_eq!(accepted, n);
}

/// A station that goes away while acknowledgements are owed to it (here it never opens its HTTP/2
/// window for them, so none can be sent) is counted: its batches were stored, and it will resend
/// them and be told they are duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_whose_station_went_away_before_their_acknowledgement_are_counted() {
    let h = Harness::start().await;
    let collector = h.collector.as_ref().unwrap();
    let (url, admin) = (collector.url(), collector.admin_addr().unwrap());
    let authority = url.trim_start_matches("http://").to_owned();
    let tcp = tokio::net::TcpStream::connect(&authority).await.unwrap();
    let (client, connection) = h2::client::Builder::new()
        .initial_window_size(0)
        .handshake::<_, Bytes>(tcp)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let (response, mut body) = client.send_request(stream_request(&authority), false).unwrap();
    for seq in 0..500 {
        body.send_data(grpc_frame(&latency_batch(seq)), false).unwrap();
    }
    let stored = || async {
        let (_, page) = http_get(admin, "/metrics").await;
        (
            metric(
                &page,
                "cablewatch_batches_total{station=\"south\",outcome=\"accepted\"}",
            ),
            metric(&page, "cablewatch_acks_undelivered_total"),
        )
    };
    // Samples (stored, counted) every 100 ms, for up to 10 s, until `ready` holds of two equal
    // samples in a row.
    let settle = async |ready: fn((f64, f64)) -> bool| {
        let mut last = (-1.0, -1.0);
        for _ in 0..100 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let now = stored().await;
            if ready(now) && now == last {
                break;
            }
            last = now;
        }
        last
    };
    // The collector stores batches until the acknowledgements it cannot send fill its buffers.
    let (accepted, undelivered) = settle(|(stored, _)| stored > 0.0).await;
    assert!(
        accepted > 0.0 && accepted < 500.0,
        "{accepted} batches stored: the unread acknowledgements should have stopped the stream"
    );
    assert_eq!(undelivered, 0.0, "the station is still there");
    // The station goes away.
    connection.abort();
    drop((client, body, response));
    let counted = settle(|(_, counted)| counted > 0.0).await;
    assert_eq!(counted.0, accepted, "nothing is stored once the station has gone");
    // The acknowledgements the collector still held are counted: at least its acknowledgement
    // buffer's 64 (full, since none could be sent); the few that hyper had already taken into
    // HTTP/2's send buffer are lost with the connection, uncounted.
    assert!(
        counted.1 >= 64.0 && counted.1 <= accepted,
        "{} of {accepted} stored batches counted as unacknowledged",
        counted.1
    );
}
