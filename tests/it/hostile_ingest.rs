//! Deliveries built to cost as much as possible: every one ends bounded (a few rows, a
//! capped payload, or a 413 before its events are read) and the probes stay honest.

use callvault_emulator::EmulatorConfig;
use serde_json::{Value, json};

use crate::support::{TestApp, start_emulator};

async fn app() -> (callvault_emulator::Emulator, TestApp) {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn(&emulator, &[]).await;
    (emulator, app)
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

async fn count(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(app.running().state.db.pool())
        .await
        .unwrap()
}

async fn post_raw(app: &TestApp, body: String) -> (u16, Value) {
    let response = app
        .client
        .post(app.events_url())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// One event with `chunks` chunks whose indices all collide (0, 0, 0, …).
fn colliding_chunks_event(chunks: usize) -> Value {
    let chunk = |n: usize| {
        let doc = format!("0-eus-d12-{n:032x}");
        let base = format!("https://us-storage.asm.skype.com/v1/objects/{doc}");
        json!({
            "documentId": doc, "index": 0, "endReason": "ChunkMaximumSizeExceeded",
            "contentLocation": format!("{base}/content/video"),
            "metadataLocation": format!("{base}/content/acsmetadata"),
            "deleteLocation": format!("{base}/content/deletedata"),
        })
    };
    let mut event = fixture("recording-file-status-updated.ga.json")[0].clone();
    event["data"]["recordingStorageInfo"]["recordingChunks"] =
        (0..chunks).map(chunk).collect::<Vec<_>>().into();
    event
}

#[tokio::test]
async fn a_3_mb_event_of_colliding_chunks_is_one_bounded_quarantine_row() {
    let (_emulator, app) = app().await;
    let body = serde_json::to_string(&json!([colliding_chunks_event(8_000)])).unwrap();
    assert!(body.len() > 3_000_000, "{} bytes", body.len());
    let (status, summary) = post_raw(&app, body.clone()).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["quarantined"], 1, "{summary}");

    let (reason, stored, full, truncated): (String, String, i64, i64) =
        sqlx::query_as("SELECT reason, payload, payload_bytes, payload_truncated FROM quarantine")
            .fetch_one(app.running().state.db.pool())
            .await
            .unwrap();
    assert!(reason.contains("8000 chunks"), "{reason}");
    assert!(reason.contains("at most 1000"), "{reason}");
    assert!(stored.len() <= 64 * 1024, "{} bytes stored", stored.len());
    assert!(full > 3_000_000);
    assert_eq!(truncated, 1);
    assert_eq!(count(&app, "jobs").await, 0);
}

#[tokio::test]
async fn a_thousand_chunks_sharing_one_index_are_refused_as_a_duplicate_index() {
    let (_emulator, app) = app().await;
    let (status, summary) = post_raw(
        &app,
        serde_json::to_string(&json!([colliding_chunks_event(1_000)])).unwrap(),
    )
    .await;
    assert_eq!((status, summary["quarantined"].clone()), (200, json!(1)));
    let reason: String = sqlx::query_scalar("SELECT reason FROM quarantine")
        .fetch_one(app.running().state.db.pool())
        .await
        .unwrap();
    assert_eq!(reason, "chunk index 0 appears twice in the event");
}

#[tokio::test]
async fn a_delivery_of_5001_events_gets_413_and_5000_are_stored() {
    let (_emulator, app) = app().await;
    let events = |n: usize| -> String {
        let events: Vec<Value> = (0..n)
            .map(|i| json!({"id": format!("e-{i}"), "eventType": "Microsoft.Communication.CallStarted", "subject": "s", "data": {}}))
            .collect();
        serde_json::to_string(&events).unwrap()
    };
    let (status, body) = post_raw(&app, events(5_001)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("too_many_events")),
        "{body}"
    );
    assert_eq!(count(&app, "events").await, 0);

    let (status, summary) = post_raw(&app, events(5_000)).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["ignored"], 5_000);
}

#[tokio::test]
async fn two_million_zeros_get_413_and_leave_quarantine_empty() {
    let (_emulator, app) = app().await;
    let body = format!("[{}]", vec!["0"; 2_000_000].join(","));
    assert!(body.len() < 4 * 1024 * 1024);
    let (status, answer) = post_raw(&app, body).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (413, Some("too_many_events")),
        "{answer}"
    );
    assert_eq!(count(&app, "quarantine").await, 0);

    // Up to the cap, non-objects are quarantined: a bounded number of rows.
    let (status, summary) = post_raw(&app, format!("[{}]", vec!["0"; 5_000].join(","))).await;
    assert_eq!(status, 200);
    assert_eq!(summary["quarantined"], 5_000);
    assert_eq!(count(&app, "quarantine").await, 5_000);
}

#[tokio::test]
async fn the_server_call_id_and_recording_id_subject_is_accepted_and_keyed_by_its_recording_id() {
    let (emulator, app) = app().await;
    // Downloads pointed at the emulator, so the workers never leave loopback.
    let endpoint = emulator.endpoint().to_string();
    let sample = serde_json::to_string(&fixture(
        "recording-file-status-updated.ga-recording-id.json",
    ))
    .unwrap()
    .replace("https://us-storage.asm.skype.com/", &endpoint);
    let (status, summary) = post_raw(&app, sample).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["accepted"], 1, "{summary}");
    let (recording_id, server_call_id): (Option<String>, Option<String>) =
        sqlx::query_as("SELECT recording_id, server_call_id FROM recordings")
            .fetch_one(app.running().state.db.pool())
            .await
            .unwrap();
    assert_eq!(
        recording_id.as_deref(),
        Some("eyJQbGF0Zm9ybUVuZHBvaW50SWQiOiI1Njc4In0")
    );
    assert!(server_call_id.unwrap().starts_with("aHR0cHM6"));
    assert_eq!(count(&app, "jobs").await, 2);
}

#[tokio::test]
async fn readyz_names_the_dependency_that_is_down_without_its_error() {
    let (_emulator, app) = app().await;
    let ready = app
        .client
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<Value>().await.unwrap(),
        json!({"database": "ok", "storage": "ok"})
    );

    app.running().state.db.close().await;
    let down = app
        .client
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(down.status(), 503);
    assert_eq!(
        down.json::<Value>().await.unwrap(),
        json!({"database": "down", "storage": "ok"})
    );
}
