//! The webhook's contract with Event Grid: handshakes, auth, limits, bad input, duplicates.

use callvault_emulator::EmulatorConfig;
use serde_json::{Value, json};

use crate::support::{SECRET, TestApp, start_emulator};

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

async fn app() -> (callvault_emulator::Emulator, TestApp) {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn(&emulator, &[("server.max_body_bytes", "4096".into())]).await;
    (emulator, app)
}

async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_subscription_validation_handshake_echoes_the_code() {
    let (_emulator, app) = app().await;
    let response = app
        .post_events(&fixture("eventgrid-subscription-validation.json"))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"})
    );
}

#[tokio::test]
async fn the_cloud_events_options_handshake_allows_the_origin() {
    let (_emulator, app) = app().await;
    let response = app
        .client
        .request(reqwest::Method::OPTIONS, app.events_url())
        .header("WebHook-Request-Origin", "eventgrid.azure.net")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["webhook-allowed-origin"],
        "eventgrid.azure.net"
    );
    assert!(
        response.headers()["allow"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
}

#[tokio::test]
async fn a_missing_or_wrong_secret_is_refused_with_401() {
    let (_emulator, app) = app().await;
    let url = format!("{}/api/events", app.base);
    let missing = app.client.post(&url).json(&json!([])).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(error_code(missing).await, "unauthorized");
    let wrong = app
        .client
        .post(format!("{url}?code=nope"))
        .json(&json!([]))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let header = app
        .client
        .post(&url)
        .header("x-callvault-secret", SECRET)
        .json(&json!([]))
        .send()
        .await
        .unwrap();
    assert_eq!(header.status(), 200);
}

#[tokio::test]
async fn an_oversized_body_gets_413_whether_declared_or_streamed() {
    let (_emulator, app) = app().await;
    let big = format!("[{}]", "\"x\",".repeat(2000) + "\"x\"");
    let declared = app
        .client
        .post(app.events_url())
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(declared.status(), 413);
    assert_eq!(error_code(declared).await, "body_too_large");

    let pieces: Vec<Result<bytes::Bytes, std::io::Error>> = big
        .as_bytes()
        .chunks(500)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    let streamed = app
        .client
        .post(app.events_url())
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            pieces,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), 413);
}

#[tokio::test]
async fn a_body_that_is_not_an_event_array_gets_400_with_a_code() {
    let (_emulator, app) = app().await;
    let not_json = app
        .client
        .post(app.events_url())
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    assert_eq!(error_code(not_json).await, "invalid_json");
    let object = app.post_events(&json!({"id": "x"})).await;
    assert_eq!(object.status(), 400);
    assert_eq!(error_code(object).await, "not_an_event_array");
}

#[tokio::test]
async fn a_redelivered_event_id_is_accepted_and_ignored() {
    let (_emulator, app) = app().await;
    let event = fixture("recording-file-status-updated.preview.json");
    let first: Value = app.post_events(&event).await.json().await.unwrap();
    let again: Value = app.post_events(&event).await.json().await.unwrap();
    assert_eq!(first["accepted"], 1);
    assert_eq!(
        (again["accepted"].clone(), again["duplicates"].clone()),
        (json!(0), json!(1))
    );
    assert_eq!(app.jobs().await.len(), 1);
}

#[tokio::test]
async fn unknown_event_types_and_non_objects_do_not_refuse_the_batch() {
    let (_emulator, app) = app().await;
    let body = json!([
        {"id": "u1", "eventType": "Microsoft.Communication.CallStarted", "subject": "x", "data": {}},
        42
    ]);
    let response = app.post_events(&body).await;
    assert_eq!(response.status(), 200);
    let summary: Value = response.json().await.unwrap();
    assert_eq!(
        summary,
        json!({"accepted": 0, "duplicates": 0, "quarantined": 1, "ignored": 1})
    );
    let metrics = &app.running().state.metrics;
    assert_eq!(
        callvault::metrics::Metrics::get(&metrics.events_unknown_type),
        1
    );
}

#[tokio::test]
async fn recording_state_callbacks_are_stored() {
    let (_emulator, app) = app().await;
    let response = app
        .client
        .post(format!("{}/api/recording-state?code={SECRET}", app.base))
        .header("content-type", "application/cloudevents-batch+json")
        .body(serde_json::to_vec(&fixture("recording-state-changed.cloudevent.json")).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let state: String =
        sqlx::query_scalar("SELECT state FROM recording_state_events WHERE recording_id = $1")
            .bind("eyJQbGF0Zm9ybUVuZHBvaW50SWQiOiIxMjM0In0")
            .fetch_one(app.running().state.db.pool())
            .await
            .unwrap();
    assert_eq!(state, "active");
}

#[tokio::test]
async fn an_unavailable_database_gets_503_so_event_grid_retries() {
    let (_emulator, app) = app().await;
    app.running().state.db.close().await;
    let response = app
        .post_events(&fixture("recording-file-status-updated.preview.json"))
        .await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(error_code(response).await, "database_unavailable");
}
