//! Power cuts and `kill -9`: a killed process leaves the page cache, so `kill -9` never tests
//! what `fdatasync` promises. Here the collector runs under the crashfs shim (`collector/crashfs`),
//! which journals every sync and every name change under the data directory; after each SIGKILL the
//! test drops everything that was not durable ([`cablewatch_crashfs::cut`]) before the collector
//! starts again. Stations stream the whole time and resend what was not acknowledged; at the end
//! every acknowledged batch must be stored exactly once. The same cycles without the shim are the
//! `kill -9` check.

use std::{
    collections::{BTreeMap, BTreeSet},
    process::Command,
    time::Duration,
};

use cablewatch_proto::tables::OPTICAL_CHANNEL;

use crate::{binary_setup, rows_per_sequence, stored, stream_ledger};

/// Rows per batch: small, so that many batches (and syncs) fit in each run; batch times (5 s apart)
/// stay in the past for both streams' sequence ranges.
const ROWS: usize = 5;

/// The collector binary with frequent checkpoints (so that cuts land in them too), under the shim
/// when `shim` is given as (library, journal, stash).
fn spawn(
    dir: &std::path::Path,
    port: u16,
    shim: Option<(&std::path::Path, &std::path::Path, &std::path::Path)>,
) -> std::process::Child {
    let mut cmd = crate::binary::collector_command(dir, port);
    cmd.args(["--flush-rows", "400", "--flush-interval-s", "1"]);
    if let Some((lib, journal, stash)) = shim {
        cmd.env("LD_PRELOAD", lib)
            .env("CRASHFS_ROOT", dir.join("data"))
            .env("CRASHFS_JOURNAL", journal)
            .env("CRASHFS_STASH", stash);
    }
    cmd.spawn().unwrap()
}

/// What the collector was doing when the power went: the kind of its last journalled call and
/// the file it touched.
fn doing(last_line: &str) -> &'static str {
    let kind = last_line.split('\t').next().unwrap_or("");
    let file = if last_line.contains("checkpoint.json") {
        "checkpoint file"
    } else if last_line.contains("/_wal/") {
        "log"
    } else if last_line.contains("part-") {
        "part"
    } else {
        "directory"
    };
    match (kind, file) {
        ("SYNC", "log") => "log append synced",
        ("SYNC", "part") => "part synced",
        ("SYNC", _) => "checkpoint file synced",
        ("DSYNC", _) => "directory synced",
        ("RENAME", "part") => "part renamed",
        ("RENAME", _) => "checkpoint file renamed",
        ("CREATE", "log") => "log segment created",
        ("CREATE", "part") => "part created",
        ("CREATE", _) => "checkpoint file created",
        ("UNLINK", _) => "log segment deleted",
        ("MKDIR", _) => "directory created",
        _ => "starting",
    }
}

/// Whether the journal ends inside a checkpoint: a part was created after the last rename of the
/// checkpoint file (or none was ever committed).
fn in_checkpoint(journal: &std::path::Path) -> bool {
    let text = std::fs::read_to_string(journal).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let last = |pred: &dyn Fn(&str) -> bool| lines.iter().rposition(|l| pred(l));
    let part = last(&|l: &str| l.starts_with("CREATE") && l.contains(".part-"));
    let commit = last(&|l: &str| l.starts_with("RENAME") && l.contains("/checkpoint.json\t"));
    part > commit
}

/// Whether any optical-channel part is stored under `data`.
fn glob_has_files(data: &std::path::Path) -> bool {
    let dir = data.join(OPTICAL_CHANNEL.name);
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                return true;
            }
        }
    }
    false
}

/// The shim, built beside this test binary (a dev-dependency of this crate).
fn shim_library() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let lib = deps.join("libcablewatch_crashfs.so");
    assert!(lib.exists(), "{} was not built", lib.display());
    lib
}

/// The last lines the collector logged, for failure messages.
fn log_tail(dir: &std::path::Path) -> String {
    let log = std::fs::read_to_string(dir.join("collector.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

async fn wait_listening(url: &str, child: &mut std::process::Child, dir: &std::path::Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while cablewatch_proto::wire::v1::telemetry_ingest_client::TelemetryIngestClient::connect(url.to_owned())
        .await
        .is_err()
    {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the collector did not restart after a power cut: exited {status}; its log ends:\n{}",
                log_tail(dir)
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the collector did not start listening"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn cycles_from_env(var: &str) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(5)
}

/// `CABLEWATCH_POWER_CUTS` cuts (5 by default; the check is 100) at random moments of
/// streaming and checkpointing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_batches_survive_power_cuts_exactly_once() {
    kill_cycles(cycles_from_env("CABLEWATCH_POWER_CUTS"), true).await;
}

/// `CABLEWATCH_KILL_CYCLES` `kill -9` cycles (5 by default; the check is 100): the page
/// cache survives, so this checks the collector's own bookkeeping across restarts under load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_batches_survive_kill_9_cycles_exactly_once() {
    kill_cycles(cycles_from_env("CABLEWATCH_KILL_CYCLES"), false).await;
}

/// Runs the collector `cycles` times under two streams of one station, killing it with SIGKILL at
/// a random moment each time (and cutting the power when `power`), then checks that every
/// acknowledged batch is stored exactly once.
#[expect(
    clippy::print_stderr,
    reason = "the figures of a run, shown with --nocapture, are what the issue notes quote"
)]
async fn kill_cycles(cycles: usize, power: bool) {
    let what = if power { "power cuts" } else { "kill -9 cycles" };
    let lib = power.then(shim_library);
    let (dir, port) = binary_setup();
    let data = dir.path().join("data");
    let stash = dir.path().join("stash");
    std::fs::create_dir(&stash).unwrap();
    let url = format!("http://127.0.0.1:{port}");
    // Two streams of the same station, far apart in sequence numbers.
    // The two streams split the sequences whose batch times are in the past.
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let past = u64::try_from((now_ns - crate::T0) / (ROWS as i64 * 1_000_000_000)).unwrap();
    let mut next = [0u64, past / 2];
    let mut ledger = BTreeSet::new();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let (mut undone, mut files_cut, mut dropped) = (0, 0, 0);
    let mut cut_while: BTreeMap<&str, usize> = BTreeMap::new();
    let mut checkpoints_cut = 0;
    for cycle in 0..cycles {
        let durable = if power && data.exists() {
            cablewatch_crashfs::baseline(&data).unwrap()
        } else {
            Default::default()
        };
        let journal = dir.path().join(format!("journal-{cycle}"));
        let shim = lib
            .as_deref()
            .map(|lib| (lib, journal.as_path(), stash.as_path()));
        let mut child = spawn(dir.path(), port, shim);
        wait_listening(&url, &mut child, dir.path()).await;
        let streams: Vec<_> = next
            .iter()
            .map(|&from| tokio::spawn(stream_ledger(url.clone(), from..from + 100_000, ROWS)))
            .collect();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(150 + seed % 1_350)).await;
        child.kill().unwrap();
        let _ = child.wait();
        for (stream, from) in streams.into_iter().zip(next.iter_mut()) {
            let (acked, last) = stream.await.unwrap();
            let acked: BTreeSet<u64> = acked.into_iter().collect();
            if let Some(last) = last {
                // Resend from the first batch not acknowledged.
                *from = (*from..=last).find(|s| !acked.contains(s)).unwrap_or(last + 1);
            }
            ledger.extend(acked);
        }
        assert!(
            next[0] < past / 2 && next[1] < past,
            "the streams ran out of sequences whose batch times are in the past: {next:?} of {past}"
        );
        if !power {
            continue;
        }
        let report = cablewatch_crashfs::cut(&data, &journal, durable).unwrap();
        *cut_while.entry(doing(&report.last_line)).or_default() += 1;
        checkpoints_cut += usize::from(in_checkpoint(&journal));
        assert!(
            report.syncs > 0,
            "run {cycle}: the journal recorded no sync: the shim is not loaded"
        );
        undone += report.names_undone;
        files_cut += report.files_cut;
        dropped += report.bytes_dropped;
    }
    let mut child = spawn(dir.path(), port, None);
    wait_listening(&url, &mut child, dir.path()).await;
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "the collector's final start and stop: {status}; its log ends:\n{}",
        log_tail(dir.path())
    );
    eprintln!("{cycles} {what}: {} batches acknowledged", ledger.len());
    if power {
        eprintln!(
            "undone {undone} name changes, cut {files_cut} files, dropped {dropped} bytes not yet durable; \
             {checkpoints_cut} cuts inside a checkpoint; the last call before each cut: {cut_while:?}"
        );
    }
    assert!(
        ledger.len() >= cycles,
        "only {} batches acknowledged in {cycles} runs",
        ledger.len()
    );
    let any_part = glob_has_files(&data);
    assert!(
        any_part || ledger.is_empty(),
        "{} batches acknowledged and no part stored at all",
        ledger.len()
    );
    let counts = rows_per_sequence(&stored(&data, &OPTICAL_CHANNEL), ROWS);
    for seq in &ledger {
        assert_eq!(counts.get(seq), Some(&ROWS), "acknowledged batch {seq}");
    }
    assert!(counts.values().all(|&n| n == ROWS), "a batch stored twice");
}
