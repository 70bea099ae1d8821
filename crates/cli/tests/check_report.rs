//! `cloudimg check`'s human report says every finding the JSON report holds, with its
//! file, field and offset: chain findings (a loop, a chain deeper than 64 layers) too.

use cloudimg_vhd::create::{create_child, create_dynamic, ChildOptions};
use std::path::Path;
use std::process::Command;

fn check(dir: &Path, file: &str, json: bool) -> (i32, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cloudimg"));
    c.arg("check").current_dir(dir);
    if json {
        c.args(["--output", "json"]);
    }
    let out = c.arg(file).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Every finding of the JSON report appears in the human one as `FILE: SEV: FIELD[ at OFF]: MESSAGE`.
fn human_says_every_finding(dir: &Path, file: &str) -> String {
    let (code, json) = check(dir, file, true);
    let (hcode, human) = check(dir, file, false);
    assert_eq!((code, hcode), (1, 1), "{human}");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert!(!findings.is_empty());
    for f in findings {
        let at = f["offset"]
            .as_u64()
            .map(|o| format!(" at {o:#x}"))
            .unwrap_or_default();
        let line = format!(
            "{}: {}: {}{at}: {} [{}]",
            f["path"].as_str().unwrap(),
            f["severity"].as_str().unwrap(),
            f["field"].as_str().unwrap(),
            f["message"].as_str().unwrap(),
            f["code"].as_str().unwrap()
        );
        assert!(
            human.lines().any(|l| l == line),
            "missing {line:?} in\n{human}"
        );
    }
    human
}

#[test]
fn a_loop_is_said_in_the_human_report() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let u = uuid::Uuid::new_v4();
    create_dynamic(&d.join("base.vhd"), 4 << 20, 2 << 20, Some(u)).unwrap();
    create_child(
        &d.join("mid.vhd"),
        &d.join("base.vhd"),
        &ChildOptions::default(),
    )
    .unwrap();
    // The leaf has the base's UUID: the chain comes back to where it started.
    let opts = ChildOptions {
        uuid: Some(u),
        ..Default::default()
    };
    create_child(&d.join("leaf.vhd"), &d.join("mid.vhd"), &opts).unwrap();
    let human = human_says_every_finding(d, "leaf.vhd");
    assert!(human.contains("appears twice in the chain"), "{human}");
    assert!(human.contains("[chain_loop]"), "{human}");
}

#[test]
fn a_chain_deeper_than_64_layers_is_said_in_the_human_report() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    create_dynamic(&d.join("l0.vhd"), 1 << 20, 2 << 20, None).unwrap();
    for i in 1..=64 {
        create_child(
            &d.join(format!("l{i}.vhd")),
            &d.join(format!("l{}.vhd", i - 1)),
            &ChildOptions::default(),
        )
        .unwrap();
    }
    let human = human_says_every_finding(d, "l64.vhd");
    assert!(human.contains("chain is deeper than 64 layers"), "{human}");
}
