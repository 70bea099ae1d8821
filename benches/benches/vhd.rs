//! VHD metadata hot paths: checksums, loading and scanning a 1M-entry BAT, bitmap
//! scans, the allocation map of a 2 TiB sparse disk, and block reads.
//!
//! `cargo bench -p cloudimg-benches --bench vhd`

use cloudimg_benches::{SyntheticVhd, DATA_BYTE};
use cloudimg_vhd::bat::{next_allocated, read_bat};
use cloudimg_vhd::{vhd_checksum, Bitmap, Chain, FileIo, Image, LayerIo};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// Entries of the big BAT: the most 2 MiB blocks a VHD can have (2040 GiB).
const BIG_BAT: u32 = 1_044_480;
const BLOCK: u32 = 2 << 20;

fn checksum(c: &mut Criterion) {
    let mut g = c.benchmark_group("checksum");
    for (name, len, at) in [
        ("footer", 512usize, 64usize),
        ("header", 1024, 36),
        ("1MiB", 1 << 20, 64),
    ] {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_function(name, |b| b.iter(|| vhd_checksum(black_box(&bytes), at)));
    }
    g.finish();
}

fn bat(c: &mut Criterion) {
    let mut g = c.benchmark_group("bat_1M");
    g.throughput(Throughput::Elements(u64::from(BIG_BAT)));
    let raw: Vec<u8> = (0..BIG_BAT)
        .flat_map(|i| {
            if i % 10 == 0 {
                (i * 4100 + 3).to_be_bytes()
            } else {
                u32::MAX.to_be_bytes()
            }
        })
        .collect();
    g.bench_function("read_bat", |b| {
        b.iter(|| read_bat(&raw, 0, u64::from(BIG_BAT)).expect("bat"))
    });
    let table = read_bat(&raw, 0, u64::from(BIG_BAT)).expect("bat");
    g.bench_function("scan_next_allocated_10pct", |b| {
        b.iter(|| {
            let (mut i, mut n) = (0usize, 0usize);
            while i < table.len() {
                i = next_allocated(&table, i);
                if i < table.len() {
                    n += 1;
                    i += 1;
                }
            }
            n
        })
    });
    let empty = vec![u32::MAX; BIG_BAT as usize];
    g.bench_function("scan_next_allocated_empty", |b| {
        b.iter(|| next_allocated(black_box(&empty), 0))
    });
    g.finish();
}

fn bitmaps(c: &mut Criterion) {
    let sectors = BLOCK / 512;
    let mut g = c.benchmark_group("bitmap_2MiB_block");
    g.throughput(Throughput::Elements(u64::from(sectors)));
    for (name, byte) in [
        ("full", 0xFFu8),
        ("empty", 0x00),
        ("alternating", 0xAA),
        ("nibbles", 0xF0),
    ] {
        let bm = Bitmap::from_bytes(&vec![byte; sectors as usize / 8], sectors);
        g.bench_function(BenchmarkId::new("runs", name), |b| {
            b.iter(|| {
                let (mut s, mut runs) = (0u32, 0u32);
                while s < sectors {
                    s = bm.run_end(s, sectors);
                    runs += 1;
                }
                runs
            })
        });
        g.bench_function(BenchmarkId::new("count_set", name), |b| {
            b.iter(|| bm.count_set())
        });
    }
    g.finish();
}

fn allocation_map(c: &mut Criterion) {
    let mut g = c.benchmark_group("allocation_map_1M_bat");
    g.sample_size(10);
    g.throughput(Throughput::Elements(u64::from(BIG_BAT)));
    for (name, every, bitmap) in [
        ("empty", 0u32, 0xFFu8),
        ("every_10th_full", 10, 0xFF),
        ("every_1000th_alternating", 1000, 0xAA),
    ] {
        let open = || {
            let io = SyntheticVhd::new(BIG_BAT, BLOCK, every, bitmap);
            Image::from_io(PathBuf::from(name), Box::new(io)).expect("synthetic image opens")
        };
        g.bench_function(BenchmarkId::new("open", name), |b| b.iter(open));
        let chain = Chain::single(open()).expect("chain");
        g.bench_function(BenchmarkId::new("extents", name), |b| {
            b.iter(|| chain.extents().map(|e| e.expect("extent").len).sum::<u64>())
        });
    }
    g.finish();
}

fn block_copy(c: &mut Criterion) {
    let mut g = c.benchmark_group("block_copy_2MiB");
    g.throughput(Throughput::Bytes(u64::from(BLOCK)));
    // pread from the page cache: the floor under every convert/coalesce.
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    let data = cloudimg_benches::disk_like(32 << 20);
    f.write_all(&data).expect("write");
    let io = FileIo::open(f.path()).expect("open");
    let mut buf = vec![0u8; BLOCK as usize];
    let mut at = 0u64;
    g.bench_function("pread_page_cache", |b| {
        b.iter(|| {
            io.read_exact_at(&mut buf, at).expect("read");
            at = (at + u64::from(BLOCK)) % data.len() as u64;
        })
    });
    g.bench_function("memcpy", |b| {
        b.iter(|| buf.copy_from_slice(black_box(&data[..BLOCK as usize])))
    });
    // The chain reader over allocated blocks (bitmap lookups plus copies).
    let synth = SyntheticVhd::new(64, BLOCK, 1, 0xFF);
    let chain = Chain::single(Image::from_io(PathBuf::from("s"), Box::new(synth)).expect("open"))
        .expect("chain");
    g.bench_function("chain_read_at_allocated", |b| {
        b.iter(|| chain.read_at(u64::from(BLOCK) * 3, &mut buf).expect("read"))
    });
    assert!(buf.iter().all(|&b| b == DATA_BYTE));
    let sparse = SyntheticVhd::new(64, BLOCK, 0, 0);
    let chain = Chain::single(Image::from_io(PathBuf::from("z"), Box::new(sparse)).expect("open"))
        .expect("chain");
    g.bench_function("chain_read_at_unallocated", |b| {
        b.iter(|| chain.read_at(u64::from(BLOCK) * 3, &mut buf).expect("read"))
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = checksum, bat, bitmaps, allocation_map, block_copy
}
criterion_main!(benches);
