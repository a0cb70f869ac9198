//! The audit trail: archives and replays recorded with their actor, one chain that two
//! concurrent appenders cannot fork (SQLite and PostgreSQL), its copy in the store (local,
//! S3, Azure), and `callvault audit verify` naming the first record tampered with, in the
//! database or in a store object.

use std::process::Command;

use bytes::Bytes;
use callvault::app::Role;
use callvault::audit::store_copy::{self, flush_all};
use callvault::audit::verify::verify;
use callvault::audit::{self, Action, Actor, AuditEntry, AuditRecord, Role as TokenRole};
use callvault::config::Settings;
use callvault::queue::Db;
use callvault::queue::jobs::Finish;
use callvault::storage::{Archive, layout};
use object_store::ObjectStoreExt;
use serde_json::json;

use crate::admin::support::*;
use crate::remote_storage::{azure_storage, s3_storage};
use crate::support::command_output;

/// A fresh, migrated database of `store`; None when its server is not configured.
async fn database(store: Store) -> Option<(TestDatabase, Db)> {
    let test_db = match store {
        Store::Sqlite => TestDatabase::sqlite().await,
        Store::Postgres => TestDatabase::postgres().await?,
    };
    let db = Db::connect(&test_db.url, 4).await.unwrap();
    db.migrate().await.unwrap();
    Some((test_db, db))
}

fn storage_settings(settings: &[(&'static str, String)]) -> callvault::storage::StorageSettings {
    Settings::defaults_with(settings)
        .unwrap()
        .storage_settings()
        .unwrap()
}

async fn append_some(db: &Db, count: usize, who: &str) {
    let actor = Actor::token(who, TokenRole::Operator);
    for n in 0..count {
        audit::append(
            db,
            AuditEntry::new(&actor, Action::Held)
                .recording(n as i64, format!("call/rec-{n}"))
                .detail(json!({"n": n, "who": who})),
        )
        .await
        .unwrap();
    }
}

async fn archives_and_replays_are_recorded_with_who_and_what(store: Store) {
    let Some(app) = ingest(store).await else {
        return;
    };
    let db = app.queue();
    announce(
        &app,
        "trail",
        1,
        &[(0, "ChunkMaximumSizeExceeded"), (1, "SessionEnded")],
    )
    .await;
    let (first, second) = (job_id(db, "trail", 0).await, job_id(db, "trail", 1).await);
    drive(db, first, Finish::Archived(archived_chunk("trail", 0))).await;
    drive(db, second, failed("gave up")).await;
    // The command line acts as cli:<user>.
    let mut command = Command::new(env!("CARGO_BIN_EXE_callvault"));
    command
        .args(["jobs", "replay", "--id", &second.to_string()])
        .env("CALLVAULT__DATABASE__URL", &app.db.url)
        .env("USER", "carol");
    let output = command_output(command).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let (status, page) = app.get("/admin/audit").await;
    assert_eq!(status, 200, "{page}");
    let records: Vec<AuditRecord> = serde_json::from_value(page["records"].clone()).unwrap();
    let archived = records
        .iter()
        .find(|r| r.action == "archived")
        .expect("an archive record");
    assert_eq!(archived.actor, "system:worker");
    assert_eq!(archived.detail["job"], first);
    assert_eq!(archived.detail["media"]["sha256"], "ab".repeat(32));
    assert_eq!(
        archived.detail["metadata"]["key"],
        archived_chunk("trail", 0).metadata_key
    );
    let replayed = records
        .iter()
        .find(|r| r.action == "replayed")
        .expect("a replay record");
    assert_eq!(replayed.actor, "cli:carol");
    assert_eq!(replayed.recording_id, archived.recording_id);
    assert!(
        replayed.seq > archived.seq
            && replayed.prev_hash == records[replayed.seq as usize - 2].hash
    );

    // Pages are bounded and continue with the cursor; filters narrow them.
    let (_, one) = app.get("/admin/audit?limit=1").await;
    assert_eq!(one["records"].as_array().unwrap().len(), 1);
    let cursor = one["next_cursor"].as_str().unwrap().to_owned();
    let (_, next) = app
        .get(&format!("/admin/audit?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(
        next["records"][0]["seq"],
        one["records"][0]["seq"].as_i64().unwrap() + 1
    );
    let recording = archived.recording_id.unwrap();
    let (_, by_recording) = app
        .get(&format!("/admin/audit?recording={recording}"))
        .await;
    assert_eq!(by_recording["records"].as_array().unwrap().len(), 2);
    let (_, none) = app
        .get(&format!("/admin/audit?recording={}", recording + 1000))
        .await;
    assert!(none["records"].as_array().unwrap().is_empty());
    let (_, later) = app.get("/admin/audit?from=2999-01-01").await;
    assert!(later["records"].as_array().unwrap().is_empty());
    for bad in [
        "/admin/audit?limit=100000",
        "/admin/audit?from=soon",
        "/admin/audit?cursor=x",
    ] {
        let (status, body) = app.get(bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    app.close().await;
}
on_every_store!(archives_and_replays_are_recorded_with_who_and_what);

async fn two_appenders_at_once_make_one_chain(store: Store) {
    let Some((test_db, db)) = database(store).await else {
        return;
    };
    // Two pools, as two replicas would have.
    let other = Db::connect(&test_db.url, 4).await.unwrap();
    let mut tasks = Vec::new();
    for (pool, who) in [(db.clone(), "one"), (other.clone(), "two")] {
        for lane in 0..4 {
            let pool = pool.clone();
            tasks.push(tokio::spawn(async move {
                append_some(&pool, 15, &format!("{who}-{lane}")).await
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let records = audit::records_after(&db, 0, 1000).await.unwrap();
    assert_eq!(records.len(), 120);
    for (index, pair) in records.windows(2).enumerate() {
        assert_eq!(pair[1].seq, index as i64 + 2);
        assert_eq!(pair[1].prev_hash, pair[0].hash, "record {}", pair[1].seq);
        assert!(pair[1].at >= pair[0].at);
    }
    let report = callvault::audit::verify::verify_database(&db)
        .await
        .unwrap();
    assert_eq!((report.records, report.broken), (120, None));
    other.close().await;
    db.close().await;
    test_db.remove().await;
}
on_every_store!(two_appenders_at_once_make_one_chain);

/// Runs `callvault audit verify` on `db_url` and `storage`, off the runtime's thread; (exit
/// code, output).
async fn run_audit_verify(db_url: &str, storage: &[(&str, String)]) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_callvault"));
    command
        .args(["audit", "verify"])
        .env("CALLVAULT__DATABASE__URL", db_url);
    for (key, value) in storage {
        let name = format!("CALLVAULT__{}", key.to_ascii_uppercase().replace('.', "__"));
        command.env(name, value);
    }
    let output = command_output(command).await;
    (
        output.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// Records copied to the store, then both copies verified; then one store object is altered.
async fn the_store_copy_is_complete_resumable_and_checked(storage: Vec<(&'static str, String)>) {
    let (test_db, db) = database(Store::Sqlite).await.unwrap();
    let archive = Archive::open(&storage_settings(&storage)).await.unwrap();
    append_some(&db, 5, "alice").await;
    let written = flush_all(&db, &archive).await.unwrap();
    assert_eq!(written.len(), 1);
    assert_eq!((written[0].first, written[0].last), (1, 5));
    assert!(
        written[0].key.contains("audit/")
            && written[0].key.ends_with("000000000001-000000000005.jsonl")
    );
    assert!(
        flush_all(&db, &archive).await.unwrap().is_empty(),
        "nothing new to copy"
    );

    // A flush that chose its range and died before moving on is finished with the same object.
    append_some(&db, store_copy::BATCH as usize + 3, "bob").await;
    sqlx::query("UPDATE audit_flush SET pending_last = 7 WHERE id = 1")
        .execute(db.pool())
        .await
        .unwrap();
    let resumed = flush_all(&db, &archive).await.unwrap();
    let ranges: Vec<(i64, i64)> = resumed.iter().map(|o| (o.first, o.last)).collect();
    assert_eq!(ranges, [(6, 7), (8, 1007), (1008, 1008)]);
    let report = verify(&db, &archive).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.store.records, report.store.objects), (1008, 4));
    assert_eq!(report.not_yet_copied, 0);

    let (code, output) = run_audit_verify(&test_db.url, &storage).await;
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("chain intact through record 1008"),
        "{output}"
    );

    // Tampering with one record in a store object: its hash no longer matches.
    let key = layout::object_key(&resumed[0].key);
    let text = String::from_utf8(archive.read(&key).await.unwrap().to_vec()).unwrap();
    let altered = text.replacen("\"who\":\"bob\"", "\"who\":\"eve\"", 1);
    assert_ne!(altered, text);
    archive
        .store()
        .put(&key, Bytes::from(altered).into())
        .await
        .unwrap();
    let (code, output) = run_audit_verify(&test_db.url, &storage).await;
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("broken at record 6"), "{output}");
    assert!(
        output.contains("store") && output.contains("BROKEN at record 6"),
        "{output}"
    );
    db.close().await;
}

#[tokio::test]
async fn the_store_copy_on_a_local_folder() {
    let dir = tempfile::tempdir().unwrap();
    the_store_copy_is_complete_resumable_and_checked(vec![(
        "storage.path",
        dir.path().display().to_string(),
    )])
    .await;
}

#[tokio::test]
async fn the_store_copy_on_s3() {
    let Some(storage) = s3_storage().await else {
        return;
    };
    the_store_copy_is_complete_resumable_and_checked(storage).await;
}

#[tokio::test]
async fn the_store_copy_on_azure() {
    let Some(storage) = azure_storage().await else {
        return;
    };
    the_store_copy_is_complete_resumable_and_checked(storage).await;
}

async fn a_record_changed_in_the_database_is_named(store: Store) {
    let Some((test_db, db)) = database(store).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let storage = vec![("storage.path", dir.path().display().to_string())];
    let archive = Archive::open(&storage_settings(&storage)).await.unwrap();
    append_some(&db, 6, "alice").await;
    flush_all(&db, &archive).await.unwrap();
    let (code, output) = run_audit_verify(&test_db.url, &storage).await;
    assert_eq!(code, 0, "{output}");

    sqlx::query("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3")
        .execute(db.pool())
        .await
        .unwrap();
    let (code, output) = run_audit_verify(&test_db.url, &storage).await;
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("database: BROKEN at record 3"), "{output}");

    // Re-hashing the changed record does not help: the next one no longer links to it, and
    // the store's copy disagrees.
    let mut forged = audit::records_after(&db, 2, 1).await.unwrap().remove(0);
    forged.hash = forged.expected_hash();
    sqlx::query("UPDATE audit_log SET hash = $1 WHERE seq = 3")
        .bind(&forged.hash)
        .execute(db.pool())
        .await
        .unwrap();
    let report = verify(&db, &archive).await.unwrap();
    assert_eq!(
        report.database.broken.as_ref().map(|b| b.seq),
        Some(4),
        "{report:?}"
    );
    assert_eq!(
        report.store.broken.as_ref().map(|b| b.seq),
        Some(3),
        "{report:?}"
    );
    assert_eq!(report.first_broken().unwrap().seq, 3);
    db.close().await;
    test_db.remove().await;
}
on_every_store!(a_record_changed_in_the_database_is_named);

async fn a_record_removed_from_the_end_is_caught(store: Store) {
    let Some((test_db, db)) = database(store).await else {
        return;
    };
    append_some(&db, 4, "alice").await;
    sqlx::query("DELETE FROM audit_log WHERE seq = 4")
        .execute(db.pool())
        .await
        .unwrap();
    let report = callvault::audit::verify::verify_database(&db)
        .await
        .unwrap();
    let broken = report.broken.expect("the head names a missing record");
    assert_eq!(broken.seq, 4, "{broken:?}");
    db.close().await;
    test_db.remove().await;
}
on_every_store!(a_record_removed_from_the_end_is_caught);

#[tokio::test]
async fn serve_copies_the_trail_to_the_store_by_itself() {
    let Some(app) = start(
        Store::Sqlite,
        Role::All,
        DEAD_ACS,
        &[("audit.flush_interval_secs", "1".into())],
    )
    .await
    else {
        return;
    };
    let db = app.queue();
    append_some(db, 3, "alice").await;
    let archive = app.running().state.archive.clone();
    crate::support::eventually(
        "the audit copy",
        std::time::Duration::from_secs(20),
        || async { (store_copy::flushed_seq(db).await.unwrap() >= 3).then_some(()) },
    )
    .await;
    let report = verify(db, &archive).await.unwrap();
    assert!(
        report.is_intact() && report.store.records == 3,
        "{report:?}"
    );
    app.close().await;
}
