//! `cloudimg worker`: runs Glance tasks (import, export) from the catalog, any number of
//! them on any number of machines sharing one database and one image store.

use cloudimg_api::worker::WorkerConfig;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
  cloudimg worker --db postgres://cloudimg@db/cloudimg --store swift://images --files /srv/files --concurrency 2 --metrics-listen 10.0.0.5:9101\n  \
  cloudimg worker --db sqlite:demo-out/catalog.db --store demo-out/store --files demo-out/files")]
pub struct Args {
    /// Catalog database: sqlite:PATH or postgres://USER@HOST/DB.
    #[arg(long, value_name = "URL")]
    db: String,
    /// Image store: a directory, swift://container[/prefix] or s3://bucket[/prefix].
    #[arg(long, value_name = "URL")]
    store: String,
    /// The customers' files: a directory with one folder per project, or `swift`: each
    /// task's owner's Cloud Files account through the Keystone trust the API made for it
    /// (with --keystone-url; the service's credentials from OS_USERNAME, OS_PASSWORD,
    /// OS_PROJECT_NAME).
    #[arg(long, value_name = "DIR|swift")]
    files: PathBuf,
    /// Keystone URL, for --files swift.
    #[arg(long, value_name = "URL")]
    keystone_url: Option<String>,
    /// Tasks run at once.
    #[arg(long, value_name = "N", default_value_t = 1)]
    concurrency: usize,
    /// Lease length in seconds (heartbeats every third of it; a dead worker's task is
    /// taken over after it).
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    lease: u64,
    /// Hours a finished task stays visible in the API (its image or exported object
    /// stays).
    #[arg(long, value_name = "HOURS", default_value_t = 48)]
    task_ttl: u64,
    /// Segment size of exported objects (Cloud Files' default, 1000M, as Cloud Images).
    #[arg(long, value_name = "BYTES", value_parser = super::upload::parse_size, default_value = "1000M")]
    export_segment_size: u64,
    /// Serve GET /metrics (Prometheus text format) and GET /healthz on this address
    /// (operators' network only: no authentication).
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<std::net::SocketAddr>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::serve::init_logging();
    let cfg = WorkerConfig {
        files: super::serve::files(&args.files, args.keystone_url.as_deref())?,
        concurrency: args.concurrency.max(1),
        lease: Duration::from_secs(args.lease.max(3)),
        task_ttl: Duration::from_secs(args.task_ttl * 3600),
        export_segment_size: args.export_segment_size.max(1 << 20),
        metrics_listen: args.metrics_listen,
        ..WorkerConfig::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match rt.block_on(cloudimg_api::server::worker_main(
        &args.db,
        &args.store,
        cfg,
    )) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("cloudimg worker: {e}");
            Ok(ExitCode::from(2))
        }
    }
}
