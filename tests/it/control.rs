//! These stay in callvault's tests, not the emulator crate's: they test callvault's own control
//! client, and the emulator does not depend on callvault.
//! The recording control API: callvault's `RecordingControl` client against the emulator,
//! in both API generations, and what a recording becomes (chunks, metadata, media, events).

mod api;
mod callbacks;
mod end_to_end;
mod errors;
mod media;

use std::time::Duration;

use callvault::acs::AcsCredentials;
use callvault::acs::control::{
    CallLocator, ControlError, RecordingControl, StartOptions, conversation_id,
};
use callvault::acs::signing;
use callvault_emulator::{Emulator, EmulatorConfig, RecordingConfig, RecordingSnapshot};
use serde_json::Value;

use crate::support::{eventually, start_emulator};

const WAIT: Duration = Duration::from_secs(20);

/// An emulator whose files are ready at once and whose deliveries retry quickly.
pub fn config(recording: RecordingConfig) -> EmulatorConfig {
    EmulatorConfig {
        delivery_retry_delays: vec![Duration::from_millis(50); 3],
        recording: RecordingConfig {
            file_ready_delay: Duration::ZERO,
            ..recording
        },
        ..EmulatorConfig::default()
    }
}

pub async fn emulator() -> Emulator {
    start_emulator(config(RecordingConfig::default())).await
}

pub fn credentials(emulator: &Emulator) -> AcsCredentials {
    AcsCredentials::parse(&emulator.connection_string()).unwrap()
}

pub fn client(emulator: &Emulator) -> RecordingControl {
    RecordingControl::new(credentials(emulator)).unwrap()
}

pub fn ga(server_call_id: &str) -> CallLocator {
    CallLocator::ServerCall(server_call_id.into())
}

/// A preview locator for a conversation URL of its own.
pub fn preview(name: &str) -> CallLocator {
    CallLocator::Conversation(conversation_id(&format!(
        "https://conv-euno-01.conv.skype.com/conv/{name}?i=10&e=638000000000000000"
    )))
}

/// Start options for GA audio of `format` (`mp3`, `wav`) or the defaults for `mp4`.
pub fn options(content: &str, channel: &str, format: &str) -> StartOptions {
    StartOptions {
        recording_content_type: Some(content.into()),
        recording_channel_type: Some(channel.into()),
        recording_format_type: Some(format.into()),
        ..StartOptions::default()
    }
}

/// The status and code of an API error; panics on success or another kind of error.
pub fn api_error<T: std::fmt::Debug>(result: Result<T, ControlError>) -> (u16, String) {
    match result {
        Err(ControlError::Api { status, code, .. }) => (status, code),
        other => panic!("expected an ACS error, got {other:?}"),
    }
}

/// A request signed for the emulator with its key, as the SDKs sign.
pub fn signed(
    emulator: &Emulator,
    method: reqwest::Method,
    url: &url::Url,
    body: &[u8],
) -> reqwest::RequestBuilder {
    let credentials = credentials(emulator);
    let host = credentials.host();
    let date = signing::rfc1123(chrono::Utc::now());
    let headers = signing::sign(method.as_str(), url, body, &host, credentials.key(), &date);
    reqwest::Client::new()
        .request(method, url.clone())
        .header("x-ms-date", headers.date)
        .header("x-ms-content-sha256", headers.content_sha256)
        .header("x-ms-host", host)
        .header("authorization", headers.authorization)
        .header("content-type", "application/json")
        .body(body.to_vec())
}

/// The stopped recording's snapshot, once its chunks exist.
pub async fn stopped(emulator: &Emulator, recording_id: &str) -> RecordingSnapshot {
    eventually("the recording's chunks", WAIT, || async {
        emulator
            .recording(recording_id)
            .filter(|snapshot| snapshot.file_status_event.is_some())
    })
    .await
}

/// The chunks of a RecordingFileStatusUpdated event.
pub fn chunks(event: &Value) -> Vec<Value> {
    event["data"]["recordingStorageInfo"]["recordingChunks"]
        .as_array()
        .unwrap()
        .clone()
}

/// GETs a URL on the emulator, signed; panics unless it answers 200.
pub async fn download(emulator: &Emulator, url: &str) -> bytes::Bytes {
    let url = url::Url::parse(url).unwrap();
    let response = signed(emulator, reqwest::Method::GET, &url, b"")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "GET {url}");
    response.bytes().await.unwrap()
}

/// The metadata document of chunk `index` of a stopped GA recording.
pub async fn metadata(emulator: &Emulator, snapshot: &RecordingSnapshot, index: usize) -> Value {
    let event = snapshot.file_status_event.as_ref().unwrap();
    let location = chunks(event)[index]["metadataLocation"]
        .as_str()
        .unwrap()
        .to_owned();
    serde_json::from_slice(&download(emulator, &location).await).unwrap()
}
