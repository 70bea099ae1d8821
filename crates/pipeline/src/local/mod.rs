//! The local backend: a directory whose subdirectories are containers and whose files are
//! objects (names may contain `/`).
//!
//! Writes are atomic and durable (temp file in the same directory, fsynced, renamed, then
//! the directory fsynced). Side information (ETag
//! cache, user metadata, large-object manifests) lives in JSON sidecars under
//! `<root>/.cloudimg-meta/<container>/<name>.json`, out of the way of listings. Large objects
//! are emulated the way Swift serves them: a DLO manifest is an empty file whose sidecar names
//! a container and prefix, an SLO manifest an empty file whose sidecar lists segments; a plain
//! `get` concatenates the segments. There are no multipart uploads.
//!
//! A temporary is named `.cloudimg-tmp.<writer>.<n>.<name>`, `<writer>` the writing
//! process's [`crate::liveness::tag`]. A writer killed mid-way leaves it (listings skip it,
//! names refuse it); the first write of a later process into that folder removes it once
//! its writer surely no longer runs.

mod meta;

use crate::error::{Error, ErrorKind, Result};
use crate::hash::{normalize_etag, Md5Reader};
use crate::retry::RetryPolicy;
use crate::store::{
    Body, Capabilities, GetStream, LengthChecked, ListEntry, ListPage, Manifest, ObjectInfo,
    ObjectPath, ObjectStore, PutOptions, PutResult, SegmentRef,
};
use meta::{LocalManifest, Meta};
use std::collections::{BTreeSet, VecDeque};
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

const META_DIR: &str = ".cloudimg-meta";
const TMP_PREFIX: &str = ".cloudimg-tmp.";

/// A directory used as an object store.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// A store rooted at `root` (created if missing).
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|e| Error::io("open", root.display().to_string(), e))?;
        Ok(LocalStore { root })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file holding `path`'s bytes.
    pub fn file_path(&self, path: &ObjectPath) -> Result<PathBuf> {
        check_container(&path.container)?;
        check_name(&path.name)?;
        Ok(self.root.join(&path.container).join(&path.name))
    }

    fn meta_path(&self, path: &ObjectPath) -> PathBuf {
        self.root
            .join(META_DIR)
            .join(&path.container)
            .join(format!("{}.json", path.name))
    }

    fn read_meta(&self, path: &ObjectPath) -> Option<Meta> {
        let text = fs::read(self.meta_path(path)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    fn write_meta(&self, path: &ObjectPath, meta: &Meta) -> Result<()> {
        let mp = self.meta_path(path);
        let json = serde_json::to_vec(meta).map_err(|e| {
            Error::new(ErrorKind::Io, "put", self.url(path), "encode metadata").with_source(e)
        })?;
        atomic_write(&mp, Content::Slice(&json), None, None).map(|_| ())
    }

    /// Etag of a plain file: from the sidecar when it still matches size and mtime.
    fn etag_of(&self, path: &ObjectPath, file: &Path, md: &fs::Metadata) -> Result<String> {
        let mtime = mtime_ns(md);
        if let Some(m) = self.read_meta(path) {
            if m.size == md.len() && m.mtime_ns == mtime {
                return Ok(m.etag);
            }
        }
        let f = File::open(file).map_err(|e| Error::io("head", self.url(path), e))?;
        let mut r = Md5Reader::new(f);
        io::copy(&mut r, &mut io::sink()).map_err(|e| Error::io("head", self.url(path), e))?;
        Ok(r.finish().0)
    }

    /// `head`; with `hash` false a plain object's ETag comes from its sidecar only (none
    /// for a file the store did not write).
    fn head_with(&self, path: &ObjectPath, hash: bool) -> Result<ObjectInfo> {
        let (file, md) = self.stat(path)?;
        let meta = self
            .read_meta(path)
            .filter(|m| m.size == md.len() && m.mtime_ns == mtime_ns(&md));
        let (content_type, metadata) = meta
            .as_ref()
            .map(|m| (m.content_type.clone(), m.metadata.clone()))
            .unwrap_or_default();
        let recorded = meta.as_ref().map(|m| m.etag.clone());
        match meta.and_then(|m| m.manifest) {
            None => Ok(ObjectInfo {
                size: md.len(),
                etag: if hash {
                    Some(self.etag_of(path, &file, &md)?)
                } else {
                    recorded
                },
                manifest: None,
                content_type,
                metadata,
            }),
            Some(LocalManifest::Dlo { container, prefix }) => {
                let entries = crate::store::list_all(self, &container, &prefix)?;
                Ok(ObjectInfo {
                    size: entries.iter().map(|e| e.size).sum(),
                    etag: Some(crate::hash::md5_of_hex_etags(
                        entries.iter().map(|e| e.etag.as_str()),
                    )),
                    manifest: Some(Manifest::Dlo { container, prefix }),
                    content_type,
                    metadata,
                })
            }
            Some(LocalManifest::Slo { segments }) => Ok(ObjectInfo {
                size: segments.iter().map(|s| s.size).sum(),
                etag: Some(crate::hash::md5_of_hex_etags(
                    segments.iter().map(|s| s.etag.as_str()),
                )),
                manifest: Some(Manifest::Slo),
                content_type,
                metadata,
            }),
        }
    }

    fn stat(&self, path: &ObjectPath) -> Result<(PathBuf, fs::Metadata)> {
        let file = self.file_path(path)?;
        match fs::metadata(&file) {
            Ok(md) if md.is_file() => Ok((file, md)),
            Ok(_) => Err(Error::new(
                ErrorKind::NotFound,
                "head",
                self.url(path),
                "not an object (a directory)",
            )),
            Err(e) => Err(Error::io("head", self.url(path), e)),
        }
    }

    /// Pieces (file, offset, len) making up the object's content.
    fn pieces(&self, path: &ObjectPath) -> Result<Vec<(PathBuf, u64)>> {
        let (file, md) = self.stat(path)?;
        let manifest = self
            .read_meta(path)
            .filter(|m| m.size == md.len() && m.mtime_ns == mtime_ns(&md))
            .and_then(|m| m.manifest);
        match manifest {
            None => Ok(vec![(file, md.len())]),
            Some(LocalManifest::Dlo { container, prefix }) => {
                let entries = crate::store::list_all(self, &container, &prefix)?;
                entries
                    .into_iter()
                    .map(|e| {
                        Ok((
                            self.file_path(&ObjectPath::new(&container, e.name))?,
                            e.size,
                        ))
                    })
                    .collect()
            }
            Some(LocalManifest::Slo { segments }) => segments
                .into_iter()
                .map(|s| {
                    let p = ObjectPath::new(s.container, s.name);
                    let (f, md) = self.stat(&p)?;
                    if md.len() != s.size {
                        return Err(Error::new(
                            ErrorKind::Integrity,
                            "get",
                            self.url(&p),
                            format!(
                                "SLO segment is {} bytes, manifest says {}",
                                md.len(),
                                s.size
                            ),
                        ));
                    }
                    Ok((f, s.size))
                })
                .collect(),
        }
    }
}

fn mtime_ns(md: &fs::Metadata) -> i128 {
    use std::os::unix::fs::MetadataExt;
    md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128
}

fn check_container(c: &str) -> Result<()> {
    if c.is_empty() || c.contains('/') || c.starts_with('.') || c.contains('\0') {
        return Err(Error::usage(
            "local",
            format!("invalid container name {c:?} (empty, '/', leading '.' or NUL)"),
        ));
    }
    Ok(())
}

fn check_name(n: &str) -> Result<()> {
    let bad = n.is_empty()
        || n.contains('\0')
        || n.split('/')
            .any(|c| c.is_empty() || c == "." || c == ".." || c.starts_with(TMP_PREFIX));
    if bad {
        return Err(Error::usage(
            "local",
            format!("invalid object name {n:?} (empty, '.', '..', '//' or NUL)"),
        ));
    }
    Ok(())
}

/// What [`atomic_write`] writes: a reader, hashed on the way to the file; bytes in
/// memory, hashed and written with one call; or bytes in memory whose MD5 this process
/// already computed from them ([`Body::md5_of_memory`]), not hashed again.
enum Content<'a> {
    Read(&'a mut dyn Read),
    Slice(&'a [u8]),
    Hashed(&'a [u8], &'a str),
}

/// Writes `src` to `dest` through a temp file and rename; returns (bytes, md5 hex). When
/// the length or MD5 differ from what is expected, nothing replaces `dest`.
fn atomic_write(
    dest: &Path,
    src: Content<'_>,
    expect_len: Option<u64>,
    expect_md5: Option<&str>,
) -> Result<(u64, String)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let target = dest.display().to_string();
    let dir = dest.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| Error::io("put", &target, e))?;
    let base = dest
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or("object");
    sweep_once(dir);
    let tmp = dir.join(format!(
        "{TMP_PREFIX}{}.{}.{base}",
        crate::liveness::tag(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let res = (|| {
        let mut f = File::create(&tmp).map_err(|e| Error::io("put", &target, e))?;
        let (n, md5) = match src {
            Content::Read(src) => {
                let mut r = Md5Reader::new(src);
                io::copy(&mut r, &mut f).map_err(|e| Error::io("put", &target, e))?;
                let (md5, n) = r.finish();
                (n, md5)
            }
            Content::Slice(bytes) => {
                f.write_all(bytes)
                    .map_err(|e| Error::io("put", &target, e))?;
                (bytes.len() as u64, crate::hash::md5_hex(bytes))
            }
            Content::Hashed(bytes, md5) => {
                // The claim is the upload engine's; every debug build (the test suite)
                // checks it.
                debug_assert_eq!(crate::hash::md5_hex(bytes), normalize_etag(md5));
                f.write_all(bytes)
                    .map_err(|e| Error::io("put", &target, e))?;
                (bytes.len() as u64, normalize_etag(md5))
            }
        };
        if expect_len.is_some_and(|l| l != n) {
            return Err(Error::new(
                ErrorKind::Integrity,
                "put",
                &target,
                format!("body was {n} bytes, expected {}", expect_len.unwrap_or(0)),
            ));
        }
        if let Some(want) = expect_md5 {
            if normalize_etag(want) != md5 {
                return Err(Error::new(
                    ErrorKind::Integrity,
                    "put",
                    &target,
                    format!("body MD5 {md5}, expected {want}"),
                ));
            }
        }
        // Durable before it is acknowledged: the data synced, the name switched, then the
        // folder synced so the new name survives a power loss (rename alone does not).
        f.sync_data().map_err(|e| Error::io("put", &target, e))?;
        fs::rename(&tmp, dest).map_err(|e| Error::io("put", &target, e))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("put", &target, e))?;
        Ok((n, md5))
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

/// Removes, the first time this process writes into `dir`, the temporaries there of
/// writers that surely no longer run (killed mid-write: their name carries their
/// [`crate::liveness::tag`]); a live writer's, or one without a tag, is left alone.
fn sweep_once(dir: &Path) {
    static SWEPT: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
    if !SWEPT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(dir.to_path_buf())
    {
        return;
    }
    let removed = crate::liveness::remove_left_by_dead(dir, |n| {
        n.strip_prefix(TMP_PREFIX)?.split('.').next()
    });
    for p in removed {
        log::info!("removing {} (its writer no longer runs)", p.display());
    }
}

impl ObjectStore for LocalStore {
    fn url(&self, path: &ObjectPath) -> String {
        // `root` is absolute: `file://` + `/dir/c/o`, never `file:////`.
        format!(
            "file://{}",
            self.root.join(&path.container).join(&path.name).display()
        )
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            dlo: true,
            slo: true,
            multipart: false,
            max_object_size: u64::MAX,
            max_segments: 1_000_000,
            min_part_size: 0,
        }
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::none()
    }

    fn ensure_container(&self, container: &str) -> Result<()> {
        check_container(container)?;
        let d = self.root.join(container);
        fs::create_dir_all(&d)
            .map_err(|e| Error::io("create container", d.display().to_string(), e))
    }

    fn container_exists(&self, container: &str) -> Result<bool> {
        check_container(container)?;
        Ok(self.root.join(container).is_dir())
    }

    fn put(&self, path: &ObjectPath, body: &dyn Body, opts: &PutOptions) -> Result<PutResult> {
        let file = self.file_path(path)?;
        if !self.container_exists(&path.container)? {
            return Err(Error::new(
                ErrorKind::NotFound,
                "put",
                self.url(path),
                "container does not exist",
            ));
        }
        // Bytes this process hashed in this very memory are recorded with that MD5 (the
        // ETag equals the MD5 of the file's bytes all the same); anything else, a file
        // range above all, which may have changed since it was hashed, is hashed as it is
        // written.
        let mut r;
        let content = match (body.as_slice(), body.md5_of_memory()) {
            (Some(bytes), Some(md5)) => Content::Hashed(bytes, md5),
            (Some(bytes), None) => Content::Slice(bytes),
            (None, _) => {
                r = body
                    .reader()
                    .map_err(|e| Error::io("put", self.url(path), e))?;
                Content::Read(&mut r)
            }
        };
        let (n, md5) = atomic_write(&file, content, Some(body.len()), opts.md5.as_deref())
            .map_err(|e| {
                let status = e.status();
                let out = Error::new(e.kind(), "put", self.url(path), e.detail().to_string());
                match status {
                    Some(s) => out.with_status(s),
                    None => out,
                }
            })?;
        let md = fs::metadata(&file).map_err(|e| Error::io("put", self.url(path), e))?;
        self.write_meta(
            path,
            &Meta {
                size: md.len(),
                mtime_ns: mtime_ns(&md),
                etag: md5.clone(),
                manifest: None,
                content_type: opts.content_type.clone(),
                metadata: opts.metadata.clone(),
            },
        )?;
        Ok(PutResult { etag: md5, size: n })
    }

    fn get(&self, path: &ObjectPath, range: Option<Range<u64>>) -> Result<GetStream> {
        let mut pieces = self.pieces(path)?;
        // A plain object is opened now and its length taken from the open file: the reader
        // then reads one version even when the name is replaced or deleted meanwhile.
        let mut opened = None;
        if let [(f, len)] = &mut pieces[..] {
            if *f == self.file_path(path)? {
                let file = File::open(&f).map_err(|e| Error::io("get", self.url(path), e))?;
                *len = file
                    .metadata()
                    .map_err(|e| Error::io("get", self.url(path), e))?
                    .len();
                opened = Some(file);
            }
        }
        let total: u64 = pieces.iter().map(|p| p.1).sum();
        let range = range.unwrap_or(0..total);
        if range.start > range.end || range.end > total {
            return Err(Error::new(
                ErrorKind::Usage,
                "get",
                self.url(path),
                format!("range {range:?} outside 0..{total}"),
            ));
        }
        let mut queue = VecDeque::new();
        let mut at = 0u64;
        for (f, len) in pieces {
            let (s, e) = (at, at + len);
            at = e;
            let lo = s.max(range.start);
            let hi = e.min(range.end);
            if lo < hi {
                queue.push_back((f, lo - s, hi - lo));
            }
        }
        let len = range.end - range.start;
        Ok(GetStream {
            reader: Box::new(LengthChecked {
                inner: ChainReader {
                    queue,
                    opened,
                    cur: None,
                },
                remaining: len,
            }),
            len,
        })
    }

    fn get_ranges(&self, path: &ObjectPath, ranges: &[Range<u64>]) -> Result<Option<Vec<Vec<u8>>>> {
        // A ranged read here is an open and a seek: no request to save.
        let mut out = Vec::with_capacity(ranges.len());
        for r in ranges {
            let s = self.get(path, Some(r.clone()))?;
            let mut buf = Vec::with_capacity(s.len as usize);
            let mut reader = s.reader;
            reader
                .read_to_end(&mut buf)
                .map_err(|e| Error::io("get", self.url(path), e))?;
            if buf.len() as u64 != r.end - r.start {
                return Err(Error::new(
                    ErrorKind::Integrity,
                    "get",
                    self.url(path),
                    format!("range {r:?} gave {} bytes", buf.len()),
                ));
            }
            out.push(buf);
        }
        Ok(Some(out))
    }

    fn local_file(&self, path: &ObjectPath) -> Option<PathBuf> {
        self.file_path(path).ok()
    }

    fn head(&self, path: &ObjectPath) -> Result<ObjectInfo> {
        self.head_with(path, true)
    }

    fn head_unhashed(&self, path: &ObjectPath) -> Result<ObjectInfo> {
        self.head_with(path, false)
    }

    fn list(
        &self,
        container: &str,
        prefix: &str,
        marker: Option<&str>,
        limit: usize,
    ) -> Result<ListPage> {
        check_container(container)?;
        let dir = self.root.join(container);
        if !dir.is_dir() {
            return Err(Error::new(
                ErrorKind::NotFound,
                "list",
                format!("file://{}", dir.display()),
                "container does not exist",
            ));
        }
        let mut names = Vec::new();
        walk(&dir, "", &mut names).map_err(|e| Error::io("list", dir.display().to_string(), e))?;
        names.retain(|n| n.starts_with(prefix) && marker.is_none_or(|m| n.as_str() > m));
        names.sort_unstable();
        let truncated = names.len() > limit;
        names.truncate(limit);
        let mut entries = Vec::with_capacity(names.len());
        for name in names {
            let p = ObjectPath::new(container, name);
            // An object deleted since the walk is not listed (as on Swift): concurrent
            // writers and deleters (store locks) list the same names.
            let found = self
                .stat(&p)
                .and_then(|(file, md)| Ok((self.etag_of(&p, &file, &md)?, md)));
            let (etag, md) = match found {
                Ok(x) => x,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            entries.push(ListEntry {
                name: p.name,
                size: md.len(),
                etag,
            });
        }
        Ok(ListPage { entries, truncated })
    }

    fn delete(&self, path: &ObjectPath) -> Result<()> {
        let file = self.file_path(path)?;
        fs::remove_file(&file).map_err(|e| Error::io("delete", self.url(path), e))?;
        let _ = fs::remove_file(self.meta_path(path));
        // Drop directories that only existed to hold this name (python-swiftclient naming).
        let top = self.root.join(&path.container);
        let mut d = file.parent();
        while let Some(dir) = d {
            if dir == top || fs::remove_dir(dir).is_err() {
                break;
            }
            d = dir.parent();
        }
        Ok(())
    }

    fn put_dlo_manifest(
        &self,
        path: &ObjectPath,
        segments_container: &str,
        prefix: &str,
    ) -> Result<()> {
        check_container(segments_container)?;
        self.put_manifest(
            path,
            LocalManifest::Dlo {
                container: segments_container.to_string(),
                prefix: prefix.to_string(),
            },
        )
    }

    fn put_slo_manifest(&self, path: &ObjectPath, segments: &[SegmentRef]) -> Result<()> {
        // Refuse what Swift refuses: a segment whose etag or size is not what is stored.
        for s in segments {
            let info = self.head(&s.path)?;
            if info.size != s.size || info.etag.as_deref() != Some(&normalize_etag(&s.etag)) {
                return Err(Error::new(
                    ErrorKind::Permanent,
                    "put SLO manifest",
                    self.url(&s.path),
                    "segment etag or size does not match the manifest",
                )
                .with_status(400));
            }
        }
        self.put_manifest(
            path,
            LocalManifest::Slo {
                segments: segments.iter().map(meta::SloEntry::from).collect(),
            },
        )
    }

    fn get_slo_manifest(&self, path: &ObjectPath) -> Result<Vec<SegmentRef>> {
        let (_, md) = self.stat(path)?;
        match self
            .read_meta(path)
            .filter(|m| m.size == md.len() && m.mtime_ns == mtime_ns(&md))
            .and_then(|m| m.manifest)
        {
            Some(LocalManifest::Slo { segments }) => Ok(segments
                .into_iter()
                .map(|s| SegmentRef {
                    path: ObjectPath::new(s.container, s.name),
                    etag: s.etag,
                    size: s.size,
                })
                .collect()),
            _ => Err(Error::new(
                ErrorKind::Usage,
                "get SLO manifest",
                self.url(path),
                "not a static large object",
            )),
        }
    }
}

impl LocalStore {
    fn put_manifest(&self, path: &ObjectPath, manifest: LocalManifest) -> Result<()> {
        let file = self.file_path(path)?;
        if !self.container_exists(&path.container)? {
            return Err(Error::new(
                ErrorKind::NotFound,
                "put manifest",
                self.url(path),
                "container does not exist",
            ));
        }
        // Sidecar first: an empty file without a matching sidecar is just an empty object.
        let tmp_meta = Meta {
            size: 0,
            mtime_ns: 0,
            etag: crate::hash::md5_hex(b""),
            manifest: Some(manifest),
            content_type: None,
            metadata: Default::default(),
        };
        atomic_write(&file, Content::Read(&mut io::empty()), None, None)?;
        let md = fs::metadata(&file).map_err(|e| Error::io("put manifest", self.url(path), e))?;
        self.write_meta(
            path,
            &Meta {
                mtime_ns: mtime_ns(&md),
                ..tmp_meta
            },
        )
    }
}

fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if name.starts_with(TMP_PREFIX) {
            continue;
        }
        let full = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let ft = entry.file_type()?;
        if ft.is_dir() {
            match walk(&entry.path(), &full, out) {
                // Removed meanwhile (its last object deleted).
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                r => r?,
            }
        } else if ft.is_file() {
            out.push(full);
        }
    }
    Ok(())
}

/// Reads pieces (file, offset, len) one after the other, opening each lazily.
struct ChainReader {
    queue: VecDeque<(PathBuf, u64, u64)>,
    /// The file of a one-piece queue, opened already.
    opened: Option<File>,
    cur: Option<io::Take<File>>,
}

impl Read for ChainReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(cur) = &mut self.cur {
                let n = cur.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                self.cur = None;
            }
            let Some((path, off, len)) = self.queue.pop_front() else {
                return Ok(0);
            };
            let mut f = match self.opened.take() {
                Some(f) => f,
                None => File::open(&path)?,
            };
            f.seek(SeekFrom::Start(off))?;
            self.cur = Some(f.take(len));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_removes_the_temporaries_of_dead_writers_only() {
        let d = tempfile::tempdir().unwrap();
        let store = LocalStore::new(d.path()).unwrap();
        store.ensure_container("c").unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = crate::liveness::pid_start(pid).unwrap_or(1);
        child.wait().unwrap();
        let boot = crate::liveness::tag().split('-').next().unwrap();
        let dead = format!("{TMP_PREFIX}{boot}-{pid}-{start}.0.obj");
        let live = format!("{TMP_PREFIX}{}.7.obj", crate::liveness::tag());
        let untagged = format!("{TMP_PREFIX}{pid}.0.obj");
        for n in [&dead, &live, &untagged] {
            fs::write(d.path().join("c").join(n), b"partial").unwrap();
        }
        let p = ObjectPath::new("c", "obj");
        store
            .put(&p, &b"whole".to_vec(), &PutOptions::default())
            .unwrap();
        let mut left: Vec<String> = fs::read_dir(d.path().join("c"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut want = vec![live, untagged, "obj".to_string()];
        want.sort();
        assert_eq!(left, want);
    }
}
