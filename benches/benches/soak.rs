//! Soak: the collector binary for an hour (by default) at half its durable throughput, with
//! stations that connect, drop their connection, resend what was not acknowledged, give up on
//! batches, restart their numbering and send bad rows, as stations at a landing station do over a
//! year. Every `--sample-s` seconds it prints the collector's resident memory, the size of its state
//! (`checkpoint.json`, the write-ahead log) and the refusals it counted; at the end it compares the
//! first and last tenths of the run and the collector's counters with what the stations saw.
//!
//! ```text
//! calibrate: --stations streams, as fast as acknowledgements come, for --calibrate-s seconds
//!            -> durable rows/s D
//! soak:      the same stations paced to D/2 in all, each with its own misbehaviour, for --minutes
//!            sampler: /proc/<collector>/status, data/_wal (bytes, files), /metrics on the admin port
//! ```
//!
//! Run: `cargo build --release -p cablewatch-collector && cargo bench -p cablewatch-benches --bench
//! soak -- [--minutes 60] [--sample-s 30] [--stations 8] [--rows 192] [--calibrate-s 20]
//! [--keep-minutes 10] [--collector PATH]`. Parts older than `--keep-minutes` are deleted as an
//! archive job would ship them away, so the disk holds a bounded window of Parquet.
#![allow(missing_docs, clippy::print_stdout, clippy::unwrap_used)]

use std::{
    collections::{BTreeMap, VecDeque},
    io::{Read as _, Write as _},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use cablewatch_proto::wire::{
    AckStatus, Batch, Direction, IntervalStats, OpticalChannelSamples, Payload,
    v1::telemetry_ingest_client::TelemetryIngestClient,
};
use tokio_stream::StreamExt as _;

/// 2026-01-01T00:00:00Z: rows start here and advance one second per 192 rows of a station (time
/// runs about a hundred times faster than the clock, so day partitions turn over every quarter
/// hour or so).
const T0: i64 = 1_767_225_600_000_000_000;
/// Channels per fibre pair in the soak's channel plan; two pairs report per second.
const CHANNELS: usize = 96;

struct Args {
    minutes: f64,
    sample_s: f64,
    stations: usize,
    rows: usize,
    calibrate_s: f64,
    keep_minutes: f64,
    collector: PathBuf,
}

fn args() -> Args {
    let mut a = Args {
        minutes: 60.0,
        sample_s: 30.0,
        stations: 8,
        rows: 2 * CHANNELS,
        calibrate_s: 20.0,
        keep_minutes: 10.0,
        collector: std::env::current_exe()
            .unwrap()
            .parent()
            .and_then(Path::parent)
            .unwrap()
            .join("cablewatch-collector"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        let num = |v: String| -> f64 { v.parse().unwrap_or_else(|_| panic!("{v} is not a number")) };
        match flag.as_str() {
            "--minutes" => a.minutes = num(value()),
            "--sample-s" => a.sample_s = num(value()),
            "--stations" => a.stations = num(value()) as usize,
            "--rows" => a.rows = num(value()) as usize,
            "--calibrate-s" => a.calibrate_s = num(value()),
            "--keep-minutes" => a.keep_minutes = num(value()),
            "--collector" => a.collector = PathBuf::from(value()),
            // cargo bench passes --bench.
            _ => {}
        }
    }
    assert!(
        a.collector.exists(),
        "{} not found: cargo build --release -p cablewatch-collector first, or give --collector",
        a.collector.display()
    );
    assert!(
        a.stations >= 2 && a.stations.is_multiple_of(2),
        "--stations must be even (two per cable)"
    );
    a
}

/// Stations `s0..sN`, cable `cK` between `s(2K)` and `s(2K+1)`.
fn topology(stations: usize) -> String {
    let mut t = String::new();
    for s in 0..stations {
        t.push_str(&format!(
            "[[station]]\nid = \"s{s}\"\nname = \"S{s}\"\nlatitude = {}.0\nlongitude = 0.0\n\n",
            s % 80
        ));
    }
    for c in 0..stations / 2 {
        t.push_str(&format!(
            "[[cable]]\nid = \"c{c}\"\nname = \"C{c}\"\na_station = \"s{}\"\nb_station = \"s{}\"\n\
             length_km = 600.0\nfiber_pairs = 2\nrepeater_km = [{}]\n\
             channel_plan = {{ channels = {CHANNELS}, first_thz = 191.35, spacing_ghz = 50.0 }}\n\n",
            2 * c,
            2 * c + 1,
            (1..10)
                .map(|k| format!("{}.0", 60 * k))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    t
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Rows `first..first + rows` of station `station`'s own series; `bad` makes one row invalid.
fn batch(station: usize, epoch: u64, sequence: u64, first: u64, rows: usize, bad: bool) -> Batch {
    let stat = |base: f32| {
        let avg: Vec<f32> = (0..rows).map(|i| base + (i % 7) as f32 * 0.01).collect();
        Some(IntervalStats {
            min: avg.iter().map(|v| v - 0.1).collect(),
            max: avg.iter().map(|v| v + 0.1).collect(),
            avg,
        })
    };
    let row = |i: usize| first as usize + i;
    let mut rx = stat(-12.0);
    if bad && let Some(s) = rx.as_mut() {
        s.avg[0] = f32::NAN;
    }
    Batch {
        station_id: format!("s{station}"),
        stream_epoch: epoch,
        sequence,
        payload: Some(Payload::Optical(OpticalChannelSamples {
            cable_id: format!("c{}", station / 2),
            interval_ns: 1_000_000_000,
            time_unix_ns: (0..rows)
                .map(|i| T0 + (row(i) / (2 * CHANNELS)) as i64 * 1_000_000_000)
                .collect(),
            fiber_pair: (0..rows).map(|i| 1 + ((row(i) / CHANNELS) % 2) as u32).collect(),
            // The B end reports A to B.
            direction: vec![
                if station % 2 == 1 {
                    Direction::AToB
                } else {
                    Direction::BToA
                } as i32;
                rows
            ],
            channel: (0..rows).map(|i| 1 + (row(i) % CHANNELS) as u32).collect(),
            rx_power_dbm: rx,
            tx_power_dbm: stat(1.0),
            osnr_db: stat(20.0),
            pre_fec_ber: Some(IntervalStats {
                avg: vec![1e-3; rows],
                min: vec![5e-4; rows],
                max: vec![2e-3; rows],
            }),
            q_db: stat(9.0),
            cd_ps_nm: stat(6000.0),
            dgd_ps: stat(1.0),
            pdl_db: stat(0.8),
            sop_roc_krad_s: stat(0.3),
        })),
    }
}

/// What the stations saw, summed over all of them.
#[derive(Default)]
struct Seen {
    sent: AtomicU64,
    accepted: AtomicU64,
    partial: AtomicU64,
    duplicate: AtomicU64,
    rejected_rows: AtomicU64,
    stored_rows: AtomicU64,
    retry_later: AtomicU64,
    drops: AtomicU64,
    gaps: AtomicU64,
    epochs: AtomicU64,
    connect_failures: AtomicU64,
    /// The last message of an acknowledgement that stored nothing, or of a broken stream.
    last_problem: std::sync::Mutex<String>,
}

fn add(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Ordering::Relaxed);
}

fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

/// Per-batch chances of a station's misbehaviour (per mille): drop the connection without
/// reading the acknowledgements in flight, give up on a batch, restart the numbering, send one bad
/// row.
const DROP: u64 = 2;
const GIVE_UP: u64 = 1;
const RENUMBER: u64 = 1;
const BAD_ROW: u64 = 2;

struct Station {
    id: usize,
    rows: usize,
    epoch: u64,
    next_seq: u64,
    next_row: u64,
    /// Sent and not yet acknowledged, oldest first.
    unacked: VecDeque<Batch>,
    rng: u64,
}

impl Station {
    fn roll(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % 1000
    }

    fn fresh(&mut self) -> Batch {
        if self.roll() < RENUMBER {
            self.epoch += 1;
            self.next_seq = 0;
        }
        let bad = self.roll() < BAD_ROW;
        let b = batch(self.id, self.epoch, self.next_seq, self.next_row, self.rows, bad);
        self.next_seq += 1;
        self.next_row += self.rows as u64;
        b
    }
}

/// One station for as long as `run` holds: connects, resends what is unacknowledged, streams new
/// batches at `batches_per_s` (as fast as acknowledged when `None`), with its misbehaviours.
async fn station(
    url: String,
    mut st: Station,
    batches_per_s: Option<f64>,
    misbehave: bool,
    run: Arc<AtomicBool>,
    seen: Arc<Seen>,
) {
    let window = 32;
    let mut next_at = Instant::now();
    while run.load(Ordering::Relaxed) {
        let Ok(mut client) = TelemetryIngestClient::connect(url.clone()).await else {
            add(&seen.connect_failures, 1);
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let (tx, rx) = tokio::sync::mpsc::channel(window);
        let Ok(response) = client
            .stream_batches(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
        else {
            add(&seen.connect_failures, 1);
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let mut acks = response.into_inner();
        // Resend everything unacknowledged (some may be stored already: duplicates).
        let mut in_flight: VecDeque<Batch> = std::mem::take(&mut st.unacked);
        for b in &in_flight {
            if tx.send(b.clone()).await.is_err() {
                break;
            }
            add(&seen.sent, 1);
        }
        let mut dropped = false;
        'stream: while run.load(Ordering::Relaxed) {
            // Send while the window allows and the pace says so.
            while in_flight.len() < window && Instant::now() >= next_at {
                if misbehave && st.roll() < GIVE_UP {
                    // A batch the station gave up on: its sequence number is never sent.
                    st.next_seq += 1;
                    add(&seen.gaps, 1);
                }
                let epoch_before = st.epoch;
                let b = st.fresh();
                if b.stream_epoch != epoch_before {
                    add(&seen.epochs, 1);
                }
                if tx.send(b.clone()).await.is_err() {
                    break 'stream;
                }
                add(&seen.sent, 1);
                in_flight.push_back(b);
                if let Some(rate) = batches_per_s {
                    next_at += Duration::from_secs_f64(1.0 / rate);
                } else {
                    next_at = Instant::now();
                }
                if misbehave && st.roll() < DROP {
                    dropped = true;
                    break 'stream;
                }
            }
            let wait = next_at.saturating_duration_since(Instant::now());
            let ack = if in_flight.is_empty() {
                tokio::time::sleep(wait).await;
                continue;
            } else {
                match tokio::time::timeout(wait.max(Duration::from_millis(1)), acks.next()).await {
                    Err(_) => continue,
                    Ok(Some(Ok(ack))) => ack,
                    Ok(Some(Err(status))) => {
                        if let Ok(mut p) = seen.last_problem.lock() {
                            *p = format!("{status}");
                        }
                        break 'stream;
                    }
                    Ok(None) => break 'stream,
                }
            };
            // Acknowledgements come in order.
            let Some(b) = in_flight.pop_front() else {
                break 'stream;
            };
            debug_assert_eq!((b.stream_epoch, b.sequence), (ack.stream_epoch, ack.sequence));
            match ack.status() {
                AckStatus::RetryLater => {
                    add(&seen.retry_later, 1);
                    // Resend it and everything after it on a new stream, after the pause.
                    in_flight.push_front(b);
                    tokio::time::sleep(Duration::from_millis(u64::from(ack.retry_after_ms))).await;
                    break 'stream;
                }
                AckStatus::Rejected | AckStatus::Unspecified => {
                    if let Ok(mut p) = seen.last_problem.lock() {
                        p.clone_from(&ack.message);
                    }
                }
                _ if ack.duplicate => add(&seen.duplicate, 1),
                AckStatus::Accepted => add(&seen.accepted, 1),
                AckStatus::Partial => add(&seen.partial, 1),
            }
            if !ack.duplicate {
                add(&seen.stored_rows, u64::from(ack.accepted_rows));
                add(&seen.rejected_rows, u64::from(ack.rejected_rows));
            }
        }
        if dropped {
            add(&seen.drops, 1);
        }
        st.unacked = in_flight;
        drop(tx);
        drop(acks);
        if dropped {
            tokio::time::sleep(Duration::from_millis(u64::from(st.roll() as u32 * 2))).await;
        }
    }
}

fn status_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn dir_bytes(dir: &Path) -> (u64, usize) {
    let mut out = (0, 0);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                out.0 += m.len();
                out.1 += 1;
            }
        }
    }
    out
}

/// The admin port's `/metrics`, summed by family and label set as printed.
fn metrics(admin: u16) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", admin)) else {
        return out;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    for line in body.lines().filter(|l| l.starts_with("cablewatch_")) {
        if let Some((key, v)) = line.rsplit_once(' ')
            && let Ok(v) = v.parse::<f64>()
        {
            out.insert(key.to_owned(), v);
        }
    }
    out
}

/// Sum of the series of `family` whose labels contain `label` (all when empty).
fn sum(m: &BTreeMap<String, f64>, family: &str, label: &str) -> f64 {
    m.iter()
        .filter(|(k, _)| k.split('{').next() == Some(family) && (label.is_empty() || k.contains(label)))
        .map(|(_, v)| v)
        .sum()
}

/// Deletes parts older than `keep`, as an archive job that ships them away would.
fn ship_old_parts(data: &Path, keep: Duration) -> u64 {
    let mut removed = 0;
    let mut stack = vec![data.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                if p.file_name().is_some_and(|n| n != "_wal") {
                    stack.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "parquet")
                && m.modified()
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > keep)
                && std::fs::remove_file(&p).is_ok()
            {
                removed += m.len();
            }
        }
    }
    removed
}

/// The collector process, killed if the bench panics (its data directory goes with the bench's).
struct Collector(Child);

impl Drop for Collector {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn spawn_collector(a: &Args, dir: &Path, port: u16, admin: u16) -> Collector {
    Collector(
        Command::new(&a.collector)
            .current_dir(dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--admin-listen", &format!("127.0.0.1:{admin}")])
            .args(["--data-dir", "data", "--topology", "topology.toml"])
            .env("CABLEWATCH_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("collector.log")).unwrap())
            .spawn()
            .unwrap(),
    )
}

async fn wait_up(url: &str, child: &mut Child, dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TelemetryIngestClient::connect(url.to_owned()).await.is_err() {
        let log = || std::fs::read_to_string(dir.join("collector.log")).unwrap_or_default();
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the collector exited ({status}):\n{}", log());
        }
        assert!(
            Instant::now() < deadline,
            "the collector did not start:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn stations(a: &Args, seed: u64) -> Vec<Station> {
    (0..a.stations)
        .map(|id| Station {
            id,
            rows: a.rows,
            epoch: seed,
            next_seq: 0,
            next_row: seed * 200_000_000,
            unacked: VecDeque::new(),
            rng: 0x9e37_79b9_7f4a_7c15 ^ ((id as u64 + 1) * 0x2545_f491) ^ seed,
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let a = args();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("topology.toml"), topology(a.stations)).unwrap();
    let (port, admin) = (free_port(), free_port());
    let url = format!("http://127.0.0.1:{port}");
    let mut collector = spawn_collector(&a, dir.path(), port, admin);
    let child = &mut collector.0;
    let pid = child.id();
    wait_up(&url, child, dir.path()).await;
    let data = dir.path().join("data");

    // Calibration: as fast as the collector acknowledges, well-behaved.
    let run = Arc::new(AtomicBool::new(true));
    let seen = Arc::new(Seen::default());
    let tasks: Vec<_> = stations(&a, 1)
        .into_iter()
        .map(|st| {
            tokio::spawn(station(
                url.clone(),
                st,
                None,
                false,
                Arc::clone(&run),
                Arc::clone(&seen),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(a.calibrate_s)).await;
    let durable = get(&seen.stored_rows) as f64 / a.calibrate_s;
    run.store(false, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    assert!(
        durable > 0.0,
        "nothing was stored in the calibration: {}",
        seen.last_problem.lock().map(|p| p.clone()).unwrap_or_default()
    );
    let target = durable / 2.0;
    let per_station_batches = target / a.stations as f64 / a.rows as f64;
    println!(
        "calibration: {durable:.0} rows/s durable ({} stations, {}-row batches, {:.0} s); soak at {target:.0} rows/s ({per_station_batches:.1} batches/s per station) for {} min",
        a.stations, a.rows, a.calibrate_s, a.minutes
    );

    // Soak.
    let run = Arc::new(AtomicBool::new(true));
    let seen = Arc::new(Seen::default());
    let m0 = metrics(admin);
    let tasks: Vec<_> = stations(&a, 2)
        .into_iter()
        .map(|st| {
            tokio::spawn(station(
                url.clone(),
                st,
                Some(per_station_batches),
                true,
                Arc::clone(&run),
                Arc::clone(&seen),
            ))
        })
        .collect();
    let started = Instant::now();
    let total = Duration::from_secs_f64(a.minutes * 60.0);
    let keep = Duration::from_secs_f64(a.keep_minutes * 60.0);
    println!(
        "{:>6} {:>9} {:>9} {:>11} {:>9} {:>5} {:>9} {:>10} {:>8} {:>7} {:>6} {:>6}",
        "min",
        "rows/s",
        "RSS MB",
        "ckpt.json B",
        "WAL MB",
        "files",
        "parts MB",
        "retry_later",
        "rejected",
        "drops",
        "gaps",
        "epochs"
    );
    let mut samples: Vec<(f64, f64, u64, u64)> = Vec::new();
    let mut shipped = 0;
    let mut last_rows = 0;
    let mut last_t = 0.0;
    while started.elapsed() < total {
        tokio::time::sleep(Duration::from_secs_f64(a.sample_s)).await;
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the collector exited during the soak: {status}");
        }
        shipped += ship_old_parts(&data, keep);
        let t = started.elapsed().as_secs_f64();
        let rss = status_kb(pid, "VmRSS:") as f64 / 1024.0;
        let ckpt = std::fs::metadata(data.join("_wal/checkpoint.json")).map_or(0, |m| m.len());
        let (wal_b, segs) = dir_bytes(&data.join("_wal"));
        let (all_b, _) = dir_bytes(&data);
        let m = metrics(admin);
        let rows = get(&seen.stored_rows);
        println!(
            "{:>6.1} {:>9.0} {:>9.1} {:>11} {:>9.1} {:>5} {:>9.1} {:>10} {:>8} {:>7} {:>6} {:>6}",
            t / 60.0,
            (rows - last_rows) as f64 / (t - last_t),
            rss,
            ckpt,
            wal_b as f64 / 1e6,
            segs,
            (all_b - wal_b) as f64 / 1e6,
            sum(&m, "cablewatch_overload_rejections_total", "")
                - sum(&m0, "cablewatch_overload_rejections_total", ""),
            sum(&m, "cablewatch_rows_rejected_total", "") - sum(&m0, "cablewatch_rows_rejected_total", ""),
            get(&seen.drops),
            get(&seen.gaps),
            get(&seen.epochs),
        );
        samples.push((t, rss, ckpt, wal_b));
        (last_rows, last_t) = (rows, t);
    }
    run.store(false, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    // Let the last acknowledgements be counted before the final scrape.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let m = metrics(admin);
    let d = |family: &str, label: &str| sum(&m, family, label) - sum(&m0, family, label);
    let secs = started.elapsed().as_secs_f64();
    let tenth = samples.len().div_ceil(10).max(1);
    let first: Vec<_> = samples.iter().take(tenth).collect();
    let last: Vec<_> = samples.iter().rev().take(tenth).collect();
    let med = |v: &[&(f64, f64, u64, u64)], f: fn(&(f64, f64, u64, u64)) -> f64| {
        median(v.iter().map(|s| f(s)).collect())
    };
    println!(
        "\nsummary over {:.1} min: {:.0} rows/s stored on average ({} rows), {:.0} MB of parts shipped away",
        secs / 60.0,
        get(&seen.stored_rows) as f64 / secs,
        get(&seen.stored_rows),
        shipped as f64 / 1e6
    );
    println!(
        "  collector RSS MB: first tenth median {:.1}, last tenth median {:.1}, max {:.1}, peak (VmHWM) {:.1}",
        med(&first, |s| s.1),
        med(&last, |s| s.1),
        samples.iter().map(|s| s.1).fold(0.0, f64::max),
        status_kb(pid, "VmHWM:") as f64 / 1024.0
    );
    println!(
        "  checkpoint.json bytes: first tenth median {:.0}, last tenth median {:.0}, max {}",
        med(&first, |s| s.2 as f64),
        med(&last, |s| s.2 as f64),
        samples.iter().map(|s| s.2).max().unwrap_or(0)
    );
    println!(
        "  write-ahead log MB: first tenth median {:.1}, last tenth median {:.1}, max {:.1}",
        med(&first, |s| s.3 as f64 / 1e6),
        med(&last, |s| s.3 as f64 / 1e6),
        samples.iter().map(|s| s.3).max().unwrap_or(0) as f64 / 1e6
    );
    println!(
        "  stations saw: {} sent, {} accepted, {} partial, {} duplicate, {} RETRY_LATER, {} rows rejected, {} drops, {} gaps, {} renumberings, {} failed connects",
        get(&seen.sent),
        get(&seen.accepted),
        get(&seen.partial),
        get(&seen.duplicate),
        get(&seen.retry_later),
        get(&seen.rejected_rows),
        get(&seen.drops),
        get(&seen.gaps),
        get(&seen.epochs),
        get(&seen.connect_failures)
    );
    println!(
        "  collector counted: {} accepted, {} partial, {} duplicate, {} retry_later ({} overload refusals), {} rows rejected, {} rows stored, {} broken streams, {} acknowledgements undelivered",
        d("cablewatch_batches_total", "outcome=\"accepted\""),
        d("cablewatch_batches_total", "outcome=\"partial\""),
        d("cablewatch_batches_total", "outcome=\"duplicate\""),
        d("cablewatch_batches_total", "outcome=\"retry_later\""),
        d("cablewatch_overload_rejections_total", ""),
        d("cablewatch_rows_rejected_total", ""),
        d("cablewatch_rows_accepted_total", ""),
        d("cablewatch_stream_errors_total", "reason=\"transport\""),
        d("cablewatch_acks_undelivered_total", "")
    );
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    let status = child.wait().unwrap();
    println!("  collector stopped: {status}");
}
