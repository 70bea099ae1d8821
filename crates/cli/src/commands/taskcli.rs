//! What `import` and `export` share: opening stores from URLs, the task JSON file,
//! progress bars, and turning a finished task into output and an exit code.

use anyhow::Context;
use cloudimg_pipeline::local::LocalStore;
use cloudimg_pipeline::url::Location;
use cloudimg_pipeline::ObjectStore;
use cloudimg_tasks::{Phase, Progress, Task};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// The default owner (project id) of tasks run from the command line.
pub fn default_owner() -> String {
    std::env::var("OS_PROJECT_ID")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "local".to_string())
}

/// Opens a container URL: `swift://container`, `s3://bucket`, or a local directory
/// `DIR/container` (the store is rooted at `DIR`). Returns the store and the container.
pub fn open_container(url: &str) -> anyhow::Result<(Arc<dyn ObjectStore>, String)> {
    if url.starts_with("swift://") || url.starts_with("s3://") {
        let loc = Location::parse(url)?;
        if !loc.path().name.is_empty() {
            anyhow::bail!("{url}: give a container, not an object (swift://container)");
        }
        return Ok((loc.open()?, loc.path().container.clone()));
    }
    let p = PathBuf::from(url.strip_prefix("file://").unwrap_or(url));
    let abs = std::path::absolute(&p).with_context(|| format!("{url}: bad path"))?;
    let container = abs
        .file_name()
        .and_then(|s| s.to_str())
        .with_context(|| format!("{url}: a local container needs a directory name"))?
        .to_string();
    let root = abs
        .parent()
        .with_context(|| format!("{url}: no parent directory"))?;
    Ok((Arc::new(LocalStore::new(root)?), container))
}

/// Opens the store a task's `container/object` is resolved in: the account of
/// `swift://...`/`s3://...`, or a local directory whose folders are containers.
pub fn open_store_root(url: &str) -> anyhow::Result<Arc<dyn ObjectStore>> {
    if url.starts_with("swift://") || url.starts_with("s3://") {
        // Swift and S3 stores come from the environment; the URL only picks the kind.
        let kind = if url.starts_with("swift://") {
            "swift://x"
        } else {
            "s3://x"
        };
        return Ok(Location::parse(kind)?.open()?);
    }
    let p = Path::new(url.strip_prefix("file://").unwrap_or(url));
    Ok(Arc::new(LocalStore::new(p)?))
}

/// Reads a task JSON file (a full task or a `POST /v2/tasks` body).
pub fn read_task(file: &Path, owner: &str) -> anyhow::Result<Task> {
    let f = std::fs::File::open(file).with_context(|| format!("read {}", file.display()))?;
    Ok(Task::from_reader(f, &file.display().to_string(), owner)?)
}

/// A progress callback drawing a bar on a terminal (nothing otherwise).
pub struct Bar {
    bar: indicatif::ProgressBar,
    phase: std::sync::Mutex<Option<Phase>>,
}

impl Bar {
    pub fn new() -> Bar {
        Bar {
            bar: crate::progress::bytes(0, "starting"),
            phase: std::sync::Mutex::new(None),
        }
    }

    pub fn report(&self, p: Progress) {
        let mut cur = self.phase.lock().expect("not poisoned");
        if *cur != Some(p.phase) {
            *cur = Some(p.phase);
            self.bar.set_message(p.phase.as_str());
            self.bar.set_length(p.total);
        }
        if p.total != 0 {
            self.bar.set_length(p.total);
        }
        self.bar.set_position(p.done);
    }

    pub fn done(&self) {
        self.bar.finish_and_clear();
    }
}

/// Prints the task JSON and picks the exit code: 0 on success; on failure, the error
/// goes to stderr and the code says whether the data (1) or the environment (2) failed.
pub fn finish<T>(task: &Task, result: &cloudimg_tasks::Result<T>) -> ExitCode {
    println!("{}", task.to_json());
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "cloudimg: {} task failed: {}",
                serde_json::to_value(task.task_type)
                    .map(|v| v.as_str().unwrap_or("").to_string())
                    .unwrap_or_default(),
                crate::render::error(e)
            );
            ExitCode::from(if e.kind().is_data_error() {
                crate::exit::DATA
            } else {
                crate::exit::ENV
            })
        }
    }
}
