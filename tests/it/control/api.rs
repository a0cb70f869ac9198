//! Every operation of both API generations, the state machine, and idempotent starts.

use callvault::acs::control::StartOptions;
use serde_json::{Value, json};

use super::*;

#[tokio::test]
async fn a_ga_recording_goes_active_paused_active_stopped() {
    let emulator = emulator().await;
    let client = client(&emulator);
    let call = ga("srv-lifecycle");
    let started = client
        .start(&call, &options("audio", "mixed", "mp3"))
        .await
        .unwrap();
    assert!(!started.recording_id.is_empty());
    assert_eq!(started.recording_state.as_deref(), Some("active"));
    let id = started.recording_id.as_str();

    let state = |expected: &'static str| {
        let client = client.clone();
        let call = call.clone();
        async move {
            let status = client.state(&call, id).await.unwrap();
            assert_eq!(status.recording_id, id);
            assert_eq!(status.recording_state.as_deref(), Some(expected));
        }
    };
    state("active").await;
    client.pause(&call, id).await.unwrap();
    state("inactive").await;
    assert_eq!(emulator.recording(id).unwrap().state, "paused");
    client.resume(&call, id).await.unwrap();
    state("active").await;
    client.stop(&call, id).await.unwrap();
    state("inactive").await;
    let snapshot = emulator.recording(id).unwrap();
    assert_eq!(snapshot.state, "stopped");
    assert_eq!(snapshot.server_call_id, "srv-lifecycle");
    assert_eq!(snapshot.format_type, "mp3");
    assert!(!snapshot.document_ids.is_empty());
}

#[tokio::test]
async fn the_ga_routes_answer_with_acs_statuses() {
    let emulator = emulator().await;
    let base = emulator.endpoint();
    let version = "api-version=2026-03-12";
    let body = json!({ "callLocator": { "kind": "serverCallLocator", "serverCallId": "srv-raw" } });
    let body = serde_json::to_vec(&body).unwrap();
    let url = base.join(&format!("calling/recordings?{version}")).unwrap();
    let started = signed(&emulator, reqwest::Method::POST, &url, &body)
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200);
    let started: Value = started.json().await.unwrap();
    assert_eq!(started["recordingState"], "active");
    let id = started["recordingId"].as_str().unwrap();
    let encoded = url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>();
    let at = |suffix: &str| {
        base.join(&format!("calling/recordings/{encoded}{suffix}?{version}"))
            .unwrap()
    };
    let status = |method: reqwest::Method, url: url::Url| {
        let request = signed(&emulator, method, &url, b"");
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(reqwest::Method::POST, at(":pause")).await, 202);
    assert_eq!(status(reqwest::Method::POST, at(":resume")).await, 202);
    assert_eq!(status(reqwest::Method::POST, at(":rewind")).await, 404);
    assert_eq!(status(reqwest::Method::GET, at("")).await, 200);
    assert_eq!(status(reqwest::Method::DELETE, at("")).await, 204);
}

#[tokio::test]
async fn pause_on_start_starts_inactive_and_resumes_to_active() {
    let emulator = emulator().await;
    let client = client(&emulator);
    let call = ga("srv-paused-start");
    let options = StartOptions {
        pause_on_start: true,
        ..options("audio", "unmixed", "wav")
    };
    let started = client.start(&call, &options).await.unwrap();
    assert_eq!(started.recording_state.as_deref(), Some("inactive"));
    let id = &started.recording_id;
    client.resume(&call, id).await.unwrap();
    let state = client.state(&call, id).await.unwrap();
    assert_eq!(state.recording_state.as_deref(), Some("active"));
}

#[tokio::test]
async fn a_preview_recording_goes_active_paused_active_stopped() {
    let emulator = emulator().await;
    let client = client(&emulator);
    let conversation = preview("lifecycle");
    let started = client
        .start(&conversation, &StartOptions::default())
        .await
        .unwrap();
    let id = started.recording_id.as_str();
    assert!(!id.is_empty());
    let state = |expected: &'static str| {
        let client = client.clone();
        let conversation = conversation.clone();
        async move {
            let status = client.state(&conversation, id).await.unwrap();
            assert_eq!(status.recording_state.as_deref(), Some(expected));
        }
    };
    state("active").await;
    client.pause(&conversation, id).await.unwrap();
    state("inactive").await;
    client.resume(&conversation, id).await.unwrap();
    state("active").await;
    client.stop(&conversation, id).await.unwrap();
    state("inactive").await;

    let snapshot = stopped(&emulator, id).await;
    assert_eq!(
        (
            snapshot.content_type.as_str(),
            snapshot.format_type.as_str()
        ),
        ("audioVideo", "mp4")
    );
    let event = snapshot.file_status_event.unwrap();
    assert_eq!(
        event["subject"],
        format!("/recording/call/{}", snapshot.call_id),
        "preview recordings have the seed's subject"
    );
    assert!(event["data"].get("recordingFormatType").is_none());
    assert!(chunks(&event)[0].get("contentLocation").is_none());
    let document = &snapshot.document_ids[0];
    let media = download(
        &emulator,
        emulator
            .endpoint()
            .join(&format!("recording/download/{document}"))
            .unwrap()
            .as_str(),
    )
    .await;
    assert_eq!(&media[4..8], b"ftyp", "preview media is an MP4");
}

#[tokio::test]
async fn preview_paths_match_recordings_pause_and_resume_in_any_case() {
    let emulator = emulator().await;
    let cid = conversation_id("https://conv-euno-01.conv.skype.com/conv/any-case");
    let base = emulator.endpoint();
    let url = |path: &str| base.join(&format!("conversations/{cid}/{path}")).unwrap();
    let started = signed(&emulator, reqwest::Method::POST, &url("RECORDINGS"), b"{}")
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200);
    let id = started.json::<Value>().await.unwrap()["recordingId"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>();
    for (method, path) in [
        (reqwest::Method::POST, format!("recordings/{id}/pause")),
        (reqwest::Method::POST, format!("Recordings/{id}/RESUME")),
        (reqwest::Method::GET, format!("rEcOrDiNgS/{id}")),
        (reqwest::Method::DELETE, format!("recordings/{id}")),
    ] {
        let response = signed(&emulator, method.clone(), &url(&path), b"")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{method} {path}");
    }
}

#[tokio::test]
async fn every_ga_api_version_from_2023_03_06_to_2026_03_12_is_accepted() {
    let emulator = emulator().await;
    for version in [
        "2023-03-06",
        "2023-10-15",
        "2024-04-15",
        "2024-09-15",
        "2025-05-15",
        "2025-06-15",
        "2026-03-12",
    ] {
        let client = client(&emulator).with_api_version(version);
        let call = ga(&format!("srv-{version}"));
        let started = client.start(&call, &StartOptions::default()).await;
        let id = started
            .unwrap_or_else(|err| panic!("{version}: {err}"))
            .recording_id;
        client.stop(&call, &id).await.unwrap();
    }
}

#[tokio::test]
async fn the_same_repeatability_request_id_answers_the_same_recording() {
    let emulator = emulator().await;
    let client = client(&emulator);
    let call = ga("srv-repeat");
    let with_id = |request_id: &str| StartOptions {
        repeatability_request_id: Some(request_id.into()),
        ..StartOptions::default()
    };
    let first = client
        .start(&call, &with_id("0f9e1d2c-request-a"))
        .await
        .unwrap();
    let again = client
        .start(&call, &with_id("0f9e1d2c-request-a"))
        .await
        .unwrap();
    assert_eq!(first.recording_id, again.recording_id);
    let other = client
        .start(&call, &with_id("0f9e1d2c-request-b"))
        .await
        .unwrap();
    assert_ne!(other.recording_id, first.recording_id);
    let unrepeated = client.start(&call, &StartOptions::default()).await.unwrap();
    assert_ne!(unrepeated.recording_id, first.recording_id);

    // A repeat after a pause answers the recording as it is now, not a new one.
    client.pause(&call, &first.recording_id).await.unwrap();
    let repeated = client
        .start(&call, &with_id("0f9e1d2c-request-a"))
        .await
        .unwrap();
    assert_eq!(repeated.recording_id, first.recording_id);
    assert_eq!(repeated.recording_state.as_deref(), Some("inactive"));
}
