//! `cloudimg serve`: the Cloud Images v2 API (Glance v2) on a catalog database and an image
//! store, until SIGINT or SIGTERM.

use cloudimg_api::server::{serve, AuthConfig, ServeConfig};
use cloudimg_api::Limits;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
  cloudimg serve --db sqlite:demo-out/catalog.db --store demo-out/store --auth static --tokens tokens.json\n  \
  OS_USERNAME=glance OS_PASSWORD=... OS_PROJECT_NAME=service \\\n    \
  cloudimg serve --db postgres://cloudimg@127.0.0.1/cloudimg --store swift://images --auth keystone --keystone-url http://127.0.0.1:5000\n\n\
Token file (--auth static): {\"TOKEN\": {\"project_id\": \"PROJECT\", \"roles\": [\"admin\"]}, ...}")]
pub struct Args {
    /// Catalog database: sqlite:PATH (created if missing) or postgres://USER@HOST/DB.
    #[arg(long, value_name = "URL")]
    db: String,
    /// Image store: a directory, swift://container[/prefix] or s3://bucket[/prefix].
    #[arg(long, value_name = "URL")]
    store: String,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9292")]
    listen: SocketAddr,
    /// How tokens are validated.
    #[arg(long, value_enum, default_value = "static")]
    auth: AuthMode,
    /// Token file for --auth static.
    #[arg(long, value_name = "FILE", required_if_eq("auth", "static"))]
    tokens: Option<PathBuf>,
    /// Keystone URL for --auth keystone; the service's own credentials come from
    /// OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME (and OS_*_DOMAIN_NAME).
    #[arg(long, value_name = "URL", required_if_eq("auth", "keystone"))]
    keystone_url: Option<String>,
    /// Largest image data accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_image_size)]
    max_image_size: u64,
    /// Largest page of GET /v2/images.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_page)]
    max_page: usize,
    /// Uploads at once (each buffers at most (upload-jobs + 1) x upload-segment-size bytes).
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_uploads)]
    max_uploads: usize,
    /// Segment size of image data in the store.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().upload_segment_size)]
    upload_segment_size: u64,
    /// Parallel segment PUTs per upload.
    #[arg(long, value_name = "N", default_value_t = Limits::default().upload_jobs)]
    upload_jobs: usize,
    /// Seconds in-flight requests may run after SIGTERM before uploads are cut.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    drain: u64,
    /// Task workers inside the server (the single-machine default); 0 leaves tasks to
    /// `cloudimg worker` processes.
    #[arg(long, value_name = "N", default_value_t = 1)]
    workers: usize,
    /// The customers' files for tasks: a directory with one folder per project
    /// (DIR/<project>/<container>/<object>), or `swift`: each caller's own Cloud Files
    /// account through a Keystone trust made at task creation (needs --auth keystone).
    #[arg(long, value_name = "DIR|swift")]
    files: Option<PathBuf>,
    /// Hours a finished task stays visible (its image or exported object stays).
    #[arg(long, value_name = "HOURS", default_value_t = 48)]
    task_ttl: u64,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum AuthMode {
    /// Tokens from --tokens FILE.
    Static,
    /// Keystone v3.
    Keystone,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging();
    let auth = match args.auth {
        AuthMode::Static => AuthConfig::Static(args.tokens.expect("clap requires --tokens")),
        AuthMode::Keystone => AuthConfig::Keystone(
            args.keystone_url
                .clone()
                .expect("clap requires --keystone-url"),
        ),
    };
    let limits = Limits {
        max_image_size: args.max_image_size,
        max_page: args.max_page.max(1),
        max_uploads: args.max_uploads.max(1),
        upload_segment_size: args.upload_segment_size.max(1 << 20),
        upload_jobs: args.upload_jobs.max(1),
        ..Limits::default()
    };
    let cfg = ServeConfig {
        db_url: args.db,
        store_url: args.store,
        listen: args.listen,
        auth,
        limits,
        drain: Duration::from_secs(args.drain),
        workers: if args.files.is_some() {
            args.workers
        } else {
            0
        },
        files: args
            .files
            .as_deref()
            .map(|f| files(f, args.keystone_url.as_deref()))
            .transpose()?,
        task_ttl: Duration::from_secs(args.task_ttl * 3600),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match rt.block_on(serve(cfg, None)) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("cloudimg serve: {e}");
            Ok(ExitCode::from(2))
        }
    }
}

/// Log lines on stderr; `CLOUDIMG_LOG` filters them (`info` by default).
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CLOUDIMG_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,tower_http=warn,sqlx=warn")
            }),
        )
        .with_writer(std::io::stderr)
        .try_init();
}

/// `--files DIR|swift` of serve and worker: `swift` means the customers' Swift accounts
/// through Keystone trusts, with the service's credentials from `OS_*`.
pub(crate) fn files(
    arg: &std::path::Path,
    keystone_url: Option<&str>,
) -> anyhow::Result<cloudimg_api::worker::Files> {
    if arg != std::path::Path::new("swift") {
        return Ok(cloudimg_api::worker::Files::Local(arg.to_path_buf()));
    }
    let Some(url) = keystone_url else {
        anyhow::bail!("--files swift needs --keystone-url (tasks reach customers' Cloud Files through Keystone trusts)");
    };
    let creds =
        cloudimg_api::auth::keystone::ServiceCredentials::from_env().map_err(anyhow::Error::msg)?;
    Ok(cloudimg_api::worker::Files::Swift {
        auth_url: url.to_string(),
        creds,
    })
}
