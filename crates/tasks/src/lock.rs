//! Store locks: one run at a time of an import (per image id) or an export (per image
//! and receiving container), across processes and hosts, on any store (local, Swift, S3),
//! built on nothing but PUT, LIST and DELETE.
//!
//! A lock at `<lock>` is the set of entries under the prefix `<lock>.`. A run takes it in
//! attempts; each attempt
//! 1. PUTs the run's own entry `<lock>.<created ms>-<token>` (a fresh token per attempt),
//!    naming its holder (host, boot, pid and the pid's start time);
//! 2. LISTs the prefix, deleting and ignoring the entries of holders surely gone;
//! 3. holds the lock when its entry is the only one left, and then rewrites its entry
//!    marked `held`. Otherwise it deletes its entry and gives up with
//!    [`ErrorKind::InProgress`] when another entry is marked held, else (contenders only)
//!    sleeps a random backoff and tries again, at most [`ATTEMPTS`] times.
//!
//! Never two holders: of two runs A and B that both hold, say A's PUT completed first.
//! B listed after its own PUT, so after A's PUT, and A deletes its entry only when it gives
//! up or releases; so B's listing showed A's entry and B did not hold. (The `held` mark
//! only spares losers their retries; an entry listed but not found when read counts as a
//! contender's.) The argument
//! assumes only that **a listing started after a PUT completed includes its entry**:
//! true of the local store (a directory), of AWS S3 (strong list-after-write since 2020)
//! and of Swift (and its s3api) as long as the object server updates the container
//! listing before it answers the PUT. An overloaded Swift may instead queue that update
//! (an "async pending", when the container server does not answer within
//! `container_update_timeout`) and still answer 201: until the updater runs, a contender
//! can miss the entry, and two runs may then hold the lock at once. The `If-None-Match: *`
//! create this replaced was weaker: Swift checks the condition before it stores the
//! body, so two PUTs at one instant both created the lock on a quiet server.
//!
//! The lock is not fair and only roughly live: contenders that keep colliding for
//! [`ATTEMPTS`] attempts (requests slower than the backoff) all give up, each saying so,
//! having written nothing.
//!
//! A holder that was killed leaves its entry behind. It is surely gone when it ran on this
//! host since this boot and its process is not alive, or ran elsewhere (or before a
//! reboot) more than [`FOREIGN_LOCK_TTL`] ago; anyone may delete such an entry, since no
//! live run counts on it.

use crate::error::{Error, ErrorKind, Result};
use cloudimg_pipeline::liveness::{boot_id, pid_start};
use cloudimg_pipeline::{ObjectPath, ObjectStore, PutOptions};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a lock whose holder cannot be checked (another host, or this host before a
/// reboot) is honoured: longer than the longest import.
pub const FOREIGN_LOCK_TTL: Duration = Duration::from_secs(12 * 3600);
/// Most attempts of one [`StoreLock::acquire`].
pub const ATTEMPTS: u32 = 8;
/// Largest lock entry read back.
const MAX_ENTRY: u64 = 64 << 10;

/// Who wrote a lock entry.
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
    /// Rewritten true once the entry holds the lock (false: a contender's).
    #[serde(default)]
    held: bool,
}

impl Holder {
    fn me(what: &str) -> Holder {
        let pid = std::process::id();
        Holder {
            token: uuid::Uuid::new_v4().simple().to_string(),
            what: what.to_string(),
            host: host_name(),
            boot_id: boot_id(),
            pid,
            pid_start: pid_start(pid).unwrap_or(0),
            created: now_secs(),
            held: false,
        }
    }

    /// An entry that does not parse (a foreign object): a live holder nobody can break.
    fn unknown() -> Holder {
        Holder {
            token: String::new(),
            what: "another run".into(),
            host: "?".into(),
            boot_id: String::new(),
            pid: 0,
            pid_start: 0,
            created: now_secs(),
            held: true,
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

/// A held lock; dropping it releases it.
#[derive(Debug)]
pub struct StoreLock {
    store: Arc<dyn ObjectStore>,
    entry: ObjectPath,
}

impl StoreLock {
    /// Takes the lock at `path` for `what` (said in the error another run gets), or fails
    /// with [`ErrorKind::InProgress`] while a live run holds it.
    pub fn acquire(
        store: &Arc<dyn ObjectStore>,
        path: ObjectPath,
        what: &str,
    ) -> Result<StoreLock> {
        let prefix = format!("{}.", path.name);
        let mut seen: Option<Holder> = None;
        for attempt in 0..ATTEMPTS {
            let mut me = Holder::me(what);
            let entry = ObjectPath::new(
                &path.container,
                format!("{prefix}{}-{}", now_millis(), me.token),
            );
            put(&**store, &entry, &me)?;
            let lock = StoreLock {
                store: store.clone(),
                entry,
            };
            // From here on, dropping `lock` removes the entry, on every path.
            let others = others(&**store, &path.container, &prefix, &lock.entry)?;
            if others.is_empty() {
                // Said in the entry so that others give up at once rather than retry.
                me.held = true;
                put(&**store, &lock.entry, &me)?;
                return Ok(lock);
            }
            drop(lock);
            if let Some(h) = others.iter().flatten().find(|h| h.held) {
                return Err(in_progress(&**store, &path, h));
            }
            seen = others.into_iter().flatten().next().or(seen);
            std::thread::sleep(backoff(attempt));
        }
        let why = match seen {
            Some(h) => format!("{} (the lock keeps changing hands)", h.describe()),
            None => {
                format!("{what} is in progress in another process (the lock keeps changing hands)")
            }
        };
        Err(Error::new(
            ErrorKind::InProgress,
            "take lock",
            store.url(&path),
            why,
        ))
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        let _ = self.store.delete(&self.entry);
    }
}

/// Writes (or rewrites) a lock entry.
fn put(store: &dyn ObjectStore, entry: &ObjectPath, holder: &Holder) -> Result<()> {
    let body = serde_json::to_vec(holder).expect("holders serialise");
    let opts = PutOptions {
        content_type: Some("application/json".into()),
        ..Default::default()
    };
    store
        .put(entry, &body, &opts)
        .map(|_| ())
        .map_err(|e| Error::store("take lock", store.url(entry), e))
}

/// The holders of the live entries under `prefix` other than `mine` (`None`: listed but
/// gone when read, being removed); the entries of dead holders are deleted.
fn others(
    store: &dyn ObjectStore,
    container: &str,
    prefix: &str,
    mine: &ObjectPath,
) -> Result<Vec<Option<Holder>>> {
    let listed = cloudimg_pipeline::store::list_all(store, container, prefix).map_err(|e| {
        Error::store(
            "take lock",
            store.url(&ObjectPath::new(container, prefix)),
            e,
        )
    })?;
    let mut out = Vec::new();
    for entry in listed {
        if entry.name == mine.name {
            continue;
        }
        let p = ObjectPath::new(container, &entry.name);
        let holder = match cloudimg_pipeline::store::get_bytes(store, &p, MAX_ENTRY) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|_| Holder::unknown()),
            Err(e) if e.kind() == cloudimg_pipeline::ErrorKind::NotFound => {
                out.push(None);
                continue;
            }
            Err(e) => return Err(Error::store("read lock", store.url(&p), e)),
        };
        if holder.is_gone(FOREIGN_LOCK_TTL) {
            log::warn!(
                "{}: removing the lock entry of pid {} on {} (no longer running)",
                store.url(&p),
                holder.pid,
                holder.host
            );
            match store.delete(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == cloudimg_pipeline::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::store("remove dead lock", store.url(&p), e)),
            }
            continue;
        }
        out.push(Some(holder));
    }
    Ok(out)
}

/// A random sleep before attempt `attempt + 1`: 20 ms plus up to 40 ms doubled per
/// attempt, at most a second, so that two contenders soon retry at different moments.
fn backoff(attempt: u32) -> Duration {
    let spread = (40u64 << attempt.min(5)).min(1000);
    let r = u64::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..8].try_into().unwrap());
    Duration::from_millis(20 + r % spread)
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
    now_millis() / 1000
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
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

    fn entries(s: &Arc<dyn ObjectStore>) -> Vec<String> {
        cloudimg_pipeline::store::list_all(&**s, "c", "x.lock.")
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect()
    }

    #[test]
    fn one_holder_at_a_time_and_released_on_drop() {
        let (_d, s) = store();
        let p = ObjectPath::new("c", "x.lock");
        let a = StoreLock::acquire(&s, p.clone(), "import of x").unwrap();
        assert_eq!(entries(&s), [a.entry.name.as_str()]);
        let e = StoreLock::acquire(&s, p.clone(), "import of x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InProgress);
        assert!(e.to_string().contains("import of x is in progress"), "{e}");
        assert_eq!(
            entries(&s),
            [a.entry.name.as_str()],
            "the loser left nothing"
        );
        drop(a);
        assert!(entries(&s).is_empty());
        let b = StoreLock::acquire(&s, p, "import of x").unwrap();
        drop(b);
        assert!(entries(&s).is_empty());
    }

    #[test]
    fn a_dead_holders_entry_is_removed_and_ignored() {
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
        let stale = ObjectPath::new("c", format!("x.lock.1-{}", dead.token));
        let body = serde_json::to_vec(&dead).unwrap();
        s.put(&stale, &body, &PutOptions::default()).unwrap();
        let l = StoreLock::acquire(&s, p.clone(), "import of x").unwrap();
        assert_eq!(entries(&s), [l.entry.name.as_str()]);
        drop(l);
        assert!(entries(&s).is_empty());
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

    #[test]
    fn an_entry_that_does_not_parse_is_a_live_holder() {
        let (_d, s) = store();
        let foreign = ObjectPath::new("c", "x.lock.0-foreign");
        s.put(&foreign, &b"not json".to_vec(), &PutOptions::default())
            .unwrap();
        let e = StoreLock::acquire(&s, ObjectPath::new("c", "x.lock"), "import of x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InProgress, "{e}");
        assert_eq!(entries(&s), ["x.lock.0-foreign"]);
    }
}
