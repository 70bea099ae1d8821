//! The indexed form's members are compressed with libdeflate; packages whose
//! members were compressed by the earlier flate2 (zlib) encoder must still
//! decode, and libdeflate's members must read byte-exact in `gzip -dc`.

use cloudimg_ova::gzip::header;
use cloudimg_ova::gzip::indexed::{
    inflate_member, Block, Index, IndexedGzWriter, IndexedReader, NamedRange, ID_INDEX, ID_MEMBER,
    ID_TRAILER, TRAILER_LEN,
};
use cloudimg_ova::gzip::{GzOptions, MemberReader};
use cloudimg_ova::ErrorKind;
use std::io::{Read, Write};
use std::process::{Command, Stdio};

/// Compressible but not trivial: runs, text-like bytes and noise.
fn content(n: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_u32;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            match (i >> 12) % 3 {
                0 => 0,
                1 => b"cloudimg indexed gzip "[i % 22],
                _ => x as u8,
            }
        })
        .collect()
}

/// A package exactly as the flate2-based writer framed it: each chunk a
/// member deflated by zlib (flate2), `CI` = [member len][chunk len], then the
/// index in `CX` members and the `CT` trailer.
fn flate2_package(data: &[u8], chunk: usize, level: u32) -> (Vec<u8>, Index) {
    let mut out = Vec::new();
    let mut index = Index::default();
    for c in data.chunks(chunk) {
        let mut enc =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(level));
        enc.write_all(c).unwrap();
        let deflated = enc.finish().unwrap();
        let mlen = (10 + 2 + 4 + 8 + deflated.len() + 8) as u32;
        let mut extra = mlen.to_le_bytes().to_vec();
        extra.extend_from_slice(&(c.len() as u32).to_le_bytes());
        let mut m = header::with_extra(level, 0, ID_MEMBER, &extra);
        m.extend_from_slice(&deflated);
        m.extend_from_slice(&header::trailer(crc32fast::hash(c), c.len() as u64));
        assert_eq!(m.len(), mlen as usize);
        index.blocks.push(Block {
            uncompressed_offset: index.uncompressed_len,
            compressed_offset: out.len() as u64,
            compressed_len: mlen,
            uncompressed_len: c.len() as u32,
        });
        index.uncompressed_len += c.len() as u64;
        out.extend_from_slice(&m);
    }
    index.names = vec![NamedRange {
        name: "./0.vhd".into(),
        offset: 10,
        len: data.len() as u64 - 10,
    }];
    let empty = |id, piece: &[u8]| {
        let mut m = header::with_extra(level, 0, id, piece);
        m.extend_from_slice(&[0x03, 0x00]);
        m.extend_from_slice(&header::trailer(0, 0));
        m
    };
    let index_offset = out.len() as u64;
    for piece in index.to_bytes().chunks(65_000) {
        out.extend(empty(ID_INDEX, piece));
    }
    let mut t = index_offset.to_le_bytes().to_vec();
    t.extend_from_slice(&(out.len() as u64 - index_offset).to_le_bytes());
    let trailer = empty(ID_TRAILER, &t);
    assert_eq!(trailer.len() as u64, TRAILER_LEN);
    out.extend(trailer);
    (out, index)
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
fn flate2_written_packages_still_decode() {
    let data = content(700_000);
    for level in [1, 6, 9] {
        let (gz, index) = flate2_package(&data, 64 * 1024, level);
        let r = IndexedReader::open(&gz[..], gz.len() as u64, 2).unwrap();
        assert_eq!(r.index(), &index);
        let mut all = Vec::new();
        assert_eq!(r.copy_to(&mut all).unwrap(), data.len() as u64);
        assert!(all == data, "indexed reader, level {level}");
        let mut buf = vec![0u8; 100_000];
        r.read_range(123_456, &mut buf).unwrap();
        assert!(buf == data[123_456..223_456]);
        for jobs in [1, 2] {
            let mut back = Vec::new();
            let mut m = MemberReader::new(&gz[..], jobs).unwrap();
            m.read_to_end(&mut back).unwrap();
            assert!(back == data, "member reader, level {level}, {jobs} jobs");
        }
        let b = index.blocks[3];
        let member = &gz[b.compressed_offset as usize..][..b.compressed_len as usize];
        let one = inflate_member(member, b.uncompressed_len).unwrap();
        assert!(one == data[3 * 65_536..4 * 65_536]);
    }
}

#[test]
fn libdeflate_members_read_exactly_in_gzip_and_flate2() {
    let data = content(1_300_000);
    for level in [1, 6, 9] {
        let opts = GzOptions {
            jobs: 2,
            chunk_size: 256 * 1024,
            level,
            ..GzOptions::default()
        };
        let mut w = IndexedGzWriter::new(Vec::new(), opts).unwrap();
        w.write_all(&data).unwrap();
        let (gz, index) = w.finish(&[]).unwrap();
        assert_eq!(index.blocks.len(), 5);
        // Same framing as before: header with CI, CRC32 and ISIZE of each chunk.
        for b in &index.blocks {
            let m = &gz[b.compressed_offset as usize..][..b.compressed_len as usize];
            let ci = header::find_extra(m, ID_MEMBER).unwrap();
            assert_eq!(&ci[..4], &b.compressed_len.to_le_bytes());
            assert_eq!(&ci[4..], &b.uncompressed_len.to_le_bytes());
            let chunk = &data[b.uncompressed_offset as usize..][..b.uncompressed_len as usize];
            assert_eq!(
                &m[m.len() - 8..],
                &header::trailer(crc32fast::hash(chunk), chunk.len() as u64)
            );
        }
        let mut seq = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..])
            .read_to_end(&mut seq)
            .unwrap();
        assert!(seq == data, "flate2, level {level}");
        if let Some(g) = gzip_dc(&gz) {
            assert!(g == data, "gzip -dc, level {level}");
        }
    }
}

#[test]
fn junk_between_deflate_data_and_trailer_is_rejected() {
    let data = content(50_000);
    let (gz, index) = flate2_package(&data, 64 * 1024, 6);
    let b = index.blocks[0];
    let mut m = gz[..b.compressed_len as usize].to_vec();
    // Three junk bytes before the trailer, with CI saying the new length.
    let at = m.len() - 8;
    m.splice(at..at, [1u8, 2, 3]);
    let mlen = m.len() as u32;
    m[16..20].copy_from_slice(&mlen.to_le_bytes());
    let e = inflate_member(&m, b.uncompressed_len).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt);
    assert!(e.message().contains("3 bytes between"), "{e}");
    // Declaring one byte less than it holds: bounded, and typed.
    let m = &gz[..b.compressed_len as usize];
    let mut short = m.to_vec();
    short[20..24].copy_from_slice(&(b.uncompressed_len - 1).to_le_bytes());
    let e = inflate_member(&short, b.uncompressed_len - 1).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt);
    assert!(e.message().contains("more than"), "{e}");
    // Garbage deflate data.
    let mut bad = m.to_vec();
    for x in &mut bad[24..40] {
        *x = 0xff;
    }
    let e = inflate_member(&bad, b.uncompressed_len).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt);
}
