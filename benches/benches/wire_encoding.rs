//! Decode and encode cost of a 1,000-row optical batch: the columnar contract (packed repeated
//! fields) against one message per row. Run: `cargo bench -p cablewatch-benches --bench wire_encoding`.
#![allow(missing_docs, clippy::print_stderr)]

use cablewatch_benches::{
    optical_payload,
    row_layout::{OpticalRows, to_rows},
};
use cablewatch_proto::wire::OpticalChannelSamples;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;
use std::hint::black_box;

const ROWS: usize = 1_000;

fn wire(c: &mut Criterion) {
    let columnar = optical_payload(ROWS);
    let rows = to_rows(&columnar);
    let columnar_bytes = columnar.encode_to_vec();
    let row_bytes = rows.encode_to_vec();
    eprintln!(
        "encoded size of {ROWS} rows: columnar {} bytes, row-per-message {} bytes",
        columnar_bytes.len(),
        row_bytes.len()
    );

    let mut g = c.benchmark_group("optical_1000_rows");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.bench_function("decode/columnar", |b| {
        b.iter(|| {
            OpticalChannelSamples::decode(black_box(columnar_bytes.as_slice())).map(|p| p.time_unix_ns.len())
        })
    });
    g.bench_function("decode/row_per_message", |b| {
        b.iter(|| OpticalRows::decode(black_box(row_bytes.as_slice())).map(|p| p.rows.len()))
    });
    g.bench_function("encode/columnar", |b| {
        b.iter(|| black_box(&columnar).encode_to_vec().len())
    });
    g.bench_function("encode/row_per_message", |b| {
        b.iter(|| black_box(&rows).encode_to_vec().len())
    });
    g.finish();
}

criterion_group!(benches, wire);
criterion_main!(benches);
