//! Writing an object as numbered segments `<name>-00001`, `<name>-00002`, ... with a few
//! uploads in flight, then checking the listing before anything points at them.
//!
//! Both flows need the same discipline (Cloud Images exports are DLOs of this shape, and
//! large packages in the image store too): segments are uploaded by worker threads from
//! a bounded queue, each PUT checks its ETag against the MD5 of what was sent, the
//! listing is re-read and compared name by name, size by size and ETag by ETag (retrying
//! while the listing catches up), and only then may a caller write a manifest. On any
//! failure the segments are deleted.

use crate::error::{Error, ErrorKind, Result};
use cloudimg_pipeline::{Body, ObjectPath, ObjectStore, PutOptions};
use std::collections::BTreeMap;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Name of segment `k` (1-based) of `base`: zero padded so names sort in numeric order.
pub fn segment_name(base: &str, k: u32) -> String {
    format!("{base}-{k:05}")
}

/// A segment written and confirmed by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Object name.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// MD5 hex (the ETag the store returned, equal to the MD5 of what was sent).
    pub etag: String,
}

type Job = (u32, Box<dyn Body>);

/// Uploads segments of one object on worker threads.
pub struct Uploader {
    store: Arc<dyn ObjectStore>,
    container: String,
    base: String,
    tx: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
    done: Arc<Mutex<BTreeMap<u32, Written>>>,
    failed: Arc<Mutex<Option<Error>>>,
    submitted: u32,
}

impl Uploader {
    /// Starts `jobs` workers; at most `queue` segments wait beyond those being sent.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        container: &str,
        base: &str,
        jobs: usize,
        queue: usize,
    ) -> Uploader {
        let (tx, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        let done = Arc::new(Mutex::new(BTreeMap::new()));
        let failed = Arc::new(Mutex::new(None));
        let workers = (0..jobs.max(1))
            .map(|_| {
                let (rx, done, failed) = (rx.clone(), done.clone(), failed.clone());
                let (store, container, base) =
                    (store.clone(), container.to_string(), base.to_string());
                std::thread::spawn(move || worker(&*store, &container, &base, &rx, &done, &failed))
            })
            .collect();
        Uploader {
            store,
            container: container.to_string(),
            base: base.to_string(),
            tx: Some(tx),
            workers,
            done,
            failed,
            submitted: 0,
        }
    }

    /// The first failure so far, taken out (workers stop picking up new segments).
    fn take_failure(&self) -> Option<Error> {
        self.failed.lock().expect("not poisoned").take()
    }

    /// Queues the next segment (blocks while the queue is full). Fails as soon as an
    /// earlier segment failed.
    pub fn submit(&mut self, body: Box<dyn Body>) -> Result<()> {
        if let Some(e) = self.take_failure() {
            return Err(e);
        }
        self.submitted += 1;
        let k = self.submitted;
        let tx = self.tx.as_ref().expect("open until finish");
        if tx.send((k, body)).is_err() {
            return Err(self.take_failure().unwrap_or_else(|| {
                Error::new(
                    ErrorKind::Io,
                    "upload segment",
                    segment_name(&self.base, k),
                    "upload workers stopped",
                )
            }));
        }
        Ok(())
    }

    /// True when every submitted segment is confirmed, or one failed.
    pub fn settled(&self) -> bool {
        self.failed.lock().expect("not poisoned").is_some()
            || self.done.lock().expect("not poisoned").len() == self.submitted as usize
    }

    /// Segments submitted so far.
    pub fn submitted(&self) -> u32 {
        self.submitted
    }

    /// Waits for every segment; returns them in order.
    pub fn finish(mut self) -> Result<Vec<Written>> {
        self.join();
        if let Some(e) = self.take_failure() {
            return Err(e);
        }
        let done = std::mem::take(&mut *self.done.lock().expect("not poisoned"));
        if done.len() != self.submitted as usize {
            return Err(Error::new(
                ErrorKind::Store,
                "upload segments",
                &self.base,
                format!("{} of {} segments confirmed", done.len(), self.submitted),
            ));
        }
        Ok(done.into_values().collect())
    }

    /// Stops the workers and deletes every segment of `base` (best effort).
    pub fn abort(mut self) {
        self.join();
        let _ = delete_prefix(&*self.store, &self.container, &format!("{}-", self.base));
    }

    fn join(&mut self) {
        self.tx = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl Drop for Uploader {
    fn drop(&mut self) {
        self.join();
    }
}

fn worker(
    store: &dyn ObjectStore,
    container: &str,
    base: &str,
    rx: &Mutex<Receiver<Job>>,
    done: &Mutex<BTreeMap<u32, Written>>,
    failed: &Mutex<Option<Error>>,
) {
    loop {
        let job = rx.lock().expect("not poisoned").recv();
        let Ok((k, body)) = job else { return };
        if failed.lock().expect("not poisoned").is_some() {
            continue; // drain the queue without sending
        }
        let name = segment_name(base, k);
        let path = ObjectPath::new(container, &name);
        match store.put(&path, &*body, &PutOptions::default()) {
            Ok(r) if r.size == body.len() => {
                done.lock().expect("not poisoned").insert(
                    k,
                    Written {
                        name,
                        size: r.size,
                        etag: r.etag,
                    },
                );
            }
            Ok(r) => {
                let e = Error::new(
                    ErrorKind::Store,
                    "upload segment",
                    store.url(&path),
                    format!("store took {} of {} bytes", r.size, body.len()),
                );
                failed.lock().expect("not poisoned").get_or_insert(e);
            }
            Err(e) => {
                let e = Error::store("upload segment", store.url(&path), e);
                failed.lock().expect("not poisoned").get_or_insert(e);
            }
        }
    }
}

/// Re-lists `container` under `prefix` until it shows exactly `expected` (names, sizes,
/// ETags), retrying a few times for eventual consistency.
pub fn verify_listing(
    store: &dyn ObjectStore,
    container: &str,
    prefix: &str,
    expected: &[Written],
) -> Result<()> {
    let mut last = String::new();
    for attempt in 0..6u32 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(250 << attempt.min(4)));
        }
        let listed = cloudimg_pipeline::list_all(store, container, prefix)
            .map_err(|e| Error::store("verify segments", container, e))?;
        let listed: Vec<_> = listed
            .into_iter()
            .filter(|e| e.name.starts_with(prefix))
            .collect();
        if listed.len() == expected.len()
            && listed
                .iter()
                .zip(expected)
                .all(|(l, w)| l.name == w.name && l.size == w.size && l.etag == w.etag)
        {
            return Ok(());
        }
        last = format!(
            "listing shows {} segments under {prefix:?}, expected {} ({})",
            listed.len(),
            expected.len(),
            first_difference(&listed, expected)
        );
    }
    Err(Error::new(
        ErrorKind::Store,
        "verify segments",
        format!("{container}/{prefix}"),
        last,
    ))
}

fn first_difference(listed: &[cloudimg_pipeline::ListEntry], expected: &[Written]) -> String {
    for (i, w) in expected.iter().enumerate() {
        match listed.get(i) {
            None => return format!("{} missing", w.name),
            Some(l) if l.name != w.name => {
                return format!("{} where {} was expected", l.name, w.name)
            }
            Some(l) if l.size != w.size => {
                return format!("{} has {} bytes, wrote {}", w.name, l.size, w.size)
            }
            Some(l) if l.etag != w.etag => {
                return format!("{} has ETag {}, wrote {}", w.name, l.etag, w.etag)
            }
            Some(_) => {}
        }
    }
    listed
        .get(expected.len())
        .map(|l| format!("{} is extra", l.name))
        .unwrap_or_default()
}

/// Deletes `base` itself (first, so a manifest stops pointing at segments before they
/// go) and every object named `base...` under it that is a segment (`base-NNNNN`) in
/// `container`. Returns how many objects were deleted. Missing objects are fine.
pub fn delete_prefix(store: &dyn ObjectStore, container: &str, base: &str) -> Result<usize> {
    let entries = cloudimg_pipeline::list_all(store, container, base)
        .map_err(|e| Error::store("list for cleanup", container, e))?;
    let mut names: Vec<String> = entries
        .into_iter()
        .map(|e| e.name)
        .filter(|n| n == base || n.strip_prefix(base).is_some_and(is_segment_suffix))
        .collect();
    // The manifest (shortest name) goes first.
    names.sort_by_key(|n| (n.len(), n.clone()));
    let mut n = 0;
    for name in names {
        let path = ObjectPath::new(container, &name);
        match store.delete(&path) {
            Ok(()) => n += 1,
            Err(e) if e.kind() == cloudimg_pipeline::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::store("delete", store.url(&path), e)),
        }
    }
    Ok(n)
}

/// `-NNNNN` (or the bare `-` prefix form passed by callers that already added it).
fn is_segment_suffix(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_numerically() {
        let a = segment_name("x.vhd", 9);
        let b = segment_name("x.vhd", 10);
        assert_eq!(a, "x.vhd-00009");
        assert!(a < b);
        assert!(is_segment_suffix("-00001"));
        assert!(is_segment_suffix("00001"));
        assert!(!is_segment_suffix(".json"));
        assert!(!is_segment_suffix("-"));
    }
}
