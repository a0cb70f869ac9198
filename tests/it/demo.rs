//! `callvault demo` as a user runs it: the real binary, a fresh folder, its exit code and archive.

use std::process::Command;

use crate::support::files_under;

#[test]
fn the_demo_archives_and_verifies_every_recorded_call() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_callvault"))
        .args(["demo", "--calls", "2", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "demo failed: {stderr}");
    assert!(
        stderr.contains("demo-call-1: paused") && stderr.contains("demo-call-2: resumed"),
        "progress is shown: {stderr}"
    );

    let rows: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("demo-call-"))
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert!(
        rows.iter()
            .all(|row| row.split_whitespace().any(|cell| cell == "yes")),
        "{stdout}"
    );

    let files = files_under(&dir.path().join("archive"));
    let manifests: Vec<_> = files
        .iter()
        .filter(|f| f.ends_with("manifest.json"))
        .collect();
    assert_eq!(manifests.len(), 2, "{files:?}");
    // The first call is long enough to span several chunks, each with its metadata document.
    let chunks = files
        .iter()
        .filter(|f| f.contains("chunk-") && !f.ends_with(".metadata.json"))
        .count();
    let metadata = files
        .iter()
        .filter(|f| f.ends_with(".metadata.json"))
        .count();
    assert!(chunks >= 3 && chunks == metadata, "{files:?}");
    for manifest in manifests {
        let manifest: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.path().join("archive").join(manifest)).unwrap(),
        )
        .unwrap();
        let participants = manifest["participants"].as_array().unwrap();
        assert_eq!(
            participants.len(),
            2,
            "the registered participants reach the manifest: {manifest}"
        );
    }
}

#[test]
fn a_demo_that_cannot_finish_exits_non_zero_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_callvault"))
        .args(["demo", "--calls", "1", "--timeout", "0", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("callvault: the archive was not complete after 0 s"),
        "{stderr}"
    );
}

#[test]
fn the_demo_with_auto_start_records_a_call_on_policy_and_archives_it() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_callvault"))
        .args(["demo", "--calls", "1", "--auto-start", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "demo failed: {stderr}");
    for step in [
        "policy-call: leg ",
        "policy-call: callvault started recording it on policy",
        "policy-call: stopped",
    ] {
        assert!(stderr.contains(step), "{step} in {stderr}");
    }
    let policy = stdout
        .lines()
        .find(|line| line.starts_with("policy-call"))
        .unwrap_or_else(|| panic!("a row for the policy call: {stdout}"));
    assert!(
        policy.split_whitespace().any(|cell| cell == "yes"),
        "{policy}"
    );
    let manifests = files_under(&dir.path().join("archive"))
        .into_iter()
        .filter(|f| f.ends_with("manifest.json"))
        .count();
    assert_eq!(manifests, 2, "the control-API call and the policy call");
}
