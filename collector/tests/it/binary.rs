use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use cablewatch_proto::{
    tables::OPTICAL_CHANNEL,
    wire::{AckStatus, v1::telemetry_ingest_client::TelemetryIngestClient},
};

use crate::{TOPOLOGY, optical_batch, stored};

/// Regression: a relative `--data-dir` (as in the README) failed creating partition directories,
/// because the parent of `data` is the empty path. Runs the real binary the way a user does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_with_relative_data_dir_stores_and_drains_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("topology.toml"), TOPOLOGY).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cablewatch-collector"))
        .current_dir(dir.path())
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            "data",
            "--topology",
            "topology.toml",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut client = loop {
        match TelemetryIngestClient::connect(url.clone()).await {
            Ok(c) => break c,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => {
                let _ = child.kill();
                panic!("collector did not start listening: {e}");
            }
        }
    };
    let ack = client.send_batch(optical_batch(0, 8)).await.unwrap().into_inner();
    assert_eq!((ack.status(), ack.accepted_rows), (AckStatus::Accepted, 8));

    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "collector did not exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "collector exited with {status}");
    assert_eq!(stored(&dir.path().join("data"), &OPTICAL_CHANNEL).height(), 8);
}
