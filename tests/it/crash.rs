//! Crashes and shutdowns: a killed process loses nothing and archives exactly once; a graceful
//! stop leaves no partial object.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use callvault::queue::{Db, JobState, jobs};
use callvault_emulator::events::recording_file_status_updated;
use callvault_emulator::{Emulator, EmulatorConfig, Fault};
use serde_json::json;

use crate::pipeline::{add_chunk, assert_chunk_archived, start_time};
use crate::support::{
    SECRET, TestApp, TestDatabase, eventually, files_under, free_port, start_emulator,
};

const WAIT: Duration = Duration::from_secs(30);

/// A `callvault serve` child process with its own config file.
struct Served {
    child: Child,
    base: String,
}

fn write_config(dir: &Path, emulator: &Emulator, port: u16) -> PathBuf {
    let config = format!(
        r#"
[server]
bind = "127.0.0.1:{port}"
[database]
url = "sqlite://{dir}/callvault.db"
[acs]
connection_string = "{conn}"
allow_http = true
request_timeout_secs = 5
[ingest]
secret = "{SECRET}"
[storage]
path = "{dir}/archive"
[worker]
lease_secs = 2
poll_interval_ms = 50
backoff_initial_ms = 50
backoff_max_ms = 200
[log]
format = "json"
level = "callvault=debug"
"#,
        dir = dir.display(),
        conn = emulator.connection_string()
    );
    let path = dir.join("callvault.toml");
    std::fs::write(&path, config).unwrap();
    path
}

async fn serve(config: &Path, port: u16, log: &Path) -> Served {
    let child = Command::new(env!("CARGO_BIN_EXE_callvault"))
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    eventually("callvault to answer /healthz", WAIT, || async {
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .ok()
            .filter(|r| r.status() == 200)
            .map(|_| ())
    })
    .await;
    Served { child, base }
}

#[tokio::test]
async fn a_process_killed_mid_transfer_is_archived_exactly_once_after_restart() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), &emulator, port);
    let start = start_time();
    let chunk = add_chunk(
        &emulator,
        "call-kill",
        "doc-kill",
        0,
        "SessionEnded",
        2_000_000,
    );
    emulator.set_fault(
        "doc-kill",
        Fault::Throttle {
            bytes_per_second: 250_000,
        },
    );

    let mut first = serve(&config, port, &dir.path().join("first.log")).await;
    let event = recording_file_status_updated(
        "evt-kill",
        "/recording/call/call-kill",
        start,
        &[chunk],
        "Mp4",
    );
    let response = reqwest::Client::new()
        .post(format!("{}/api/events?code={SECRET}", first.base))
        .json(&json!([event]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    eventually("the media download to be under way", WAIT, || async {
        emulator
            .requests()
            .iter()
            .any(|r| r.path == "/v1/objects/doc-kill/content/video" && r.status < 300)
            .then_some(())
    })
    .await;
    first.child.kill().unwrap();
    first.child.wait().unwrap();

    let db = Db::connect(
        &format!("sqlite://{}/callvault.db", dir.path().display()),
        1,
    )
    .await
    .unwrap();
    let stranded = jobs::list(&db, None, 10).await.unwrap();
    assert_eq!(
        stranded[0].state(),
        JobState::Running,
        "the kill left the job running under a lease"
    );

    emulator.set_fault(
        "doc-kill",
        Fault::Throttle {
            bytes_per_second: 1_000_000_000,
        },
    );
    let mut second = serve(&config, port, &dir.path().join("second.log")).await;
    let archived = eventually(
        "the job to be archived by the restarted process",
        WAIT,
        || async {
            let jobs = jobs::list(&db, None, 10).await.unwrap();
            (jobs[0].state() == JobState::Archived).then_some(jobs)
        },
    )
    .await;
    assert_eq!(archived.len(), 1);
    assert_eq!(
        archived[0].attempts, 2,
        "the lapsed lease counts as one attempt, the takeover as the second"
    );
    let outcomes: Vec<Option<String>> =
        sqlx::query_scalar("SELECT outcome FROM attempts ORDER BY attempt")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(
        outcomes,
        [Some("lease-lost".to_owned()), Some("archived".to_owned())]
    );

    let archive = dir.path().join("archive");
    let folder = format!("call-kill/{}", start.format("%Y%m%dT%H%M%SZ"));
    assert_chunk_archived(&emulator, &archive, &folder, 0, "doc-kill", "mp4");
    let manifest = archive.join(&folder).join("manifest.json");
    eventually("the manifest", WAIT, || async {
        manifest.exists().then_some(())
    })
    .await;
    let files = files_under(&archive);
    assert_eq!(
        files.len(),
        3,
        "media, metadata and manifest, no staging leftovers: {files:?}"
    );

    // SIGTERM drains and exits cleanly.
    let status = Command::new("kill")
        .args(["-TERM", &second.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || second.child.wait().unwrap())
        .await
        .unwrap();
    assert!(
        exit.success(),
        "callvault exits 0 after SIGTERM, got {exit:?}"
    );
}

#[tokio::test]
async fn a_graceful_stop_mid_transfer_leaves_no_partial_object_and_releases_the_job() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let mut app = TestApp::spawn(&emulator, &[]).await;
    let chunk = add_chunk(
        &emulator,
        "call-stop",
        "doc-stop",
        0,
        "SessionEnded",
        2_000_000,
    );
    emulator.set_fault(
        "doc-stop",
        Fault::Throttle {
            bytes_per_second: 200_000,
        },
    );
    let event = recording_file_status_updated(
        "evt-stop",
        "/recording/call/call-stop",
        start_time(),
        &[chunk],
        "Mp4",
    );
    app.post_events(&json!([event])).await;
    eventually("the media download to be under way", WAIT, || async {
        emulator
            .requests()
            .iter()
            .any(|r| r.path == "/v1/objects/doc-stop/content/video" && r.status < 300)
            .then_some(())
    })
    .await;
    let db_url = app.db.url.clone();
    app.stop().await;

    assert!(
        files_under(&app.archive).is_empty(),
        "no object, partial or staged: {:?}",
        files_under(&app.archive)
    );
    let db = Db::connect(&db_url, 1).await.unwrap();
    let job = &jobs::list(&db, None, 10).await.unwrap()[0];
    assert_eq!(
        (job.state(), job.attempts),
        (JobState::Pending, 0),
        "released without spending an attempt"
    );
}

#[tokio::test]
async fn a_manifest_write_interrupted_after_the_last_archive_is_completed_at_start() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let mut app = TestApp::spawn(&emulator, &[]).await;
    let start = start_time();
    let chunk = add_chunk(
        &emulator,
        "call-sweep",
        "doc-sweep",
        0,
        "SessionEnded",
        3_000,
    );
    let event = recording_file_status_updated(
        "evt-sweep",
        "/recording/call/call-sweep",
        start,
        &[chunk],
        "Mp4",
    );
    app.post_events(&json!([event])).await;
    let folder = format!("call-sweep/{}", start.format("%Y%m%dT%H%M%SZ"));
    app.wait_for_manifest(Path::new(&folder), WAIT).await;
    app.stop().await;

    // As if the process had died between archiving the chunk and writing the manifest.
    let manifest = app.archive.join(&folder).join("manifest.json");
    std::fs::remove_file(&manifest).unwrap();
    let db = Db::connect(&app.db.url, 1).await.unwrap();
    sqlx::query("UPDATE recordings SET manifest_key = NULL, manifest_written_at = NULL")
        .execute(db.pool())
        .await
        .unwrap();

    let archive = ("storage.path", app.archive.display().to_string());
    let _restarted =
        TestApp::spawn_on(&emulator, TestDatabase::existing(&app.db.url), &[archive]).await;
    // The restarted app writes into the first app's archive folder.
    let rewritten = app.wait_for_manifest(Path::new(&folder), WAIT).await;
    assert_eq!(rewritten["chunks"][0]["documentId"], "doc-sweep");
    let media_gets = emulator
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/objects/doc-sweep/content/video")
        .count();
    assert_eq!(media_gets, 1, "the chunk is not downloaded again");
}
