//! Which recording a chunk belongs to and where it is filed: recordings of one call started
//! in the same second never share a row or a folder, and ids that sanitise alike never share
//! a folder either.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use callvault::queue::intake::{Enqueued, enqueue};
use callvault::queue::{Db, JobState, now_millis};
use callvault::recording::{Announcement, start_time_key};
use callvault_emulator::events::{ChunkEvent, recording_file_status_updated};
use callvault_emulator::{Emulator, EmulatorConfig};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::pipeline::{add_chunk, assert_chunk_archived, start_time};
use crate::support::{TestApp, TestDatabase, eventually, files_under, start_emulator};

const WAIT: Duration = Duration::from_secs(20);
const ADMIN_TOKEN: &str = "admin-token";

/// A mixed AudioVideo Mp4 recording and an unmixed Audio Wav recording of one call, started
/// 0.8 s apart within the same second, as ACS announces them (GA: no recording id).
const MIXED_START: &str = "2026-11-27T09:20:23.1000000Z";
const UNMIXED_START: &str = "2026-11-27T09:20:23.9000000Z";
const SECOND: &str = "20261127T092023Z";

fn instant(raw: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(raw).unwrap().to_utc()
}

/// A GA RecordingFileStatusUpdated event whose `recordingStartTime` is exactly `start`.
fn event(id: &str, call_id: &str, start: &str, chunks: &[ChunkEvent], format: &str) -> Value {
    let subject = format!("/recording/call/{call_id}");
    let mut event = recording_file_status_updated(id, &subject, instant(start), chunks, format);
    event["data"]["recordingStartTime"] = json!(start);
    event
}

fn documents(manifest: &Value) -> Vec<&str> {
    manifest["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|chunk| chunk["documentId"].as_str().unwrap())
        .collect()
}

/// The mixed recording's chunk 0, the unmixed recording's chunk 0, then the mixed
/// recording's chunk 1, each in its own delivery; `mixed_first` decides which recording ACS
/// announces first and so which one keeps the plain folder name.
async fn recordings_started_in_one_second_are_archived_apart(db: TestDatabase, mixed_first: bool) {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn_on(&emulator, db, &[("admin.token", ADMIN_TOKEN.into())]).await;
    let call = "call-same-second";
    let mixed = [
        add_chunk(
            &emulator,
            call,
            "doc-mixed-0",
            0,
            "ChunkMaximumSizeExceeded",
            40_000,
        ),
        add_chunk(&emulator, call, "doc-mixed-1", 1, "SessionEnded", 30_000),
    ];
    let unmixed = add_chunk(&emulator, call, "doc-unmixed-0", 0, "SessionEnded", 20_000);
    let mixed_0 = event("evt-mixed-0", call, MIXED_START, &mixed[..1], "Mp4");
    let mixed_1 = event("evt-mixed-1", call, MIXED_START, &mixed[1..], "Mp4");
    let unmixed_0 = event("evt-unmixed-0", call, UNMIXED_START, &[unmixed], "Wav");
    let deliveries = if mixed_first {
        [mixed_0, unmixed_0, mixed_1]
    } else {
        [unmixed_0, mixed_0, mixed_1]
    };
    for delivery in &deliveries {
        assert_eq!(app.post_events(&json!([delivery])).await.status(), 200);
    }

    let (first, second) = (format!("{call}/{SECOND}"), format!("{call}/{SECOND}-2"));
    let (mixed_folder, unmixed_folder) = if mixed_first {
        (first, second)
    } else {
        (second, first)
    };
    app.wait_for_jobs(3, JobState::Archived, WAIT).await;
    let mixed_manifest = app.wait_for_manifest(Path::new(&mixed_folder), WAIT).await;
    let unmixed_manifest = app
        .wait_for_manifest(Path::new(&unmixed_folder), WAIT)
        .await;

    assert_eq!(documents(&mixed_manifest), ["doc-mixed-0", "doc-mixed-1"]);
    assert_eq!(
        mixed_manifest["eventIds"],
        json!(["evt-mixed-0", "evt-mixed-1"])
    );
    assert_eq!(mixed_manifest["recordingStartTime"], MIXED_START);
    assert_eq!(mixed_manifest["format"], "Mp4");
    assert_eq!(documents(&unmixed_manifest), ["doc-unmixed-0"]);
    assert_eq!(unmixed_manifest["eventIds"], json!(["evt-unmixed-0"]));
    assert_eq!(unmixed_manifest["recordingStartTime"], UNMIXED_START);
    assert_eq!(unmixed_manifest["format"], "Wav");

    assert_chunk_archived(
        &emulator,
        &app.archive,
        &mixed_folder,
        0,
        "doc-mixed-0",
        "mp4",
    );
    assert_chunk_archived(
        &emulator,
        &app.archive,
        &mixed_folder,
        1,
        "doc-mixed-1",
        "mp4",
    );
    assert_chunk_archived(
        &emulator,
        &app.archive,
        &unmixed_folder,
        0,
        "doc-unmixed-0",
        "wav",
    );
    let expected: Vec<String> = [
        format!("{mixed_folder}/chunk-0000.metadata.json"),
        format!("{mixed_folder}/chunk-0000.mp4"),
        format!("{mixed_folder}/chunk-0001.metadata.json"),
        format!("{mixed_folder}/chunk-0001.mp4"),
        format!("{mixed_folder}/manifest.json"),
        format!("{unmixed_folder}/chunk-0000.metadata.json"),
        format!("{unmixed_folder}/chunk-0000.wav"),
        format!("{unmixed_folder}/manifest.json"),
    ]
    .into_iter()
    .collect::<BTreeSet<_>>()
    .into_iter()
    .collect();
    assert_eq!(files_under(&app.archive), expected);

    // The admin API shows each recording's folder.
    let listed: Value = app
        .client
        .get(format!("{}/admin/recordings", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let folders: BTreeSet<&str> = listed["recordings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["folder"].as_str().unwrap())
        .collect();
    assert_eq!(
        folders,
        BTreeSet::from([mixed_folder.as_str(), unmixed_folder.as_str()])
    );
    // …and finds a recording by its folder name, suffix included.
    let key = unmixed_folder.rsplit('/').next().unwrap();
    let detail: Value = app
        .client
        .get(format!("{}/admin/recordings/{key}", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["folder"], unmixed_folder);
    assert_eq!(detail["format_type"], "Wav");
    assert_eq!(detail["chunks"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn same_second_recordings_are_archived_apart_when_the_mixed_one_comes_first() {
    recordings_started_in_one_second_are_archived_apart(TestDatabase::sqlite().await, true).await;
}

#[tokio::test]
async fn same_second_recordings_are_archived_apart_when_the_unmixed_one_comes_first() {
    recordings_started_in_one_second_are_archived_apart(TestDatabase::sqlite().await, false).await;
}

#[tokio::test]
async fn same_second_recordings_are_archived_apart_on_postgresql() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    recordings_started_in_one_second_are_archived_apart(db, false).await;
}

/// Archives one single-chunk recording per call id (all in one delivery when `together`)
/// and checks that each lands, whole and alone, in `folders[i]`.
async fn calls_are_archived_in_their_own_folders(
    emulator: &Emulator,
    calls: &[&str],
    folders: &[String],
    together: bool,
) {
    let app = TestApp::spawn(emulator, &[]).await;
    let start = start_time();
    let mut events = Vec::new();
    for (n, call) in calls.iter().enumerate() {
        // Different sizes: the media differ, as two calls' recordings do.
        let len = 20_000 + 1_000 * n as u64;
        let chunk = add_chunk(emulator, call, &format!("doc-{n}"), 0, "SessionEnded", len);
        let subject = format!("/recording/call/{call}");
        let event_id = format!("evt-{n}");
        events.push(recording_file_status_updated(
            &event_id,
            &subject,
            start,
            &[chunk],
            "Mp4",
        ));
    }
    if together {
        assert_eq!(app.post_events(&json!(events)).await.status(), 200);
    } else {
        for event in &events {
            assert_eq!(app.post_events(&json!([event])).await.status(), 200);
        }
    }
    app.wait_for_jobs(calls.len(), JobState::Archived, WAIT)
        .await;
    let key = start_time_key(start);
    for (n, folder) in folders.iter().enumerate() {
        let folder = format!("{folder}/{key}");
        let manifest = app.wait_for_manifest(Path::new(&folder), WAIT).await;
        let document = format!("doc-{n}");
        assert_eq!(manifest["callId"], calls[n]);
        assert_eq!(documents(&manifest), [document.as_str()]);
        assert_eq!(manifest["eventIds"], json!([format!("evt-{n}")]));
        assert_eq!(
            manifest["chunks"][0]["media"]["key"],
            format!("{folder}/chunk-0000.mp4")
        );
        assert_chunk_archived(emulator, &app.archive, &folder, 0, &document, "mp4");
    }
    let top: BTreeSet<String> = files_under(&app.archive)
        .iter()
        .map(|file| file.split('/').next().unwrap().to_owned())
        .collect();
    assert_eq!(top, folders.iter().cloned().collect());
}

#[tokio::test]
async fn calls_whose_ids_sanitise_alike_are_both_archived() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    calls_are_archived_in_their_own_folders(
        &emulator,
        &["call a b", "call_a_b"],
        &["call_a_b~150bba17".into(), "call_a_b".into()],
        false,
    )
    .await;
}

#[tokio::test]
async fn a_dot_and_an_underscore_call_announced_together_keep_their_own_media() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    calls_are_archived_in_their_own_folders(
        &emulator,
        &[".x", "_x"],
        &["_x~bb42e4c6".into(), "_x".into()],
        true,
    )
    .await;
}

#[tokio::test]
async fn ids_sharing_their_first_200_characters_get_their_own_folders() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let shared = "c".repeat(200);
    let (first, second) = (format!("{shared}-first"), format!("{shared}-second"));
    let folders: Vec<String> = [&first, &second]
        .iter()
        .map(|id| callvault::storage::layout::sanitise_segment(id))
        .collect();
    assert_ne!(folders[0], folders[1]);
    assert!(folders.iter().all(|f| f.len() <= 200 && f.contains('~')));
    calls_are_archived_in_their_own_folders(&emulator, &[&first, &second], &folders, true).await;
}

/// What ingest makes of a GA announcement of a recording of `call` started at `start`.
fn announced(call: &str, start: &str, [content, channel, format]: [&str; 3]) -> Announcement {
    Announcement {
        event_id: format!("evt-{call}-{start}-{format}"),
        call_id: call.into(),
        server_call_id: None,
        recording_id: None,
        recording_key: start_time_key(instant(start)),
        start_time: Some(start.into()),
        duration_ms: None,
        session_end_reason: None,
        content_type: Some(content.into()),
        channel_type: Some(channel.into()),
        format_type: Some(format.into()),
        media_extension: callvault::storage::layout::media_extension(Some(format)).into(),
        deadline: Utc::now() + chrono::Duration::hours(24),
        chunks: Vec::new(),
    }
}

fn mixed(call: &str) -> Announcement {
    announced(call, MIXED_START, ["AudioVideo", "Mixed", "Mp4"])
}

fn unmixed(call: &str) -> Announcement {
    announced(call, UNMIXED_START, ["Audio", "Unmixed", "Wav"])
}

async fn enqueued(db: &Db, work: &Announcement) -> i64 {
    let mut tx = db.begin_write().await.unwrap();
    let Enqueued::Queued { recording, .. } = enqueue(&mut tx, work, now_millis()).await.unwrap()
    else {
        panic!("no chunk can conflict in an announcement without chunks");
    };
    tx.commit().await.unwrap();
    recording
}

async fn folder_of(db: &Db, recording: i64) -> String {
    sqlx::query_scalar("SELECT recording_key FROM recordings WHERE id = $1")
        .bind(recording)
        .fetch_one(db.pool())
        .await
        .unwrap()
}

/// A database written before recordings had identities: its rows keep their folders, and
/// the next announcement of such a recording finds its row, while a second recording of the
/// same second gets a folder of its own.
async fn rows_from_before_identities_keep_their_folders(database: TestDatabase, backend: &str) {
    let db = Db::connect(&database.url, 2).await.unwrap();
    let first_schema = tempfile::tempdir().unwrap();
    let initial = format!(
        "{}/migrations/{backend}/0001_initial.sql",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::copy(&initial, first_schema.path().join("0001_initial.sql")).unwrap();
    sqlx::migrate::Migrator::new(first_schema.path())
        .await
        .unwrap()
        .run(db.pool())
        .await
        .unwrap();
    let earlier: i64 = sqlx::query_scalar(
        "INSERT INTO recordings (call_id, recording_key, start_time, content_type, channel_type, format_type,
             media_extension, deadline_at, created_at, updated_at)
         VALUES ('call-old', $1, $2, 'AudioVideo', 'Mixed', 'Mp4', 'mp4', 0, 0, 0) RETURNING id",
    )
    .bind(SECOND)
    .bind(MIXED_START)
    .fetch_one(db.pool())
    .await
    .unwrap();

    db.migrate().await.unwrap();
    assert_eq!(folder_of(&db, earlier).await, SECOND);
    let other = enqueued(&db, &unmixed("call-old")).await;
    assert_ne!(other, earlier);
    assert_eq!(folder_of(&db, other).await, format!("{SECOND}-2"));
    assert_eq!(enqueued(&db, &mixed("call-old")).await, earlier);
    assert_eq!(enqueued(&db, &mixed("call-old")).await, earlier);
    assert_eq!(enqueued(&db, &unmixed("call-old")).await, other);
    assert_eq!(folder_of(&db, earlier).await, SECOND);
}

#[tokio::test]
async fn rows_from_before_identities_keep_their_folders_on_sqlite() {
    rows_from_before_identities_keep_their_folders(TestDatabase::sqlite().await, "sqlite").await;
}

#[tokio::test]
async fn rows_from_before_identities_keep_their_folders_on_postgresql() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    rows_from_before_identities_keep_their_folders(db, "postgres").await;
}

/// Two ingest replicas at once on PostgreSQL: the first has announced the mixed recording
/// and not committed yet when the second announces `second`; the second waits on the first's
/// row, then goes on. Answers both recordings' row ids.
async fn replicas_race(second: Announcement) -> Option<(Db, i64, i64)> {
    let database = TestDatabase::postgres().await?;
    let first = Db::connect(&database.url, 2).await.unwrap();
    first.migrate().await.unwrap();
    let other_replica = Db::connect(&database.url, 2).await.unwrap();

    let mut tx = first.begin_write().await.unwrap();
    let Enqueued::Queued { recording: a, .. } = enqueue(&mut tx, &mixed("call-race"), now_millis())
        .await
        .unwrap()
    else {
        panic!("no chunks, no conflict");
    };
    let racer = tokio::spawn(async move {
        let mut tx = other_replica.begin_write().await.unwrap();
        let outcome = enqueue(&mut tx, &second, now_millis()).await.unwrap();
        tx.commit().await.unwrap();
        outcome
    });
    eventually("the second replica to wait for the first", WAIT, || async {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(first.pool())
        .await
        .unwrap();
        (waiting > 0).then_some(())
    })
    .await;
    tx.commit().await.unwrap();
    let Enqueued::Queued { recording: b, .. } = racer.await.unwrap() else {
        panic!("no chunks, no conflict");
    };
    Some((first, a, b))
}

#[tokio::test]
async fn replicas_inserting_recordings_of_one_second_at_once_get_their_own_folders() {
    let Some((db, a, b)) = replicas_race(unmixed("call-race")).await else {
        return;
    };
    assert_ne!(a, b, "two recordings merged into one row");
    assert_eq!(folder_of(&db, a).await, SECOND);
    assert_eq!(folder_of(&db, b).await, format!("{SECOND}-2"));
}

#[tokio::test]
async fn replicas_inserting_one_recording_at_once_share_its_row() {
    let Some((db, a, b)) = replicas_race(mixed("call-race")).await else {
        return;
    };
    assert_eq!(a, b, "one recording split over two rows");
    assert_eq!(folder_of(&db, a).await, SECOND);
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM recordings")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(rows, 1);
}

/// A metadata document is never replaced: other bytes already at its key fail the job with a
/// reason that says so, and the document found there is kept.
#[tokio::test]
async fn another_metadata_document_at_the_key_is_kept_and_the_job_fails() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn(&emulator, &[]).await;
    let start = start_time();
    let folder = app.archive.join("call-kept").join(start_time_key(start));
    std::fs::create_dir_all(&folder).unwrap();
    let found = br#"{"participants":[{"participantId":"8:acs:someone-else"}]}"#;
    std::fs::write(folder.join("chunk-0000.metadata.json"), found).unwrap();

    let chunk = add_chunk(&emulator, "call-kept", "doc-kept", 0, "SessionEnded", 5_000);
    let event = recording_file_status_updated(
        "evt-kept",
        "/recording/call/call-kept",
        start,
        &[chunk],
        "Mp4",
    );
    assert_eq!(app.post_events(&json!([event])).await.status(), 200);
    let jobs = app.wait_for_jobs(1, JobState::Failed, WAIT).await;
    let error = jobs[0].last_error.as_deref().unwrap_or_default();
    assert!(
        error.contains("other content already exists")
            && error.contains("chunk-0000.metadata.json"),
        "{error}"
    );
    assert_eq!(
        std::fs::read(folder.join("chunk-0000.metadata.json")).unwrap(),
        found
    );
}
