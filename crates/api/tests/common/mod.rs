//! The API test harness: a fresh catalog per test on SQLite (a temp file, WAL, a pool, as in
//! production) or PostgreSQL (a new database on the server `scripts/pg-up.sh` started), a
//! local image store in a temp folder, static tokens for a few projects and roles, and the
//! router driven in process (`oneshot`).
//!
//! Without PostgreSQL the `_postgres` variants print a skip, except under `CI`, where they
//! fail: CI never skips an engine silently.

#![allow(dead_code)]

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use cloudimg_api::auth::{static_tokens::StaticTokens, Authenticator};
use cloudimg_api::db::Db;
use cloudimg_api::{AppState, Limits};
use cloudimg_tasks::ImageStore;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt;

pub use cloudimg_api::db::Engine;

/// Tokens: `<role>-<project>`.
pub const TOKENS: &str = r#"{
  "admin-a": {"project_id": "proj-a", "roles": ["cloudImages:admin"]},
  "creator-a": {"project_id": "proj-a", "roles": ["cloudImages:creator"]},
  "observer-a": {"project_id": "proj-a", "roles": ["cloudImages:observer"]},
  "member-a": {"project_id": "proj-a", "roles": ["member"]},
  "admin-b": {"project_id": "proj-b", "roles": ["admin"]},
  "observer-b": {"project_id": "proj-b", "roles": ["observer"]},
  "admin-c": {"project_id": "proj-c", "roles": ["identity:user-admin"]}
}"#;

/// One service instance with its own catalog and store.
pub struct TestApp {
    pub st: Arc<AppState>,
    pub router: Router,
    pub dir: tempfile::TempDir,
    pub engine: Engine,
    /// The catalog's URL.
    pub db_url: String,
}

/// The PostgreSQL server URL from `CLOUDIMG_PG_URL` or `target/pg.env`.
pub fn pg_url() -> Option<String> {
    if let Ok(u) = std::env::var("CLOUDIMG_PG_URL") {
        if !u.is_empty() {
            return Some(u);
        }
    }
    let file = std::env::var_os("CLOUDIMG_PG_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/pg.env"));
    let text = std::fs::read_to_string(file).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("CLOUDIMG_PG_URL="))
        .map(|s| s.trim().to_string())
}

/// A fresh database on the PostgreSQL server; its URL.
async fn fresh_pg() -> Option<String> {
    let Some(url) = pg_url() else {
        if std::env::var_os("CI").is_some() {
            panic!(
                "no PostgreSQL for the API tests: run scripts/pg-up.sh (CI never skips an engine)"
            );
        }
        eprintln!("skip: no PostgreSQL (run scripts/pg-up.sh)");
        return None;
    };
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url} does not answer: {e}"));
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name} TEMPLATE template0"))
        .execute(&mut admin)
        .await
        .expect("create test database");
    let base = url.rsplit_once('/').map(|(b, _)| b).unwrap_or(&url);
    Some(format!("{base}/{name}"))
}

impl TestApp {
    /// A new app on `engine` with default limits, or `None` when the engine is absent here.
    pub async fn new(engine: Engine) -> Option<TestApp> {
        Self::with_limits(engine, Limits::default()).await
    }

    /// A new app with `limits`.
    pub async fn with_limits(engine: Engine, limits: Limits) -> Option<TestApp> {
        let dir = tempfile::tempdir().unwrap();
        let url = match engine {
            Engine::Sqlite => format!("sqlite:{}", dir.path().join("catalog.db").display()),
            Engine::Postgres => fresh_pg().await?,
        };
        let db = Db::connect(&url).await.unwrap();
        let db_url = url.clone();
        let store_dir = dir.path().join("store");
        let store =
            tokio::task::spawn_blocking(move || ImageStore::open(store_dir.to_str().unwrap()))
                .await
                .unwrap()
                .unwrap();
        let auth = Authenticator::Static(StaticTokens::parse(TOKENS).unwrap());
        let st = AppState::new(db, store, auth, limits);
        let router = cloudimg_api::http::router(st.clone());
        Some(TestApp {
            st,
            router,
            dir,
            engine,
            db_url,
        })
    }

    /// The image store's folder of images.
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store").join("images")
    }

    /// Sends a request; returns status, headers and the body parsed as JSON (`Null` when
    /// empty; the raw text as a JSON string when it is not JSON).
    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        token: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> (StatusCode, HeaderMap, Value) {
        let (s, h, bytes) = self.raw(method, uri, token, body).await;
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (s, h, v)
    }

    /// Sends a request; returns status, headers and body bytes.
    pub async fn raw(
        &self,
        method: &str,
        uri: &str,
        token: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut b = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(uri);
        if !token.is_empty() {
            b = b.header("x-auth-token", token);
        }
        let req = match body {
            Some((ctype, bytes)) => b
                .header("content-type", ctype)
                .header("content-length", bytes.len())
                .body(Body::from(bytes))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        self.send(req).await
    }

    /// Sends a prepared request.
    pub async fn send(&self, req: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap_or_default();
        (parts.status, parts.headers, bytes.to_vec())
    }

    /// GET returning JSON.
    pub async fn get(&self, uri: &str, token: &str) -> (StatusCode, Value) {
        let (s, _, v) = self.call("GET", uri, token, None).await;
        (s, v)
    }

    /// POST JSON.
    pub async fn post(&self, uri: &str, token: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, v) = self
            .call(
                "POST",
                uri,
                token,
                Some(("application/json", body.to_string().into_bytes())),
            )
            .await;
        (s, v)
    }

    /// PUT JSON.
    pub async fn put_json(&self, uri: &str, token: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, v) = self
            .call(
                "PUT",
                uri,
                token,
                Some(("application/json", body.to_string().into_bytes())),
            )
            .await;
        (s, v)
    }

    /// PATCH with the v2.1 media type.
    pub async fn patch(&self, uri: &str, token: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, v) = self
            .call(
                "PATCH",
                uri,
                token,
                Some((
                    "application/openstack-images-v2.1-json-patch",
                    body.to_string().into_bytes(),
                )),
            )
            .await;
        (s, v)
    }

    /// Creates an image as `token` and returns its id.
    pub async fn create(&self, token: &str, body: Value) -> String {
        let (s, v) = self.post("/v2/images", token, body).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    /// Uploads `data` as the image's file.
    pub async fn upload(&self, id: &str, token: &str, data: Vec<u8>) -> (StatusCode, Value) {
        let (s, _, v) = self
            .call(
                "PUT",
                &format!("/v2/images/{id}/file"),
                token,
                Some(("application/octet-stream", data)),
            )
            .await;
        (s, v)
    }
}

/// Asserts an error answer: the status, and the JSON error shape with that code.
pub fn assert_error(status: StatusCode, body: &Value, want: StatusCode) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["code"], want.as_u16(), "{body}");
    assert!(body["title"].is_string(), "{body}");
    assert!(body["message"].is_string(), "{body}");
}

/// Deterministic pseudo-random bytes.
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Each listed `async fn NAME(app: TestApp)` becomes `NAME::sqlite` and `NAME::postgres`.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    if let Some(app) = $crate::common::TestApp::new($crate::common::Engine::Sqlite).await {
                        super::$name(app).await
                    }
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(app) = $crate::common::TestApp::new($crate::common::Engine::Postgres).await {
                        super::$name(app).await
                    }
                }
            }
        )*
    };
}

/// A catalog URL for `engine`: a SQLite file in `dir`, or a fresh PostgreSQL database;
/// `None` when PostgreSQL is absent here (a panic under `CI`, as for every engine test).
pub async fn catalog_url(engine: Engine, dir: &std::path::Path) -> Option<String> {
    match engine {
        Engine::Sqlite => Some(format!("sqlite:{}", dir.join("catalog.db").display())),
        Engine::Postgres => fresh_pg().await,
    }
}

/// Keystone's admin from the env file `scripts/keystone-up.sh` writes (`KS_ADMIN_*`):
/// user, password, project. `None` with a skip note (a panic under `CI`) when absent.
pub fn keystone_admin() -> Option<(String, String, String)> {
    match (
        swift_env_value("KS_ADMIN_USERNAME"),
        swift_env_value("KS_ADMIN_PASSWORD"),
        swift_env_value("KS_ADMIN_PROJECT_NAME"),
    ) {
        (Some(u), Some(p), Some(n)) => Some((u, p, n)),
        _ => {
            let msg = format!(
                "KS_ADMIN_* missing from {} (run scripts/keystone-up.sh)",
                swift_env_file().display()
            );
            if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
                panic!("{msg}");
            }
            eprintln!("skip: {msg}");
            None
        }
    }
}

/// A project-scoped Keystone token for `user`: (token, project id).
pub fn keystone_token(
    auth_url: &str,
    user: &str,
    password: &str,
    project: &str,
) -> (String, String) {
    let body = serde_json::json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}});
    let resp = ureq::post(&format!("{}/auth/tokens", auth_url.trim_end_matches('/')))
        .send_json(body)
        .unwrap_or_else(|e| panic!("Keystone token for {user}: {e}"));
    let token = resp.header("X-Subject-Token").unwrap().to_string();
    let v: Value = resp.into_json().unwrap();
    let project_id = v["token"]["project"]["id"].as_str().unwrap().to_string();
    (token, project_id)
}

/// The customers `scripts/keystone-up.sh` made (`KS_CUSTOMERS`: user:project, password
/// `<user>-pw`), each the admin of its own project.
pub fn keystone_customers() -> Vec<(String, String, String)> {
    swift_env_value("KS_CUSTOMERS")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|c| c.split_once(':'))
        .map(|(u, p)| (u.to_string(), format!("{u}-pw"), p.to_string()))
        .collect()
}

/// The env file `scripts/swift-up.sh` and `keystone-up.sh` write.
fn swift_env_file() -> PathBuf {
    std::env::var_os("CLOUDIMG_SWIFT_ENV")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            cloudimg_fixtures::env::workspace_root()
                .join("target")
                .join("swift.env")
        })
}

/// A value from the process environment, else from the env file `swift_env_file`.
pub fn swift_env_value(key: &str) -> Option<String> {
    if let Some(v) = std::env::var(key).ok().filter(|v| !v.is_empty()) {
        return Some(v);
    }
    std::fs::read_to_string(swift_env_file())
        .ok()?
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix(&format!("{key}="))
                .map(|v| v.trim().to_string())
        })
}
