//! Running the service: configuration, start-up (catalog, image store, authenticator,
//! reaper, adoption of images imported by the CLI), the listener, and a graceful stop.

pub use crate::adopt::{adopt_imported, adopt_one};

use crate::auth::{keystone, static_tokens::StaticTokens, Authenticator};
use crate::db::Db;
use crate::service;
use crate::state::{AppState, Limits};
use cloudimg_tasks::ImageStore;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// How callers are authenticated.
#[derive(Debug, Clone)]
pub enum AuthConfig {
    /// Tokens from a JSON file.
    Static(PathBuf),
    /// Keystone v3 at this URL; the service's credentials come from `OS_*`.
    Keystone(String),
}

/// Everything `cloudimg serve` needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// `sqlite:PATH` or `postgres://...`.
    pub db_url: String,
    /// The image store URL (local directory, `swift://`, `s3://`).
    pub store_url: String,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Authentication.
    pub auth: AuthConfig,
    /// Limits.
    pub limits: Limits,
    /// How long in-flight requests may run after a stop signal before uploads are cut.
    pub drain: Duration,
    /// Task workers run inside the server (the single-machine default); 0 for none.
    pub workers: usize,
    /// The customers' files the workers read and write.
    pub files: Option<crate::worker::Files>,
    /// How long a finished task stays visible.
    pub task_ttl: Duration,
}

/// How long the Keystone trust of a task lasts: long enough for the task to wait in the
/// queue and run; a task still pending after it fails with Keystone's refusal.
pub const TRUST_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// Opens the catalog, the store and the authenticator; resets uploads a dead server left
/// behind; registers images that `cloudimg import` wrote to the store.
pub async fn build_state(cfg: &ServeConfig) -> Result<Arc<AppState>, String> {
    let db = Db::connect(&cfg.db_url).await?;
    let url = cfg.store_url.clone();
    let store = tokio::task::spawn_blocking(move || ImageStore::open(&url))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("image store {}: {e}", cfg.store_url))?;
    let auth = match &cfg.auth {
        AuthConfig::Static(p) => Authenticator::Static(StaticTokens::load(p)?),
        AuthConfig::Keystone(url) => {
            let creds = keystone::ServiceCredentials::from_env()?;
            Authenticator::Keystone(keystone::Keystone::new(url, creds))
        }
    };
    let trusts = match (&cfg.files, &auth) {
        (Some(crate::worker::Files::Swift { .. }), Authenticator::Keystone(_)) => {
            Some(TRUST_LIFETIME)
        }
        (Some(crate::worker::Files::Swift { .. }), _) => {
            return Err(
                "--files swift needs --auth keystone: tasks act for their callers through Keystone trusts"
                    .into(),
            )
        }
        _ => None,
    };
    let st = AppState::with_trusts(db, store, auth, cfg.limits.clone(), trusts);
    service::data::reap(&st).await.map_err(|e| e.to_string())?;
    let n = adopt_imported(&st).await?;
    if n > 0 {
        tracing::info!(images = n, "registered images imported into the store");
    }
    Ok(st)
}

/// Serves until SIGINT or SIGTERM. `ready` receives the bound address (port 0 allowed).
pub async fn serve(
    cfg: ServeConfig,
    ready: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
) -> Result<(), String> {
    let st = build_state(&cfg).await?;
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| format!("listen on {}: {e}", cfg.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%addr, "cloudimg API listening");
    if let Some(tx) = ready {
        let _ = tx.send(addr);
    }
    let reaper = tokio::spawn(reaper(st.clone()));
    let workers = if cfg.workers > 0 {
        let wcfg = crate::worker::WorkerConfig {
            files: cfg
                .files
                .clone()
                .unwrap_or_else(|| crate::worker::Files::Local(PathBuf::from("files"))),
            concurrency: cfg.workers,
            task_ttl: cfg.task_ttl,
            ..Default::default()
        };
        Some(tokio::spawn(crate::worker::run(
            st.clone(),
            wcfg,
            st.shutdown.clone(),
        )))
    } else {
        None
    };
    let app = crate::http::router(st.clone());
    let stop = st.shutdown.clone();
    let drain = cfg.drain;
    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal().await;
        tracing::info!("stopping: no new connections; in-flight requests may finish");
        let _ = signalled_tx.send(());
    });
    let server = async move { server.await };
    tokio::select! {
        r = server => r.map_err(|e| e.to_string())?,
        _ = async {
            let _ = signalled_rx.await;
            tokio::time::sleep(drain).await;
            tracing::warn!("drain period over: cancelling uploads in flight (their images go back to queued)");
            stop.cancel();
            tokio::time::sleep(Duration::from_secs(10)).await;
        } => tracing::warn!("requests still running after the drain period were cut"),
    }
    st.shutdown.cancel();
    reaper.abort();
    if let Some(w) = workers {
        // A task in flight finishes (or its lease expires and another worker takes it).
        let _ = w.await;
    }
    st.db.close().await;
    Ok(())
}

async fn reaper(st: Arc<AppState>) {
    loop {
        tokio::time::sleep(st.limits.upload_lease).await;
        if let Err(e) = service::data::reap(&st).await {
            tracing::warn!(error = %e, "upload reaper");
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// `cloudimg worker`: task workers on `db_url` and `store_url` until SIGINT/SIGTERM; a task
/// in flight is finished first (a second signal is not awaited: kill -9 is safe too, the
/// lease expires and another worker takes the task over).
pub async fn worker_main(
    db_url: &str,
    store_url: &str,
    wcfg: crate::worker::WorkerConfig,
) -> Result<(), String> {
    let db = Db::connect(db_url).await?;
    let url = store_url.to_string();
    let store = tokio::task::spawn_blocking(move || ImageStore::open(&url))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("image store {store_url}: {e}"))?;
    let auth = Authenticator::Static(StaticTokens::parse("{}")?);
    let st = AppState::new(db, store, auth, Limits::default());
    let stop = st.shutdown.clone();
    if let Some(addr) = wcfg.metrics_listen {
        crate::metrics::listen(st.clone(), addr).await?;
    }
    let run = tokio::spawn(crate::worker::run(st.clone(), wcfg, stop.clone()));
    shutdown_signal().await;
    tracing::info!("stopping: finishing the tasks in flight");
    stop.cancel();
    let _ = run.await;
    st.db.close().await;
    Ok(())
}
