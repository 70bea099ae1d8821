//! Hashing helpers: the whole-object digests (MD5, SHA-256, SHA-512) computed in one pass,
//! per-segment MD5 readers, and ETag normalisation.

use md5::{Digest, Md5};
use serde::Serialize;
use sha2::Sha256;
use std::io::{self, Read};

pub use crate::md5pair::{md5_hex_pair, SegmentedMd5};

/// Hex digests of a whole object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Checksums {
    /// MD5, lowercase hex.
    pub md5: String,
    /// SHA-256, lowercase hex; empty when [`Digests::sha256`] was off.
    pub sha256: String,
    /// SHA-512, lowercase hex; empty when [`Digests::sha512`] was off.
    pub sha512: String,
}

/// Which whole-object digests an upload computes. Each costs a core's worth of hashing
/// on a fast link, so a caller that does not record one turns it off. Whole-object MD5
/// comes free with a source read in order (it is the second lane of the per-segment MD5
/// pass, see [`SegmentedMd5`]) and is reported whatever `md5` says; it matters for a
/// positional source ([`crate::upload::Source::ranges`]): with no digest at all, its
/// segments are hashed only while sent, each byte produced once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digests {
    /// MD5 of the whole object (Glance's `checksum`).
    pub md5: bool,
    /// SHA-256 of the whole object.
    pub sha256: bool,
    /// SHA-512 of the whole object (Glance's `os_hash_value`).
    pub sha512: bool,
}

impl Default for Digests {
    fn default() -> Self {
        Digests::ALL
    }
}

impl Digests {
    /// MD5, SHA-256 and SHA-512.
    pub const ALL: Digests = Digests {
        md5: true,
        sha256: true,
        sha512: true,
    };
    /// MD5 and SHA-512: what a Glance image record carries.
    pub const GLANCE: Digests = Digests {
        md5: true,
        sha256: false,
        sha512: true,
    };
    /// MD5 only.
    pub const MD5: Digests = Digests {
        md5: true,
        sha256: false,
        sha512: false,
    };
    /// None: the segments' own MD5s (checked against their ETags) are all an upload needs.
    pub const NONE: Digests = Digests {
        md5: false,
        sha256: false,
        sha512: false,
    };

    /// True when any whole-object digest is asked for.
    pub fn any(self) -> bool {
        self.md5 || self.sha256 || self.sha512
    }

    /// Names of those asked for (`md5`, `sha256`, `sha512`).
    pub fn names(self) -> Vec<String> {
        [
            (self.md5, "md5"),
            (self.sha256, "sha256"),
            (self.sha512, "sha512"),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| n.to_string())
        .collect()
    }

    /// Parses a comma-separated list of `md5`, `sha256`, `sha512` (or `all`, `none`).
    pub fn parse(list: &str) -> std::result::Result<Self, String> {
        let mut d = Digests::NONE;
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name.to_ascii_lowercase().as_str() {
                "md5" => d.md5 = true,
                "sha256" => d.sha256 = true,
                "sha512" => d.sha512 = true,
                "all" => d = Digests::ALL,
                "none" => d = Digests::NONE,
                other => return Err(format!("unknown digest {other:?} (md5, sha256, sha512)")),
            }
        }
        Ok(d)
    }
}

impl Checksums {
    /// Names of the digests that were computed (those not left empty).
    pub fn computed(&self) -> Vec<String> {
        [
            (&self.md5, "md5"),
            (&self.sha256, "sha256"),
            (&self.sha512, "sha512"),
        ]
        .into_iter()
        .filter(|(v, _)| !v.is_empty())
        .map(|(_, n)| n.to_string())
        .collect()
    }
}

/// SHA-512 (Glance's `os_hash_value`) by `ring`, whose x86_64 assembly (OpenSSL's) hashed
/// 1.12x as many bytes per CPU second as `sha2` 0.10's AVX2 code on this project's
/// machines (docs/DESIGN.md, "SHA-512 and MD5 implementations"); the same digest.
#[derive(Clone)]
pub struct Sha512(ring::digest::Context);

impl Default for Sha512 {
    fn default() -> Self {
        Self::new()
    }
}

impl Sha512 {
    /// A fresh hash.
    pub fn new() -> Self {
        Sha512(ring::digest::Context::new(&ring::digest::SHA512))
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The digest as lowercase hex.
    pub fn finish_hex(self) -> String {
        hex::encode(self.0.finish())
    }

    /// SHA-512 of a byte slice as lowercase hex.
    pub fn digest_hex(data: &[u8]) -> String {
        let mut h = Self::new();
        h.update(data);
        h.finish_hex()
    }
}

/// A whole-object digest a hashing thread drives: fed in order, read as hex at the end.
pub(crate) trait StreamDigest: Send {
    /// A fresh hash.
    fn start() -> Self;
    /// Feeds bytes.
    fn feed(&mut self, data: &[u8]);
    /// The digest as lowercase hex.
    fn hex(self) -> String;
}

impl StreamDigest for Sha256 {
    fn start() -> Self {
        Sha256::new()
    }
    fn feed(&mut self, data: &[u8]) {
        self.update(data);
    }
    fn hex(self) -> String {
        hex::encode(self.finalize())
    }
}

impl StreamDigest for Sha512 {
    fn start() -> Self {
        Sha512::new()
    }
    fn feed(&mut self, data: &[u8]) {
        self.update(data);
    }
    fn hex(self) -> String {
        self.finish_hex()
    }
}

/// MD5 and the chosen [`Digests`] fed with the same bytes.
#[derive(Clone, Default)]
pub struct MultiHasher {
    md5: Md5,
    sha256: Option<Sha256>,
    sha512: Option<Sha512>,
}

impl MultiHasher {
    /// A fresh hasher of all three digests.
    pub fn new() -> Self {
        Self::with(Digests::ALL)
    }

    /// A fresh hasher of MD5 and `digests`.
    pub fn with(digests: Digests) -> Self {
        MultiHasher {
            md5: Md5::new(),
            sha256: digests.sha256.then(Sha256::new),
            sha512: digests.sha512.then(Sha512::new),
        }
    }

    /// Feeds bytes. The three digests run on scoped threads for large chunks so that one
    /// core is not the ceiling of the pipeline.
    pub fn update(&mut self, data: &[u8]) {
        if data.len() < (1 << 20) {
            self.md5.update(data);
            if let Some(h) = &mut self.sha256 {
                h.update(data);
            }
            if let Some(h) = &mut self.sha512 {
                h.update(data);
            }
            return;
        }
        let (md5, sha256, sha512) = (&mut self.md5, &mut self.sha256, &mut self.sha512);
        std::thread::scope(|s| {
            if let Some(h) = sha512 {
                s.spawn(|| h.update(data));
            }
            if let Some(h) = sha256 {
                s.spawn(|| h.update(data));
            }
            md5.update(data);
        });
    }

    /// The hex digests (empty for those not chosen).
    pub fn finish(self) -> Checksums {
        Checksums {
            md5: hex::encode(self.md5.finalize()),
            sha256: self
                .sha256
                .map(|h| hex::encode(h.finalize()))
                .unwrap_or_default(),
            sha512: self.sha512.map(Sha512::finish_hex).unwrap_or_default(),
        }
    }
}

/// MD5 of a byte slice as lowercase hex.
pub fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

/// Strips quotes and lowercases an ETag so that `"ABC"` and `abc` compare equal.
pub fn normalize_etag(etag: &str) -> String {
    etag.trim().trim_matches('"').to_ascii_lowercase()
}

/// The ETag Swift reports for a DLO/SLO and S3 for a multipart object: MD5 of the
/// concatenated binary (S3) or hex (Swift) segment MD5s.
pub fn md5_of_hex_etags<'a>(etags: impl IntoIterator<Item = &'a str>) -> String {
    let mut h = Md5::new();
    for e in etags {
        h.update(normalize_etag(e).as_bytes());
    }
    hex::encode(h.finalize())
}

/// S3 multipart ETag: `md5(concat(binary part md5s))-N`.
pub fn s3_multipart_etag<'a>(etags: impl IntoIterator<Item = &'a str>) -> String {
    let mut h = Md5::new();
    let mut n = 0;
    for e in etags {
        let bin = hex::decode(normalize_etag(e)).unwrap_or_default();
        h.update(&bin);
        n += 1;
    }
    format!("{}-{n}", hex::encode(h.finalize()))
}

/// A reader that computes the MD5 and counts the bytes of what passes through.
pub struct Md5Reader<R> {
    inner: R,
    md5: Md5,
    count: u64,
}

impl<R: Read> Md5Reader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        Md5Reader {
            inner,
            md5: Md5::new(),
            count: 0,
        }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Hex MD5 of everything read.
    pub fn finish(self) -> (String, u64) {
        (hex::encode(self.md5.finalize()), self.count)
    }
}

impl<R: Read> Read for Md5Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.md5.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        let mut h = MultiHasher::new();
        h.update(b"abc");
        let c = h.finish();
        assert_eq!(c.md5, "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            c.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(c.sha512.starts_with("ddaf35a193617aba"));
    }

    #[test]
    fn big_chunks_match_small_ones() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut a = MultiHasher::new();
        a.update(&data);
        let mut b = MultiHasher::new();
        for c in data.chunks(1000) {
            b.update(c);
        }
        assert_eq!(a.finish(), b.finish());
    }

    #[test]
    fn sha512_matches_the_sha2_crate() {
        use sha2::Digest as _;
        assert_eq!(
            Sha512::digest_hex(b"abc"),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
        let data: Vec<u8> = (0..3_000_001u32).map(|i| (i * 13 % 251) as u8).collect();
        let mut h = Sha512::new();
        for c in data.chunks(65_537) {
            h.update(c);
        }
        assert_eq!(h.finish_hex(), hex::encode(sha2::Sha512::digest(&data)));
    }

    #[test]
    fn etags() {
        assert_eq!(normalize_etag("\"ABCD\""), "abcd");
        let e = md5_hex(b"x");
        assert_eq!(md5_of_hex_etags([e.as_str()]), md5_hex(e.as_bytes()));
        assert!(s3_multipart_etag([e.as_str(), e.as_str()]).ends_with("-2"));
    }
}
