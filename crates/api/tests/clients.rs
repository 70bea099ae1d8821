//! The clients people use, against the real server: Debian's `openstack` (OSC on
//! openstacksdk) and `glance` (python-glanceclient) drive the service over a real TCP
//! socket, on SQLite and on PostgreSQL, with static tokens.
//!
//! The server runs in this process on `127.0.0.1:0` with the start-up path of
//! `cloudimg serve` ([`cloudimg_api::server::build_state`]: the catalog, the store, the
//! token file) and the service's router; it stops when the test ends. Each test gives the
//! clients a fresh `HOME`, so glanceclient's cached schemas (`~/.glanceclient`) come from
//! this server and not from an earlier run.
//!
//! Project ids are 32 hex digits, like Keystone's: OSC looks a project that is not
//! UUID-like up in Keystone (`image add project`), which a static-token service has not.
//! `openstack image set --accept` takes the caller's project from a Keystone token only,
//! and `image remove project` looks any project up in Keystone, so here the consumer
//! accepts with `glance member-update` and the producer removes it with
//! `glance member-delete`.
//!
//! `keystone_token_lists_images` serves with Keystone v3 validation against the real
//! Keystone `scripts/keystone-up.sh` starts and lists with OSC and a Keystone token.

mod common;

use cloudimg_api::auth::keystone::{Keystone, ServiceCredentials};
use cloudimg_api::auth::Authenticator;
use cloudimg_api::server::{build_state, AuthConfig, ServeConfig};
use cloudimg_api::Limits;
use cloudimg_fixtures::env::require_tool;
use common::Engine;
use md5::{Digest, Md5};
use serde_json::{json, Value};
use sha2::Sha512;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The producer's project and the consumer's.
const PA: &str = "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0";
const PB: &str = "b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1";
/// Tokens: the producer (customer admin) and the consumer (account admin).
const TA: &str = "token-admin-a";
const TB: &str = "token-admin-b";

/// A client that has not finished by then is killed and the test fails (never a hang).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// `cloudimg serve` in this process on a real listener, with its own catalog and store.
struct Served {
    /// `http://127.0.0.1:PORT`.
    url: String,
    /// The clients' `HOME` and files.
    home: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Catalog, store and the customers' files (`files/<project>/...`).
    dir: tempfile::TempDir,
}

impl Served {
    /// Starts a server on `engine`, or `None` when the engine is absent here.
    fn start(engine: Engine) -> Option<Served> {
        Self::start_with(engine, None)
    }

    /// Starts a server that authenticates with `auth` (static tokens `TA`/`TB` from the
    /// token file when `None`, through `cloudimg serve`'s start-up).
    fn start_with(engine: Engine, auth: Option<Authenticator>) -> Option<Served> {
        Self::start_on(engine, auth, "127.0.0.1:0")
    }

    /// Starts a server on `listen` (the catalog's image endpoint, for clients that find
    /// the service through Keystone).
    fn start_on(engine: Engine, auth: Option<Authenticator>, listen: &str) -> Option<Served> {
        let listen: std::net::SocketAddr = listen.parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens.json");
        let body = json!({
            TA: {"project_id": PA, "roles": ["cloudImages:admin"]},
            TB: {"project_id": PB, "roles": ["admin"]},
        });
        std::fs::write(&tokens, body.to_string()).unwrap();
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let root = dir.path().to_path_buf();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let Some(db_url) = common::catalog_url(engine, &root).await else {
                    let _ = ready_tx.send(None);
                    return;
                };
                let cfg = ServeConfig {
                    db_url,
                    store_url: root.join("store").to_str().unwrap().to_string(),
                    listen,
                    auth: AuthConfig::Static(tokens),
                    limits: Limits::default(),
                    drain: Duration::from_secs(1),
                    workers: 0,
                    files: None,
                    task_ttl: cloudimg_api::worker::DEFAULT_TASK_TTL,
                };
                let st = match auth {
                    None => build_state(&cfg).await.expect("cloudimg serve start-up"),
                    // The service's Keystone credentials are the test's, not the process
                    // environment's `OS_*` that `build_state` reads.
                    Some(auth) => {
                        let db = cloudimg_api::db::Db::connect(&cfg.db_url).await.unwrap();
                        let url = cfg.store_url.clone();
                        let store = tokio::task::spawn_blocking(move || {
                            cloudimg_tasks::ImageStore::open(&url)
                        })
                        .await
                        .unwrap()
                        .unwrap();
                        cloudimg_api::AppState::new(db, store, auth, cfg.limits.clone())
                    }
                };
                // An embedded worker on `files/<project>/...`, as `serve --workers 1`.
                let wcfg = cloudimg_api::worker::WorkerConfig {
                    files: cloudimg_api::worker::Files::Local(root.join("files")),
                    poll: Duration::from_millis(100),
                    ..Default::default()
                };
                let worker_stop = st.shutdown.clone();
                tokio::spawn(cloudimg_api::worker::run(st.clone(), wcfg, worker_stop));
                let listener = tokio::net::TcpListener::bind(cfg.listen).await.unwrap();
                let _ = ready_tx.send(Some(listener.local_addr().unwrap()));
                let st2 = st.clone();
                axum::serve(listener, cloudimg_api::http::router(st))
                    .with_graceful_shutdown(async move {
                        let _ = stop_rx.await;
                        st2.shutdown.cancel();
                    })
                    .await
                    .unwrap();
            });
        });
        let addr = ready_rx
            .recv()
            .expect("the server thread failed to start")?;
        Some(Served {
            url: format!("http://{addr}"),
            home: tempfile::tempdir().unwrap(),
            stop: Some(stop_tx),
            thread: Some(thread),
            dir,
        })
    }

    /// A file in the clients' folder.
    fn file(&self, name: &str) -> PathBuf {
        self.home.path().join(name)
    }

    /// Runs `tool args` with stdin closed (glanceclient reads image data from a stdin that
    /// is not a terminal), a clean environment and this test's `HOME`. Ok(stdout) on exit
    /// status 0, Err(stderr and stdout) otherwise.
    fn run(&self, tool: &str, args: &[&str]) -> Result<String, String> {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("exec \"$0\" \"$@\" <&-")
            .arg(tool)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("LC_ALL", "C.UTF-8")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd.spawn().unwrap_or_else(|e| panic!("{tool}: {e}"));
        let pid = child.id();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(CLIENT_TIMEOUT) {
                let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            }
        });
        let out = child.wait_with_output().unwrap();
        let _ = done_tx.send(());
        watchdog.join().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(format!(
                "{}\n{stdout}\n({})",
                String::from_utf8_lossy(&out.stderr),
                out.status
            ))
        }
    }

    /// `tool args`, which must succeed.
    fn ok(&self, tool: &str, args: &[&str]) -> String {
        self.run(tool, args)
            .unwrap_or_else(|e| panic!("{tool} {}: {e}", args.join(" ")))
    }

    /// `openstack` with `token` on this server's image endpoint.
    fn osc_args<'a>(&'a self, token: &'a str, endpoint: &'a str, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec![
            "--os-auth-type",
            "admin_token",
            "--os-endpoint",
            endpoint,
            "--os-token",
            token,
        ];
        all.extend_from_slice(args);
        all
    }

    /// `openstack ARGS` as `token`; must succeed.
    fn osc(&self, token: &str, args: &[&str]) -> String {
        // The endpoint with its version: given an endpoint, OSC sets the image API version
        // (2) and skips version discovery, so the bare root would answer 404 for /images.
        let endpoint = format!("{}/v2", self.url);
        self.ok("openstack", &self.osc_args(token, &endpoint, args))
    }

    /// `openstack ARGS -f json` as `token`, parsed.
    fn osc_json(&self, token: &str, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend_from_slice(&["-f", "json"]);
        let out = self.osc(token, &all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("openstack {args:?}: {e}: {out}"))
    }

    /// `glance ARGS` as `token`; must succeed.
    fn glance(&self, token: &str, args: &[&str]) -> String {
        let mut all = vec!["--os-image-url", &self.url, "--os-auth-token", token];
        all.extend_from_slice(args);
        self.ok("glance", &all)
    }

    /// A request straight to the API (setup and checks the clients do not show).
    fn api(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let req = ureq::request(method, &format!("{}{path}", self.url)).set("X-Auth-Token", token);
        let r = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        let resp = match r {
            Ok(resp) => resp,
            Err(ureq::Error::Status(_, resp)) => resp,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = resp.status();
        (status, resp.into_json().unwrap_or(Value::Null))
    }

    /// Creates an image as `token` through the API, with `data` when given; its id.
    fn create(&self, token: &str, name: &str, data: Option<&[u8]>) -> String {
        let (s, v) = self.api(
            "POST",
            "/v2/images",
            token,
            Some(json!({"name": name, "disk_format": "raw", "container_format": "bare"})),
        );
        assert_eq!(s, 201, "{v}");
        let id = v["id"].as_str().unwrap().to_string();
        if let Some(data) = data {
            let r = ureq::put(&format!("{}/v2/images/{id}/file", self.url))
                .set("X-Auth-Token", token)
                .set("Content-Type", "application/octet-stream")
                .send_bytes(data)
                .unwrap();
            assert_eq!(r.status(), 204);
        }
        id
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            // A server that panicked has already failed the test; do not panic in drop.
            let _ = t.join();
        }
    }
}

/// The value of row `key` in a glanceclient property table (`| key | value |`).
fn table_value(out: &str, key: &str) -> Option<String> {
    out.lines().find_map(|l| {
        let cells: Vec<&str> = l.split('|').map(str::trim).collect();
        (cells.len() >= 3 && cells[1] == key).then(|| cells[2].to_string())
    })
}

/// The ids in an OSC listing (`-f json`, column `ID` or `Image ID`).
fn ids(list: &Value, column: &str) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|r| r[column].as_str().unwrap_or_default().to_string())
        .collect()
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

fn sha512_hex(data: &[u8]) -> String {
    hex::encode(Sha512::digest(data))
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Each listed `fn NAME(s: &Served)` becomes `NAME::sqlite` and `NAME::postgres`, run when
/// the clients are installed (skipped locally, failing under `CI`, when they are not).
macro_rules! with_clients {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use super::*;
                fn run(engine: Engine) {
                    if !require_tool("openstack") || !require_tool("glance") {
                        return;
                    }
                    if let Some(s) = Served::start(engine) {
                        super::$name(&s);
                    }
                }
                #[test]
                fn sqlite() {
                    run(Engine::Sqlite)
                }
                #[test]
                fn postgres() {
                    run(Engine::Postgres)
                }
            }
        )*
    };
}

with_clients!(
    openstack_create_show_set_save,
    openstack_sharing_between_projects,
    glance_upload_download_tags_members,
);

/// `openstack image create --file`, `show`, `set`, `list --tag`, `save`: the digests the
/// service records are those of the bytes sent, and `save` returns those bytes.
fn openstack_create_show_set_save(s: &Served) {
    let data = common::bytes(300_000, 7);
    let src = s.file("data.bin");
    std::fs::write(&src, &data).unwrap();
    let v = s.osc_json(
        TA,
        &[
            "image",
            "create",
            "--disk-format",
            "raw",
            "--container-format",
            "bare",
            "--tag",
            "first",
            "--file",
            path_str(&src),
            "osc-image",
        ],
    );
    let id = v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_string();
    assert_eq!(v["name"], "osc-image", "{v}");
    assert_eq!(v["owner"], PA, "{v}");
    // Cloud Images rule: a new image is private (upstream Glance: shared).
    assert_eq!(v["visibility"], "private", "{v}");

    let v = s.osc_json(TA, &["image", "show", &id]);
    assert_eq!(v["status"], "active", "{v}");
    assert_eq!(v["size"], data.len(), "{v}");
    assert_eq!(v["checksum"], md5_hex(&data), "{v}");
    // OSC shows the multihash among the properties.
    let hash = |k: &str| v.get(k).cloned().unwrap_or(v["properties"][k].clone());
    assert_eq!(hash("os_hash_algo"), "sha512", "{v}");
    assert_eq!(hash("os_hash_value"), sha512_hex(&data), "{v}");

    s.osc(
        TA,
        &[
            "image",
            "set",
            "--name",
            "renamed",
            "--property",
            "flavor_class=general",
            "--tag",
            "second",
            "--min-disk",
            "2",
            &id,
        ],
    );
    let list = s.osc_json(TA, &["image", "list", "--tag", "second"]);
    assert_eq!(ids(&list, "ID"), vec![id.clone()], "{list}");
    assert_eq!(list[0]["Name"], "renamed", "{list}");
    let (st, img) = s.api("GET", &format!("/v2/images/{id}"), TA, None);
    assert_eq!(st, 200, "{img}");
    assert_eq!(img["min_disk"], 2, "{img}");
    assert_eq!(img["flavor_class"], "general", "{img}");
    let mut tags: Vec<&str> = img["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    tags.sort();
    assert_eq!(tags, ["first", "second"], "{img}");

    let out = s.file("saved.bin");
    s.osc(TA, &["image", "save", "--file", path_str(&out), &id]);
    assert!(
        std::fs::read(&out).unwrap() == data,
        "image save: bytes differ"
    );
}

/// Sharing as Cloud Images tells it, with OSC: the producer adds the consumer's project,
/// the image stays out of the consumer's list until it accepts, then the consumer lists
/// and downloads it; removing the member (glanceclient) takes access away at once.
fn openstack_sharing_between_projects(s: &Served) {
    let data = common::bytes(70_000, 11);
    // Cloud Images rule: adding a member to a private image makes it shared (upstream
    // Glance: 403 until the owner sets visibility shared).
    let id = s.create(TA, "to-share", Some(&data));

    let m = s.osc_json(TA, &["image", "add", "project", &id, PB]);
    assert_eq!(m["member_id"], PB, "{m}");
    assert_eq!(m["image_id"], id, "{m}");
    assert_eq!(m["status"], "pending", "{m}");

    let list = s.osc_json(TB, &["image", "list"]);
    assert!(
        !ids(&list, "ID").contains(&id),
        "pending offer listed: {list}"
    );

    s.glance(TB, &["member-update", &id, PB, "accepted"]);

    let members = s.osc_json(TA, &["image", "member", "list", &id]);
    assert_eq!(
        ids(&members, "Member ID"),
        vec![PB.to_string()],
        "{members}"
    );
    assert_eq!(members[0]["Status"], "accepted", "{members}");
    assert_eq!(members[0]["Image ID"], id, "{members}");

    let list = s.osc_json(TB, &["image", "list"]);
    assert!(
        ids(&list, "ID").contains(&id),
        "accepted image not listed: {list}"
    );
    let out = s.file("consumer.bin");
    s.osc(TB, &["image", "save", "--file", path_str(&out), &id]);
    assert!(
        std::fs::read(&out).unwrap() == data,
        "consumer download: bytes differ"
    );

    // OSC's `image remove project` looks the project up in Keystone even for an id.
    s.glance(TA, &["member-delete", &id, PB]);
    let (st, v) = s.api("GET", &format!("/v2/images/{id}"), TB, None);
    assert_eq!(st, 404, "a removed member still sees the image: {v}");
}

/// glanceclient: `image-create` then `image-upload`, `image-download` (which checks the
/// Content-MD5 the service sends), `image-tag-update`, `member-create`, `member-update`,
/// and `image-list` following `next` links page by page.
fn glance_upload_download_tags_members(s: &Served) {
    let data = common::bytes(1_000_000, 3);
    let src = s.file("data.bin");
    std::fs::write(&src, &data).unwrap();
    let out = s.glance(
        TA,
        &[
            "image-create",
            "--name",
            "glance-image",
            "--disk-format",
            "raw",
            "--container-format",
            "bare",
            "--property",
            "build=42",
        ],
    );
    let id = table_value(&out, "id").unwrap_or_else(|| panic!("no id in {out}"));
    assert_eq!(
        table_value(&out, "status").as_deref(),
        Some("queued"),
        "{out}"
    );
    assert_eq!(table_value(&out, "build").as_deref(), Some("42"), "{out}");
    // glanceclient cached this server's image schema and builds its options from it (a
    // property the client also defines as an option, such as `stores`, breaks every
    // later command).
    let schema: Value = serde_json::from_slice(
        &std::fs::read(s.home.path().join(".glanceclient/image_schema.json"))
            .expect("glanceclient cached the image schema"),
    )
    .unwrap();
    assert_eq!(schema["name"], "image", "{schema}");

    s.glance(TA, &["image-upload", "--file", path_str(&src), &id]);
    let down = s.file("down.bin");
    s.glance(TA, &["image-download", "--file", path_str(&down), &id]);
    assert!(
        std::fs::read(&down).unwrap() == data,
        "image-download: bytes differ"
    );

    let out = s.glance(TA, &["image-tag-update", &id, "blue"]);
    assert!(out.contains("blue"), "{out}");
    let out = s.glance(TA, &["member-create", &id, PB]);
    assert!(out.contains(PB) && out.contains("pending"), "{out}");
    let out = s.glance(TB, &["member-update", &id, PB, "accepted"]);
    assert!(out.contains("accepted"), "{out}");

    let (st, img) = s.api("GET", &format!("/v2/images/{id}"), TB, None);
    assert_eq!(st, 200, "{img}");
    assert_eq!(img["status"], "active", "{img}");
    assert_eq!(img["checksum"], md5_hex(&data), "{img}");
    assert_eq!(img["tags"], json!(["blue"]), "{img}");
    assert_eq!(img["build"], "42", "{img}");
    assert_eq!(img["visibility"], "shared", "{img}");

    let second = s.create(TA, "second", None);
    let out = s.glance(TA, &["image-list", "--page-size", "1"]);
    assert!(
        out.contains(&id) && out.contains(&second),
        "image-list did not follow next links: {out}"
    );
}

/// Keystone v3 end to end: the service validates callers' tokens with its own Keystone
/// identity; the caller's project (from Keystone) owns what it creates, and OSC lists it
/// with that token; OSC and glanceclient with a customer's password find the service
/// through Keystone's catalog (its `image` endpoint). The test user holds only `member`, which Cloud Images' roles do not
/// know: 403. A token Keystone does not know: 401. (One engine: the path under test is
/// authentication, which does not touch the catalog's engine.)
#[test]
fn keystone_token_lists_images() {
    if !require_tool("openstack") {
        return;
    }
    let (Some(ks), Some((admin, admin_pw, admin_project))) =
        (cloudimg_fixtures::env::keystone(), common::keystone_admin())
    else {
        return;
    };
    let creds = ServiceCredentials {
        username: admin.clone(),
        password: admin_pw.clone(),
        project_name: admin_project.clone(),
        user_domain: "Default".into(),
        project_domain: "Default".into(),
    };
    let auth = Authenticator::Keystone(Keystone::new(&ks.auth_url, creds));
    // Served where Keystone's catalog says the image service is.
    let image_url = common::swift_env_value("KS_IMAGE_URL")
        .expect("KS_IMAGE_URL in the env file (rerun scripts/keystone-up.sh)");
    let listen = image_url
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let Some(s) = Served::start_on(Engine::Sqlite, Some(auth), listen) else {
        return;
    };
    let (token, project_id) =
        common::keystone_token(&ks.auth_url, &admin, &admin_pw, &admin_project);

    let id = s.create(&token, "keystone-image", Some(b"through keystone"));
    let (st, img) = s.api("GET", &format!("/v2/images/{id}"), &token, None);
    assert_eq!(st, 200, "{img}");
    assert_eq!(img["owner"], project_id, "{img}");

    let list = s.osc_json(&token, &["image", "list"]);
    assert!(ids(&list, "ID").contains(&id), "{list}");

    // A customer with a password, as users run the clients: both find the image service
    // in Keystone's catalog (no endpoint given), and the image belongs to her project.
    let customers = common::keystone_customers();
    let (alice, alice_pw, alice_project) = &customers[0];
    let (_, alice_pid) = common::keystone_token(&ks.auth_url, alice, alice_pw, alice_project);
    let file = s.file("catalog.raw");
    std::fs::write(&file, b"found through the catalog").unwrap();
    let auth_args = [
        "--os-auth-url",
        ks.auth_url.as_str(),
        "--os-identity-api-version",
        "3",
        "--os-username",
        alice.as_str(),
        "--os-password",
        alice_pw.as_str(),
        "--os-project-name",
        alice_project.as_str(),
        "--os-user-domain-name",
        "Default",
        "--os-project-domain-name",
        "Default",
    ];
    let mut create = auth_args.to_vec();
    create.extend([
        "image",
        "create",
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "--file",
        file.to_str().unwrap(),
        "-f",
        "json",
        "via-catalog",
    ]);
    let made: Value = serde_json::from_str(&s.ok("openstack", &create)).unwrap();
    assert_eq!(made["owner"], alice_pid.as_str(), "{made}");
    // glanceclient has no --os-identity-api-version: it reads the version from the URL.
    let mut list: Vec<&str> = auth_args
        .iter()
        .copied()
        .filter(|a| *a != "--os-identity-api-version" && *a != "3")
        .collect();
    list.extend(["image-list"]);
    let out = s.ok("glance", &list);
    assert!(out.contains(made["id"].as_str().unwrap()), "{out}");
    assert!(
        !out.contains(&id),
        "another project's image is not listed: {out}"
    );

    let (member_token, _) =
        common::keystone_token(&ks.auth_url, &ks.username, &ks.password, &ks.project_name);
    let (st, v) = s.api("GET", "/v2/images", &member_token, None);
    assert_eq!(st, 403, "role member: {v}");
    let (st, v) = s.api("GET", "/v2/images", "not-a-keystone-token", None);
    assert_eq!(st, 401, "{v}");
}

/// glanceclient's task commands against our tasks API: `task-create` of an import from the
/// caller's files, polled with `task-show` until the embedded worker finishes it, then
/// `task-list`; the image it made is active. A failing import shows its code in
/// `task-show`'s message.
fn glance_tasks(engine: Engine) {
    if !require_tool("glance") {
        return;
    }
    let Some(s) = Served::start(engine) else {
        return;
    };
    let disk = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/dynamic-qemu.vhd");
    let up = s.dir.path().join(format!("files/{PA}/uploads"));
    std::fs::create_dir_all(&up).unwrap();
    std::fs::copy(&disk, up.join("disk.vhd")).unwrap();
    std::fs::write(up.join("notes.txt"), b"not a disk\n".repeat(64)).unwrap();
    let field = |table: &str, name: &str| -> String {
        table
            .lines()
            .filter_map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                (cells.len() >= 3 && cells[1] == name).then(|| cells[2].to_string())
            })
            .next()
            .unwrap_or_default()
    };
    let mut finished = Vec::new();
    for (object, name) in [
        ("uploads/disk.vhd", "from-glance"),
        ("uploads/notes.txt", "bad"),
    ] {
        let input = json!({"import_from": object, "import_from_format": "vhd",
            "image_properties": {"name": name}})
        .to_string();
        let out = s.glance(TA, &["task-create", "--type", "import", "--input", &input]);
        let id = field(&out, "id");
        assert_eq!(id.len(), 36, "task-create shows the task's id: {out}");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let shown = loop {
            let out = s.glance(TA, &["task-show", &id]);
            let status = field(&out, "status");
            if status == "success" || status == "failure" {
                break out;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "task {id} never ended: {out}"
            );
            std::thread::sleep(Duration::from_millis(300));
        };
        finished.push((id, shown));
    }
    let (ok_id, ok) = &finished[0];
    assert_eq!(field(ok, "status"), "success", "{ok}");
    assert_eq!(field(ok, "owner"), PA, "{ok}");
    let result: Value = serde_json::from_str(&field(ok, "result")).unwrap_or(Value::Null);
    let image = result["image_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{ok}"));
    let (st, img) = s.api("GET", &format!("/v2/images/{image}"), TA, None);
    assert_eq!(st, 200, "{img}");
    assert_eq!(img["status"], "active", "{img}");
    assert_eq!(img["name"], "from-glance", "{img}");
    let (_, bad) = &finished[1];
    assert_eq!(field(bad, "status"), "failure", "{bad}");
    assert!(field(bad, "message").starts_with("396"), "{bad}");
    let list = s.glance(TA, &["task-list"]);
    assert!(list.contains(ok_id.as_str()), "{list}");
    // Another project sees none of them.
    let other = s.glance(TB, &["task-list"]);
    assert!(!other.contains(ok_id.as_str()), "{other}");
}

#[test]
fn glance_tasks_sqlite() {
    glance_tasks(Engine::Sqlite);
}

#[test]
fn glance_tasks_postgres() {
    glance_tasks(Engine::Postgres);
}
