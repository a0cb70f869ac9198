//! The worst deliveries a sender can make within `server.max_body_bytes` (4 MiB), and what
//! they cost everyone else: how long each takes to handle (median of N), and `/healthz`
//! latency (median, p99, on four connections spread over both HTTP workers) measured while
//! they are handled, against `/healthz` on the idle server in the same run.
//!
//! `cargo bench --bench hostile_delivery [-- N]` (default N = 10 deliveries per shape).
//!
//! Shapes: one event of ~4 MiB whose chunks all share index 0 (the case that used to be
//! quadratic); 5,000 small valid events (Event Grid's largest batch); 5,000 invalid ones
//! (all quarantined).

#[path = "support/ingest_app.rs"]
mod ingest_app;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const LIMIT: usize = 4 * 1024 * 1024;

fn chunk(n: usize, index: usize) -> Value {
    let doc = format!("0-eus-d12-{n:032x}");
    let base = format!("https://us-storage.asm.skype.com/v1/objects/{doc}");
    json!({
        "documentId": doc, "index": index, "endReason": "SessionEnded",
        "contentLocation": format!("{base}/content/audio"),
        "metadataLocation": format!("{base}/content/acsmetadata"),
        "deleteLocation": format!("{base}/content/deletedata"),
    })
}

fn event(id: &str, call: &str, chunks: Vec<Value>) -> Value {
    json!({
        "id": id,
        "subject": format!("/recording/call/{call}/serverCallId/srv"),
        "eventType": "Microsoft.Communication.RecordingFileStatusUpdated",
        "eventTime": "2026-11-27T10:00:00Z",
        "dataVersion": "1.0",
        "data": {
            "recordingStorageInfo": {"recordingChunks": chunks},
            "recordingStartTime": "2026-11-27T09:50:00Z",
            "recordingFormatType": "Wav"
        }
    })
}

/// One event, as many colliding chunks as fit under the body limit.
fn colliding(run: usize) -> Vec<u8> {
    let per_chunk = serde_json::to_vec(&chunk(0, 0)).unwrap().len() + 1;
    let chunks = (LIMIT - 1024) / per_chunk;
    let body = json!([event(
        &format!("colliding-{run}"),
        &format!("call-{run}"),
        (0..chunks).map(|n| chunk(n, 0)).collect()
    )]);
    serde_json::to_vec(&body).unwrap()
}

/// 5,000 events of one chunk each; `valid` false makes every subject unreadable.
fn many(run: usize, valid: bool) -> Vec<u8> {
    let events: Vec<Value> = (0..5_000)
        .map(|i| {
            let n = run * 5_000 + i;
            let mut e = event(
                &format!("many-{valid}-{n}"),
                &format!("c-{n}"),
                vec![chunk(n, 0)],
            );
            if !valid {
                e["subject"] = "/recording/call/c/unknownKey/x".into();
            }
            e
        })
        .collect();
    serde_json::to_vec(&events).unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Probing connections: actix hands connections to its two workers in turn, so some probes
/// share a worker with the delivery being handled.
const PROBES: usize = 4;

/// `/healthz` round trips on [`PROBES`] connections, until `stop` (or `count` per connection).
async fn probes(url: &str, stop: &Arc<AtomicBool>, count: usize) -> Vec<Duration> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..PROBES {
        tasks.spawn(probe(
            reqwest::Client::new(),
            url.to_owned(),
            stop.clone(),
            count,
        ));
    }
    let mut all = Vec::new();
    while let Some(latencies) = tasks.join_next().await {
        all.extend(latencies.unwrap());
    }
    all.sort();
    all
}

/// `/healthz` round trips, one after another, until `stop` (or `count` of them).
async fn probe(
    client: reqwest::Client,
    url: String,
    stop: Arc<AtomicBool>,
    count: usize,
) -> Vec<Duration> {
    let mut latencies = Vec::new();
    // Paced, so the probes sample latency without taking the CPU the server needs.
    let mut pace = tokio::time::interval(Duration::from_millis(2));
    while !stop.load(Ordering::Relaxed) && latencies.len() < count {
        pace.tick().await;
        let sent = Instant::now();
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
        latencies.push(sent.elapsed());
    }
    latencies
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let running = ingest_app::start(&dir).await;
    let events_url = format!("{}/api/events?code=bench", running.base_url());
    let health_url = format!("{}/healthz", running.base_url());
    let client = reqwest::Client::new();

    let idle = probes(&health_url, &Arc::new(AtomicBool::new(false)), 500).await;
    println!(
        "idle /healthz: median {:.2} ms, p99 {:.2} ms ({} requests)",
        ms(percentile(&idle, 0.5)),
        ms(percentile(&idle, 0.99)),
        idle.len()
    );

    type Shape = (&'static str, fn(usize) -> Vec<u8>, &'static str);
    let shapes: [Shape; 3] = [
        ("one event, chunks all at index 0", colliding, "quarantined"),
        ("5,000 valid events", |run| many(run, true), "accepted"),
        (
            "5,000 invalid events",
            |run| many(run, false),
            "quarantined",
        ),
    ];
    for (name, build, counted) in shapes {
        let bodies: Vec<Vec<u8>> = (0..runs).map(build).collect();
        let size = bodies[0].len();
        assert!(size <= LIMIT, "{name}: {size} bytes is over the limit");
        let stop = Arc::new(AtomicBool::new(false));
        let prober = {
            let (url, stop) = (health_url.clone(), stop.clone());
            tokio::spawn(async move { probes(&url, &stop, usize::MAX).await })
        };
        let mut handling = Vec::new();
        for body in bodies {
            let sent = Instant::now();
            let response = client
                .post(&events_url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let summary: Value = response.json().await.unwrap();
            handling.push(sent.elapsed());
            assert!(summary[counted].as_u64().unwrap() > 0, "{name}: {summary}");
        }
        stop.store(true, Ordering::Relaxed);
        let during = prober.await.unwrap();
        handling.sort();
        println!(
            "{name} ({:.2} MiB): handling median {:.1} ms, max {:.1} ms over {runs}; /healthz meanwhile median {:.2} ms, p99 {:.2} ms ({} requests)",
            size as f64 / (1024.0 * 1024.0),
            ms(percentile(&handling, 0.5)),
            ms(*handling.last().unwrap()),
            ms(percentile(&during, 0.5)),
            ms(percentile(&during, 0.99)),
            during.len()
        );
    }
    running.stop().await;
}
