//! The operators' view of tasks (`cloudimg tasks list|show|cancel`): every project's
//! tasks straight from the catalog, with what the API keeps to itself (the lease, the
//! attempts), and cancelling a task that has not ended.
//!
//! Cancelling fails the task with [`CANCEL_MESSAGE`] and clears its lease in one fenced
//! UPDATE; a worker still running it then has its heartbeats and its result refused (both
//! are fenced on lease owner, attempt and `processing`), so the task stays `failure`.

use crate::clock;
use crate::db::tasks::{self, AllTasksQuery, Lease, TaskRow};
use crate::db::Db;
use serde_json::{json, Value};

/// The message of a cancelled task.
pub const CANCEL_MESSAGE: &str = "cancelled by an operator";

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// No task has this id.
    #[error("no task {0} in the catalog")]
    NotFound(String),
    /// The task has already ended.
    #[error("task {id} is already {status}: only pending and processing tasks can be cancelled")]
    Ended {
        /// The task.
        id: String,
        /// Its status.
        status: String,
    },
    /// The catalog failed.
    #[error("the catalog: {0}")]
    Catalog(#[from] sqlx::Error),
}

/// A task as operators see it.
#[derive(Debug, Clone)]
pub struct OpsTask {
    /// The row.
    pub row: TaskRow,
    /// Its lease.
    pub lease: Lease,
}

impl OpsTask {
    /// The whole task as JSON (timestamps at stored precision).
    pub fn to_json(&self) -> Value {
        let t = &self.row;
        json!({
            "id": t.id,
            "type": t.task_type,
            "status": t.status,
            "owner": t.owner,
            "created_at": t.created_at,
            "updated_at": t.updated_at,
            "expires_at": t.expires_at,
            "attempts": t.attempts,
            "max_attempts": t.max_attempts,
            "lease": {"owner": self.lease.owner, "expires_at": self.lease.expires_at},
            "progress": {"phase": t.phase, "bytes_done": t.bytes_done, "bytes_total": t.bytes_total},
            "input": serde_json::from_str::<Value>(&t.input).unwrap_or(Value::String(t.input.clone())),
            "result": t.result.as_deref().map(|r| serde_json::from_str::<Value>(r).unwrap_or(Value::String(r.into()))),
            "message": t.message,
        })
    }
}

fn wrap((row, lease): (TaskRow, Lease)) -> OpsTask {
    OpsTask { row, lease }
}

/// Every project's tasks matching `q`, newest first.
pub async fn list(db: &Db, q: &AllTasksQuery) -> Result<Vec<OpsTask>, OpsError> {
    Ok(tasks::list_all(db, q)
        .await?
        .into_iter()
        .map(wrap)
        .collect())
}

/// Task `id`, expired or not.
pub async fn show(db: &Db, id: &str) -> Result<OpsTask, OpsError> {
    tasks::get_with_lease(db, id)
        .await?
        .map(wrap)
        .ok_or_else(|| OpsError::NotFound(id.to_string()))
}

/// Cancels task `id` (pending or processing); returns it as it now is.
pub async fn cancel(db: &Db, id: &str) -> Result<OpsTask, OpsError> {
    let now = clock::now();
    let expires = clock::after(crate::worker::DEFAULT_TASK_TTL);
    if tasks::cancel(db, id, CANCEL_MESSAGE, &now, &expires).await? {
        let t = show(db, id).await?;
        if t.row.task_type == "import" {
            // The import's image, if its run had recorded it as saving, goes with the task
            // (as when an import fails); an image the run already made active stays.
            let image = crate::worker::import_image_id(&t.row);
            crate::db::images::delete_saving(db, &image, &t.row.owner).await?;
        }
        return Ok(t);
    }
    let t = show(db, id).await?;
    Err(OpsError::Ended {
        id: id.to_string(),
        status: t.row.status,
    })
}
