//! What every request shares: the catalog, the image store, the authenticator, limits.

use crate::auth::Authenticator;
use crate::db::Db;
use cloudimg_tasks::ImageStore;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Limits and tunables of the service (all configurable from `cloudimg serve`).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Page size when `limit` is absent.
    pub default_page: usize,
    /// Largest page (Cloud Images: 100).
    pub max_page: usize,
    /// Largest image data accepted by `PUT .../file`.
    pub max_image_size: u64,
    /// Largest JSON request body.
    pub max_json_body: usize,
    /// Uploads at once; more wait for a slot.
    pub max_uploads: usize,
    /// Segment size of uploads into the image store.
    pub upload_segment_size: u64,
    /// Parallel segment PUTs per upload.
    pub upload_jobs: usize,
    /// How long an upload's lease lasts without a heartbeat (a dead server's uploads go
    /// back to `queued` after this).
    pub upload_lease: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            default_page: 25,
            max_page: 100,
            max_image_size: 160 << 30,
            max_json_body: 1 << 20,
            max_uploads: 16,
            upload_segment_size: 32 << 20,
            upload_jobs: 2,
            upload_lease: Duration::from_secs(60),
        }
    }
}

/// Shared state of the service.
pub struct AppState {
    /// The catalog.
    pub db: Db,
    /// Where image data lives.
    pub store: ImageStore,
    /// Token validation.
    pub auth: Authenticator,
    /// Limits.
    pub limits: Limits,
    /// Fired at shutdown: uploads in flight stop and their images go back to `queued`.
    pub shutdown: CancellationToken,
    /// Upload slots.
    pub uploads: Arc<Semaphore>,
    /// This server's identity in upload leases.
    pub node: String,
    /// When tasks run against the customers' Swift (`--files swift`): how long the
    /// Keystone trust made for each new task lasts. None: tasks need no credential.
    pub trust_lifetime: Option<Duration>,
    /// Woken when this process creates a task, so its embedded workers claim it at once
    /// instead of at their next poll.
    pub task_created: tokio::sync::Notify,
    /// Counters for `GET /metrics`.
    pub metrics: Arc<crate::counters::Metrics>,
}

impl AppState {
    /// State over the given parts; tasks need no credential.
    pub fn new(db: Db, store: ImageStore, auth: Authenticator, limits: Limits) -> Arc<AppState> {
        Self::with_trusts(db, store, auth, limits, None)
    }

    /// State whose new tasks get a Keystone trust lasting `trust_lifetime` (when Some).
    pub fn with_trusts(
        db: Db,
        store: ImageStore,
        auth: Authenticator,
        limits: Limits,
        trust_lifetime: Option<Duration>,
    ) -> Arc<AppState> {
        Arc::new(AppState {
            uploads: Arc::new(Semaphore::new(limits.max_uploads.max(1))),
            db,
            store,
            auth,
            limits,
            shutdown: CancellationToken::new(),
            node: uuid::Uuid::new_v4().to_string(),
            trust_lifetime,
            task_created: tokio::sync::Notify::new(),
            metrics: Default::default(),
        })
    }
}
