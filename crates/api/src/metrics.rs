//! Prometheus metrics (text exposition format 0.0.4) of a server and of its workers:
//! the `/metrics` pages and the worker's listener.
//!
//! Written by hand rather than with a client crate: a few counters, gauges and one
//! histogram, rendered in one function, are less code than the registry and encoder
//! traits a crate brings. Counters live in memory per process ([`crate::counters`]; each
//! [`AppState`] has its own, so in-process tests do not share them); the task counts by
//! status and type are read from the catalog at scrape time, so every server shows the
//! fleet's queue.

pub use crate::counters::{Beat, Metrics, Running, Transfer};

use crate::counters::{esc, head};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The server's page: tasks by type and status from the catalog, uploads in flight, and
/// the counters of the workers embedded in this process.
pub async fn render_server(st: &AppState) -> Result<String, sqlx::Error> {
    let counts = crate::db::tasks::count_by_type_status(&st.db).await?;
    let mut out = String::new();
    head(
        &mut out,
        "cloudimg_tasks",
        "gauge",
        "Tasks in the catalog (every project, finished ones until purged), by type and status.",
    );
    let mut seen = BTreeMap::new();
    for (t, s, n) in counts {
        seen.insert((t, s), n);
    }
    for t in ["import", "export"] {
        for s in ["pending", "processing", "success", "failure"] {
            seen.entry((t.to_string(), s.to_string())).or_insert(0);
        }
    }
    for ((t, s), n) in seen {
        let _ = writeln!(
            out,
            "cloudimg_tasks{{type=\"{}\",status=\"{}\"}} {n}",
            esc(&t),
            esc(&s)
        );
    }
    let slots = st.limits.max_uploads.max(1);
    let in_flight = slots.saturating_sub(st.uploads.available_permits());
    head(
        &mut out,
        "cloudimg_uploads_in_flight",
        "gauge",
        "Image data uploads (PUT /v2/images/{id}/file) holding an upload slot now.",
    );
    let _ = writeln!(out, "cloudimg_uploads_in_flight {in_flight}");
    head(
        &mut out,
        "cloudimg_uploads_slots",
        "gauge",
        "Upload slots (serve --max-uploads).",
    );
    let _ = writeln!(out, "cloudimg_uploads_slots {slots}");
    st.metrics.render_worker(&mut out);
    Ok(out)
}

fn page(r: Result<String, sqlx::Error>) -> Response {
    match r {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the catalog does not answer: {e}\n"),
        )
            .into_response(),
    }
}

/// `GET /metrics` on the server (no authentication: operators' network only).
pub async fn server_metrics(State(st): State<Arc<AppState>>) -> Response {
    page(render_server(&st).await)
}

/// `GET /metrics` on a worker's listener: the worker counters only (the queue is on the
/// servers' page).
async fn worker_metrics(State(st): State<Arc<AppState>>) -> Response {
    let mut out = String::new();
    st.metrics.render_worker(&mut out);
    page(Ok(out))
}

/// The worker's listener: `GET /metrics` and `GET /healthz` (200 when the catalog
/// answers). Returns the bound address; the listener stops when `st.shutdown` fires.
pub async fn listen(st: Arc<AppState>, addr: SocketAddr) -> Result<SocketAddr, String> {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("metrics listener on {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let stop = st.shutdown.clone();
    let app = axum::Router::new()
        .route("/metrics", get(worker_metrics))
        .route("/healthz", get(crate::http::meta::healthz))
        .with_state(st);
    tokio::spawn(async move {
        let r = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, "metrics listener stopped");
        }
    });
    tracing::info!(addr = %bound, "worker metrics listening");
    Ok(bound)
}
