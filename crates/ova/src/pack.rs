//! Packing: entries streamed into a tar, the tar into gzip (parallel, or
//! indexed multi-member) or left plain, with the MD5 and SHA256 of what lands
//! in the output computed on the way out.

use crate::error::{Error, Result};
use crate::gzip::indexed::{IndexedGzWriter, NamedRange};
use crate::gzip::{GzOptions, ParGzWriter};
use crate::tar::{TarWriter, WrittenEntry};
use md5::{Digest, Md5};
use sha2::Sha256;
use std::io::{self, Read, Write};

/// One file to pack: a name, its exact length, and its bytes.
pub struct PackInput<'a> {
    pub name: String,
    pub len: u64,
    pub data: Box<dyn Read + 'a>,
}

/// How the tar is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar (an OVA).
    None,
    /// One standard gzip member, compressed in parallel.
    Gzip(GzOptions),
    /// Indexed multi-member gzip: every reader sees one stream, ours can seek.
    Indexed(GzOptions),
}

/// How to pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackOptions {
    pub compression: Compression,
    /// Modification time of the entries (`None`: now).
    pub mtime: Option<u64>,
}

impl Default for PackOptions {
    fn default() -> Self {
        PackOptions {
            compression: Compression::Gzip(GzOptions::default()),
            mtime: None,
        }
    }
}

/// What a pack wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackReport {
    pub entries: Vec<WrittenEntry>,
    /// Bytes of the tar before compression.
    pub tar_bytes: u64,
    /// Bytes written to the output.
    pub output_bytes: u64,
    /// Hex digests of the output.
    pub md5: String,
    pub sha256: String,
}

/// Hashes and counts what is written through it.
pub struct HashingWriter<W> {
    inner: W,
    md5: Md5,
    sha256: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            md5: Md5::new(),
            sha256: Sha256::new(),
            count: 0,
        }
    }

    /// Bytes written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The sink, byte count and hex MD5 and SHA256.
    pub fn finish(self) -> (W, u64, String, String) {
        (
            self.inner,
            self.count,
            hex::encode(self.md5.finalize()),
            hex::encode(self.sha256.finalize()),
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.md5.update(&buf[..n]);
        self.sha256.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

enum Sink<W: Write> {
    Plain(HashingWriter<W>),
    Gzip(ParGzWriter<HashingWriter<W>>),
    Indexed(IndexedGzWriter<HashingWriter<W>>),
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Gzip(w) => w.write(buf),
            Sink::Indexed(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Gzip(w) => w.flush(),
            Sink::Indexed(w) => w.flush(),
        }
    }
}

/// Packs `inputs` in order into `out`. On error the output is incomplete; the
/// caller removes it.
pub fn pack<W: Write>(
    out: W,
    inputs: Vec<PackInput<'_>>,
    opts: &PackOptions,
) -> Result<(PackReport, W)> {
    let hashing = HashingWriter::new(out);
    let sink = match opts.compression {
        Compression::None => Sink::Plain(hashing),
        Compression::Gzip(g) => Sink::Gzip(ParGzWriter::new(hashing, g)?),
        Compression::Indexed(g) => Sink::Indexed(IndexedGzWriter::new(hashing, g)?),
    };
    let mut tar = TarWriter::new(sink);
    if let Some(t) = opts.mtime {
        tar.set_mtime(t);
    }
    for input in inputs {
        tar.append(&input.name, input.len, input.data)?;
    }
    let entries = tar.entries().to_vec();
    let tar_bytes = tar.position() + 1024;
    let sink = tar.finish()?;
    let hashing = match sink {
        Sink::Plain(h) => h,
        Sink::Gzip(g) => g.finish()?,
        Sink::Indexed(g) => {
            let names: Vec<NamedRange> = entries
                .iter()
                .map(|e| NamedRange {
                    name: e.name.clone(),
                    offset: e.data_offset,
                    len: e.size,
                })
                .collect();
            g.finish(&names)?.0
        }
    };
    let (mut out, output_bytes, md5, sha256) = hashing.finish();
    out.flush().map_err(|e| Error::io("flush output", e))?;
    Ok((
        PackReport {
            entries,
            tar_bytes,
            output_bytes,
            md5,
            sha256,
        },
        out,
    ))
}
