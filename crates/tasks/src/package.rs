//! Writing an image's package into the image store as a stream: tar entry -> parallel
//! gzip -> MD5/SHA512 -> segments uploaded while the next ones are compressed.
//!
//! The package is the XenServer tarball: a ustar header, the VHD, padding, and the two
//! zero blocks that end an archive, gzipped on several threads as our indexed
//! multi-member gzip ([`cloudimg_ova::gzip::indexed`]): every reader (gzip, tar, nova's
//! plugins) sees one standard stream, and export reads the layers by byte range through
//! the index in the trailer instead of decompressing the whole package. A package that fits in one segment is
//! stored as a plain object; a larger one as a DLO over `<object>-00001`, ... The caller
//! writes the image record only after [`PackageWriter::finish`] has verified the listing.

use crate::error::{to_io, Error, ErrorKind, Result};
use crate::imagestore::{PackageInfo, SegmentInfo};
use crate::segments::{self, Uploader, Written};
use cloudimg_ova::gzip::indexed::{IndexedGzWriter, NamedRange};
use cloudimg_ova::gzip::GzOptions;
use cloudimg_ova::tar::{Header, BLOCK};
use cloudimg_pipeline::{ObjectPath, ObjectStore, PutOptions};
use md5::{Digest, Md5};
use sha2::Sha512;
use std::io::{self, Write};
use std::sync::Arc;

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
    /// Bytes per segment of a large package (each is held in memory while it uploads).
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

/// The compressed side: hashes and cuts the gzip stream into segments.
struct Segmenter {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    buf: Vec<u8>,
    segment_size: usize,
    uploader: Option<Uploader>,
    upload_jobs: usize,
    md5: Md5,
    sha512: Sha512,
    total: u64,
}

impl Segmenter {
    fn flush_segment(&mut self) -> Result<()> {
        let (store, path, jobs) = (&self.store, &self.path, self.upload_jobs);
        let up = self.uploader.get_or_insert_with(|| {
            Uploader::new(store.clone(), &path.container, &path.name, jobs, 1)
        });
        let body = std::mem::replace(&mut self.buf, Vec::with_capacity(self.segment_size));
        up.submit(Box::new(body))
    }
}

impl Write for Segmenter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.md5.update(data);
        self.sha512.update(data);
        self.total += data.len() as u64;
        let mut rest = data;
        while !rest.is_empty() {
            let n = rest.len().min(self.segment_size - self.buf.len());
            self.buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if self.buf.len() == self.segment_size {
                self.flush_segment().map_err(to_io)?;
            }
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
            buf: Vec::with_capacity(opts.segment_size.min(1 << 20)),
            segment_size: opts.segment_size.max(1 << 20),
            uploader: None,
            upload_jobs: opts.upload_jobs,
            md5: Md5::new(),
            sha512: Sha512::new(),
            total: 0,
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
        let header = Header::file(member, len, mtime)
            .to_bytes()
            .map_err(|e| Error::package("write tar header", &url, e))?;
        gz.write_all(&header)
            .map_err(|e| crate::error::from_io("write package", &url, e))?;
        Ok(PackageWriter {
            gz: Some(gz),
            member: member.to_string(),
            data_offset: header.len() as u64,
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
        let (mut seg, _) = gz.finish(&names).map_err(|e| package_error(&self.url, e))?;
        let md5 = hex::encode(seg.md5.finalize_reset());
        let sha512 = hex::encode(seg.sha512.finalize_reset());
        let size = seg.total;
        let (store, path) = (seg.store.clone(), seg.path.clone());
        let segments = match seg.uploader.take() {
            None => {
                // Small: one plain object, whose ETag the store checks against our MD5.
                let body = std::mem::take(&mut seg.buf);
                let opts = PutOptions {
                    md5: Some(md5.clone()),
                    content_type: Some("application/gzip".into()),
                    ..Default::default()
                };
                store
                    .put(&path, &body, &opts)
                    .map_err(|e| Error::store("upload package", &self.url, e))?;
                Vec::new()
            }
            Some(mut up) => {
                if !seg.buf.is_empty() {
                    let body = std::mem::take(&mut seg.buf);
                    if let Err(e) = up.submit(Box::new(body)) {
                        up.abort();
                        return Err(e);
                    }
                }
                let written = up.finish()?;
                finish_large(&*store, &path, &written, size)?;
                written
                    .into_iter()
                    .map(|w: Written| SegmentInfo {
                        name: w.name,
                        size: w.size,
                        etag: w.etag,
                    })
                    .collect()
            }
        };
        let info = store
            .head(&path)
            .map_err(|e| Error::store("verify package", &self.url, e))?;
        if info.size != size {
            return Err(Error::new(
                ErrorKind::Store,
                "verify package",
                &self.url,
                format!("the store holds {} bytes, wrote {size}", info.size),
            ));
        }
        Ok(PackageWritten {
            info: PackageInfo {
                object: path.name.clone(),
                segments,
                compression: INDEXED.into(),
                layers: vec![self.member.clone()],
            },
            size,
            md5,
            sha512,
        })
    }
}

fn finish_large(
    store: &dyn ObjectStore,
    path: &ObjectPath,
    written: &[Written],
    size: u64,
) -> Result<()> {
    let total: u64 = written.iter().map(|w| w.size).sum();
    if total != size {
        return Err(Error::new(
            ErrorKind::Store,
            "upload package",
            store.url(path),
            format!("segments hold {total} bytes, wrote {size}"),
        ));
    }
    let prefix = format!("{}-", path.name);
    segments::verify_listing(store, &path.container, &prefix, written)?;
    store
        .put_dlo_manifest(path, &path.container, &prefix)
        .map_err(|e| Error::store("write package manifest", store.url(path), e))
}

fn package_error(url: &str, e: cloudimg_ova::Error) -> Error {
    // An upload failure travels through the gzip writer as an I/O error; recover it.
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = src {
        if let Some(ours) = s.downcast_ref::<Error>() {
            return Error::new(ours.kind(), "write package", url, ours.to_string());
        }
        src = s.source();
    }
    Error::package("write package", url, e)
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
