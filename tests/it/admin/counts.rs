//! The counts the triggers keep (migration 0005) agree with the jobs across every state
//! change, and the scrape-time queries read indexes, never the whole jobs table.

use std::collections::BTreeMap;

use super::support::*;
use callvault::admin::queries;
use callvault::admin::state::{ChunkCounts, RecordingState};
use callvault::queue::jobs::{self, Finish};
use callvault::queue::{Db, now_millis, recordings};

/// What the kept counts must equal, computed the slow way from the jobs themselves.
async fn recount(db: &Db) -> (BTreeMap<String, i64>, i64, BTreeMap<String, i64>, Vec<i64>) {
    let jobs: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, COUNT(*) FROM jobs GROUP BY state")
            .fetch_all(db.pool())
            .await
            .unwrap();
    let bytes: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(COALESCE(media_bytes, 0) + COALESCE(metadata_bytes, 0)), 0) AS BIGINT)
         FROM jobs WHERE state = 'archived'",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    let rows: Vec<(i64, i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT r.id,
            (SELECT COUNT(*) FROM jobs j WHERE j.recording_id = r.id),
            (SELECT COUNT(*) FROM jobs j WHERE j.recording_id = r.id AND j.state = 'archived'),
            (SELECT COUNT(*) FROM jobs j WHERE j.recording_id = r.id AND j.state IN ('pending', 'running')),
            (SELECT COUNT(*) FROM jobs j WHERE j.recording_id = r.id AND j.state IN ('failed', 'expired')),
            CASE WHEN r.manifest_key IS NULL THEN 0 ELSE 1 END
         FROM recordings r",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    let mut states: BTreeMap<String, i64> = RecordingState::ALL
        .iter()
        .map(|s| (s.as_str().to_owned(), 0))
        .collect();
    for (_, chunks, archived_chunks, active_chunks, broken_chunks, manifest) in rows {
        let counts = ChunkCounts {
            chunks,
            archived_chunks,
            active_chunks,
            broken_chunks,
        };
        *states
            .get_mut(RecordingState::derive(&counts, manifest == 1).as_str())
            .unwrap() += 1;
    }
    let stale: Vec<i64> = sqlx::query_scalar(
        "SELECT r.id FROM recordings r
         WHERE EXISTS (SELECT 1 FROM jobs j WHERE j.recording_id = r.id AND j.state = 'archived'
                         AND (r.manifest_written_at IS NULL OR j.archived_at > r.manifest_written_at))
           AND NOT EXISTS (SELECT 1 FROM jobs p WHERE p.recording_id = r.id AND p.state IN ('pending', 'running'))
         ORDER BY r.id",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    (
        jobs.into_iter().filter(|(_, n)| *n > 0).collect(),
        bytes,
        states,
        stale,
    )
}

/// Asserts the kept counts equal the recount and returns the job counts.
async fn assert_counts_agree(db: &Db, step: &str) -> BTreeMap<String, i64> {
    let (jobs, bytes, states, stale) = recount(db).await;
    let kept: BTreeMap<String, i64> = queries::job_counts_by_state(db)
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(kept, jobs, "job counts after {step}");
    assert_eq!(
        queries::archived_bytes(db).await.unwrap(),
        bytes,
        "archived bytes after {step}"
    );
    let mut kept_states: BTreeMap<String, i64> = RecordingState::ALL
        .iter()
        .map(|s| (s.as_str().to_owned(), 0))
        .collect();
    kept_states.extend(queries::recording_counts_by_state(db).await.unwrap());
    assert_eq!(kept_states, states, "recording states after {step}");
    assert_eq!(
        recordings::stale_manifests(db).await.unwrap(),
        stale,
        "stale manifests after {step}"
    );
    jobs
}

fn counts(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
    pairs.iter().map(|(s, n)| (s.to_string(), *n)).collect()
}

async fn counts_follow_every_state_change(store: Store) {
    let Some(app) = ingest(store).await else {
        return;
    };
    let db = app.queue();
    announce(
        &app,
        "a",
        1,
        &[(0, "ChunkMaximumSizeExceeded"), (1, "SessionEnded")],
    )
    .await;
    announce(&app, "b", 2, &[(0, "SessionEnded")]).await;
    assert_eq!(
        assert_counts_agree(db, "ingest").await,
        counts(&[("pending", 3)])
    );

    // pending -> running: b's deadline is the earliest, so it is claimed first.
    let now = now_millis();
    let b = jobs::claim(db, "w", now + 60_000, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        assert_counts_agree(db, "claim").await,
        counts(&[("pending", 2), ("running", 1)])
    );
    // running -> failed
    assert!(
        jobs::finish(db, &b, "w", &failed("ACS answered 500"), now_millis())
            .await
            .unwrap()
    );
    assert_eq!(
        assert_counts_agree(db, "failure").await,
        counts(&[("pending", 2), ("failed", 1)])
    );
    // failed -> pending (replay), then archived
    assert!(
        jobs::replay(db, &callvault::audit::Actor::cli(), b.id, now_millis())
            .await
            .unwrap()
    );
    assert_eq!(
        assert_counts_agree(db, "replay").await,
        counts(&[("pending", 3)])
    );
    drive(db, b.id, Finish::Archived(archived_chunk("b", 0))).await;
    drive(
        db,
        job_id(db, "a", 0).await,
        Finish::Archived(archived_chunk("a", 0)),
    )
    .await;
    assert_eq!(
        assert_counts_agree(db, "archiving").await,
        counts(&[("pending", 1), ("archived", 2)])
    );
    assert_eq!(queries::archived_bytes(db).await.unwrap(), 2 * 1024);
    // Only b is complete and waits for its manifest; a still has a pending chunk.
    let b_recording = b.recording_id;
    assert_eq!(
        recordings::stale_manifests(db).await.unwrap(),
        [b_recording]
    );
    callvault::worker::manifest::refresh(db, &app.running().state.archive, b_recording)
        .await
        .unwrap()
        .expect("b is complete");
    assert_counts_agree(db, "manifest").await;
    assert!(recordings::stale_manifests(db).await.unwrap().is_empty());
    let states: BTreeMap<_, _> = queries::recording_counts_by_state(db)
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(states, counts(&[("archiving", 1), ("complete", 1)]));

    // Retry (running -> pending) and expiry.
    let now = now_millis();
    let a1 = jobs::claim(db, "w", now + 60_000, now)
        .await
        .unwrap()
        .unwrap();
    let retry = Finish::Retry {
        next_attempt_at: now,
        error: "timeout".into(),
    };
    assert!(
        jobs::finish(db, &a1, "w", &retry, now_millis())
            .await
            .unwrap()
    );
    assert_counts_agree(db, "retry").await;
    let now = now_millis();
    let a1 = jobs::claim(db, "w", now + 60_000, now)
        .await
        .unwrap()
        .unwrap();
    let expired = Finish::Expired {
        error: "past the deadline".into(),
    };
    assert!(
        jobs::finish(db, &a1, "w", &expired, now_millis())
            .await
            .unwrap()
    );
    assert_eq!(
        assert_counts_agree(db, "expiry").await,
        counts(&[("archived", 2), ("expired", 1)])
    );
    app.close().await;
}
on_every_store!(counts_follow_every_state_change);

/// The plan of every query a scrape, the stats, a recordings page or the sweep runs. On
/// PostgreSQL sequential scans are priced out, so a `Seq Scan` left means no index serves.
async fn plans(db: &Db) -> Vec<(String, String)> {
    let postgres = db.pool().connect_options().database_url.scheme() != "sqlite";
    let mut conn = db.pool().acquire().await.unwrap();
    if postgres {
        sqlx::query("SET enable_seqscan = off")
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    let explain = if postgres {
        "EXPLAIN"
    } else {
        "EXPLAIN QUERY PLAN"
    };
    let mut queries: Vec<(String, String, Option<i64>)> = vec![
        (
            "urgency".into(),
            queries::URGENCY_SQL.into(),
            Some(now_millis()),
        ),
        ("job counts".into(), queries::JOB_COUNTS_SQL.into(), None),
        (
            "recording states".into(),
            queries::RECORDING_STATE_COUNTS_SQL.into(),
            None,
        ),
        (
            "archived bytes".into(),
            queries::ARCHIVED_BYTES_SQL.into(),
            None,
        ),
        (
            "stale manifests".into(),
            recordings::STALE_MANIFESTS_SQL.into(),
            None,
        ),
    ];
    for state in [None].into_iter().chain(RecordingState::ALL.map(Some)) {
        queries.push((
            format!("recordings page {state:?}"),
            queries::recordings_sql(state),
            Some(i64::MAX),
        ));
    }
    let mut out = Vec::new();
    for (name, sql, arg) in queries {
        let sql = format!("{explain} {sql}");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(arg) = arg {
            query = query.bind(arg);
            if name.starts_with("recordings page") {
                query = query.bind(50_i64);
            }
        }
        let rows = query.fetch_all(&mut *conn).await.unwrap();
        use sqlx::Row;
        let plan: Vec<String> = rows
            .iter()
            .map(|row| {
                row.try_get::<String, _>(if postgres { 0 } else { 3 })
                    .unwrap()
            })
            .collect();
        out.push((name, plan.join("\n")));
    }
    out
}

/// A plan line reading every row of a table that grows with the history.
fn scans_history(line: &str) -> bool {
    let line = line.trim_start_matches([' ', '-', '>']);
    // A covering-index scan still reads every entry, so it counts as a scan too.
    // Partial indexes hold only the rows a query wants, so walking one is no scan.
    let sqlite_scan = line.starts_with("SCAN ")
        && ![
            "recording_counts_stale",
            "recording_counts_failed",
            "recording_counts_archiving",
            "jobs_open",
        ]
        .iter()
        .any(|index| line.ends_with(&format!("USING INDEX {index}")));
    let postgres_scan = line.starts_with("Seq Scan on ");
    let table = [
        "jobs",
        "recordings",
        "recording_counts",
        "attempts",
        "events",
    ]
    .into_iter()
    .any(|t| {
        line.split_whitespace()
            .nth(if postgres_scan { 3 } else { 1 })
            .is_some_and(|word| word == t || word == "j" || word == "r" || word == "c")
    });
    (sqlite_scan || postgres_scan) && table
}

async fn scrape_queries_never_scan_jobs(store: Store) {
    let Some(app) = ingest(store).await else {
        return;
    };
    let db = app.queue();
    announce(&app, "a", 1, &[(0, "SessionEnded")]).await;
    for (name, plan) in plans(db).await {
        for line in plan.lines() {
            assert!(!scans_history(line), "{name} scans a table:\n{plan}");
        }
    }
    // The check itself sees a scan when there is one.
    assert!(scans_history("SCAN jobs"));
    assert!(scans_history(
        "  ->  Seq Scan on jobs  (cost=0.00..1.00 rows=1 width=8)"
    ));
    assert!(scans_history("SCAN jobs USING COVERING INDEX jobs_state"));
    assert!(!scans_history(
        "SCAN recording_counts USING INDEX recording_counts_stale"
    ));
    assert!(!scans_history(
        "SEARCH jobs USING INDEX jobs_state (state=?)"
    ));
    app.close().await;
}
on_every_store!(scrape_queries_never_scan_jobs);
