//! Signed, chained manifests end to end: a key pair from `callvault keys generate`, recordings
//! archived with it, and `callvault verify` with the database and offline with the public key
//! alone; a forged manifest, a removed and a reordered link are caught; concurrent writers on
//! PostgreSQL keep the chain one line.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use callvault::queue::{manifest_chain, recordings};
use callvault::worker::manifest::refresh;
use callvault_emulator::EmulatorConfig;
use callvault_emulator::events::recording_file_status_updated;
use serde_json::{Value, json};

use crate::pipeline::{add_chunk, start_time};
use crate::remote_storage::{azure_storage, s3_storage};
use crate::support::{TestApp, TestDatabase, sha256_hex, start_emulator};

const WAIT: Duration = Duration::from_secs(30);
/// A database no one listens on: the offline verification must never need it.
const NO_DATABASE: &str = "postgres://callvault@127.0.0.1:9/nowhere";

/// A key pair as `callvault keys generate` prints it: (private, public).
fn generate_keys() -> (String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_callvault"))
        .args(["keys", "generate"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let value = |label: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(label))
            .unwrap_or_else(|| panic!("no `{label}` line in {text}"))
            .trim()
            .to_owned()
    };
    (value("private key:"), value("public key:"))
}

/// Runs `callvault verify ARGS` on the local archive with `env`; returns (exit code, output).
fn verify(archive: &Path, env: &[(&str, &str)], args: &[&str]) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_callvault"));
    command
        .arg("verify")
        .args(args)
        .env("CALLVAULT__STORAGE__PATH", archive)
        .env("CALLVAULT__DATABASE__URL", NO_DATABASE);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// `callvault verify` as the deployment runs it: its database and its signing key.
fn verify_with_database(app: &TestApp, private: &str) -> (i32, String) {
    verify(
        &app.archive,
        &[
            ("CALLVAULT__DATABASE__URL", &app.db.url),
            ("CALLVAULT__STORAGE__MANIFEST_SIGNING_KEY", private),
        ],
        &[],
    )
}

fn verify_offline(app: &TestApp, public: &str) -> (i32, String) {
    verify(&app.archive, &[], &["--public-key", public])
}

/// Archives `count` one-chunk recordings (calls `call-sig-0`…) and returns their folders.
async fn archive_recordings(
    app: &TestApp,
    emulator: &callvault_emulator::Emulator,
    count: usize,
) -> Vec<String> {
    let start = start_time();
    let mut events = Vec::new();
    let mut folders = Vec::new();
    for n in 0..count {
        let call = format!("call-sig-{n}");
        let chunk = add_chunk(
            emulator,
            &call,
            &format!("doc-sig-{n}"),
            0,
            "SessionEnded",
            2_000,
        );
        events.push(recording_file_status_updated(
            &format!("evt-sig-{n}"),
            &format!("/recording/call/{call}"),
            start,
            &[chunk],
            "Mp4",
        ));
        folders.push(format!("{call}/{}", start.format("%Y%m%dT%H%M%SZ")));
    }
    assert_eq!(app.post_events(&json!(events)).await.status(), 200);
    // A manifest is marked in the database after its put and its link: wait for every mark.
    crate::support::eventually("every link and manifest recorded", WAIT, || async {
        let links = manifest_chain::links(app.queue()).await.unwrap();
        let marked = recordings::list(app.queue(), 100, None)
            .await
            .unwrap()
            .iter()
            .filter(|recording| recording.manifest_key.is_some())
            .count();
        (links.len() == count && marked == count).then_some(())
    })
    .await;
    folders
}

fn count(output: &str, needle: &str) -> usize {
    output.matches(needle).count()
}

#[tokio::test]
async fn signed_manifests_verify_with_the_database_and_offline_and_a_forgery_is_caught() {
    let (private, public) = generate_keys();
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn(
        &emulator,
        &[("storage.manifest_signing_key", private.clone())],
    )
    .await;
    let folders = archive_recordings(&app, &emulator, 3).await;
    let manifest_path = |n: usize| app.archive.join(&folders[n]).join("manifest.json");
    let stored: Value = serde_json::from_slice(&std::fs::read(manifest_path(0)).unwrap()).unwrap();
    assert_eq!(stored["signature"]["algorithm"], "Ed25519");
    assert_eq!(stored["signature"]["publicKey"], public.as_str());

    let (code, output) = verify_with_database(&app, &private);
    assert_eq!((code, count(&output, "signed ok")), (0, 3), "{output}");
    assert!(output.contains("chain: 3 link(s) walked"), "{output}");
    let (code, output) = verify_offline(&app, &public);
    assert_eq!((code, count(&output, "signed ok")), (0, 3), "{output}");
    assert!(output.contains("chain: 3 link(s) walked"), "{output}");

    // A rewritten manifest (as for a late chunk) is a new link; the one it replaced is
    // vouched for by its earlierVersions, so both checks still pass.
    let first = recordings::list(app.queue(), 10, None)
        .await
        .unwrap()
        .into_iter()
        .find(|recording| recording.call_id == "call-sig-0")
        .unwrap();
    let replaced = sha256_hex(&std::fs::read(manifest_path(0)).unwrap());
    refresh(app.queue(), &app.running().state.archive, first.id)
        .await
        .unwrap()
        .unwrap();
    let rewritten: Value =
        serde_json::from_slice(&std::fs::read(manifest_path(0)).unwrap()).unwrap();
    assert_eq!(
        rewritten["signature"]["earlierVersions"][0]["sha256"],
        replaced.as_str()
    );
    let (code, output) = verify_with_database(&app, &private);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("chain: 4 link(s) walked"), "{output}");
    let (code, output) = verify_offline(&app, &public);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("chain: 4 link(s) walked"), "{output}");

    // Someone without the key replaces a chunk and recomputes its size and sha256 in the
    // manifest: the objects match the manifest, and the signature does not.
    let target = manifest_path(1);
    let mut forged: Value = serde_json::from_slice(&std::fs::read(&target).unwrap()).unwrap();
    let media_key = forged["chunks"][0]["media"]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let replacement = b"another recording".to_vec();
    std::fs::write(app.archive.join(&media_key), &replacement).unwrap();
    forged["chunks"][0]["media"]["bytes"] = replacement.len().into();
    forged["chunks"][0]["media"]["sha256"] = sha256_hex(&replacement).into();
    std::fs::write(&target, serde_json::to_vec_pretty(&forged).unwrap()).unwrap();

    let (code, output) = verify_offline(&app, &public);
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains(&format!("ok        {media_key}")),
        "{output}"
    );
    assert!(
        output.contains(&format!(
            "SIGNATURE INVALID  {}/manifest.json: the signature does not match",
            folders[1]
        )),
        "{output}"
    );
    assert_eq!(count(&output, "signed ok"), 2, "{output}");
    let (code, output) = verify_with_database(&app, &private);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("SIGNATURE INVALID"), "{output}");
    assert!(output.contains("the chain recorded"), "{output}");

    // Another key is not the trusted one.
    let (_, other_public) = generate_keys();
    let (code, output) = verify_offline(&app, &other_public);
    assert_eq!((code, count(&output, "signed ok")), (1, 0), "{output}");
    app.close().await;
}

#[tokio::test]
async fn a_reordered_or_removed_link_breaks_the_chain() {
    let (private, public) = generate_keys();
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn(
        &emulator,
        &[("storage.manifest_signing_key", private.clone())],
    )
    .await;
    archive_recordings(&app, &emulator, 3).await;
    let links = manifest_chain::links(app.queue()).await.unwrap();
    assert_eq!(
        links[1].previous_sha256.as_deref(),
        Some(links[0].sha256.as_str())
    );
    assert_eq!(
        links[2].previous_sha256.as_deref(),
        Some(links[1].sha256.as_str())
    );

    // Reordered in the database: the second and third links swap places (written again in
    // the other order, so their ids, the chain's order, swap).
    let pool = app.queue().pool();
    sqlx::query("DELETE FROM manifest_chain WHERE id IN ($1, $2)")
        .bind(links[1].id)
        .bind(links[2].id)
        .execute(pool)
        .await
        .unwrap();
    for link in [&links[2], &links[1]] {
        sqlx::query(
            "INSERT INTO manifest_chain (sha256, manifest_key, recording_id, previous_sha256, written_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(link.sha256.clone())
        .bind(link.manifest_key.clone())
        .bind(link.recording_id)
        .bind(link.previous_sha256.clone())
        .bind(link.written_at)
        .execute(pool)
        .await
        .unwrap();
    }
    let (code, output) = verify_with_database(&app, &private);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("CHAIN BROKEN at link"), "{output}");
    // The store itself is untouched: offline, the chain is whole.
    let (code, output) = verify_offline(&app, &public);
    assert_eq!(code, 0, "{output}");

    // Removed from the store: the middle manifest of the chain.
    std::fs::remove_file(app.archive.join(&links[1].manifest_key)).unwrap();
    let (code, output) = verify_offline(&app, &public);
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains(&format!(
            "CHAIN BROKEN: the manifest before {} (sha256 {}) is not in the store",
            links[2].manifest_key, links[1].sha256
        )),
        "{output}"
    );
    let (code, output) = verify_with_database(&app, &private);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("MISSING"), "{output}");
    app.close().await;
}

#[tokio::test]
async fn concurrent_manifest_writes_on_postgresql_keep_one_line() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let (private, public) = generate_keys();
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn_on(
        &emulator,
        db,
        &[
            ("storage.manifest_signing_key", private.clone()),
            ("worker.concurrency", "8".into()),
        ],
    )
    .await;
    // Workers finishing recordings at once.
    archive_recordings(&app, &emulator, 12).await;

    // Then more writers at once, as another process would be: their own connection pools.
    let ids: Vec<i64> = recordings::list(app.queue(), 100, None)
        .await
        .unwrap()
        .into_iter()
        .map(|recording| recording.id)
        .collect();
    let archive = app.running().state.archive.clone();
    let mut writers = Vec::new();
    for process in 0..3 {
        let db = callvault::queue::Db::connect(&app.db.url, 4).await.unwrap();
        for id in ids.iter().copied().skip(process).step_by(3) {
            let (db, archive) = (db.clone(), archive.clone());
            writers.push(tokio::spawn(async move {
                refresh(&db, &archive, id).await.unwrap().unwrap();
            }));
        }
    }
    for writer in writers {
        writer.await.unwrap();
    }

    let links = manifest_chain::links(app.queue()).await.unwrap();
    assert_eq!(links.len(), 24);
    assert_eq!(links[0].previous_sha256, None);
    for pair in links.windows(2) {
        assert_eq!(
            pair[1].previous_sha256.as_deref(),
            Some(pair[0].sha256.as_str()),
            "link {} does not follow link {}",
            pair[1].id,
            pair[0].id
        );
    }
    let (code, output) = verify_with_database(&app, &private);
    assert_eq!((code, count(&output, "signed ok")), (0, 12), "{output}");
    assert!(output.contains("chain: 24 link(s) walked"), "{output}");
    let (code, output) = verify_offline(&app, &public);
    assert_eq!(code, 0, "{output}");
    app.close().await;
}

#[tokio::test]
async fn with_signing_configured_a_manifest_written_without_it_is_unsigned() {
    let (private, _) = generate_keys();
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn(&emulator, &[]).await;
    let start = start_time();
    let chunk = add_chunk(
        &emulator,
        "call-plain",
        "doc-plain",
        0,
        "SessionEnded",
        1_000,
    );
    let event = recording_file_status_updated(
        "evt-plain",
        "/recording/call/call-plain",
        start,
        &[chunk],
        "Mp4",
    );
    assert_eq!(app.post_events(&json!([event])).await.status(), 200);
    let folder = format!("call-plain/{}", start.format("%Y%m%dT%H%M%SZ"));
    let manifest = app.wait_for_manifest(Path::new(&folder), WAIT).await;
    assert!(manifest.get("signature").is_none(), "{manifest}");
    crate::support::eventually("the manifest recorded", WAIT, || async {
        let listed = recordings::list(app.queue(), 10, None).await.unwrap();
        listed
            .iter()
            .all(|recording| recording.manifest_key.is_some())
            .then_some(())
    })
    .await;

    let (code, output) = verify(
        &app.archive,
        &[("CALLVAULT__DATABASE__URL", &app.db.url)],
        &[],
    );
    assert_eq!(
        code, 0,
        "without a key nothing is said about signatures: {output}"
    );
    assert!(!output.contains("UNSIGNED"), "{output}");
    let (code, output) = verify_with_database(&app, &private);
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains(&format!("UNSIGNED           {folder}/manifest.json")),
        "{output}"
    );
    app.close().await;
}

/// `callvault config check` with an otherwise valid configuration and this signing key.
fn config_check(signing_key: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_callvault"))
        .args(["config", "check"])
        .env_clear()
        .env(
            "CALLVAULT__ACS__CONNECTION_STRING",
            "endpoint=https://x.communication.azure.com/;accesskey=aGVsbG8=",
        )
        .env("CALLVAULT__INGEST__SECRET", "a-webhook-secret")
        .env("CALLVAULT__STORAGE__MANIFEST_SIGNING_KEY", signing_key)
        .output()
        .unwrap()
}

#[test]
fn a_malformed_signing_key_stops_start_up_naming_the_key() {
    for bad in ["not base64 at all", "AAECAwQ="] {
        let output = config_check(bad);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("configuration key `storage.manifest_signing_key`"),
            "{stderr}"
        );
        assert!(
            !stderr.contains(bad),
            "the message repeats the key: {stderr}"
        );
    }
    let (private, _) = generate_keys();
    let output = config_check(&private);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout.contains("manifest_signing_key = \"<redacted>\"") && !stdout.contains(&private),
        "{stdout}"
    );
}

/// `callvault verify --public-key KEY` against the store these storage settings name, with
/// no database; returns (exit code, output).
fn verify_store_offline(storage: &[(&str, String)], public: &str) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_callvault"));
    command
        .args(["verify", "--public-key", public])
        .env("CALLVAULT__DATABASE__URL", NO_DATABASE);
    for (key, value) in storage {
        let name = format!("CALLVAULT__{}", key.to_ascii_uppercase().replace('.', "__"));
        command.env(name, value);
    }
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

async fn signed_manifests_verify_offline_on(storage: Vec<(&'static str, String)>) {
    let (private, public) = generate_keys();
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let mut settings = storage.clone();
    settings.push(("storage.manifest_signing_key", private));
    settings.push(("storage.prefix", "vault/".into()));
    let app = TestApp::spawn(&emulator, &settings).await;
    let folders = archive_recordings(&app, &emulator, 2).await;
    let mut offline = storage.clone();
    offline.push(("storage.prefix", "vault/".into()));
    let (code, output) = verify_store_offline(&offline, &public);
    assert_eq!((code, count(&output, "signed ok")), (0, 2), "{output}");
    assert!(output.contains("chain: 2 link(s) walked"), "{output}");

    // A manifest whose recorded size is changed, written back without the key.
    let archive = &app.running().state.archive;
    let key = object_store::path::Path::from(format!("vault/{}/manifest.json", folders[1]));
    let mut forged: Value = serde_json::from_slice(&archive.read(&key).await.unwrap()).unwrap();
    forged["chunks"][0]["media"]["bytes"] = 1.into();
    archive
        .put_bytes(&key, serde_json::to_vec(&forged).unwrap().into())
        .await
        .unwrap();
    let (code, output) = verify_store_offline(&offline, &public);
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains(&format!("SIGNATURE INVALID  {key}")),
        "{output}"
    );
    app.close().await;
}

#[tokio::test]
async fn signed_manifests_verify_offline_on_s3() {
    if let Some(storage) = s3_storage().await {
        signed_manifests_verify_offline_on(storage).await;
    }
}

#[tokio::test]
async fn signed_manifests_verify_offline_on_azure() {
    if let Some(storage) = azure_storage().await {
        signed_manifests_verify_offline_on(storage).await;
    }
}
