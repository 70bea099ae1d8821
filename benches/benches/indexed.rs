//! Decompression of one indexed multi-member gzip (1 MiB members, level 6, the
//! form `cloudimg pack --indexed` writes) on 1 thread against 2, from memory
//! to a sink, through both readers: by index ([`IndexedReader::copy_to`])
//! and front to back from a stream ([`MemberReader`], what unpack uses).
//!
//! `cargo bench -p cloudimg-benches --bench indexed`
//!
//! First the scaling run: the thread counts alternate back to back (1, 2,
//! then 2, 1, ...), `INDEXED_BENCH_REPEATS` times (default 3) on
//! `INDEXED_BENCH_MB` MiB of disk-like data (default 128), and the ratio of
//! the 1-thread time to the 2-thread time is printed per pair and for the
//! medians. Then the same cases under criterion, unless
//! `CLOUDIMG_BENCH_RATIO_ONLY=1`. Outputs are checked against the input
//! once; nothing is asserted about time. Under `cargo test --benches` it
//! runs once on 4 MiB.

use cloudimg_ova::gzip::indexed::{IndexedGzWriter, IndexedReader};
use cloudimg_ova::gzip::{GzOptions, MemberReader};
use criterion::{BenchmarkId, Criterion, Throughput};
use std::io::{self, Write};
use std::time::{Duration, Instant};

const MEMBER: usize = 1 << 20;

fn indexed(data: &[u8]) -> Vec<u8> {
    let opts = GzOptions {
        level: 6,
        jobs: 2,
        chunk_size: MEMBER,
        mtime: 0,
    };
    let mut w = IndexedGzWriter::new(Vec::with_capacity(data.len() / 2), opts).expect("writer");
    w.write_all(data).expect("compress");
    w.finish(&[]).expect("finish").0
}

/// Decodes through the index; returns the bytes written.
fn by_index(gz: &[u8], jobs: usize, out: impl Write) -> u64 {
    let r = IndexedReader::open(gz, gz.len() as u64, jobs).expect("open");
    r.copy_to(out).expect("decode")
}

/// Decodes front to back, as unpack does.
fn streamed(gz: &[u8], jobs: usize, mut out: impl Write) -> u64 {
    let mut r = MemberReader::new(gz, jobs).expect("reader");
    io::copy(&mut r, &mut out).expect("decode")
}

type Path = fn(&[u8], usize, &mut dyn Write) -> u64;

fn paths() -> [(&'static str, Path); 2] {
    [
        ("IndexedReader::copy_to", |gz, j, out| by_index(gz, j, out)),
        ("MemberReader (stream)", |gz, j, out| streamed(gz, j, out)),
    ]
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn scaling(data: &[u8], gz: &[u8], repeats: usize) {
    for (name, path) in paths() {
        for jobs in [1, 2] {
            let mut back = Vec::with_capacity(data.len());
            path(gz, jobs, &mut back);
            assert!(
                back == data,
                "{name} with {jobs} thread(s) decoded wrong bytes"
            );
        }
    }
    let mb = data.len() as f64 / 1048576.0;
    println!(
        "indexed decode: {mb:.0} MiB in {} members, {} compressed bytes",
        data.len().div_ceil(MEMBER),
        gz.len()
    );
    for (name, path) in paths() {
        let (mut one, mut two) = (Vec::new(), Vec::new());
        for rep in 0..repeats {
            let order = if rep % 2 == 0 { [1, 2] } else { [2, 1] };
            let mut pair = [0.0f64; 2];
            let mut cpus = [0.0f64; 2];
            for jobs in order {
                let c0 = cpu_seconds();
                let t = Instant::now();
                let n = path(gz, jobs, &mut io::sink());
                pair[jobs - 1] = t.elapsed().as_secs_f64();
                cpus[jobs - 1] = cpu_seconds() - c0;
                assert_eq!(n, data.len() as u64);
            }
            // CPU seconds next to wall seconds show how much of the machine the
            // run got: on a busy machine 2 threads cannot beat 1 if the
            // scheduler gives the whole process one core's worth.
            println!(
                "  {name:24} rep {rep}: 1 thread {:.3} s ({:.0} MiB/s, {:.2} s CPU), \
                 2 threads {:.3} s ({:.0} MiB/s, {:.2} s CPU): {:.2}x",
                pair[0],
                mb / pair[0],
                cpus[0],
                pair[1],
                mb / pair[1],
                cpus[1],
                pair[0] / pair[1]
            );
            one.push(pair[0]);
            two.push(pair[1]);
        }
        let (m1, m2) = (median(&mut one), median(&mut two));
        // Sorted by `median`: the first is the best run of each.
        let (b1, b2) = (one[0], two[0]);
        println!(
            "  {name:24} median: 1 thread {m1:.3} s, 2 threads {m2:.3} s: scaling {:.2}x; \
             best: {b1:.3} s, {b2:.3} s: {:.2}x",
            m1 / m2,
            b1 / b2
        );
    }
}

fn criterion_cases(c: &mut Criterion, data: &[u8], gz: &[u8]) {
    let mut g = c.benchmark_group(format!("indexed_decode_{}MiB", data.len() >> 20));
    g.sample_size(10);
    g.throughput(Throughput::Bytes(data.len() as u64));
    for (name, path) in paths() {
        let short = if name.starts_with("Indexed") {
            "copy_to_jobs"
        } else {
            "stream_jobs"
        };
        for jobs in [1usize, 2] {
            g.bench_with_input(BenchmarkId::new(short, jobs), &gz, |b, gz| {
                b.iter(|| path(gz, jobs, &mut io::sink()))
            });
        }
    }
    g.finish();
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not.
    let benching = std::env::args().any(|a| a == "--bench");
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (mb, repeats) = if benching {
        (
            env("INDEXED_BENCH_MB", 128),
            env("INDEXED_BENCH_REPEATS", 3),
        )
    } else {
        (4, 1)
    };
    let data = cloudimg_benches::disk_like(mb << 20);
    let gz = indexed(&data);
    scaling(&data, &gz, repeats.max(1));
    if !benching || std::env::var_os("CLOUDIMG_BENCH_RATIO_ONLY").is_some() {
        return;
    }
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    criterion_cases(&mut c, &data, &gz);
    c.final_summary();
}

/// User plus system CPU seconds of this process so far (Linux; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which ends at the last ')'): utime and
    // stime are the 12th and 13th, in clock ticks (100 per second on Linux).
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}
