//! Webhook ingest throughput: Event Grid deliveries of RecordingFileStatusUpdated events into
//! a SQLite queue with `synchronous = FULL` (deliveries that queue behind a commit in flight
//! share the next fsync'd transaction).
//!
//! `cargo bench --bench ingest [-- DELIVERIES BATCH CONCURRENCY] [--rate PER_SECOND]`
//! (defaults 400 50 8). Without `--rate` every connection sends its next delivery as soon as
//! the last is answered (throughput); with it deliveries are due at that fixed rate and each
//! latency counts from when its delivery was due, so a server that falls behind shows it.
//! The database lives under `$TMPDIR`.

#[path = "support/ingest_app.rs"]
mod ingest_app;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn event(n: usize) -> Value {
    json!({
        "id": format!("bench-{n}"),
        "topic": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Communication/CommunicationServices/bench",
        "subject": format!("/recording/call/call-{n}/serverCallId/srv-{n}"),
        "eventType": "Microsoft.Communication.RecordingFileStatusUpdated",
        "eventTime": "2026-11-27T10:00:00Z",
        "dataVersion": "1.0",
        "metadataVersion": "1",
        "data": {
            "recordingStorageInfo": {"recordingChunks": [{
                "documentId": format!("0-eus-d1-{n:032x}"),
                "index": 0,
                "endReason": "SessionEnded",
                "contentLocation": format!("https://us-storage.asm.skype.com/v1/objects/0-eus-d1-{n:032x}/content/audio"),
                "metadataLocation": format!("https://us-storage.asm.skype.com/v1/objects/0-eus-d1-{n:032x}/content/acsmetadata"),
                "deleteLocation": format!("https://us-storage.asm.skype.com/v1/objects/0-eus-d1-{n:032x}/content/deletedata")
            }]},
            "recordingStartTime": "2026-11-27T09:50:00Z",
            "recordingDurationMs": 600000,
            "sessionEndReason": "CallEnded",
            "recordingContentType": "Audio",
            "recordingChannelType": "Mixed",
            "recordingFormatType": "Wav"
        }
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let mut args: Vec<usize> = Vec::new();
    let mut rate: Option<f64> = None;
    let mut given = std::env::args().skip(1);
    while let Some(arg) = given.next() {
        if arg == "--rate" {
            rate = given.next().and_then(|r| r.parse().ok());
        } else if let Ok(n) = arg.parse() {
            args.push(n);
        }
    }
    let deliveries = args.first().copied().unwrap_or(400);
    let batch = args.get(1).copied().unwrap_or(50);
    let concurrency = args.get(2).copied().unwrap_or(8);

    let dir = tempfile::tempdir().unwrap();
    let running = ingest_app::start(&dir).await;
    let url = Arc::new(format!("{}/api/events?code=bench", running.base_url()));
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..deliveries)
            .map(|d| {
                serde_json::to_vec(&(0..batch).map(|i| event(d * batch + i)).collect::<Vec<_>>())
                    .unwrap()
            })
            .collect(),
    );
    let client = reqwest::Client::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    // When delivery `n` is due: at once (closed loop) or at `n / rate` seconds (open loop).
    let due = move |n: usize| match rate {
        Some(rate) => started + Duration::from_secs_f64(n as f64 / rate),
        None => Instant::now(),
    };
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, url, bodies, next) =
            (client.clone(), url.clone(), bodies.clone(), next.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(body) = bodies.get(n) else {
                    return latencies;
                };
                let sent = due(n);
                tokio::time::sleep_until(sent.into()).await;
                let response = client
                    .post(url.as_str())
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                latencies.push(sent.elapsed());
            }
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let jobs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs")
        .fetch_one(running.state.db.pool())
        .await
        .unwrap();
    assert_eq!(
        jobs as usize,
        deliveries * batch,
        "every event became a job"
    );
    let stats = running.state.intake.group_commit_stats();
    let commits = stats.as_ref().map_or(0, |s| s.commits());
    let offered = rate.map_or("as fast as answered".to_owned(), |r| {
        format!("offered {r:.0}/s")
    });
    println!(
        "ingest: {deliveries} deliveries x {batch} events, {concurrency} concurrent, {offered}: {:.0} events/s, {:.0} deliveries/s, latency p50 {:.1} ms, p99 {:.1} ms, {commits} commits ({:.1} deliveries per commit)",
        (deliveries * batch) as f64 / elapsed.as_secs_f64(),
        deliveries as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        deliveries as f64 / commits.max(1) as f64,
    );
    running.stop().await;
}
