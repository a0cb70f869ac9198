//! The operator's reads on a large history, on SQLite and PostgreSQL:
//! `admin_scale BACKEND [ARCHIVED PENDING]` (default 1000000 100000) seeds that many
//! archived jobs (three-chunk recordings with their manifests written) and pending ones
//! (one-chunk recordings) in one transaction, then prints the median of a few runs of what
//! `/metrics` (queue gauges), `/admin/stats`, the first and a later `/admin/recordings` page
//! (the same query as `callvault recordings list`) and the manifest sweep ask the database,
//! each against the 100 ms target. With `before` it also times the queries these replaced
//! (a GROUP BY over all jobs, correlated counts per recording) on the same database.
//!
//! BACKEND is `sqlite` or `postgres` (`CALLVAULT_TEST_POSTGRES`, default
//! postgres://postgres@127.0.0.1:5432). Databases are made under `CALLVAULT_BENCH_DIR`
//! (default the system temp folder) and removed afterwards. `benches/admin_scale.sh` runs both.

use std::future::Future;
use std::time::{Duration, Instant};

#[path = "support/store.rs"]
mod store;

use callvault::admin::{operations, stats};
use callvault::queue::{Backend, Db, now_millis, recordings};
use store::Store;

const RUNS: usize = 5;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let backend = match args.first().map(String::as_str) {
        Some("postgres") => Backend::Postgres,
        Some("sqlite") | None => Backend::Sqlite,
        Some(other) => panic!("unknown backend `{other}`: sqlite or postgres"),
    };
    let numbers: Vec<i64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let archived = numbers.first().copied().unwrap_or(1_000_000);
    let pending = numbers.get(1).copied().unwrap_or(100_000);
    let before = args.iter().any(|a| a == "before");

    let store = Store::new(backend).await;
    let db = Db::connect(&store.url, 4).await.unwrap();
    db.migrate().await.unwrap();
    let seeding = Instant::now();
    seed(&db, archived / 3, 3, "archived").await;
    seed(&db, pending, 1, "pending").await;
    println!(
        "  {}: seeded {archived} archived + {pending} pending jobs in {:.1} s",
        name(backend),
        seeding.elapsed().as_secs_f64()
    );

    let now = now_millis();
    let newest: i64 = sqlx::query_scalar("SELECT MAX(id) FROM recordings")
        .fetch_one(db.pool())
        .await
        .unwrap();
    let later = (newest / 2).to_string();
    let margin = chrono::Duration::hours(24);
    let mut figures = vec![
        (
            "/metrics queue gauges",
            median(|| async {
                stats::queue_gauges(&db, margin, now).await.unwrap();
            })
            .await,
        ),
        (
            "/admin/stats",
            median(|| async {
                stats::stats(&db, 24, now).await.unwrap();
            })
            .await,
        ),
        (
            "/admin/recordings first page (= recordings list)",
            median(|| async {
                let page = operations::list_recordings(&db, None, 50, None, now)
                    .await
                    .unwrap();
                assert_eq!(page.recordings.len(), 50);
            })
            .await,
        ),
        (
            "/admin/recordings later cursor page",
            median(|| async {
                let page = operations::list_recordings(&db, None, 50, Some(&later), now)
                    .await
                    .unwrap();
                assert_eq!(page.recordings.len(), 50);
            })
            .await,
        ),
        (
            "manifest sweep query",
            median(|| async {
                recordings::stale_manifests(&db).await.unwrap();
            })
            .await,
        ),
    ];
    if before {
        for (label, sql) in REPLACED {
            let sql = sql.replace("$1", &later);
            let time = median(|| async {
                sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .fetch_all(db.pool())
                    .await
                    .unwrap();
            })
            .await;
            figures.push((label, time));
        }
    }
    for (label, time) in figures {
        let ms = time.as_secs_f64() * 1000.0;
        println!(
            "{label}, {}, {archived} archived + {pending} pending: median {ms:.2} ms ({:.3} × 100 ms); target < 100 ms: {}",
            name(backend),
            ms / 100.0,
            if ms < 100.0 { "met" } else { "MISSED" }
        );
    }
    db.close().await;
    // CALLVAULT_BENCH_KEEP=1 keeps the database, to EXPLAIN its queries afterwards.
    if std::env::var_os("CALLVAULT_BENCH_KEEP").is_some() {
        println!("  kept {}", store.url);
    } else {
        store.remove().await;
    }
}

/// What the reads were before the kept counts, for the before/after comparison.
const REPLACED: [(&str, &str); 4] = [
    (
        "before: jobs per state (GROUP BY over all jobs)",
        "SELECT state, COUNT(*) FROM jobs GROUP BY state",
    ),
    (
        "before: archived bytes (SUM over archived jobs)",
        "SELECT CAST(COALESCE(SUM(COALESCE(media_bytes, 0) + COALESCE(metadata_bytes, 0)), 0) AS BIGINT) FROM jobs WHERE state = 'archived'",
    ),
    (
        "before: recordings in one state (correlated counts per recording; /admin/stats ran four)",
        "SELECT COUNT(*) FROM (SELECT r.*,
            (SELECT COUNT(*) FROM jobs j WHERE j.recording_id = r.id AND j.state IN ('pending', 'running')) AS active_chunks,
            (SELECT COUNT(*) FROM jobs j WHERE j.recording_id = r.id AND j.state IN ('failed', 'expired')) AS broken_chunks
          FROM recordings r) x WHERE broken_chunks > 0",
    ),
    (
        "before: manifest sweep (EXISTS per recording)",
        "SELECT r.id FROM recordings r
         WHERE EXISTS (SELECT 1 FROM jobs j WHERE j.recording_id = r.id AND j.state = 'archived'
                         AND (r.manifest_written_at IS NULL OR j.archived_at > r.manifest_written_at))
           AND NOT EXISTS (SELECT 1 FROM jobs p WHERE p.recording_id = r.id AND p.state IN ('pending', 'running'))
         ORDER BY r.id",
    ),
];

/// The median of a few runs, after one to warm the cache.
async fn median<F, Fut>(run: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    run().await;
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        run().await;
        times.push(started.elapsed());
    }
    times.sort();
    times[RUNS / 2]
}

fn name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    }
}

/// `count` recordings of `chunks` jobs in `state`, generated in one transaction. Archived
/// recordings get their manifest, written after their chunks, so the sweep finds nothing.
async fn seed(db: &Db, count: i64, chunks: i64, state: &str) {
    let first: i64 = sqlx::query_scalar::<_, i64>("SELECT COALESCE(MAX(id), 0) FROM recordings")
        .fetch_one(db.pool())
        .await
        .unwrap();
    let deadline = now_millis() + 24 * 3_600_000;
    let numbers = |count: i64| match db.backend() {
        Backend::Sqlite => format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count})"
        ),
        Backend::Postgres => format!("WITH n(i) AS (SELECT generate_series(1, {count}))"),
    };
    let (manifest, manifest_at, archived_at, bytes) = if state == "archived" {
        ("'manifest.json'", "2", "1", "1000")
    } else {
        ("NULL", "NULL", "NULL", "NULL")
    };
    let mut tx = db.begin_write().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "{} INSERT INTO recordings (call_id, recording_key, identity, media_extension, deadline_at, created_at, updated_at,
                                 manifest_key, manifest_written_at)
         SELECT 'call-' || (i + {first}), 'rec', 'id:rec', 'wav', {deadline} + i + {first}, 0, 0, {manifest}, {manifest_at} FROM n",
        numbers(count)
    )))
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "{} INSERT INTO jobs (recording_id, chunk_index, document_id, end_reason, content_url, metadata_url, state,
                           next_attempt_at, deadline_at, created_at, updated_at, archived_at, media_bytes, metadata_bytes)
         SELECT r.id, n.i - 1, 'doc-' || r.id || '-' || n.i,
                CASE WHEN n.i = {chunks} THEN 'SessionEnded' ELSE 'ChunkMaximumSizeExceeded' END,
                'https://unused.invalid/c', 'https://unused.invalid/m',
                '{state}', 0, r.deadline_at, r.id, 0, {archived_at}, {bytes}, {bytes}
         FROM recordings r, n WHERE r.id > {first} AND n.i <= {chunks}",
        numbers(chunks)
    )))
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    sqlx::query("ANALYZE").execute(db.pool()).await.unwrap();
}
