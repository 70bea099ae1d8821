//! Store locks: one run at a time of an import (per image id) or an export (per image
//! and receiving container), across processes and hosts, built on the store's
//! create-only write (`PutOptions::if_absent`: Swift `If-None-Match: *`, a local link).
//!
//! The lock is an object naming its holder (host, boot, pid and the pid's start time, a
//! random token). Of two runs that create it at once exactly one succeeds; the other
//! fails with [`ErrorKind::InProgress`] before it touches anything. A holder that was
//! killed leaves its lock behind: the next run takes it over when the holder is surely
//! gone, i.e. it ran on this host since this boot and its process is not alive, or it
//! ran elsewhere (or before a reboot) more than [`FOREIGN_LOCK_TTL`] ago. Taking over
//! goes through a second lock (`<lock>.break`, held for a moment), so of two runs that
//! find the same dead holder only one replaces it.
//!
//! A store that cannot create only if absent (S3 through Swift's s3api ignores the
//! condition) is not locked; [`StoreLock::acquire`] says so in the log and returns
//! `None`.

use crate::error::{Error, ErrorKind, Result};
use cloudimg_pipeline::{ObjectPath, ObjectStore, PutOptions};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a lock whose holder cannot be checked (another host, or this host before a
/// reboot) is honoured: longer than the longest import.
pub const FOREIGN_LOCK_TTL: Duration = Duration::from_secs(12 * 3600);
/// A break lock is held for a few requests; older than this, its holder died.
const BREAK_TTL: Duration = Duration::from_secs(60);
/// Largest lock object read back.
const MAX_LOCK: u64 = 64 << 10;

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Holder {
    token: String,
    what: String,
    host: String,
    boot_id: String,
    pid: u32,
    pid_start: u64,
    /// Seconds since the Unix epoch.
    created: u64,
}

impl Holder {
    fn me(what: &str) -> Holder {
        let pid = std::process::id();
        Holder {
            token: uuid::Uuid::new_v4().to_string(),
            what: what.to_string(),
            host: host_name(),
            boot_id: boot_id(),
            pid,
            pid_start: pid_start(pid).unwrap_or(0),
            created: now_secs(),
        }
    }

    /// True when the holder surely no longer runs.
    fn is_gone(&self, ttl: Duration) -> bool {
        let local = !self.host.is_empty()
            && self.host == host_name()
            && !self.boot_id.is_empty()
            && self.boot_id == boot_id();
        if local {
            return pid_start(self.pid) != Some(self.pid_start);
        }
        now_secs().saturating_sub(self.created) > ttl.as_secs()
    }

    fn describe(&self) -> String {
        format!(
            "{} is in progress in another process (pid {} on {}, since {})",
            self.what,
            self.pid,
            self.host,
            crate::time::iso8601(UNIX_EPOCH + Duration::from_secs(self.created))
        )
    }
}

/// A held lock; dropping it releases it (when it is still this run's).
#[derive(Debug)]
pub struct StoreLock {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    token: String,
}

impl StoreLock {
    /// Takes the lock at `path` for `what` (said in the error another run gets), or fails
    /// with [`ErrorKind::InProgress`] while a live run holds it. `None`: the store cannot
    /// lock (see the module documentation).
    pub fn acquire(
        store: &Arc<dyn ObjectStore>,
        path: ObjectPath,
        what: &str,
    ) -> Result<Option<StoreLock>> {
        let me = Holder::me(what);
        for _ in 0..4 {
            match create(&**store, &path, &me) {
                Ok(true) => {
                    return Ok(Some(StoreLock {
                        store: store.clone(),
                        path,
                        token: me.token,
                    }))
                }
                Ok(false) => {}
                Err(e) if e.kind() == cloudimg_pipeline::ErrorKind::Unsupported => {
                    log::warn!("{}: not locked: {e}", store.url(&path));
                    return Ok(None);
                }
                Err(e) => return Err(Error::store("take lock", store.url(&path), e)),
            }
            let Some(held) = read(&**store, &path)? else {
                continue; // released meanwhile
            };
            if held.token == me.token {
                // Our own create, answered 412 on a retry after a lost response.
                return Ok(Some(StoreLock {
                    store: store.clone(),
                    path,
                    token: me.token,
                }));
            }
            if !held.is_gone(FOREIGN_LOCK_TTL) {
                return Err(in_progress(&**store, &path, &held));
            }
            break_dead(store, &path, &held, &me)?;
        }
        Err(Error::new(
            ErrorKind::InProgress,
            "take lock",
            store.url(&path),
            format!("{what} is in progress in another process (the lock keeps changing hands)"),
        ))
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        // Only our own lock is removed: one taken over after we were presumed dead stays.
        if let Ok(Some(h)) = read(&*self.store, &self.path) {
            if h.token == self.token {
                let _ = self.store.delete(&self.path);
            }
        }
    }
}

/// Replaces the lock of a dead holder, under the break lock so that of two runs that
/// found it dead one does it.
fn break_dead(
    store: &Arc<dyn ObjectStore>,
    path: &ObjectPath,
    dead: &Holder,
    me: &Holder,
) -> Result<()> {
    let brk = ObjectPath::new(&path.container, format!("{}.break", path.name));
    if !create(&**store, &brk, me).map_err(|e| Error::store("take lock", store.url(&brk), e))? {
        match read(&**store, &brk)? {
            Some(b) if b.is_gone(BREAK_TTL) => {
                let _ = store.delete(&brk);
            }
            Some(b) => return Err(in_progress(&**store, path, &b)),
            None => {}
        }
        return Ok(()); // try again from the top
    }
    let res = (|| {
        // Still the dead holder's (not one that another breaker made meanwhile)?
        if read(&**store, path)?.is_some_and(|h| h.token == dead.token) {
            log::warn!(
                "{}: taking over the lock of pid {} on {} (no longer running)",
                store.url(path),
                dead.pid,
                dead.host
            );
            match store.delete(path) {
                Ok(()) => {}
                Err(e) if e.kind() == cloudimg_pipeline::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::store("remove dead lock", store.url(path), e)),
            }
        }
        Ok(())
    })();
    let _ = store.delete(&brk);
    res
}

/// Creates the lock object; false when it exists.
fn create(
    store: &dyn ObjectStore,
    path: &ObjectPath,
    me: &Holder,
) -> cloudimg_pipeline::Result<bool> {
    let body = serde_json::to_vec(me).expect("holders serialise");
    let opts = PutOptions {
        content_type: Some("application/json".into()),
        if_absent: true,
        ..Default::default()
    };
    match store.put(path, &body, &opts) {
        Ok(_) => Ok(true),
        Err(e) if e.status() == Some(412) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The holder of the lock at `path`, `None` when there is none; a lock that does not
/// parse (a foreign object) counts as a live holder nobody can break.
fn read(store: &dyn ObjectStore, path: &ObjectPath) -> Result<Option<Holder>> {
    match cloudimg_pipeline::store::get_bytes(store, path, MAX_LOCK) {
        Ok(b) => Ok(Some(serde_json::from_slice(&b).unwrap_or_else(|_| {
            Holder {
                token: String::new(),
                what: "another run".into(),
                host: "?".into(),
                boot_id: String::new(),
                pid: 0,
                pid_start: 0,
                created: now_secs(),
            }
        }))),
        Err(e) if e.kind() == cloudimg_pipeline::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::store("read lock", store.url(path), e)),
    }
}

fn in_progress(store: &dyn ObjectStore, path: &ObjectPath, held: &Holder) -> Error {
    Error::new(
        ErrorKind::InProgress,
        "take lock",
        store.url(path),
        held.describe(),
    )
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The start time (clock ticks after boot) of process `pid`, `None` when it does not
/// run: with the pid it names one process, never a later one given the same pid.
fn pid_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces and parentheses).
    let rest = &stat[stat.rfind(')')? + 2..];
    // Field 22 overall is the 20th after the name's.
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudimg_pipeline::local::LocalStore;

    fn store() -> (tempfile::TempDir, Arc<dyn ObjectStore>) {
        let d = tempfile::tempdir().unwrap();
        let s = LocalStore::new(d.path()).unwrap();
        s.ensure_container("c").unwrap();
        (d, Arc::new(s))
    }

    #[test]
    fn one_holder_at_a_time_and_released_on_drop() {
        let (_d, s) = store();
        let p = ObjectPath::new("c", "x.lock");
        let a = StoreLock::acquire(&s, p.clone(), "import of x").unwrap();
        assert!(a.is_some());
        let e = StoreLock::acquire(&s, p.clone(), "import of x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InProgress);
        assert!(e.to_string().contains("import of x is in progress"), "{e}");
        drop(a);
        assert!(StoreLock::acquire(&s, p, "import of x").unwrap().is_some());
    }

    #[test]
    fn a_dead_holders_lock_is_taken_over() {
        let (_d, s) = store();
        let p = ObjectPath::new("c", "x.lock");
        // A holder on this host whose process no longer runs.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = pid_start(pid);
        child.wait().unwrap();
        let dead = Holder {
            pid,
            pid_start: start.unwrap_or(1),
            ..Holder::me("import of x")
        };
        assert!(create(&*s, &p, &dead).unwrap());
        let l = StoreLock::acquire(&s, p.clone(), "import of x")
            .unwrap()
            .unwrap();
        assert_ne!(read(&*s, &p).unwrap().unwrap().token, dead.token);
        drop(l);
        assert!(read(&*s, &p).unwrap().is_none());
        // A live holder elsewhere is honoured; an old one is not.
        let far = Holder {
            host: "elsewhere".into(),
            ..Holder::me("import of x")
        };
        assert!(!far.is_gone(FOREIGN_LOCK_TTL));
        let old = Holder {
            created: now_secs() - FOREIGN_LOCK_TTL.as_secs() - 1,
            ..far
        };
        assert!(old.is_gone(FOREIGN_LOCK_TTL));
        assert!(!Holder::me("x").is_gone(FOREIGN_LOCK_TTL));
    }
}
