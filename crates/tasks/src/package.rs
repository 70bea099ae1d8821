//! Writing an image's package into the image store as a stream: tar entry -> parallel
//! gzip -> `cloudimg_pipeline`'s upload (MD5/SHA-512, segments uploaded while the next
//! ones are compressed).
//!
//! The package is the XenServer tarball: a ustar header, the VHD, padding, and the two
//! zero blocks that end an archive, gzipped on several threads as our indexed
//! multi-member gzip ([`cloudimg_ova::gzip::indexed`]): every reader (gzip, tar, nova's
//! plugins) sees one standard stream, and export reads the layers by byte range through
//! the index in the trailer instead of decompressing the whole package. A package that fits in one segment is
//! stored as a plain object; a larger one as a DLO over `<object>-00001`, ... The caller
//! writes the image record only after [`PackageWriter::finish`] has verified the listing.

use crate::chanread::ChannelReader;
use crate::error::{Error, ErrorKind, Result};
use crate::imagestore::{PackageInfo, SegmentInfo};
use cloudimg_ova::gzip::indexed::{IndexedGzWriter, NamedRange};
use cloudimg_ova::gzip::GzOptions;
use cloudimg_ova::tar::{file_header, BLOCK};
use cloudimg_pipeline::hash::Digests;
use cloudimg_pipeline::upload::{self, LargeKind, Source, UploadOptions, UploadSummary};
use cloudimg_pipeline::{ObjectPath, ObjectStore};
use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Compressed chunks queued between the gzip writer and the upload's reading thread.
const PIPE_DEPTH: usize = 8;

/// The [`PackageInfo::compression`] of an indexed package.
pub const INDEXED: &str = "gzip-indexed";
/// Uncompressed bytes per gzip member of a package: what one ranged read decompresses.
pub const MEMBER_SIZE: usize = 1 << 20;

/// How packages are written.
#[derive(Debug, Clone)]
pub struct PackageOptions {
    /// gzip level 1-9.
    pub level: u32,
    /// Compression threads.
    pub jobs: usize,
    /// Bytes per segment of a large package (the upload holds `upload_jobs + 1` of them
    /// in memory, plus the first one while the package may still fit one object).
    pub segment_size: usize,
    /// Segment uploads in flight.
    pub upload_jobs: usize,
}

impl Default for PackageOptions {
    fn default() -> Self {
        PackageOptions {
            level: 6,
            jobs: cloudimg_ova::gzip::default_jobs(),
            segment_size: 32 << 20,
            upload_jobs: 2,
        }
    }
}

/// What [`PackageWriter::finish`] produced.
#[derive(Debug, Clone)]
pub struct PackageWritten {
    /// Where the package is.
    pub info: PackageInfo,
    /// Bytes of the package.
    pub size: u64,
    /// MD5 hex of the package.
    pub md5: String,
    /// SHA512 hex of the package.
    pub sha512: String,
}

/// The compressed side: the first segment is buffered here; once the package outgrows
/// it, the bytes stream through a bounded channel into `cloudimg_pipeline`'s upload
/// running on its own thread (segments, parallel PUTs with their MD5, whole-package
/// MD5/SHA-512, listing verified, DLO manifest last), so compression and hashing and the
/// PUTs overlap.
struct Segmenter {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    first: Vec<u8>,
    opts: UploadOptions,
    pipe: Option<Pipe>,
}

/// The channel into a running upload and the thread running it.
struct Pipe {
    tx: SyncSender<io::Result<Vec<u8>>>,
    thread: JoinHandle<cloudimg_pipeline::Result<UploadSummary>>,
}

impl Segmenter {
    /// Starts the large-object upload and hands it the buffered first segment.
    fn start_pipe(&mut self) -> io::Result<()> {
        let (tx, rx) = sync_channel(PIPE_DEPTH);
        let (store, path, opts) = (self.store.clone(), self.path.clone(), self.opts.clone());
        let thread = std::thread::spawn(move || {
            let src = Source::stream(ChannelReader::new(rx));
            upload::upload(&*store, &path, src, &opts)
        });
        let first = std::mem::take(&mut self.first);
        self.pipe = Some(Pipe { tx, thread });
        self.send(first)
    }

    fn send(&mut self, data: Vec<u8>) -> io::Result<()> {
        let pipe = self.pipe.as_ref().expect("started");
        if pipe.tx.send(Ok(data)).is_ok() {
            return Ok(());
        }
        // The upload stopped: its error says why.
        let pipe = self.pipe.take().expect("started");
        drop(pipe.tx);
        Err(match pipe.thread.join() {
            Ok(Err(e)) => io::Error::other(Error::store(
                "upload package",
                self.store.url(&self.path),
                e,
            )),
            _ => io::Error::other("the package upload stopped"),
        })
    }

    /// Ends the upload: a package within one segment is one PUT, a larger one completes
    /// its large object.
    fn finish(mut self) -> Result<UploadSummary> {
        let url = self.store.url(&self.path);
        let summary = match self.pipe.take() {
            None => {
                let opts = UploadOptions {
                    large: LargeKind::Single,
                    ..self.opts.clone()
                };
                let body = std::mem::take(&mut self.first);
                upload::upload(
                    &*self.store,
                    &self.path,
                    Source::stream(io::Cursor::new(body)),
                    &opts,
                )
            }
            Some(pipe) => {
                drop(pipe.tx);
                pipe.thread.join().map_err(|_| {
                    Error::new(
                        ErrorKind::Io,
                        "upload package",
                        &url,
                        "the upload thread panicked",
                    )
                })?
            }
        };
        summary.map_err(|e| Error::store("upload package", &url, e))
    }
}

impl Drop for Segmenter {
    fn drop(&mut self) {
        // Dropped before finish (a failed import): abort the upload, which removes its
        // segments and writes no manifest.
        if let Some(pipe) = self.pipe.take() {
            let _ = pipe.tx.send(Err(io::Error::other("package abandoned")));
            drop(pipe.tx);
            let _ = pipe.thread.join();
        }
    }
}

impl Write for Segmenter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.pipe.is_some() {
            self.send(data.to_vec())?;
            return Ok(data.len());
        }
        self.first.extend_from_slice(data);
        if self.first.len() as u64 > self.opts.segment_size {
            self.start_pipe()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A tar-entry-in-gzip writer that uploads as it goes.
pub struct PackageWriter {
    gz: Option<IndexedGzWriter<Segmenter>>,
    member: String,
    /// Where the member's data starts in the tar (after its header blocks).
    data_offset: u64,
    entry_len: u64,
    written: u64,
    url: String,
}

impl PackageWriter {
    /// Starts the package `path` holding one member `member` of exactly `len` bytes.
    /// Any old objects of that name (debris of an earlier run) must be gone already.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        path: ObjectPath,
        member: &str,
        len: u64,
        opts: &PackageOptions,
    ) -> Result<PackageWriter> {
        let url = store.url(&path);
        let seg = Segmenter {
            store,
            path,
            first: Vec::new(),
            opts: UploadOptions {
                segment_size: opts.segment_size.max(1 << 20) as u64,
                jobs: opts.upload_jobs.max(1),
                large: LargeKind::Dlo,
                // Debris of earlier runs is removed before an import starts over.
                resume: false,
                remove_on_error: true,
                content_type: Some("application/gzip".into()),
                // The record keeps MD5 and SHA-512 only (Glance's checksum and
                // os_hash_value); SHA-256 would cost a core's worth of hashing for nothing.
                digests: Digests::GLANCE,
                ..UploadOptions::default()
            },
            pipe: None,
        };
        let gzo = GzOptions {
            level: opts.level,
            jobs: opts.jobs.max(1),
            chunk_size: MEMBER_SIZE,
            ..GzOptions::default()
        };
        let mut gz =
            IndexedGzWriter::new(seg, gzo).map_err(|e| Error::package("start gzip", &url, e))?;
        let mtime = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let header = file_header(member, len, mtime)
            .map_err(|e| Error::package("write tar header", &url, e))?;
        gz.write_all(header.as_bytes())
            .map_err(|e| crate::error::from_io("write package", &url, e))?;
        Ok(PackageWriter {
            gz: Some(gz),
            member: member.to_string(),
            data_offset: BLOCK as u64,
            entry_len: len,
            written: 0,
            url,
        })
    }

    /// Ends the member and the archive, uploads what is left, verifies the segments and
    /// (for a small package) stores the plain object. Fails if the member was not
    /// exactly the announced length.
    pub fn finish(mut self) -> Result<PackageWritten> {
        if self.written != self.entry_len {
            return Err(Error::new(
                ErrorKind::Io,
                "write package",
                &self.url,
                format!(
                    "member got {} bytes, header says {}",
                    self.written, self.entry_len
                ),
            ));
        }
        let mut gz = self.gz.take().expect("finish once");
        let pad = (BLOCK as u64 - self.entry_len % BLOCK as u64) % BLOCK as u64;
        let tail = vec![0u8; pad as usize + 2 * BLOCK];
        gz.write_all(&tail)
            .map_err(|e| crate::error::from_io("write package", &self.url, e))?;
        let names = [NamedRange {
            name: self.member.clone(),
            offset: self.data_offset,
            len: self.entry_len,
        }];
        let (seg, _) = gz.finish(&names).map_err(|e| package_error(&self.url, e))?;
        let path = seg.path.clone();
        let summary = seg.finish()?;
        // Verified against the listing by the upload before its manifest was written.
        let segments: Vec<SegmentInfo> = summary
            .segment_list
            .iter()
            .map(|s| SegmentInfo {
                name: s.path.name.clone(),
                size: s.size,
                etag: s.etag.clone(),
            })
            .collect();
        let listed: u64 = segments.iter().map(|s| s.size).sum();
        if !segments.is_empty() && listed != summary.bytes {
            return Err(Error::new(
                ErrorKind::Store,
                "verify package",
                &self.url,
                format!("segments hold {listed} bytes, wrote {}", summary.bytes),
            ));
        }
        Ok(PackageWritten {
            info: PackageInfo {
                object: path.name.clone(),
                segments,
                compression: INDEXED.into(),
                layers: vec![self.member.clone()],
            },
            size: summary.bytes,
            md5: summary.checksums.md5,
            sha512: summary.checksums.sha512,
        })
    }
}

fn package_error(url: &str, e: cloudimg_ova::Error) -> Error {
    crate::error::from_package("write package", url, e)
}

impl Write for PackageWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.written + data.len() as u64 > self.entry_len {
            return Err(io::Error::other("more data than the tar header announced"));
        }
        let n = self.gz.as_mut().expect("open").write(data)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
