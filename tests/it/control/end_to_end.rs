//! A call recorded through the control API is archived by callvault: start → pause →
//! resume → stop, RecordingFileStatusUpdated to callvault's webhook, every chunk archived
//! byte for byte, and a manifest.

use std::path::Path;

use callvault::acs::control::StartOptions;
use callvault::recording::start_time_key;
use serde_json::Value;

use super::*;
use crate::support::{TestApp, sha256_hex};

/// Runs start → pause → resume → stop on `call` and answers the recording id.
async fn record(client: &RecordingControl, call: &CallLocator, options: &StartOptions) -> String {
    let id = client.start(call, options).await.unwrap().recording_id;
    tokio::time::sleep(Duration::from_millis(200)).await;
    client.pause(call, &id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    client.resume(call, &id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    client.stop(call, &id).await.unwrap();
    id
}

/// Checks every archived chunk against what the emulator serves; answers the manifest.
async fn assert_archived(
    emulator: &Emulator,
    app: &TestApp,
    recording_id: &str,
    ext: &str,
) -> Value {
    let snapshot = stopped(emulator, recording_id).await;
    let folder = format!(
        "{}/{}",
        snapshot.call_id,
        start_time_key(snapshot.started_at)
    );
    let manifest = app.wait_for_manifest(Path::new(&folder), WAIT).await;
    let chunks = manifest["chunks"].as_array().unwrap();
    assert_eq!(chunks.len(), snapshot.document_ids.len());
    for (index, (chunk, document_id)) in chunks.iter().zip(&snapshot.document_ids).enumerate() {
        assert_eq!(chunk["documentId"], document_id.as_str());
        let media = std::fs::read(
            app.archive
                .join(&folder)
                .join(format!("chunk-{index:04}.{ext}")),
        )
        .unwrap();
        assert_eq!(
            sha256_hex(&media),
            emulator.media_sha256(document_id).unwrap(),
            "chunk {index}"
        );
        assert_eq!(chunk["media"]["sha256"], sha256_hex(&media));
        let metadata = std::fs::read(
            app.archive
                .join(&folder)
                .join(format!("chunk-{index:04}.metadata.json")),
        )
        .unwrap();
        assert_eq!(metadata, emulator.metadata_bytes(document_id).unwrap());
    }
    assert_eq!(manifest["callId"], snapshot.call_id.as_str());
    assert_eq!(
        manifest["recordingDurationMs"],
        snapshot.duration_ms.unwrap()
    );
    manifest
}

#[tokio::test]
async fn a_ga_recording_with_a_pause_is_archived_chunk_by_chunk_with_a_manifest() {
    let emulator = start_emulator(config(RecordingConfig {
        chunk_max_duration: Duration::from_secs(2),
        time_scale: 10.0,
        ..RecordingConfig::default()
    }))
    .await;
    let app = TestApp::spawn(&emulator, &[]).await;
    emulator.set_subscribers(vec![app.events_url()]);
    let participants = ["8:acs:e2e-first", "8:acs:e2e-second", "8:acs:e2e-third"];
    emulator.register_call("srv-e2e", participants);
    let id = record(
        &client(&emulator),
        &ga("srv-e2e"),
        &options("audio", "unmixed", "wav"),
    )
    .await;

    let manifest = assert_archived(&emulator, &app, &id, "wav").await;
    assert!(
        manifest["chunks"].as_array().unwrap().len() >= 3,
        "six media seconds in chunks of two"
    );
    assert_eq!(manifest["serverCallId"], "srv-e2e");
    assert_eq!(manifest["format"], "Wav");
    assert_eq!(manifest["channelType"], "Unmixed");
    let mut expected: Vec<&str> = participants.to_vec();
    expected.sort();
    assert_eq!(manifest["participants"], serde_json::json!(expected));
    let last = manifest["chunks"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["endReason"], "SessionEnded");
}

#[tokio::test]
async fn a_preview_recording_is_archived_from_the_preview_download_routes() {
    let emulator = emulator().await;
    let app = TestApp::spawn(&emulator, &[]).await;
    emulator.set_subscribers(vec![app.events_url()]);
    let id = record(
        &client(&emulator),
        &preview("e2e"),
        &StartOptions::default(),
    )
    .await;
    let manifest = assert_archived(&emulator, &app, &id, "mp4").await;
    assert_eq!(manifest["chunks"].as_array().unwrap().len(), 1);
    let preview_downloads = emulator
        .requests()
        .iter()
        .filter(|request| request.path.starts_with("/recording/download/") && request.status == 200)
        .count();
    assert!(
        preview_downloads >= 2,
        "media and metadata come from the preview routes"
    );
}

#[tokio::test]
async fn an_archived_recordings_state_changes_show_in_the_admin_api() {
    let emulator = emulator().await;
    let app = TestApp::spawn(&emulator, &[("admin.token", "ops".into())]).await;
    emulator.set_subscribers(vec![app.events_url()]);
    let options = StartOptions {
        recording_state_callback_uri: Some(format!(
            "{}/api/recording-state?code={}",
            app.base,
            crate::support::SECRET
        )),
        ..options("audio", "mixed", "wav")
    };
    let id = record(&client(&emulator), &ga("srv-states"), &options).await;
    assert_archived(&emulator, &app, &id, "wav").await;

    // The GA event names only the serverCallId, so the recording is matched by its call.
    let detail = crate::support::eventually("four state changes", WAIT, || async {
        let detail: Value = app
            .client
            .get(format!("{}/admin/recordings/1", app.base))
            .bearer_auth("ops")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (detail["state_events"].as_array().map(Vec::len) == Some(4)).then_some(detail)
    })
    .await;
    let states: Vec<&str> = detail["state_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["active", "inactive", "active", "inactive"]);
    assert!(
        detail["state_events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["recording_id"] == id.as_str())
    );
}
