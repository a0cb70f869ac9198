//! The audit inbox: archives write their records there without the chain's head lock, and a
//! chainer appends them to the chain in order, each exactly once even with several chainers
//! at once, including what a process that stopped before chaining left behind (SQLite and
//! PostgreSQL).

use std::collections::BTreeSet;
use std::time::Duration;

use callvault::app::Role;
use callvault::audit::verify::{verify, verify_database};
use callvault::audit::{self, Action, Actor, AuditEntry, AuditRecord, Role as TokenRole};
use callvault::queue::Db;
use callvault::queue::jobs::Finish;
use serde_json::json;

use crate::admin::support::*;
use crate::support::eventually;

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

/// `count` worker records in the inbox, numbered from `first` in their detail, in one transaction.
async fn enqueue_some(db: &Db, first: usize, count: usize) {
    let mut tx = db.begin_write().await.unwrap();
    for n in first..first + count {
        let entry = AuditEntry::new(&Actor::worker(), Action::Archived)
            .recording(n as i64, format!("call/rec-{n}"))
            .detail(json!({"n": n}));
        audit::enqueue_in(&mut tx, entry).await.unwrap();
    }
    tx.commit().await.unwrap();
}

/// Every record, oldest first.
async fn chain(db: &Db) -> Vec<AuditRecord> {
    audit::records_after(db, 0, 100_000).await.unwrap()
}

/// Each record follows the one before: consecutive seqs from 1, linked hashes, time never back.
fn assert_linked(records: &[AuditRecord]) {
    for (index, record) in records.iter().enumerate() {
        assert_eq!(record.seq, index as i64 + 1, "{record:?}");
        assert_eq!(record.hash, record.expected_hash(), "record {}", record.seq);
    }
    for pair in records.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash, "record {}", pair[1].seq);
        assert!(pair[1].at >= pair[0].at, "record {}", pair[1].seq);
    }
}

async fn archives_wait_in_the_inbox_and_are_chained_in_order(store: Store) {
    let Some(app) = ingest(store).await else {
        return;
    };
    let db = app.queue();
    let chunks = [
        (0, "ChunkMaximumSizeExceeded"),
        (1, "ChunkMaximumSizeExceeded"),
        (2, "SessionEnded"),
    ];
    announce(&app, "inbox", 1, &chunks).await;
    for index in 0..3 {
        let job = job_id(db, "inbox", index).await;
        drive(db, job, Finish::Archived(archived_chunk("inbox", index))).await;
    }
    // The archive transactions wrote to the inbox only: the chain's head was never taken.
    assert_eq!(audit::unchained(db).await.unwrap(), 3);
    assert!(chain(db).await.is_empty());
    let head: i64 = sqlx::query_scalar("SELECT seq FROM audit_head")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(head, 0);

    assert_eq!(audit::chain_pending(db).await.unwrap(), 3);
    assert_eq!(audit::chain_pending(db).await.unwrap(), 0, "nothing left");
    let records = chain(db).await;
    assert_linked(&records);
    let chunks: Vec<i64> = records
        .iter()
        .map(|record| record.detail["chunk"].as_i64().unwrap())
        .collect();
    assert_eq!(chunks, [0, 1, 2], "chained in the order they were archived");
    assert!(
        records
            .iter()
            .all(|r| r.action == "archived" && r.actor == "system:worker")
    );
    assert_eq!(records[2].detail["media"]["sha256"], "ab".repeat(32));
    let report = verify_database(db).await.unwrap();
    assert_eq!((report.records, report.broken), (3, None));

    // A page of the trail chains first, so a chunk archived a moment ago is on it.
    announce(&app, "fresh", 1, &[(0, "SessionEnded")]).await;
    let job = job_id(db, "fresh", 0).await;
    drive(db, job, Finish::Archived(archived_chunk("fresh", 0))).await;
    assert_eq!(audit::unchained(db).await.unwrap(), 1);
    let (status, page) = app.get("/admin/audit").await;
    assert_eq!(status, 200, "{page}");
    let records: Vec<AuditRecord> = serde_json::from_value(page["records"].clone()).unwrap();
    let fresh = records.last().expect("records");
    assert_eq!(
        (
            fresh.seq,
            fresh.action.as_str(),
            fresh.detail["job"].as_i64()
        ),
        (4, "archived", Some(job))
    );
    assert!(fresh.recording_key.as_deref().unwrap().ends_with("/fresh"));
    assert_eq!(audit::unchained(db).await.unwrap(), 0);
    app.close().await;
}
on_every_store!(archives_wait_in_the_inbox_and_are_chained_in_order);

async fn two_chainers_at_once_chain_each_record_once(store: Store) {
    let Some((test_db, db)) = database(store).await else {
        return;
    };
    let other = Db::connect(&test_db.url, 4).await.unwrap();
    const QUEUED: usize = 1_300;
    enqueue_some(&db, 0, QUEUED).await;
    // Two chainers on each of two pools (as two replicas would have), an operator appending
    // meanwhile, and a writer still filling the inbox.
    let mut chainers = Vec::new();
    for pool in [db.clone(), other.clone(), db.clone(), other.clone()] {
        chainers.push(tokio::spawn(async move {
            let mut chained = 0;
            for _ in 0..5 {
                chained += audit::chain_pending(&pool).await.unwrap();
            }
            chained
        }));
    }
    let operator = {
        let pool = other.clone();
        tokio::spawn(async move {
            let actor = Actor::token("alice", TokenRole::Operator);
            for n in 0..10 {
                let entry = AuditEntry::new(&actor, Action::Held).detail(json!({"held": n}));
                audit::append(&pool, entry).await.unwrap();
            }
        })
    };
    let writer = {
        let pool = db.clone();
        tokio::spawn(async move {
            for n in 0..10 {
                enqueue_some(&pool, QUEUED + n * 10, 10).await;
            }
        })
    };
    let mut chained = 0;
    for chainer in chainers {
        chained += chainer.await.unwrap();
    }
    operator.await.unwrap();
    writer.await.unwrap();
    chained += audit::chain_pending(&db).await.unwrap();

    let total = QUEUED + 100;
    // The operator's appends chained some of them too (a batch before each of its own).
    assert!(chained > 0 && chained <= total as i64, "{chained}");
    assert_eq!(audit::unchained(&db).await.unwrap(), 0);
    let records = chain(&db).await;
    assert_eq!(records.len(), total + 10);
    assert_linked(&records);
    let numbers: Vec<usize> = records
        .iter()
        .filter_map(|record| record.detail["n"].as_u64())
        .map(|n| n as usize)
        .collect();
    assert_eq!(
        numbers.iter().copied().collect::<BTreeSet<_>>().len(),
        total,
        "no record chained twice"
    );
    // One transaction's records keep their order: the first batch came in one.
    let first_batch: Vec<usize> = numbers.iter().copied().filter(|n| *n < QUEUED).collect();
    assert_eq!(first_batch, (0..QUEUED).collect::<Vec<_>>());
    let report = verify_database(&db).await.unwrap();
    assert_eq!((report.records, report.broken), (total as i64 + 10, None));
    other.close().await;
    db.close().await;
    test_db.remove().await;
}
on_every_store!(two_chainers_at_once_chain_each_record_once);

/// Records a process committed to the inbox but did not live to chain are chained by the
/// next one that runs the worker, and whatever is written until a stop is chained by it.
async fn records_left_in_the_inbox_are_chained_by_the_next_process(store: Store) {
    let Some((test_db, db)) = database(store).await else {
        return;
    };
    enqueue_some(&db, 0, 3).await;
    db.close().await;
    let connection_string = format!("endpoint=http://{DEAD_ACS}/;accesskey=aGVsbG8=");
    let app = TestApp::launch(&connection_string, test_db, Role::Worker, &[]).await;
    let db = app.queue().clone();
    eventually("the inbox chained", Duration::from_secs(20), || async {
        (audit::unchained(&db).await.unwrap() == 0).then_some(())
    })
    .await;
    let records = chain(&db).await;
    assert_eq!(records.len(), 3);
    assert_linked(&records);

    // Written just before the stop: chained by the stop at the latest.
    enqueue_some(&db, 3, 2).await;
    let url = app.db.url.clone();
    let mut app = app;
    app.stop().await;
    let db = Db::connect(&url, 2).await.unwrap();
    assert_eq!(audit::unchained(&db).await.unwrap(), 0);
    let records = chain(&db).await;
    assert_eq!(records.len(), 5);
    assert_linked(&records);
    db.close().await;
    app.db.remove().await;
}
on_every_store!(records_left_in_the_inbox_are_chained_by_the_next_process);

async fn audit_verify_chains_the_inbox_and_reports_what_still_waits(store: Store) {
    let Some(app) = ingest(store).await else {
        return;
    };
    let db = app.queue();
    audit::append(
        db,
        AuditEntry::new(&Actor::token("alice", TokenRole::Operator), Action::Held),
    )
    .await
    .unwrap();
    enqueue_some(db, 0, 2).await;
    // The library's check says what it did not see.
    let archive = app.running().state.archive.clone();
    let report = verify(db, &archive).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.database.records, report.not_yet_chained), (1, 2));

    // The command chains first, so it checks everything written before it started.
    let (code, output) = app.run_callvault(&[], &["audit", "verify"]).await;
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("database: 3 record(s), chain intact through record 3"),
        "{output}"
    );
    assert!(!output.contains("not chained yet"), "{output}");
    let (code, output) = app.run_callvault(&[], &["audit", "verify", "--json"]).await;
    assert_eq!(code, 0, "{output}");
    let json: serde_json::Value = serde_json::from_str(&output).unwrap();
    assert_eq!(json["not_yet_chained"], 0, "{output}");
    // The store copy is made from the chain, the inbox chained first.
    enqueue_some(db, 2, 1).await;
    let written = audit::store_copy::flush_all(db, &archive).await.unwrap();
    assert_eq!(written.last().map(|object| object.last), Some(4));
    app.close().await;
}
on_every_store!(audit_verify_chains_the_inbox_and_reports_what_still_waits);
