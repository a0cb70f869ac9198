//! RecordingStateChanged: POSTed to `recordingStateCallbackUri` on every change of state,
//! retried a little, and never in the way of the API's answer.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix_web::{App, HttpResponse, HttpServer, web};
use callvault::acs::control::StartOptions;
use serde_json::Value;

use super::*;
use crate::support::{SECRET, TestApp};

/// The states callvault stored for a recording, oldest first.
async fn stored_states(app: &TestApp, recording_id: &str) -> Vec<(String, Option<String>)> {
    sqlx::query_as(
        "SELECT state, server_call_id FROM recording_state_events WHERE recording_id = $1 ORDER BY event_time",
    )
    .bind(recording_id)
    .fetch_all(app.running().state.db.pool())
    .await
    .unwrap()
}

async fn wait_for_states(app: &TestApp, recording_id: &str, count: usize) -> Vec<String> {
    eventually(&format!("{count} stored states"), WAIT, || async {
        let states = stored_states(app, recording_id).await;
        (states.len() >= count).then(|| states.into_iter().map(|(state, _)| state).collect())
    })
    .await
}

#[tokio::test]
async fn every_change_of_state_reaches_callvaults_recording_state_endpoint() {
    let emulator = emulator().await;
    let app = TestApp::spawn(&emulator, &[]).await;
    let client = client(&emulator);
    let callback = format!("{}/api/recording-state?code={SECRET}", app.base);
    let call = ga("srv-callback");
    let options = StartOptions {
        recording_state_callback_uri: Some(callback),
        ..options("audio", "mixed", "wav")
    };
    let id = client.start(&call, &options).await.unwrap().recording_id;
    wait_for_states(&app, &id, 1).await;
    client.pause(&call, &id).await.unwrap();
    wait_for_states(&app, &id, 2).await;
    client.resume(&call, &id).await.unwrap();
    wait_for_states(&app, &id, 3).await;
    client.stop(&call, &id).await.unwrap();
    let states = wait_for_states(&app, &id, 4).await;
    assert_eq!(states, ["active", "inactive", "active", "inactive"]);
    let stored = stored_states(&app, &id).await;
    assert!(
        stored
            .iter()
            .all(|(_, server_call_id)| server_call_id.as_deref() == Some("srv-callback"))
    );
}

#[tokio::test]
async fn a_recording_started_paused_announces_inactive_first() {
    let emulator = emulator().await;
    let app = TestApp::spawn(&emulator, &[]).await;
    let client = client(&emulator);
    let call = ga("srv-callback-paused");
    let options = StartOptions {
        recording_state_callback_uri: Some(format!(
            "{}/api/recording-state?code={SECRET}",
            app.base
        )),
        pause_on_start: true,
        ..StartOptions::default()
    };
    let id = client.start(&call, &options).await.unwrap().recording_id;
    wait_for_states(&app, &id, 1).await;
    client.resume(&call, &id).await.unwrap();
    assert_eq!(wait_for_states(&app, &id, 2).await, ["inactive", "active"]);
}

/// A callback that answers 503 to its first `failures` POSTs, then 200; it keeps what
/// it was sent and what it answered.
async fn flaky_callback(failures: usize) -> (url::Url, Arc<Mutex<Vec<(u16, Value)>>>) {
    let seen: Arc<Mutex<Vec<(u16, Value)>>> = Arc::default();
    let kept = seen.clone();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = url::Url::parse(&format!(
        "http://{}/callback",
        listener.local_addr().unwrap()
    ))
    .unwrap();
    let server = HttpServer::new(move || {
        let seen = kept.clone();
        App::new().route(
            "/callback",
            web::post().to(move |body: web::Json<Value>| {
                let seen = seen.clone();
                async move {
                    let mut seen = seen.lock().unwrap();
                    let status = if seen.len() < failures { 503 } else { 200 };
                    seen.push((status, body.into_inner()));
                    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
                        .finish()
                }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    (url, seen)
}

#[tokio::test]
async fn a_failing_callback_is_retried_with_a_cloud_event_batch() {
    let emulator = emulator().await;
    let (callback, seen) = flaky_callback(1).await;
    let client = client(&emulator);
    let call = ga("srv-flaky");
    let options = StartOptions {
        recording_state_callback_uri: Some(callback.to_string()),
        ..StartOptions::default()
    };
    let id = client.start(&call, &options).await.unwrap().recording_id;
    let seen = eventually("a retried callback", WAIT, || async {
        let seen = seen.lock().unwrap().clone();
        (seen.len() >= 2).then_some(seen)
    })
    .await;
    assert_eq!(seen[0].0, 503);
    assert_eq!(seen[1].0, 200);
    assert_eq!(seen[0].1, seen[1].1, "the same event is sent again");
    let event = &seen[1].1[0];
    assert_eq!(
        event["type"],
        "Microsoft.Communication.RecordingStateChanged"
    );
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["data"]["recordingId"], id.as_str());
    assert_eq!(event["data"]["state"], "active");
    assert_eq!(event["data"]["serverCallId"], "srv-flaky");
}

#[tokio::test]
async fn an_unreachable_callback_does_not_slow_the_api() {
    let emulator = emulator().await;
    // A port that was just free: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = client(&emulator);
    let call = ga("srv-unreachable");
    let options = StartOptions {
        recording_state_callback_uri: Some(format!("http://127.0.0.1:{port}/callback")),
        ..StartOptions::default()
    };
    let began = Instant::now();
    let id = client.start(&call, &options).await.unwrap().recording_id;
    client.pause(&call, &id).await.unwrap();
    client.resume(&call, &id).await.unwrap();
    client.stop(&call, &id).await.unwrap();
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "took {:?}",
        began.elapsed()
    );
    assert_eq!(emulator.recording(&id).unwrap().state, "stopped");
}
