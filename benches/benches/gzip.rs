//! Gzip of image data: one block through the deflate backend the ova crate uses
//! (zlib-rs), and whole streams through the parallel writer.
//!
//! `cargo bench -p cloudimg-benches --bench gzip`
//! (crates/ova/benches/gzip.rs compares the writer with gzip and pigz.)

use cloudimg_ova::gzip::{GzOptions, ParGzWriter};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write;
use std::time::Duration;

fn blocks(c: &mut Criterion) {
    let block = cloudimg_benches::disk_like(256 * 1024);
    let mut g = c.benchmark_group("gzip_block_256KiB");
    g.throughput(Throughput::Bytes(block.len() as u64));
    for level in [1u32, 6, 9] {
        g.bench_with_input(BenchmarkId::new("level", level), &block, |b, d| {
            b.iter(|| {
                let mut e = GzEncoder::new(Vec::with_capacity(d.len()), Compression::new(level));
                e.write_all(d).expect("compress");
                e.finish().expect("finish").len()
            })
        });
    }
    g.finish();
}

fn streams(c: &mut Criterion) {
    let data = cloudimg_benches::disk_like(16 << 20);
    let mut g = c.benchmark_group("gzip_stream_16MiB");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(data.len() as u64));
    for jobs in [1usize, 2] {
        g.bench_with_input(
            BenchmarkId::new("par_gz_level6_jobs", jobs),
            &data,
            |b, d| {
                b.iter(|| {
                    let opts = GzOptions {
                        level: 6,
                        jobs,
                        ..GzOptions::default()
                    };
                    let mut w =
                        ParGzWriter::new(Vec::with_capacity(d.len()), opts).expect("writer");
                    w.write_all(d).expect("compress");
                    w.finish().expect("finish").len()
                })
            },
        );
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    targets = blocks, streams
}
criterion_main!(benches);
