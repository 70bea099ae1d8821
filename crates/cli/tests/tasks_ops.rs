//! `cloudimg tasks list|show|cancel` run as the real binary on a real SQLite catalog: the
//! JSON output, the lease and attempts shown, cancelling, and the exit codes (0 done, 1
//! the task has already ended, 2 unknown task or no catalog).

use cloudimg_api::db::tasks::{self, TaskRow};
use cloudimg_api::db::Db;
use serde_json::Value;
use std::process::{Command, Output};

fn cloudimg(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cloudimg"))
        .args(args)
        .output()
        .unwrap()
}

fn json(out: &Output) -> Value {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn task(owner: &str, created_at: &str) -> TaskRow {
    TaskRow {
        id: uuid::Uuid::new_v4().to_string(),
        task_type: "import".into(),
        status: "pending".into(),
        owner: owner.into(),
        input: r#"{"import_from":"c/o.vhd","import_from_format":"vhd","image_properties":{"name":"n"}}"#.into(),
        result: None,
        message: String::new(),
        created_at: created_at.into(),
        updated_at: created_at.into(),
        expires_at: None,
        attempts: 0,
        max_attempts: 3,
        phase: None,
        bytes_done: 0,
        bytes_total: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_show_cancel() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("catalog.db").display());
    let db = Db::connect(&url).await.unwrap();
    let old = task("proj-a", "2026-01-01T00:00:00.000000Z");
    let new = task("proj-b", "2026-01-02T00:00:00.000000Z");
    tasks::insert(&db, &old).await.unwrap();
    tasks::insert(&db, &new).await.unwrap();
    // A worker holds the older one.
    let lease = cloudimg_api::clock::after(std::time::Duration::from_secs(600));
    let now = cloudimg_api::clock::now();
    let claimed = tasks::claim(&db, "node-1:0", &lease, &now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, old.id);
    db.close().await;

    let v = json(&cloudimg(&[
        "tasks", "list", "--db", &url, "--output", "json",
    ]));
    let ids: Vec<&str> = v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [new.id.as_str(), old.id.as_str()],
        "every project's, newest first"
    );
    let v = json(&cloudimg(&[
        "tasks",
        "list",
        "--db",
        &url,
        "--status",
        "processing",
        "--output",
        "json",
    ]));
    assert_eq!(v["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(v["tasks"][0]["lease"]["owner"], "node-1:0");
    let v = json(&cloudimg(&[
        "tasks", "list", "--db", &url, "--owner", "proj-b", "--output", "json",
    ]));
    assert_eq!(v["tasks"][0]["id"], new.id.as_str());
    let human = cloudimg(&["tasks", "list", "--db", &url]);
    let text = String::from_utf8(human.stdout).unwrap();
    assert!(text.starts_with("ID "), "{text}");
    assert!(
        text.contains(&old.id) && text.contains("node-1:0"),
        "{text}"
    );

    let v = json(&cloudimg(&[
        "tasks", "show", "--db", &url, &old.id, "--output", "json",
    ]));
    assert_eq!(v["status"], "processing");
    assert_eq!(v["attempts"], 1);
    assert_eq!(v["max_attempts"], 3);
    assert_eq!(v["lease"]["owner"], "node-1:0");
    assert_eq!(v["lease"]["expires_at"], lease.as_str());
    assert_eq!(v["input"]["import_from"], "c/o.vhd");

    // Cancel the running one: failure, lease cleared; the worker's result is refused.
    let v = json(&cloudimg(&[
        "tasks", "cancel", "--db", &url, &old.id, "--output", "json",
    ]));
    assert_eq!(v["status"], "failure");
    assert_eq!(v["message"], "cancelled by an operator");
    assert!(v["lease"]["owner"].is_null());
    let db = Db::connect(&url).await.unwrap();
    assert!(
        !tasks::finish(&db, &old.id, "node-1:0", 1, "success", None, "", &now, &now)
            .await
            .unwrap()
    );
    assert_eq!(
        tasks::get(&db, &old.id).await.unwrap().unwrap().status,
        "failure"
    );
    db.close().await;
    // Cancel the pending one.
    let v = json(&cloudimg(&[
        "tasks", "cancel", "--db", &url, &new.id, "--output", "json",
    ]));
    assert_eq!(v["status"], "failure");

    // Exit codes: an ended task 1; an unknown task, a missing catalog or a bad URL 2.
    let again = cloudimg(&["tasks", "cancel", "--db", &url, &old.id]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already failure"));
    let unknown = uuid::Uuid::new_v4().to_string();
    let out = cloudimg(&["tasks", "show", "--db", &url, &unknown]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&unknown));
    let missing = dir.path().join("nope.db");
    let out = cloudimg(&[
        "tasks",
        "list",
        "--db",
        &format!("sqlite:{}", missing.display()),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!missing.exists(), "a typo must not create a catalog");
    let out = cloudimg(&["tasks", "list", "--db", "mysql://x/y"]);
    assert_eq!(out.status.code(), Some(2));
}
