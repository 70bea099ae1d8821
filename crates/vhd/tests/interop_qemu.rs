//! Images made by qemu-img/qemu-io read byte-equal to `qemu-img convert -O raw`,
//! and vhdiinfo (libvhdi) agrees with our type, size and UUIDs.

use cloudimg_fixtures::env::require_tool;
use cloudimg_vhd::check::check_file;
use cloudimg_vhd::{Chain, ChainReader, DiskType, Image, Source};
use std::io::Read;
use std::path::Path;
use std::process::Command;

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Our view of the whole disk, read two ways: positional reads of odd sizes
/// and the streaming adapter.
fn read_ours(path: &Path) -> Vec<u8> {
    let chain = Chain::single(Image::open(path).unwrap()).unwrap();
    let size = chain.virtual_size() as usize;
    let mut a = vec![0u8; size];
    let mut at = 0;
    for step in [1usize, 511, 4097, 65_536 + 3, 1 << 20].iter().cycle() {
        if at >= size {
            break;
        }
        let n = (*step).min(size - at);
        chain.read_at(at as u64, &mut a[at..at + n]).unwrap();
        at += n;
    }
    let mut b = Vec::new();
    ChainReader::new(&chain).read_to_end(&mut b).unwrap();
    assert_eq!(a, b);
    a
}

fn qemu_raw(path: &Path, dir: &Path) -> Vec<u8> {
    let out = dir.join("qemu.raw");
    run(
        "qemu-img",
        &["convert", "-f", "vpc", "-O", "raw", s(path), s(&out)],
    );
    std::fs::read(out).unwrap()
}

/// A raw disk with patterns, runs of zeros and a sector-sized island.
fn patterned_raw(size: usize) -> Vec<u8> {
    let mut raw = vec![0u8; size];
    for (i, b) in raw[..1 << 20].iter_mut().enumerate() {
        *b = (i % 251) as u8 + 1;
    }
    raw[(3 << 20) + 512..(3 << 20) + 1024].fill(0x5a);
    let tail = size - (1 << 20);
    for (i, b) in raw[tail..].iter_mut().enumerate() {
        *b = (i / 512) as u8 ^ 0xc3;
    }
    raw
}

#[test]
fn qemu_io_writes_read_back_equal() {
    if !require_tool("qemu-img") || !require_tool("qemu-io") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let vhd = tmp.path().join("w.vhd");
    run("qemu-img", &["create", "-q", "-f", "vpc", s(&vhd), "10M"]);
    run(
        "qemu-io",
        &[
            "-f",
            "vpc",
            "-c",
            "write -P 0xab 0 1M",
            "-c",
            "write -P 0xcd 3M 512",
            "-c",
            "write -P 0x11 5242368 1024",
            s(&vhd),
        ],
    );
    let ours = read_ours(&vhd);
    assert_eq!(ours, qemu_raw(&vhd, tmp.path()));
    assert!(
        !check_file(&vhd).has_errors(),
        "{:#?}",
        check_file(&vhd).findings
    );
    // qemu sets the whole bitmap when it allocates a block: three 2 MiB blocks.
    let img = Image::open(&vhd).unwrap();
    let data: u64 = img
        .extents()
        .map(|e| e.unwrap())
        .filter(|e| e.source != Source::Zero)
        .map(|e| e.len)
        .sum();
    assert_eq!(data, 3 * (2 << 20));
    assert_eq!(img.allocated_bytes(), 3 * (2 << 20));
}

#[test]
fn qemu_convert_dynamic_and_fixed_read_equal() {
    if !require_tool("qemu-img") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let raw_path = tmp.path().join("src.raw");
    std::fs::write(&raw_path, patterned_raw(9 << 20)).unwrap();
    for sub in ["dynamic", "fixed"] {
        let vhd = tmp.path().join(format!("{sub}.vhd"));
        run(
            "qemu-img",
            &[
                "convert",
                "-f",
                "raw",
                "-O",
                "vpc",
                "-o",
                &format!("subformat={sub}"),
                s(&raw_path),
                s(&vhd),
            ],
        );
        let img = Image::open(&vhd).unwrap();
        assert_eq!(
            img.disk_type(),
            if sub == "fixed" {
                DiskType::Fixed
            } else {
                DiskType::Dynamic
            }
        );
        assert_eq!(read_ours(&vhd), qemu_raw(&vhd, tmp.path()), "{sub}");
        let report = check_file(&vhd);
        assert!(!report.has_errors(), "{sub}: {:#?}", report.findings);
    }
}

/// `Field : value` lines of vhdiinfo's output.
fn vhdiinfo_field(out: &str, field: &str) -> Option<String> {
    out.lines()
        .find(|l| l.trim_start().starts_with(field))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

#[test]
fn vhdiinfo_agrees_on_type_size_and_uuids() {
    if !require_tool("qemu-img") || !require_tool("vhdiinfo") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (sub, size) in [("dynamic", "33M"), ("fixed", "5M")] {
        let p = tmp.path().join(format!("{sub}.vhd"));
        run(
            "qemu-img",
            &[
                "create",
                "-q",
                "-f",
                "vpc",
                "-o",
                &format!("subformat={sub}"),
                s(&p),
                size,
            ],
        );
        files.push(p);
    }
    if let Some(dir) = cloudimg_fixtures::env::shared_interop() {
        let go = dir.join("vhd/go-vhd");
        for f in ["win8-child.vhd", "xapi.vhd", "vbox.vhd", "win8.1-1GB.vhd"] {
            if go.join(f).is_file() {
                files.push(go.join(f));
            }
        }
    }
    for p in &files {
        let img = Image::open(p).unwrap();
        let out = run("vhdiinfo", &[s(p)]);
        let kind = vhdiinfo_field(&out, "Disk type").unwrap();
        let expect = match img.disk_type() {
            DiskType::Fixed => "Fixed",
            DiskType::Dynamic => "Dynamic",
            DiskType::Differencing => "Differential",
            DiskType::Other(_) => unreachable!(),
        };
        assert_eq!(kind, expect, "{}", p.display());
        // libvhdi reports the original size.
        let media = vhdiinfo_field(&out, "Media size").unwrap();
        assert!(
            media.ends_with(&format!("({} bytes)", img.footer().original_size)),
            "{}: {media}",
            p.display()
        );
        assert_eq!(
            vhdiinfo_field(&out, "Identifier").unwrap(),
            img.uuid().to_string()
        );
        if let Some(parent) = img.parent_uuid() {
            assert_eq!(
                vhdiinfo_field(&out, "Parent identifier").unwrap(),
                parent.to_string()
            );
        }
    }
}
