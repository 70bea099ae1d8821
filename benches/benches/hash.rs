//! Digests of upload segments: MD5 (Swift ETags), SHA-256 and SHA-512 (Glance
//! os_hash_value), and the three at once as the pipeline computes them.
//!
//! `cargo bench -p cloudimg-benches --bench hash`
//!
//! `md5_whole_and_segment` is the upload's pair of MD5s (whole object, current segment)
//! computed together; `md5_twice` is what the pair costs done one after the other.

use cloudimg_pipeline::hash::{MultiHasher, SegmentedMd5};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use md5::{Digest, Md5};
use sha2::{Sha256, Sha512};
use std::time::Duration;

fn digests(c: &mut Criterion) {
    let mut g = c.benchmark_group("segment_hash");
    for len in [1usize << 20, 8 << 20] {
        let data = cloudimg_benches::disk_like(len);
        let label = format!("{}MiB", len >> 20);
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_with_input(BenchmarkId::new("md5", &label), &data, |b, d| {
            b.iter(|| Md5::digest(d))
        });
        g.bench_with_input(BenchmarkId::new("sha256", &label), &data, |b, d| {
            b.iter(|| Sha256::digest(d))
        });
        g.bench_with_input(BenchmarkId::new("sha512", &label), &data, |b, d| {
            b.iter(|| Sha512::digest(d))
        });
        // The upload's two MD5s (whole object and segment) in one pass, against two passes.
        g.bench_with_input(
            BenchmarkId::new("md5_whole_and_segment", &label),
            &data,
            |b, d| {
                b.iter(|| {
                    let mut h = SegmentedMd5::new();
                    h.update(d);
                    (h.end_segment(), h.finish())
                })
            },
        );
        g.bench_with_input(BenchmarkId::new("md5_twice", &label), &data, |b, d| {
            b.iter(|| (Md5::digest(d), Md5::digest(d)))
        });
        g.bench_with_input(
            BenchmarkId::new("multi_md5_sha256_sha512", &label),
            &data,
            |b, d| {
                b.iter(|| {
                    let mut h = MultiHasher::new();
                    for chunk in d.chunks(256 * 1024) {
                        h.update(chunk);
                    }
                    h.finish()
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
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = digests
}
criterion_main!(benches);
