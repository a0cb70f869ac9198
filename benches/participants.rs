//! Participant lookups on a large index, on SQLite or PostgreSQL:
//! `participants BACKEND [ROWS]` (default 1000000) seeds ROWS / 4 archived one-chunk
//! recordings, each naming one of 1,000 agents and three customers of its own (phone
//! numbers), so the index holds ROWS rows; then times, interleaved, a customer's lookup
//! through `callvault::participants::recordings_of` (the number as a person types it,
//! normalised, one recording with its chunk keys) and a raw primary-key query
//! (`SELECT * FROM recordings WHERE id = $1`) on the same database, each on a different
//! customer or recording every run, and prints both medians and their ratio. An agent's
//! first page (100 of their ROWS / 4,000 recordings, as `GET /admin/participants/{id}` answers)
//! is timed the same way.
//!
//! PostgreSQL is `CALLVAULT_TEST_POSTGRES` (default postgres://postgres@127.0.0.1:5432).
//! Databases are made under `CALLVAULT_BENCH_DIR` (default the system temp folder) and
//! removed afterwards. `benches/participants.sh` runs both backends.

use std::time::{Duration, Instant};

#[path = "support/store.rs"]
mod store;

use callvault::participants;
use callvault::queue::{Backend, Db, now_millis};
use store::Store;

/// Timed runs of each query (different keys each run), after as many to warm up.
const RUNS: usize = 201;
const AGENTS: i64 = 1000;

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
    let rows = args
        .iter()
        .find_map(|a| a.parse::<i64>().ok())
        .unwrap_or(1_000_000);
    let recordings = rows / 4;

    let store = Store::new(backend).await;
    let db = Db::connect(&store.url, 4).await.unwrap();
    db.migrate().await.unwrap();
    let seeding = Instant::now();
    seed(&db, recordings).await;
    let indexed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM participant_recordings")
        .fetch_one(db.pool())
        .await
        .unwrap();
    println!(
        "  {}: seeded {recordings} recordings, {indexed} index rows in {:.1} s",
        name(backend),
        seeding.elapsed().as_secs_f64()
    );

    // A spread of recordings, so no run reads only what the previous one left in the cache.
    let pick = |run: usize| 1 + (run as i64 * 7919) % recordings;
    let (mut lookup, mut raw, mut agent) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..2 * RUNS {
        let recording = pick(run);
        let typed = customer_as_typed(recording);
        let started = Instant::now();
        let found = participants::recordings_of(&db, &typed).await.unwrap();
        let took = started.elapsed();
        assert_eq!(found.len(), 1, "{typed}");
        assert_eq!(found[0].id, recording);
        assert_eq!(found[0].chunks.len(), 1);

        let started = Instant::now();
        let row = sqlx::query("SELECT * FROM recordings WHERE id = $1")
            .bind(recording)
            .fetch_optional(db.pool())
            .await
            .unwrap();
        let raw_took = started.elapsed();
        assert!(row.is_some());

        let started = Instant::now();
        let page = participants::page_of(&db, &agent_id(recording % AGENTS), 100, None)
            .await
            .unwrap();
        let agent_took = started.elapsed();
        assert_eq!(page.recordings.len() as i64, 100.min(recordings / AGENTS));

        if run >= RUNS {
            lookup.push(took);
            raw.push(raw_took);
            agent.push(agent_took);
        }
    }
    let (lookup, raw, agent) = (median(lookup), median(raw), median(agent));
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "customer lookup (recordings_of, 1 recording), {}, {indexed} index rows: median {:.3} ms; raw primary-key query median {:.3} ms; ratio {:.1} ×",
        name(backend),
        ms(lookup),
        ms(raw),
        ms(lookup) / ms(raw)
    );
    println!(
        "agent first page (page_of, 100 of {} recordings), {}: median {:.3} ms; ratio {:.1} × the raw query",
        recordings / AGENTS,
        name(backend),
        ms(agent),
        ms(agent) / ms(raw)
    );
    db.close().await;
    if std::env::var_os("CALLVAULT_BENCH_KEEP").is_some() {
        println!("  kept {}", store.url);
    } else {
        store.remove().await;
    }
}

/// Customer `k` (1–3) of recording `r` is `4:+1` and the ten digits of 2,000,000,000 + 4r + k.
fn customer_key_sql() -> &'static str {
    "'4:+1' || (2000000000 + r.id * 4 + k.i)"
}

/// Customer 1 of `recording`, written as a person types it: `+1 200-000-0005`.
fn customer_as_typed(recording: i64) -> String {
    let digits = (2_000_000_000 + recording * 4 + 1).to_string();
    format!("+1 {}-{}-{}", &digits[..3], &digits[3..6], &digits[6..])
}

fn agent_id(agent: i64) -> String {
    format!("8:acs:00000000-0000-0000-0000-{:012}", agent)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    }
}

/// `count` archived one-chunk recordings and their index rows, in one transaction.
async fn seed(db: &Db, count: i64) {
    let numbers = |name: &str, count: i64| match db.backend() {
        Backend::Sqlite => {
            format!("{name}(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM {name} WHERE i < {count})")
        }
        Backend::Postgres => format!("{name}(i) AS (SELECT generate_series(1, {count}))"),
    };
    let recursive = match db.backend() {
        Backend::Sqlite => "WITH RECURSIVE",
        Backend::Postgres => "WITH",
    };
    let deadline = now_millis() + 24 * 3_600_000;
    let mut tx = db.begin_write().await.unwrap();
    for sql in [
        format!(
            "{recursive} {} INSERT INTO recordings (call_id, recording_key, identity, recording_id, media_extension,
                 deadline_at, created_at, updated_at, manifest_key, manifest_written_at)
             SELECT 'call-' || i, 'rec-' || i, 'id:rec-' || i, 'rec-' || i, 'wav', {deadline}, 0, 0,
                 'call-' || i || '/rec-' || i || '/manifest.json', 2 FROM n",
            numbers("n", count)
        ),
        "INSERT INTO jobs (recording_id, chunk_index, document_id, end_reason, content_url, metadata_url, state,
             next_attempt_at, deadline_at, created_at, updated_at, archived_at, media_key, media_bytes,
             metadata_key, metadata_bytes)
         SELECT r.id, 0, 'doc-' || r.id, 'SessionEnded', 'https://unused.invalid/c', 'https://unused.invalid/m',
             'archived', 0, r.deadline_at, 0, 0, 1, r.call_id || '/' || r.recording_key || '/chunk-0000.wav', 1000,
             r.call_id || '/' || r.recording_key || '/chunk-0000.metadata.json', 100
         FROM recordings r"
            .to_owned(),
        format!(
            "INSERT INTO participant_recordings (participant, recording_id, first_seen_at, first_chunk_index)
             SELECT '8:acs:00000000-0000-0000-0000-' || {}, id, 1, 0 FROM recordings",
            agent_suffix_sql(db.backend())
        ),
        format!(
            "{recursive} {} INSERT INTO participant_recordings (participant, recording_id, first_seen_at, first_chunk_index)
             SELECT {}, r.id, 1, 0 FROM recordings r, k",
            numbers("k", 3),
            customer_key_sql()
        ),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    sqlx::query("ANALYZE").execute(db.pool()).await.unwrap();
}

/// The twelve-digit agent number of recording `id` (id mod 1,000), zero-padded, in SQL.
fn agent_suffix_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "printf('%012d', id % 1000)",
        Backend::Postgres => "lpad((id % 1000)::text, 12, '0')",
    }
}
