//! `cloudimg tasks list|show|cancel`: the operators' view of the task queue, straight from
//! the catalog database (every project's tasks, with leases and attempts).
//!
//! Exit codes: 0 done; 1 `cancel` of a task that has already ended (success or failure:
//! nothing was changed); 2 usage or environment (bad database URL, a catalog that does
//! not answer, no task with that id).

use crate::output::{print_json, OutputFormat};
use cloudimg_api::db::tasks::AllTasksQuery;
use cloudimg_api::db::Db;
use cloudimg_api::ops::{self, OpsError, OpsTask};
use std::process::ExitCode;

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
  cloudimg tasks list --db postgres://cloudimg@db/cloudimg --status processing\n  \
  cloudimg tasks list --db sqlite:demo-out/catalog.db --owner proj-a --output json\n  \
  cloudimg tasks show --db sqlite:demo-out/catalog.db 0b6f0c43-5d1e-4a9e-9f3c-2f1e7b0d4c11\n  \
  cloudimg tasks cancel --db sqlite:demo-out/catalog.db 0b6f0c43-5d1e-4a9e-9f3c-2f1e7b0d4c11\n\n\
Exit codes: 0 done, 1 the task has already ended (cancel), 2 usage, database or unknown task.")]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Every project's tasks, newest first.
    List {
        #[command(flatten)]
        db: DbArgs,
        /// Only tasks in this status.
        #[arg(long, value_enum)]
        status: Option<Status>,
        /// Only tasks of this type.
        #[arg(long = "type", value_enum)]
        task_type: Option<Kind>,
        /// Only this project's tasks.
        #[arg(long, value_name = "PROJECT")]
        owner: Option<String>,
        /// At most this many.
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: u32,
    },
    /// One task whole: input, result, message, lease, attempts, progress.
    Show {
        #[command(flatten)]
        db: DbArgs,
        /// The task id.
        id: String,
    },
    /// Fail a pending or processing task ("cancelled by an operator"); a worker running
    /// it has its result refused.
    Cancel {
        #[command(flatten)]
        db: DbArgs,
        /// The task id.
        id: String,
    },
}

#[derive(clap::Args)]
struct DbArgs {
    /// Catalog database: sqlite:PATH or postgres://USER@HOST/DB.
    #[arg(long, value_name = "URL")]
    db: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    output: OutputFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Status {
    Pending,
    Processing,
    Success,
    Failure,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Kind {
    Import,
    Export,
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Pending => "pending",
        Status::Processing => "processing",
        Status::Success => "success",
        Status::Failure => "failure",
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(run_async(args.command))
}

/// Exit code 1: the task is in a state the command cannot change.
const ENDED: u8 = 1;
/// Exit code 2: usage or environment.
const ENV: u8 = 2;

fn fail(e: &OpsError) -> ExitCode {
    eprintln!("cloudimg tasks: {e}");
    ExitCode::from(match e {
        OpsError::Ended { .. } => ENDED,
        OpsError::NotFound(_) | OpsError::Catalog(_) => ENV,
    })
}

async fn run_async(cmd: Sub) -> anyhow::Result<ExitCode> {
    let dba = match &cmd {
        Sub::List { db, .. } | Sub::Show { db, .. } | Sub::Cancel { db, .. } => db,
    };
    let db = match open(&dba.db).await {
        Ok(db) => db,
        Err(e) => {
            eprintln!("cloudimg tasks: {e}");
            return Ok(ExitCode::from(ENV));
        }
    };
    let output = dba.output;
    let code = match &cmd {
        Sub::List {
            status,
            task_type,
            owner,
            limit,
            ..
        } => {
            let q = AllTasksQuery {
                status: status.map(|s| status_name(s).to_string()),
                task_type: task_type.map(|k| {
                    match k {
                        Kind::Import => "import",
                        Kind::Export => "export",
                    }
                    .to_string()
                }),
                owner: owner.clone(),
                limit: i64::from(*limit),
            };
            match ops::list(&db, &q).await {
                Ok(tasks) => {
                    match output {
                        OutputFormat::Json => {
                            let v: Vec<_> = tasks.iter().map(OpsTask::to_json).collect();
                            print_json(&serde_json::json!({ "tasks": v }))?;
                        }
                        OutputFormat::Human => print!("{}", table(&tasks)),
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        Sub::Show { id, .. } | Sub::Cancel { id, .. } => {
            let r = if matches!(cmd, Sub::Cancel { .. }) {
                ops::cancel(&db, id).await
            } else {
                ops::show(&db, id).await
            };
            match r {
                Ok(t) => {
                    match output {
                        OutputFormat::Json => print_json(&t.to_json())?,
                        OutputFormat::Human => print!("{}", details(&t)),
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
    };
    db.close().await;
    Ok(code)
}

/// Opens the catalog; a SQLite file must exist (an operator's typo must not create an
/// empty catalog).
async fn open(url: &str) -> Result<Db, String> {
    if let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let path = rest.split('?').next().unwrap_or(rest);
        if !path.is_empty()
            && !path.starts_with(":memory:")
            && !std::path::Path::new(path).is_file()
        {
            return Err(format!("{url}: no catalog database at {path}"));
        }
    }
    Db::connect(url).await
}

fn progress(t: &OpsTask) -> String {
    let r = &t.row;
    match &r.phase {
        Some(p) if r.bytes_total > 0 => format!("{p} {}/{}", r.bytes_done, r.bytes_total),
        Some(p) => p.clone(),
        None => "-".into(),
    }
}

/// The human list: one line per task.
fn table(tasks: &[OpsTask]) -> String {
    let mut rows = vec![[
        "ID".to_string(),
        "TYPE".into(),
        "STATUS".into(),
        "OWNER".into(),
        "ATTEMPTS".into(),
        "PROGRESS".into(),
        "LEASE OWNER".into(),
        "CREATED".into(),
    ]];
    for t in tasks {
        let r = &t.row;
        rows.push([
            r.id.clone(),
            r.task_type.clone(),
            r.status.clone(),
            r.owner.clone(),
            format!("{}/{}", r.attempts, r.max_attempts),
            progress(t),
            t.lease.owner.clone().unwrap_or_else(|| "-".into()),
            r.created_at.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..8)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// The human view of one task.
fn details(t: &OpsTask) -> String {
    let r = &t.row;
    let none = || "-".to_string();
    let lines = [
        ("id", r.id.clone()),
        ("type", r.task_type.clone()),
        ("status", r.status.clone()),
        ("owner", r.owner.clone()),
        ("message", r.message.clone()),
        ("input", r.input.clone()),
        ("result", r.result.clone().unwrap_or_else(none)),
        ("attempts", format!("{} of {}", r.attempts, r.max_attempts)),
        ("progress", progress(t)),
        ("lease owner", t.lease.owner.clone().unwrap_or_else(none)),
        (
            "lease expires",
            t.lease.expires_at.clone().unwrap_or_else(none),
        ),
        ("created", r.created_at.clone()),
        ("updated", r.updated_at.clone()),
        ("expires", r.expires_at.clone().unwrap_or_else(none)),
    ];
    lines.iter().map(|(k, v)| format!("{k:<14}{v}\n")).collect()
}
