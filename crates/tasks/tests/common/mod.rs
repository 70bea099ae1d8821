//! Helpers shared by the task tests: fixture paths, local stores, reading a stored
//! package or an exported DLO back, and comparing virtual disks.
#![allow(dead_code)]

use cloudimg_ova::xenserver::XenStream;
use cloudimg_pipeline::local::LocalStore;
use cloudimg_pipeline::{FileRange, ObjectPath, ObjectStore, PutOptions};
use cloudimg_tasks::{ImageRecord, ImageStore};
use cloudimg_vhd::{Chain, ChainOptions, Image};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub fn fixture(name: &str) -> PathBuf {
    cloudimg_fixtures::env::workspace_root()
        .join("fixtures")
        .join(name)
}

pub fn local(dir: &Path) -> Arc<dyn ObjectStore> {
    Arc::new(LocalStore::new(dir).unwrap())
}

/// Uploads a local file as `container/name`.
pub fn put_file(store: &dyn ObjectStore, container: &str, name: &str, file: &Path) {
    store.ensure_container(container).unwrap();
    let f = std::fs::File::open(file).unwrap();
    let len = f.metadata().unwrap().len();
    let body = FileRange {
        file: Arc::new(f),
        offset: 0,
        len,
    };
    store
        .put(
            &ObjectPath::new(container, name),
            &body,
            &PutOptions::default(),
        )
        .unwrap();
}

/// Downloads a whole object (large objects concatenated by the store) into `dest`.
pub fn get_file(store: &dyn ObjectStore, path: &ObjectPath, dest: &Path) {
    let s = store.get(path, None).unwrap();
    let mut out = std::fs::File::create(dest).unwrap();
    let mut r = s.reader;
    let n = std::io::copy(&mut r, &mut out).unwrap();
    assert_eq!(n, s.len);
}

/// Unpacks an image's package into `dir`, returning the layer files leaf first.
pub fn unpack_image(images: &ImageStore, rec: &ImageRecord, dir: &Path) -> Vec<PathBuf> {
    let store = images.object_store();
    let s = store
        .get(
            &ObjectPath::new(images.container(), &rec.package.object),
            None,
        )
        .unwrap();
    assert_eq!(s.len, rec.size);
    let limits = cloudimg_ova::Limits {
        max_ratio: 5000,
        ..Default::default()
    };
    let mut xs = XenStream::new(s.reader, limits).unwrap();
    let mut files = Vec::new();
    while let Some(mut m) = xs.next_member().unwrap() {
        let p = dir.join(format!("m{}", files.len()));
        let mut f = std::fs::File::create(&p).unwrap();
        std::io::copy(&mut m, &mut f).unwrap();
        files.push((m.archive_name().to_string(), p));
    }
    let (chain, stats) = xs.finish().unwrap();
    assert_eq!(
        stats.md5, rec.checksum,
        "record checksum is the package MD5"
    );
    chain
        .iter()
        .map(|m| {
            files
                .iter()
                .find(|(n, _)| *n == m.archive_name)
                .unwrap()
                .1
                .clone()
        })
        .collect()
}

pub fn open_chain(layers: &[PathBuf]) -> Chain {
    Chain::from_images(layers.iter().map(|p| Image::open(p).unwrap()).collect()).unwrap()
}

pub fn open_leaf(leaf: &Path) -> Chain {
    Chain::open(leaf, &ChainOptions::default()).unwrap()
}

/// Asserts two virtual disks hold the same bytes.
pub fn assert_same_disk(a: &Chain, b: &Chain) {
    assert_eq!(a.virtual_size(), b.virtual_size(), "virtual sizes differ");
    let size = a.virtual_size();
    let mut x = vec![0u8; 1 << 20];
    let mut y = vec![0u8; 1 << 20];
    let mut off = 0;
    while off < size {
        let n = (size - off).min(x.len() as u64) as usize;
        a.read_at(off, &mut x[..n]).unwrap();
        b.read_at(off, &mut y[..n]).unwrap();
        assert!(x[..n] == y[..n], "virtual disks differ in the MiB at {off}");
        off += n as u64;
    }
}

/// Makes a XenServer package of a chain (leaf first) the way os-xenapi does:
/// `tar -zc --directory=DIR .` over `0.vhd`, `1.vhd`, ...; None when tar is missing.
pub fn tar_package(layers: &[PathBuf], dir: &Path) -> Option<PathBuf> {
    if !cloudimg_fixtures::env::require_tool("tar") {
        return None;
    }
    let staging = dir.join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    for (i, l) in layers.iter().enumerate() {
        std::fs::copy(l, staging.join(format!("{i}.vhd"))).unwrap();
    }
    let out = dir.join("package.tgz");
    let st = std::process::Command::new("tar")
        .arg("-zcf")
        .arg(&out)
        .arg(format!("--directory={}", staging.display()))
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    Some(out)
}

/// The shipped chain, leaf first.
pub fn chain_layers() -> Vec<PathBuf> {
    ["leaf.vhd", "mid.vhd", "base.vhd"]
        .iter()
        .map(|n| fixture(&format!("chain/{n}")))
        .collect()
}

pub fn read_all(mut r: impl Read) -> Vec<u8> {
    let mut v = Vec::new();
    r.read_to_end(&mut v).unwrap();
    v
}

/// A store that passes everything through but fails the `n`-th PUT (1-based) of an object
/// whose name contains `pattern`: a fault injected mid-upload, through the real trait.
#[derive(Debug)]
pub struct FailNthPut {
    pub inner: Arc<dyn ObjectStore>,
    pub pattern: String,
    pub n: usize,
    pub seen: std::sync::atomic::AtomicUsize,
    /// After the fault, refuse every request: the process was killed, nothing it does
    /// afterwards (cleanup) reaches the store.
    pub crash: bool,
    pub crashed: std::sync::atomic::AtomicBool,
}

impl FailNthPut {
    pub fn wrap(inner: Arc<dyn ObjectStore>, pattern: &str, n: usize) -> Arc<dyn ObjectStore> {
        Arc::new(FailNthPut {
            inner,
            pattern: pattern.into(),
            n,
            seen: Default::default(),
            crash: false,
            crashed: Default::default(),
        })
    }

    /// Like [`wrap`](Self::wrap), but the fault is a kill: no request after it lands.
    pub fn killing(inner: Arc<dyn ObjectStore>, pattern: &str, n: usize) -> Arc<dyn ObjectStore> {
        Arc::new(FailNthPut {
            inner,
            pattern: pattern.into(),
            n,
            seen: Default::default(),
            crash: true,
            crashed: Default::default(),
        })
    }

    fn dead(&self, path: &ObjectPath) -> cloudimg_pipeline::Result<()> {
        if self.crashed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(cloudimg_pipeline::Error::new(
                cloudimg_pipeline::ErrorKind::RetriesExhausted,
                "request",
                self.url(path),
                "injected fault: the process was killed",
            ));
        }
        Ok(())
    }
}

impl ObjectStore for FailNthPut {
    fn url(&self, path: &ObjectPath) -> String {
        self.inner.url(path)
    }
    fn capabilities(&self) -> cloudimg_pipeline::Capabilities {
        self.inner.capabilities()
    }
    fn retry_policy(&self) -> cloudimg_pipeline::RetryPolicy {
        self.inner.retry_policy()
    }
    fn ensure_container(&self, c: &str) -> cloudimg_pipeline::Result<()> {
        self.inner.ensure_container(c)
    }
    fn container_exists(&self, c: &str) -> cloudimg_pipeline::Result<bool> {
        self.inner.container_exists(c)
    }
    fn put(
        &self,
        path: &ObjectPath,
        body: &dyn cloudimg_pipeline::Body,
        opts: &PutOptions,
    ) -> cloudimg_pipeline::Result<cloudimg_pipeline::PutResult> {
        self.dead(path)?;
        if path.name.contains(&self.pattern) {
            let k = self.seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            if k == self.n {
                if self.crash {
                    self.crashed
                        .store(true, std::sync::atomic::Ordering::SeqCst);
                }
                // Read part of the body first, as a connection dropped mid-segment would.
                let mut r = body.reader().unwrap();
                let mut buf = vec![0u8; 4096];
                let _ = r.read(&mut buf);
                return Err(cloudimg_pipeline::Error::new(
                    cloudimg_pipeline::ErrorKind::RetriesExhausted,
                    "put",
                    self.url(path),
                    "injected fault: connection reset",
                ));
            }
        }
        self.inner.put(path, body, opts)
    }
    fn get(
        &self,
        path: &ObjectPath,
        range: Option<std::ops::Range<u64>>,
    ) -> cloudimg_pipeline::Result<cloudimg_pipeline::GetStream> {
        self.inner.get(path, range)
    }
    fn head(&self, path: &ObjectPath) -> cloudimg_pipeline::Result<cloudimg_pipeline::ObjectInfo> {
        self.inner.head(path)
    }
    fn list(
        &self,
        c: &str,
        prefix: &str,
        marker: Option<&str>,
        limit: usize,
    ) -> cloudimg_pipeline::Result<cloudimg_pipeline::ListPage> {
        self.inner.list(c, prefix, marker, limit)
    }
    fn delete(&self, path: &ObjectPath) -> cloudimg_pipeline::Result<()> {
        self.dead(path)?;
        self.inner.delete(path)
    }
    fn put_dlo_manifest(
        &self,
        path: &ObjectPath,
        c: &str,
        prefix: &str,
    ) -> cloudimg_pipeline::Result<()> {
        self.dead(path)?;
        self.inner.put_dlo_manifest(path, c, prefix)
    }
    fn put_slo_manifest(
        &self,
        path: &ObjectPath,
        s: &[cloudimg_pipeline::SegmentRef],
    ) -> cloudimg_pipeline::Result<()> {
        self.inner.put_slo_manifest(path, s)
    }
    fn get_slo_manifest(
        &self,
        path: &ObjectPath,
    ) -> cloudimg_pipeline::Result<Vec<cloudimg_pipeline::SegmentRef>> {
        self.inner.get_slo_manifest(path)
    }
}

/// A store that counts the bytes read through GETs (and GETs of whole objects) of objects
/// whose name contains `pattern`, passing everything through.
#[derive(Debug)]
pub struct CountingGets {
    pub inner: Arc<dyn ObjectStore>,
    pub pattern: String,
    pub bytes: Arc<std::sync::atomic::AtomicU64>,
    pub whole_gets: std::sync::atomic::AtomicUsize,
}

struct CountingReader {
    inner: Box<dyn Read + Send>,
    bytes: Arc<std::sync::atomic::AtomicU64>,
}

impl Read for CountingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes
            .fetch_add(n as u64, std::sync::atomic::Ordering::SeqCst);
        Ok(n)
    }
}

impl CountingGets {
    pub fn wrap(inner: Arc<dyn ObjectStore>, pattern: &str) -> Arc<CountingGets> {
        Arc::new(CountingGets {
            inner,
            pattern: pattern.into(),
            bytes: Default::default(),
            whole_gets: Default::default(),
        })
    }

    pub fn read(&self) -> u64 {
        self.bytes.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl ObjectStore for CountingGets {
    fn url(&self, path: &ObjectPath) -> String {
        self.inner.url(path)
    }
    fn capabilities(&self) -> cloudimg_pipeline::Capabilities {
        self.inner.capabilities()
    }
    fn retry_policy(&self) -> cloudimg_pipeline::RetryPolicy {
        self.inner.retry_policy()
    }
    fn ensure_container(&self, c: &str) -> cloudimg_pipeline::Result<()> {
        self.inner.ensure_container(c)
    }
    fn container_exists(&self, c: &str) -> cloudimg_pipeline::Result<bool> {
        self.inner.container_exists(c)
    }
    fn put(
        &self,
        path: &ObjectPath,
        body: &dyn cloudimg_pipeline::Body,
        opts: &PutOptions,
    ) -> cloudimg_pipeline::Result<cloudimg_pipeline::PutResult> {
        self.inner.put(path, body, opts)
    }
    fn get(
        &self,
        path: &ObjectPath,
        range: Option<std::ops::Range<u64>>,
    ) -> cloudimg_pipeline::Result<cloudimg_pipeline::GetStream> {
        if !path.name.contains(&self.pattern) {
            return self.inner.get(path, range);
        }
        if range.is_none() {
            self.whole_gets
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        let s = self.inner.get(path, range)?;
        Ok(cloudimg_pipeline::GetStream {
            reader: Box::new(CountingReader {
                inner: s.reader,
                bytes: self.bytes.clone(),
            }),
            len: s.len,
        })
    }
    fn head(&self, path: &ObjectPath) -> cloudimg_pipeline::Result<cloudimg_pipeline::ObjectInfo> {
        self.inner.head(path)
    }
    fn list(
        &self,
        c: &str,
        prefix: &str,
        marker: Option<&str>,
        limit: usize,
    ) -> cloudimg_pipeline::Result<cloudimg_pipeline::ListPage> {
        self.inner.list(c, prefix, marker, limit)
    }
    fn delete(&self, path: &ObjectPath) -> cloudimg_pipeline::Result<()> {
        self.inner.delete(path)
    }
    fn put_dlo_manifest(
        &self,
        path: &ObjectPath,
        c: &str,
        prefix: &str,
    ) -> cloudimg_pipeline::Result<()> {
        self.inner.put_dlo_manifest(path, c, prefix)
    }
    fn put_slo_manifest(
        &self,
        path: &ObjectPath,
        s: &[cloudimg_pipeline::SegmentRef],
    ) -> cloudimg_pipeline::Result<()> {
        self.inner.put_slo_manifest(path, s)
    }
    fn get_slo_manifest(
        &self,
        path: &ObjectPath,
    ) -> cloudimg_pipeline::Result<Vec<cloudimg_pipeline::SegmentRef>> {
        self.inner.get_slo_manifest(path)
    }
}

/// Writes a sparse dynamic VHD of `virtual_mib` MiB with incompressible data in every
/// third MiB (so its package is several gzip members); returns the VHD's path.
pub fn sparse_vhd(dir: &Path, virtual_mib: u64) -> PathBuf {
    use cloudimg_vhd::write::{DynamicLayout, DynamicOptions, RawFileSource};
    use std::io::{Seek, SeekFrom, Write};
    let raw = dir.join("disk.raw");
    let mut f = std::fs::File::create(&raw).unwrap();
    f.set_len(virtual_mib << 20).unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut mib = vec![0u8; 1 << 20];
    for m in (0..virtual_mib).step_by(3) {
        for b in mib.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        f.seek(SeekFrom::Start(m << 20)).unwrap();
        f.write_all(&mib).unwrap();
    }
    drop(f);
    let mut src = RawFileSource::open(&raw).unwrap();
    let layout = DynamicLayout::plan(&mut src, &DynamicOptions::default()).unwrap();
    let out = dir.join("sparse.vhd");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&out).unwrap());
    layout.write_to(&mut src, &mut w, &mut |_| {}).unwrap();
    w.flush().unwrap();
    out
}
