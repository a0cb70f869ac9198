//! Durable events: a receiver records every delivery and checks every signature. Each
//! archived recording yields one `archived` event per manifest version, never before its
//! manifest is readable; a refused delivery comes again after backoff; a failed one is
//! replayed from the admin API; a sink filtered to failures gets only those; the storage-queue
//! sink puts messages on Azurite; a process killed between commit and delivery still delivers;
//! erasures and failed verifications are announced (`announced`); a sink a 410 disabled stays
//! disabled across a restart until it is enabled (`disabled_sink`).

mod announced;
mod azure_queue;
mod crash;
mod disabled_sink;
mod receiver;

use std::time::Duration;

use callvault::queue::Db;
use callvault_emulator::events::recording_file_status_updated;
use callvault_emulator::{Emulator, EmulatorConfig, Fault};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::pipeline::{add_chunk, start_time};
use crate::support::{TestApp, TestDatabase, eventually, sha256_hex, start_emulator};
use receiver::{Receiver, WEBHOOK_SECRET};

const WAIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "events-admin-token";

fn webhook(name: &str, receiver: &Receiver, types: &[&str]) -> Value {
    json!({"name": name, "kind": "webhook", "url": receiver.url, "secret": WEBHOOK_SECRET, "types": types})
}

/// The settings that point events at loopback sinks, with fast retries.
fn event_settings(sinks: Value, extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut settings: Vec<(&'static str, String)> = vec![
        ("events.sinks", sinks.to_string()),
        ("events.source", "callvault-test".into()),
        ("events.allow_http", "true".into()),
        ("events.allow_private_addresses", "true".into()),
        ("events.backoff_initial_ms", "200".into()),
        ("events.backoff_max_ms", "400".into()),
        ("events.poll_interval_ms", "50".into()),
        ("events.request_timeout_secs", "5".into()),
        ("admin.token", TOKEN.into()),
    ];
    settings.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    settings
}

/// Announces a one-chunk recording ending the session; answers its folder.
async fn announce(
    app: &TestApp,
    emulator: &Emulator,
    call: &str,
    start: DateTime<Utc>,
    index: u32,
) -> String {
    let document = format!("doc-{call}-{index}");
    let chunk = add_chunk(emulator, call, &document, index, "SessionEnded", 40_000);
    let event = recording_file_status_updated(
        &format!("evt-{call}-{index}"),
        &format!("/recording/call/{call}/serverCallId/srv-{call}"),
        start,
        &[chunk],
        "Mp4",
    );
    let response = app.post_events(&json!([event])).await;
    assert_eq!(response.status(), 200);
    format!("{call}/{}", start.format("%Y%m%dT%H%M%SZ"))
}

async fn outbox_rows(db: &Db) -> Vec<(String, String, String, i64)> {
    sqlx::query_as("SELECT event_id, sink, state, attempts FROM event_outbox ORDER BY id")
        .fetch_all(db.pool())
        .await
        .unwrap()
}

async fn one_archived_event_per_manifest_version(db: TestDatabase) {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(&[], Some(dir.path().join("archive")));
    let settings = event_settings(json!([webhook("pipeline", &receiver, &[])]), &[]);
    let app = TestApp::launch(
        &emulator.connection_string(),
        db,
        callvault::app::Role::All,
        &[
            &settings[..],
            &[(
                "storage.path",
                dir.path().join("archive").display().to_string(),
            )],
        ]
        .concat(),
    )
    .await;
    let start = start_time();
    let folder = announce(&app, &emulator, "call-ev", start, 0).await;
    let first = eventually("the first archived event", WAIT, || async {
        receiver.accepted().into_iter().next()
    })
    .await;

    // The same manifest version written again (as the sweep does) announces nothing new.
    let recording: i64 = sqlx::query_scalar("SELECT id FROM recordings")
        .fetch_one(app.queue().pool())
        .await
        .unwrap();
    callvault::worker::manifest::refresh(app.queue(), &app.running().state.archive, recording)
        .await
        .unwrap()
        .unwrap();

    // A late chunk grows the manifest: a new version, a new event with the full set.
    announce(&app, &emulator, "call-ev", start, 1).await;
    let both = eventually("the second archived event", WAIT, || async {
        let accepted = receiver.accepted();
        (accepted.len() >= 2).then_some(accepted)
    })
    .await;
    let rows = eventually("every outbox row delivered", WAIT, || async {
        let rows = outbox_rows(app.queue()).await;
        rows.iter().all(|row| row.2 == "delivered").then_some(rows)
    })
    .await;
    assert_eq!(rows.len(), 2, "one row per manifest version: {rows:?}");
    let received = receiver.received();
    assert_eq!(
        received.len(),
        2,
        "each version delivered once: {received:?}"
    );
    assert!(received.iter().all(|r| r.signature_ok), "{received:?}");
    assert!(
        received.iter().all(|r| r.manifest_readable == Some(true)),
        "no event before its manifest: {received:?}"
    );

    let (v1, v2) = (&first.event, &both[1].event);
    assert_ne!(v1["id"], v2["id"]);
    assert_eq!(v1["subject"], v2["subject"]);
    assert_eq!(v1["specversion"], "1.0");
    assert_eq!(v1["source"], "callvault-test");
    assert_eq!(v1["type"], "com.callvault.recording.archived");
    assert_eq!(v1["data"]["callId"], "call-ev");
    assert_eq!(v1["data"]["serverCallId"], "srv-call-ev");
    assert_eq!(v1["data"]["chunkCount"], 1);
    assert_eq!(v2["data"]["chunkCount"], 2);
    assert_eq!(v1["data"]["storage"]["kind"], "local");
    assert_eq!(
        v2["data"]["manifest"]["key"],
        format!("{folder}/manifest.json")
    );
    for (index, chunk) in v2["data"]["chunks"].as_array().unwrap().iter().enumerate() {
        let document = format!("doc-call-ev-{index}");
        assert_eq!(chunk["documentId"], document.as_str());
        assert_eq!(
            chunk["media"]["sha256"],
            emulator.media_sha256(&document).unwrap().as_str()
        );
        let media = std::fs::read(
            dir.path()
                .join("archive")
                .join(chunk["media"]["key"].as_str().unwrap()),
        )
        .unwrap();
        assert_eq!(chunk["media"]["bytes"], media.len());
        assert_eq!(chunk["media"]["sha256"], sha256_hex(&media).as_str());
    }
    let manifest = std::fs::read(
        dir.path()
            .join("archive")
            .join(&folder)
            .join("manifest.json"),
    )
    .unwrap();
    assert_eq!(
        v2["data"]["manifest"]["sha256"],
        sha256_hex(&manifest).as_str()
    );
    receiver.stop().await;
    app.close().await;
}

#[tokio::test]
async fn each_manifest_version_is_announced_once_after_it_is_readable_on_sqlite() {
    one_archived_event_per_manifest_version(TestDatabase::sqlite().await).await;
}

#[tokio::test]
async fn each_manifest_version_is_announced_once_after_it_is_readable_on_postgresql() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    one_archived_event_per_manifest_version(db).await;
}

#[tokio::test]
async fn a_receiver_answering_500_gets_the_event_again_after_backoff() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let receiver = Receiver::start(&[500], None);
    let settings = event_settings(json!([webhook("flaky", &receiver, &["archived"])]), &[]);
    let app = TestApp::spawn(&emulator, &settings).await;
    announce(&app, &emulator, "call-flaky", start_time(), 0).await;
    let delivered = eventually("a delivery answered 200", WAIT, || async {
        receiver.accepted().into_iter().next()
    })
    .await;
    let received = receiver.received();
    assert_eq!(received.len(), 2, "{received:?}");
    assert_eq!(received[0].answered, 500);
    assert_eq!(
        received[0].id, delivered.id,
        "the same webhook-id on the retry"
    );
    assert!(received.iter().all(|r| r.signature_ok));
    let waited = delivered.at - received[0].at;
    assert!(
        waited >= Duration::from_millis(200),
        "the retry came after events.backoff_initial_ms, not {waited:?}"
    );
    let rows = eventually("the row delivered", WAIT, || async {
        let rows = outbox_rows(app.queue()).await;
        (rows.first()?.2 == "delivered").then_some(rows)
    })
    .await;
    assert_eq!(rows[0].3, 2, "two attempts recorded");
    receiver.stop().await;
    app.close().await;
}

async fn admin_get(app: &TestApp, path: &str) -> (u16, String) {
    let response = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn a_failed_event_is_replayed_from_the_admin_api(db: TestDatabase) {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let receiver = Receiver::start(&[], None);
    receiver.answer_from_now(503);
    let settings = event_settings(
        json!([webhook("down", &receiver, &[])]),
        &[("events.max_attempts", "2")],
    );
    let app = TestApp::spawn_on(&emulator, db, &settings).await;
    announce(&app, &emulator, "call-down", start_time(), 0).await;
    let failed: Value = eventually("the event to fail", WAIT, || async {
        let (status, body) = admin_get(&app, "/admin/events?state=failed&sink=down").await;
        assert_eq!(status, 200, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        (body["events"].as_array()?.len() == 1).then_some(body)
    })
    .await;
    let row = &failed["events"][0];
    assert_eq!(row["attempts"], 2);
    assert!(row["last_error"].as_str().unwrap().contains("503"), "{row}");
    let (_, metrics) = admin_get(&app, "/metrics").await;
    assert!(
        metrics.contains("callvault_event_outbox{sink=\"down\",state=\"failed\"} 1"),
        "{metrics}"
    );
    assert_eq!(receiver.received().len(), 2);

    receiver.answer_from_now(200);
    let (status, body) = admin_get(&app, "/admin/events?state=nonsense").await;
    assert_eq!(status, 400, "{body}");
    let response = app
        .client
        .post(format!("{}/admin/events/replay", app.base))
        .bearer_auth(TOKEN)
        .json(&json!({"state": "failed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["replayed"], 1);
    let accepted = eventually("the replayed event delivered", WAIT, || async {
        receiver.accepted().into_iter().next()
    })
    .await;
    assert_eq!(accepted.id, row["event_id"].as_str().unwrap());
    assert!(receiver.received().iter().all(|r| r.signature_ok));
    receiver.stop().await;
    app.close().await;
}

#[tokio::test]
async fn a_failed_event_is_replayed_from_the_admin_api_on_sqlite() {
    a_failed_event_is_replayed_from_the_admin_api(TestDatabase::sqlite().await).await;
}

#[tokio::test]
async fn a_failed_event_is_replayed_from_the_admin_api_on_postgresql() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    a_failed_event_is_replayed_from_the_admin_api(db).await;
}

async fn a_sink_filtered_to_failures_receives_only_failures(db: TestDatabase) {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let everything = Receiver::start(&[], None);
    let failures = Receiver::start(&[], None);
    let settings = event_settings(
        json!([
            webhook("everything", &everything, &[]),
            webhook("failures", &failures, &["failed"])
        ]),
        &[("worker.max_attempts", "1")],
    );
    let app = TestApp::spawn_on(&emulator, db, &settings).await;
    announce(&app, &emulator, "call-fine", start_time(), 0).await;
    emulator.set_fault(
        "doc-call-broken-0",
        Fault::Status {
            status: 500,
            times: 100,
        },
    );
    announce(&app, &emulator, "call-broken", start_time(), 0).await;
    let all = eventually("an archived and a failed event", WAIT, || async {
        let accepted = everything.accepted();
        (accepted.len() >= 2).then_some(accepted)
    })
    .await;
    let mut types: Vec<&str> = all
        .iter()
        .map(|r| r.event["type"].as_str().unwrap())
        .collect();
    types.sort();
    assert_eq!(
        types,
        [
            "com.callvault.recording.archived",
            "com.callvault.recording.failed"
        ]
    );
    let only = eventually("the failure at the filtered sink", WAIT, || async {
        failures.accepted().into_iter().next()
    })
    .await;
    let failure = &only.event;
    assert_eq!(failure["type"], "com.callvault.recording.failed");
    assert_eq!(failure["data"]["callId"], "call-broken");
    assert_eq!(failure["data"]["state"], "failed");
    assert_eq!(failure["data"]["chunkIndex"], 0);
    assert!(
        failure["data"]["reason"].as_str().unwrap().contains("500"),
        "{failure}"
    );
    eventually("every row delivered", WAIT, || async {
        outbox_rows(app.queue())
            .await
            .iter()
            .all(|row| row.2 == "delivered")
            .then_some(())
    })
    .await;
    assert_eq!(failures.received().len(), 1, "{:?}", failures.received());
    assert!(
        everything
            .received()
            .iter()
            .chain(&failures.received())
            .all(|r| r.signature_ok)
    );
    everything.stop().await;
    failures.stop().await;
    app.close().await;
}

#[tokio::test]
async fn a_sink_filtered_to_failures_receives_only_failures_on_sqlite() {
    a_sink_filtered_to_failures_receives_only_failures(TestDatabase::sqlite().await).await;
}

#[tokio::test]
async fn a_sink_filtered_to_failures_receives_only_failures_on_postgresql() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    a_sink_filtered_to_failures_receives_only_failures(db).await;
}

#[tokio::test]
async fn the_documented_consumer_checks_the_signature_every_archived_file_and_an_erasure() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let port = crate::support::free_port();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/examples/consume_events.py"
    );
    let mut consumer = std::process::Command::new("python3")
        .arg("-u")
        .arg(script)
        .args(["--port", &port.to_string(), "--archive"])
        .arg(&archive)
        .env("CALLVAULT_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs the consumer");
    eventually("the consumer to listen", WAIT, || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    let sinks = json!([{"name": "consumer", "kind": "webhook", "url": format!("http://127.0.0.1:{port}/"),
        "secret": WEBHOOK_SECRET}]);
    let settings = event_settings(sinks, &[]);
    let app = TestApp::launch(
        &emulator.connection_string(),
        TestDatabase::sqlite().await,
        callvault::app::Role::All,
        &[
            &settings[..],
            &[("storage.path", archive.display().to_string())],
        ]
        .concat(),
    )
    .await;
    announce(&app, &emulator, "call-consumer", start_time(), 0).await;
    eventually("the consumer to accept the event", WAIT, || async {
        let rows = outbox_rows(app.queue()).await;
        (rows.first()?.2 == "delivered").then_some(())
    })
    .await;
    // An erasure: the consumer says what to forget and checks the tombstone.
    let erased = app
        .client
        .post(format!("{}/admin/recordings/1/erase", app.base))
        .bearer_auth(TOKEN)
        .json(&json!({"reason": "asked by the caller"}))
        .send()
        .await
        .unwrap();
    assert_eq!(erased.status(), 200);
    eventually("the consumer to accept the erasure", WAIT, || async {
        let rows = outbox_rows(app.queue()).await;
        (rows.len() == 2 && rows.iter().all(|row| row.2 == "delivered")).then_some(())
    })
    .await;
    consumer.kill().unwrap();
    let output = consumer.wait_with_output().unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        printed.contains("chunk 0 media: call-consumer/"),
        "{printed}"
    );
    assert!(
        printed.contains("chunk 0 metadata: call-consumer/"),
        "{printed}"
    );
    assert!(
        printed.contains("erased by admin (request): asked by the caller"),
        "{printed}"
    );
    assert!(printed.contains("tombstone call-consumer/"), "{printed}");
    assert_eq!(printed.matches(" ok\n").count(), 3, "{printed}");
    assert!(!printed.contains("MISMATCH"), "{printed}");
    app.close().await;
}

#[tokio::test]
async fn the_event_grid_topic_sink_posts_each_cloud_event_with_the_topic_key() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let topic = Receiver::start(&[503], None);
    let sinks = json!([{"name": "topic", "kind": "eventgrid_topic", "url": topic.url,
        "secret": "topic-access-key", "types": ["archived"]}]);
    let app = TestApp::spawn(&emulator, &event_settings(sinks, &[])).await;
    announce(&app, &emulator, "call-topic", start_time(), 0).await;
    let accepted = eventually("the event at the topic", WAIT, || async {
        topic.accepted().into_iter().next()
    })
    .await;
    assert_eq!(accepted.aeg_sas_key, "topic-access-key");
    assert_eq!(accepted.event["type"], "com.callvault.recording.archived");
    assert_eq!(accepted.event["data"]["callId"], "call-topic");
    assert_eq!(topic.received().len(), 2, "the 503 was retried");
    topic.stop().await;
    app.close().await;
}
