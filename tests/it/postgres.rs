//! The queue on PostgreSQL (several replicas) and concurrent claiming on both backends.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use callvault::acs::{Fetch, UrlGuard};
use callvault::queue::intake::{Enqueued, enqueue};
use callvault::queue::{Db, JobState, jobs, now_millis};
use callvault::recording::{Announcement, ChunkSpec};
use callvault_emulator::EmulatorConfig;
use callvault_emulator::events::recording_file_status_updated;
use serde_json::json;

use crate::pipeline::{add_chunk, assert_chunk_archived, start_time};
use crate::support::{TestApp, TestDatabase, start_emulator};

#[tokio::test]
async fn the_pipeline_runs_on_postgresql() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let app = TestApp::spawn_on(&emulator, db, &[]).await;
    let start = start_time();
    let chunks = [
        add_chunk(
            &emulator,
            "call-pg",
            "doc-pg-0",
            0,
            "ChunkMaximumSizeExceeded",
            40_000,
        ),
        add_chunk(&emulator, "call-pg", "doc-pg-1", 1, "SessionEnded", 30_000),
    ];
    let event =
        recording_file_status_updated("evt-pg", "/recording/call/call-pg", start, &chunks, "Mp4");
    assert_eq!(app.post_events(&json!([event])).await.status(), 200);
    let folder = format!("call-pg/{}", start.format("%Y%m%dT%H%M%SZ"));
    let manifest = app
        .wait_for_manifest(Path::new(&folder), Duration::from_secs(20))
        .await;
    assert_eq!(manifest["chunks"].as_array().unwrap().len(), 2);
    assert_chunk_archived(&emulator, &app.archive, &folder, 1, "doc-pg-1", "mp4");
}

fn announcement(n: usize) -> Announcement {
    let endpoint = url::Url::parse("https://contoso.communication.azure.com/").unwrap();
    let guard = UrlGuard::new(&[], &endpoint, false);
    Announcement {
        event_id: format!("e{n}"),
        call_id: format!("call-{n}"),
        server_call_id: None,
        recording_id: Some(format!("rec-{n}")),
        recording_key: format!("rec-{n}"),
        start_time: None,
        duration_ms: None,
        session_end_reason: None,
        content_type: None,
        channel_type: None,
        format_type: None,
        media_extension: "mp4".into(),
        deadline: chrono::Utc::now() + chrono::Duration::hours(48)
            - chrono::Duration::minutes(n as i64),
        chunks: (0..2)
            .map(|index| ChunkSpec {
                document_id: format!("doc-{n}-{index}"),
                index,
                end_reason: None,
                content_url: guard
                    .preview(&endpoint, &format!("doc-{n}-{index}"), Fetch::Media)
                    .unwrap()
                    .as_str()
                    .to_owned(),
                metadata_url: guard
                    .preview(&endpoint, &format!("doc-{n}-{index}"), Fetch::Metadata)
                    .unwrap()
                    .as_str()
                    .to_owned(),
                delete_url: None,
            })
            .collect(),
    }
}

/// 8 workers race for 40 jobs (20 recordings × 2 chunks): each job is claimed once, the most
/// urgent deadline first, and never a second chunk while the first of its recording is running.
async fn concurrent_claims_never_overlap(db: TestDatabase) {
    let db = Db::connect(&db.url, 8).await.unwrap();
    db.migrate().await.unwrap();
    let mut tx = db.begin_write().await.unwrap();
    for n in 0..20 {
        assert!(matches!(
            enqueue(&mut tx, &announcement(n), now_millis())
                .await
                .unwrap(),
            Enqueued::Queued { new_jobs: 2, .. }
        ));
    }
    tx.commit().await.unwrap();

    let mut claimers = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let db = db.clone();
        claimers.spawn(async move {
            let mut claimed = Vec::new();
            let far = now_millis() + 600_000;
            while let Some(job) = jobs::claim(&db, &format!("w{worker}"), far, now_millis())
                .await
                .unwrap()
            {
                claimed.push((job.id, job.recording_id, job.chunk_index));
            }
            claimed
        });
    }
    let mut all = Vec::new();
    while let Some(claimed) = claimers.join_next().await {
        all.extend(claimed.unwrap());
    }
    let ids: HashSet<_> = all.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(ids.len(), all.len(), "a job was claimed twice");
    // Only first chunks are claimable while every first chunk is running.
    assert_eq!(all.len(), 20);
    assert!(all.iter().all(|(_, _, index)| *index == 0));
    let running = jobs::list(&db, Some(JobState::Running), 100).await.unwrap();
    assert_eq!(running.len(), 20);
}

#[tokio::test]
async fn concurrent_claims_never_overlap_on_sqlite() {
    concurrent_claims_never_overlap(TestDatabase::sqlite().await).await;
}

#[tokio::test]
async fn concurrent_claims_never_overlap_on_postgresql() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    concurrent_claims_never_overlap(db).await;
}

#[tokio::test]
async fn the_most_urgent_deadline_is_claimed_first() {
    let db = TestDatabase::sqlite().await;
    let db = Db::connect(&db.url, 2).await.unwrap();
    db.migrate().await.unwrap();
    let mut tx = db.begin_write().await.unwrap();
    for n in [1, 5, 3] {
        enqueue(&mut tx, &announcement(n), now_millis())
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let job = jobs::claim(&db, "w", now_millis() + 60_000, now_millis())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        job.document_id, "doc-5-0",
        "announcement 5 has the earliest deadline"
    );
}

#[tokio::test]
async fn a_lapsed_lease_claimed_again_is_lost_to_its_first_holder() {
    let db = TestDatabase::sqlite().await;
    let db = Db::connect(&db.url, 2).await.unwrap();
    db.migrate().await.unwrap();
    let mut tx = db.begin_write().await.unwrap();
    enqueue(&mut tx, &announcement(1), now_millis())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let now = now_millis();
    let first = jobs::claim(&db, "worker-a/1", now - 1, now)
        .await
        .unwrap()
        .unwrap();
    // The lease has lapsed: the same process claims the job again under a new lease.
    let second = jobs::claim(&db, "worker-a/2", now + 60_000, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((first.id, second.attempts), (second.id, 2));

    assert!(
        !jobs::renew(&db, first.id, "worker-a/1", now + 60_000)
            .await
            .unwrap()
    );
    let retry = jobs::Finish::Retry {
        next_attempt_at: now,
        error: "late".into(),
    };
    assert!(
        !jobs::finish(&db, &first, "worker-a/1", &retry, now)
            .await
            .unwrap(),
        "the first attempt's outcome is refused"
    );
    assert!(
        jobs::renew(&db, second.id, "worker-a/2", now + 60_000)
            .await
            .unwrap()
    );
    assert_eq!(
        jobs::get(&db, first.id).await.unwrap().unwrap().state(),
        JobState::Running
    );
}
