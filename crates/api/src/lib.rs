//! The Cloud Images v2 API: OpenStack Glance v2 as Rackspace Cloud Images exposes it
//! (images, image data, tags, members, schemas, versions), on SQLite or PostgreSQL, over
//! the image store the import and export flows use.
//!
//! Layers, one way: [`http`] (routes, extractors: thin) -> [`service`] (what each
//! operation does and who may do it) -> [`domain`] (pure rules: the image model,
//! visibility, PATCH, list queries) and [`db`] (all SQL, one module per table). Image data
//! goes through `cloudimg_pipeline`'s upload and download engines on blocking threads.
//! [`error::ApiError`] is the one error type, mapped to status codes in one place.
//!
//! ```no_run
//! # async fn run() -> Result<(), String> {
//! use cloudimg_api::server::{serve, AuthConfig, ServeConfig};
//! serve(ServeConfig {
//!     db_url: "sqlite:/var/lib/cloudimg/catalog.db".into(),
//!     store_url: "/var/lib/cloudimg/store".into(),
//!     listen: "127.0.0.1:9292".parse().unwrap(),
//!     auth: AuthConfig::Static("/etc/cloudimg/tokens.json".into()),
//!     limits: Default::default(),
//!     drain: std::time::Duration::from_secs(30),
//!     workers: 1,
//!     files: Some(cloudimg_api::worker::Files::Local("/var/lib/cloudimg/files".into())),
//!     task_ttl: cloudimg_api::worker::DEFAULT_TASK_TTL,
//! }, None).await
//! # }
//! ```

mod adopt;
pub mod auth;
pub mod clock;
mod counters;
pub mod db;
pub mod domain;
pub mod error;
pub mod fence;
pub mod http;
pub mod metrics;
pub mod ops;
pub mod server;
pub mod service;
pub mod state;
pub mod worker;

pub use error::{ApiError, ApiResult};
pub use state::{AppState, Limits};
