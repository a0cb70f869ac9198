//! The queue at scale, on SQLite and PostgreSQL:
//!
//! - `drain BACKEND [BACKLOG…]` (default 1000 100000): a backlog of 64 KiB chunks, one per
//!   recording (each completes its recording, so each also writes a manifest), seeded in
//!   one transaction, drained by one worker (`worker.concurrency = 8`) from the built-in
//!   emulator into a local archive with fsync. Prints chunks/s per backlog and the ratio of
//!   the largest backlog's rate to the smallest's, each rate the median of
//!   `CALLVAULT_BENCH_ROUNDS` (default 3) drains.
//! - `claim BACKEND [ARCHIVED PENDING]` (default 1000000 100000): the median and p99 of one
//!   claim on a database holding that history and backlog, with 8 jobs in flight.
//! - `fsync BACKEND [BACKLOG]`: drains a backlog once, for `strace -c` to count fsyncs.
//!
//! BACKEND is `sqlite` or `postgres` (`CALLVAULT_TEST_POSTGRES`, default
//! postgres://postgres@127.0.0.1:5432). Databases and archives are made under
//! `CALLVAULT_BENCH_DIR` (default the system temp folder) and removed afterwards.
//! `benches/queue_scale.sh` runs every figure and states its target. `RUST_LOG` turns on
//! callvault's logs (e.g. `RUST_LOG=callvault=info`).

use std::net::TcpListener;
use std::time::{Duration, Instant};

#[path = "support/store.rs"]
mod store;

use callvault::app::{self, Role};
use callvault::config::Settings;
use callvault::queue::{Backend, Db, jobs, now_millis};
use callvault_emulator::{DocumentSpec, Emulator, EmulatorConfig, MediaSpec, generated_metadata};
use store::Store;

const CHUNK_BYTES: u64 = 64 * 1024;
const CONCURRENCY: usize = 8;

#[tokio::main]
async fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let numbers: Vec<i64> = args.iter().skip(2).filter_map(|a| a.parse().ok()).collect();
    let backend = match args.get(1).map(String::as_str) {
        Some("postgres") => Backend::Postgres,
        Some("sqlite") | None => Backend::Sqlite,
        Some(other) => panic!("unknown backend `{other}`: sqlite or postgres"),
    };
    match args.first().map(String::as_str) {
        Some("drain") | None => {
            let backlogs = if numbers.is_empty() {
                vec![1_000, 100_000]
            } else {
                numbers
            };
            drain_figure(backend, &backlogs).await;
        }
        Some("claim") => {
            let archived = numbers.first().copied().unwrap_or(1_000_000);
            let pending = numbers.get(1).copied().unwrap_or(100_000);
            claim_figure(backend, archived, pending).await;
        }
        Some("fsync") => {
            let backlog = numbers.first().copied().unwrap_or(1_000);
            let rate = drain(backend, backlog).await;
            println!("drained {backlog} chunks at {rate:.0} chunks/s");
        }
        Some(other) => panic!("unknown figure `{other}`: drain, claim or fsync"),
    }
}

fn name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    }
}

/// Drains each backlog `CALLVAULT_BENCH_ROUNDS` times (default 3), the rounds interleaved so
/// that a change in the machine's load shows in every backlog alike; each rate is a median.
async fn drain_figure(backend: Backend, backlogs: &[i64]) {
    let rounds: usize = std::env::var("CALLVAULT_BENCH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3)
        .max(1);
    let mut runs = vec![Vec::new(); backlogs.len()];
    for round in 1..=rounds {
        for (&backlog, runs) in backlogs.iter().zip(&mut runs) {
            let rate = drain(backend, backlog).await;
            println!(
                "  drain {} backlog {backlog}, round {round}: {rate:.0} chunks/s",
                name(backend)
            );
            runs.push(rate);
        }
    }
    let rates: Vec<f64> = runs
        .into_iter()
        .map(|mut runs| {
            runs.sort_by(f64::total_cmp);
            runs[runs.len() / 2]
        })
        .collect();
    let (first, last) = (rates[0], rates[rates.len() - 1]);
    let (small, large) = (backlogs[0], backlogs[backlogs.len() - 1]);
    let ratio = last / first;
    let target = match backend {
        Backend::Sqlite => {
            format!("target ≥ 1000 chunks/s at {large} and ≥ 0.8 × the rate at {small}")
        }
        Backend::Postgres => format!("target ≥ 1000 chunks/s at {large}"),
    };
    let met = last >= 1000.0 && (backend == Backend::Postgres || ratio >= 0.8);
    println!(
        "backlog drain, {}, median of {rounds}: {last:.0} chunks/s at {large} ({:.2} × 1000 chunks/s), {first:.0} at {small}, ratio {ratio:.2}; {target}: {}",
        name(backend),
        last / 1000.0,
        if met { "met" } else { "MISSED" }
    );
}

async fn claim_figure(backend: Backend, archived: i64, pending: i64) {
    let store = Store::new(backend).await;
    let db = Db::connect(&store.url, 4).await.unwrap();
    db.migrate().await.unwrap();
    let seeding = Instant::now();
    // History as ten-chunk recordings, the backlog as one-chunk ones.
    seed(
        &db,
        archived / 10,
        10,
        "archived",
        "https://unused.invalid/",
    )
    .await;
    seed(&db, pending, 1, "pending", "https://unused.invalid/").await;
    let seeded = seeding.elapsed();

    let mut in_flight = std::collections::VecDeque::new();
    let mut times = Vec::new();
    for n in 0..2_000 {
        let now = now_millis();
        let lease = format!("bench/{n}");
        let started = Instant::now();
        let job = jobs::claim(&db, &lease, now + 600_000, now)
            .await
            .unwrap()
            .expect("the backlog outlasts the measurement");
        times.push(started.elapsed());
        in_flight.push_back((job, lease));
        // Steady state: as many jobs in flight as worker slots.
        if in_flight.len() > CONCURRENCY {
            let (job, lease) = in_flight.pop_front().unwrap();
            finish_archived(&db, &job, &lease).await;
        }
    }
    times.sort();
    let median = times[times.len() / 2];
    let p99 = times[times.len() * 99 / 100];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "claim, {}, {archived} archived + {pending} pending (seeded in {:.1} s): median {:.3} ms ({:.2} × 1 ms), p99 {:.3} ms; target median < 1 ms: {}",
        name(backend),
        seeded.as_secs_f64(),
        ms(median),
        ms(median),
        ms(p99),
        if median < Duration::from_millis(1) {
            "met"
        } else {
            "MISSED"
        }
    );
    db.close().await;
    store.remove().await;
}

async fn finish_archived(db: &Db, job: &jobs::Job, lease: &str) {
    let chunk = jobs::ArchivedChunk {
        media_key: "k".into(),
        media_bytes: 1,
        media_sha256: "0".repeat(64),
        metadata_key: "m".into(),
        metadata_bytes: 1,
        metadata_sha256: "0".repeat(64),
        participants: "[]".into(),
        timing: Default::default(),
    };
    let done = jobs::finish(db, job, lease, &jobs::Finish::Archived(chunk), now_millis())
        .await
        .unwrap();
    assert!(done, "the lease is still ours");
}

/// Seeds a backlog, drains it with one worker and answers chunks/s.
async fn drain(backend: Backend, backlog: i64) -> f64 {
    let store = Store::new(backend).await;
    let emulator = Emulator::start(
        TcpListener::bind("127.0.0.1:0").unwrap(),
        EmulatorConfig::default(),
    )
    .await
    .unwrap();
    let created_at = chrono::Utc::now();
    for n in 1..=backlog {
        let document_id = document_id(n);
        let call_id = format!("call-{n}");
        emulator.add_document(DocumentSpec {
            metadata: Some(generated_metadata(&document_id, &call_id, 0, created_at)),
            document_id,
            media: MediaSpec::Synthetic {
                len: CHUNK_BYTES,
                seed: n as u64,
            },
            call_id,
            chunk_index: 0,
            created_at,
        });
    }
    {
        let db = Db::connect(&store.url, 2).await.unwrap();
        db.migrate().await.unwrap();
        seed(&db, backlog, 1, "pending", emulator.endpoint().as_str()).await;
        db.close().await;
    }

    let archive = store.dir.path().join("archive");
    let settings = Settings::defaults_with(&[
        ("server.bind", "127.0.0.1:0".into()),
        ("database.url", store.url.clone()),
        ("acs.connection_string", emulator.connection_string()),
        ("acs.allow_http", "true".into()),
        ("ingest.secret", "bench".into()),
        ("storage.path", archive.display().to_string()),
        ("worker.concurrency", CONCURRENCY.to_string()),
        ("log.level", "error".into()),
    ])
    .unwrap();
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let running = app::start(
        settings,
        Role::Worker,
        Some(TcpListener::bind("127.0.0.1:0").unwrap()),
    )
    .await
    .unwrap();
    let db = running.state.db.clone();
    loop {
        let open: Option<i64> =
            sqlx::query_scalar("SELECT id FROM jobs WHERE state IN ('pending', 'running') LIMIT 1")
                .fetch_optional(db.pool())
                .await
                .unwrap();
        if open.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    let cpu_after = cpu_seconds();
    let (user, system) = (cpu_after.0 - cpu_before.0, cpu_after.1 - cpu_before.1);
    let archived: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE state = 'archived'")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(archived, backlog, "every chunk archived, none failed");
    running.stop().await;
    emulator.stop().await;
    let per_chunk = |seconds: f64| seconds * 1000.0 / backlog as f64;
    println!(
        "    ({backlog} chunks in {:.2} s; process CPU per chunk, emulator included: {:.2} ms user, {:.2} ms system)",
        elapsed.as_secs_f64(),
        per_chunk(user),
        per_chunk(system)
    );
    store.remove().await;
    backlog as f64 / elapsed.as_secs_f64()
}

fn document_id(n: i64) -> String {
    format!("0-eus-d1-{n:032x}")
}

/// `count` recordings of `chunks` chunks each, all in `state`, in one transaction. The
/// document ids match [`document_id`], and the URLs point at `endpoint`.
async fn seed(db: &Db, count: i64, chunks: i64, state: &str, endpoint: &str) {
    let first: i64 = sqlx::query_scalar::<_, i64>("SELECT COALESCE(MAX(id), 0) FROM recordings")
        .fetch_one(db.pool())
        .await
        .unwrap();
    let deadline = now_millis() + 24 * 3_600_000;
    let mut tx = db.begin_write().await.unwrap();
    let numbers = |count: i64| {
        format!("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count})")
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "{} INSERT INTO recordings (call_id, recording_key, identity, media_extension, deadline_at, created_at, updated_at)
         SELECT 'call-' || (i + {first}), 'rec', 'id:rec', 'wav', {deadline} + i + {first}, 0, 0 FROM n",
        numbers(count)
    )))
    .execute(&mut *tx)
    .await
    .unwrap();
    // The id as 32 hex digits, as `document_id` writes it: both backends can pad text.
    let hex = match db.backend() {
        Backend::Sqlite => "printf('%032x', r.id)",
        Backend::Postgres => "lpad(to_hex(r.id), 32, '0')",
    };
    let archived = if state == "archived" { "0" } else { "NULL" };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "{} INSERT INTO jobs (recording_id, chunk_index, document_id, end_reason, content_url, metadata_url, state,
                           next_attempt_at, deadline_at, created_at, updated_at, archived_at)
         SELECT r.id, n.i - 1, '0-eus-d1-' || {hex} || CASE WHEN n.i > 1 THEN '-' || n.i ELSE '' END,
                CASE WHEN n.i = {chunks} THEN 'SessionEnded' ELSE 'ChunkMaximumSizeExceeded' END,
                '{endpoint}v1/objects/0-eus-d1-' || {hex} || '/content/video',
                '{endpoint}v1/objects/0-eus-d1-' || {hex} || '/content/acsmetadata',
                '{state}', 0, r.deadline_at, 0, 0, {archived}
         FROM recordings r, n WHERE r.id > {first} AND n.i <= {chunks}",
        numbers(chunks)
    )))
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    sqlx::query("ANALYZE").execute(db.pool()).await.unwrap();
}

/// This process's user and system CPU time, in seconds.
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command name.
    (ticks(11) / 100.0, ticks(12) / 100.0)
}
