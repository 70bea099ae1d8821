//! Our writers' output read back by qemu-img, vhdiinfo, our checker and our
//! reader: every one must see the input's exact size and bytes.

use cloudimg_fixtures::env::require_tool;
use cloudimg_vhd::check::check_file;
use cloudimg_vhd::convert::{convert, ConvertOptions, InputFormat, Output, OutputFormat};
use cloudimg_vhd::write::{DynamicLayout, DynamicOptions, FixedOptions, MemorySource};
use cloudimg_vhd::{Chain, ChainOptions, DiskType, Image};
use std::path::Path;
use std::process::Command;

/// A disk with data, an all-zero allocated stretch, holes and an odd tail:
/// the size is a whole number of sectors but not of CHS cylinders or blocks.
fn sample_disk(size: usize) -> Vec<u8> {
    let mut v = vec![0u8; size];
    let mut x = 0x1234_5678u32;
    for (i, b) in v.iter_mut().enumerate() {
        // Data in the first 1.5 MiB and the last 100 KiB, zeros between.
        if i < 3 << 19 || i + 100_000 > size {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            *b = (x >> 16) as u8;
        }
    }
    v
}

fn qemu_raw(vhd: &Path, dir: &Path) -> Vec<u8> {
    let out = dir.join("qemu.raw");
    let st = Command::new("qemu-img")
        .args(["convert", "-f", "vpc", "-O", "raw"])
        .arg(vhd)
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let v = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    v
}

fn qemu_size(vhd: &Path) -> u64 {
    let out = Command::new("qemu-img")
        .args(["info", "--output", "json", "-f", "vpc"])
        .arg(vhd)
        .output()
        .unwrap();
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    j["virtual-size"].as_u64().unwrap()
}

fn vhdiinfo(vhd: &Path) -> (String, u64) {
    let out = Command::new("vhdiinfo").arg(vhd).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let kind = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Disk type"))
        .map(|s| s.trim_start_matches([' ', '\t', ':']).trim().to_string())
        .unwrap_or_default();
    let size = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Media size"))
        .and_then(|s| s.split('(').nth(1))
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (kind, size)
}

fn our_read(vhd: &Path) -> Vec<u8> {
    let chain = Chain::open(vhd, &ChainOptions::default()).unwrap();
    let mut v = vec![0u8; chain.virtual_size() as usize];
    chain.read_at(0, &mut v).unwrap();
    v
}

fn assert_agree(vhd: &Path, dir: &Path, expect: &[u8], kind: &str) {
    let size = expect.len() as u64;
    let report = check_file(vhd);
    // Only the note that vhd-util wants 2 MiB blocks is acceptable.
    assert!(
        !report.has_errors()
            && report
                .warnings()
                .all(|w| w.code == "header_block_size_nonstandard"),
        "check of {}: {report:?}",
        vhd.display()
    );
    assert_eq!(our_read(vhd), expect);
    if require_tool("qemu-img") {
        assert_eq!(qemu_size(vhd), size, "qemu-img virtual size");
        assert!(qemu_raw(vhd, dir) == expect, "qemu-img bytes differ");
    }
    if require_tool("vhdiinfo") {
        assert_eq!(vhdiinfo(vhd), (kind.to_string(), size));
    }
}

#[test]
fn raw_to_dynamic_file_and_stream_agree_with_every_reader() {
    let dir = tempfile::tempdir().unwrap();
    let size = (5 << 20) + 3 * 512; // not a CHS multiple, not a block multiple
    let disk = sample_disk(size);
    let raw = dir.path().join("in.raw");
    std::fs::write(&raw, &disk).unwrap();
    for block_size in [2 << 20, 64 << 10] {
        let opts = ConvertOptions {
            input: Some(InputFormat::Raw),
            output: OutputFormat::Dynamic(DynamicOptions {
                block_size,
                ..Default::default()
            }),
            ..Default::default()
        };
        let out = dir.path().join(format!("out-{block_size}.vhd"));
        let r = convert(&raw, Output::Path(&out), &opts, &mut |_| {}).unwrap();
        assert_eq!(r.virtual_size, size as u64);
        assert_agree(&out, dir.path(), &disk, "Dynamic");
        // Zero blocks in the middle are not allocated.
        let img = Image::open(&out).unwrap();
        let full = (size as u64).div_ceil(u64::from(block_size));
        assert!(
            img.allocated_blocks() < full,
            "{} of {full}",
            img.allocated_blocks()
        );

        let mut streamed = Vec::new();
        let r2 = convert(&raw, Output::Stream(&mut streamed), &opts, &mut |_| {}).unwrap();
        assert_eq!(r2.bytes_written, streamed.len() as u64);
        let out2 = dir.path().join(format!("stream-{block_size}.vhd"));
        std::fs::write(&out2, &streamed).unwrap();
        assert_agree(&out2, dir.path(), &disk, "Dynamic");
        // Same layout whichever path wrote it.
        assert_eq!(
            std::fs::metadata(&out).unwrap().len(),
            streamed.len() as u64
        );
    }
}

#[test]
fn raw_to_fixed_with_and_without_mib_rounding() {
    let dir = tempfile::tempdir().unwrap();
    let size = (3 << 20) + 512;
    let disk = sample_disk(size);
    let raw = dir.path().join("in.raw");
    std::fs::write(&raw, &disk).unwrap();
    for round in [false, true] {
        let opts = ConvertOptions {
            input: Some(InputFormat::Raw),
            output: OutputFormat::Fixed(FixedOptions {
                round_to_mib: round,
                uuid: None,
            }),
            ..Default::default()
        };
        let out = dir.path().join(format!("fixed-{round}.vhd"));
        convert(&raw, Output::Path(&out), &opts, &mut |_| {}).unwrap();
        let mut expect = disk.clone();
        if round {
            expect.resize(4 << 20, 0);
        }
        assert_eq!(
            std::fs::metadata(&out).unwrap().len(),
            expect.len() as u64 + 512
        );
        assert_agree(&out, dir.path(), &expect, "Fixed");
    }
}

#[test]
fn dynamic_to_raw_equals_qemu() {
    if !require_tool("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let disk = sample_disk(6 << 20);
    let raw = dir.path().join("in.raw");
    std::fs::write(&raw, &disk).unwrap();
    let vhd = dir.path().join("q.vhd");
    assert!(Command::new("qemu-img")
        .args([
            "convert",
            "-f",
            "raw",
            "-O",
            "vpc",
            "-o",
            "subformat=dynamic,force_size=on"
        ])
        .arg(&raw)
        .arg(&vhd)
        .status()
        .unwrap()
        .success());
    for to_stream in [false, true] {
        let opts = ConvertOptions {
            output: OutputFormat::Raw,
            ..Default::default()
        };
        let got = if to_stream {
            let mut v = Vec::new();
            convert(&vhd, Output::Stream(&mut v), &opts, &mut |_| {}).unwrap();
            v
        } else {
            let out = dir.path().join("out.raw");
            convert(&vhd, Output::Path(&out), &opts, &mut |_| {}).unwrap();
            std::fs::read(&out).unwrap()
        };
        assert!(got == disk);
    }
}

/// A sparse raw file: data runs long enough to be mapped, short runs that are
/// read, a hole, a block of written zeros, zeros inside a mapped run and a
/// partial last block.
fn sparse_raw_file(path: &Path) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    const MIB: usize = 1 << 20;
    let size = 11 * MIB + 7 * 512;
    let mut disk = vec![0u8; size];
    let mut x = 0x9e37_79b9u32;
    let mut fill = |r: std::ops::Range<usize>| {
        for b in &mut disk[r] {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            *b = (x >> 16) as u8 | 1;
        }
    };
    fill(0..2 * MIB); // block 0: one mapped run
                      // block 1: a hole; block 2: zeros written as data (below)
    fill(6 * MIB..6 * MIB + 100_000); // block 3: short runs, read
    fill(7 * MIB + 500_000..7 * MIB + 600_000);
    fill(8 * MIB..9 * MIB); // block 4: mapped, its second MiB zeros
    fill(10 * MIB + 4096..size); // block 5: partial, mapped
    let f = std::fs::File::create(path).unwrap();
    f.set_len(size as u64).unwrap();
    for (lo, hi) in [
        (0, 2 * MIB),
        (4 * MIB, 6 * MIB),
        (6 * MIB, 6 * MIB + 100_000),
        (7 * MIB + 500_000, 7 * MIB + 600_000),
        (8 * MIB, 10 * MIB),
        (10 * MIB, size),
    ] {
        f.write_all_at(&disk[lo..hi], lo as u64).unwrap();
    }
    disk
}

/// True when `[lo, hi)` of the file at `p` is one hole.
fn is_hole(p: &Path, lo: u64, hi: u64) -> bool {
    use std::os::unix::io::AsRawFd;
    let f = std::fs::File::open(p).unwrap();
    // SAFETY: lseek on a descriptor we own.
    let data = unsafe { libc::lseek(f.as_raw_fd(), lo as libc::off_t, libc::SEEK_DATA) };
    data < 0 || data as u64 >= hi
}

#[test]
fn sparse_raw_file_to_vhd_and_raw_equals_qemu_and_stays_sparse() {
    const MIB: u64 = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("in.raw");
    let disk = sparse_raw_file(&raw);
    let raw_opts = |output| ConvertOptions {
        input: Some(InputFormat::Raw),
        output,
        ..Default::default()
    };

    // raw -> dynamic VHD: mapped runs, read runs, skipped holes and zeros.
    let out = dir.path().join("out.vhd");
    let r = convert(
        &raw,
        Output::Path(&out),
        &raw_opts(OutputFormat::Dynamic(DynamicOptions::default())),
        &mut |_| {},
    )
    .unwrap();
    // The hole (block 1) and the written zeros (block 2) are not allocated.
    assert_eq!(r.allocated_blocks, Some(4));
    assert_agree(&out, dir.path(), &disk, "Dynamic");
    // Zero pages inside a mapped block stay holes in the output.
    let img = Image::open(&out).unwrap();
    let at = img.block_bitmap_offset(4).unwrap() + img.bitmap_size();
    assert!(is_hole(&out, at + MIB + 4096, at + 2 * MIB - 4096));
    assert!(!is_hole(&out, at, at + MIB));
    if require_tool("qemu-img") {
        let q = dir.path().join("q.vhd");
        assert!(Command::new("qemu-img")
            .args(["convert", "-f", "raw", "-O", "vpc", "-o"])
            .arg("subformat=dynamic,force_size=on")
            .arg(&raw)
            .arg(&q)
            .status()
            .unwrap()
            .success());
        let same = Command::new("qemu-img")
            .args(["compare", "-q", "-s", "-f", "vpc", "-F", "vpc"])
            .arg(&q)
            .arg(&out)
            .status()
            .unwrap();
        assert!(same.success(), "qemu-img compare: {same}");
        // qemu-img leaves the same blocks out.
        let used = |i: &Image| i.bat().iter().map(|&e| e != u32::MAX).collect::<Vec<_>>();
        assert_eq!(used(&Image::open(&q).unwrap()), used(&img));
    }

    // raw -> raw: the same bytes, holes where the input has holes or zeros.
    let out = dir.path().join("out.raw");
    convert(
        &raw,
        Output::Path(&out),
        &raw_opts(OutputFormat::Raw),
        &mut |_| {},
    )
    .unwrap();
    assert!(std::fs::read(&out).unwrap() == disk);
    for (lo, hi) in [(2, 6), (9, 10)] {
        assert!(
            is_hole(&out, lo * MIB, hi * MIB),
            "{lo}..{hi} MiB allocated"
        );
    }
}

#[test]
fn failed_conversion_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.vhd");
    // A footer cookie with nothing valid behind it.
    let mut b = vec![0u8; 4096];
    b[4096 - 512..4096 - 504].copy_from_slice(b"conectix");
    std::fs::write(&bad, &b).unwrap();
    let out = dir.path().join("out.vhd");
    let e = convert(
        &bad,
        Output::Path(&out),
        &ConvertOptions::default(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(e.kind().is_data_error(), "{e}");
    assert!(!out.exists());
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "temporary files left behind");
}

#[test]
fn stream_layout_total_len_is_known_up_front() {
    let disk = sample_disk(3 << 20);
    let mut src = MemorySource::new(disk.clone());
    let layout = DynamicLayout::plan(&mut src, &DynamicOptions::default()).unwrap();
    let expect = layout.total_len();
    let mut out = Vec::new();
    layout
        .write_to(&mut MemorySource::new(disk.clone()), &mut out, &mut |_| {})
        .unwrap();
    assert_eq!(out.len() as u64, expect);
    let img = Image::from_io("mem.vhd".into(), Box::new(out)).unwrap();
    assert_eq!(img.disk_type(), DiskType::Dynamic);
    assert_eq!(img.footer().original_size, img.footer().current_size);
    assert_eq!(&img.footer().creator_app, b"qem2");
}

mod roundtrip {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn raw_to_vhd_to_raw(
            sectors in 1usize..40,
            writes in proptest::collection::vec((0usize..40, 1u8..255), 0..12),
            bs_shift in 9u32..14,
            keep in any::<bool>(),
        ) {
            let mut disk = vec![0u8; sectors * 512];
            for (s, v) in writes {
                if s < sectors {
                    disk[s * 512..(s + 1) * 512].fill(v);
                }
            }
            let opts = DynamicOptions { block_size: 1 << bs_shift, keep_zero_blocks: keep, ..Default::default() };
            let layout = DynamicLayout::plan(&mut MemorySource::new(disk.clone()), &opts).unwrap();
            let mut out = Vec::new();
            layout.write_to(&mut MemorySource::new(disk.clone()), &mut out, &mut |_| {}).unwrap();
            prop_assert_eq!(out.len() as u64, layout.total_len());
            let chain = Chain::single(Image::from_io("m.vhd".into(), Box::new(out)).unwrap()).unwrap();
            let mut back = vec![0u8; disk.len()];
            chain.read_at(0, &mut back).unwrap();
            prop_assert_eq!(back, disk);
        }
    }
}
