//! Events throughput, on SQLite and PostgreSQL:
//!
//! - `outbox BACKEND [EVENTS]` (default 5000): that many outbox rows of one webhook sink
//!   (each its own recording), delivered by the dispatcher (`events.concurrency = 8`) to a
//!   local receiver that checks nothing and answers 204. Prints events/s, the median of
//!   `CALLVAULT_BENCH_ROUNDS` (default 3).
//! - `archive BACKEND [RECORDINGS]` (default 300): a backlog of one-chunk recordings of 1 MiB
//!   (`CALLVAULT_BENCH_CHUNK_KIB`)
//!   (each writes a manifest, so each writes an `archived` event when a sink is on) drained by
//!   one worker (`worker.concurrency = 8`) from the built-in emulator into a local archive,
//!   with no sink and with one webhook sink, rounds interleaved. Prints both medians in
//!   recordings/s and the drop.
//!
//! BACKEND is `sqlite` or `postgres` (`CALLVAULT_TEST_POSTGRES`). Everything is made under
//! `CALLVAULT_BENCH_DIR` (default the system temp folder) and removed afterwards.
//! `benches/events.sh` runs every figure.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[path = "support/store.rs"]
mod store;

use actix_web::{App, HttpResponse, HttpServer, web};
use callvault::app::{self, Role};
use callvault::config::Settings;
use callvault::queue::{Backend, Db, now_millis};
use callvault_emulator::{DocumentSpec, Emulator, EmulatorConfig, MediaSpec, generated_metadata};
use store::Store;

/// Chunk size of the archiving figure (`CALLVAULT_BENCH_CHUNK_KIB`, default 1024): ACS
/// chunks are megabytes; at 64 KiB a debug build's CPU per chunk, not the store, sets the pace.
fn chunk_bytes() -> u64 {
    std::env::var("CALLVAULT_BENCH_CHUNK_KIB")
        .ok()
        .and_then(|k| k.parse::<u64>().ok())
        .unwrap_or(1024)
        * 1024
}
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let backend = match args.get(1).map(String::as_str) {
        Some("postgres") => Backend::Postgres,
        Some("sqlite") | None => Backend::Sqlite,
        Some(other) => panic!("unknown backend `{other}`: sqlite or postgres"),
    };
    let count: Option<i64> = args.get(2).and_then(|a| a.parse().ok());
    let rounds: usize = std::env::var("CALLVAULT_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let name = match backend {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    };
    match args.first().map(String::as_str) {
        Some("outbox") | None => {
            let events = count.unwrap_or(5_000);
            let mut rates = Vec::new();
            for _ in 0..rounds {
                rates.push(outbox(backend, events).await);
            }
            println!(
                "outbox delivery, {name}, {events} events to one local webhook: {:.0} events/s (median of {rounds}: {})",
                median(&rates),
                list(&rates)
            );
        }
        Some("archive") => {
            let recordings = count.unwrap_or(300);
            let (mut off, mut on) = (Vec::new(), Vec::new());
            for _ in 0..rounds {
                off.push(archive(backend, recordings, false).await);
                on.push(archive(backend, recordings, true).await);
            }
            let (off_median, on_median) = (median(&off), median(&on));
            println!(
                "archiving, {name}, {recordings} one-chunk recordings of {} KiB: {off_median:.0} recordings/s without a sink ({}), {on_median:.0} with one webhook sink ({}): drop {:.1} % (target < 5 %)",
                chunk_bytes() / 1024,
                list(&off),
                list(&on),
                (1.0 - on_median / off_median) * 100.0
            );
        }
        Some(other) => panic!("unknown figure `{other}`: outbox or archive"),
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn list(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A receiver that answers 204 to every POST and counts them.
fn receiver() -> (String, Arc<AtomicU64>, actix_web::dev::ServerHandle) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let count = Arc::new(AtomicU64::new(0));
    let seen = web::Data::new(count.clone());
    let server = HttpServer::new(move || {
        App::new().app_data(seen.clone()).route(
            "/hook",
            web::post().to(
                |seen: web::Data<Arc<AtomicU64>>, _body: web::Bytes| async move {
                    seen.fetch_add(1, Ordering::Relaxed);
                    HttpResponse::NoContent().finish()
                },
            ),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    (url, count, handle)
}

fn sink_settings(url: &str) -> Vec<(&'static str, String)> {
    let sinks =
        serde_json::json!([{"name": "bench", "kind": "webhook", "url": url, "secret": SECRET}]);
    vec![
        ("events.sinks", sinks.to_string()),
        ("events.allow_http", "true".into()),
        ("events.allow_private_addresses", "true".into()),
        ("events.concurrency", "8".into()),
        ("events.poll_interval_ms", "50".into()),
    ]
}

async fn wait_until(db: &Db, sql: &'static str) {
    loop {
        let open: Option<i64> = sqlx::query_scalar(sql)
            .fetch_optional(db.pool())
            .await
            .unwrap();
        if open.is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Seeds `events` rows, delivers them all, answers events/s.
async fn outbox(backend: Backend, events: i64) -> f64 {
    let store = Store::new(backend).await;
    let (url, received, server) = receiver();
    {
        let db = Db::connect(&store.url, 2).await.unwrap();
        db.migrate().await.unwrap();
        let body =
            serde_json::json!({"specversion": "1.0", "type": "com.callvault.recording.archived",
            "source": "bench", "subject": "call/rec", "data": {"chunkCount": 1}})
            .to_string()
            .replace('\'', "");
        let now = now_millis();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {events})
             INSERT INTO event_outbox (event_id, sink, event_type, recording_id, body, state, attempts,
                 next_attempt_at, created_at, updated_at)
             SELECT 'bench-' || i, 'bench', 'archived', i, '{body}', 'pending', 0, {now}, {now}, {now} FROM n"
        )))
        .execute(db.pool())
        .await
        .unwrap();
        db.close().await;
    }
    let emulator = Emulator::start(
        TcpListener::bind("127.0.0.1:0").unwrap(),
        EmulatorConfig::default(),
    )
    .await
    .unwrap();
    let settings = settings(&store, &emulator, &sink_settings(&url));
    let started = Instant::now();
    let running = app::start(
        settings,
        Role::Worker,
        Some(TcpListener::bind("127.0.0.1:0").unwrap()),
    )
    .await
    .unwrap();
    let db = running.state.db.clone();
    wait_until(
        &db,
        "SELECT id FROM event_outbox WHERE state <> 'delivered' LIMIT 1",
    )
    .await;
    let elapsed = started.elapsed();
    assert!(received.load(Ordering::Relaxed) >= events as u64);
    running.stop().await;
    server.stop(false).await;
    emulator.stop().await;
    store.remove().await;
    println!("    ({events} events in {:.2} s)", elapsed.as_secs_f64());
    events as f64 / elapsed.as_secs_f64()
}

fn settings(store: &Store, emulator: &Emulator, extra: &[(&'static str, String)]) -> Settings {
    let archive = store.dir.path().join("archive");
    let mut overrides: Vec<(&str, String)> = vec![
        ("server.bind", "127.0.0.1:0".into()),
        ("database.url", store.url.clone()),
        ("acs.connection_string", emulator.connection_string()),
        ("acs.allow_http", "true".into()),
        ("ingest.secret", "bench".into()),
        ("storage.path", archive.display().to_string()),
        ("worker.concurrency", "8".into()),
        ("log.level", "error".into()),
    ];
    overrides.extend(extra.iter().cloned());
    Settings::defaults_with(&overrides).unwrap()
}

/// Drains `recordings` one-chunk recordings with or without a sink; answers recordings/s.
async fn archive(backend: Backend, recordings: i64, with_sink: bool) -> f64 {
    let store = Store::new(backend).await;
    let emulator = Emulator::start(
        TcpListener::bind("127.0.0.1:0").unwrap(),
        EmulatorConfig::default(),
    )
    .await
    .unwrap();
    let created_at = chrono::Utc::now();
    for n in 1..=recordings {
        let document_id = format!("0-eus-d1-{n:032x}");
        let call_id = format!("call-{n}");
        emulator.add_document(DocumentSpec {
            metadata: Some(generated_metadata(&document_id, &call_id, 0, created_at)),
            document_id,
            media: MediaSpec::Synthetic {
                len: chunk_bytes(),
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
        seed(&db, recordings, emulator.endpoint().as_str()).await;
        db.close().await;
    }
    let (url, received, server) = receiver();
    let extra = if with_sink {
        sink_settings(&url)
    } else {
        Vec::new()
    };
    let settings = settings(&store, &emulator, &extra);
    let started = Instant::now();
    let running = app::start(
        settings,
        Role::Worker,
        Some(TcpListener::bind("127.0.0.1:0").unwrap()),
    )
    .await
    .unwrap();
    let db = running.state.db.clone();
    wait_until(
        &db,
        "SELECT recording_id FROM recording_counts WHERE manifest_written_at IS NULL LIMIT 1",
    )
    .await;
    let elapsed = started.elapsed();
    if with_sink {
        // Not part of the figure: every manifest's event is delivered in the end.
        wait_until(
            &db,
            "SELECT id FROM event_outbox WHERE state <> 'delivered' LIMIT 1",
        )
        .await;
        assert_eq!(received.load(Ordering::Relaxed), recordings as u64);
    }
    running.stop().await;
    server.stop(false).await;
    emulator.stop().await;
    store.remove().await;
    println!(
        "    ({recordings} recordings {} in {:.2} s)",
        if with_sink {
            "with a sink"
        } else {
            "without a sink"
        },
        elapsed.as_secs_f64()
    );
    recordings as f64 / elapsed.as_secs_f64()
}

/// `count` pending one-chunk recordings, their URLs at `endpoint`, in one transaction.
async fn seed(db: &Db, count: i64, endpoint: &str) {
    let deadline = now_millis() + 24 * 3_600_000;
    let mut tx = db.begin_write().await.unwrap();
    let numbers = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count})"
    );
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "{numbers} INSERT INTO recordings (call_id, recording_key, identity, media_extension, deadline_at, created_at, updated_at)
         SELECT 'call-' || i, 'rec', 'id:rec', 'wav', {deadline} + i, 0, 0 FROM n"
    )))
    .execute(&mut *tx)
    .await
    .unwrap();
    let hex = match db.backend() {
        Backend::Sqlite => "printf('%032x', r.id)",
        Backend::Postgres => "lpad(to_hex(r.id), 32, '0')",
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO jobs (recording_id, chunk_index, document_id, end_reason, content_url, metadata_url, state,
                           next_attempt_at, deadline_at, created_at, updated_at)
         SELECT r.id, 0, '0-eus-d1-' || {hex}, 'SessionEnded',
                '{endpoint}v1/objects/0-eus-d1-' || {hex} || '/content/video',
                '{endpoint}v1/objects/0-eus-d1-' || {hex} || '/content/acsmetadata',
                'pending', 0, r.deadline_at, 0, 0
         FROM recordings r"
    )))
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
}
