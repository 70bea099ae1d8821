//! The storage interface every backend implements, and the value types it speaks.
//!
//! Objects are addressed by [`ObjectPath`] (container or bucket + object name). The trait
//! holds primitives only; segmenting, parallelism and verification live in
//! [`crate::upload`] and [`crate::download`], so they are written once for every backend.
//! Every primitive retries transient failures itself (see [`crate::retry`]) except reading
//! a returned body stream, which the caller re-requests.

use crate::error::{Error, ErrorKind, Result};
use crate::retry::RetryPolicy;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::ops::Range;
use std::sync::Arc;

/// A container (Swift), bucket (S3) or directory (local), and an object name inside it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ObjectPath {
    /// Container, bucket or top-level directory.
    pub container: String,
    /// Object name; may contain `/`.
    pub name: String,
}

impl ObjectPath {
    /// Builds a path.
    pub fn new(container: impl Into<String>, name: impl Into<String>) -> Self {
        ObjectPath {
            container: container.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for ObjectPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.container, self.name)
    }
}

/// A request body that can be read again from the start, so a failed PUT can be retried.
pub trait Body: Send + Sync {
    /// Exact number of bytes the reader yields.
    fn len(&self) -> u64;
    /// True when empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// A fresh reader from the first byte.
    fn reader(&self) -> io::Result<Box<dyn Read + Send + '_>>;
    /// All the bytes, when they are already in memory: lets an HTTP client send them with
    /// one write instead of copying them through a reader.
    fn as_slice(&self) -> Option<&[u8]> {
        None
    }
    /// The MD5 (hex) of exactly the bytes of [`Body::as_slice`], computed by this process
    /// from that very memory ([`HashedSlice`]). A store that writes the bytes itself (the
    /// local store) records it as the ETag instead of hashing them once more; a remote
    /// store sends it as the expected MD5 (Swift `ETag`, S3 `Content-MD5`) and the server
    /// checks what it received. `None` for a body read again from a file or a source,
    /// which may have changed since it was hashed: the store hashes what it sends.
    fn md5_of_memory(&self) -> Option<&str> {
        None
    }
}

/// Bytes in memory with the MD5 this process computed of them, so that no store hashes
/// them again in-process (see [`Body::md5_of_memory`]). Made only by the upload engine,
/// right where it hashed the bytes, so the claim cannot be made of other bytes.
#[derive(Debug, Clone, Copy)]
pub struct HashedSlice<'a> {
    bytes: &'a [u8],
    md5: &'a str,
}

impl<'a> HashedSlice<'a> {
    /// `md5` must be the hex MD5 of `bytes`, computed from them in this process.
    pub(crate) fn new(bytes: &'a [u8], md5: &'a str) -> Self {
        HashedSlice { bytes, md5 }
    }
}

impl Body for HashedSlice<'_> {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }
    fn reader(&self) -> io::Result<Box<dyn Read + Send + '_>> {
        Ok(Box::new(self.bytes))
    }
    fn as_slice(&self) -> Option<&[u8]> {
        Some(self.bytes)
    }
    fn md5_of_memory(&self) -> Option<&str> {
        Some(self.md5)
    }
}

impl Body for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn reader(&self) -> io::Result<Box<dyn Read + Send + '_>> {
        Ok(Box::new(self))
    }
    fn as_slice(&self) -> Option<&[u8]> {
        Some(self)
    }
}

impl Body for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }
    fn reader(&self) -> io::Result<Box<dyn Read + Send + '_>> {
        Ok(Box::new(self.as_slice()))
    }
    fn as_slice(&self) -> Option<&[u8]> {
        Some(self)
    }
}

/// A byte range of a local file, read with positional reads (no shared cursor), so
/// several segments of one file can be sent in parallel and retried.
#[derive(Debug, Clone)]
pub struct FileRange {
    /// The file.
    pub file: Arc<File>,
    /// First byte.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

impl Body for FileRange {
    fn len(&self) -> u64 {
        self.len
    }
    fn reader(&self) -> io::Result<Box<dyn Read + Send + '_>> {
        Ok(Box::new(PreadReader {
            file: &self.file,
            pos: self.offset,
            end: self.offset + self.len,
        }))
    }
}

struct PreadReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for PreadReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let want = (self.end - self.pos).min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while being uploaded",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// Options of a single PUT.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// Expected MD5 (hex). Sent to the server (Swift `ETag`, S3 `Content-MD5`) so it refuses
    /// corrupted bodies; the returned ETag is always compared with the MD5 of what was sent.
    pub md5: Option<String>,
    /// Content type.
    pub content_type: Option<String>,
    /// User metadata (`X-Object-Meta-*` / `x-amz-meta-*`), keys lowercase.
    pub metadata: BTreeMap<String, String>,
}

/// What a successful PUT returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutResult {
    /// Normalised ETag (lowercase hex, no quotes); equals the MD5 of the body.
    pub etag: String,
    /// Bytes sent.
    pub size: u64,
}

/// Large-object information found by `head`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Manifest {
    /// Swift dynamic large object: every object under `container`/`prefix`, lexical order.
    Dlo {
        /// Segment container.
        container: String,
        /// Segment name prefix.
        prefix: String,
    },
    /// Swift static large object; fetch the segment list with `get_slo_manifest`.
    Slo,
    /// S3 multipart object (ETag `...-N`).
    S3Multipart {
        /// Number of parts, from the ETag.
        parts: u32,
    },
}

/// What `head` knows about an object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ObjectInfo {
    /// Content length (for a Swift large object, the total the server reports).
    pub size: u64,
    /// Normalised ETag, if any.
    pub etag: Option<String>,
    /// Large-object manifest, if the object is one.
    pub manifest: Option<Manifest>,
    /// Content type, if known.
    pub content_type: Option<String>,
    /// User metadata, keys lowercase without the `x-object-meta-`/`x-amz-meta-` prefix.
    pub metadata: BTreeMap<String, String>,
}

/// One object in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListEntry {
    /// Object name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Normalised ETag.
    pub etag: String,
}

/// One page of a listing; the next page starts after the last entry's name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    /// Entries in byte-wise lexical order.
    pub entries: Vec<ListEntry>,
    /// True when more entries may follow.
    pub truncated: bool,
}

/// A segment of a static large object (SLO) manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SegmentRef {
    /// The segment object.
    pub path: ObjectPath,
    /// Normalised ETag (MD5 hex).
    pub etag: String,
    /// Size in bytes.
    pub size: u64,
}

/// A part of an S3 multipart upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartInfo {
    /// 1-based part number.
    pub number: u32,
    /// Normalised ETag.
    pub etag: String,
    /// Size in bytes.
    pub size: u64,
}

/// What a backend can do; the upload engine picks a large-object kind from this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Swift-style dynamic large objects.
    pub dlo: bool,
    /// Swift-style static large objects.
    pub slo: bool,
    /// S3-style multipart uploads.
    pub multipart: bool,
    /// Largest single object (or segment/part).
    pub max_object_size: u64,
    /// Most segments in one SLO manifest / parts in one multipart upload.
    pub max_segments: u64,
    /// Smallest part except the last (S3: 5 MiB), 0 when unconstrained.
    pub min_part_size: u64,
}

/// A response body of known length; reading past a short body yields an
/// `UnexpectedEof` error rather than a silent short read.
pub struct GetStream {
    /// The bytes.
    pub reader: Box<dyn Read + Send>,
    /// Expected number of bytes.
    pub len: u64,
}

/// The storage interface. All methods are blocking and thread-safe; share a store as
/// `Arc<dyn ObjectStore>` among worker threads.
pub trait ObjectStore: Send + Sync + std::fmt::Debug {
    /// A URL for messages (`swift://c/o`, `s3://b/k`, `file:///...`).
    fn url(&self, path: &ObjectPath) -> String;

    /// What this backend supports.
    fn capabilities(&self) -> Capabilities;

    /// The retry policy used by this store's primitives (and by callers re-reading bodies).
    fn retry_policy(&self) -> RetryPolicy;

    /// Creates the container if missing (idempotent).
    fn ensure_container(&self, container: &str) -> Result<()>;

    /// True when the container exists.
    fn container_exists(&self, container: &str) -> Result<bool>;

    /// Stores `body` as one object. Computes the MD5 while sending and fails with
    /// [`ErrorKind::Integrity`] if the server's ETag differs (or `opts.md5` does).
    fn put(&self, path: &ObjectPath, body: &dyn Body, opts: &PutOptions) -> Result<PutResult>;

    /// Reads an object, or `range` of it (end exclusive; must be non-empty and within size).
    /// For a Swift large object the server concatenates the segments.
    fn get(&self, path: &ObjectPath, range: Option<Range<u64>>) -> Result<GetStream>;

    /// The bytes of several small `ranges` of one object (ascending, not overlapping,
    /// non-empty, within the object) in as few requests as the store allows, or `None`
    /// when it would take a request per range: then a caller that needs most of the
    /// object does better streaming it. Swift asks for [`crate::byteranges::MAX_PER_REQUEST`]
    /// ranges per GET; the local store reads its file.
    fn get_ranges(&self, path: &ObjectPath, ranges: &[Range<u64>]) -> Result<Option<Vec<Vec<u8>>>> {
        let _ = (path, ranges);
        Ok(None)
    }

    /// Size, ETag, metadata and large-object manifest information.
    fn head(&self, path: &ObjectPath) -> Result<ObjectInfo>;

    /// The file on this machine holding a plain object's bytes, when the store is a local
    /// directory (None: read them with [`ObjectStore::get`]). The store never writes such a
    /// file in place (a write is a new file renamed over the name), so an open or mapped
    /// file keeps the bytes it had when opened.
    fn local_file(&self, _path: &ObjectPath) -> Option<std::path::PathBuf> {
        None
    }

    /// What [`ObjectStore::head`] says, except that the ETag may be left out (`None`)
    /// where knowing it would cost a read of the whole object: the local store's ETag of
    /// a file it did not write itself (no sidecar) is the MD5 of all its bytes. For a
    /// caller that needs the size and the large-object manifest only (an import opening
    /// its source, whose bytes it then reads and checks as a VHD).
    fn head_unhashed(&self, path: &ObjectPath) -> Result<ObjectInfo> {
        self.head(path)
    }

    /// Up to `limit` objects whose names start with `prefix` and sort after `marker`.
    fn list(
        &self,
        container: &str,
        prefix: &str,
        marker: Option<&str>,
        limit: usize,
    ) -> Result<ListPage>;

    /// Deletes one object (a manifest only, not its segments). Missing is `NotFound`.
    fn delete(&self, path: &ObjectPath) -> Result<()>;

    /// Writes a zero-byte DLO manifest pointing at `segments_container`/`prefix`.
    fn put_dlo_manifest(
        &self,
        path: &ObjectPath,
        segments_container: &str,
        prefix: &str,
    ) -> Result<()> {
        let _ = (segments_container, prefix);
        Err(unsupported(self, path, "DLO manifests"))
    }

    /// Writes an SLO manifest listing `segments` in order (the server checks etags/sizes).
    fn put_slo_manifest(&self, path: &ObjectPath, segments: &[SegmentRef]) -> Result<()> {
        let _ = segments;
        Err(unsupported(self, path, "SLO manifests"))
    }

    /// Reads an SLO manifest's segment list.
    fn get_slo_manifest(&self, path: &ObjectPath) -> Result<Vec<SegmentRef>> {
        Err(unsupported(self, path, "SLO manifests"))
    }

    /// Starts an S3 multipart upload; returns its upload id.
    fn multipart_begin(&self, path: &ObjectPath) -> Result<String> {
        Err(unsupported(self, path, "multipart uploads"))
    }

    /// The id of an unfinished multipart upload of `path`, if any (the newest).
    fn multipart_find(&self, path: &ObjectPath) -> Result<Option<String>> {
        Err(unsupported(self, path, "multipart uploads"))
    }

    /// Uploads one part (1-based `number`), with the same MD5 check as `put`.
    fn multipart_put_part(
        &self,
        path: &ObjectPath,
        upload_id: &str,
        number: u32,
        body: &dyn Body,
        md5: Option<&str>,
    ) -> Result<PutResult> {
        let _ = (upload_id, number, body, md5);
        Err(unsupported(self, path, "multipart uploads"))
    }

    /// Parts uploaded so far.
    fn multipart_list_parts(&self, path: &ObjectPath, upload_id: &str) -> Result<Vec<PartInfo>> {
        let _ = upload_id;
        Err(unsupported(self, path, "multipart uploads"))
    }

    /// Completes the upload with `parts` in order; returns the final ETag.
    fn multipart_complete(
        &self,
        path: &ObjectPath,
        upload_id: &str,
        parts: &[PartInfo],
    ) -> Result<String> {
        let _ = (upload_id, parts);
        Err(unsupported(self, path, "multipart uploads"))
    }

    /// Aborts the upload, discarding its parts.
    fn multipart_abort(&self, path: &ObjectPath, upload_id: &str) -> Result<()> {
        let _ = upload_id;
        Err(unsupported(self, path, "multipart uploads"))
    }
}

fn unsupported<S: ObjectStore + ?Sized>(store: &S, path: &ObjectPath, what: &str) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        "large object",
        store.url(path),
        format!("this backend does not support {what}"),
    )
}

/// The most entries [`list_all`] collects: above the largest large object any backend
/// allows (the local store's 1,000,000 segments), so only a lying or runaway listing hits it.
pub const LIST_ALL_MAX: usize = 1_000_000;

/// Every entry under `prefix`, following pages.
///
/// The listing comes from the network, so it is held to what a server must do: names
/// strictly ascending across pages (each page starts after its marker), and at most
/// [`LIST_ALL_MAX`] entries. A server that repeats a page or never stops is refused
/// with [`ErrorKind::Permanent`] instead of being followed forever.
pub fn list_all(store: &dyn ObjectStore, container: &str, prefix: &str) -> Result<Vec<ListEntry>> {
    let mut out: Vec<ListEntry> = Vec::new();
    loop {
        let marker = out.last().map(|e| e.name.clone());
        let page = store.list(container, prefix, marker.as_deref(), 1000)?;
        let got = page.entries.len();
        let mut last = marker.as_deref();
        for e in &page.entries {
            if last.is_some_and(|l| e.name.as_str() <= l) {
                return Err(Error::new(
                    ErrorKind::Permanent,
                    "list",
                    format!("{container}/{prefix}"),
                    format!(
                        "listing out of order: {:?} after {:?} (a server must list names ascending after the marker)",
                        e.name,
                        last.unwrap_or_default()
                    ),
                ));
            }
            last = Some(e.name.as_str());
        }
        if out.len() + got > LIST_ALL_MAX {
            return Err(Error::new(
                ErrorKind::Permanent,
                "list",
                format!("{container}/{prefix}"),
                format!("listing has more than {LIST_ALL_MAX} entries"),
            ));
        }
        out.extend(page.entries);
        if !page.truncated || got == 0 {
            return Ok(out);
        }
    }
}

/// `store.get(path, Some(range))` for a caller that checks the bytes itself (or does not
/// need the server to): a range starting at byte 0 is asked for as two GETs, the first
/// byte and then the rest. Swift's object server MD5s every read that starts at byte 0
/// (to quarantine bit rot once it reaches the end; the client has its bytes by then), at
/// about three times the CPU of sending them: 0.16 s against 0.04 s of object-server CPU
/// per 64 MiB, measured on the local Swift. Other stores pay one small request.
pub fn get_range_unhashed(
    store: &dyn ObjectStore,
    path: &ObjectPath,
    range: Range<u64>,
) -> Result<GetStream> {
    if range.start != 0 || range.end < 2 {
        return store.get(path, Some(range));
    }
    let first = store.get(path, Some(0..1))?;
    let mut b = [0u8; 1];
    if first.len != 1 {
        return Ok(first);
    }
    let mut r = first.reader;
    r.read_exact(&mut b)
        .map_err(|e| Error::io("get", store.url(path), e).with_kind(ErrorKind::Transient))?;
    let rest = store.get(path, Some(1..range.end))?;
    Ok(GetStream {
        reader: Box::new(std::io::Cursor::new(b).chain(rest.reader)),
        len: 1 + rest.len,
    })
}

/// Reads a whole (small) object into memory, refusing anything above `max` bytes.
pub fn get_bytes(store: &dyn ObjectStore, path: &ObjectPath, max: u64) -> Result<Vec<u8>> {
    let s = store.get(path, None)?;
    if s.len > max {
        return Err(Error::new(
            ErrorKind::Usage,
            "get",
            store.url(path),
            format!(
                "object is {} bytes, more than the {max} allowed here",
                s.len
            ),
        ));
    }
    let mut buf = Vec::with_capacity(s.len as usize);
    let mut r = s.reader;
    r.read_to_end(&mut buf)
        .map_err(|e| Error::io("get", store.url(path), e).with_kind(ErrorKind::Transient))?;
    if buf.len() as u64 != s.len {
        return Err(Error::new(
            ErrorKind::Integrity,
            "get",
            store.url(path),
            format!("expected {} bytes, got {}", s.len, buf.len()),
        ));
    }
    Ok(buf)
}

/// Wraps a body so that ending before `len` bytes is an error, never a short success.
pub(crate) struct LengthChecked<R> {
    pub inner: R,
    pub remaining: u64,
}

impl<R: Read> Read for LengthChecked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.remaining) as usize;
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("body ended {} bytes early", self.remaining),
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}
