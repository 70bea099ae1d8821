//! The operators' view on SQLite and PostgreSQL: cancelling pending and processing tasks
//! (the running worker's fenced writes are refused), and the metrics pages of the server
//! and of a worker after real tasks ran.

mod common;

use axum::http::StatusCode;
use cloudimg_api::db::tasks::{self, AllTasksQuery};
use cloudimg_api::ops::{self, OpsError, CANCEL_MESSAGE};
use cloudimg_api::worker::{self, WorkerConfig};
use cloudimg_pipeline::local::LocalStore;
use cloudimg_pipeline::store::{get_bytes, ObjectPath};
use common::TestApp;
use serde_json::json;
use std::time::Duration;

on_both_engines!(
    cancel_pending,
    cancel_processing_refuses_the_worker,
    list_all_projects,
    metrics_count_what_ran,
);

fn cfg(app: &TestApp) -> WorkerConfig {
    WorkerConfig {
        files: worker::Files::Local(app.dir.path().join("files")),
        ..Default::default()
    }
}

async fn run_all(app: &TestApp) -> usize {
    let cfg = cfg(app);
    let mut n = 0;
    while worker::run_once(&app.st, &cfg, "test-worker")
        .await
        .unwrap()
    {
        n += 1;
    }
    n
}

async fn new_import(app: &TestApp, token: &str, object: &str) -> String {
    let (s, t) = app
        .post(
            "/v2/tasks",
            token,
            json!({"type": "import", "input": {"import_from": object,
            "import_from_format": "vhd", "image_properties": {"name": "x"}}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    t["id"].as_str().unwrap().to_string()
}

async fn cancel_pending(app: TestApp) {
    let id = new_import(&app, "admin-a", "uploads/x.vhd").await;
    let t = ops::cancel(&app.st.db, &id).await.unwrap();
    assert_eq!(t.row.status, "failure");
    assert_eq!(t.row.message, CANCEL_MESSAGE);
    assert!(t.row.expires_at.is_some());
    // The customer sees it failed with the operator's message; no worker runs it.
    let (_, v) = app.get(&format!("/v2/tasks/{id}"), "admin-a").await;
    assert_eq!(v["status"], "failure", "{v}");
    assert_eq!(v["message"], CANCEL_MESSAGE);
    assert_eq!(run_all(&app).await, 0);
    // An ended task cannot be cancelled again; an unknown one is named.
    match ops::cancel(&app.st.db, &id).await {
        Err(OpsError::Ended { status, .. }) => assert_eq!(status, "failure"),
        other => panic!("{other:?}"),
    }
    let unknown = uuid::Uuid::new_v4().to_string();
    assert!(matches!(
        ops::cancel(&app.st.db, &unknown).await,
        Err(OpsError::NotFound(u)) if u == unknown
    ));
    assert!(matches!(
        ops::show(&app.st.db, "not-a-uuid").await,
        Err(OpsError::NotFound(_))
    ));
}

async fn cancel_processing_refuses_the_worker(app: TestApp) {
    let id = new_import(&app, "admin-a", "uploads/x.vhd").await;
    let db = &app.st.db;
    let now = cloudimg_api::clock::now();
    let lease = cloudimg_api::clock::after(Duration::from_secs(300));
    let run = tasks::claim(db, "worker-a:0", &lease, &now)
        .await
        .unwrap()
        .unwrap();
    assert!(
        tasks::heartbeat(db, &id, "worker-a:0", 1, &lease, ("transferring", 5, 10))
            .await
            .unwrap()
    );
    let shown = ops::show(db, &id).await.unwrap();
    assert_eq!(shown.row.status, "processing");
    assert_eq!(shown.lease.owner.as_deref(), Some("worker-a:0"));
    assert_eq!(shown.lease.expires_at.as_deref(), Some(lease.as_str()));
    assert_eq!((shown.row.attempts, shown.row.bytes_done), (1, 5));
    let j = shown.to_json();
    assert_eq!(j["lease"]["owner"], "worker-a:0");
    assert_eq!(j["progress"]["bytes_total"], 10);
    assert_eq!(j["input"]["import_from"], "uploads/x.vhd");

    // The run had recorded its image as saving, as a worker does when it starts an import.
    let image = cloudimg_api::worker::import_image_id(&run);
    let mut saving = cloudimg_api::domain::image::Image::new(image.clone(), &run.owner);
    saving.status = "saving".into();
    cloudimg_api::db::images::insert(db, &saving).await.unwrap();

    let t = ops::cancel(db, &id).await.unwrap();
    assert_eq!(
        (t.row.status.as_str(), t.row.message.as_str()),
        ("failure", CANCEL_MESSAGE)
    );
    assert_eq!(t.lease, Default::default());
    assert!(
        cloudimg_api::db::images::get(db, &image)
            .await
            .unwrap()
            .is_none(),
        "the cancelled import's saving image goes with it"
    );
    // The worker that held the lease comes back: its heartbeat and its result are refused.
    assert!(!tasks::heartbeat(
        db,
        &id,
        "worker-a:0",
        run.attempts,
        &lease,
        ("transferring", 9, 10)
    )
    .await
    .unwrap());
    let later = cloudimg_api::clock::now();
    assert!(!tasks::finish(
        db,
        &id,
        "worker-a:0",
        run.attempts,
        "success",
        Some("{\"image_id\": \"x\"}"),
        "",
        &later,
        &later
    )
    .await
    .unwrap());
    // Nobody claims it again, even after its old lease would have run out.
    let far = cloudimg_api::clock::after(Duration::from_secs(3600));
    assert!(tasks::claim(db, "worker-b:0", &far, &far)
        .await
        .unwrap()
        .is_none());
    assert_eq!(tasks::reap(db, &far, &far).await.unwrap(), 0);
    let (_, v) = app.get(&format!("/v2/tasks/{id}"), "admin-a").await;
    assert_eq!(v["status"], "failure", "{v}");
    assert_eq!(v["message"], CANCEL_MESSAGE);
    assert!(v["result"].is_null(), "{v}");
}

async fn list_all_projects(app: TestApp) {
    let a1 = new_import(&app, "admin-a", "u/1.vhd").await;
    let b1 = new_import(&app, "admin-b", "u/2.vhd").await;
    let a2 = new_import(&app, "admin-a", "u/3.vhd").await;
    ops::cancel(&app.st.db, &a2).await.unwrap();
    let ids = |q: AllTasksQuery| {
        let db = app.st.db.clone();
        async move {
            ops::list(&db, &q)
                .await
                .unwrap()
                .into_iter()
                .map(|t| t.row.id)
                .collect::<Vec<_>>()
        }
    };
    let all = AllTasksQuery {
        limit: 100,
        ..Default::default()
    };
    assert_eq!(ids(all.clone()).await, [a2.clone(), b1.clone(), a1.clone()]);
    assert_eq!(
        ids(AllTasksQuery {
            owner: Some("proj-a".into()),
            ..all.clone()
        })
        .await,
        [a2.clone(), a1.clone()]
    );
    assert_eq!(
        ids(AllTasksQuery {
            status: Some("pending".into()),
            ..all.clone()
        })
        .await,
        [b1.clone(), a1.clone()]
    );
    assert_eq!(
        ids(AllTasksQuery {
            task_type: Some("export".into()),
            ..all.clone()
        })
        .await,
        Vec::<String>::new()
    );
    assert_eq!(ids(AllTasksQuery { limit: 1, ..all }).await, [a2]);
}

/// The value of the sample `series` (name and labels, exactly as rendered).
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn metrics_count_what_ran(app: TestApp) {
    let fixture = std::fs::read(format!(
        "{}/../../fixtures/dynamic-qemu.vhd",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let files = app.dir.path().join("files/proj-a");
    std::fs::create_dir_all(files.join("uploads")).unwrap();
    std::fs::create_dir_all(files.join("exports")).unwrap();
    std::fs::write(files.join("uploads/disk.vhd"), &fixture).unwrap();
    let tid = new_import(&app, "admin-a", "uploads/disk.vhd").await;
    new_import(&app, "admin-a", "uploads/missing.vhd").await;
    assert_eq!(run_all(&app).await, 2);
    let (_, t) = app.get(&format!("/v2/tasks/{tid}"), "admin-a").await;
    let image = t["result"]["image_id"].as_str().unwrap().to_string();
    let (_, img) = app.get(&format!("/v2/images/{image}"), "admin-a").await;
    let virtual_size = img["virtual_size"].as_f64().unwrap();
    let (s, e) = app
        .post(
            "/v2/tasks",
            "admin-a",
            json!({"type": "export", "input": {"image_uuid": image, "receiving_swift_container": "exports"}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
    let pending_import = new_import(&app, "admin-b", "u/later.vhd").await;
    // Run the export only: the admin-b import stays pending for the gauge.
    let cfg = cfg(&app);
    assert!(worker::run_once(&app.st, &cfg, "test-worker")
        .await
        .unwrap());
    let (_, e) = app
        .get(
            &format!("/v2/tasks/{}", e["id"].as_str().unwrap()),
            "admin-a",
        )
        .await;
    assert_eq!(e["status"], "success", "{e}");
    let exported = get_bytes(
        &LocalStore::new(&files).unwrap(),
        &ObjectPath::new("exports", format!("{image}.vhd")),
        1 << 30,
    )
    .unwrap();

    // The server's page, without a token.
    let (s, h, body) = app.raw("GET", "/metrics", "", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(h["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let page = String::from_utf8(body).unwrap();
    let got =
        |series: &str| sample(&page, series).unwrap_or_else(|| panic!("{series} missing:\n{page}"));
    assert_eq!(
        got(r#"cloudimg_worker_tasks_finished_total{type="import",status="success"}"#),
        1.0
    );
    assert_eq!(
        got(r#"cloudimg_worker_tasks_finished_total{type="import",status="failure"}"#),
        1.0
    );
    assert_eq!(
        got(r#"cloudimg_worker_tasks_finished_total{type="export",status="success"}"#),
        1.0
    );
    assert_eq!(
        got(r#"cloudimg_worker_bytes_moved_total{type="import"}"#),
        virtual_size
    );
    assert_eq!(
        got(r#"cloudimg_worker_bytes_moved_total{type="export"}"#),
        exported.len() as f64
    );
    assert_eq!(got(r#"cloudimg_worker_claims_total{type="import"}"#), 2.0);
    assert_eq!(got("cloudimg_worker_claim_latency_seconds_count"), 3.0);
    assert_eq!(
        got(r#"cloudimg_worker_claim_latency_seconds_bucket{le="+Inf"}"#),
        3.0
    );
    assert_eq!(got("cloudimg_worker_tasks_running"), 0.0);
    assert_eq!(
        got(r#"cloudimg_tasks{type="import",status="success"}"#),
        1.0
    );
    assert_eq!(
        got(r#"cloudimg_tasks{type="import",status="failure"}"#),
        1.0
    );
    assert_eq!(
        got(r#"cloudimg_tasks{type="import",status="pending"}"#),
        1.0
    );
    assert_eq!(
        got(r#"cloudimg_tasks{type="export",status="success"}"#),
        1.0
    );
    assert_eq!(
        got(r#"cloudimg_tasks{type="export",status="processing"}"#),
        0.0
    );
    assert_eq!(got("cloudimg_uploads_in_flight"), 0.0);
    assert!(page.contains("# TYPE cloudimg_worker_claim_latency_seconds histogram\n"));

    // A worker's own listener: /healthz and its counters (not the queue).
    let addr = cloudimg_api::metrics::listen(app.st.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (health, wpage) = tokio::task::spawn_blocking(move || {
        let h = ureq::get(&format!("http://{addr}/healthz")).call().unwrap();
        let m = ureq::get(&format!("http://{addr}/metrics")).call().unwrap();
        (h.status(), m.into_string().unwrap())
    })
    .await
    .unwrap();
    assert_eq!(health, 200);
    assert_eq!(
        sample(
            &wpage,
            r#"cloudimg_worker_tasks_finished_total{type="export",status="success"}"#
        ),
        Some(1.0)
    );
    assert!(!wpage.contains("cloudimg_tasks{"), "{wpage}");
    app.st.shutdown.cancel();
    // Cancelling the pending task shows in the next scrape.
    ops::cancel(&app.st.db, &pending_import).await.unwrap();
    let (_, _, body) = app.raw("GET", "/metrics", "", None).await;
    let page = String::from_utf8(body).unwrap();
    assert_eq!(
        sample(&page, r#"cloudimg_tasks{type="import",status="pending"}"#),
        Some(0.0)
    );
    assert_eq!(
        sample(&page, r#"cloudimg_tasks{type="import",status="failure"}"#),
        Some(2.0)
    );
}
