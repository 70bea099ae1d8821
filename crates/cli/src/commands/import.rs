//! `cloudimg import`: run a Glance import task (a VHD object -> an image in the store)
//! and print the task JSON; or, with `--package`, add an existing XenServer tarball to
//! the store as an image.
//!
//! Without `--task-json` the task id is derived from the request (object, image name,
//! owner; [`cloudimg_tasks::task::derived_id`]): running the same command again is the
//! same task, so it returns the image an earlier run made, or, after an interrupted run,
//! removes that run's debris and starts over, never making a second image. Give another
//! `--name` (or a task JSON with its own id) to import the same object twice.

use super::taskcli::{self, Bar};
use anyhow::Context;
use cloudimg_pipeline::url::Location;
use cloudimg_tasks::import::{self, ImportOptions};
use cloudimg_tasks::{ImageStore, ImportInput, Task, TaskType};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The VHD object: swift://container/object, s3://bucket/key, or a local path
    /// (DIR/container/object). With --task-json, the store the task's import_from is
    /// resolved in (swift://, s3:// or a directory of containers).
    #[arg(long, value_name = "URL", required_unless_present = "package")]
    from: Option<String>,
    /// The image store: swift://container[/prefix], s3://bucket[/prefix] or a directory.
    #[arg(long, value_name = "URL")]
    store: String,
    /// Image name (default: the object name).
    #[arg(long)]
    name: Option<String>,
    /// Owner (project id) of the task and image.
    #[arg(long, value_name = "ID")]
    owner: Option<String>,
    /// Run this task (a task JSON or a POST /v2/tasks body) instead of one built from --from.
    #[arg(long, value_name = "FILE")]
    task_json: Option<PathBuf>,
    /// Add this XenServer package (gzipped tarball of 0.vhd..N-1.vhd) as an image instead.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["from", "task_json"])]
    package: Option<PathBuf>,
    /// Largest virtual size accepted, in bytes (413 above it).
    #[arg(long, value_name = "BYTES", default_value_t = import::DEFAULT_MAX_VIRTUAL)]
    max_virtual_size: u64,
    /// Largest source object accepted, in bytes (609 above it).
    #[arg(long, value_name = "BYTES", default_value_t = import::DEFAULT_MAX_PHYSICAL)]
    max_physical_size: u64,
    /// Gzip level of the package, 1-9: 1 fastest, 9 smallest, 6 the default.
    ///
    /// With ISA-L built in (`cloudimg --version` says): 1-3 run ISA-L level 1
    /// (the least CPU); 4-6 ISA-L level 2; 7 ISA-L level 3 (about 1.5x the CPU
    /// of 6, 0.3-1.6 % smaller); 8 zlib-rs (libdeflate for the package) at
    /// zlib's 6, the size of gzip -6 (on machine code about 10 % smaller than
    /// ISA-L's, for 10-20x the CPU); 9 the same engines at 9. Without ISA-L
    /// every level is zlib's. Figures: BENCHMARKS.md.
    #[arg(long, default_value_t = 6)]
    level: u32,
    /// Compression threads (default: the cores).
    #[arg(short = 'j', long)]
    jobs: Option<usize>,
    /// Bytes per package segment (at least 1 MiB); small ones let tests stop an import
    /// between segments.
    #[arg(long, value_name = "BYTES", hide = true)]
    package_segment_size: Option<usize>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let owner = args.owner.clone().unwrap_or_else(taskcli::default_owner);
    let images = ImageStore::open(&args.store)?;
    if let Some(pkg) = &args.package {
        let name = args.name.clone().unwrap_or_else(|| file_name(pkg));
        let rec = cloudimg_tasks::register::register_package(&images, pkg, &name, &owner)?;
        println!("{}", serde_json::to_string_pretty(&rec)?);
        return Ok(ExitCode::SUCCESS);
    }
    let from = args.from.as_deref().context("--from is required")?;
    let (source, mut task) = match &args.task_json {
        Some(file) => (
            taskcli::open_store_root(from)?,
            taskcli::read_task(file, &owner)?,
        ),
        None => {
            let loc = Location::parse(from)?;
            let p = loc.path().clone();
            if p.name.is_empty() {
                anyhow::bail!("{from}: name an object (container/object)");
            }
            let name = args
                .name
                .clone()
                .unwrap_or_else(|| file_name(std::path::Path::new(&p.name)));
            let input = ImportInput::to_json(&p.container, &p.name, &name);
            (loc.open()?, Task::derived(TaskType::Import, input, owner))
        }
    };
    if task.task_type != TaskType::Import {
        anyhow::bail!("the task is an {:?} task, not an import", task.task_type);
    }
    let mut opts = ImportOptions {
        max_virtual_size: args.max_virtual_size,
        max_physical_size: args.max_physical_size,
        ..ImportOptions::default()
    };
    opts.package.level = args.level;
    if let Some(j) = args.jobs {
        opts.package.jobs = j;
    }
    if let Some(n) = args.package_segment_size {
        opts.package.segment_size = n;
    }
    let bar = Bar::new();
    let result = import::run(&mut task, &source, &images, &opts, &|p| bar.report(p));
    bar.done();
    Ok(taskcli::finish(&task, &result))
}

fn file_name(p: &std::path::Path) -> String {
    p.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into())
}
