//! Task workers: claim a task under a lease, run the import or export flow on a blocking
//! thread, heartbeat the lease with progress, and write the result only while the lease
//! is still ours. Any number of workers on any number of machines share one catalog; they
//! keep no state of their own.
//!
//! Exactly-once results from at-least-once runs: an import's image id is derived from the
//! task id, and an export's bytes depend on the image only, so a run that takes over a
//! task from a dead worker produces the same image or the same object; the image is
//! registered in the catalog with a create-if-absent, and the task's end is one fenced
//! UPDATE.
//!
//! The customers' files: with `--files DIR`, one folder per project,
//! `DIR/<project>/<container>/<object>`, and a task reads and writes only inside its
//! owner's folder; with `--files swift`, each customer's own Cloud Files account, reached
//! through the Keystone trust the API made when the task was created (the service user
//! acting for the caller in the caller's project; the storage URL comes from that token's
//! catalog), so a task can name nothing outside its owner's account.

use crate::clock;
use crate::db::{self, tasks::TaskRow};
use crate::domain::image::{status, Image};
use crate::fence::{Fence, FencedStore};
use crate::metrics::Beat;
use crate::state::AppState;
use cloudimg_pipeline::local::LocalStore;
use cloudimg_pipeline::ObjectStore;
use cloudimg_tasks::export::ExportOptions;
use cloudimg_tasks::import::ImportOptions;
use cloudimg_tasks::{Progress, Task, TaskStatus, TaskType};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Where the customers' files are.
#[derive(Debug, Clone)]
pub enum Files {
    /// A directory with one folder per project.
    Local(PathBuf),
    /// Each project's own Swift account, through per-task Keystone trusts.
    Swift {
        /// Keystone's URL.
        auth_url: String,
        /// The service user the trusts delegate to.
        creds: crate::auth::keystone::ServiceCredentials,
    },
}

/// How workers run.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The customers' files.
    pub files: Files,
    /// Tasks run at once by this process.
    pub concurrency: usize,
    /// Lease length; heartbeats every third of it.
    pub lease: Duration,
    /// Pause between claims when no task is due.
    pub poll: Duration,
    /// How long a finished task stays visible (Glance: 48 h); its result stays longer.
    pub task_ttl: Duration,
    /// Segment size of exported objects (Cloud Images: 1,000 MiB, Cloud Files' default).
    pub export_segment_size: u64,
    /// `cloudimg worker --metrics-listen`: where `GET /metrics` and `/healthz` answer.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            files: Files::Local(PathBuf::from("files")),
            concurrency: 1,
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(500),
            task_ttl: DEFAULT_TASK_TTL,
            export_segment_size: cloudimg_tasks::export::DEFAULT_SEGMENT_SIZE,
            metrics_listen: None,
        }
    }
}

/// How long a worker keeps trying to record the end of a task when the catalog fails.
const FINISH_PATIENCE: Duration = Duration::from_secs(120);

/// How long a finished task stays visible by default (Glance: 48 h).
pub const DEFAULT_TASK_TTL: Duration = Duration::from_secs(48 * 3600);

/// Runs workers until `stop` fires; a task in flight is finished first.
pub async fn run(st: Arc<AppState>, cfg: WorkerConfig, stop: CancellationToken) {
    let mut slots = Vec::new();
    for n in 0..cfg.concurrency.max(1) {
        let (st, cfg, stop) = (st.clone(), cfg.clone(), stop.clone());
        slots.push(tokio::spawn(async move {
            let me = format!("{}:{n}", st.node);
            while !stop.is_cancelled() {
                match run_once(&st, &cfg, &me).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tokio::select! {
                            _ = stop.cancelled() => {}
                            _ = st.task_created.notified() => {}
                            _ = tokio::time::sleep(cfg.poll) => {}
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "worker: the catalog does not answer; retrying");
                        tokio::time::sleep(cfg.poll * 4).await;
                    }
                }
            }
        }));
    }
    for s in slots {
        let _ = s.await;
    }
}

/// Claims and runs one task; false when none was due.
pub async fn run_once(
    st: &Arc<AppState>,
    cfg: &WorkerConfig,
    me: &str,
) -> Result<bool, sqlx::Error> {
    let now = clock::now();
    db::tasks::reap(&st.db, &now, &clock::after(cfg.task_ttl)).await?;
    let Some(row) = db::tasks::claim(&st.db, me, &clock::after(cfg.lease), &now).await? else {
        return Ok(false);
    };
    tracing::info!(task = %row.id, kind = %row.task_type, attempt = row.attempts, "task claimed");
    let _running = st
        .metrics
        .claimed(&row.task_type, &row.created_at, row.attempts);
    let progress = Arc::new(Mutex::new(("starting".to_string(), 0i64, 0i64)));
    let fence = Fence::default();
    let beat = tokio::spawn(heartbeat(
        st.clone(),
        row.clone(),
        me.to_string(),
        cfg.lease,
        progress.clone(),
        fence.clone(),
    ));
    let placeholder = match row.task_type.as_str() {
        "import" => begin_import_image(st, &row).await?,
        _ => None,
    };
    let (st2, cfg2, row2, p2, f2) = (
        st.clone(),
        cfg.clone(),
        row.clone(),
        progress.clone(),
        fence.clone(),
    );
    let task = tokio::task::spawn_blocking(move || execute(&st2, &cfg2, &row2, &p2, &f2)).await;
    beat.abort();
    let task = match task {
        Ok(t) => t,
        Err(e) => {
            let mut t = new_task(&row);
            t.start();
            t.fail(&cloudimg_tasks::Error::input(format!(
                "the worker's run stopped: {e}"
            )));
            t
        }
    };
    if fence.is_closed() {
        tracing::warn!(task = %row.id, "lease lost: the run stopped; another worker owns the task");
        return Ok(true);
    }
    if task.status == TaskStatus::Success && row.task_type == "import" {
        if let Some(id) = task.result.as_ref().and_then(|r| r["image_id"].as_str()) {
            if let Err(e) = crate::adopt::adopt_one(st, id).await {
                tracing::warn!(task = %row.id, error = %e, "import: could not register the image; the task stays processing and is retried");
                return Ok(true);
            }
        }
    }
    let status = match task.status {
        TaskStatus::Success => "success",
        _ => "failure",
    };
    let result = task.result.as_ref().map(|r| r.to_string());
    // The work is done: a catalog that is briefly away (a restart, a failover) must not
    // cost a re-run, so the end is written again until it lands or FINISH_PATIENCE passes.
    let mut wait = Duration::from_millis(250);
    let give_up = std::time::Instant::now() + FINISH_PATIENCE;
    let done = loop {
        match db::tasks::finish(
            &st.db,
            &row.id,
            me,
            row.attempts,
            status,
            result.as_deref(),
            &task.message,
            &clock::now(),
            &clock::after(cfg.task_ttl),
        )
        .await
        {
            Ok(done) => break done,
            Err(e) if std::time::Instant::now() < give_up => {
                tracing::warn!(task = %row.id, error = %e, "writing the task's end failed; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    };
    st.metrics.finished(&row.task_type, status, done);
    if done {
        if let (false, Some(id)) = (task.status == TaskStatus::Success, &placeholder) {
            // Glance's import flow deletes the image it made when the import fails. Only
            // the lease holder does: another run may be making that image now.
            db::images::delete_saving(&st.db, id, &row.owner).await?;
        }
        if let Err(e) = db::credentials::delete(&st.db, &row.id).await {
            tracing::warn!(task = %row.id, error = %e, "could not forget the task's credential");
        }
        tracing::info!(task = %row.id, status, "task finished");
    } else {
        tracing::warn!(task = %row.id, "lease lost before the end: another run owns the task; nothing written");
    }
    Ok(true)
}

/// Records the image an import makes as `saving` (owner, name, private) while it runs, as
/// Glance shows it; create-if-absent, so a taken-over run finds it. Returns its id, or
/// None when the input cannot name one (the run then fails with code 111).
async fn begin_import_image(st: &AppState, row: &TaskRow) -> Result<Option<String>, sqlx::Error> {
    let task = new_task(row);
    let Ok(input) = cloudimg_tasks::ImportInput::parse(&task.input) else {
        return Ok(None);
    };
    let id = import_image_id(row);
    let mut img = Image::new(id.clone(), &row.owner);
    img.name = Some(input.name);
    img.status = status::SAVING.into();
    img.disk_format = Some("vhd".into());
    img.container_format = Some("ovf".into());
    match db::images::insert(&st.db, &img).await {
        Ok(()) => {}
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {}
        Err(e) => return Err(e),
    }
    Ok(Some(id))
}

/// The id of the image an import task makes (derived from the task, so every run of it
/// makes the same one).
pub fn import_image_id(row: &TaskRow) -> String {
    cloudimg_tasks::import::image_id_for(&new_task(row)).to_string()
}

fn new_task(row: &TaskRow) -> Task {
    let ty = if row.task_type == "export" {
        TaskType::Export
    } else {
        TaskType::Import
    };
    let input = serde_json::from_str(&row.input).unwrap_or(serde_json::Value::Null);
    Task::with_id(row.id.clone(), ty, input, row.owner.clone())
}

/// Runs the flow of `row` to its end (blocking).
fn execute(
    st: &AppState,
    cfg: &WorkerConfig,
    row: &TaskRow,
    progress: &Mutex<(String, i64, i64)>,
    fence: &Fence,
) -> Task {
    let mut task = new_task(row);
    let moved = st.metrics.transfer(&row.task_type);
    let report = |p: Progress| {
        moved.report(&p);
        let mut g = progress.lock().unwrap_or_else(|e| e.into_inner());
        *g = (
            format!("{:?}", p.phase).to_lowercase(),
            p.done as i64,
            p.total as i64,
        );
    };
    let images = st
        .store
        .through(FencedStore::wrap(st.store.object_store().clone(), fence));
    let files = match customer_files(st, cfg, row) {
        Ok(f) => FencedStore::wrap(f, fence),
        Err(e) => {
            task.start();
            task.fail(&e);
            return task;
        }
    };
    match task.task_type {
        TaskType::Import => {
            let _ = cloudimg_tasks::import::run(
                &mut task,
                &files,
                &images,
                &ImportOptions::default(),
                &report,
            );
        }
        TaskType::Export => {
            if let Err(e) = exportable(st, &task) {
                task.start();
                task.fail(&e);
                return task;
            }
            let opts = ExportOptions {
                segment_size: cfg.export_segment_size,
                ..ExportOptions::default()
            };
            let _ = cloudimg_tasks::export::run(&mut task, &images, &files, &opts, &report);
        }
    }
    task
}

/// The owner's own files: its folder of the local files, or its Swift account through
/// the task's trust.
fn customer_files(
    st: &AppState,
    cfg: &WorkerConfig,
    row: &TaskRow,
) -> cloudimg_tasks::Result<Arc<dyn ObjectStore>> {
    let owner = &row.owner;
    match &cfg.files {
        Files::Local(root) => {
            if owner.is_empty() || owner.contains('/') || owner.starts_with('.') {
                return Err(cloudimg_tasks::Error::input(format!(
                    "project id '{owner}' cannot name a folder"
                )));
            }
            LocalStore::new(root.join(owner))
                .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
                .map_err(|e| cloudimg_tasks::Error::input(format!("the customer's files: {e}")))
        }
        Files::Swift { auth_url, creds } => {
            let trust = tokio::runtime::Handle::current()
                .block_on(db::credentials::get(&st.db, &row.id))
                .map_err(|e| cloudimg_tasks::Error::input(format!("the catalog: {e}")))?
                .ok_or_else(|| {
                    cloudimg_tasks::Error::input(
                        "the task has no credential for the customer's Cloud Files (created before --files swift?)",
                    )
                })?;
            let auth = cloudimg_pipeline::swift::SwiftAuth::Trust {
                auth_url: auth_url.clone(),
                username: creds.username.clone(),
                password: creds.password.clone(),
                user_domain: creds.user_domain.clone(),
                trust_id: trust,
            };
            Ok(Arc::new(cloudimg_pipeline::swift::SwiftStore::new(auth)) as Arc<dyn ObjectStore>)
        }
    }
}

/// The catalog's rules for exports: the owner's own, private image with a package (a
/// consumer of a shared image cannot export it; sharing makes an image non-exportable).
fn exportable(st: &AppState, task: &Task) -> cloudimg_tasks::Result<()> {
    let input = cloudimg_tasks::ExportInput::parse(&task.input)?;
    let id = input.image_uuid.to_string();
    let handle = tokio::runtime::Handle::current();
    let (img, loc) = handle
        .block_on(async {
            let img = db::images::get(&st.db, &id).await?;
            let loc = db::locations::get(&st.db, &id).await?;
            Ok::<_, sqlx::Error>((img, loc))
        })
        .map_err(|e| cloudimg_tasks::Error::input(format!("the catalog: {e}")))?;
    let forbid = |why: String| {
        cloudimg_tasks::Error::new(
            cloudimg_tasks::ErrorKind::Forbidden,
            "export",
            id.clone(),
            why,
        )
    };
    let img = match img {
        Some(i)
            if i.owner == task.owner || i.visibility == "shared" || i.visibility == "public" =>
        {
            i
        }
        _ => return Err(forbid("no such image in your account".into())),
    };
    if img.owner != task.owner {
        return Err(forbid(format!(
            "image belongs to {}; only its owner can export it",
            img.owner
        )));
    }
    if img.visibility != "private" {
        return Err(forbid(format!(
            "{} images cannot be exported",
            img.visibility
        )));
    }
    match loc {
        Some(l) if l.kind == "package" => Ok(()),
        _ => Err(forbid(
            "the image has no imported package to export (export takes images made by import)"
                .into(),
        )),
    }
}

async fn heartbeat(
    st: Arc<AppState>,
    row: TaskRow,
    me: String,
    lease: Duration,
    progress: Arc<Mutex<(String, i64, i64)>>,
    fence: Fence,
) {
    loop {
        tokio::time::sleep(lease / 3).await;
        let p = progress.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match db::tasks::heartbeat(
            &st.db,
            &row.id,
            &me,
            row.attempts,
            &clock::after(lease),
            (&p.0, p.1, p.2),
        )
        .await
        {
            Ok(true) => st.metrics.heartbeat(Beat::Ok),
            Ok(false) => {
                st.metrics.heartbeat(Beat::LeaseLost);
                // Another worker owns the task: the run stops at its next store
                // operation and undoes nothing; its catalog writes are refused anyway.
                tracing::warn!(task = %row.id, "lease lost: stopping the run");
                fence.close();
                return;
            }
            Err(e) => {
                st.metrics.heartbeat(Beat::Error);
                tracing::warn!(task = %row.id, error = %e, "heartbeat failed")
            }
        }
    }
}
