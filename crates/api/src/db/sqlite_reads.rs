//! The hot reads of a SQLite catalog (`GET /v2/images/{id}`, a page of `GET /v2/images`)
//! through rusqlite, on connections of their own, run where the request runs.
//!
//! Why not sqlx for these: sqlx runs every SQLite connection on a thread of its own and
//! sends each command there and each row back over a channel, so a page of 25 images
//! cost dozens of thread wake-ups, and its `Any` driver copies every column of every row
//! into owned values with their type information. Under load those hand-offs and
//! allocations were most of the server's CPU per page. Here the statement comes from the
//! connection's prepared-statement cache and columns are read straight into the
//! [`crate::domain::image::Image`].
//!
//! Why on the async thread: such a read is bounded CPU work (indexed lookups of at most
//! one page of rows in the page cache, 30-250 us), of the order of encoding its answer,
//! and a hop to the blocking pool and back cost more CPU than the read itself (measured:
//! 0.07 against 0.035 ms of server CPU per `GET /v2/images/{id}`). The catalog is in WAL
//! mode, so a reader never waits for the writer, which stays on the sqlx pool with its
//! migrations and transactions; the short busy timeout only bounds SQLite's rare
//! recovery waits. The connections are `query_only`: nothing here can write.

use rusqlite::{Connection, OpenFlags};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Prepared statements kept per connection (the list's SQL varies with its filters).
const STATEMENTS: usize = 64;

/// The read connections of one SQLite catalog file: at most one in use per thread that
/// reads (a read never awaits), so as many as the runtime has worker threads.
#[derive(Debug)]
pub struct Reads {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    closed: AtomicBool,
}

impl Reads {
    /// Readers of the catalog at `path` (which the sqlx pool has created and migrated).
    pub fn new(path: PathBuf) -> Reads {
        Reads {
            path,
            idle: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        }
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let c = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        c.busy_timeout(Duration::from_secs(2))?;
        c.pragma_update(None, "query_only", true)?;
        c.set_prepared_statement_cache_capacity(STATEMENTS);
        Ok(c)
    }

    /// Runs `f` on a read connection.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, sqlx::Error>,
    ) -> Result<T, sqlx::Error> {
        if self.closed.load(Ordering::Acquire) {
            return Err(sqlx::Error::PoolClosed);
        }
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(c) => c,
            None => self.open().map_err(to_sqlx)?,
        };
        let out = f(&conn);
        if !self.closed.load(Ordering::Acquire) {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(conn);
        }
        out
    }

    /// Closes the idle connections; later reads fail as a closed pool does.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// A rusqlite error as the sqlx error the API maps to a status: a busy, locked or
/// unopenable catalog is "unavailable" (503), anything else an internal error.
pub fn to_sqlx(e: rusqlite::Error) -> sqlx::Error {
    use rusqlite::ErrorCode as C;
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                C::DatabaseBusy | C::DatabaseLocked | C::CannotOpen | C::SystemIoFailure
            ) =>
        {
            sqlx::Error::Io(std::io::Error::other(e))
        }
        _ => sqlx::Error::Decode(Box::new(e)),
    }
}
