//! Events whose URLs name anything but their chunk's own download locations: quarantined at
//! ingest, and refused again by the worker when a stored row says otherwise.

use std::net::TcpListener;
use std::time::Duration;

use bytes::Bytes;
use callvault::app::Role;
use callvault::queue::JobState;
use callvault_emulator::events::{ChunkEvent, recording_file_status_updated};
use callvault_emulator::{DocumentSpec, Emulator, EmulatorConfig, MediaSpec};
use chrono::Utc;
use serde_json::{Value, json};

use crate::pipeline::{add_chunk, start_time};
use crate::support::{SECRET, TestApp, TestDatabase, eventually, start_emulator, test_settings};

const WAIT: Duration = Duration::from_secs(20);

/// Deletes at ACS after archiving, one transfer at a time (so jobs finish in claim order).
fn deleting_one_at_a_time() -> Vec<(&'static str, String)> {
    vec![
        ("worker.delete_source_after_archive", "true".into()),
        ("worker.concurrency", "1".into()),
    ]
}

fn event(id: &str, call: &str, chunks: &[ChunkEvent]) -> Value {
    recording_file_status_updated(
        id,
        &format!("/recording/call/{call}"),
        start_time(),
        chunks,
        "Mp4",
    )
}

fn chunk_mut(event: &mut Value, position: usize) -> &mut Value {
    &mut event["data"]["recordingStorageInfo"]["recordingChunks"][position]
}

async fn quarantine_reason(app: &TestApp, event_id: &str) -> String {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT reason FROM quarantine WHERE event_id = '{event_id}'"
    )))
    .fetch_one(app.running().state.db.pool())
    .await
    .unwrap()
}

/// Paths the emulator was asked for, with their methods.
fn requested(emulator: &Emulator) -> Vec<(String, String)> {
    emulator
        .requests()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect()
}

#[tokio::test]
async fn acs_api_paths_in_an_event_are_quarantined_and_never_requested() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn(&emulator, &deleting_one_at_a_time()).await;
    let endpoint = emulator.endpoint();
    let phone_numbers = format!("{endpoint}phoneNumbers?api-version=2022-12-01");
    let recordings = format!("{endpoint}calling/recordings/ID?api-version=2025-06-15");
    let chunk = add_chunk(&emulator, "call-api", "doc-api", 0, "SessionEnded", 1_000);
    let mut hostile = event("e-api", "call-api", &[chunk]);
    let located = chunk_mut(&mut hostile, 0);
    located["contentLocation"] = json!(phone_numbers);
    located["metadataLocation"] = json!(phone_numbers);
    located["deleteLocation"] = json!(recordings);

    let summary: Value = app
        .post_events(&json!([hostile]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(summary["quarantined"], 1, "{summary}");
    let reason = quarantine_reason(&app, "e-api").await;
    assert!(
        reason.contains(&format!(
            "chunk 0: contentLocation `{phone_numbers}` is not /v1/objects/{{documentId}}[/…]"
        )),
        "{reason}"
    );
    assert!(app.jobs().await.is_empty());
    assert!(emulator.requests().is_empty());

    // A good recording announced after it is archived and deleted; by then the worker has
    // had every chance to touch the hostile one, and it never did.
    let good = add_chunk(&emulator, "call-ok", "doc-ok", 0, "SessionEnded", 1_000);
    let good = event("e-ok", "call-ok", &[good]);
    assert_eq!(app.post_events(&json!([good])).await.status(), 200);
    eventually("doc-ok deleted at the source", WAIT, || async {
        emulator.is_deleted("doc-ok").then_some(())
    })
    .await;
    let paths = requested(&emulator);
    assert!(
        paths
            .iter()
            .all(|(_, path)| path.starts_with("/v1/objects/doc-ok/")),
        "{paths:?}"
    );
    assert!(!emulator.is_deleted("doc-api"));
}

#[tokio::test]
async fn a_delete_location_of_another_chunk_is_quarantined() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn(&emulator, &deleting_one_at_a_time()).await;
    let first = add_chunk(
        &emulator,
        "call-x",
        "doc-x0",
        0,
        "ChunkMaximumSizeExceeded",
        1_000,
    );
    let second = add_chunk(&emulator, "call-x", "doc-x1", 1, "SessionEnded", 1_000);
    let mut hostile = event("e-x", "call-x", &[first, second]);
    let other = chunk_mut(&mut hostile, 0)["deleteLocation"].clone();
    chunk_mut(&mut hostile, 1)["deleteLocation"] = other.clone();

    let summary: Value = app
        .post_events(&json!([hostile]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(summary["quarantined"], 1, "{summary}");
    let reason = quarantine_reason(&app, "e-x").await;
    assert!(
        reason.contains(&format!(
            "chunk 1: deleteLocation `{}` is not /v1/objects/{{documentId}}[/…]",
            other.as_str().unwrap()
        )),
        "{reason}"
    );
    assert!(app.jobs().await.is_empty());
    assert!(emulator.requests().is_empty());
}

/// Announces `chunks` through an ingest-only callvault, so that no worker runs before
/// `tamper` has changed the stored rows; then starts a full callvault on the same database.
async fn announce_then_tamper(
    emulator: &Emulator,
    db: &TestDatabase,
    event: Value,
    tamper: &[String],
) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let settings = test_settings(
        &emulator.connection_string(),
        db,
        &dir.path().join("archive"),
        &deleting_one_at_a_time(),
    );
    let ingest = callvault::app::start(
        settings,
        Role::Ingest,
        Some(TcpListener::bind("127.0.0.1:0").unwrap()),
    )
    .await
    .unwrap();
    let answer = reqwest::Client::new()
        .post(format!("{}/api/events?code={SECRET}", ingest.base_url()))
        .header("aeg-event-type", "Notification")
        .json(&json!([event]))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    for statement in tamper {
        let changed = sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
            .execute(ingest.state.db.pool())
            .await
            .unwrap();
        assert_eq!(changed.rows_affected(), 1, "{statement}");
    }
    ingest.stop().await;
    TestApp::spawn_on(
        emulator,
        TestDatabase::existing(&db.url),
        &deleting_one_at_a_time(),
    )
    .await
}

#[tokio::test]
async fn a_tampered_delete_url_in_the_database_is_never_sent() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let db = TestDatabase::sqlite().await;
    let endpoint = emulator.endpoint();
    let chunks = [
        add_chunk(
            &emulator,
            "call-t",
            "doc-t0",
            0,
            "ChunkMaximumSizeExceeded",
            1_000,
        ),
        add_chunk(
            &emulator,
            "call-t",
            "doc-t1",
            1,
            "ChunkMaximumSizeExceeded",
            1_000,
        ),
        // The control: untampered, and claimed last.
        add_chunk(&emulator, "call-t", "doc-t2", 2, "SessionEnded", 1_000),
    ];
    let doc_t0_delete = chunks[0].urls.as_ref().unwrap().delete.to_string();
    let tamper = [
        format!(
            "UPDATE jobs SET delete_url = '{endpoint}calling/recordings/ID?api-version=2025-06-15' WHERE document_id = 'doc-t0'"
        ),
        format!("UPDATE jobs SET delete_url = '{doc_t0_delete}' WHERE document_id = 'doc-t1'"),
    ];
    let mut app =
        announce_then_tamper(&emulator, &db, event("e-t", "call-t", &chunks), &tamper).await;

    eventually("doc-t2 deleted at the source", WAIT, || async {
        emulator.is_deleted("doc-t2").then_some(())
    })
    .await;
    let jobs = app.jobs().await;
    assert!(
        jobs.iter().all(|job| job.state() == JobState::Archived),
        "{jobs:?}"
    );
    assert!(!emulator.is_deleted("doc-t0"));
    assert!(!emulator.is_deleted("doc-t1"));
    let deletes: Vec<_> = requested(&emulator)
        .into_iter()
        .filter(|(method, _)| method == "DELETE")
        .map(|(_, path)| path)
        .collect();
    assert_eq!(deletes, ["/v1/objects/doc-t2/content/deletedata"]);
    assert!(
        requested(&emulator)
            .iter()
            .all(|(_, path)| path.starts_with("/v1/objects/")),
        "{:?}",
        requested(&emulator)
    );
    app.stop().await;
}

#[tokio::test]
async fn a_tampered_content_url_in_the_database_fails_the_job_unrequested() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let db = TestDatabase::sqlite().await;
    let endpoint = emulator.endpoint();
    let chunks = [add_chunk(
        &emulator,
        "call-u",
        "doc-u0",
        0,
        "SessionEnded",
        1_000,
    )];
    let tamper = [format!(
        "UPDATE jobs SET content_url = '{endpoint}phoneNumbers?api-version=2022-12-01' WHERE document_id = 'doc-u0'"
    )];
    let mut app =
        announce_then_tamper(&emulator, &db, event("e-u", "call-u", &chunks), &tamper).await;

    let jobs = app.wait_for_jobs(1, JobState::Failed, WAIT).await;
    let error = jobs[0].last_error.as_deref().unwrap();
    assert!(
        error.contains("refused download URL: contentLocation") && error.contains("/phoneNumbers"),
        "{error}"
    );
    assert!(emulator.requests().is_empty(), "{:?}", requested(&emulator));
    app.stop().await;
}

fn document_with_metadata(
    emulator: &Emulator,
    call: &str,
    document: &str,
    metadata: Bytes,
) -> ChunkEvent {
    let urls = emulator.add_document(DocumentSpec {
        document_id: document.into(),
        media: MediaSpec::Synthetic {
            len: 1_000,
            seed: 3,
        },
        metadata: Some(metadata),
        call_id: call.into(),
        chunk_index: 0,
        created_at: Utc::now(),
    });
    ChunkEvent {
        document_id: document.into(),
        index: 0,
        end_reason: "SessionEnded".into(),
        urls: Some(urls),
    }
}

#[tokio::test]
async fn metadata_over_1_mib_is_refused_and_non_json_metadata_is_archived_as_is() {
    const MIB: usize = 1024 * 1024;
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn(&emulator, &[]).await;
    let oversized = Bytes::from(format!(
        "{{\"participants\":[],\"pad\":\"{}\"}}",
        "x".repeat(MIB)
    ));
    let not_json = Bytes::from(vec![b'#'; MIB]);
    let big = document_with_metadata(&emulator, "call-big", "doc-big", oversized);
    let odd = document_with_metadata(&emulator, "call-odd", "doc-odd", not_json.clone());
    let events = json!([
        event("e-big", "call-big", &[big]),
        event("e-odd", "call-odd", &[odd])
    ]);
    assert_eq!(app.post_events(&events).await.status(), 200);

    eventually("the oversized metadata refused", WAIT, || async {
        app.jobs().await.into_iter().find(|job| {
            job.document_id == "doc-big"
                && job.last_error.as_deref().is_some_and(|error| {
                    error.contains("metadata document larger than 1048576 bytes")
                })
        })
    })
    .await;
    let odd_job = eventually("doc-odd archived", WAIT, || async {
        app.jobs()
            .await
            .into_iter()
            .find(|job| job.document_id == "doc-odd" && job.state() == JobState::Archived)
    })
    .await;
    let stored = std::fs::read(app.archive.join(odd_job.metadata_key.unwrap())).unwrap();
    assert_eq!(
        Bytes::from(stored),
        not_json,
        "archived exactly as downloaded"
    );
    assert_eq!(odd_job.participants.as_deref(), Some("[]"));
    assert!(
        crate::support::files_under(&app.archive)
            .iter()
            .all(|file| !file.contains("call-big")),
        "nothing of the oversized chunk is archived"
    );
}
