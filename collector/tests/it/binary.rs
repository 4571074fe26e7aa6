use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use cablewatch_proto::{
    tables::OPTICAL_CHANNEL,
    wire::{AckStatus, v1::telemetry_ingest_client::TelemetryIngestClient},
};

use crate::{binary_setup, optical_batch, rows_per_sequence, stored, stream_ledger, wal_log_bytes};

fn spawn(dir: &std::path::Path, port: u16) -> std::process::Child {
    spawn_with(dir, port, &[])
}

/// [`spawn`] with `extra` arguments.
fn spawn_with(dir: &std::path::Path, port: u16, extra: &[&str]) -> std::process::Child {
    collector_command(dir, port)
        .args(["--flush-interval-s", "3600", "--flush-rows", "100000000"])
        .args(extra)
        .spawn()
        .unwrap()
}

/// The collector binary in `dir` on `port` with the test topology, its log appended to
/// `dir/collector.log`.
pub(crate) fn collector_command(dir: &std::path::Path, port: u16) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cablewatch-collector"));
    cmd.current_dir(dir)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--data-dir", "data", "--topology", "topology.toml"])
        .args(["--admin-listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("collector.log"))
                .unwrap(),
        );
    cmd
}

async fn connect(
    url: &str,
    child: &mut std::process::Child,
) -> TelemetryIngestClient<tonic::transport::Channel> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match TelemetryIngestClient::connect(url.to_owned()).await {
            Ok(c) => return c,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => {
                let _ = child.kill();
                panic!("collector did not start listening: {e}");
            }
        }
    }
}

/// Sends batch `seq` of `rows` rows and returns its acknowledgement.
async fn send(
    client: &mut TelemetryIngestClient<tonic::transport::Channel>,
    seq: u64,
    rows: usize,
) -> cablewatch_proto::wire::BatchAck {
    client
        .send_batch(optical_batch(seq, rows))
        .await
        .unwrap()
        .into_inner()
}

/// SIGTERM, then a clean exit.
async fn terminate(child: &mut std::process::Child) {
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = wait_exit(child).await;
    assert!(status.success(), "collector exited with {status}");
}

async fn wait_exit(child: &mut std::process::Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "collector did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The durability promise: every acknowledged row survives `kill -9` before any checkpoint, and is
/// stored exactly once after restart, even when the station resends what it is unsure of.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_rows_survive_kill_9_exactly_once() {
    let (dir, port) = binary_setup();
    let url = format!("http://127.0.0.1:{port}");
    let mut child = spawn(dir.path(), port);
    let mut client = connect(&url, &mut child).await;
    let mut ledger = 0u32;
    for seq in 0..20 {
        let ack = send(&mut client, seq, 50).await;
        assert_eq!(ack.status(), AckStatus::Accepted);
        ledger += ack.accepted_rows;
    }
    child.kill().unwrap(); // SIGKILL: no drain, no checkpoint
    let _ = child.wait();
    assert!(
        !dir.path().join("data/optical_channel").exists(),
        "no checkpoint should have run before the kill"
    );

    let mut child = spawn(dir.path(), port);
    let mut client = connect(&url, &mut child).await;
    // The station resends the last batches it is unsure of: acknowledged again, not stored again.
    for seq in 15..20 {
        let ack = send(&mut client, seq, 50).await;
        assert!(ack.duplicate, "batch {seq} after restart");
    }
    terminate(&mut child).await;
    let df = stored(&dir.path().join("data"), &OPTICAL_CHANNEL);
    assert_eq!(df.height() as u32, ledger, "every acknowledged row exactly once");
    assert_eq!(
        wal_log_bytes(&dir.path().join("data")),
        0,
        "the final checkpoint leaves no records in the log"
    );
}

/// The same promise under load: three stations stream concurrently when the collector is killed;
/// after a restart each resends everything it sent, and every batch in the ledger of acks is
/// stored exactly once (so is every resent batch).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_concurrent_load_loses_no_acknowledged_batch() {
    const ROWS: usize = 50;
    let (dir, port) = binary_setup();
    let url = format!("http://127.0.0.1:{port}");
    let mut child = spawn(dir.path(), port);
    drop(connect(&url, &mut child).await);
    let ranges = [0..4_000u64, 4_000..8_000, 8_000..12_000];
    let clients: Vec<_> = ranges
        .iter()
        .map(|r| tokio::spawn(stream_ledger(url.clone(), r.clone(), ROWS)))
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.kill().unwrap(); // SIGKILL while batches are in flight
    let _ = child.wait();
    let mut ledger = Vec::new();
    let mut sent = Vec::new();
    for (client, range) in clients.into_iter().zip(&ranges) {
        let (acked, last) = client.await.unwrap();
        assert!(
            acked.len() < range.clone().count(),
            "the kill should interrupt the load"
        );
        ledger.extend(acked);
        sent.push(range.start..last.map_or(range.start, |l| l + 1));
    }
    assert!(
        ledger.len() >= 10,
        "only {} batches acknowledged before the kill",
        ledger.len()
    );

    let mut child = spawn(dir.path(), port);
    drop(connect(&url, &mut child).await);
    for range in &sent {
        let (acked, _) = stream_ledger(url.clone(), range.clone(), ROWS).await;
        assert_eq!(acked.len(), range.clone().count(), "resend of {range:?}");
    }
    terminate(&mut child).await;

    let counts = rows_per_sequence(&stored(&dir.path().join("data"), &OPTICAL_CHANNEL), ROWS);
    for seq in &ledger {
        assert_eq!(counts.get(seq), Some(&ROWS), "acknowledged batch {seq}");
    }
    let resent: usize = sent.iter().map(|r| r.clone().count()).sum();
    assert_eq!(counts.len(), resent, "every resent batch stored");
    assert!(counts.values().all(|&n| n == ROWS), "no batch stored twice");
}

/// A log segment damaged on disk while the collector was down (a flipped byte in one record, garbage
/// appended): the collector still starts, quarantines the segment (the original kept for
/// inspection) and says so in its log, keeps every intact record, and the batch whose record was
/// lost is stored when the station resends it, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_and_torn_log_is_quarantined_and_the_rest_recovered() {
    const ROWS: usize = 50;
    let (dir, port) = binary_setup();
    let url = format!("http://127.0.0.1:{port}");
    let mut child = spawn(dir.path(), port);
    let mut client = connect(&url, &mut child).await;
    for seq in 0..5 {
        let ack = send(&mut client, seq, ROWS).await;
        assert_eq!(ack.status(), AckStatus::Accepted);
    }
    child.kill().unwrap();
    let _ = child.wait();

    let wal = dir.path().join("data/_wal");
    let segment = std::fs::read_dir(&wal)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "log") && p.metadata().unwrap().len() > 0)
        .expect("the acknowledged batches are in a log segment");
    let mut bytes = std::fs::read(&segment).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    bytes.extend_from_slice(&[0xab; 100]);
    std::fs::write(&segment, &bytes).unwrap();

    let mut child = spawn(dir.path(), port);
    let mut client = connect(&url, &mut child).await;
    let mut resent_stored = 0;
    for seq in 0..5 {
        let ack = send(&mut client, seq, ROWS).await;
        resent_stored += u32::from(!ack.duplicate);
    }
    assert_eq!(
        resent_stored, 1,
        "exactly the batch of the damaged record is stored again"
    );
    terminate(&mut child).await;

    let quarantined = std::fs::read_dir(wal.join("quarantine")).unwrap().count();
    assert_eq!(quarantined, 1, "the damaged segment is kept in quarantine");
    let log = std::fs::read_to_string(dir.path().join("collector.log")).unwrap();
    assert!(log.contains("quarantine"), "the log says so:\n{log}");
    let counts = rows_per_sequence(&stored(&dir.path().join("data"), &OPTICAL_CHANNEL), ROWS);
    assert_eq!(counts.len(), 5);
    assert!(counts.values().all(|&n| n == ROWS), "{counts:?}");
}

/// Batches 0..10 of `rows` rows in Parquet (the final checkpoint of a clean stop), 10..20 only in
/// the write-ahead log (the collector killed with SIGKILL).
async fn parquet_0_to_10_log_10_to_20(dir: &std::path::Path, port: u16, rows: usize) {
    let url = format!("http://127.0.0.1:{port}");
    for (batches, clean) in [(0..10, true), (10..20, false)] {
        let mut child = spawn(dir, port);
        let mut client = connect(&url, &mut child).await;
        for seq in batches {
            assert_eq!(send(&mut client, seq, rows).await.status(), AckStatus::Accepted);
        }
        if clean {
            terminate(&mut child).await;
        } else {
            child.kill().unwrap();
            let _ = child.wait();
        }
    }
}

/// A damaged or missing `checkpoint.json` does not stop the collector (which would then fail at
/// every start): the damaged file is moved aside and the log says so, the cut is rebuilt from the
/// write-ahead log and the parts, and every acknowledged row is stored exactly once, both the ones
/// already in Parquet and the ones only in the log when the collector was killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_or_missing_checkpoint_file_is_rebuilt_and_nothing_is_lost() {
    const ROWS: usize = 50;
    let (dir, port) = binary_setup();
    let url = format!("http://127.0.0.1:{port}");
    let wal = dir.path().join("data/_wal");
    let checkpoint = wal.join("checkpoint.json");
    parquet_0_to_10_log_10_to_20(dir.path(), port, ROWS).await;

    std::fs::write(&checkpoint, b"{\"cut\": 12, \"dedup\": {\"stati").unwrap();
    let mut child = spawn(dir.path(), port);
    let mut client = connect(&url, &mut child).await;
    // The batches replayed from the log are known again: their resends are duplicates.
    for seq in 15..20 {
        assert!(send(&mut client, seq, ROWS).await.duplicate, "batch {seq}");
    }
    for seq in 20..25 {
        assert_eq!(send(&mut client, seq, ROWS).await.status(), AckStatus::Accepted);
    }
    child.kill().unwrap();
    let _ = child.wait();
    let aside: Vec<_> = std::fs::read_dir(&wal)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("checkpoint.json.damaged-"))
        .collect();
    assert_eq!(aside.len(), 1, "the damaged file is kept aside");
    let log = std::fs::read_to_string(dir.path().join("collector.log")).unwrap();
    assert!(
        log.contains("checkpoint file is unusable"),
        "the log says so:\n{log}"
    );

    // Now missing, with parts in Parquet and batches 20..25 only in the log.
    std::fs::remove_file(&checkpoint).unwrap();
    let mut child = spawn(dir.path(), port);
    drop(connect(&url, &mut child).await);
    terminate(&mut child).await;
    let counts = rows_per_sequence(&stored(&dir.path().join("data"), &OPTICAL_CHANNEL), ROWS);
    assert_eq!(counts.len(), 25, "{counts:?}");
    assert!(
        counts.values().all(|&n| n == ROWS),
        "every batch exactly once: {counts:?}"
    );
}

/// Damage to `checkpoint.json` that still parses: its cut moved forward by a few records, as a
/// flipped digit would. Trusted, it would skip acknowledged records of the log; its checksum
/// shows the damage, and the collector rebuilds the cut from the log and the parts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_file_damaged_but_readable_is_not_trusted() {
    const ROWS: usize = 20;
    let (dir, port) = binary_setup();
    let url = format!("http://127.0.0.1:{port}");
    let checkpoint = dir.path().join("data/_wal/checkpoint.json");
    parquet_0_to_10_log_10_to_20(dir.path(), port, ROWS).await;
    let log = || std::fs::read_to_string(dir.path().join("collector.log")).unwrap();
    assert!(
        !log().contains("unusable"),
        "an intact checkpoint file is trusted:\n{}",
        log()
    );

    let mut file: serde_json::Value = serde_json::from_slice(&std::fs::read(&checkpoint).unwrap()).unwrap();
    let cut = file["cut"].as_u64().unwrap();
    file["cut"] = (cut + 5).into();
    std::fs::write(&checkpoint, serde_json::to_vec(&file).unwrap()).unwrap();
    let mut child = spawn(dir.path(), port);
    drop(connect(&url, &mut child).await);
    terminate(&mut child).await;
    assert!(
        log().contains("checksum does not match"),
        "the log says so:\n{}",
        log()
    );
    let counts = rows_per_sequence(&stored(&dir.path().join("data"), &OPTICAL_CHANNEL), ROWS);
    assert_eq!(counts.len(), 20, "every acknowledged batch is stored: {counts:?}");
    assert!(counts.values().all(|&n| n == ROWS), "once: {counts:?}");
}

/// Regression: a relative `--data-dir` (as in the README) failed creating partition directories,
/// because the parent of `data` is the empty path. Runs the real binary the way a user does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_with_relative_data_dir_stores_and_drains_on_sigterm() {
    let (dir, port) = binary_setup();
    let mut child = spawn(dir.path(), port);
    let mut client = connect(&format!("http://127.0.0.1:{port}"), &mut child).await;
    let ack = client.send_batch(optical_batch(0, 8)).await.unwrap().into_inner();
    assert_eq!((ack.status(), ack.accepted_rows), (AckStatus::Accepted, 8));

    terminate(&mut child).await;
    assert_eq!(stored(&dir.path().join("data"), &OPTICAL_CHANNEL).height(), 8);
}

/// A small file system mounted for one test, unmounted when dropped.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The disk fills for real during ingest (a 16 MiB tmpfs under the data directory, the free-disk
/// budget off so that the writes themselves fail): acknowledgements stop, the collector stays up,
/// ingest resumes once space returns without a restart, and every acknowledged batch is stored
/// exactly once. Needs root to mount; set CABLEWATCH_SKIP_MOUNT_TESTS=1 to skip it elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_acknowledgements_and_ingest_resumes_when_space_returns() {
    const ROWS: usize = 200;
    let (dir, port) = binary_setup();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
        .arg(&data)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        assert!(
            std::env::var_os("CABLEWATCH_SKIP_MOUNT_TESTS").is_some(),
            "mounting a tmpfs failed (needs root); set CABLEWATCH_SKIP_MOUNT_TESTS=1 to skip this test"
        );
        return;
    }
    let _unmount = Mounted(data.clone());
    // Leave about 3 MiB free: a few hundred kilobytes of log per ten batches.
    let filler = data.join("filler");
    {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 1 << 20];
        while f.write_all(&chunk).is_ok() {}
        let len = f.metadata().unwrap().len();
        f.set_len(len.saturating_sub(3 << 20)).unwrap();
    }
    let url = format!("http://127.0.0.1:{port}");
    let mut child = spawn_with(dir.path(), port, &["--min-free-disk-bytes", "0"]);
    let mut client = connect(&url, &mut child).await;
    let mut acked = Vec::new();
    let mut refused = 0;
    let mut seq = 0;
    // A station retries for as long as the disk is full: many refusals.
    while refused < 60 {
        assert!(seq < 2_000, "the disk never filled");
        match client.send_batch(optical_batch(seq, ROWS)).await {
            Ok(ack) if ack.get_ref().status() == AckStatus::Accepted => acked.push(seq),
            Ok(ack) => panic!("unexpected ack {:?}", ack.get_ref()),
            Err(_) => refused += 1,
        }
        seq += 1;
    }
    assert!(
        acked.len() >= 10,
        "only {} batches before the disk filled",
        acked.len()
    );
    assert!(child.try_wait().unwrap().is_none(), "the collector must stay up");
    // Each failed append does not leave a log segment behind (one per retry before).
    let segments = std::fs::read_dir(data.join("_wal"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("wal-"))
        .count();
    assert!(segments <= 2, "{segments} log segments after {refused} refusals");

    // Space returns: the same and later batches go through, without a restart.
    std::fs::remove_file(&filler).unwrap();
    let resume_from = seq;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut resumed = 0;
    while resumed < 20 {
        assert!(
            Instant::now() < deadline,
            "ingest did not resume; acknowledged {resumed} since"
        );
        match client.send_batch(optical_batch(seq, ROWS)).await {
            Ok(ack) if ack.get_ref().status() == AckStatus::Accepted => {
                acked.push(seq);
                resumed += 1;
                seq += 1;
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    terminate(&mut child).await;
    let counts = rows_per_sequence(&stored(&data, &OPTICAL_CHANNEL), ROWS);
    for s in &acked {
        assert_eq!(counts.get(s), Some(&ROWS), "acknowledged batch {s}");
    }
    assert!(
        counts.values().all(|&n| n == ROWS),
        "no batch stored twice: {counts:?}"
    );
    assert!(counts.keys().filter(|&&s| s >= resume_from).count() >= 20);
}
