//! Stopping a task run that lost its lease. A worker paused longer than its lease (a long
//! GC-like stall, a network partition from the catalog) finds at its next heartbeat that
//! another worker owns the task. From then on it must neither finish nor undo anything:
//! the new owner is writing the same objects. [`FencedStore`] wraps every store a run
//! touches (the customer's files and the image store); once the run's [`Fence`] is
//! closed, each operation, the cleanup a failing flow attempts included, fails without
//! touching the store, so the flow stops at its next I/O and removes nothing.

use cloudimg_pipeline::error::{Error, ErrorKind, Result};
use cloudimg_pipeline::retry::RetryPolicy;
use cloudimg_pipeline::store::{
    Body, Capabilities, GetStream, ListPage, ObjectInfo, ObjectPath, ObjectStore, PartInfo,
    PutOptions, PutResult, SegmentRef,
};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Closed when the run's lease is lost.
#[derive(Debug, Clone, Default)]
pub struct Fence(Arc<AtomicBool>);

impl Fence {
    /// Closes the fence: every later store operation of the run fails.
    pub fn close(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// True once closed.
    pub fn is_closed(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A store that fails every operation once its fence is closed.
#[derive(Debug)]
pub struct FencedStore {
    inner: Arc<dyn ObjectStore>,
    fence: Fence,
}

impl FencedStore {
    /// `inner` behind `fence`.
    pub fn wrap(inner: Arc<dyn ObjectStore>, fence: &Fence) -> Arc<dyn ObjectStore> {
        Arc::new(FencedStore {
            inner,
            fence: fence.clone(),
        })
    }

    fn check(&self, op: &str, what: &str) -> Result<()> {
        if self.fence.is_closed() {
            return Err(Error::new(
                ErrorKind::Permanent,
                op,
                what,
                "the task's lease was lost: another worker owns the task; this run stops and writes nothing",
            ));
        }
        Ok(())
    }

    fn at(&self, op: &str, path: &ObjectPath) -> Result<()> {
        self.check(op, &self.inner.url(path))
    }
}

impl ObjectStore for FencedStore {
    fn url(&self, path: &ObjectPath) -> String {
        self.inner.url(path)
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn retry_policy(&self) -> RetryPolicy {
        self.inner.retry_policy()
    }
    fn ensure_container(&self, container: &str) -> Result<()> {
        self.check("create container", container)?;
        self.inner.ensure_container(container)
    }
    fn container_exists(&self, container: &str) -> Result<bool> {
        self.check("head container", container)?;
        self.inner.container_exists(container)
    }
    fn put(&self, path: &ObjectPath, body: &dyn Body, opts: &PutOptions) -> Result<PutResult> {
        self.at("put", path)?;
        self.inner.put(path, body, opts)
    }
    fn get(&self, path: &ObjectPath, range: Option<Range<u64>>) -> Result<GetStream> {
        self.at("get", path)?;
        self.inner.get(path, range)
    }
    fn get_ranges(&self, path: &ObjectPath, ranges: &[Range<u64>]) -> Result<Option<Vec<Vec<u8>>>> {
        self.at("get", path)?;
        self.inner.get_ranges(path, ranges)
    }
    fn head(&self, path: &ObjectPath) -> Result<ObjectInfo> {
        self.at("head", path)?;
        self.inner.head(path)
    }
    fn head_unhashed(&self, path: &ObjectPath) -> Result<ObjectInfo> {
        self.at("head", path)?;
        self.inner.head_unhashed(path)
    }
    fn list(
        &self,
        container: &str,
        prefix: &str,
        marker: Option<&str>,
        limit: usize,
    ) -> Result<ListPage> {
        self.check("list", container)?;
        self.inner.list(container, prefix, marker, limit)
    }
    fn delete(&self, path: &ObjectPath) -> Result<()> {
        self.at("delete", path)?;
        self.inner.delete(path)
    }
    fn put_dlo_manifest(&self, path: &ObjectPath, c: &str, prefix: &str) -> Result<()> {
        self.at("put manifest", path)?;
        self.inner.put_dlo_manifest(path, c, prefix)
    }
    fn put_slo_manifest(&self, path: &ObjectPath, segments: &[SegmentRef]) -> Result<()> {
        self.at("put manifest", path)?;
        self.inner.put_slo_manifest(path, segments)
    }
    fn get_slo_manifest(&self, path: &ObjectPath) -> Result<Vec<SegmentRef>> {
        self.at("get manifest", path)?;
        self.inner.get_slo_manifest(path)
    }
    fn multipart_begin(&self, path: &ObjectPath) -> Result<String> {
        self.at("multipart begin", path)?;
        self.inner.multipart_begin(path)
    }
    fn multipart_find(&self, path: &ObjectPath) -> Result<Option<String>> {
        self.at("multipart find", path)?;
        self.inner.multipart_find(path)
    }
    fn multipart_put_part(
        &self,
        path: &ObjectPath,
        upload_id: &str,
        number: u32,
        body: &dyn Body,
        md5: Option<&str>,
    ) -> Result<PutResult> {
        self.at("multipart put", path)?;
        self.inner
            .multipart_put_part(path, upload_id, number, body, md5)
    }
    fn multipart_list_parts(&self, path: &ObjectPath, upload_id: &str) -> Result<Vec<PartInfo>> {
        self.at("multipart list", path)?;
        self.inner.multipart_list_parts(path, upload_id)
    }
    fn multipart_complete(
        &self,
        path: &ObjectPath,
        upload_id: &str,
        parts: &[PartInfo],
    ) -> Result<String> {
        self.at("multipart complete", path)?;
        self.inner.multipart_complete(path, upload_id, parts)
    }
    fn multipart_abort(&self, path: &ObjectPath, upload_id: &str) -> Result<()> {
        self.at("multipart abort", path)?;
        self.inner.multipart_abort(path, upload_id)
    }
}
