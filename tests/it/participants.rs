//! The participant index: a person's recordings found through the library, the admin API and
//! the command line on SQLite and PostgreSQL; phone numbers normalised from the metadata ACS
//! serves to the operator's query; the backfill of chunks archived before the index existed.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use callvault::app::Role;
use callvault::participants::{self, ParticipantRecording};
use callvault::queue::Db;
use callvault::queue::jobs::{ArchivedChunk, Finish};
use callvault_emulator::events::{ChunkEvent, recording_file_status_updated};
use callvault_emulator::{DeliveryOptions, DocumentSpec, EmulatorConfig, MediaSpec};
use serde_json::{Value, json};

use crate::admin::support::{
    DEAD_ACS, Store, TOKEN, TestApp, TestDatabase, announce, archived_chunk, drive, ingest, job_id,
    on_every_store,
};
use crate::support::{command_output, eventually, start_emulator};

const AGENT: &str =
    "8:acs:631fa8d8-1b2c-4d3e-8f90-a1b2c3d4e5f6_0000000c-0d1e-2f3a-4b5c-6d7e8f9a0b1c";

/// Archives chunk `index` of `recording` (its job must be the one due) naming `participants`.
async fn archive_with(db: &Db, recording: &str, index: u32, participants: &[&str]) {
    let chunk = ArchivedChunk {
        participants: serde_json::to_string(participants).unwrap(),
        ..archived_chunk(recording, index)
    };
    drive(
        db,
        job_id(db, recording, index).await,
        Finish::Archived(chunk),
    )
    .await;
}

fn recording_ids(found: &[ParticipantRecording]) -> Vec<&str> {
    found
        .iter()
        .map(|r| r.recording_id.as_deref().unwrap())
        .collect()
}

fn json_recording_ids(page: &Value) -> Vec<String> {
    page["recordings"]
        .as_array()
        .unwrap_or_else(|| panic!("no recordings in {page}"))
        .iter()
        .map(|r| r["recording_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Runs `callvault ARGS` against the database at `url`, off the runtime's thread: (exit
/// code, stdout, stderr).
async fn cli(url: &str, args: &[&str]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_callvault"));
    command.args(args).env("CALLVAULT__DATABASE__URL", url);
    let output = command_output(command).await;
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn a_participant_in_several_recordings_and_chunks_is_found_everywhere(store: Store) {
    let Some(app) = ingest(store).await else {
        return;
    };
    let db = app.queue();
    // Each job is driven right after it is announced, so it is the only one due.
    announce(
        &app,
        "first",
        1,
        &[(0, "ChunkMaximumSizeExceeded"), (1, "SessionEnded")],
    )
    .await;
    archive_with(db, "first", 0, &[AGENT, "4:+14255550123"]).await;
    archive_with(
        db,
        "first",
        1,
        &[&AGENT.to_ascii_uppercase(), "4:+14255550123"],
    )
    .await;
    announce(&app, "second", 1, &[(0, "SessionEnded")]).await;
    archive_with(
        db,
        "second",
        0,
        &[
            "4:+14255550123",
            "8:orgid:3F2504E0-4F89-11D3-9A0C-0305E82C3301",
        ],
    )
    .await;
    announce(&app, "unrelated", 1, &[(0, "SessionEnded")]).await;
    archive_with(db, "unrelated", 0, &["8:acs:someone_else"]).await;
    // Announced but not archived yet: not in the index until its chunk is.
    announce(&app, "pending", 1, &[(0, "SessionEnded")]).await;

    // The library: newest first, every chunk with its object keys, once per recording.
    let found = participants::recordings_of(db, AGENT).await.unwrap();
    assert_eq!(recording_ids(&found), ["first"]);
    let first = &found[0];
    assert_eq!(
        first.state.as_str(),
        "incomplete",
        "no manifest in this test"
    );
    assert_eq!(first.folder, "call-first/first");
    assert_eq!(first.first_seen_chunk, 0);
    let keys: Vec<_> = first
        .chunks
        .iter()
        .map(|c| {
            (
                c.index,
                c.media_key.clone().unwrap(),
                c.metadata_key.clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            (
                0,
                "call-first/first/chunk-0000.mp3".to_owned(),
                "call-first/first/chunk-0000.metadata.json".to_owned()
            ),
            (
                1,
                "call-first/first/chunk-0001.mp3".to_owned(),
                "call-first/first/chunk-0001.metadata.json".to_owned()
            ),
        ]
    );
    let phone = participants::recordings_of(db, "+1 (425) 555-0123")
        .await
        .unwrap();
    assert_eq!(recording_ids(&phone), ["second", "first"]);
    let teams = participants::recordings_of(db, "8:orgid:3f2504e0-4f89-11d3-9a0c-0305e82c3301")
        .await
        .unwrap();
    assert_eq!(recording_ids(&teams), ["second"]);
    assert!(
        participants::recordings_of(db, "8:acs:nobody")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        participants::recordings_of(db, "8:acs:a b").await,
        Err(participants::LookupError::Invalid(_))
    ));

    // The admin API: the same answer for the raw id and a typed phone number, paged.
    let (status, page) = app.get("/admin/participants/4:+14255550123").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["participant"], "4:+14255550123");
    assert_eq!(page["kind"], "phone_number");
    assert_eq!(json_recording_ids(&page), ["second", "first"]);
    assert_eq!(
        page["recordings"][1]["chunks"][1]["media_key"],
        "call-first/first/chunk-0001.mp3"
    );
    let (_, typed) = app.get("/admin/participants/%2B1%20425%20555%200123").await;
    assert_eq!(json_recording_ids(&typed), ["second", "first"]);
    let (_, one) = app.get("/admin/participants/4:+14255550123?limit=1").await;
    assert_eq!(json_recording_ids(&one), ["second"]);
    let cursor = one["next_cursor"].as_str().expect("a second page");
    let (_, rest) = app
        .get(&format!(
            "/admin/participants/4:+14255550123?limit=1&cursor={cursor}"
        ))
        .await;
    assert_eq!(json_recording_ids(&rest), ["first"]);
    assert!(rest["next_cursor"].is_null(), "{rest}");
    let (status, body) = app.get("/admin/participants/8:acs:a%20b").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_participant")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("whitespace"),
        "{body}"
    );
    let long = "a".repeat(300);
    let (status, body) = app.get(&format!("/admin/participants/{long}")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_participant")),
        "{body}"
    );
    let (status, body) = app.get("/admin/participants/8:acs:x?cursor=zzz").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_cursor")),
        "{body}"
    );
    let unauthorised = app
        .client
        .get(app.url("/admin/participants/4:+14255550123"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorised.status(), 401);

    // The operator page searches the same endpoint, the id escaped into the path.
    let ui = app.client.get(app.url("/admin/ui")).send().await.unwrap();
    let ui = ui.text().await.unwrap();
    assert!(
        ui.contains(r#"<form id="participant-form""#),
        "the page has the search box"
    );
    assert!(
        ui.contains(r#""/admin/participants/" + encodeURIComponent(id)"#),
        "the page asks the participant endpoint"
    );

    // The command line: the same JSON, and a table for people.
    let (code, out, err) = cli(
        &app.db.url,
        &["participants", "show", "+1 425-555-0123", "--json"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let printed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json_recording_ids(&printed), ["second", "first"]);
    let (code, out, err) = cli(&app.db.url, &["participants", "show", AGENT]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!("1 recording(s) of {AGENT}\n")),
        "{out}"
    );
    assert!(
        out.contains("call-first/first") && out.contains("2/2"),
        "{out}"
    );
    assert!(!out.contains("second"), "{out}");
    let (code, _, err) = cli(&app.db.url, &["participants", "show", "8:acs:a b"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("whitespace"), "{err}");
    app.close().await;
}
on_every_store!(a_participant_in_several_recordings_and_chunks_is_found_everywhere);

/// A chunk naming hostile ids is archived all the same; the ids the index refuses are left out.
async fn over_long_and_malformed_ids_are_skipped_not_fatal(store: Store) {
    let Some(app) = ingest(store).await else {
        return;
    };
    let db = app.queue();
    announce(&app, "odd", 1, &[(0, "SessionEnded")]).await;
    let long = format!("8:acs:{}", "a".repeat(400));
    archive_with(
        db,
        "odd",
        0,
        &[&long, "", "8:acs:bad id", "4:+442079460000"],
    )
    .await;
    let (_, jobs) = app.get("/admin/jobs?state=archived").await;
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 1, "{jobs}");
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM participant_recordings")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(rows, 1, "only the phone number is indexed");
    let found = participants::recordings_of(db, "+44 20 7946 0000")
        .await
        .unwrap();
    assert_eq!(recording_ids(&found), ["odd"]);
    app.close().await;
}
on_every_store!(over_long_and_malformed_ids_are_skipped_not_fatal);

/// The phone number ACS writes in a chunk's metadata document, archived by a real worker from
/// the emulator, is found by the number as a person types it.
#[tokio::test]
async fn a_phone_number_from_served_metadata_is_found_as_typed() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn(&emulator, &[("admin.token", TOKEN.to_owned())]).await;
    let metadata = json!({
        "chunkIndex": 0,
        "participants": [
            { "participantId": "4:+14255550123" },
            { "participantId": AGENT },
            { "participantId": format!("8:acs:{}", "f".repeat(300)) },
            { "channel": 2 }
        ]
    });
    let urls = emulator.add_document(DocumentSpec {
        document_id: "doc-phone-0".into(),
        media: MediaSpec::Synthetic { len: 4096, seed: 3 },
        metadata: Some(serde_json::to_vec(&metadata).unwrap().into()),
        call_id: "call-phone".into(),
        chunk_index: 0,
        created_at: chrono::Utc::now(),
    });
    let chunk = ChunkEvent {
        document_id: "doc-phone-0".into(),
        index: 0,
        end_reason: "SessionEnded".into(),
        urls: Some(urls),
    };
    let event = recording_file_status_updated(
        "evt-phone",
        "/recording/call/call-phone/serverCallId/srv-phone/recordingId/rec-phone",
        chrono::Utc::now() - chrono::Duration::minutes(5),
        &[chunk],
        "Wav",
    );
    let report = emulator
        .deliver(&app.events_url(), vec![event], DeliveryOptions::default())
        .await;
    assert_eq!(report.delivered, 1);

    let db = app.queue().clone();
    let found = eventually(
        "the chunk to be archived and indexed",
        Duration::from_secs(20),
        || {
            let db = db.clone();
            async move {
                let found = participants::recordings_of(&db, "+1 425 555 0123")
                    .await
                    .unwrap();
                (!found.is_empty()).then_some(found)
            }
        },
    )
    .await;
    assert_eq!(recording_ids(&found), ["rec-phone"]);
    let media = found[0].chunks[0].media_key.clone().unwrap();
    assert!(
        app.archive.join(&media).is_file(),
        "{media} is in the archive"
    );
    let (status, page) = app.get("/admin/participants/14255550123").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(json_recording_ids(&page), ["rec-phone"]);
    // The over-long id was left out of the index, counted, and the chunk archived regardless.
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("\ncallvault_participant_ids_skipped_total 1\n"),
        "{metrics}"
    );
    app.close().await;
}

/// Migrations 0001–0010 only: a database as the release before the index left it.
async fn migrate_before_the_index(url: &str) -> Db {
    let db = Db::connect(url, 2).await.unwrap();
    let sub = match db.backend() {
        callvault::queue::Backend::Sqlite => "sqlite",
        callvault::queue::Backend::Postgres => "postgres",
    };
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(sub);
    let earlier = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.as_str() < "0011" {
            std::fs::copy(&path, earlier.path().join(&name)).unwrap();
        }
    }
    sqlx::migrate::Migrator::new(earlier.path())
        .await
        .unwrap()
        .run(db.pool())
        .await
        .unwrap();
    db
}

/// `recordings` recordings of 10 archived chunks each, archived by a release without the
/// index: every chunk names the agent and its recording's customer `4:+1555000{n}`.
async fn seed_archived_before_the_index(db: &Db, recordings: i64) {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {recordings})
         INSERT INTO recordings (call_id, recording_key, recording_id, media_extension, deadline_at, created_at, updated_at)
         SELECT 'call-' || i, 'old-' || i, 'old-' || i, 'wav', 1000000, 1000, 1000 FROM n"
    )))
    .execute(db.pool())
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < 9)
         INSERT INTO jobs (recording_id, chunk_index, document_id, content_url, metadata_url, state,
                           next_attempt_at, deadline_at, created_at, updated_at, archived_at,
                           media_key, metadata_key, participants)
         SELECT r.id, c.i, 'doc-' || r.id || '-' || c.i, 'https://x/c', 'https://x/m', 'archived',
                0, 1000000, 1000, 2000, 2000 + c.i,
                r.call_id || '/' || r.recording_key || '/chunk-000' || c.i || '.wav',
                r.call_id || '/' || r.recording_key || '/chunk-000' || c.i || '.metadata.json',
                '[\"{AGENT}\", \"4:+1555000' || r.id || '\"]'
         FROM recordings r, c ORDER BY r.id, c.i"
    )))
    .execute(db.pool())
    .await
    .unwrap();
}

async fn index_rows(db: &Db) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM participant_recordings")
        .fetch_one(db.pool())
        .await
        .unwrap()
}

async fn the_backfill_indexes_earlier_chunks_resumably_and_a_second_run_changes_nothing(
    store: Store,
) {
    let db_handle = match store {
        Store::Sqlite => TestDatabase::sqlite().await,
        Store::Postgres => match TestDatabase::postgres().await {
            Some(db) => db,
            None => return,
        },
    };
    let url = db_handle.url.clone();
    let old = migrate_before_the_index(&url).await;
    // 1,200 archived jobs: three batches.
    seed_archived_before_the_index(&old, 120).await;
    old.close().await;

    let db = Db::connect(&url, 2).await.unwrap();
    db.migrate().await.unwrap();
    assert_eq!(
        index_rows(&db).await,
        0,
        "nothing is indexed by the migration itself"
    );
    let progress = callvault::queue::participants::backfill_progress(&db)
        .await
        .unwrap();
    assert_eq!((progress.next_job_id, progress.through_job_id), (0, 1200));

    // One batch, then an interruption: the next run resumes after it.
    let first = callvault::participants::backfill::step(&db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.jobs_read, 500);
    let progress = callvault::queue::participants::backfill_progress(&db)
        .await
        .unwrap();
    assert_eq!(progress.next_job_id, 501);
    assert!(!progress.is_finished());

    let (code, out, err) = cli(&url, &["participants", "backfill", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["jobs_read"], 700, "{report}");
    assert_eq!(report["progress"]["next_job_id"], 1201, "{report}");
    assert!(report["progress"]["finished_at"].is_i64(), "{report}");
    // One row per participant and recording: the agent and one customer in each of 120.
    assert_eq!(index_rows(&db).await, 240);

    let (code, out, err) = cli(&url, &["participants", "backfill"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("read 0 archived job(s) in 0 batch(es), added 0 index row(s)"),
        "{out}"
    );
    assert!(out.contains("the backfill is complete"), "{out}");
    // Walking everything again finds everything already there.
    let (code, out, err) = cli(&url, &["participants", "backfill", "--restart", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let again: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (again["jobs_read"].as_i64(), again["rows_added"].as_i64()),
        (Some(1200), Some(0)),
        "{again}"
    );
    assert_eq!(index_rows(&db).await, 240);

    let agent = participants::recordings_of(&db, AGENT).await.unwrap();
    assert_eq!(agent.len(), 120, "the agent is in every recording");
    assert!(agent.iter().all(|r| r.chunks.len() == 10));
    let customer = participants::recordings_of(&db, "+1 555 000 7")
        .await
        .unwrap();
    assert_eq!(recording_ids(&customer), ["old-7"]);
    assert_eq!(
        customer[0].first_seen_at, 2000,
        "first seen when its first chunk was archived"
    );
    assert_eq!(
        customer[0].chunks[3].media_key.as_deref(),
        Some("call-7/old-7/chunk-0003.wav")
    );
    db.close().await;
    db_handle.remove().await;
}
on_every_store!(the_backfill_indexes_earlier_chunks_resumably_and_a_second_run_changes_nothing);

/// `serve` runs the backfill in the background at start-up: earlier recordings become findable
/// without an operator doing anything.
async fn serve_backfills_in_the_background_at_start(store: Store) {
    let db_handle = match store {
        Store::Sqlite => TestDatabase::sqlite().await,
        Store::Postgres => match TestDatabase::postgres().await {
            Some(db) => db,
            None => return,
        },
    };
    let old = migrate_before_the_index(&db_handle.url).await;
    seed_archived_before_the_index(&old, 3).await;
    old.close().await;
    let connection_string = format!("endpoint=http://{DEAD_ACS}/;accesskey=aGVsbG8=");
    let app = TestApp::launch(
        &connection_string,
        db_handle,
        Role::All,
        &[("admin.token", TOKEN.to_owned())],
    )
    .await;
    let page = app
        .await_json(
            "/admin/participants/4:+15550002",
            "the background backfill to index recording 2",
            |page| !page["recordings"].as_array().unwrap().is_empty(),
        )
        .await;
    assert_eq!(json_recording_ids(&page), ["old-2"]);
    app.await_json(
        &format!("/admin/participants/{AGENT}"),
        "the agent in all three recordings",
        |page| page["recordings"].as_array().unwrap().len() == 3,
    )
    .await;
    app.close().await;
}
on_every_store!(serve_backfills_in_the_background_at_start);
