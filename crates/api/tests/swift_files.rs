//! Tasks against the customers' own Cloud Files (`--files swift`), with the real Keystone
//! and the Keystone-authenticated Swift that scripts/keystone-up.sh starts: the API makes
//! a trust from the caller to the service user when the task is created; the worker acts
//! for the caller through it, in the caller's account only. Alice imports from her
//! container and exports back into it; Bob, naming the same container, reads his own
//! account and finds nothing; Alice's own token is revoked before the worker runs and her
//! task still completes (it runs on the trust, not on her token); a worker token that
//! expires is renewed through the trust on Swift's 401; the credential is gone
//! once each task ends. Both engines.

mod common;

use cloudimg_api::auth::keystone::{Keystone, ServiceCredentials};
use cloudimg_api::auth::Authenticator;
use cloudimg_api::db::{self, Db};
use cloudimg_api::worker::{self, Files, WorkerConfig};
use cloudimg_api::{AppState, Limits};
use cloudimg_pipeline::retry::RetryPolicy;
use cloudimg_pipeline::store::{ObjectPath, ObjectStore};
use cloudimg_pipeline::swift::{SwiftAuth, SwiftStore};
use cloudimg_tasks::ImageStore;
use common::{Engine, TestApp};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Sends `method` to a Swift account URL with a token; returns status and body.
fn swift(method: &str, url: &str, token: &str, body: Option<&[u8]>) -> (u16, Vec<u8>) {
    let req = ureq::request(method, url).set("X-Auth-Token", token);
    let resp = match body {
        Some(b) => req.send_bytes(b),
        None => req.call(),
    };
    let r = match resp {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = r.status();
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut r.into_reader(), &mut out).unwrap();
    (status, out)
}

fn raw_of(vhd: &Path, out: &Path) -> Vec<u8> {
    let st = Command::new("qemu-img")
        .args(["convert", "-q", "-O", "raw"])
        .arg(vhd)
        .arg(out)
        .status()
        .unwrap();
    assert!(st.success(), "qemu-img reads {}", vhd.display());
    std::fs::read(out).unwrap()
}

async fn tasks_use_the_callers_own_account(engine: Engine) {
    if !cloudimg_fixtures::env::require_tool("qemu-img") {
        return;
    }
    let (Some(ks), Some((admin, admin_pw, admin_project))) =
        (cloudimg_fixtures::env::keystone(), common::keystone_admin())
    else {
        return;
    };
    let customers = common::keystone_customers();
    assert!(
        customers.len() >= 2,
        "KS_CUSTOMERS lists two customers (rerun scripts/keystone-up.sh)"
    );
    let dir = tempfile::tempdir().unwrap();
    let Some(db_url) = common::catalog_url(engine, dir.path()).await else {
        return;
    };
    let db = Db::connect(&db_url).await.unwrap();
    let store_dir = dir.path().join("store");
    let store = tokio::task::spawn_blocking(move || ImageStore::open(store_dir.to_str().unwrap()))
        .await
        .unwrap()
        .unwrap();
    let (admin_name, admin_password, admin_project_name) =
        (admin.clone(), admin_pw.clone(), admin_project.clone());
    let creds = ServiceCredentials {
        username: admin,
        password: admin_pw,
        project_name: admin_project,
        user_domain: "Default".into(),
        project_domain: "Default".into(),
    };
    let auth = Authenticator::Keystone(Keystone::new(&ks.auth_url, creds.clone()));
    let st = AppState::with_trusts(
        db,
        store,
        auth,
        Limits::default(),
        Some(Duration::from_secs(3600)),
    );
    let app = TestApp {
        router: cloudimg_api::http::router(st.clone()),
        st,
        dir,
        engine,
        db_url,
    };
    let cfg = WorkerConfig {
        files: Files::Swift {
            auth_url: ks.auth_url.clone(),
            creds,
        },
        export_segment_size: 1 << 20,
        ..WorkerConfig::default()
    };
    let (alice, alice_pw, alice_project) = &customers[0];
    let (bob, bob_pw, bob_project) = &customers[1];
    let (alice_tok, alice_pid) =
        common::keystone_token(&ks.auth_url, alice, alice_pw, alice_project);
    let (bob_tok, _) = common::keystone_token(&ks.auth_url, bob, bob_pw, bob_project);
    let account = format!("{}/v1/AUTH_{alice_pid}", ks.swift_url.trim_end_matches('/'));

    // Alice's disk in her own Cloud Files.
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/dynamic-qemu.vhd");
    let disk = std::fs::read(&source).unwrap();
    let uploads = format!("uploads-{}", uuid::Uuid::new_v4().simple());
    let (s, _) = swift(
        "PUT",
        &format!("{account}/{uploads}"),
        &alice_tok,
        Some(b""),
    );
    assert!(s == 201 || s == 202, "container: {s}");
    let (s, _) = swift(
        "PUT",
        &format!("{account}/{uploads}/disk.vhd"),
        &alice_tok,
        Some(&disk),
    );
    assert_eq!(s, 201);

    let import = json!({"type": "import", "input": {"import_from": format!("{uploads}/disk.vhd"),
        "import_from_format": "vhd", "image_properties": {"name": "from-cloud-files"}}});
    let (s, t) = app.post("/v2/tasks", &alice_tok, import.clone()).await;
    assert_eq!(s, 201, "{t}");
    let alice_task = t["id"].as_str().unwrap().to_string();
    assert!(
        db::credentials::get(&app.st.db, &alice_task)
            .await
            .unwrap()
            .is_some(),
        "the task has its trust"
    );
    assert!(
        !t.to_string().contains("trust"),
        "no credential in the task: {t}"
    );
    let trust = db::credentials::get(&app.st.db, &alice_task)
        .await
        .unwrap()
        .unwrap();
    // Bob names the same container: his trust reaches his own account, where it is not.
    let (s, t) = app.post("/v2/tasks", &bob_tok, import).await;
    assert_eq!(s, 201, "{t}");
    let bob_task = t["id"].as_str().unwrap().to_string();
    // Alice's own token ends (revoked, as an expiry or a logout ends it) before any worker
    // runs her task: the task does not depend on it, only on the trust.
    let (admin_tok, _) = common::keystone_token(
        &ks.auth_url,
        &admin_name,
        &admin_password,
        &admin_project_name,
    );
    let tokens_url = format!("{}/auth/tokens", ks.auth_url.trim_end_matches('/'));
    let revoke = ureq::delete(&tokens_url)
        .set("X-Auth-Token", &admin_tok)
        .set("X-Subject-Token", &alice_tok)
        .call()
        .expect("Keystone revokes Alice's token");
    assert_eq!(revoke.status(), 204);
    let check = ureq::get(&tokens_url)
        .set("X-Auth-Token", &admin_tok)
        .set("X-Subject-Token", &alice_tok)
        .call();
    assert!(
        matches!(check, Err(ureq::Error::Status(404, _))),
        "Alice's first token is no longer valid"
    );
    while worker::run_once(&app.st, &cfg, "w-1").await.unwrap() {}
    let (alice_tok, _) = common::keystone_token(&ks.auth_url, alice, alice_pw, alice_project);

    let (_, t) = app
        .get(&format!("/v2/tasks/{alice_task}"), &alice_tok)
        .await;
    assert_eq!(t["status"], "success", "{t}");
    let image = t["result"]["image_id"].as_str().unwrap().to_string();
    let (_, img) = app.get(&format!("/v2/images/{image}"), &alice_tok).await;
    assert_eq!(img["status"], "active", "{img}");
    assert_eq!(img["owner"], alice_pid.as_str(), "{img}");
    let (_, t) = app.get(&format!("/v2/tasks/{bob_task}"), &bob_tok).await;
    assert_eq!(t["status"], "failure", "{t}");
    let msg = t["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("not found") || msg.contains("404") || msg.contains("does not exist"),
        "Bob's task found nothing in his own account: {msg}"
    );
    for id in [&alice_task, &bob_task] {
        assert!(
            db::credentials::get(&app.st.db, id)
                .await
                .unwrap()
                .is_none(),
            "a finished task's credential is forgotten"
        );
    }

    // A worker's token that expires mid-run: Swift answers 401 and the store logs in
    // again through the trust, and the request goes through. (A token Keystone never
    // issued stands for the expired one: Swift answers both alike.)
    let renewing = SwiftStore::with_config(
        SwiftAuth::Trust {
            auth_url: ks.auth_url.clone(),
            username: admin_name.clone(),
            password: admin_password.clone(),
            user_domain: "Default".into(),
            trust_id: trust,
        },
        Some((account.clone(), "gAAAAA-expired-token".into())),
        Default::default(),
        RetryPolicy::default(),
    );
    let renewed = tokio::task::spawn_blocking({
        let path = ObjectPath::new(&uploads, "disk.vhd");
        move || renewing.head(&path)
    })
    .await
    .unwrap()
    .expect("renewed through the trust");
    assert_eq!(renewed.size, disk.len() as u64);

    // Alice exports the image back into her account.
    let exports = format!("exports-{}", uuid::Uuid::new_v4().simple());
    let (s, _) = swift(
        "PUT",
        &format!("{account}/{exports}"),
        &alice_tok,
        Some(b""),
    );
    assert!(s == 201 || s == 202, "container: {s}");
    let (s, t) = app
        .post(
            "/v2/tasks",
            &alice_tok,
            json!({"type": "export", "input": {"image_uuid": image, "receiving_swift_container": exports}}),
        )
        .await;
    assert_eq!(s, 201, "{t}");
    let export_task = t["id"].as_str().unwrap().to_string();
    while worker::run_once(&app.st, &cfg, "w-1").await.unwrap() {}
    let (_, t) = app
        .get(&format!("/v2/tasks/{export_task}"), &alice_tok)
        .await;
    assert_eq!(t["status"], "success", "{t}");
    let location = t["result"]["export_location"].as_str().unwrap();
    let (s, exported) = swift("GET", &format!("{account}/{location}"), &alice_tok, None);
    assert_eq!(s, 200, "the export is in Alice's account");
    let got = app.dir.path().join("exported.vhd");
    std::fs::write(&got, &exported).unwrap();
    assert!(
        raw_of(&got, &app.dir.path().join("a.raw"))
            == raw_of(&source, &app.dir.path().join("b.raw")),
        "the exported disk holds the source's bytes"
    );
    let (s, listing) = swift(
        "GET",
        &format!("{account}/{exports}?format=json"),
        &alice_tok,
        None,
    );
    assert_eq!(s, 200);
    let listing: Value = serde_json::from_slice(&listing).unwrap();
    assert!(!listing.as_array().unwrap().is_empty(), "{listing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_use_the_callers_own_account_sqlite() {
    tasks_use_the_callers_own_account(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_use_the_callers_own_account_postgres() {
    tasks_use_the_callers_own_account(Engine::Postgres).await;
}
