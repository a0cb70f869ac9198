//! Group commit against SQLite and PostgreSQL: shared transactions, answers only after
//! commit, isolation of a failing delivery, duplicates across batch-mates, no waiting for
//! company.

use crate::test_services::admin_sql;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::group_commit::{CommitStats, Limits};
use super::{DeliverySummary, Intake, StoreError};
use crate::acs::UrlGuard;
use crate::metrics::Metrics;
use crate::queue::{Backend, Db, Tx};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Store {
    Sqlite,
    Postgres,
}

/// A fresh database, an intake with a committer on it, and a second pool that observes.
struct Fixture {
    intake: Intake,
    observer: Db,
    _dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
}

impl Fixture {
    async fn new(store: Store) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (url, postgres) = match store {
            Store::Sqlite => (format!("sqlite://{}/db.sqlite", dir.path().display()), None),
            Store::Postgres => {
                let server = std::env::var("CALLVAULT_TEST_POSTGRES").expect(
                    "CALLVAULT_TEST_POSTGRES is not set: run ./scripts/test.sh, which starts PostgreSQL",
                );
                let name = format!("callvault_commit_{}", uuid::Uuid::new_v4().simple());
                admin_sql(&server, &format!("CREATE DATABASE {name}")).await;
                (format!("{server}/{name}"), Some((server, name)))
            }
        };
        let db = Db::connect(&url, 4).await.unwrap();
        db.migrate().await.unwrap();
        let observer = Db::connect(&url, 2).await.unwrap();
        let endpoint = url::Url::parse("https://contoso-acs.communication.azure.com/").unwrap();
        let intake = Intake {
            db,
            guard: UrlGuard::new(&[".asm.skype.com".to_owned()], &endpoint, false),
            acs_endpoint: endpoint,
            retention: chrono::Duration::hours(24),
            metrics: Arc::new(Metrics::default()),
            wake: Arc::new(tokio::sync::Notify::new()),
            group_commit: None,
            auto_start: false,
            start_wake: Arc::new(tokio::sync::Notify::new()),
        }
        .with_group_commit(Limits::default());
        Self {
            intake,
            observer,
            _dir: dir,
            postgres,
        }
    }

    fn stats(&self) -> Arc<CommitStats> {
        self.intake.group_commit_stats().unwrap()
    }

    fn queued(&self) -> usize {
        self.intake.group_commit.as_ref().unwrap().queued()
    }

    /// Holds the database so that the committer's next transaction cannot proceed.
    async fn block_writes(&self) -> Tx {
        let mut tx = self.intake.db.begin_write().await.unwrap();
        if self.intake.db.backend() == Backend::Postgres {
            sqlx::query("LOCK TABLE events IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx
    }

    /// Whether `id` is committed, seen from another connection.
    async fn visible(&self, id: &str) -> bool {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE id = $1")
            .bind(id)
            .fetch_one(self.observer.pool())
            .await
            .unwrap();
        count == 1
    }

    /// Submits a delivery of these event ids; once it is answered, reports what another
    /// connection sees of its events at that moment.
    fn deliver(
        &self,
        ids: &[&str],
    ) -> tokio::task::JoinHandle<(Result<DeliverySummary, StoreError>, Vec<bool>)> {
        let ids: Vec<String> = ids.iter().map(|id| (*id).to_owned()).collect();
        let (intake, observer) = (self.intake.clone(), self.observer.clone());
        tokio::spawn(async move {
            let body = serde_json::to_vec(&ids.iter().map(|id| event(id)).collect::<Vec<_>>());
            let events = super::envelope::parse_body(&body.unwrap()).unwrap();
            let answer = intake.store(events).await;
            let mut seen = Vec::new();
            for id in &ids {
                let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE id = $1")
                    .bind(id)
                    .fetch_one(observer.pool())
                    .await
                    .unwrap();
                seen.push(count == 1);
            }
            (answer, seen)
        })
    }

    /// Sends one delivery and waits until the committer has taken it: it is then stuck
    /// behind `block_writes`, and everything submitted next queues for the following batch.
    async fn plug(
        &self,
    ) -> tokio::task::JoinHandle<(Result<DeliverySummary, StoreError>, Vec<bool>)> {
        let plug = self.deliver(&["plug"]);
        let stats = self.stats();
        wait_until(|| stats.last_batch() == 1 && self.queued() == 0).await;
        plug
    }

    async fn remove(self) {
        self.intake.db.close().await;
        self.observer.close().await;
        if let Some((server, name)) = &self.postgres {
            admin_sql(
                server,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
            .await;
        }
    }
}

/// Polls a condition that no event announces (the committer's queue length); fails the
/// test after 10 s instead of hanging.
async fn wait_until(condition: impl Fn() -> bool) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the condition holds within 10 s");
}

/// A valid one-chunk RecordingFileStatusUpdated event; its document is named after its id.
fn event(id: &str) -> Value {
    let document = format!("0-eus-d1-{:032x}", fnv(id));
    let started = (chrono::Utc::now() - chrono::Duration::minutes(10))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    json!({
        "id": id,
        "topic": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Communication/CommunicationServices/test",
        "subject": format!("/recording/call/call-{id}/serverCallId/srv-{id}"),
        "eventType": "Microsoft.Communication.RecordingFileStatusUpdated",
        "eventTime": started,
        "dataVersion": "1.0",
        "metadataVersion": "1",
        "data": {
            "recordingStorageInfo": {"recordingChunks": [{
                "documentId": document,
                "index": 0,
                "endReason": "SessionEnded",
                "contentLocation": format!("https://us-storage.asm.skype.com/v1/objects/{document}/content/audio"),
                "metadataLocation": format!("https://us-storage.asm.skype.com/v1/objects/{document}/content/acsmetadata"),
                "deleteLocation": format!("https://us-storage.asm.skype.com/v1/objects/{document}/content/deletedata")
            }]},
            "recordingStartTime": started,
            "recordingDurationMs": 60000,
            "sessionEndReason": "CallEnded",
            "recordingContentType": "Audio",
            "recordingChannelType": "Mixed",
            "recordingFormatType": "Wav"
        }
    })
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3)
    })
}

macro_rules! on_every_store {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(super::Store::Sqlite).await;
            }
            #[tokio::test]
            async fn postgres() {
                if crate::test_services::postgres_server().is_none() {
                    return;
                }
                super::$name(super::Store::Postgres).await;
            }
        }
    };
}

on_every_store!(concurrent_deliveries_share_one_commit_and_are_answered_after_it);
async fn concurrent_deliveries_share_one_commit_and_are_answered_after_it(store: Store) {
    let fixture = Fixture::new(store).await;
    let blocker = fixture.block_writes().await;
    let plug = fixture.plug().await;
    let ids: Vec<String> = (0..40).map(|n| format!("concurrent-{n}")).collect();
    let deliveries: Vec<_> = ids.iter().map(|id| fixture.deliver(&[id])).collect();
    wait_until(|| fixture.queued() == ids.len()).await;

    // Nothing can commit while the database is held, so nothing may be answered.
    assert!(!plug.is_finished(), "answered before its commit");
    assert!(
        deliveries.iter().all(|d| !d.is_finished()),
        "answered before its commit"
    );
    assert_eq!(fixture.stats().commits(), 0);
    drop(blocker);

    let (answer, seen) = plug.await.unwrap();
    assert_eq!(answer.unwrap().accepted, 1);
    assert_eq!(seen, [true]);
    for delivery in deliveries {
        let (answer, seen) = delivery.await.unwrap();
        assert_eq!(answer.unwrap().accepted, 1);
        assert_eq!(
            seen,
            [true],
            "answered 200 before its events were committed"
        );
    }
    let stats = fixture.stats();
    assert_eq!(stats.committed_deliveries(), 41);
    assert_eq!(stats.commits(), 2, "the plug alone, then the 40 together");
    for id in &ids {
        assert!(fixture.visible(id).await);
    }
    fixture.remove().await;
}

on_every_store!(a_delivery_failing_in_the_database_does_not_fail_its_batch_mates);
async fn a_delivery_failing_in_the_database_does_not_fail_its_batch_mates(store: Store) {
    let fixture = Fixture::new(store).await;
    let poison = match store {
        Store::Sqlite => {
            "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.id = 'poison' \
             BEGIN SELECT RAISE(ABORT, 'forced failure'); END"
        }
        Store::Postgres => "ALTER TABLE events ADD CONSTRAINT poison CHECK (id <> 'poison')",
    };
    sqlx::query(poison)
        .execute(fixture.observer.pool())
        .await
        .unwrap();
    let blocker = fixture.block_writes().await;
    let plug = fixture.plug().await;
    let before = fixture.deliver(&["before-1", "before-2"]);
    let failing = fixture.deliver(&["written-then-undone", "poison"]);
    let after = fixture.deliver(&["after-1"]);
    wait_until(|| fixture.queued() == 3).await;
    drop(blocker);

    assert!(plug.await.unwrap().0.is_ok());
    let (answer, seen) = failing.await.unwrap();
    assert!(matches!(answer, Err(StoreError::Queue(_))), "{answer:?}");
    assert_eq!(
        seen,
        [false, false],
        "the failing delivery's writes are undone"
    );
    let (answer, seen) = before.await.unwrap();
    assert_eq!(answer.unwrap().accepted, 2);
    assert_eq!(seen, [true, true]);
    let (answer, seen) = after.await.unwrap();
    assert_eq!(answer.unwrap().accepted, 1);
    assert_eq!(seen, [true]);
    assert_eq!(
        fixture.stats().commits(),
        2,
        "the three shared one transaction"
    );
    let jobs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs")
        .fetch_one(fixture.observer.pool())
        .await
        .unwrap();
    assert_eq!(jobs, 4, "plug, before-1, before-2, after-1");
    fixture.remove().await;
}

on_every_store!(the_same_event_in_two_deliveries_of_one_batch_is_recognised_once);
async fn the_same_event_in_two_deliveries_of_one_batch_is_recognised_once(store: Store) {
    let fixture = Fixture::new(store).await;
    let blocker = fixture.block_writes().await;
    let plug = fixture.plug().await;
    let first = fixture.deliver(&["shared", "only-first"]);
    let second = fixture.deliver(&["only-second", "shared"]);
    wait_until(|| fixture.queued() == 2).await;
    drop(blocker);

    assert!(plug.await.unwrap().0.is_ok());
    let first = first.await.unwrap().0.unwrap();
    let second = second.await.unwrap().0.unwrap();
    assert_eq!(first.accepted + second.accepted, 3);
    assert_eq!(first.duplicates + second.duplicates, 1);
    assert_eq!(fixture.stats().commits(), 2, "both shared one transaction");
    let jobs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs")
        .fetch_one(fixture.observer.pool())
        .await
        .unwrap();
    assert_eq!(jobs, 4, "plug, shared, only-first, only-second");
    fixture.remove().await;
}

on_every_store!(a_lone_delivery_is_not_held_waiting_for_company);
async fn a_lone_delivery_is_not_held_waiting_for_company(store: Store) {
    let fixture = Fixture::new(store).await;
    for n in 0..5 {
        let (answer, seen) = fixture.deliver(&[&format!("lone-{n}")]).await.unwrap();
        assert_eq!(answer.unwrap().accepted, 1);
        assert_eq!(seen, [true]);
        let stats = fixture.stats();
        assert_eq!(stats.last_batch(), 1);
        assert_eq!(stats.commits(), n + 1);
    }
    let held = fixture.stats().max_gathering();
    assert!(
        held < Duration::from_millis(1),
        "a lone delivery was held {held:?} before its transaction opened"
    );
    fixture.remove().await;
}

on_every_store!(only_a_batch_with_a_failing_delivery_is_written_again_with_savepoints);
async fn only_a_batch_with_a_failing_delivery_is_written_again_with_savepoints(store: Store) {
    let fixture = Fixture::new(store).await;
    let poison = match store {
        Store::Sqlite => {
            "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.id = 'poison' \
             BEGIN SELECT RAISE(ABORT, 'forced failure'); END"
        }
        Store::Postgres => "ALTER TABLE events ADD CONSTRAINT poison CHECK (id <> 'poison')",
    };
    sqlx::query(poison)
        .execute(fixture.observer.pool())
        .await
        .unwrap();

    // A clean batch commits from its first pass.
    let blocker = fixture.block_writes().await;
    let plug = fixture.plug().await;
    let clean: Vec<_> = ["clean-1", "clean-2", "clean-3"]
        .iter()
        .map(|id| fixture.deliver(&[id]))
        .collect();
    wait_until(|| fixture.queued() == 3).await;
    drop(blocker);
    assert!(plug.await.unwrap().0.is_ok());
    for delivery in clean {
        let (answer, seen) = delivery.await.unwrap();
        assert_eq!(answer.unwrap().accepted, 1);
        assert_eq!(seen, [true]);
    }
    assert_eq!(fixture.stats().fallbacks(), 0);

    // A batch with a failing delivery is undone and written again, a savepoint each.
    let blocker = fixture.block_writes().await;
    let plug = fixture.plug().await;
    let first = fixture.deliver(&["mate-1"]);
    let failing = fixture.deliver(&["poison"]);
    let last = fixture.deliver(&["mate-2"]);
    wait_until(|| fixture.queued() == 3).await;
    drop(blocker);
    assert!(plug.await.unwrap().0.is_ok());
    let (answer, _) = failing.await.unwrap();
    assert!(matches!(answer, Err(StoreError::Queue(_))), "{answer:?}");
    for delivery in [first, last] {
        let (answer, seen) = delivery.await.unwrap();
        assert_eq!(answer.unwrap().accepted, 1);
        assert_eq!(seen, [true]);
    }
    assert_eq!(fixture.stats().fallbacks(), 1);
    fixture.remove().await;
}
