//! The outbox on SQLite and PostgreSQL: rows written only for sinks that take the type, once
//! per event id, claimed in order per recording, never by two owners at once.

use std::sync::Arc;

use super::*;
use crate::queue::Backend;

fn routes() -> EventRoutes {
    EventRoutes::new(
        "test-host",
        vec![
            SinkRoute {
                name: "all".into(),
                types: EventType::ALL.to_vec(),
                wake: Arc::default(),
            },
            SinkRoute {
                name: "failures".into(),
                types: vec![EventType::Failed],
                wake: Arc::default(),
            },
        ],
    )
}

async fn database(backend: Backend) -> Option<(Db, Option<tempfile::TempDir>)> {
    let (db, dir) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let db = Db::connect(&format!("sqlite://{}/q.db", dir.path().display()), 4)
                .await
                .unwrap();
            (db, Some(dir))
        }
        Backend::Postgres => {
            let server = crate::test_services::postgres_server()?;
            let name = format!("callvault_outbox_{}", uuid::Uuid::new_v4().simple());
            crate::test_services::admin_sql(&server, &format!("CREATE DATABASE {name}")).await;
            (
                Db::connect(&format!("{server}/{name}"), 4).await.unwrap(),
                None,
            )
        }
    };
    db.migrate().await.unwrap();
    Some((db.with_event_routes(routes()), dir))
}

fn event(id: &str, event_type: EventType, recording_id: i64) -> NewEvent {
    NewEvent {
        id: id.into(),
        event_type,
        subject: format!("call/rec-{recording_id}"),
        recording_id,
        time: "2026-12-03T12:00:00+00:00".into(),
        data: serde_json::json!({"recordingKey": format!("rec-{recording_id}")}),
    }
}

async fn write(db: &Db, event: &NewEvent) -> u64 {
    let mut tx = db.begin_write().await.unwrap();
    let written = record(&mut tx, db.events(), event, 1_000).await.unwrap();
    tx.commit().await.unwrap();
    written
}

async fn ids(db: &Db, sink: &str, owner: &str, limit: usize, now: i64) -> Vec<String> {
    claim(db, sink, owner, limit, now + 60_000, now)
        .await
        .unwrap()
        .into_iter()
        .map(|delivery| delivery.event_id)
        .collect()
}

async fn rows_go_to_the_sinks_that_take_them_once_and_in_order(backend: Backend) {
    let Some((db, _dir)) = database(backend).await else {
        return;
    };
    assert_eq!(write(&db, &event("a1", EventType::Archived, 1)).await, 1);
    assert_eq!(
        write(&db, &event("a1", EventType::Archived, 1)).await,
        0,
        "the same manifest version again adds nothing"
    );
    assert_eq!(write(&db, &event("f1", EventType::Failed, 1)).await, 2);
    assert_eq!(write(&db, &event("a2", EventType::Archived, 2)).await, 1);

    // Recording 1's second event waits for its first; recording 2's goes out beside it.
    let first = claim(&db, "all", "me", 10, 61_000, 1_000).await.unwrap();
    let claimed: Vec<_> = first.iter().map(|d| d.event_id.as_str()).collect();
    assert_eq!(claimed, ["a1", "a2"]);
    let body: serde_json::Value = serde_json::from_str(&first[0].body).unwrap();
    assert_eq!(body["type"], "com.callvault.recording.archived");
    assert_eq!(body["source"], "test-host");
    assert_eq!(body["specversion"], "1.0");
    assert!(ids(&db, "all", "other", 10, 1_000).await.is_empty());
    assert_eq!(ids(&db, "failures", "me", 10, 1_000).await, ["f1"]);

    // Delivered, the next one of recording 1 is due; a retry waits for its time.
    assert!(
        finish(&db, &first[0], &Outcome::Delivered, 2_000)
            .await
            .unwrap()
    );
    let retry = Outcome::Retry {
        next_attempt_at: 50_000,
        error: "answered 500".into(),
    };
    assert!(finish(&db, &first[1], &retry, 2_000).await.unwrap());
    assert!(
        !finish(&db, &first[1], &Outcome::Delivered, 2_000)
            .await
            .unwrap(),
        "an outcome without the lease changes nothing"
    );
    assert_eq!(ids(&db, "all", "me", 10, 3_000).await, ["f1"]);
    assert_eq!(ids(&db, "all", "me", 10, 50_000).await, ["a2"]);

    let failed = list(&db, Some(RowState::Pending), None, 10, None)
        .await
        .unwrap();
    assert!(failed.is_empty(), "{failed:?}");
    let page = list(&db, None, Some("all"), 2, None).await.unwrap();
    assert_eq!(page.len(), 2);
    let next = list(&db, None, Some("all"), 2, Some(page[1].id))
        .await
        .unwrap();
    assert_eq!(next.len(), 1);
    assert!(next[0].id < page[1].id);
    db.close().await;
}

#[tokio::test]
async fn rows_go_to_the_sinks_that_take_them_once_and_in_order_on_sqlite() {
    rows_go_to_the_sinks_that_take_them_once_and_in_order(Backend::Sqlite).await;
}

#[tokio::test]
async fn rows_go_to_the_sinks_that_take_them_once_and_in_order_on_postgresql() {
    rows_go_to_the_sinks_that_take_them_once_and_in_order(Backend::Postgres).await;
}

async fn a_lapsed_lease_is_taken_over_and_a_failed_row_is_replayed(backend: Backend) {
    let Some((db, _dir)) = database(backend).await else {
        return;
    };
    write(&db, &event("f1", EventType::Failed, 7)).await;
    let taken = claim(&db, "failures", "crashed", 1, 10_000, 1_000)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert!(
        ids(&db, "failures", "me", 1, 5_000).await.is_empty(),
        "the lease holds"
    );
    assert_eq!(release_lapsed(&db, "failures", 5_000).await.unwrap(), 0);
    assert_eq!(release_lapsed(&db, "failures", 20_000).await.unwrap(), 1);
    let again = claim(&db, "failures", "me", 1, 80_000, 20_000)
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "a lapsed lease makes the row due");
    assert_eq!(again[0].attempts, 2);
    let failed = Outcome::Failed {
        error: "gave up".into(),
    };
    assert!(finish(&db, &again[0], &failed, 21_000).await.unwrap());
    assert!(ids(&db, "failures", "me", 1, 90_000).await.is_empty());
    let gauges = gauges(&db, "failures", 21_000).await.unwrap();
    assert_eq!((gauges.pending, gauges.failed), (0, 1));
    assert_eq!(
        replay(
            &db,
            &Replay::Failed {
                sink: Some("failures".into())
            }
        )
        .await
        .unwrap(),
        1
    );
    let gauges = gauges_now(&db, "failures").await;
    assert_eq!((gauges.pending, gauges.failed), (1, 0));
    db.close().await;
}

async fn gauges_now(db: &Db, sink: &str) -> SinkGauges {
    gauges(db, sink, now_millis()).await.unwrap()
}

#[tokio::test]
async fn a_lapsed_lease_is_taken_over_and_a_failed_row_is_replayed_on_sqlite() {
    a_lapsed_lease_is_taken_over_and_a_failed_row_is_replayed(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_lapsed_lease_is_taken_over_and_a_failed_row_is_replayed_on_postgresql() {
    a_lapsed_lease_is_taken_over_and_a_failed_row_is_replayed(Backend::Postgres).await;
}

async fn owners_racing_never_take_a_row_twice(backend: Backend) {
    let Some((db, _dir)) = database(backend).await else {
        return;
    };
    for n in 0..200 {
        write(&db, &event(&format!("e{n}"), EventType::Archived, n)).await;
    }
    let mut racers = tokio::task::JoinSet::new();
    for owner in 0..4 {
        let db = db.clone();
        racers.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = ids(&db, "all", &format!("owner-{owner}"), 7, 1_000).await;
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got);
            }
        });
    }
    let mut all = Vec::new();
    while let Some(mine) = racers.join_next().await {
        all.extend(mine.unwrap());
    }
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!((total, all.len()), (200, 200));
    db.close().await;
}

#[tokio::test]
async fn owners_racing_never_take_a_row_twice_on_sqlite() {
    owners_racing_never_take_a_row_twice(Backend::Sqlite).await;
}

#[tokio::test]
async fn owners_racing_never_take_a_row_twice_on_postgresql() {
    owners_racing_never_take_a_row_twice(Backend::Postgres).await;
}

async fn a_burst_of_outcomes_is_recorded_together(backend: Backend) {
    let Some((db, _dir)) = database(backend).await else {
        return;
    };
    for n in 0..4 {
        write(&db, &event(&format!("b{n}"), EventType::Archived, n)).await;
    }
    let claimed = claim(&db, "all", "me", 4, 61_000, 1_000).await.unwrap();
    assert_eq!(claimed.len(), 4);
    let mut stolen = claimed[3].clone();
    stolen.lease_owner = "someone else".into();
    let retry = Outcome::Retry {
        next_attempt_at: 9_000,
        error: "answered 503".into(),
    };
    let outcomes = vec![
        (claimed[0].clone(), Outcome::Delivered),
        (claimed[1].clone(), retry),
        (claimed[2].clone(), Outcome::Delivered),
        (stolen, Outcome::Delivered),
    ];
    let held = finish_many(&db, &outcomes, 2_000).await.unwrap();
    assert_eq!(held, [true, true, true, false]);
    let states: Vec<(String, String)> =
        sqlx::query_as("SELECT event_id, state FROM event_outbox WHERE sink = 'all' ORDER BY id")
            .fetch_all(db.pool())
            .await
            .unwrap();
    let states: Vec<(&str, &str)> = states
        .iter()
        .map(|(id, state)| (id.as_str(), state.as_str()))
        .collect();
    assert_eq!(
        states,
        [
            ("b0", "delivered"),
            ("b1", "pending"),
            ("b2", "delivered"),
            ("b3", "delivering")
        ]
    );
    db.close().await;
}

#[tokio::test]
async fn a_burst_of_outcomes_is_recorded_together_on_sqlite() {
    a_burst_of_outcomes_is_recorded_together(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_burst_of_outcomes_is_recorded_together_on_postgresql() {
    a_burst_of_outcomes_is_recorded_together(Backend::Postgres).await;
}
