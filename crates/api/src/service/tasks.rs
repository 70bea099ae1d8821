//! Tasks over the API: `POST /v2/tasks` records a pending task and answers at once;
//! workers (`cloudimg worker`, or `serve --workers N`) run it; the caller polls.
//!
//! Input is validated at create time with the same parsers the flows use, so a malformed
//! input is a 400 naming the field (Cloud Images would record a task that fails with code
//! 111; a 400 tells the caller sooner and leaves nothing to clean up). What can only be
//! known by running (the object exists, is a VHD, the image is exportable) fails the task
//! with its Cloud Images code in the message.

use crate::auth::{Action, Caller};
use crate::clock;
use crate::db::{self, tasks::TaskQuery, tasks::TaskRow};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use cloudimg_tasks::{ExportInput, ImportInput};
use serde_json::{json, Value};
use std::time::Duration;

/// Runs a task may take before it fails for good.
pub const MAX_ATTEMPTS: i64 = 3;

/// The task document; `full` adds input, result and message (the list shows summaries).
pub fn to_json(t: &TaskRow, full: bool) -> Value {
    let mut v = json!({
        "id": t.id,
        "type": t.task_type,
        "status": t.status,
        "owner": t.owner,
        "created_at": clock::show(&t.created_at),
        "updated_at": clock::show(&t.updated_at),
        "expires_at": t.expires_at.as_deref().map(clock::show),
        "self": format!("/v2/tasks/{}", t.id),
        "schema": "/v2/schemas/task",
    });
    if full {
        v["input"] = serde_json::from_str(&t.input).unwrap_or(Value::Null);
        v["result"] = t
            .result
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok())
            .unwrap_or(Value::Null);
        v["message"] = json!(t.message);
        // Ours, beside Glance's fields (declared in the served task schema).
        if t.status == "processing" {
            v["progress"] = json!({
                "phase": t.phase,
                "bytes_done": t.bytes_done,
                "bytes_total": t.bytes_total,
                "attempt": t.attempts,
            });
        }
    }
    v
}

/// `POST /v2/tasks`.
pub async fn create(st: &AppState, caller: &Caller, body: &Value) -> ApiResult<TaskRow> {
    caller.may(Action::CreateTask)?;
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::bad("The request body must be a JSON object"))?;
    if let Some(k) = obj
        .keys()
        .find(|k| !["type", "input"].contains(&k.as_str()))
    {
        return Err(ApiError::bad(format!(
            "Unknown attribute '{k}' (a task has type and input)"
        )));
    }
    let ty = obj
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad("A task needs \"type\": import or export"))?;
    let input = obj
        .get("input")
        .ok_or_else(|| ApiError::bad("A task needs \"input\""))?;
    let parsed = match ty {
        "import" => ImportInput::parse(input).map(|_| ()),
        "export" => ExportInput::parse(input).map(|_| ()),
        other => {
            return Err(ApiError::bad(format!(
                "Invalid task type '{other}': Cloud Images runs import and export"
            )))
        }
    };
    parsed.map_err(|e| ApiError::bad(format!("Invalid {ty} input: {e}")))?;
    let now = clock::now();
    let t = TaskRow {
        id: uuid::Uuid::new_v4().to_string(),
        task_type: ty.to_string(),
        status: "pending".into(),
        owner: caller.project_id.clone(),
        input: input.to_string(),
        result: None,
        message: String::new(),
        created_at: now.clone(),
        updated_at: now,
        expires_at: None,
        attempts: 0,
        max_attempts: MAX_ATTEMPTS,
        phase: None,
        bytes_done: 0,
        bytes_total: 0,
    };
    if let Some(life) = st.trust_lifetime {
        // The credential goes in first: a worker never sees the task without it.
        let crate::auth::Authenticator::Keystone(k) = &st.auth else {
            return Err(ApiError::Internal(
                "tasks on the customers' Swift need Keystone authentication".into(),
            ));
        };
        let (k, c) = (k.clone(), caller.clone());
        let (trust, until) = tokio::task::spawn_blocking(move || {
            // Keystone refuses a second trust identical to the first down to its expiry
            // (409); tasks created in the same microsecond differ by a few.
            let mut last = None;
            for n in 0..4u64 {
                let until = clock::after(life + Duration::from_micros(n * 7919));
                match k.create_trust(&c, &until) {
                    Ok(t) => return Ok((t, until)),
                    Err(ApiError::Conflict(m)) => last = Some(ApiError::Conflict(m)),
                    Err(e) => return Err(e),
                }
            }
            Err(last.unwrap_or_else(|| ApiError::conflict("trust")))
        })
        .await
        .map_err(|e| ApiError::Internal(format!("trust task: {e}")))??;
        db::credentials::insert(&st.db, &t.id, &trust, &until).await?;
    }
    db::tasks::insert(&st.db, &t).await?;
    st.task_created.notify_waiters();
    Ok(t)
}

/// `GET /v2/tasks/{id}`: the caller's own tasks only (others' are 404).
pub async fn show(st: &AppState, caller: &Caller, id: &str) -> ApiResult<TaskRow> {
    caller.may(Action::Read)?;
    let missing = || ApiError::not_found(format!("No task found with ID {id}"));
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(missing());
    }
    let t = db::tasks::get(&st.db, id).await?.ok_or_else(missing)?;
    let expired = t
        .expires_at
        .as_deref()
        .is_some_and(|e| e <= clock::now().as_str());
    if t.owner != caller.project_id || expired {
        return Err(missing());
    }
    Ok(t)
}

/// `GET /v2/tasks`.
pub async fn list(
    st: &AppState,
    caller: &Caller,
    params: &[(String, String)],
) -> ApiResult<(Vec<TaskRow>, Option<String>)> {
    caller.may(Action::Read)?;
    let mut q = TaskQuery {
        status: None,
        task_type: None,
        sort_key: "created_at",
        asc: false,
        limit: st.limits.default_page as i64,
        marker: None,
    };
    let mut carry = Vec::new();
    for (k, v) in params {
        if k != "marker" {
            carry.push((k.clone(), v.clone()));
        }
        match k.as_str() {
            "status" => {
                if !["pending", "processing", "success", "failure"].contains(&v.as_str()) {
                    return Err(ApiError::bad(format!("Invalid status '{v}'")));
                }
                q.status = Some(v.clone())
            }
            "type" => {
                if !["import", "export"].contains(&v.as_str()) {
                    return Err(ApiError::bad(format!("Invalid type '{v}'")));
                }
                q.task_type = Some(v.clone())
            }
            "sort_key" => {
                q.sort_key = match v.as_str() {
                    "created_at" => "created_at",
                    "updated_at" => "updated_at",
                    "status" => "status",
                    "type" => "type",
                    "id" => "id",
                    _ => return Err(ApiError::bad(format!("Invalid sort key '{v}'"))),
                }
            }
            "sort_dir" => {
                q.asc = match v.as_str() {
                    "asc" => true,
                    "desc" => false,
                    _ => return Err(ApiError::bad(format!("Invalid sort direction '{v}'"))),
                }
            }
            "limit" => {
                let n: i64 = v.parse().ok().filter(|n| *n >= 0).ok_or_else(|| {
                    ApiError::bad(format!("limit must be a non-negative integer, not '{v}'"))
                })?;
                q.limit = n.min(st.limits.max_page as i64);
            }
            "marker" => {
                let m = show(st, caller, v)
                    .await
                    .map_err(|_| ApiError::bad(format!("marker not found: no task with ID {v}")))?;
                q.marker = Some(m);
            }
            other => return Err(ApiError::bad(format!("Unknown parameter '{other}'"))),
        }
    }
    let rows = db::tasks::list(&st.db, &caller.project_id, &q, &clock::now()).await?;
    let next = match rows.last() {
        Some(last) if q.limit > 0 && rows.len() as i64 == q.limit => {
            carry.push(("marker".into(), last.id.clone()));
            Some(format!(
                "/v2/tasks?{}",
                serde_urlencoded::to_string(&carry).unwrap_or_default()
            ))
        }
        _ => None,
    };
    Ok((rows, next))
}
