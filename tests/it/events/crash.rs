//! A `callvault serve` killed with SIGKILL after the event's commit, before any delivery was
//! accepted, delivers it after a restart.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use callvault::queue::Db;
use callvault_emulator::events::recording_file_status_updated;
use callvault_emulator::{Emulator, EmulatorConfig};
use serde_json::json;

use super::WAIT;
use super::receiver::{Receiver, WEBHOOK_SECRET};
use crate::pipeline::{add_chunk, start_time};
use crate::support::{SECRET, eventually, free_port, start_emulator};

fn config(dir: &Path, emulator: &Emulator, port: u16, hook: &str) -> std::path::PathBuf {
    let text = format!(
        r#"
[server]
bind = "127.0.0.1:{port}"
[database]
url = "sqlite://{dir}/callvault.db"
[acs]
connection_string = "{conn}"
allow_http = true
[ingest]
secret = "{SECRET}"
[storage]
path = "{dir}/archive"
[worker]
lease_secs = 2
poll_interval_ms = 50
[events]
allow_http = true
allow_private_addresses = true
backoff_initial_ms = 100
backoff_max_ms = 200
poll_interval_ms = 50
request_timeout_secs = 2
[[events.sinks]]
name = "pipeline"
kind = "webhook"
url = "{hook}"
secret = "{WEBHOOK_SECRET}"
[log]
format = "json"
level = "callvault=debug"
"#,
        dir = dir.display(),
        conn = emulator.connection_string()
    );
    let path = dir.join("callvault.toml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn serve(config: &Path, port: u16, log: &Path) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_callvault"))
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    eventually("callvault to answer /healthz", WAIT, || async {
        client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .ok()
            .filter(|r| r.status() == 200)
            .map(|_| ())
    })
    .await;
    child
}

#[tokio::test]
async fn a_process_killed_between_commit_and_delivery_delivers_after_restart() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(&[], Some(dir.path().join("archive")));
    receiver.answer_from_now(503);
    let port = free_port();
    let config = config(dir.path(), &emulator, port, &receiver.url);
    let mut first = serve(&config, port, &dir.path().join("first.log")).await;

    let chunk = add_chunk(
        &emulator,
        "call-crash",
        "doc-crash",
        0,
        "SessionEnded",
        20_000,
    );
    let event = recording_file_status_updated(
        "evt-crash",
        "/recording/call/call-crash",
        start_time(),
        &[chunk],
        "Mp4",
    );
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/api/events?code={SECRET}"))
        .json(&json!([event]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The event is committed (it is being offered) and nothing has accepted it.
    eventually("a delivery attempt", WAIT, || async {
        (!receiver.received().is_empty()).then_some(())
    })
    .await;
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(receiver.accepted().is_empty());

    receiver.answer_from_now(200);
    let mut second = serve(&config, port, &dir.path().join("second.log")).await;
    let delivered = eventually("the event delivered after the restart", WAIT, || async {
        receiver.accepted().into_iter().next()
    })
    .await;
    assert_eq!(delivered.event["type"], "com.callvault.recording.archived");
    assert_eq!(delivered.manifest_readable, Some(true));
    assert!(receiver.received().iter().all(|r| r.signature_ok));
    let db = Db::connect(
        &format!("sqlite://{}/callvault.db", dir.path().display()),
        1,
    )
    .await
    .unwrap();
    eventually("the row delivered", WAIT, || async {
        let state: String = sqlx::query_scalar("SELECT state FROM event_outbox")
            .fetch_one(db.pool())
            .await
            .unwrap();
        (state == "delivered").then_some(())
    })
    .await;
    assert_eq!(receiver.accepted().len(), 1);
    let listed = Command::new(env!("CARGO_BIN_EXE_callvault"))
        .args([
            "events",
            "list",
            "--json",
            "--state",
            "delivered",
            "--config",
        ])
        .arg(&config)
        .output()
        .unwrap();
    assert!(listed.status.success(), "{listed:?}");
    let rows: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(rows[0]["sink"], "pipeline");
    assert_eq!(rows[0]["event_id"], delivered.id.as_str());
    let replay = Command::new(env!("CARGO_BIN_EXE_callvault"))
        .args(["events", "replay", "--failed", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&replay.stdout).trim(),
        "replayed 0 failed event(s)"
    );
    second.kill().unwrap();
    second.wait().unwrap();
    receiver.stop().await;
}
