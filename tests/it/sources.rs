//! How transfers cope with the source: errors, broken streams, expiry, forged hosts.

use std::path::Path;

use callvault::queue::JobState;
use callvault_emulator::events::recording_file_status_updated;
use callvault_emulator::{Emulator, EmulatorConfig, Fault};
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::pipeline::{add_chunk, assert_chunk_archived, start_time};
use crate::support::{TestApp, start_emulator};

fn folder(call: &str, start: DateTime<Utc>) -> String {
    format!("{call}/{}", start.format("%Y%m%dT%H%M%SZ"))
}

/// Adds a one-chunk recording of `len` bytes for `call` (document `doc-{call}`) to the emulator,
/// applies `fault` to it, and announces it to callvault. Returns the recording's start time.
async fn announce_one_chunk(
    emulator: &Emulator,
    app: &TestApp,
    call: &str,
    len: u64,
    fault: Option<Fault>,
) -> DateTime<Utc> {
    let start = start_time();
    let document = format!("doc-{call}");
    let chunk = add_chunk(emulator, call, &document, 0, "SessionEnded", len);
    if let Some(fault) = fault {
        emulator.set_fault(&document, fault);
    }
    let event = recording_file_status_updated(
        &format!("evt-{call}"),
        &format!("/recording/call/{call}"),
        start,
        &[chunk],
        "Mp4",
    );
    assert_eq!(app.post_events(&json!([event])).await.status(), 200);
    start
}

#[tokio::test]
async fn a_source_answering_503_is_retried_until_it_serves() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn_ingest(&emulator, &[]).await;
    let fault = Fault::Status {
        status: 503,
        times: 2,
    };
    let start = announce_one_chunk(&emulator, &app, "call-503", 10_000, Some(fault)).await;

    let jobs = app.drain_expecting(1, JobState::Archived).await;
    assert_eq!(jobs[0].attempts, 3, "two 503s, then success");
    assert_chunk_archived(
        &emulator,
        &app.archive,
        &folder("call-503", start),
        0,
        "doc-call-503",
        "mp4",
    );
}

#[tokio::test]
async fn a_broken_stream_is_resumed_with_a_range_request() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn_ingest(&emulator, &[]).await;
    let fault = Fault::ResetAfter {
        after_bytes: 1_000_000,
        times: 2,
    };
    let start = announce_one_chunk(&emulator, &app, "call-rst", 3_000_000, Some(fault)).await;

    let jobs = app.drain_expecting(1, JobState::Archived).await;
    assert_eq!(
        jobs[0].attempts, 1,
        "resumed within the attempt, not retried"
    );
    assert_eq!(jobs[0].media_bytes, Some(3_000_000));
    assert_chunk_archived(
        &emulator,
        &app.archive,
        &folder("call-rst", start),
        0,
        "doc-call-rst",
        "mp4",
    );
    let ranges: Vec<_> = emulator
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/objects/doc-call-rst/content/video")
        .filter_map(|r| r.range)
        .collect();
    assert!(
        !ranges.is_empty()
            && ranges
                .iter()
                .all(|r| r.starts_with("bytes=") && r != "bytes=0-"),
        "{ranges:?}"
    );
}

#[tokio::test]
async fn a_zero_byte_media_answer_is_retried_before_it_is_believed() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn_ingest(&emulator, &[]).await;
    announce_one_chunk(
        &emulator,
        &app,
        "call-empty",
        5_000,
        Some(Fault::EmptyBody { times: 1 }),
    )
    .await;
    let jobs = app.drain_expecting(1, JobState::Archived).await;
    assert_eq!((jobs[0].attempts, jobs[0].media_bytes), (2, Some(5_000)));
}

#[tokio::test]
async fn not_found_past_the_retention_deadline_expires_without_retrying() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn_ingest(&emulator, &[]).await;
    let long_ago = Utc::now() - chrono::Duration::hours(72);
    let mut chunk = add_chunk(&emulator, "call-old", "doc-old", 0, "SessionEnded", 1_000);
    chunk.document_id = "doc-never-stored".into();
    let mut event = recording_file_status_updated(
        "eold",
        "/recording/call/call-old",
        long_ago,
        &[chunk],
        "Mp4",
    );
    let gone = format!(
        "{}v1/objects/doc-never-stored/content/",
        emulator.endpoint()
    );
    let chunk = &mut event["data"]["recordingStorageInfo"]["recordingChunks"][0];
    chunk["contentLocation"] = json!(format!("{gone}video"));
    chunk["metadataLocation"] = json!(format!("{gone}acsmetadata"));
    chunk["deleteLocation"] = json!(format!("{gone}deletedata"));
    app.post_events(&json!([event])).await;

    let jobs = app.drain_expecting(1, JobState::Expired).await;
    assert_eq!(jobs[0].attempts, 1, "an expired recording is not retried");
    assert!(
        jobs[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("retention deadline"),
        "{:?}",
        jobs[0].last_error
    );
}

#[tokio::test]
async fn not_found_before_the_deadline_is_retried() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn_ingest(&emulator, &[]).await;
    let fault = Fault::Status {
        status: 404,
        times: 1,
    };
    announce_one_chunk(&emulator, &app, "call-404", 1_000, Some(fault)).await;
    let jobs = app.drain_expecting(1, JobState::Archived).await;
    assert_eq!(jobs[0].attempts, 2);
}

#[tokio::test]
async fn a_wrong_access_key_fails_the_job_with_a_reason_that_names_the_fix() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let wrong = format!("endpoint={};accesskey=d3Jvbmcta2V5", emulator.endpoint());
    let app = TestApp::spawn_ingest(&emulator, &[("acs.connection_string", wrong)]).await;
    announce_one_chunk(&emulator, &app, "call-401", 1_000, None).await;

    let jobs = app.drain_expecting(1, JobState::Failed).await;
    assert_eq!(
        jobs[0].attempts, 3,
        "401 is retried a few times, then the job fails"
    );
    let error = jobs[0].last_error.as_deref().unwrap();
    assert!(
        error.contains("401") && error.contains("acs.connection_string"),
        "{error}"
    );
    assert!(
        emulator
            .requests()
            .iter()
            .all(|r| r.status == 401 && !r.signed_ok)
    );
}

#[tokio::test]
async fn a_forged_download_host_is_quarantined_and_never_contacted() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let elsewhere = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn(&emulator, &[]).await;
    let forged = add_chunk(
        &elsewhere,
        "call-ssrf",
        "doc-ssrf",
        0,
        "SessionEnded",
        1_000,
    );
    let event = recording_file_status_updated(
        "essrf",
        "/recording/call/call-ssrf",
        start_time(),
        &[forged],
        "Mp4",
    );
    let summary: serde_json::Value = app.post_events(&json!([event])).await.json().await.unwrap();
    assert_eq!(summary["quarantined"], 1);

    let reason: String =
        sqlx::query_scalar("SELECT reason FROM quarantine WHERE event_id = 'essrf'")
            .fetch_one(app.running().state.db.pool())
            .await
            .unwrap();
    assert!(reason.contains("not allowed"), "{reason}");
    assert!(app.jobs().await.is_empty());
    assert!(
        elsewhere.requests().is_empty(),
        "the forged host must never be contacted"
    );
    assert!(!app.archive.join(Path::new("call-ssrf")).exists());
}

#[tokio::test]
async fn a_throttled_source_keeps_its_lease_while_the_transfer_runs() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    // A 1 s lease renewed every ~333 ms; the transfer takes about 3 s.
    let app = TestApp::spawn_ingest(&emulator, &[("worker.lease_secs", "1".into())]).await;
    let fault = Fault::Throttle {
        bytes_per_second: 200_000,
    };
    announce_one_chunk(&emulator, &app, "call-slow", 600_000, Some(fault)).await;
    let jobs = app.drain_expecting(1, JobState::Archived).await;
    assert_eq!(
        jobs[0].attempts, 1,
        "the lease never lapsed, so no second attempt"
    );
    let gets = emulator
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/objects/doc-call-slow/content/video")
        .count();
    assert_eq!(gets, 1, "one media download");
}
