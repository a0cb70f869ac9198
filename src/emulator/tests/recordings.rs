//! Recordings over the unsigned control surface: registering a call's participants,
//! reading what a recording became, and its RecordingFileStatusUpdated reaching a
//! subscriber after the configured delay.

use std::time::Duration;

use serde_json::{Value, json};

use super::subscriber::{Subscriber, Validation};
use super::*;
use crate::acs::AcsCredentials;
use crate::acs::control::{CallLocator, RecordingControl, StartOptions};
use crate::emulator::RecordingConfig;

fn control(emulator: &Emulator, path: &str) -> url::Url {
    emulator.endpoint().join(path).unwrap()
}

fn client(emulator: &Emulator) -> RecordingControl {
    RecordingControl::new(AcsCredentials::parse(&emulator.connection_string()).unwrap()).unwrap()
}

#[tokio::test]
async fn a_registered_call_is_recorded_and_announced_to_subscribers() {
    let emulator = start_with(EmulatorConfig {
        recording: RecordingConfig {
            file_ready_delay: Duration::from_millis(50),
            ..RecordingConfig::default()
        },
        ..config()
    })
    .await;
    let subscriber = Subscriber::start(Validation::Echo, &[], None).await;
    emulator.set_subscribers(vec![subscriber.url.clone()]);
    let registered = http()
        .post(control(&emulator, "emulator/calls"))
        .json(&json!({ "serverCallId": "srv-http", "participants": ["8:acs:x", "8:acs:y"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let registered: Value = registered.json().await.unwrap();
    let call_id = registered["callId"].as_str().unwrap().to_owned();

    let call = CallLocator::ServerCall("srv-http".into());
    let client = client(&emulator);
    let id = client
        .start(&call, &StartOptions::default())
        .await
        .unwrap()
        .recording_id;
    client.stop(&call, &id).await.unwrap();

    let encoded = url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>();
    let recording: Value = http()
        .get(control(
            &emulator,
            &format!("emulator/recordings/{encoded}"),
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(recording["state"], "stopped");
    assert_eq!(recording["callId"], call_id.as_str());
    assert_eq!(recording["participants"], json!(["8:acs:x", "8:acs:y"]));
    let documents = recording["documentIds"].as_array().unwrap();
    assert_eq!(documents.len(), 1);

    let started = std::time::Instant::now();
    let delivered = loop {
        if let Some(notification) = subscriber.notifications().first() {
            break notification.body.clone();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no delivery");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        delivered[0]["subject"],
        format!("/recording/call/{call_id}/serverCallId/srv-http")
    );
    assert_eq!(
        delivered[0]["data"]["recordingStorageInfo"]["recordingChunks"][0]["documentId"],
        documents[0]
    );
    assert_eq!(delivered[0], recording["fileStatusEvent"]);
    subscriber.stop().await;
    emulator.stop().await;
}

#[tokio::test]
async fn bad_calls_are_400_and_unknown_recordings_404() {
    let emulator = start().await;
    for body in [
        json!({ "serverCallId": "", "participants": ["8:acs:x"] }),
        json!({ "serverCallId": "s", "participants": [""] }),
        json!({ "serverCallId": "s" }),
    ] {
        let response = http()
            .post(control(&emulator, "emulator/calls"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
    }
    let missing = http()
        .get(control(&emulator, "emulator/recordings/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    emulator.stop().await;
}
