//! callvault's own ACS clients (`AcsClient`, `UrlGuard`, `RecordingControl`) against the
//! emulator. These live here, not in the emulator crate, because the emulator does not
//! depend on callvault.

use std::time::Duration;

use callvault::acs::control::{CallLocator, RecordingControl, StartOptions};
use callvault::acs::{AcsClient, AcsCredentials, Fetch, UrlGuard};
use callvault_emulator::{DocumentSpec, Emulator, EmulatorConfig, MediaSpec, RecordingConfig};
use serde_json::{Value, json};

use crate::support::start_emulator;

// The emulator's own scripted webhook, shared rather than copied.
#[allow(dead_code)]
#[path = "../../crates/emulator/src/tests/subscriber.rs"]
mod subscriber;

use subscriber::{Subscriber, Validation};

/// The key every test emulator signs with.
const KEY: &[u8] = b"emulator-test-key-0123456789abcd";

fn config() -> EmulatorConfig {
    EmulatorConfig {
        access_key: KEY.to_vec(),
        delivery_retry_delays: vec![Duration::from_millis(10); 3],
        ..EmulatorConfig::default()
    }
}

async fn start() -> Emulator {
    start_emulator(config()).await
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn spec(document_id: &str, media: MediaSpec) -> DocumentSpec {
    DocumentSpec {
        document_id: document_id.into(),
        media,
        metadata: None,
        call_id: "call-1".into(),
        chunk_index: 0,
        created_at: chrono::Utc::now(),
    }
}

fn synthetic(len: u64) -> MediaSpec {
    MediaSpec::Synthetic { len, seed: 11 }
}

fn control(emulator: &Emulator, path: &str) -> url::Url {
    emulator.endpoint().join(path).unwrap()
}

fn client(emulator: &Emulator) -> RecordingControl {
    RecordingControl::new(AcsCredentials::parse(&emulator.connection_string()).unwrap()).unwrap()
}

#[tokio::test]
async fn callvaults_own_download_client_is_accepted() {
    let emulator = start().await;
    let media = synthetic(5000);
    let urls = emulator.add_document(spec("doc-client", media.clone()));
    let credentials = AcsCredentials::parse(&emulator.connection_string()).unwrap();
    let guard = UrlGuard::new(&[], &credentials.endpoint, true);
    let client = AcsClient::new(
        credentials.clone(),
        guard.clone(),
        std::time::Duration::from_secs(10),
    )
    .unwrap();
    let content = guard
        .ga_download(urls.content.as_str(), Fetch::Media, "doc-client")
        .unwrap();
    let response = client.get(&content, 4000).await.unwrap();
    assert_eq!(response.status(), 206);
    assert_eq!(response.bytes().await.unwrap(), media.read(4000, 5000));
    let preview = guard
        .preview(&credentials.endpoint, "doc-client", Fetch::Metadata)
        .unwrap();
    let metadata = client.get(&preview, 0).await.unwrap();
    assert_eq!(
        metadata.bytes().await.unwrap(),
        emulator.metadata_bytes("doc-client").unwrap()
    );
    client
        .delete(&guard.ga_delete(urls.delete.as_str(), "doc-client").unwrap())
        .await
        .unwrap();
    assert!(emulator.is_deleted("doc-client"));
    emulator.stop().await;
}

#[tokio::test]
async fn the_connection_string_names_the_endpoint_and_key() {
    let emulator = start().await;
    let credentials = AcsCredentials::parse(&emulator.connection_string()).unwrap();
    assert_eq!(credentials.endpoint, emulator.endpoint());
    assert_eq!(credentials.key(), KEY);
    assert_eq!(emulator.endpoint().path(), "/");
    assert_eq!(emulator.endpoint().host_str(), Some("127.0.0.1"));
    emulator.stop().await;
}
#[tokio::test]
async fn a_registered_call_is_recorded_and_announced_to_subscribers() {
    let emulator = start_emulator(EmulatorConfig {
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
