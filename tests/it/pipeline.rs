//! The archive pipeline end to end: event → queue → transfer → archive + manifest.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use callvault::queue::JobState;
use callvault::storage::layout::sanitise_segment;
use callvault_emulator::events::{ChunkEvent, recording_file_status_updated, to_cloud_event};
use callvault_emulator::{
    DeliveryOptions, DocumentSpec, Emulator, EmulatorConfig, MediaSpec, Schema,
};
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::support::{TestApp, eventually, files_under, start_emulator};

const WAIT: Duration = Duration::from_secs(20);

pub fn start_time() -> DateTime<Utc> {
    // Recent, so the retention deadline is about a day away.
    Utc::now() - chrono::Duration::minutes(10)
}

/// Adds a document with `len` synthetic media bytes and returns its chunk for an event.
pub fn add_chunk(
    emulator: &Emulator,
    call_id: &str,
    document_id: &str,
    index: u32,
    end_reason: &str,
    len: u64,
) -> ChunkEvent {
    let urls = emulator.add_document(DocumentSpec {
        document_id: document_id.into(),
        media: MediaSpec::Synthetic {
            len,
            seed: u64::from(index) + 7,
        },
        metadata: None,
        call_id: call_id.into(),
        chunk_index: index,
        created_at: Utc::now(),
    });
    ChunkEvent {
        document_id: document_id.into(),
        index,
        end_reason: end_reason.into(),
        urls: Some(urls),
    }
}

/// Asserts the archived chunk is byte-identical to what the emulator serves.
pub fn assert_chunk_archived(
    emulator: &Emulator,
    archive: &Path,
    folder: &str,
    index: u32,
    document_id: &str,
    ext: &str,
) {
    let media =
        std::fs::read(archive.join(folder).join(format!("chunk-{index:04}.{ext}"))).unwrap();
    assert_eq!(
        crate::support::sha256_hex(&media),
        emulator.media_sha256(document_id).unwrap(),
        "media of chunk {index}"
    );
    let metadata = std::fs::read(
        archive
            .join(folder)
            .join(format!("chunk-{index:04}.metadata.json")),
    )
    .unwrap();
    assert_eq!(
        Bytes::from(metadata),
        emulator.metadata_bytes(document_id).unwrap(),
        "metadata of chunk {index}"
    );
}

#[tokio::test]
async fn a_two_chunk_ga_recording_is_archived_verified_and_manifested() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn(&emulator, &[]).await;
    let start = start_time();
    let chunks = vec![
        add_chunk(
            &emulator,
            "call-ga",
            "doc-ga-0",
            0,
            "ChunkMaximumSizeExceeded",
            300_000,
        ),
        add_chunk(&emulator, "call-ga", "doc-ga-1", 1, "SessionEnded", 120_000),
    ];
    let event = recording_file_status_updated(
        "evt-ga",
        "/recording/call/call-ga/serverCallId/srv-1",
        start,
        &chunks,
        "Mp4",
    );
    let report = emulator
        .deliver(&app.events_url(), vec![event], DeliveryOptions::default())
        .await;
    assert!(report.validated, "the validation handshake must succeed");
    assert_eq!(report.delivered, 1);

    let folder = format!("call-ga/{}", start.format("%Y%m%dT%H%M%SZ"));
    let manifest = app.wait_for_manifest(Path::new(&folder), WAIT).await;
    app.wait_for_jobs(2, JobState::Archived, WAIT).await;
    assert_chunk_archived(&emulator, &app.archive, &folder, 0, "doc-ga-0", "mp4");
    assert_chunk_archived(&emulator, &app.archive, &folder, 1, "doc-ga-1", "mp4");

    assert_eq!(manifest["schema"], "callvault.manifest/v1");
    assert_eq!(manifest["callId"], "call-ga");
    assert_eq!(manifest["serverCallId"], "srv-1");
    assert_eq!(manifest["eventIds"], json!(["evt-ga"]));
    assert_eq!(manifest["chunks"].as_array().unwrap().len(), 2);
    assert_eq!(manifest["chunks"][0]["media"]["bytes"], 300_000);
    assert_eq!(
        manifest["chunks"][0]["media"]["sha256"],
        emulator.media_sha256("doc-ga-0").unwrap()
    );
    assert_eq!(manifest["chunks"][1]["endReason"], "SessionEnded");
    assert!(
        !manifest["participants"].as_array().unwrap().is_empty(),
        "participants come from the metadata documents"
    );
    assert!(
        files_under(&app.archive)
            .iter()
            .all(|file| !file.contains('#')),
        "no staging files remain"
    );
}

#[tokio::test]
async fn a_cloud_events_delivery_with_a_recording_id_subject_is_archived_under_the_recording_id() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn(&emulator, &[]).await;
    let chunks = vec![add_chunk(
        &emulator,
        "call-ce",
        "doc-ce-0",
        0,
        "SessionEnded",
        50_000,
    )];
    let event = recording_file_status_updated(
        "evt-ce",
        "/recording/call/call-ce/recordingId/rec-42",
        start_time(),
        &chunks,
        "Wav",
    );
    let options = DeliveryOptions {
        schema: Schema::CloudEvents,
        ..DeliveryOptions::default()
    };
    let report = emulator
        .deliver(&app.events_url(), vec![to_cloud_event(&event)], options)
        .await;
    assert!(
        report.validated && report.delivered == 1,
        "{:?}",
        report.attempts
    );

    let manifest = app
        .wait_for_manifest(Path::new("call-ce/rec-42"), WAIT)
        .await;
    assert_eq!(manifest["recordingId"], "rec-42");
    assert_chunk_archived(
        &emulator,
        &app.archive,
        "call-ce/rec-42",
        0,
        "doc-ce-0",
        "wav",
    );
}

#[tokio::test]
async fn a_preview_event_downloads_from_the_acs_endpoint() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn(&emulator, &[]).await;
    let start = start_time();
    let mut chunk = add_chunk(&emulator, "call-pv", "doc-pv-0", 0, "SessionEnded", 70_000);
    chunk.urls = None;
    let event =
        recording_file_status_updated("evt-pv", "/recording/call/call-pv", start, &[chunk], "Mp4");
    assert_eq!(app.post_events(&json!([event])).await.status(), 200);

    let folder = format!("call-pv/{}", start.format("%Y%m%dT%H%M%SZ"));
    app.wait_for_manifest(Path::new(&folder), WAIT).await;
    assert_chunk_archived(&emulator, &app.archive, &folder, 0, "doc-pv-0", "mp4");
    let paths: Vec<_> = emulator
        .requests()
        .into_iter()
        .filter(|r| r.status < 300)
        .map(|r| r.path)
        .collect();
    assert!(
        paths.contains(&"/recording/download/doc-pv-0".to_owned()),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"/recording/download/doc-pv-0/metadata".to_owned()),
        "{paths:?}"
    );
}

#[tokio::test]
async fn chunks_announced_separately_out_of_order_and_twice_are_each_fetched_once() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn(&emulator, &[]).await;
    let start = start_time();
    let subject = "/recording/call/call-ooo/serverCallId/srv-ooo";
    let c0 = add_chunk(
        &emulator,
        "call-ooo",
        "doc-ooo-0",
        0,
        "ChunkMaximumSizeExceeded",
        90_000,
    );
    let c1 = add_chunk(
        &emulator,
        "call-ooo",
        "doc-ooo-1",
        1,
        "ChunkMaximumSizeExceeded",
        80_000,
    );
    let c2 = add_chunk(
        &emulator,
        "call-ooo",
        "doc-ooo-2",
        2,
        "SessionEnded",
        10_000,
    );
    let folder = format!("call-ooo/{}", start.format("%Y%m%dT%H%M%SZ"));

    // The last chunk first, then the first one delivered twice (same event id).
    let last = recording_file_status_updated(
        "evt-ooo-2",
        subject,
        start,
        std::slice::from_ref(&c2),
        "Mp4",
    );
    let first = recording_file_status_updated(
        "evt-ooo-0",
        subject,
        start,
        std::slice::from_ref(&c0),
        "Mp4",
    );
    let twice = DeliveryOptions {
        duplicate: true,
        ..DeliveryOptions::default()
    };
    emulator
        .deliver(&app.events_url(), vec![last, first], twice)
        .await;
    eventually("chunks 0 and 2 archived", WAIT, || async {
        let jobs = app.jobs().await;
        (jobs.len() == 2 && jobs.iter().all(|job| job.state() == JobState::Archived)).then_some(())
    })
    .await;
    assert!(
        !app.archive.join(&folder).join("manifest.json").exists(),
        "chunk 1 is missing: no manifest yet"
    );

    // Chunk 1 arrives in a new event that also re-announces chunk 0 under a new event id.
    let middle = recording_file_status_updated(
        "evt-ooo-1",
        subject,
        start,
        &[c0.clone(), c1.clone()],
        "Mp4",
    );
    let options = DeliveryOptions {
        handshake: false,
        ..DeliveryOptions::default()
    };
    emulator
        .deliver(&app.events_url(), vec![middle], options)
        .await;

    let manifest = app.wait_for_manifest(Path::new(&folder), WAIT).await;
    assert_eq!(manifest["chunks"].as_array().unwrap().len(), 3);
    let mut event_ids: Vec<_> = manifest["eventIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    event_ids.sort();
    assert_eq!(event_ids, ["evt-ooo-0", "evt-ooo-1", "evt-ooo-2"]);
    app.wait_for_jobs(3, JobState::Archived, WAIT).await;
    for (index, doc) in ["doc-ooo-0", "doc-ooo-1", "doc-ooo-2"]
        .into_iter()
        .enumerate()
    {
        assert_chunk_archived(&emulator, &app.archive, &folder, index as u32, doc, "mp4");
        let media_gets = emulator
            .requests()
            .into_iter()
            .filter(|r| r.method == "GET" && r.path == format!("/v1/objects/{doc}/content/video"))
            .count();
        assert_eq!(media_gets, 1, "{doc} must be downloaded exactly once");
    }
}

#[tokio::test]
async fn one_invalid_event_in_a_batch_is_quarantined_and_the_valid_one_archived() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn(&emulator, &[]).await;
    let start = start_time();
    let good = recording_file_status_updated(
        "evt-good",
        "/recording/call/call-mix",
        start,
        &[add_chunk(
            &emulator,
            "call-mix",
            "doc-mix-0",
            0,
            "SessionEnded",
            20_000,
        )],
        "Mp3",
    );
    let mut bad =
        recording_file_status_updated("evt-bad", "/recording/call/call-bad", start, &[], "Mp3");
    bad["data"]["recordingStorageInfo"]["recordingChunks"] = json!([]);
    let response = app.post_events(&json!([bad, good])).await;
    assert_eq!(response.status(), 200);
    let summary: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        summary,
        json!({"accepted": 1, "duplicates": 0, "quarantined": 1, "ignored": 0})
    );

    let folder = format!("call-mix/{}", start.format("%Y%m%dT%H%M%SZ"));
    app.wait_for_manifest(Path::new(&folder), WAIT).await;
    let reason: String =
        sqlx::query_scalar("SELECT reason FROM quarantine WHERE event_id = 'evt-bad'")
            .fetch_one(app.running().state.db.pool())
            .await
            .unwrap();
    assert!(reason.contains("recordingChunks"), "{reason}");
}

#[tokio::test]
async fn hostile_ids_cannot_escape_the_archive_root() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn(&emulator, &[]).await;
    let mut event = recording_file_status_updated(
        "evt-hostile",
        "/recording/call/..",
        start_time(),
        &[add_chunk(
            &emulator,
            "..",
            "doc-hostile",
            0,
            "SessionEnded",
            1_000,
        )],
        "Mp4",
    );
    event["data"]["recordingId"] = json!("../../../../escape#1");
    assert_eq!(app.post_events(&json!([event])).await.status(), 200);
    let folder = format!(
        "{}/{}/",
        sanitise_segment(".."),
        sanitise_segment("../../../../escape#1")
    );
    assert_eq!(folder, "_.~5ec1f7e7/_._.._.._.._escape_1~9df2e0d0/");
    app.wait_for_manifest(Path::new(&folder), WAIT).await;
    let files = files_under(&app.archive);
    assert_eq!(files.len(), 3, "{files:?}");
    for file in &files {
        assert!(
            file.starts_with(&folder),
            "{file} must stay in the sanitised folder"
        );
    }
    let outside = files_under(app.archive.parent().unwrap());
    assert!(
        outside
            .iter()
            .all(|f| f.starts_with("archive/") || !f.contains("escape")),
        "{outside:?}"
    );
}

#[tokio::test]
async fn the_source_is_deleted_at_acs_after_a_verified_archive_when_configured() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn(
        &emulator,
        &[("worker.delete_source_after_archive", "true".into())],
    )
    .await;
    let chunks = [add_chunk(
        &emulator,
        "call-del",
        "doc-del-0",
        0,
        "SessionEnded",
        4_000,
    )];
    let event = recording_file_status_updated(
        "evt-del",
        "/recording/call/call-del",
        start_time(),
        &chunks,
        "Mp4",
    );
    app.post_events(&json!([event])).await;
    eventually("source deleted", WAIT, || async {
        emulator.is_deleted("doc-del-0").then_some(())
    })
    .await;
    let jobs = app.wait_for_jobs(1, JobState::Archived, WAIT).await;
    assert!(jobs[0].media_sha256.is_some());
}
