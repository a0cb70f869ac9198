//! Re-runs never upload an object twice, and never overwrite an object they did not write.

use std::path::Path;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use callvault::queue::JobState;
use callvault_emulator::events::recording_file_status_updated;
use callvault_emulator::{DocumentSpec, Emulator, EmulatorConfig, MediaSpec};
use chrono::Utc;
use serde_json::json;

use crate::pipeline::start_time;
use crate::support::{TestApp, start_emulator};

/// Announces one chunk whose media is `media`, with the archive already holding `existing`
/// at the chunk's key. Returns the emulator (keep it alive), the app and the path of that key.
async fn announce_over_existing(
    media: &[u8],
    existing: &[u8],
) -> (Emulator, TestApp, std::path::PathBuf) {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn_ingest(&emulator, &[]).await;
    let start = start_time();
    let urls = emulator.add_document(DocumentSpec {
        document_id: "doc-again".into(),
        media: MediaSpec::Bytes(Bytes::copy_from_slice(media)),
        metadata: None,
        call_id: "call-again".into(),
        chunk_index: 0,
        created_at: Utc::now(),
    });
    let folder = app
        .archive
        .join(format!("call-again/{}", start.format("%Y%m%dT%H%M%SZ")));
    std::fs::create_dir_all(&folder).unwrap();
    let key = folder.join("chunk-0000.mp4");
    std::fs::write(&key, existing).unwrap();
    let old = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&key)
        .unwrap()
        .set_modified(old)
        .unwrap();

    let chunk = callvault_emulator::ChunkEvent {
        document_id: "doc-again".into(),
        index: 0,
        end_reason: "SessionEnded".into(),
        urls: Some(urls),
    };
    let event = recording_file_status_updated(
        "evt-again",
        "/recording/call/call-again",
        start,
        &[chunk],
        "Mp4",
    );
    assert_eq!(app.post_events(&json!([event])).await.status(), 200);
    (emulator, app, key)
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

#[tokio::test]
async fn an_identical_object_already_archived_is_not_uploaded_again() {
    let media = b"the same bytes as before".repeat(1000);
    let (_emulator, app, key) = announce_over_existing(&media, &media).await;
    let before = modified(&key);
    let jobs = app.drain_expecting(1, JobState::Archived).await;
    assert_eq!(jobs[0].media_bytes, Some(media.len() as i64));
    assert_eq!(modified(&key), before, "the object was not written again");
    assert_eq!(std::fs::read(&key).unwrap(), media);
}

#[tokio::test]
async fn a_different_object_at_the_key_is_kept_and_the_job_fails_with_the_reason() {
    let (_emulator, app, key) =
        announce_over_existing(b"what ACS serves now", b"another recording's bytes").await;
    let jobs = app.drain_expecting(1, JobState::Failed).await;
    assert_eq!(jobs[0].attempts, 1, "not retried: retrying cannot help");
    let error = jobs[0].last_error.as_deref().unwrap();
    assert!(
        error.contains("other content already exists") && error.contains("replay"),
        "{error}"
    );
    assert_eq!(
        std::fs::read(&key).unwrap(),
        b"another recording's bytes",
        "the existing object is untouched"
    );
}
