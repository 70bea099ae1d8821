//! Tasks over the API and the workers that run them, on SQLite and on PostgreSQL: the
//! Glance shapes, the Cloud Images inputs and codes, leases and fencing.

mod common;

use axum::http::StatusCode;
use cloudimg_api::worker::{self, WorkerConfig};
use common::{assert_error, TestApp};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;

on_both_engines!(
    create_validate_and_read,
    import_then_export_end_to_end,
    failures_carry_their_codes,
    leases_fence_and_take_over,
    concurrent_claims_take_each_task_once,
    a_run_that_lost_its_lease_stops_and_undoes_nothing,
);

fn files(app: &TestApp) -> WorkerConfig {
    WorkerConfig {
        files: cloudimg_api::worker::Files::Local(app.dir.path().join("files")),
        ..Default::default()
    }
}

fn put_file(app: &TestApp, project: &str, rel: &str, bytes: &[u8]) {
    let p = app.dir.path().join("files").join(project).join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

async fn run_all(app: &TestApp) -> usize {
    let cfg = files(app);
    let mut n = 0;
    while worker::run_once(&app.st, &cfg, "test-worker")
        .await
        .unwrap()
    {
        n += 1;
    }
    n
}

async fn create_validate_and_read(app: TestApp) {
    let import = json!({"type": "import", "input": {"import_from": "uploads/disk.vhd",
        "import_from_format": "vhd", "image_properties": {"name": "disk"}}});
    // Only customer admins create tasks.
    let (s, v) = app.post("/v2/tasks", "creator-a", import.clone()).await;
    assert_error(s, &v, StatusCode::FORBIDDEN);
    for bad in [
        json!({"type": "copy", "input": {}}),
        json!({"type": "import"}),
        json!({"input": {}}),
        json!({"type": "import", "input": {"import_from": "uploads/disk.vhd", "import_from_format": "vhd",
            "image_properties": {"name": "d", "os_distro": "ubuntu"}}}),
        json!({"type": "export", "input": {"image_uuid": "not-a-uuid", "receiving_swift_container": "c"}}),
        json!({"type": "import", "input": {}, "status": "success"}),
    ] {
        let (s, v) = app.post("/v2/tasks", "admin-a", bad.clone()).await;
        assert_error(s, &v, StatusCode::BAD_REQUEST);
    }
    let (s, h, v) = app
        .call(
            "POST",
            "/v2/tasks",
            "admin-a",
            Some(("application/json", import.to_string().into_bytes())),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(h["location"], format!("/v2/tasks/{id}").as_str());
    assert_eq!(v["status"], "pending");
    assert_eq!(v["type"], "import");
    assert_eq!(v["owner"], "proj-a");
    assert_eq!(v["input"]["import_from"], "uploads/disk.vhd");
    assert!(v["expires_at"].is_null());
    let (s, got) = app.get(&format!("/v2/tasks/{id}"), "observer-a").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got["id"], id.as_str());
    // Another project's task does not exist for the caller.
    let (s, v) = app.get(&format!("/v2/tasks/{id}"), "admin-b").await;
    assert_error(s, &v, StatusCode::NOT_FOUND);
    let (_, v) = app.get("/v2/tasks", "admin-b").await;
    assert_eq!(v["tasks"].as_array().unwrap().len(), 0);
    // Lists carry summaries: no input, result or message.
    let (_, v) = app
        .get("/v2/tasks?status=pending&type=import", "admin-a")
        .await;
    let t = &v["tasks"][0];
    assert_eq!(t["id"], id.as_str());
    assert!(t.get("input").is_none() && t.get("result").is_none() && t.get("message").is_none());
    assert_eq!(v["schema"], "/v2/schemas/tasks");
    let (_, v) = app.get("/v2/tasks?status=success", "admin-a").await;
    assert_eq!(v["tasks"].as_array().unwrap().len(), 0);
    let (s, v) = app.get("/v2/tasks?status=done", "admin-a").await;
    assert_error(s, &v, StatusCode::BAD_REQUEST);
    // Tasks are not deleted by callers.
    let (s, h, v) = app
        .call("DELETE", &format!("/v2/tasks/{id}"), "admin-a", None)
        .await;
    assert_error(s, &v, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(h["allow"], "GET");
}

async fn poll(app: &TestApp, id: &str) -> Value {
    let (s, v) = app.get(&format!("/v2/tasks/{id}"), "admin-a").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

async fn import_then_export_end_to_end(app: TestApp) {
    put_file(
        &app,
        "proj-a",
        "uploads/disk.vhd",
        &fixture("dynamic-qemu.vhd"),
    );
    std::fs::create_dir_all(app.dir.path().join("files/proj-a/exports")).unwrap();
    let (s, t) = app
        .post(
            "/v2/tasks",
            "admin-a",
            json!({"type": "import", "input": {"import_from": "uploads/disk.vhd",
            "import_from_format": "vhd", "image_properties": {"name": "from-task"}}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let tid = t["id"].as_str().unwrap();
    assert_eq!(run_all(&app).await, 1);
    let t = poll(&app, tid).await;
    assert_eq!(t["status"], "success", "{t}");
    assert!(t["expires_at"].is_string());
    let image = t["result"]["image_id"].as_str().unwrap().to_string();
    // The image is in the catalog, the caller's, private, active, with its data.
    let (s, img) = app.get(&format!("/v2/images/{image}"), "admin-a").await;
    assert_eq!(s, StatusCode::OK, "{img}");
    assert_eq!(img["name"], "from-task");
    assert_eq!(img["status"], "active");
    assert_eq!(img["visibility"], "private");
    assert_eq!(img["owner"], "proj-a");
    let (s, _, data) = app
        .raw("GET", &format!("/v2/images/{image}/file"), "admin-a", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(data.len() as u64, img["size"].as_u64().unwrap());
    assert_eq!(&data[..2], b"\x1f\x8b", "the stored package is gzip");
    // Another project cannot read the first project's files: its import of the same
    // path finds nothing.
    let (_, tb) = app
        .post(
            "/v2/tasks",
            "admin-b",
            json!({"type": "import", "input": {"import_from": "uploads/disk.vhd",
            "import_from_format": "vhd", "image_properties": {"name": "theft"}}}),
        )
        .await;
    run_all(&app).await;
    let (_, tb) = app
        .get(
            &format!("/v2/tasks/{}", tb["id"].as_str().unwrap()),
            "admin-b",
        )
        .await;
    assert_eq!(tb["status"], "failure", "{tb}");
    // Export it into the caller's container.
    let (s, e) = app
        .post("/v2/tasks", "admin-a", json!({"type": "export", "input": {"image_uuid": image, "receiving_swift_container": "exports"}}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
    run_all(&app).await;
    let e = poll(&app, e["id"].as_str().unwrap()).await;
    assert_eq!(e["status"], "success", "{e}");
    assert_eq!(
        e["result"]["export_location"],
        format!("exports/{image}.vhd")
    );
    assert!(app
        .dir
        .path()
        .join(format!("files/proj-a/exports/{image}.vhd"))
        .exists());
    // Shared images cannot be exported (Cloud Images), by the owner or the consumer.
    app.post(
        &format!("/v2/images/{image}/members"),
        "admin-a",
        json!({"member": "proj-b"}),
    )
    .await;
    app.put_json(
        &format!("/v2/images/{image}/members/proj-b"),
        "admin-b",
        json!({"status": "accepted"}),
    )
    .await;
    std::fs::create_dir_all(app.dir.path().join("files/proj-b/mine")).unwrap();
    for (tok, container) in [("admin-a", "exports"), ("admin-b", "mine")] {
        let (_, e) = app
            .post("/v2/tasks", tok, json!({"type": "export", "input": {"image_uuid": image, "receiving_swift_container": container}}))
            .await;
        run_all(&app).await;
        let (_, e) = app
            .get(&format!("/v2/tasks/{}", e["id"].as_str().unwrap()), tok)
            .await;
        assert_eq!(e["status"], "failure", "{tok}: {e}");
        assert!(e["message"].as_str().unwrap().contains("export"), "{e}");
    }
}

async fn failures_carry_their_codes(app: TestApp) {
    put_file(
        &app,
        "proj-a",
        "uploads/notes.txt",
        &b"not a disk at all\n".repeat(100),
    );
    put_file(
        &app,
        "proj-a",
        "uploads/leaf.vhd",
        &fixture("chain/leaf.vhd"),
    );
    let mut ids = Vec::new();
    for (object, code) in [
        ("uploads/notes.txt", "396"),
        ("uploads/leaf.vhd", "721"),
        ("uploads/missing.vhd", ""),
    ] {
        let (_, t) = app
            .post(
                "/v2/tasks",
                "admin-a",
                json!({"type": "import", "input": {"import_from": object,
                "import_from_format": "vhd", "image_properties": {"name": "x"}}}),
            )
            .await;
        ids.push((t["id"].as_str().unwrap().to_string(), code));
    }
    run_all(&app).await;
    for (id, code) in ids {
        let t = poll(&app, &id).await;
        assert_eq!(t["status"], "failure", "{t}");
        let msg = t["message"].as_str().unwrap();
        assert!(!msg.is_empty());
        assert!(msg.starts_with(code), "{code}: {msg}");
    }
    // No image was made by any of them.
    let (_, v) = app.get("/v2/images", "admin-a").await;
    assert_eq!(v["images"].as_array().unwrap().len(), 0, "{v}");
}

async fn leases_fence_and_take_over(app: TestApp) {
    let (_, t) = app
        .post(
            "/v2/tasks",
            "admin-a",
            json!({"type": "import", "input": {"import_from": "uploads/x.vhd",
            "import_from_format": "vhd", "image_properties": {"name": "x"}}}),
        )
        .await;
    let id = t["id"].as_str().unwrap();
    let db = &app.st.db;
    let now = cloudimg_api::clock::now();
    let soon = cloudimg_api::clock::after(std::time::Duration::from_secs(60));
    let a = cloudimg_api::db::tasks::claim(db, "worker-a", &soon, &now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.id, id);
    assert_eq!(a.attempts, 1);
    // While A holds the lease, nobody else gets the task.
    assert!(cloudimg_api::db::tasks::claim(db, "worker-b", &soon, &now)
        .await
        .unwrap()
        .is_none());
    let (_, v) = app.get(&format!("/v2/tasks/{id}"), "admin-a").await;
    assert_eq!(v["status"], "processing");
    assert_eq!(v["progress"]["attempt"], 1);
    // A stalls: its lease expires (we move the clock, not sleep), B takes over.
    let later = cloudimg_api::clock::after(std::time::Duration::from_secs(120));
    let later_lease = cloudimg_api::clock::after(std::time::Duration::from_secs(180));
    let b = cloudimg_api::db::tasks::claim(db, "worker-b", &later_lease, &later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.attempts, 2);
    // A comes back: its heartbeat and its result are refused, nothing is written.
    assert!(
        !cloudimg_api::db::tasks::heartbeat(db, id, "worker-a", 1, &later_lease, ("x", 1, 2))
            .await
            .unwrap()
    );
    assert!(!cloudimg_api::db::tasks::finish(
        db,
        id,
        "worker-a",
        1,
        "success",
        Some("{}"),
        "",
        &later,
        &later
    )
    .await
    .unwrap());
    assert!(cloudimg_api::db::tasks::heartbeat(
        db,
        id,
        "worker-b",
        2,
        &later_lease,
        ("transfer", 5, 10)
    )
    .await
    .unwrap());
    let (_, v) = app.get(&format!("/v2/tasks/{id}"), "admin-a").await;
    assert_eq!(v["status"], "processing");
    assert_eq!(v["progress"]["bytes_done"], 5);
    assert!(cloudimg_api::db::tasks::finish(
        db,
        id,
        "worker-b",
        2,
        "failure",
        None,
        "boom",
        &later,
        &later_lease
    )
    .await
    .unwrap());
    let (_, v) = app.get(&format!("/v2/tasks/{id}"), "admin-a").await;
    assert_eq!(v["status"], "failure");
    assert_eq!(v["message"], "boom");
    // A task whose every attempt died is failed by the reaper, with a message saying so.
    let (_, t2) = app
        .post(
            "/v2/tasks",
            "admin-a",
            json!({"type": "import", "input": {"import_from": "uploads/y.vhd",
            "import_from_format": "vhd", "image_properties": {"name": "y"}}}),
        )
        .await;
    let id2 = t2["id"].as_str().unwrap();
    let mut clock = std::time::Duration::from_secs(0);
    for attempt in 1..=3 {
        let at = cloudimg_api::clock::after(clock);
        let lease = cloudimg_api::clock::after(clock + std::time::Duration::from_secs(10));
        let c = cloudimg_api::db::tasks::claim(db, "dies", &lease, &at)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((c.id.as_str(), c.attempts), (id2, attempt));
        clock += std::time::Duration::from_secs(60);
    }
    let at = cloudimg_api::clock::after(clock);
    assert!(cloudimg_api::db::tasks::claim(db, "late", &at, &at)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        cloudimg_api::db::tasks::reap(db, &at, &at).await.unwrap(),
        1
    );
    let (_, v) = app.get(&format!("/v2/tasks/{id2}"), "admin-a").await;
    assert_eq!(v["status"], "failure");
    assert!(v["message"].as_str().unwrap().contains("attempt"), "{v}");
}

async fn concurrent_claims_take_each_task_once(app: TestApp) {
    for n in 0..30 {
        app.post(
            "/v2/tasks",
            "admin-a",
            json!({"type": "import", "input": {"import_from": format!("u/{n}.vhd"),
            "import_from_format": "vhd", "image_properties": {"name": "n"}}}),
        )
        .await;
    }
    let app = Arc::new(app);
    let mut handles = Vec::new();
    for w in 0..3 {
        let app = app.clone();
        handles.push(tokio::spawn(async move {
            let mut got = Vec::new();
            let lease = cloudimg_api::clock::after(std::time::Duration::from_secs(300));
            loop {
                let now = cloudimg_api::clock::now();
                match cloudimg_api::db::tasks::claim(&app.st.db, &format!("w{w}"), &lease, &now)
                    .await
                    .unwrap()
                {
                    Some(t) => got.push(t.id),
                    None => break,
                }
            }
            got
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 30, "every task claimed");
    assert_eq!(unique.len(), 30, "no task claimed twice");
}

/// A 96 MiB dynamic VHD of mixed data (qemu-img from raw): an import of it lasts seconds.
fn big_vhd(app: &TestApp) -> Option<Vec<u8>> {
    if !cloudimg_fixtures::env::require_tool("qemu-img") {
        return None;
    }
    let raw = app.dir.path().join("big.raw");
    let mut data = vec![0u8; 96 << 20];
    let mut x: u64 = 0x2545f4914f6cdd1d;
    for (i, chunk) in data.chunks_mut(4096).enumerate() {
        if i % 3 != 2 {
            for b in chunk.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = (x >> 56) as u8;
            }
        }
    }
    std::fs::write(&raw, &data).unwrap();
    let vhd = app.dir.path().join("big.vhd");
    let st = std::process::Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "vpc"])
        .arg(&raw)
        .arg(&vhd)
        .status()
        .unwrap();
    assert!(st.success());
    Some(std::fs::read(vhd).unwrap())
}

/// A worker stalls past its lease and another claims the task: at its next heartbeat the
/// first run finds the lease gone and stops at its next store operation, before its end,
/// and undoes nothing: the task stays the new owner's, the image the import recorded as
/// saving stays, and no record of a finished image appears from the stopped run.
async fn a_run_that_lost_its_lease_stops_and_undoes_nothing(app: TestApp) {
    let Some(disk) = big_vhd(&app) else { return };
    put_file(&app, "proj-a", "uploads/big.vhd", &disk);
    let (_, t) = app
        .post(
            "/v2/tasks",
            "admin-a",
            json!({"type": "import", "input": {"import_from": "uploads/big.vhd",
            "import_from_format": "vhd", "image_properties": {"name": "big"}}}),
        )
        .await;
    let id = t["id"].as_str().unwrap().to_string();
    // A short lease: the heartbeat (a third of it) finds the theft within 100 ms, long
    // before the import's end.
    let cfg = WorkerConfig {
        lease: std::time::Duration::from_millis(300),
        ..files(&app)
    };
    let st = app.st.clone();
    let run = tokio::spawn(async move { worker::run_once(&st, &cfg, "stalled").await });
    let db = &app.st.db;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while cloudimg_api::db::tasks::get(db, &id)
        .await
        .unwrap()
        .unwrap()
        .status
        != "processing"
    {
        assert!(std::time::Instant::now() < deadline, "never claimed");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // Another worker's claim after the lease expired, as the reaper-claim would write it.
    sqlx::query("UPDATE tasks SET lease_owner = 'thief', attempts = attempts + 1 WHERE id = $1")
        .bind(&id)
        .execute(db.pool())
        .await
        .unwrap();
    let ran = tokio::time::timeout(std::time::Duration::from_secs(60), run)
        .await
        .expect("the stopped run returns")
        .unwrap();
    assert!(ran.unwrap(), "it had claimed a task");
    let t = cloudimg_api::db::tasks::get(db, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.status, "processing", "the stopped run wrote no end");
    assert_eq!(t.attempts, 2);
    let image = worker::import_image_id(&t);
    let img = cloudimg_api::db::images::get(db, &image)
        .await
        .unwrap()
        .expect("the saving image is not removed by the stopped run");
    assert_eq!(img.status, "saving");
    assert!(
        app.st.store.get(&image.parse().unwrap()).unwrap().is_none(),
        "the stopped run did not finish the import"
    );
}
