//! Parallel decompression of indexed multi-member gzip: the same bytes as the
//! sequential decoder and as `gzip -dc`, typed errors naming the damaged
//! member's offset, and unpack that still checks everything and leaves
//! nothing behind when a member is bad.

mod common;

use cloudimg_ova::gzip::indexed::{IndexedGzWriter, IndexedReader, NamedRange};
use cloudimg_ova::gzip::{GzOptions, MemberReader};
use cloudimg_ova::source::Decoder;
use cloudimg_ova::tar::TarWriter;
use cloudimg_ova::{unpack, ErrorKind, Expected, Limits, UnpackOptions};
use std::io::{Read, Write};
use std::process::{Command, Stdio};

const CHUNK: usize = 64 * 1024;

fn indexed(data: &[u8]) -> (Vec<u8>, cloudimg_ova::gzip::indexed::Index) {
    let opts = GzOptions {
        jobs: 2,
        chunk_size: CHUNK,
        ..GzOptions::default()
    };
    let mut w = IndexedGzWriter::new(Vec::new(), opts).unwrap();
    w.write_all(data).unwrap();
    w.finish(&[NamedRange {
        name: "all".into(),
        offset: 0,
        len: data.len() as u64,
    }])
    .unwrap()
}

fn stream(gz: &[u8], jobs: usize) -> cloudimg_ova::Result<Vec<u8>> {
    let mut r = MemberReader::new(gz, jobs)?;
    let mut out = Vec::new();
    r.read_to_end(&mut out)
        .map_err(|e| cloudimg_ova::Error::io("decode", e))?;
    Ok(out)
}

fn sequential(gz: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(gz)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn gzip_dc(gz: &[u8]) -> Option<Vec<u8>> {
    if !cloudimg_fixtures::env::require_tool("gzip") {
        return None;
    }
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = gz.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(out.status.success(), "gzip -dc failed");
    Some(out.stdout)
}

#[test]
fn parallel_equals_sequential_and_gzip() {
    // 3 MiB and a bit: 49 members, the last one short.
    let data = common::content((3 << 20) + 12_345, 7);
    let (gz, index) = indexed(&data);
    assert_eq!(index.blocks.len(), 49);
    let seq = sequential(&gz);
    assert!(seq == data);
    if let Some(g) = gzip_dc(&gz) {
        assert!(g == data, "gzip -dc disagrees");
    }
    for jobs in [1, 2, 3] {
        assert!(stream(&gz, jobs).unwrap() == seq, "stream, {jobs} jobs");
        let r = IndexedReader::open(&gz[..], gz.len() as u64, jobs).unwrap();
        let mut out = Vec::new();
        assert_eq!(r.copy_to(&mut out).unwrap(), data.len() as u64);
        assert!(out == seq, "copy_to, {jobs} jobs");
    }
}

#[test]
fn anything_after_the_members_decodes_sequentially() {
    let data = common::content(300_000, 3);
    let (mut gz, _) = indexed(&data);
    // Another tool's member appended: plain header, no CI subfield.
    let mut tail = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    tail.write_all(b"appended by someone else").unwrap();
    gz.extend(tail.finish().unwrap());
    let mut want = data.clone();
    want.extend_from_slice(b"appended by someone else");
    assert!(sequential(&gz) == want);
    if let Some(g) = gzip_dc(&gz) {
        assert!(g == want);
    }
    let mut r = MemberReader::new(&gz[..], 2).unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    assert!(r.fell_back());
    assert!(out == want);
}

/// Offset of data member `i` and its length.
fn member(index: &cloudimg_ova::gzip::indexed::Index, i: usize) -> (usize, usize) {
    let b = index.blocks[i];
    (b.compressed_offset as usize, b.compressed_len as usize)
}

#[test]
fn bad_crc_in_the_middle_names_the_member() {
    let data = common::content(1 << 20, 5);
    let (mut gz, index) = indexed(&data);
    let (at, len) = member(&index, 9);
    gz[at + len - 8] ^= 0x55; // the CRC32 in the member's trailer
    for jobs in [1, 2] {
        let e = stream(&gz, jobs).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
        assert_eq!(e.offset(), Some(at as u64), "{e}");
        assert!(e.message().contains("CRC mismatch"), "{e}");
        assert!(
            e.message().contains(&format!(
                "compressed offset {at} (uncompressed offset {})",
                9 * CHUNK
            )),
            "{e}"
        );
        let r = IndexedReader::open(&gz[..], gz.len() as u64, jobs).unwrap();
        let e = r.copy_to(std::io::sink()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
        assert_eq!(e.offset(), Some(at as u64), "{e}");
    }
    // Damaged deflate data inside the member is caught too.
    let (mut gz, _) = indexed(&data);
    gz[at + len / 2] ^= 0xff;
    let e = stream(&gz, 2).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    assert_eq!(e.offset(), Some(at as u64), "{e}");
}

#[test]
fn truncated_member_names_the_member() {
    let data = common::content(1 << 20, 6);
    let (gz, index) = indexed(&data);
    let (at, len) = member(&index, 7);
    let cut = &gz[..at + len / 2];
    for jobs in [1, 2] {
        let e = stream(cut, jobs).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Truncated, "{e}");
        assert_eq!(e.offset(), Some(at as u64), "{e}");
        assert!(
            e.message().contains(&format!("compressed offset {at}")),
            "{e}"
        );
    }
    // The members before the damage came out intact, in order.
    let mut r = MemberReader::new(cut, 2).unwrap();
    let mut buf = vec![0u8; 7 * CHUNK];
    r.read_exact(&mut buf).unwrap();
    assert!(buf == data[..7 * CHUNK]);
}

#[test]
fn a_member_that_inflates_past_its_declared_size_fails() {
    let data = common::content(512 * 1024, 8);
    let (mut gz, index) = indexed(&data);
    let (at, _) = member(&index, 3);
    // CI's uncompressed size (header 10, XLEN 2, id 2, len 2, mlen 4): claim one byte less.
    let ulen_at = at + 10 + 2 + 4 + 4;
    let ulen = u32::from_le_bytes(gz[ulen_at..ulen_at + 4].try_into().unwrap());
    gz[ulen_at..ulen_at + 4].copy_from_slice(&(ulen - 1).to_le_bytes());
    let e = stream(&gz, 2).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    assert_eq!(e.offset(), Some(at as u64), "{e}");
}

/// A tarball of two files, indexed-gzipped.
fn package() -> (
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
    cloudimg_ova::gzip::indexed::Index,
) {
    let a = common::content(900_000, 11);
    let b = common::content(1_300_000, 12);
    let mut t = TarWriter::new(Vec::new());
    t.set_mtime(0);
    t.append("a.bin", a.len() as u64, &a[..]).unwrap();
    t.append("b.bin", b.len() as u64, &b[..]).unwrap();
    let tar = t.finish().unwrap();
    let (gz, index) = indexed(&tar);
    (gz, a, b, index)
}

fn opts(jobs: usize) -> UnpackOptions {
    UnpackOptions {
        jobs,
        sha256: true,
        ..UnpackOptions::default()
    }
}

#[test]
fn unpack_decodes_indexed_in_parallel_with_every_check() {
    let (gz, a, b, _) = package();
    use md5::Digest;
    let md5 = format!("{:x}", md5::Md5::digest(&gz));
    let sha = format!("{:x}", sha2::Sha256::digest(&gz));
    // The parallel path is taken for an indexed stream when jobs > 1.
    let d = Decoder::with_jobs(&gz[..], Limits::default(), false, None, 2).unwrap();
    assert!(d.is_parallel() && d.is_gzip());
    let d = Decoder::with_jobs(&gz[..], Limits::default(), false, None, 1).unwrap();
    assert!(!d.is_parallel());
    for jobs in [1, 2] {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        let mut o = opts(jobs);
        o.expected = Expected::from_hex(Some(md5.as_str()), Some(sha.as_str())).unwrap();
        let r = unpack(&gz[..], &out, &o).unwrap();
        assert!(std::fs::read(out.join("a.bin")).unwrap() == a);
        assert!(std::fs::read(out.join("b.bin")).unwrap() == b);
        assert_eq!(r.stream.md5, md5);
        assert_eq!(r.stream.sha256.as_deref(), Some(sha.as_str()));
        assert_eq!(r.stream.compressed_bytes, gz.len() as u64);
        assert_eq!(common::listing(&out), vec!["a.bin", "b.bin"]);
    }
    // A wrong expected digest: refused, nothing left.
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    let mut o = opts(2);
    o.expected = Expected::from_hex(Some(&"0".repeat(32)), None).unwrap();
    let e = unpack(&gz[..], &out, &o).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ChecksumMismatch);
    assert!(!out.exists());
}

#[test]
fn unpack_of_a_corrupt_member_leaves_nothing() {
    let (gz, _, _, index) = package();
    // Member 20 lies inside b.bin (a.bin and its header end near 904 KB).
    let (at, len) = member(&index, 20);
    let mut bad_crc = gz.clone();
    bad_crc[at + len - 6] ^= 1;
    let truncated = gz[..at + 100].to_vec();
    for (archive, kind) in [
        (bad_crc, ErrorKind::Corrupt),
        (truncated, ErrorKind::Truncated),
    ] {
        for jobs in [1, 2] {
            let t = tempfile::tempdir().unwrap();
            let out = t.path().join("out");
            let e = unpack(&archive[..], &out, &opts(jobs)).unwrap_err();
            assert_eq!(e.kind(), kind, "{jobs} jobs: {e}");
            assert!(!out.exists(), "left {:?}", common::listing(&out));
            if jobs == 2 {
                // Named by the member being written and the gzip member's offset.
                assert_eq!(e.member_name(), Some("b.bin"), "{e}");
                assert_eq!(e.offset(), Some(at as u64), "{e}");
            }
            // Into an existing folder: only what was there before remains.
            std::fs::create_dir(&out).unwrap();
            std::fs::write(out.join("keep"), b"mine").unwrap();
            unpack(&archive[..], &out, &opts(jobs)).unwrap_err();
            assert_eq!(common::listing(&out), vec!["keep"]);
        }
    }
}

#[test]
fn bombs_stop_at_the_ratio_cap_in_parallel_too() {
    let zeros = vec![0u8; 24 << 20];
    let mut t = TarWriter::new(Vec::new());
    t.append("0.vhd", zeros.len() as u64, &zeros[..]).unwrap();
    let (gz, _) = indexed(&t.finish().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut o = opts(2);
    o.limits = Limits {
        ratio_grace: 1 << 20,
        max_ratio: 100,
        ..Limits::default()
    };
    let e = unpack(&gz[..], &out, &o).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}");
    assert!(!out.exists());
    o.limits.max_ratio = 2000;
    o.limits.max_total_size = 8 << 20;
    let e = unpack(&gz[..], &out, &o).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}");
    assert!(!out.exists());
}
