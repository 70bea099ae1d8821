//! `cloudimg worker` processes killed with SIGKILL mid-task: another worker takes the task
//! over when the lease expires and finishes it; the image exists once, the store holds
//! one package and no debris, and an export's bytes equal the source disk's. One worker
//! is killed from outside 100 ms into an import; others kill themselves at named crash
//! points (`CLOUDIMG_CRASH_AT`: before the first segment, after it, just before the
//! manifest, before the image record) of an import and then of an export. Real
//! processes, a real SQLite catalog file.

mod support;

use cloudimg_api::db::tasks::{self, TaskRow};
use cloudimg_api::db::Db;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn worker(bin: &str, dir: &Path) -> Child {
    worker_crashing_at(bin, dir, None)
}

/// A worker; with `crash`, one that kills itself at that crash point.
fn worker_crashing_at(bin: &str, dir: &Path, crash: Option<&str>) -> Child {
    let mut cmd = Command::new(bin);
    if let Some(point) = crash {
        cmd.env("CLOUDIMG_CRASH_AT", point);
    }
    cmd.args(["worker", "--db"])
        .arg(format!("sqlite:{}", dir.join("catalog.db").display()))
        .arg("--store")
        .arg(dir.join("store"))
        .arg("--files")
        .arg(dir.join("files"))
        .args(["--lease", "3", "--export-segment-size", "8M"])
        .env("CLOUDIMG_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A 96 MiB dynamic VHD of mixed data, made by qemu-img from a raw file.
fn big_vhd(dir: &Path) -> std::path::PathBuf {
    vhd_of(dir, 96)
}

/// A dynamic VHD of `mib` MiB of mixed data at the tests' upload path.
fn vhd_of(dir: &Path, mib: usize) -> std::path::PathBuf {
    support::write_vhd(dir, "files/proj-a/uploads/big.vhd", mib, 0).0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_task_is_taken_over_and_finished_once() {
    if !cloudimg_fixtures::env::require_tool("qemu-img") {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_cloudimg");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    big_vhd(dir);
    let db = Db::connect(&format!("sqlite:{}", dir.join("catalog.db").display()))
        .await
        .unwrap();
    let id = add_task(
        &db,
        "import",
        serde_json::json!({"import_from": "uploads/big.vhd", "import_from_format": "vhd",
            "image_properties": {"name": "big"}}),
    )
    .await;
    // The first worker starts the import; kill it once it has reported progress.
    let mut first = worker(bin, dir);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut killed_mid_run = false;
    loop {
        let t = tasks::get(&db, &id).await.unwrap().unwrap();
        // Mid-run: claimed, and 100 ms into the import (which takes seconds here). The
        // first heartbeat comes a third of a lease later, so progress is not awaited.
        if t.status == "processing" {
            tokio::time::sleep(Duration::from_millis(100)).await;
            first.kill().unwrap(); // SIGKILL
            first.wait().unwrap();
            killed_mid_run = tasks::get(&db, &id).await.unwrap().unwrap().status == "processing";
            break;
        }
        if t.status == "success" || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = first.kill();
    let _ = first.wait();
    assert!(
        killed_mid_run,
        "the worker was killed while the task was processing"
    );
    // While the import runs, its image is in the catalog as `saving` (as Glance shows it).
    let image_id =
        cloudimg_api::worker::import_image_id(&tasks::get(&db, &id).await.unwrap().unwrap());
    let saving = cloudimg_api::db::images::get(&db, &image_id)
        .await
        .unwrap()
        .expect("the import's image is recorded while it runs");
    assert_eq!(saving.status, "saving");
    assert_eq!(saving.name.as_deref(), Some("big"));
    assert_eq!(saving.owner, "proj-a");
    // A second worker takes the task over after the 3 s lease and finishes it.
    let mut second = worker(bin, dir);
    let deadline = Instant::now() + Duration::from_secs(90);
    let t = loop {
        let t = tasks::get(&db, &id).await.unwrap().unwrap();
        if t.status == "success" || t.status == "failure" || Instant::now() > deadline {
            break t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    second.kill().unwrap();
    second.wait().unwrap();
    assert_eq!(t.status, "success", "{}", t.message);
    assert_eq!(t.attempts, 2, "taken over once");
    let result: serde_json::Value = serde_json::from_str(t.result.as_deref().unwrap()).unwrap();
    let image = result["image_id"].as_str().unwrap();
    assert_eq!(
        image, image_id,
        "the image recorded while saving is the one made"
    );
    let img = cloudimg_api::db::images::get(&db, image)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(img.status, "active");
    assert_eq!(
        cloudimg_api::db::images::count(&db).await.unwrap(),
        1,
        "one image"
    );
    // The store holds that image's package and record, and nothing else.
    let mut names: Vec<String> = std::fs::read_dir(dir.join("store/images"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    assert!(names.iter().all(|n| n.starts_with(image)), "{names:?}");
    assert!(names.contains(&format!("{image}.json")), "{names:?}");
}

/// Inserts a pending task of `owner` proj-a; returns its id.
async fn add_task(db: &Db, kind: &str, input: serde_json::Value) -> String {
    let now = cloudimg_api::clock::now();
    let id = uuid::Uuid::new_v4().to_string();
    let row = TaskRow {
        id: id.clone(),
        task_type: kind.into(),
        status: "pending".into(),
        owner: "proj-a".into(),
        input: input.to_string(),
        result: None,
        message: String::new(),
        created_at: now.clone(),
        updated_at: now,
        expires_at: None,
        attempts: 0,
        max_attempts: 3,
        phase: None,
        bytes_done: 0,
        bytes_total: 0,
    };
    tasks::insert(db, &row).await.unwrap();
    id
}

/// Runs task `id` with a worker that kills itself at `point`, then with a healthy one that
/// takes it over; returns the finished task.
async fn crash_then_take_over(bin: &str, dir: &Path, db: &Db, id: &str, point: &str) -> TaskRow {
    use std::os::unix::process::ExitStatusExt;
    let mut doomed = worker_crashing_at(bin, dir, Some(point));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = doomed.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "{point}: the worker never reached it"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status.signal(), Some(9), "{point}: killed by SIGKILL");
    let t = tasks::get(db, id).await.unwrap().unwrap();
    assert_eq!(t.status, "processing", "{point}: left mid-run");
    let mut healthy = worker(bin, dir);
    let deadline = Instant::now() + Duration::from_secs(90);
    let t = loop {
        let t = tasks::get(db, id).await.unwrap().unwrap();
        if t.status == "success" || t.status == "failure" || Instant::now() > deadline {
            break t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    healthy.kill().unwrap();
    healthy.wait().unwrap();
    assert_eq!(t.status, "success", "{point}: {}", t.message);
    assert_eq!(t.attempts, 2, "{point}: taken over once");
    t
}

/// An import killed at `import_point`, then an export of its image killed at
/// `export_point`: both finish after takeover; one image, no debris in the store, and the
/// exported VHD holds the source disk's bytes (qemu-img reads both to raw).
async fn crash_import_and_export(import_point: &str, export_point: Option<&str>) {
    if !cloudimg_fixtures::env::require_tool("qemu-img") {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_cloudimg");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let source = big_vhd(dir);
    let db = Db::connect(&format!("sqlite:{}", dir.join("catalog.db").display()))
        .await
        .unwrap();
    let id = add_task(
        &db,
        "import",
        serde_json::json!({"import_from": "uploads/big.vhd", "import_from_format": "vhd",
            "image_properties": {"name": "big"}}),
    )
    .await;
    let t = crash_then_take_over(bin, dir, &db, &id, import_point).await;
    let result: serde_json::Value = serde_json::from_str(t.result.as_deref().unwrap()).unwrap();
    let image = result["image_id"].as_str().unwrap().to_string();
    let img = cloudimg_api::db::images::get(&db, &image)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(img.status, "active");
    assert_eq!(cloudimg_api::db::images::count(&db).await.unwrap(), 1);
    let names: Vec<String> = std::fs::read_dir(dir.join("store/images"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert!(names.iter().all(|n| n.starts_with(&image)), "{names:?}");

    let Some(export_point) = export_point else {
        return;
    };
    std::fs::create_dir_all(dir.join("files/proj-a/exports")).unwrap();
    let id = add_task(
        &db,
        "export",
        serde_json::json!({"image_uuid": image, "receiving_swift_container": "exports"}),
    )
    .await;
    let t = crash_then_take_over(bin, dir, &db, &id, export_point).await;
    let result: serde_json::Value = serde_json::from_str(t.result.as_deref().unwrap()).unwrap();
    let location = result["export_location"].as_str().unwrap();
    let object = dir.join("files/proj-a").join(location);
    let fetched = dir.join("fetched.vhd");
    let out = Command::new(bin)
        .args(["download", "--output", "json"])
        .arg(&object)
        .arg(&fetched)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The container holds the manifest and its segments: nothing a dead run left.
    let listing: Vec<String> = std::fs::read_dir(dir.join("files/proj-a/exports"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    let segments = summary["segments_verified"].as_u64().unwrap_or(0) as usize;
    assert!(segments > 1, "an export of several segments: {summary}");
    assert_eq!(
        listing.len(),
        segments + 1,
        "manifest + segments only: {listing:?}"
    );
    let raw = |vhd: &Path, out: &str| {
        let p = dir.join(out);
        let st = Command::new("qemu-img")
            .args(["convert", "-q", "-O", "raw"])
            .arg(vhd)
            .arg(&p)
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::read(p).unwrap()
    };
    assert!(
        raw(&fetched, "exported.raw") == raw(&source, "source.raw"),
        "the exported disk's bytes equal the source's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_before_the_first_segment() {
    crash_import_and_export(
        "upload:before-first-segment",
        Some("upload:before-first-segment"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_the_first_segment() {
    crash_import_and_export(
        "upload:after-first-segment",
        Some("upload:after-first-segment"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_before_the_manifest() {
    crash_import_and_export("upload:before-manifest", Some("upload:before-manifest")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_before_the_image_record() {
    crash_import_and_export("import:before-record", None).await;
}

/// A private PostgreSQL cluster started by scripts/pg-up.sh on a free port: (URL, data
/// folder, pg_ctl path). None (a panic under CI) when PostgreSQL is not installed.
fn private_pg(dir: &Path) -> Option<(String, std::path::PathBuf, std::path::PathBuf)> {
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|d| d.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).max());
    let Some(bin) = bin.filter(|b| b.join("pg_ctl").exists()) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "PostgreSQL is not installed (scripts/install-deps.sh)"
        );
        eprintln!("skip: PostgreSQL is not installed");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let root = cloudimg_fixtures::env::workspace_root();
    let out = Command::new("bash")
        .arg(root.join("scripts/pg-up.sh"))
        .env("CLOUDIMG_PG_PORT", port.to_string())
        .env("CLOUDIMG_PG_DIR", dir.join("pg"))
        .env("CLOUDIMG_PG_ENV", dir.join("pg.env"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "pg-up: {said}");
    let data = said
        .rsplit_once("(data in ")
        .and_then(|(_, r)| r.split_once(')'))
        .map(|(d, _)| std::path::PathBuf::from(d))
        .unwrap_or_else(|| panic!("pg-up names its data folder: {said}"));
    let url = std::fs::read_to_string(dir.join("pg.env"))
        .unwrap()
        .trim()
        .trim_start_matches("CLOUDIMG_PG_URL=")
        .to_string();
    Some((url, data, bin.join("pg_ctl")))
}

/// `pg_ctl ARGS` as the cluster's owner.
fn pg_ctl(pg_ctl: &Path, data: &Path, args: &[&str]) -> bool {
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(pg_ctl);
        c
    } else {
        Command::new(pg_ctl)
    };
    cmd.arg("-D")
        .arg(data)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

/// The catalog (PostgreSQL) restarts, dropping every connection, while a real worker runs
/// an import: the worker's heartbeats and its final write wait the outage out, so the same
/// run finishes the task (one attempt) and the image exists once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_restart_mid_run() {
    if !cloudimg_fixtures::env::require_tool("qemu-img") {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_cloudimg");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let Some((url, data, ctl)) = private_pg(dir) else {
        return;
    };
    // Large enough that the import outlasts the restart (about a second).
    vhd_of(dir, 384);
    let db = Db::connect(&url).await.unwrap();
    let id = add_task(
        &db,
        "import",
        serde_json::json!({"import_from": "uploads/big.vhd", "import_from_format": "vhd",
            "image_properties": {"name": "big"}}),
    )
    .await;
    let mut w = Command::new(bin)
        .args(["worker", "--db", &url, "--store"])
        .arg(dir.join("store"))
        .arg("--files")
        .arg(dir.join("files"))
        .env("CLOUDIMG_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while tasks::get(&db, &id).await.unwrap().unwrap().status != "processing" {
        assert!(
            Instant::now() < deadline,
            "the worker never claimed the task"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        pg_ctl(&ctl, &data, &["-w", "-m", "fast", "restart"]),
        "restart"
    );
    // The test's own pool reconnects too (sqlx pings before handing out a connection).
    let t = tasks::get(&db, &id).await.unwrap().unwrap();
    assert_eq!(t.status, "processing", "the restart happened mid-run");
    let deadline = Instant::now() + Duration::from_secs(120);
    let t = loop {
        let t = tasks::get(&db, &id).await.unwrap().unwrap();
        if t.status == "success" || t.status == "failure" || Instant::now() > deadline {
            break t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = w.kill();
    let _ = w.wait();
    let ok = (t.status.clone(), t.attempts, t.message.clone());
    let images = cloudimg_api::db::images::count(&db).await.unwrap();
    db.close().await;
    pg_ctl(&ctl, &data, &["-m", "immediate", "stop"]);
    let _ = std::fs::remove_dir_all(&data);
    assert_eq!(ok.0, "success", "{}", ok.2);
    assert_eq!(ok.1, 1, "the same run finished it");
    assert_eq!(images, 1, "one image");
}
