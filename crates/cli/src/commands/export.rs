//! `cloudimg export`: run a Glance export task (an image -> one dynamic VHD as a DLO
//! `<uuid>.vhd` in a container) and print the task JSON.
//!
//! Without `--task-json` the task id is derived from the request (image, container,
//! owner). A re-run after an interruption resumes: segments already stored with the
//! right size and MD5 are not sent again (the export's bytes depend on the image only).

use super::taskcli::{self, Bar};
use cloudimg_tasks::export::{self, ExportOptions};
use cloudimg_tasks::{ExportInput, ImageStore, Task, TaskType};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The image store: swift://container[/prefix], s3://bucket[/prefix] or a directory.
    #[arg(long, value_name = "URL")]
    store: String,
    /// The image to export.
    #[arg(long, value_name = "UUID", required_unless_present = "task_json")]
    image: Option<String>,
    /// The receiving container: swift://container, or a local directory DIR/container
    /// (which must exist).
    #[arg(long, value_name = "URL")]
    to: String,
    /// Owner (project id) running the task; must own the image.
    #[arg(long, value_name = "ID")]
    owner: Option<String>,
    /// Run this task (a task JSON or a POST /v2/tasks body); its container must be --to's.
    #[arg(long, value_name = "FILE", conflicts_with = "image")]
    task_json: Option<PathBuf>,
    /// Bytes per segment.
    #[arg(long, value_name = "BYTES", default_value_t = export::DEFAULT_SEGMENT_SIZE)]
    segment_size: u64,
    /// Segment uploads in flight.
    #[arg(short = 'j', long, default_value_t = 2)]
    jobs: usize,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let owner = args.owner.clone().unwrap_or_else(taskcli::default_owner);
    let images = ImageStore::open(&args.store)?;
    let (dest, container) = taskcli::open_container(&args.to)?;
    let mut task = match (&args.task_json, &args.image) {
        (Some(file), _) => taskcli::read_task(file, &owner)?,
        (None, Some(id)) => Task::derived(
            TaskType::Export,
            ExportInput::to_json(id, &container),
            owner,
        ),
        (None, None) => anyhow::bail!("give --image or --task-json"),
    };
    if task.task_type != TaskType::Export {
        anyhow::bail!("the task is an {:?} task, not an export", task.task_type);
    }
    let opts = ExportOptions {
        segment_size: args.segment_size,
        upload_jobs: args.jobs.max(1),
        ..ExportOptions::default()
    };
    let bar = Bar::new();
    let result = export::run(&mut task, &images, &dest, &opts, &|p| bar.report(p));
    bar.done();
    Ok(taskcli::finish(&task, &result))
}
