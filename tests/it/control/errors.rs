//! Every refusal of the control API: its status, ACS's error shape, and that it changes
//! nothing.

use callvault::acs::AcsCredentials;
use callvault::acs::control::StartOptions;
use serde_json::{Value, json};

use super::*;

#[tokio::test]
async fn unknown_recordings_are_404_in_both_generations() {
    let emulator = emulator().await;
    let client = client(&emulator);
    for call in [ga("srv-404"), preview("unknown")] {
        assert_eq!(api_error(client.state(&call, "no-such-id").await).0, 404);
        assert_eq!(api_error(client.pause(&call, "no-such-id").await).0, 404);
        assert_eq!(api_error(client.resume(&call, "no-such-id").await).0, 404);
        assert_eq!(
            api_error(client.stop(&call, "no-such-id").await),
            (404, "NotFound".to_owned())
        );
    }
}

#[tokio::test]
async fn a_preview_recording_is_not_found_under_another_conversation() {
    let emulator = emulator().await;
    let client = client(&emulator);
    let started = client
        .start(&preview("mine"), &StartOptions::default())
        .await
        .unwrap();
    let (status, _) = api_error(
        client
            .state(&preview("theirs"), &started.recording_id)
            .await,
    );
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_conversation_id_that_is_not_base64url_of_a_url_is_400() {
    let emulator = emulator().await;
    let client = client(&emulator);
    let plain_base64 = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        "https://conv.skype.com/conv/?x=~>>??",
    );
    for bad in [
        plain_base64,
        "not*base64".to_owned(),
        conversation_id("mailto:someone@example.com"),
        conversation_id("just words"),
    ] {
        let call = CallLocator::Conversation(bad.clone());
        let result = client.start(&call, &StartOptions::default()).await;
        assert_eq!(api_error(result), (400, "BadRequest".to_owned()), "{bad}");
        assert_eq!(api_error(client.state(&call, "r").await).0, 400, "{bad}");
    }
}

#[tokio::test]
async fn a_missing_or_unsupported_api_version_is_400() {
    let emulator = emulator().await;
    for version in ["2023-03-05", "2026-03-13", "2021-04-15-preview1", "v1"] {
        let client = client(&emulator).with_api_version(version);
        let result = client
            .start(&ga("srv-version"), &StartOptions::default())
            .await;
        assert_eq!(api_error(result).0, 400, "{version}");
    }
    let url = emulator.endpoint().join("calling/recordings").unwrap();
    let body = br#"{"callLocator":{"kind":"serverCallLocator","serverCallId":"s"}}"#;
    let response = signed(&emulator, reqwest::Method::POST, &url, body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(
        error["error"]["code"], "BadRequest",
        "GA errors are wrapped"
    );
    assert_eq!(error["error"]["target"], "api-version");
    assert!(error["error"]["details"].is_array());
}

#[tokio::test]
async fn type_combinations_acs_does_not_record_are_400() {
    let emulator = emulator().await;
    let client = client(&emulator);
    for (content, channel, format) in [
        ("audioVideo", "mixed", "mp3"),
        ("audioVideo", "unmixed", "mp4"),
        ("audioVideo", "mixed", "wav"),
        ("audio", "unmixed", "mp3"),
        ("audio", "mixed", "mp4"),
        ("video", "mixed", "mp4"),
    ] {
        let result = client
            .start(&ga("srv-types"), &options(content, channel, format))
            .await;
        assert_eq!(api_error(result).0, 400, "{content} {channel} {format}");
    }
}

#[tokio::test]
async fn malformed_start_requests_are_400() {
    let emulator = emulator().await;
    let url = emulator
        .endpoint()
        .join("calling/recordings?api-version=2025-06-15")
        .unwrap();
    let bad_bodies = [
        json!({}),
        json!({ "callLocator": { "kind": "groupCallLocator", "groupCallId": "g" } }),
        json!({ "callLocator": { "kind": "serverCallLocator", "serverCallId": "" } }),
        json!({ "callLocator": { "kind": "serverCallLocator", "serverCallId": "s" },
                "recordingStateCallbackUri": "/relative/callback" }),
    ];
    for body in bad_bodies {
        let body = serde_json::to_vec(&body).unwrap();
        let response = signed(&emulator, reqwest::Method::POST, &url, &body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{}", String::from_utf8_lossy(&body));
    }
    let not_json = signed(&emulator, reqwest::Method::POST, &url, b"{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    let body = br#"{"callLocator":{"kind":"serverCallLocator","serverCallId":"s"}}"#;
    let bad_first_sent = signed(&emulator, reqwest::Method::POST, &url, body)
        .header(
            "Repeatability-Request-ID",
            "8d1c3b2a-4e5f-4a6b-9c7d-0e1f2a3b4c5d",
        )
        .header("Repeatability-First-Sent", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_first_sent.status(), 400);
}

#[tokio::test]
async fn operations_the_state_does_not_allow_are_409_and_change_nothing() {
    let emulator = emulator().await;
    let client = client(&emulator);
    for call in [ga("srv-conflict"), preview("conflict")] {
        let id = client
            .start(&call, &StartOptions::default())
            .await
            .unwrap()
            .recording_id;
        assert_eq!(
            api_error(client.resume(&call, &id).await),
            (409, "Conflict".to_owned()),
            "resuming an active recording"
        );
        client.pause(&call, &id).await.unwrap();
        assert_eq!(
            api_error(client.pause(&call, &id).await).0,
            409,
            "pausing a paused one"
        );
        assert_eq!(emulator.recording(&id).unwrap().state, "paused");
        client.stop(&call, &id).await.unwrap();
        assert_eq!(
            api_error(client.pause(&call, &id).await).0,
            409,
            "pausing a stopped one"
        );
        assert_eq!(
            api_error(client.resume(&call, &id).await).0,
            409,
            "resuming a stopped one"
        );
        assert_eq!(
            api_error(client.stop(&call, &id).await).0,
            409,
            "stopping a stopped one"
        );
        assert_eq!(emulator.recording(&id).unwrap().state, "stopped");
    }
}

#[tokio::test]
async fn unsigned_or_wrongly_signed_requests_are_401() {
    let emulator = emulator().await;
    let stranger = RecordingControl::new(
        AcsCredentials::new(emulator.endpoint().as_str(), "d3Jvbmcta2V5LXdyb25nLWtleQ==").unwrap(),
    )
    .unwrap();
    for call in [ga("srv-401"), preview("unsigned")] {
        let result = stranger.start(&call, &StartOptions::default()).await;
        assert_eq!(api_error(result), (401, "Denied".to_owned()));
    }
    let id = client(&emulator)
        .start(&ga("srv-401"), &StartOptions::default())
        .await
        .unwrap()
        .recording_id;
    assert_eq!(api_error(stranger.pause(&ga("srv-401"), &id).await).0, 401);
    assert_eq!(api_error(stranger.stop(&ga("srv-401"), &id).await).0, 401);
    assert_eq!(emulator.recording(&id).unwrap().state, "active");

    let url = emulator
        .endpoint()
        .join("calling/recordings?api-version=2026-03-12")
        .unwrap();
    let body = br#"{"callLocator":{"kind":"serverCallLocator","serverCallId":"s"}}"#;
    let unsigned = reqwest::Client::new()
        .post(url.clone())
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    let smuggled = signed(&emulator, reqwest::Method::POST, &url, body)
        .body(br#"{"callLocator":{"kind":"serverCallLocator","serverCallId":"x"}}"#.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(
        smuggled.status(),
        401,
        "a body that does not match its hash"
    );
    let preview_unsigned = reqwest::Client::new()
        .post(
            emulator
                .endpoint()
                .join(&format!(
                    "conversations/{}/Recordings",
                    conversation_id("https://a.b/c")
                ))
                .unwrap(),
        )
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(preview_unsigned.status(), 401);
    let error: Value = preview_unsigned.json().await.unwrap();
    assert_eq!(
        error["code"], "Denied",
        "preview errors have the seed's flat shape"
    );
}
