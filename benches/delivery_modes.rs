//! Events/s into the queue through each delivery mode, against the webhook in the same run:
//! `webhook` (single-event deliveries over 8 connections, Event Grid's default), `eventgrid_pull`
//! (the emulator's namespace topic holding every event before callvault starts) and
//! `storage_queue` (Azurite's queue holding one message per event before callvault starts, when
//! `CALLVAULT_TEST_AZURE_QUEUE_ENDPOINT` names one). Each round times from the start until
//! every event is committed; rounds are interleaved and the median is printed.
//!
//! `cargo bench --bench delivery_modes [-- EVENTS ROUNDS]` (defaults 2000 3). Role ingest on a
//! SQLite queue with `synchronous = FULL` under `$TMPDIR`.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use callvault::app::{self, Role, RunningApp};
use callvault::azure_queue::{QueueAuth, QueueClient};
use callvault::config::Settings;
use callvault::metrics::Metrics;
use callvault::secret::Secret;
use callvault_emulator::{Emulator, EmulatorConfig, NamespaceOptions, to_cloud_event};
use serde_json::{Value, json};

fn event(round: usize, n: usize) -> Value {
    let id = format!("{round:04}{n:028x}");
    let location = |part: &str| {
        format!("https://us-storage.asm.skype.com/v1/objects/0-eus-d1-{id}/content/{part}")
    };
    json!({
        "id": format!("bench-{round}-{n}"),
        "topic": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Communication/CommunicationServices/bench",
        "subject": format!("/recording/call/call-{round}-{n}/serverCallId/srv-{n}"),
        "eventType": "Microsoft.Communication.RecordingFileStatusUpdated",
        "eventTime": "2026-11-27T10:00:00Z",
        "dataVersion": "1.0",
        "data": {
            "recordingStorageInfo": {"recordingChunks": [{
                "documentId": format!("0-eus-d1-{id}"),
                "index": 0,
                "endReason": "SessionEnded",
                "contentLocation": location("audio"),
                "metadataLocation": location("acsmetadata"),
                "deleteLocation": location("deletedata")
            }]},
            "recordingStartTime": chrono::Utc::now().to_rfc3339(),
            "recordingDurationMs": 600000,
            "recordingContentType": "Audio",
            "recordingChannelType": "Mixed",
            "recordingFormatType": "Wav"
        }
    })
}

async fn start(dir: &tempfile::TempDir, extra: &[(&str, String)]) -> RunningApp {
    let mut overrides = vec![
        (
            "database.url",
            format!("sqlite://{}/bench.db", dir.path().display()),
        ),
        (
            "acs.connection_string",
            "endpoint=https://bench.communication.azure.com/;accesskey=aGVsbG8=".into(),
        ),
        ("acs.allow_http", "true".into()),
        ("ingest.secret", "bench".into()),
        (
            "storage.path",
            dir.path().join("archive").display().to_string(),
        ),
        ("log.level", "error".into()),
    ];
    overrides.extend(extra.iter().cloned());
    let settings = Settings::defaults_with(&overrides).unwrap();
    app::start(
        settings,
        Role::Ingest,
        Some(TcpListener::bind("127.0.0.1:0").unwrap()),
    )
    .await
    .unwrap()
}

/// Waits until `app` accepted `count` events.
async fn accepted(app: &RunningApp, count: u64) {
    while Metrics::get(&app.state.metrics.events_accepted) < count {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn webhook(round: usize, events: usize) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let app = start(&dir, &[]).await;
    let url = format!("{}/api/events?code=bench", app.base_url());
    let client = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let began = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (client, url, next) = (client.clone(), url.clone(), next.clone());
        senders.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= events {
                    return;
                }
                let body = json!([event(round, n)]);
                let answer = client.post(&url).json(&body).send().await.unwrap();
                assert!(answer.status().is_success(), "{}", answer.status());
            }
        });
    }
    senders.join_all().await;
    accepted(&app, events as u64).await;
    let took = began.elapsed();
    app.stop().await;
    took
}

async fn pull(round: usize, events: usize, emulator: &Emulator) -> Duration {
    let topic = format!("bench{round}");
    emulator.namespace_subscription(&topic, "callvault", NamespaceOptions::default());
    let published: Vec<Value> = (0..events)
        .map(|n| to_cloud_event(&event(round, n)))
        .collect();
    assert!(emulator.publish_to_namespace(&topic, published));
    let dir = tempfile::tempdir().unwrap();
    let began = Instant::now();
    let app = start(
        &dir,
        &[
            ("ingest.mode", "eventgrid_pull".into()),
            ("ingest.pull.endpoint", emulator.endpoint().to_string()),
            ("ingest.pull.topic", topic.clone()),
            ("ingest.pull.subscription", "callvault".into()),
            ("ingest.pull.access_key", emulator.namespace_key()),
            ("ingest.pull.max_events", "100".into()),
        ],
    )
    .await;
    accepted(&app, events as u64).await;
    let took = began.elapsed();
    app.stop().await;
    took
}

async fn storage_queue(round: usize, events: usize, endpoint: &str) -> Duration {
    let url = format!("{endpoint}/bench{}", uuid::Uuid::new_v4().simple());
    let parsed = url::Url::parse(&url).unwrap();
    let auth = QueueAuth::new(&parsed, &Secret::default(), &Secret::default());
    let queue = QueueClient::new(reqwest::Client::new(), parsed, auth);
    queue.create().await.unwrap();
    for n in 0..events {
        let body = STANDARD.encode(event(round, n).to_string());
        queue.put(&body).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let began = Instant::now();
    let app = start(
        &dir,
        &[
            ("ingest.mode", "storage_queue".into()),
            ("ingest.queue.url", url),
        ],
    )
    .await;
    accepted(&app, events as u64).await;
    let took = began.elapsed();
    app.stop().await;
    took
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|arg| arg.parse().ok())
        .collect();
    let events = args.first().copied().unwrap_or(2000);
    let rounds = args.get(1).copied().unwrap_or(3).max(1);
    let queue = std::env::var("CALLVAULT_TEST_AZURE_QUEUE_ENDPOINT").ok();
    let emulator = Emulator::start(
        TcpListener::bind("127.0.0.1:0").unwrap(),
        EmulatorConfig::default(),
    )
    .await
    .unwrap();
    let (mut hooks, mut pulls, mut queues) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        hooks.push(webhook(round * 3, events).await);
        pulls.push(pull(round * 3 + 1, events, &emulator).await);
        if let Some(endpoint) = &queue {
            queues.push(storage_queue(round * 3 + 2, events, endpoint).await);
        }
    }
    let rate = |took: Duration| events as f64 / took.as_secs_f64();
    let hook = rate(median(hooks));
    println!("{events} events, median of {rounds} interleaved rounds, SQLite synchronous = FULL");
    println!("webhook (8 connections, 1 event each): {hook:.0} events/s");
    let pulled = rate(median(pulls));
    println!(
        "eventgrid_pull (emulator):             {pulled:.0} events/s ({:.2}x webhook)",
        pulled / hook
    );
    match queue {
        Some(_) => {
            let queued = rate(median(queues));
            println!(
                "storage_queue (Azurite):               {queued:.0} events/s ({:.2}x webhook)",
                queued / hook
            );
        }
        None => println!(
            "storage_queue: skipped (set CALLVAULT_TEST_AZURE_QUEUE_ENDPOINT to an Azurite queue service)"
        ),
    }
    emulator.stop().await;
}
