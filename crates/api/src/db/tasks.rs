//! `tasks`: Glance tasks and the leases under which workers run them.
//!
//! A worker claims one due task in one statement (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so
//! concurrent claimers never take the same row; SQLite: the single writer makes the
//! statement atomic): a pending task, or a processing one whose lease expired with
//! attempts left. The claim bumps `attempts`; every later write of that run (heartbeat,
//! progress, result) names the lease owner and the attempt, so a worker that lost its
//! lease writes nothing.

use super::{bind_args, Db, Engine};
use crate::domain::list::Arg;
use sqlx::any::AnyRow;
use sqlx::Row;

/// A task row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRow {
    /// UUID text.
    pub id: String,
    /// `import` or `export`.
    pub task_type: String,
    /// pending | processing | success | failure.
    pub status: String,
    /// Owning project.
    pub owner: String,
    /// Input JSON text.
    pub input: String,
    /// Result JSON text.
    pub result: Option<String>,
    /// Message.
    pub message: String,
    /// Stored timestamps.
    pub created_at: String,
    /// Stored timestamp.
    pub updated_at: String,
    /// When the task may be deleted (end + 48 h).
    pub expires_at: Option<String>,
    /// Runs started.
    pub attempts: i64,
    /// Runs allowed.
    pub max_attempts: i64,
    /// Current phase while processing.
    pub phase: Option<String>,
    /// Bytes done.
    pub bytes_done: i64,
    /// Bytes in all (0 when unknown).
    pub bytes_total: i64,
}

const COLS: &str = "id, type, status, owner, input, result, message, created_at, updated_at, \
    expires_at, attempts, max_attempts, phase, bytes_done, bytes_total";

fn from_row(r: &AnyRow) -> Result<TaskRow, sqlx::Error> {
    Ok(TaskRow {
        id: r.try_get("id")?,
        task_type: r.try_get("type")?,
        status: r.try_get("status")?,
        owner: r.try_get("owner")?,
        input: r.try_get("input")?,
        result: r.try_get("result")?,
        message: r.try_get("message")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        expires_at: r.try_get("expires_at")?,
        attempts: r.try_get("attempts")?,
        max_attempts: r.try_get("max_attempts")?,
        phase: r.try_get("phase")?,
        bytes_done: r.try_get("bytes_done")?,
        bytes_total: r.try_get("bytes_total")?,
    })
}

/// Inserts a new pending task.
pub async fn insert(db: &Db, t: &TaskRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO tasks (id, type, status, owner, input, message, created_at, updated_at, max_attempts) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&t.id)
    .bind(&t.task_type)
    .bind(&t.status)
    .bind(&t.owner)
    .bind(&t.input)
    .bind(&t.message)
    .bind(&t.created_at)
    .bind(&t.updated_at)
    .bind(t.max_attempts)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Task `id`.
pub async fn get(db: &Db, id: &str) -> Result<Option<TaskRow>, sqlx::Error> {
    sqlx::query(&format!("SELECT {COLS} FROM tasks WHERE id = $1"))
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// What `GET /v2/tasks` asks for.
#[derive(Debug, Clone)]
pub struct TaskQuery {
    /// Only this status.
    pub status: Option<String>,
    /// Only this type.
    pub task_type: Option<String>,
    /// `created_at`, `updated_at`, `status`, `type` or `id`.
    pub sort_key: &'static str,
    /// Ascending?
    pub asc: bool,
    /// Page size.
    pub limit: i64,
    /// The marker task (already checked to be the caller's).
    pub marker: Option<TaskRow>,
}

/// The caller's tasks that have not expired at `now`.
pub async fn list(
    db: &Db,
    owner: &str,
    q: &TaskQuery,
    now: &str,
) -> Result<Vec<TaskRow>, sqlx::Error> {
    let mut args = vec![Arg::Text(owner.into()), Arg::Text(now.into())];
    let mut wh = vec![
        "owner = $1".to_string(),
        "(expires_at IS NULL OR expires_at > $2)".to_string(),
    ];
    let push = |a: Arg, args: &mut Vec<Arg>| {
        args.push(a);
        format!("${}", args.len())
    };
    if let Some(s) = &q.status {
        wh.push(format!(
            "status = {}",
            push(Arg::Text(s.clone()), &mut args)
        ));
    }
    if let Some(t) = &q.task_type {
        wh.push(format!("type = {}", push(Arg::Text(t.clone()), &mut args)));
    }
    let op = if q.asc { ">" } else { "<" };
    if let Some(m) = &q.marker {
        let v = match q.sort_key {
            "updated_at" => m.updated_at.clone(),
            "status" => m.status.clone(),
            "type" => m.task_type.clone(),
            "id" => m.id.clone(),
            _ => m.created_at.clone(),
        };
        let a = push(Arg::Text(v.clone()), &mut args);
        let b = push(Arg::Text(v), &mut args);
        let c = push(Arg::Text(m.id.clone()), &mut args);
        wh.push(format!(
            "({k} {op} {a} OR ({k} = {b} AND id {op} {c}))",
            k = q.sort_key
        ));
    }
    let dir = if q.asc { "ASC" } else { "DESC" };
    let lim = push(Arg::Int(q.limit), &mut args);
    let sql = format!(
        "SELECT {COLS} FROM tasks WHERE {} ORDER BY {} {dir}, id {dir} LIMIT {lim}",
        wh.join(" AND "),
        q.sort_key
    );
    bind_args(sqlx::query(&sql), &args)
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// Claims one due task for `worker` until `lease_until`; `None` when none is due.
pub async fn claim(
    db: &Db,
    worker: &str,
    lease_until: &str,
    now: &str,
) -> Result<Option<TaskRow>, sqlx::Error> {
    let lock = match db.engine() {
        Engine::Postgres => " FOR UPDATE SKIP LOCKED",
        Engine::Sqlite => "",
    };
    let sql = format!(
        "UPDATE tasks SET status = 'processing', lease_owner = $1, lease_expires_at = $2, \
         attempts = attempts + 1, updated_at = $3, phase = 'queued', bytes_done = 0, bytes_total = 0 \
         WHERE id = (SELECT id FROM tasks WHERE attempts < max_attempts AND \
           (status = 'pending' OR (status = 'processing' AND lease_expires_at < $4)) \
           ORDER BY created_at, id LIMIT 1{lock}) \
         RETURNING {COLS}"
    );
    sqlx::query(&sql)
        .bind(worker)
        .bind(lease_until)
        .bind(now)
        .bind(now)
        .fetch_optional(db.pool())
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Extends the lease and records progress; false when the lease is lost.
pub async fn heartbeat(
    db: &Db,
    id: &str,
    worker: &str,
    attempt: i64,
    lease_until: &str,
    progress: (&str, i64, i64),
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE tasks SET lease_expires_at = $1, phase = $2, bytes_done = $3, bytes_total = $4 \
         WHERE id = $5 AND lease_owner = $6 AND attempts = $7 AND status = 'processing'",
    )
    .bind(lease_until)
    .bind(progress.0)
    .bind(progress.1)
    .bind(progress.2)
    .bind(id)
    .bind(worker)
    .bind(attempt)
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// Ends the run: `status` with result and message, expiring at `expires_at`; false when
/// the lease was lost (nothing written).
#[allow(clippy::too_many_arguments)]
pub async fn finish(
    db: &Db,
    id: &str,
    worker: &str,
    attempt: i64,
    status: &str,
    result: Option<&str>,
    message: &str,
    now: &str,
    expires_at: &str,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE tasks SET status = $1, result = $2, message = $3, updated_at = $4, expires_at = $5, \
         lease_owner = NULL, lease_expires_at = NULL, phase = NULL \
         WHERE id = $6 AND lease_owner = $7 AND attempts = $8 AND status = 'processing'",
    )
    .bind(status)
    .bind(result)
    .bind(message)
    .bind(now)
    .bind(expires_at)
    .bind(id)
    .bind(worker)
    .bind(attempt)
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// Fails tasks whose lease expired with no attempts left; returns how many.
pub async fn reap(db: &Db, now: &str, expires_at: &str) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE tasks SET status = 'failure', message = 'Task failed: every attempt stopped without \
         finishing (its worker died or lost its lease); nothing was published', updated_at = $1, \
         expires_at = $2, lease_owner = NULL, lease_expires_at = NULL \
         WHERE status = 'processing' AND lease_expires_at < $3 AND attempts >= max_attempts",
    )
    .bind(now)
    .bind(expires_at)
    .bind(now)
    .execute(db.pool())
    .await?
    .rows_affected())
}

/// Who holds a task's lease (operators' view; the API does not show it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lease {
    /// The worker slot that holds the lease (`<node>:<slot>`), while processing.
    pub owner: Option<String>,
    /// When the lease runs out unless heartbeated.
    pub expires_at: Option<String>,
}

/// What `cloudimg tasks list` asks for: every project's tasks, expired or not.
#[derive(Debug, Clone, Default)]
pub struct AllTasksQuery {
    /// Only this status.
    pub status: Option<String>,
    /// Only this type.
    pub task_type: Option<String>,
    /// Only this project's.
    pub owner: Option<String>,
    /// At most this many, newest first.
    pub limit: i64,
}

fn with_lease(r: &AnyRow) -> Result<(TaskRow, Lease), sqlx::Error> {
    Ok((
        from_row(r)?,
        Lease {
            owner: r.try_get("lease_owner")?,
            expires_at: r.try_get("lease_expires_at")?,
        },
    ))
}

/// Every project's tasks matching `q`, newest first, with their leases.
pub async fn list_all(db: &Db, q: &AllTasksQuery) -> Result<Vec<(TaskRow, Lease)>, sqlx::Error> {
    let mut args = Vec::new();
    let mut wh = Vec::new();
    for (col, v) in [
        ("status", &q.status),
        ("type", &q.task_type),
        ("owner", &q.owner),
    ] {
        if let Some(v) = v {
            args.push(Arg::Text(v.clone()));
            wh.push(format!("{col} = ${}", args.len()));
        }
    }
    args.push(Arg::Int(q.limit));
    let sql = format!(
        "SELECT {COLS}, lease_owner, lease_expires_at FROM tasks {} \
         ORDER BY created_at DESC, id DESC LIMIT ${}",
        if wh.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", wh.join(" AND "))
        },
        args.len()
    );
    bind_args(sqlx::query(&sql), &args)
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(with_lease)
        .collect()
}

/// Task `id` with its lease, expired or not.
pub async fn get_with_lease(db: &Db, id: &str) -> Result<Option<(TaskRow, Lease)>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLS}, lease_owner, lease_expires_at FROM tasks WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db.pool())
    .await?
    .as_ref()
    .map(with_lease)
    .transpose()
}

/// Fails a pending or processing task with `message` and clears its lease, so the
/// worker running it (if any) has its fenced heartbeat and result refused; false when
/// the task was not pending or processing (nothing written).
pub async fn cancel(
    db: &Db,
    id: &str,
    message: &str,
    now: &str,
    expires_at: &str,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE tasks SET status = 'failure', message = $1, updated_at = $2, expires_at = $3, \
         lease_owner = NULL, lease_expires_at = NULL, phase = NULL \
         WHERE id = $4 AND status IN ('pending', 'processing')",
    )
    .bind(message)
    .bind(now)
    .bind(expires_at)
    .bind(id)
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// How many rows of each (type, status) the table holds.
pub async fn count_by_type_status(db: &Db) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    sqlx::query("SELECT type, status, COUNT(*) AS n FROM tasks GROUP BY type, status")
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|r| Ok((r.try_get("type")?, r.try_get("status")?, r.try_get("n")?)))
        .collect()
}
