//! The catalog database: SQLite (a file in WAL mode, the embedded default) or PostgreSQL
//! (a fleet), behind one [`Db`]. All SQL lives in this folder, one module per table;
//! statements are shared by both engines (`$N` placeholders, 64-bit integers, text
//! timestamps made by the service), and every value is bound, never spliced.
//!
//! Each engine has its own migrations (`migrations/sqlite`, `migrations/postgres`) with
//! the same tables; the API test suite runs on both.

pub mod credentials;
pub mod docs;
pub mod images;
pub mod locations;
pub mod members;
mod sqlite_reads;
pub mod tags;
pub mod tasks;

use crate::domain::list::Arg;
use sqlx::any::{AnyArguments, AnyPoolOptions};
use sqlx::postgres::{PgArguments, PgPoolOptions};
use sqlx::query::Query;
use sqlx::{Any, AnyPool, Executor, PgPool, Postgres};
use std::sync::Arc;
use std::time::Duration;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Which engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// A connection pool to the catalog.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    engine: Engine,
    reads: Reads,
    docs: Arc<docs::Docs>,
}

/// The connections of the hot reads (`GET /v2/images/{id}`, a page of `GET /v2/images`),
/// apart from the `Any` pool the rest uses: that pool copies every column of every row
/// into owned values with their type information before the caller sees it.
#[derive(Clone, Debug)]
pub(crate) enum Reads {
    /// rusqlite connections (see [`sqlite_reads`]).
    Sqlite(Arc<sqlite_reads::Reads>),
    /// A pool of the native PostgreSQL driver, whose rows are read in place.
    Postgres(PgPool),
}

impl Db {
    /// Connects to `url` (`sqlite:PATH`, `sqlite://PATH`, `postgres://...`) and brings the
    /// schema up to date. A SQLite file is created when missing.
    pub async fn connect(url: &str) -> Result<Db, String> {
        sqlx::any::install_default_drivers();
        let mut read_path = None;
        let (engine, url) = if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() || path.starts_with(":memory:") {
                return Err(format!(
                    "{url}: an in-memory catalog is lost at exit and not shared between connections; give a file"
                ));
            }
            read_path = Some(std::path::PathBuf::from(
                path.split_once('?').map_or(path, |(p, _)| p),
            ));
            let sep = if path.contains('?') { '&' } else { '?' };
            (Engine::Sqlite, format!("sqlite://{path}{sep}mode=rwc"))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Engine::Postgres, url.to_string())
        } else {
            return Err(format!(
                "{url}: unknown database URL (use sqlite:PATH or postgres://USER@HOST/DB)"
            ));
        };
        let mut opts = AnyPoolOptions::new()
            .acquire_timeout(Duration::from_secs(5))
            .max_connections(if engine == Engine::Sqlite { 8 } else { 16 });
        if engine == Engine::Sqlite {
            opts = opts.after_connect(|conn, _| {
                Box::pin(async move {
                    // WAL: readers never wait for the writer; NORMAL is durable at each
                    // checkpoint and never corrupts; the busy timeout makes a second
                    // writer wait instead of failing.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    Ok(())
                })
            });
        }
        let pool = opts
            .connect(&url)
            .await
            .map_err(|e| format!("{}: cannot open the catalog: {e}", redact(&url)))?;
        let reads = match read_path {
            Some(path) => Reads::Sqlite(Arc::new(sqlite_reads::Reads::new(path))),
            None => Reads::Postgres(
                PgPoolOptions::new()
                    .acquire_timeout(Duration::from_secs(5))
                    .max_connections(8)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // The list statement's plan does not depend on its values
                            // (filters are in its text, values are bound): PostgreSQL's
                            // default re-plans it on every execution, which cost as much
                            // CPU as running it.
                            conn.execute("SET plan_cache_mode = force_generic_plan")
                                .await?;
                            Ok(())
                        })
                    })
                    .connect(&url)
                    .await
                    .map_err(|e| format!("{}: cannot open the catalog: {e}", redact(&url)))?,
            ),
        };
        let db = Db {
            pool,
            engine,
            reads,
            docs: Default::default(),
        };
        let migrator = match engine {
            Engine::Sqlite => &SQLITE_MIGRATIONS,
            Engine::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&db.pool)
            .await
            .map_err(|e| format!("{}: migrating the catalog: {e}", redact(&url)))?;
        Ok(db)
    }

    /// The pool.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The engine.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Closes every connection.
    pub async fn close(&self) {
        match &self.reads {
            Reads::Sqlite(r) => r.close(),
            Reads::Postgres(pg) => pg.close().await,
        }
        self.pool.close().await
    }

    /// The hot reads' connections.
    pub(crate) fn reads(&self) -> &Reads {
        &self.reads
    }

    /// The documents rendered from this catalog's rows (see [`docs`]).
    pub fn docs(&self) -> &docs::Docs {
        &self.docs
    }
}

/// A URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Binds `args` in order.
pub(crate) fn bind_args<'q>(
    mut q: Query<'q, Any, AnyArguments<'q>>,
    args: &'q [Arg],
) -> Query<'q, Any, AnyArguments<'q>> {
    for a in args {
        q = match a {
            Arg::Text(s) => q.bind(s.as_str()),
            Arg::Int(n) => q.bind(*n),
        };
    }
    q
}

/// Binds `args` in order, on the PostgreSQL pool.
pub(crate) fn bind_pg<'q>(
    mut q: Query<'q, Postgres, PgArguments>,
    args: &'q [Arg],
) -> Query<'q, Postgres, PgArguments> {
    for a in args {
        q = match a {
            Arg::Text(s) => q.bind(s.as_str()),
            Arg::Int(n) => q.bind(*n),
        };
    }
    q
}

/// `$1, $2, ...` for `n` values starting after `used`.
pub(crate) fn placeholders(used: usize, n: usize) -> String {
    (used + 1..=used + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
        assert_eq!(placeholders(2, 3), "$3, $4, $5");
    }
}
