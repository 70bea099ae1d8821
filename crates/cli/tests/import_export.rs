//! `cloudimg import` and `cloudimg export` through a local-directory store: task JSON on
//! stdout, exit 0 on success, 1 when the image is bad, 2 for the environment.

use std::path::Path;
use std::process::{Command, Output};

fn cloudimg(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cloudimg"))
        .args(args)
        .output()
        .unwrap()
}

fn fixture(name: &str) -> String {
    cloudimg_fixtures::env::workspace_root()
        .join("fixtures")
        .join(name)
        .display()
        .to_string()
}

fn task(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn import_then_export_with_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let uploads = dir.path().join("src/uploads");
    std::fs::create_dir_all(&uploads).unwrap();
    std::fs::copy(fixture("dynamic-vhdutil.vhd"), uploads.join("disk.vhd")).unwrap();
    std::fs::copy(fixture("chain/leaf.vhd"), uploads.join("leaf.vhd")).unwrap();
    let store = dir.path().join("store");

    let out = cloudimg(&[
        "import",
        "--from",
        s(&uploads.join("disk.vhd")),
        "--store",
        s(&store),
        "--name",
        "d",
        "--owner",
        "p1",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = task(&out);
    assert_eq!(t["status"], "success");
    assert_eq!(t["type"], "import");
    assert_eq!(t["owner"], "p1");
    assert_eq!(t["input"]["import_from"], "uploads/disk.vhd");
    let id = t["result"]["image_id"].as_str().unwrap().to_string();
    assert!(store.join(format!("images/{id}.json")).exists());

    // A differencing disk: 721, exit 1, the task JSON still printed.
    let out = cloudimg(&[
        "import",
        "--from",
        s(&uploads.join("leaf.vhd")),
        "--store",
        s(&store),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let t = task(&out);
    assert_eq!(t["status"], "failure");
    assert!(
        t["message"].as_str().unwrap().starts_with("721"),
        "{}",
        t["message"]
    );

    // A task JSON with a property other than name: 111, exit 2 (the request, not the data).
    let tj = dir.path().join("task.json");
    std::fs::write(
        &tj,
        r#"{"type": "import", "input": {"import_from": "uploads/disk.vhd", "import_from_format": "vhd", "image_properties": {"name": "x", "visibility": "public"}}}"#,
    )
    .unwrap();
    let out = cloudimg(&[
        "import",
        "--from",
        s(&dir.path().join("src")),
        "--task-json",
        s(&tj),
        "--store",
        s(&store),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(task(&out)["message"].as_str().unwrap().starts_with("111"));

    // Export: missing container is the environment (2); then success.
    let exports = dir.path().join("dest/exports");
    let out = cloudimg(&[
        "export",
        "--store",
        s(&store),
        "--image",
        &id,
        "--to",
        s(&exports),
        "--owner",
        "p1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    std::fs::create_dir_all(&exports).unwrap();
    let out = cloudimg(&[
        "export",
        "--store",
        s(&store),
        "--image",
        &id,
        "--to",
        s(&exports),
        "--owner",
        "someone",
    ]);
    assert_eq!(out.status.code(), Some(2), "not the owner");
    let out = cloudimg(&[
        "export",
        "--store",
        s(&store),
        "--image",
        &id,
        "--to",
        s(&exports),
        "--owner",
        "p1",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = task(&out);
    assert_eq!(t["result"]["export_location"], format!("exports/{id}.vhd"));
    assert!(t["expires_at"].is_string());
    assert!(exports.join(format!("{id}.vhd-00001")).exists());
    assert_eq!(
        std::fs::metadata(exports.join(format!("{id}.vhd")))
            .unwrap()
            .len(),
        0
    );
}
