//! Erasure and retention end to end: recordings archived through the emulator into a local
//! folder, S3 (moto) or Azure Blob (Azurite), on SQLite and PostgreSQL, then erased through the
//! admin API, the command line or the retention job. The store keeps only the tombstone, whose
//! hashes are those of what was there, and nothing brings the recording back.

use std::collections::BTreeSet;

use callvault::admin::erasure::{self, ErasureRequest};
use callvault::admin::retention;
use callvault::app::Role;
use callvault::config::RetentionSettings;
use callvault::queue::erasures::{self, Intent, Origin};
use callvault::queue::{JobState, locks, now_millis};
use callvault::storage::tombstone::Tombstone;
use callvault::storage::{Archive, RecordingLayout};
use callvault_emulator::events::recording_file_status_updated;
use callvault_emulator::{Emulator, EmulatorConfig};
use futures_util::StreamExt;
use object_store::ObjectStore;
use serde_json::{Value, json};

use crate::pipeline::{add_chunk, start_time};
use crate::remote_storage::{azure_storage, s3_storage};
use crate::support::{TestApp, TestDatabase, start_emulator};

const TOKEN: &str = "erasure-token";

#[derive(Debug, Clone, Copy)]
enum Db {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, Copy)]
enum Store {
    Local,
    S3,
    Azure,
}

/// Storage settings for `store`; `None` when its server is not configured (skipped).
async fn storage(store: Store) -> Option<Vec<(&'static str, String)>> {
    match store {
        Store::Local => Some(Vec::new()),
        Store::S3 => {
            let settings = s3_storage().await?;
            enable_versioning(&settings).await;
            Some(settings)
        }
        Store::Azure => azure_storage().await,
    }
}

/// Turns on versioning of the test's moto bucket (moto takes unsigned requests), so a rewritten
/// or deleted object keeps its earlier versions, as on an Object Lock bucket.
async fn enable_versioning(settings: &[(&str, String)]) {
    let url = format!("{}?versioning", bucket_url(settings));
    let answer = reqwest::Client::new()
        .put(url)
        .body(r#"<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>"#)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
}

fn setting(settings: &[(&str, String)], name: &str) -> Option<String> {
    settings
        .iter()
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.clone())
}

fn bucket_url(settings: &[(&str, String)]) -> String {
    format!(
        "{}/{}",
        setting(settings, "storage.endpoint").unwrap(),
        setting(settings, "storage.bucket").unwrap()
    )
}

/// A HEAD signed with the test credentials (moto wants them on an Object Lock bucket).
async fn signed_head(url: &str) -> reqwest::Response {
    let mut request = http::Request::builder()
        .method(http::Method::HEAD)
        .uri(url)
        .body(Vec::<u8>::new().into())
        .unwrap();
    let credential = object_store::aws::AwsCredential {
        key_id: std::env::var("AWS_ACCESS_KEY_ID").unwrap(),
        secret_key: std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_default(),
        token: None,
    };
    object_store::aws::AwsAuthorizer::new(&credential, "s3", "us-east-1")
        .try_authorize(&mut request, None)
        .unwrap();
    reqwest::Client::new()
        .head(url)
        .headers(request.headers().clone())
        .send()
        .await
        .unwrap()
}

/// Every version and delete marker moto keeps below `prefix`, as `key@version` lines.
async fn s3_versions(settings: &[(&str, String)], prefix: &str) -> Vec<String> {
    let url = format!("{}?versions&prefix={prefix}", bucket_url(settings));
    let body = reqwest::get(url).await.unwrap().text().await.unwrap();
    body.split("<Key>")
        .skip(1)
        .map(|rest| rest.split("</Key>").next().unwrap().to_owned())
        .collect()
}

/// The ingest role (the test drains the queue itself) on a fresh database of `db`.
async fn start(emulator: &Emulator, db: Db, extra: &[(&'static str, String)]) -> Option<TestApp> {
    let database = match db {
        Db::Sqlite => TestDatabase::sqlite().await,
        Db::Postgres => TestDatabase::postgres().await?,
    };
    let mut settings = vec![("admin.token", TOKEN.to_owned())];
    settings.extend(extra.iter().cloned());
    Some(
        TestApp::launch(
            &emulator.connection_string(),
            database,
            Role::Ingest,
            &settings,
        )
        .await,
    )
}

/// Announces a recording of `chunks` chunks of call `call` and returns its event.
fn announce(emulator: &Emulator, call: &str, chunks: u32) -> Value {
    let events: Vec<_> = (0..chunks)
        .map(|index| {
            let end = if index + 1 == chunks {
                "SessionEnded"
            } else {
                "ChunkMaximumSizeExceeded"
            };
            add_chunk(
                emulator,
                call,
                &format!("doc-{call}-{index}"),
                index,
                end,
                2000 + u64::from(index),
            )
        })
        .collect();
    recording_file_status_updated(
        &format!("evt-{call}-{}", uuid::Uuid::new_v4()),
        &format!("/recording/call/{call}/serverCallId/srv-{call}"),
        start_time(),
        &events,
        "Mp3",
    )
}

/// Delivers `event` and returns the delivery summary.
async fn deliver(app: &TestApp, event: &Value) -> Value {
    let answer = app.post_events(&json!([event])).await;
    assert_eq!(answer.status(), 200);
    answer.json().await.unwrap()
}

async fn admin_post(app: &TestApp, path: &str, body: &Value) -> (u16, Value) {
    let answer = app
        .client
        .post(format!("{}{path}", app.base))
        .bearer_auth(TOKEN)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

async fn admin_get(app: &TestApp, path: &str) -> (u16, Value) {
    let answer = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

fn archive(app: &TestApp) -> &Archive {
    &app.running().state.archive
}

/// The recording's layout, from its row.
async fn layout_of(app: &TestApp, id: i64) -> RecordingLayout {
    let recording = callvault::queue::recordings::get(app.queue(), id)
        .await
        .unwrap()
        .unwrap();
    archive(app).layout(&recording.call_id, &recording.recording_key)
}

/// (key, bytes, sha256) of every object in the folder, read back from the store.
async fn objects_in(
    archive: &Archive,
    layout: &RecordingLayout,
) -> BTreeSet<(String, u64, String)> {
    let mut listing = archive.store().list(Some(&layout.folder()));
    let mut keys = Vec::new();
    while let Some(meta) = listing.next().await {
        keys.push(meta.unwrap().location);
    }
    let mut objects = BTreeSet::new();
    for key in keys {
        let digest = archive.digest_of(&key).await.unwrap().unwrap();
        objects.insert((digest.key, digest.bytes, digest.sha256));
    }
    objects
}

async fn tombstone(archive: &Archive, layout: &RecordingLayout) -> Tombstone {
    serde_json::from_slice(&archive.read(&layout.tombstone()).await.unwrap()).unwrap()
}

async fn a_recording_with_several_chunks_is_erased_and_stays_erased(db: Db, store: Store) {
    let Some(storage) = storage(store).await else {
        return;
    };
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let Some(app) = start(&emulator, db, &storage).await else {
        return;
    };
    let event = announce(&emulator, "call-erase", 3);
    deliver(&app, &event).await;
    let jobs = app.drain_expecting(3, JobState::Archived).await;
    let layout = layout_of(&app, 1).await;
    let before = objects_in(archive(&app), &layout).await;
    assert_eq!(
        before.len(),
        7,
        "3 media, 3 metadata, 1 manifest: {before:?}"
    );

    let (status, body) = admin_post(
        &app,
        "/admin/recordings/1/erase",
        &json!({"reason": "data subject request 2026-118", "dry_run": true}),
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("dry_run")),
        "{body}"
    );
    assert_eq!(body["deleted"].as_array().unwrap().len(), 7, "{body}");
    assert_eq!(
        objects_in(archive(&app), &layout).await,
        before,
        "a dry run deletes nothing"
    );

    let (status, body) =
        admin_post(&app, "/admin/recordings/1/erase", &json!({"reason": " "})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("reason_required")),
        "{body}"
    );

    let (status, body) = admin_post(
        &app,
        "/admin/recordings/1/erase",
        &json!({"reason": "data subject request 2026-118"}),
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("done")),
        "{body}"
    );

    // Only the tombstone is left, and it names exactly what was there.
    let after = objects_in(archive(&app), &layout).await;
    let keys: Vec<_> = after.iter().map(|(key, _, _)| key.clone()).collect();
    assert_eq!(keys, [layout.tombstone().to_string()]);
    let tombstone = tombstone(archive(&app), &layout).await;
    let named: BTreeSet<_> = tombstone
        .objects
        .iter()
        .map(|object| (object.key.clone(), object.bytes, object.sha256.clone()))
        .collect();
    assert_eq!(named, before);
    assert_eq!(tombstone.reason, "data subject request 2026-118");
    assert_eq!(
        (tombstone.origin.as_str(), tombstone.erased_by.as_str()),
        ("request", "admin")
    );
    // The audit trail names who erased it, why, and every object deleted.
    let (status, trail) = admin_get(&app, "/admin/audit?recording=1").await;
    assert_eq!(status, 200, "{trail}");
    let erased = trail["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|record| record["action"] == "erased")
        .unwrap_or_else(|| panic!("an erasure record: {trail}"));
    assert_eq!(erased["actor"], "admin", "{erased}");
    assert_eq!(erased["detail"]["reason"], "data subject request 2026-118");
    assert_eq!(
        erased["detail"]["deleted"].as_array().map(Vec::len),
        Some(7)
    );
    if let Store::S3 = store {
        // Seven objects, each a version plus the delete marker its deletion left.
        assert!(body["versions_deleted"].as_u64() >= Some(7), "{body}");
        let versions = s3_versions(&storage, &format!("{}/", layout.folder())).await;
        assert_eq!(
            versions,
            [layout.tombstone().to_string()],
            "no earlier version is kept"
        );
    }

    // Neither a re-delivery nor a new announcement of it archives anything again.
    let summary = deliver(&app, &event).await;
    assert_eq!(summary["duplicates"], 1, "{summary}");
    let mut again = event.clone();
    again["id"] = json!("evt-call-erase-again");
    let summary = deliver(&app, &again).await;
    assert_eq!(
        (summary["erased"].as_u64(), summary["accepted"].as_u64()),
        (Some(1), Some(0)),
        "{summary}"
    );
    let outcome: String =
        sqlx::query_scalar("SELECT outcome FROM events WHERE id = 'evt-call-erase-again'")
            .fetch_one(app.queue().pool())
            .await
            .unwrap();
    assert_eq!(outcome, "erased");
    assert!(app.drain().await.is_empty(), "no job to run");
    assert_eq!(objects_in(archive(&app), &layout).await, after);

    // Nor does replaying an event quarantined for it under an earlier configuration.
    let mut quarantined = event.clone();
    quarantined["id"] = json!("evt-call-erase-quarantined");
    let payload = callvault::queue::intake::StoredPayload::of(&quarantined.to_string());
    let mut tx = app.queue().begin_write().await.unwrap();
    let entry = callvault::queue::intake::Quarantined {
        event_id: Some("evt-call-erase-quarantined"),
        event_type: Some("Microsoft.Communication.RecordingFileStatusUpdated"),
        reason: "download host not allowed (before a configuration fix)",
        payload: &payload,
    };
    let entry_id = callvault::queue::intake::quarantine(&mut tx, &entry, now_millis())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let (status, body) = admin_post(
        &app,
        &format!("/admin/quarantine/{entry_id}/replay"),
        &json!({}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("recording_erased")),
        "{body}"
    );
    let (status, _) = admin_post(
        &app,
        &format!("/admin/quarantine/{entry_id}/replay"),
        &json!({}),
    )
    .await;
    assert_eq!(status, 409, "the entry is closed");
    assert!(app.drain().await.is_empty());
    assert_eq!(objects_in(archive(&app), &layout).await, after);

    // Its jobs are gone, so none can be replayed.
    for job in &jobs {
        let (status, body) =
            admin_post(&app, &format!("/admin/jobs/{}/replay", job.id), &json!({})).await;
        assert_eq!(status, 404, "{body}");
    }
    let (status, body) = admin_post(
        &app,
        "/admin/recordings/1/erase",
        &json!({"reason": "again"}),
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("already_erased")),
        "{body}"
    );
    let (status, detail) = admin_get(&app, "/admin/recordings/1").await;
    assert_eq!(status, 200);
    assert!(detail["erased_at"].is_string(), "{detail}");
    assert_eq!(detail["chunks"].as_array().unwrap().len(), 0, "{detail}");

    let (code, output) = app.run_callvault(&storage, &["verify"]).await;
    assert_eq!(
        code, 0,
        "an erased recording is no verification failure: {output}"
    );

    let metrics = reqwest::get(format!("{}/metrics", app.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("callvault_recordings_erased_total{by=\"request\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("callvault_recordings_erased_total{by=\"retention\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("callvault_events_erased_total 2"),
        "{metrics}"
    );
    app.close().await;
}

mod several_chunks {
    use super::*;

    #[tokio::test]
    async fn sqlite_local() {
        a_recording_with_several_chunks_is_erased_and_stays_erased(Db::Sqlite, Store::Local).await;
    }
    #[tokio::test]
    async fn sqlite_s3() {
        a_recording_with_several_chunks_is_erased_and_stays_erased(Db::Sqlite, Store::S3).await;
    }
    #[tokio::test]
    async fn sqlite_azure() {
        a_recording_with_several_chunks_is_erased_and_stays_erased(Db::Sqlite, Store::Azure).await;
    }
    #[tokio::test]
    async fn postgres_local() {
        a_recording_with_several_chunks_is_erased_and_stays_erased(Db::Postgres, Store::Local)
            .await;
    }
    #[tokio::test]
    async fn postgres_s3() {
        a_recording_with_several_chunks_is_erased_and_stays_erased(Db::Postgres, Store::S3).await;
    }
    #[tokio::test]
    async fn postgres_azure() {
        a_recording_with_several_chunks_is_erased_and_stays_erased(Db::Postgres, Store::Azure)
            .await;
    }
}

/// Runs an `async fn(Db)` test on SQLite and PostgreSQL.
macro_rules! on_both_databases {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(super::Db::Sqlite).await;
            }
            #[tokio::test]
            async fn postgres() {
                super::$name(super::Db::Postgres).await;
            }
        }
    };
}

async fn a_recording_erased_before_its_chunks_ran_is_never_archived(db: Db) {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let Some(app) = start(&emulator, db, &[]).await else {
        return;
    };
    deliver(&app, &announce(&emulator, "call-early", 2)).await;
    let (code, output) = app
        .run_callvault(
            &[],
            &[
                "erase",
                "--recording",
                "1",
                "--reason",
                "consent withdrawn",
                "--yes",
            ],
        )
        .await;
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("recording 1 erased: 0 object(s)"),
        "{output}"
    );
    assert!(
        app.drain().await.is_empty(),
        "its jobs went with the erasure"
    );
    let layout = layout_of(&app, 1).await;
    let left = objects_in(archive(&app), &layout).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(tombstone(archive(&app), &layout).await.objects.is_empty());
    app.close().await;
}
on_both_databases!(a_recording_erased_before_its_chunks_ran_is_never_archived);

/// A viewer token is refused an erasure with the stable code, and nothing of the recording
/// changes: its objects, its row and its jobs are as they were, and no erasure was begun.
async fn a_viewer_token_cannot_erase(db: Db) {
    const VIEWER: &str = "victor-viewer-token-00001";
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let tokens = [("admin.tokens", format!("victor:viewer:{VIEWER}"))];
    let Some(app) = start(&emulator, db, &tokens).await else {
        return;
    };
    deliver(&app, &announce(&emulator, "call-viewer", 2)).await;
    let jobs_before = app.drain_expecting(2, JobState::Archived).await;
    let layout = layout_of(&app, 1).await;
    let objects_before = objects_in(archive(&app), &layout).await;
    assert_eq!(objects_before.len(), 5, "{objects_before:?}");
    let recording_before = callvault::queue::recordings::get(app.queue(), 1)
        .await
        .unwrap()
        .unwrap();

    let answer = app
        .client
        .post(format!("{}/admin/recordings/1/erase", app.base))
        .bearer_auth(VIEWER)
        .json(&json!({"reason": "data subject request"}))
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let body: Value = answer.json().await.unwrap();
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("operator_role_required")),
        "{body}"
    );

    assert_eq!(objects_in(archive(&app), &layout).await, objects_before);
    assert!(
        archive(&app).read(&layout.tombstone()).await.is_err(),
        "no tombstone"
    );
    let recording_after = callvault::queue::recordings::get(app.queue(), 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        format!("{recording_after:?}"),
        format!("{recording_before:?}")
    );
    let jobs_after = app.jobs().await;
    assert_eq!(format!("{jobs_after:?}"), format!("{jobs_before:?}"));
    let erasures: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM erasures")
        .fetch_one(app.queue().pool())
        .await
        .unwrap();
    assert_eq!(erasures, 0, "no erasure was begun");
    let (_, trail) = admin_get(&app, "/admin/audit?recording=1").await;
    assert!(
        trail["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|record| record["action"] != "erased"),
        "{trail}"
    );
    app.close().await;
}
on_both_databases!(a_viewer_token_cannot_erase);

async fn a_half_done_erasure_is_finished_by_a_re_run(db: Db) {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let Some(app) = start(&emulator, db, &[]).await else {
        return;
    };
    deliver(&app, &announce(&emulator, "call-crash", 2)).await;
    app.drain_expecting(2, JobState::Archived).await;
    let layout = layout_of(&app, 1).await;
    let before = objects_in(archive(&app), &layout).await;
    assert_eq!(before.len(), 5);

    // A run that recorded its intent and deleted one object, then died.
    let recording = erasure::find_recording(app.queue(), "1").await.unwrap();
    let request = ErasureRequest::by_operator("cli:someone", "court order 17").unwrap();
    let planned = erasure::erase(app.queue(), archive(&app), &recording, &request, true)
        .await
        .unwrap();
    let body = String::from_utf8(planned.tombstone.to_bytes()).unwrap();
    let intent = Intent {
        recording: 1,
        origin: Origin::Request,
        actor: "cli:someone",
        reason: "court order 17",
        tombstone: &body,
    };
    assert!(
        erasures::begin(app.queue(), &intent, now_millis())
            .await
            .unwrap()
    );
    let first = before.iter().next().unwrap().0.clone();
    archive(&app)
        .delete_quietly(&callvault::storage::layout::object_key(&first))
        .await
        .unwrap();
    assert_eq!(
        erasures::get(app.queue(), 1).await.unwrap().unwrap().state,
        "started"
    );

    let (code, output) = app
        .run_callvault(
            &[],
            &[
                "erase",
                "--recording",
                "1",
                "--reason",
                "a later run",
                "--yes",
            ],
        )
        .await;
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("recording 1 erased: 4 object(s)"),
        "{output}"
    );
    let row = erasures::get(app.queue(), 1).await.unwrap().unwrap();
    assert!(row.is_done(), "{row:?}");
    let tombstone = tombstone(archive(&app), &layout).await;
    assert_eq!(
        tombstone.reason, "court order 17",
        "the recorded intent's tombstone is written"
    );
    let named: BTreeSet<_> = tombstone
        .objects
        .iter()
        .map(|object| (object.key.clone(), object.bytes, object.sha256.clone()))
        .collect();
    assert_eq!(named, before);
    assert_eq!(objects_in(archive(&app), &layout).await.len(), 1);
    app.close().await;
}
on_both_databases!(a_half_done_erasure_is_finished_by_a_re_run);

/// A fresh moto bucket with Object Lock (governance, a day), locked at write.
async fn locked_s3() -> Option<Vec<(&'static str, String)>> {
    let endpoint =
        crate::support::service("CALLVAULT_TEST_S3_ENDPOINT", crate::support::Suite::S3)?;
    crate::support::service("AWS_ACCESS_KEY_ID", crate::support::Suite::S3)?;
    let bucket = crate::support::unique_name();
    let created = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .header("x-amz-bucket-object-lock-enabled", "true")
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{}", created.status());
    Some(vec![
        ("storage.kind", "s3".into()),
        ("storage.bucket", bucket),
        ("storage.endpoint", endpoint),
        ("storage.region", "us-east-1".into()),
        ("storage.object_lock_mode", "governance".into()),
        ("storage.object_lock_days", "1".into()),
        ("storage.lock_after_hours", "24".into()),
    ])
}

async fn holds_and_locks_refuse_an_erasure_with_their_reason(db: Db) {
    let Some(storage) = locked_s3().await else {
        return;
    };
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let Some(app) = start(&emulator, db, &storage).await else {
        return;
    };
    deliver(&app, &announce(&emulator, "call-held", 1)).await;
    deliver(&app, &announce(&emulator, "call-locked", 1)).await;
    app.drain_expecting(2, JobState::Archived).await;
    let (status, body) = admin_post(&app, "/admin/recordings/1/hold", &json!({})).await;
    assert_eq!(status, 200, "{body}");
    let held = layout_of(&app, 1).await;
    let before = objects_in(archive(&app), &held).await;

    let (status, body) = admin_post(
        &app,
        "/admin/recordings/1/erase",
        &json!({"reason": "asked"}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("erasure_refused")),
        "{body}"
    );
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("legal hold") && message.contains("no end date"),
        "{message}"
    );
    assert_eq!(
        objects_in(archive(&app), &held).await,
        before,
        "nothing was deleted"
    );
    assert!(erasures::get(app.queue(), 1).await.unwrap().is_none());

    // The scheduled lock covered recording 2 an hour ago: refused until the lock's end.
    let locked_at = now_millis() - 3_600_000;
    locks::mark_locked(app.queue(), 2, now_millis(), locked_at)
        .await
        .unwrap();
    let (code, output) = app
        .run_callvault(
            &storage,
            &["erase", "--recording", "2", "--reason", "asked", "--yes"],
        )
        .await;
    assert_eq!(code, 1, "{output}");
    let until = callvault::admin::views::rfc3339(locked_at + 86_400_000);
    assert!(
        output.contains("locked by the store") && output.contains(&format!("until {until}")),
        "{output}"
    );

    // Released, the held one can go.
    let answer = app
        .client
        .delete(format!("{}/admin/recordings/1/hold", app.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let (status, body) = admin_post(
        &app,
        "/admin/recordings/1/erase",
        &json!({"reason": "asked"}),
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("done")),
        "{body}"
    );
    assert_eq!(objects_in(archive(&app), &held).await.len(), 1);
    app.close().await;
}
on_both_databases!(holds_and_locks_refuse_an_erasure_with_their_reason);

async fn an_erased_recording_is_never_locked_afterwards(db: Db) {
    let Some(storage) = locked_s3().await else {
        return;
    };
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let Some(app) = start(&emulator, db, &storage).await else {
        return;
    };
    deliver(&app, &announce(&emulator, "call-window", 2)).await;
    app.drain_expecting(2, JobState::Archived).await;
    let (status, body) = admin_post(
        &app,
        "/admin/recordings/1/erase",
        &json!({"reason": "card number spoken during the call"}),
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("done")),
        "{body}"
    );
    // Every recording is past a holding period of 0 hours: none is due all the same.
    let locked = callvault::admin::lock_schedule::lock_due(
        app.queue(),
        archive(&app),
        0,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(locked, 0);
    assert!(locks::get(app.queue(), 1).await.unwrap().is_none());
    let layout = layout_of(&app, 1).await;
    let head = signed_head(&format!("{}/{}", bucket_url(&storage), layout.tombstone())).await;
    assert!(head.status().is_success(), "{}", head.status());
    assert!(
        head.headers()
            .get("x-amz-object-lock-retain-until-date")
            .is_none(),
        "the tombstone stays unlocked: {:?}",
        head.headers()
    );
    app.close().await;
}
on_both_databases!(an_erased_recording_is_never_locked_afterwards);

async fn a_retention_run_erases_exactly_what_the_plan_listed(db: Db) {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let settings = [
        ("retention.delete_after_days", "30".to_owned()),
        ("retention.batch_size", "2".to_owned()),
    ];
    let Some(app) = start(&emulator, db, &settings).await else {
        return;
    };
    for call in [
        "call-old-1",
        "call-old-2",
        "call-old-3",
        "call-held",
        "call-young",
    ] {
        deliver(&app, &announce(&emulator, call, 1)).await;
    }
    app.drain_expecting(5, JobState::Archived).await;
    // Recordings 1-4 started 40, 39, 38 and 41 days ago; 5 today.
    for (id, days) in [(1, 40), (2, 39), (3, 38), (4, 41)] {
        sqlx::query("UPDATE recordings SET started_at = $1 WHERE id = $2")
            .bind(now_millis() - days * 86_400_000)
            .bind(id)
            .execute(app.queue().pool())
            .await
            .unwrap();
    }
    // A legal hold recorded on the oldest (a local folder has no store hold to set).
    locks::set_legal_hold(app.queue(), 4, true, now_millis())
        .await
        .unwrap();

    let (code, output) = app
        .run_callvault(&settings, &["retention", "plan", "--json"])
        .await;
    assert_eq!(code, 0, "{output}");
    let plan: Value = serde_json::from_str(&output).unwrap();
    let ids = |list: &Value| -> Vec<i64> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(
        ids(&plan["erase"]),
        [1, 2],
        "oldest first, one batch: {plan}"
    );
    assert_eq!(ids(&plan["skipped"]), [4], "{plan}");
    assert_eq!(plan["skipped"][0]["refusal"]["cause"], "legal_hold");
    let (code, table) = app.run_callvault(&settings, &["retention", "plan"]).await;
    assert_eq!(code, 0, "{table}");
    assert!(
        table.contains("the next run erases 2 recording(s)"),
        "{table}"
    );

    let retention = RetentionSettings {
        delete_after_days: 30,
        batch_size: 2,
        interval_minutes: 60,
    };
    let metrics = callvault::metrics::Metrics::default();
    let run = retention::run_once(
        app.queue(),
        archive(&app),
        &metrics,
        &retention,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(run.erased, ids(&plan["erase"]), "{run:?}");
    assert_eq!(run.skipped, 1);
    for id in [1, 2] {
        let layout = layout_of(&app, id).await;
        let stone = tombstone(archive(&app), &layout).await;
        assert_eq!(
            (stone.origin.as_str(), stone.erased_by.as_str()),
            ("retention", "retention")
        );
        assert!(
            stone.reason.contains("retention.delete_after_days = 30"),
            "{}",
            stone.reason
        );
    }
    let next = retention::run_once(
        app.queue(),
        archive(&app),
        &metrics,
        &retention,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(next.erased, [3]);
    let kept: Vec<Option<i64>> =
        sqlx::query_scalar("SELECT erased_at FROM recordings WHERE id IN (4, 5) ORDER BY id")
            .fetch_all(app.queue().pool())
            .await
            .unwrap();
    assert!(
        kept.iter().all(Option::is_none),
        "held and young recordings stay"
    );
    let metrics_text = reqwest::get(format!("{}/metrics", app.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics_text.contains("callvault_recordings_erased_total{by=\"retention\"} 3"),
        "{metrics_text}"
    );
    app.close().await;
}
on_both_databases!(a_retention_run_erases_exactly_what_the_plan_listed);

#[tokio::test]
async fn the_command_line_refuses_an_erasure_without_a_reason_or_a_confirmation() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let Some(app) = start(&emulator, Db::Sqlite, &[]).await else {
        return;
    };
    deliver(&app, &announce(&emulator, "call-ask", 1)).await;
    app.drain_expecting(1, JobState::Archived).await;
    let (code, output) = app
        .run_callvault(&[], &["erase", "--recording", "1", "--reason", ""])
        .await;
    assert_eq!(code, 2, "{output}");
    assert!(output.contains("needs a reason"), "{output}");
    let (code, output) = app
        .run_callvault(&[], &["erase", "--recording", "1", "--reason", "asked"])
        .await;
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("not confirmed"), "{output}");
    let (code, output) = app
        .run_callvault(
            &[],
            &[
                "erase",
                "--recording",
                "1",
                "--reason",
                "asked",
                "--dry-run",
            ],
        )
        .await;
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("would erase recording 1") && output.contains("3 object(s)"),
        "{output}"
    );
    let layout = layout_of(&app, 1).await;
    assert_eq!(
        objects_in(archive(&app), &layout).await.len(),
        3,
        "nothing was erased"
    );
    app.close().await;
}

/// Announces a one-chunk recording of call `call` whose metadata names `participants`.
fn announce_with(emulator: &Emulator, call: &str, participants: &[&str]) -> Value {
    let document_id = format!("doc-{call}-0");
    let metadata = json!({
        "resourceId": "r",
        "callId": call,
        "chunkDocumentId": document_id,
        "chunkIndex": 0,
        "participants": participants
            .iter()
            .map(|id| json!({ "participantId": id }))
            .collect::<Vec<_>>(),
    });
    let urls = emulator.add_document(callvault_emulator::DocumentSpec {
        document_id: document_id.clone(),
        media: callvault_emulator::MediaSpec::Synthetic { len: 1500, seed: 3 },
        metadata: Some(serde_json::to_vec(&metadata).unwrap().into()),
        call_id: call.into(),
        chunk_index: 0,
        created_at: chrono::Utc::now(),
    });
    let chunk = callvault_emulator::events::ChunkEvent {
        document_id,
        index: 0,
        end_reason: "SessionEnded".into(),
        urls: Some(urls),
    };
    recording_file_status_updated(
        &format!("evt-{call}"),
        &format!("/recording/call/{call}/serverCallId/srv-{call}"),
        start_time(),
        &[chunk],
        "Mp3",
    )
}

async fn a_participant_s_recordings_are_all_erased(db: Db) {
    const ALICE: &str = "8:acs:resource_alice";
    const BOB: &str = "8:acs:resource_bob";
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let Some(app) = start(&emulator, db, &[]).await else {
        return;
    };
    for (call, people) in [
        ("call-both", &[ALICE, BOB][..]),
        ("call-alice", &[ALICE][..]),
        ("call-bob", &[BOB][..]),
    ] {
        deliver(&app, &announce_with(&emulator, call, people)).await;
    }
    app.drain_expecting(3, JobState::Archived).await;

    let (code, output) = app
        .run_callvault(
            &[],
            &[
                "erase",
                "--participant",
                ALICE,
                "--reason",
                "alice asked (ticket 9)",
                "--dry-run",
            ],
        )
        .await;
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("would erase recording 1") && output.contains("would erase recording 2"),
        "{output}"
    );
    assert!(!output.contains("recording 3"), "{output}");
    let (code, output) = app
        .run_callvault(
            &[],
            &[
                "erase",
                "--participant",
                ALICE,
                "--reason",
                "alice asked (ticket 9)",
                "--yes",
            ],
        )
        .await;
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("recording 1 erased") && output.contains("recording 2 erased"),
        "{output}"
    );
    for id in [1, 2] {
        let layout = layout_of(&app, id).await;
        assert_eq!(
            objects_in(archive(&app), &layout).await.len(),
            1,
            "recording {id}"
        );
    }
    let untouched = layout_of(&app, 3).await;
    assert_eq!(objects_in(archive(&app), &untouched).await.len(), 3);
    assert!(
        callvault::participants::recordings_of(app.queue(), ALICE)
            .await
            .unwrap()
            .is_empty()
    );
    let bobs: Vec<i64> = callvault::participants::recordings_of(app.queue(), BOB)
        .await
        .unwrap()
        .iter()
        .map(|recording| recording.id)
        .collect();
    assert_eq!(bobs, [3], "an erased recording is found through no one");
    let (code, output) = app
        .run_callvault(
            &[],
            &[
                "erase",
                "--participant",
                ALICE,
                "--reason",
                "again",
                "--yes",
            ],
        )
        .await;
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("nothing to erase"), "{output}");
    app.close().await;
}
on_both_databases!(a_participant_s_recordings_are_all_erased);
