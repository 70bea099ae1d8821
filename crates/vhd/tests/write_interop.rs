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
