//! Hostile archives: every one must fail with the right error kind and leave
//! the target folder as it was (absent when unpack created it).

mod common;

use cloudimg_ova::gzip::{GzOptions, ParGzWriter};
use cloudimg_ova::tar::{EntryType, Header, TarWriter};
use cloudimg_ova::{unpack, ErrorKind, Expected, Layout, Limits, UnpackOptions};
use std::io::Write;
use std::path::Path;

fn gz(tar: &[u8]) -> Vec<u8> {
    let opts = GzOptions {
        jobs: 2,
        ..GzOptions::default()
    };
    let mut w = ParGzWriter::new(Vec::new(), opts).unwrap();
    w.write_all(tar).unwrap();
    w.finish().unwrap()
}

/// A tar of (header, data) pairs, built with our writer (it writes any type).
fn tar_of(entries: &[(Header, &[u8])]) -> Vec<u8> {
    let mut w = TarWriter::new(Vec::new());
    for (h, data) in entries {
        w.append_header(h, *data).unwrap();
    }
    w.finish().unwrap()
}

/// A header holding `name` as is (the crate's `set_path` refuses `..` and
/// absolute names, which these tests need to write).
fn raw(name: &str, ty: EntryType, link: &str, size: u64) -> Header {
    let mut h = Header::new_ustar();
    let old = h.as_old_mut();
    old.name[..name.len()].copy_from_slice(name.as_bytes());
    old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_entry_type(ty);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_cksum();
    h
}

fn regular(name: &str, size: u64) -> Header {
    raw(name, EntryType::Regular, "", size)
}

fn file(name: &str, data: &[u8]) -> (Header, Vec<u8>) {
    (regular(name, data.len() as u64), data.to_vec())
}

fn special(name: &str, ty: EntryType, link: &str) -> Header {
    raw(name, ty, link, 0)
}

/// Unpacks `archive` into a fresh `t/out` and checks kind, member name and cleanup.
fn refuse(archive: &[u8], opts: &UnpackOptions, kind: ErrorKind) -> cloudimg_ova::Error {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    let err = unpack(archive, &out, opts).expect_err("hostile archive accepted");
    assert_eq!(err.kind(), kind, "{err}");
    assert!(!out.exists(), "left {:?}", common::listing(&out));
    // Again into an existing folder holding a file: that file survives, nothing else appears.
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep"), b"mine").unwrap();
    let err2 = unpack(archive, &out, opts).expect_err("hostile archive accepted");
    assert_eq!(err2.kind(), kind);
    assert_eq!(common::listing(&out), vec!["keep"]);
    assert_eq!(std::fs::read(out.join("keep")).unwrap(), b"mine");
    err
}

fn opts() -> UnpackOptions {
    UnpackOptions::default()
}

fn with_good_first(bad: (Header, &[u8])) -> Vec<u8> {
    // A good member first, so cleanup of a finished file is exercised too.
    let good = common::content(100_000, 1);
    gz(&tar_of(&[
        (regular("good.bin", good.len() as u64), &good),
        bad,
    ]))
}

#[test]
fn traversal_is_refused() {
    let (h, d) = file("../x", b"evil");
    let e = refuse(&with_good_first((h, &d)), &opts(), ErrorKind::UnsafePath);
    assert_eq!(e.member_name(), Some("../x"));
    assert!(e.offset().is_some());
    let (h, d) = file("./a/../../x", b"evil");
    refuse(&with_good_first((h, &d)), &opts(), ErrorKind::UnsafePath);
}

#[test]
fn absolute_names_are_refused() {
    let (h, d) = file("/etc/x", b"evil");
    let e = refuse(&with_good_first((h, &d)), &opts(), ErrorKind::UnsafePath);
    assert_eq!(e.member_name(), Some("/etc/x"));
}

#[test]
fn links_devices_and_fifos_are_refused() {
    for (ty, link) in [
        (EntryType::Symlink, "/etc/passwd"),
        (EntryType::Link, "good.bin"),
        (EntryType::Char, ""),
        (EntryType::Block, ""),
        (EntryType::Fifo, ""),
    ] {
        let e = refuse(
            &with_good_first((special("x.vhd", ty, link), b"")),
            &opts(),
            ErrorKind::UnsafeEntry,
        );
        assert_eq!(e.member_name(), Some("x.vhd"));
    }
}

#[test]
fn duplicates_are_refused_even_with_dot_slash() {
    let (h, d) = file("./good.bin", b"again");
    let e = refuse(&with_good_first((h, &d)), &opts(), ErrorKind::Duplicate);
    assert_eq!(e.member_name(), Some("./good.bin"));
}

#[test]
fn bombs_stop_at_the_ratio_cap() {
    let zeros = vec![0u8; 40 << 20];
    let archive = gz(&tar_of(&[(regular("0.vhd", zeros.len() as u64), &zeros)]));
    let mut o = opts();
    o.limits = Limits {
        ratio_grace: 1 << 20,
        max_ratio: 100,
        ..Limits::default()
    };
    let e = refuse(&archive, &o, ErrorKind::LimitExceeded);
    assert_eq!(e.member_name(), Some("0.vhd"));
}

#[test]
fn member_size_count_and_total_caps() {
    let data = common::content(10_000, 2);
    let archive = gz(&tar_of(&[
        (regular("a", data.len() as u64), &data),
        (regular("b", data.len() as u64), &data),
    ]));
    let mut o = opts();
    o.limits.max_member_size = 9_999;
    refuse(&archive, &o, ErrorKind::LimitExceeded);
    let mut o = opts();
    o.limits.max_members = 1;
    let e = refuse(&archive, &o, ErrorKind::LimitExceeded);
    assert_eq!(e.member_name(), Some("b"));
    let mut o = opts();
    o.limits.max_total_size = 15_000;
    refuse(&archive, &o, ErrorKind::LimitExceeded);
}

#[test]
fn truncated_gzip_and_tar() {
    let data = common::content(300_000, 3);
    let tar = tar_of(&[(regular("0.vhd", data.len() as u64), &data)]);
    let archive = gz(&tar);
    for cut in [archive.len() - 4, archive.len() / 2, 11] {
        refuse(&archive[..cut], &opts(), ErrorKind::Truncated);
    }
    // A plain tar cut inside the data, and one missing its end marker.
    let e = refuse(&tar[..100_000], &opts(), ErrorKind::Truncated);
    assert_eq!(e.member_name(), Some("0.vhd"));
    refuse(&tar[..tar.len() - 1024], &opts(), ErrorKind::Truncated);
    refuse(&gz(&tar[..tar.len() - 1024]), &opts(), ErrorKind::Truncated);
}

#[test]
fn bad_header_checksum_is_corrupt() {
    let data = common::content(1000, 4);
    let mut tar = tar_of(&[
        (regular("a", data.len() as u64), &data),
        (regular("b", data.len() as u64), &data),
    ]);
    tar[1536 + 3] ^= 0x20; // the name of the second header
    let e = refuse(&gz(&tar), &opts(), ErrorKind::Corrupt);
    assert_eq!(e.offset(), Some(1536));
}

#[test]
fn corrupt_gzip_data_is_corrupt() {
    let data = common::content(300_000, 5);
    let mut archive = gz(&tar_of(&[(regular("a", data.len() as u64), &data)]));
    let n = archive.len();
    archive[n - 6] ^= 0xff; // the CRC in the trailer
    refuse(&archive, &opts(), ErrorKind::Corrupt);
}

#[test]
fn wrong_expected_digests() {
    let data = common::content(1000, 6);
    let archive = gz(&tar_of(&[(regular("a", data.len() as u64), &data)]));
    let mut o = opts();
    o.expected = Expected::from_hex(Some("00112233445566778899aabbccddeeff"), None).unwrap();
    let e = refuse(&archive, &o, ErrorKind::ChecksumMismatch);
    assert!(e.to_string().contains("MD5"), "{e}");
    let mut o = opts();
    o.expected = Expected::from_hex(None, Some(&"ab".repeat(32))).unwrap();
    refuse(&archive, &o, ErrorKind::ChecksumMismatch);
    assert_eq!(
        Expected::from_hex(Some("xyz"), None).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
}

#[test]
fn nested_directories_are_unsupported() {
    let (h, d) = file("sub/x", b"data");
    refuse(&with_good_first((h, &d)), &opts(), ErrorKind::Unsupported);
    refuse(
        &with_good_first((special("sub/", EntryType::Directory, ""), b"")),
        &opts(),
        ErrorKind::Unsupported,
    );
}

#[test]
fn a_bad_chain_leaves_nothing() {
    let mut o = opts();
    o.layout = Layout::XenServer;
    let c = common::chain3();
    // Gap: 0 and 2 only.
    let archive = gz(&tar_of(&[
        (regular("0.vhd", c[0].len() as u64), &c[0]),
        (regular("2.vhd", c[2].len() as u64), &c[2]),
    ]));
    refuse(&archive, &o, ErrorKind::Layout);
    // Parent mismatch: the leaf's parent is uuid(2) but 1.vhd is the base (uuid(3)).
    let archive = gz(&tar_of(&[
        (regular("0.vhd", c[0].len() as u64), &c[0]),
        (regular("1.vhd", c[2].len() as u64), &c[2]),
    ]));
    let e = refuse(&archive, &o, ErrorKind::Layout);
    assert_eq!(e.member_name(), Some("0.vhd"));
    // A hidden leaf.
    let archive = gz(&tar_of(&[
        (regular("0.vhd", c[1].len() as u64), &c[1]),
        (regular("1.vhd", c[2].len() as u64), &c[2]),
    ]));
    let e = refuse(&archive, &o, ErrorKind::Layout);
    assert!(e.to_string().contains("hidden"), "{e}");
    // Not a VHD at all.
    let archive = gz(&tar_of(&[(regular("0.vhd", 1024), &[0u8; 1024][..])]));
    refuse(&archive, &o, ErrorKind::NotVhd);
}

#[test]
fn existing_files_are_never_replaced() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("a"), b"mine").unwrap();
    let archive = gz(&tar_of(&[
        (regular("b", 3), &b"new"[..]),
        (regular("a", 5), &b"yours"[..]),
    ]));
    let e = unpack(&archive[..], t.path(), &opts()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert_eq!(common::listing(t.path()), vec!["a"]);
    assert_eq!(std::fs::read(t.path().join("a")).unwrap(), b"mine");
    let _ = Path::new("unused");
}
