//! `ingest.mode = "storage_queue"` against Azurite's queue service: events Event Grid wrote
//! into the queue (base64 and plain JSON) are archived and their messages deleted; a message
//! delivered too often or holding no events is quarantined and deleted; a message whose events
//! were already committed (callvault stopped between commit and delete) is a duplicate and
//! nothing is fetched twice; two replicas on one queue archive everything once.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use callvault::azure_queue::{QueueAuth, QueueClient};
use callvault::queue::JobState;
use callvault::secret::Secret;
use callvault_emulator::events::recording_file_status_updated;
use callvault_emulator::{Emulator, EmulatorConfig};
use serde_json::Value;

use crate::pipeline::{add_chunk, start_time};
use crate::support::{
    Suite, TestApp, TestDatabase, eventually, service, start_emulator, unique_name,
};

const WAIT: Duration = Duration::from_secs(30);

/// A new queue on Azurite; `None` when no Azurite queue service is configured.
pub(crate) async fn new_queue() -> Option<(String, QueueClient)> {
    let endpoint = service("CALLVAULT_TEST_AZURE_QUEUE_ENDPOINT", Suite::Azure)?;
    let url = format!("{endpoint}/{}", unique_name());
    let parsed = url::Url::parse(&url).unwrap();
    let auth = QueueAuth::new(&parsed, &Secret::default(), &Secret::default());
    let client = QueueClient::new(reqwest::Client::new(), parsed, auth);
    client.create().await.unwrap();
    Some((url, client))
}

fn queue_settings(url: &str, extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut settings = vec![
        ("ingest.mode", "storage_queue".to_owned()),
        ("ingest.queue.url", url.to_owned()),
        ("ingest.queue.visibility_timeout_secs", "10".to_owned()),
    ];
    settings.extend(extra.iter().map(|(key, value)| (*key, value.to_string())));
    settings
}

/// A one-chunk recording in the emulator and its event, in the Event Grid schema that Event
/// Grid writes into a queue (one event per message).
pub(crate) fn recording_event(emulator: &Emulator, call: &str) -> Value {
    let chunk = add_chunk(
        emulator,
        call,
        &format!("doc-{call}"),
        0,
        "SessionEnded",
        20_000,
    );
    recording_file_status_updated(
        &format!("evt-{call}"),
        &format!("/recording/call/{call}/recordingId/rec-{call}"),
        start_time(),
        &[chunk],
        "Mp4",
    )
}

async fn wait_until_empty(client: &QueueClient) {
    eventually("the queue is empty", WAIT, || async {
        // A receive with a short invisibility: what is still there comes back soon.
        let left = client.receive(32, 1).await.unwrap();
        left.is_empty().then_some(())
    })
    .await;
}

fn media_downloads(emulator: &Emulator, document: &str) -> usize {
    emulator
        .requests()
        .iter()
        .filter(|r| {
            r.method == "GET"
                && r.path.contains(&format!("/{document}/"))
                && !r.path.ends_with("acsmetadata")
        })
        .count()
}

async fn metric(app: &TestApp, line: &str) -> bool {
    let text = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.contains(line)
}

#[tokio::test]
async fn base64_and_plain_json_messages_are_archived_and_deleted() {
    let Some((url, client)) = new_queue().await else {
        return;
    };
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn(&emulator, &queue_settings(&url, &[])).await;
    let encoded = recording_event(&emulator, "q-base64");
    let plain = recording_event(&emulator, "q-plain");
    client
        .put(&STANDARD.encode(serde_json::to_vec(&encoded).unwrap()))
        .await
        .unwrap();
    client.put(&plain.to_string()).await.unwrap();

    for call in ["q-base64", "q-plain"] {
        app.wait_for_manifest(Path::new(&format!("{call}/rec-{call}")), WAIT)
            .await;
    }
    eventually("both messages deleted", WAIT, || async {
        metric(&app, "callvault_queue_messages_deleted_total 2")
            .await
            .then_some(())
    })
    .await;
    wait_until_empty(&client).await;
}

#[tokio::test]
async fn a_poison_message_and_one_without_events_are_quarantined_and_deleted() {
    let Some((url, client)) = new_queue().await else {
        return;
    };
    let emulator = start_emulator(EmulatorConfig::default()).await;
    // Delivered twice before callvault sees it: each receive counts.
    let event = recording_event(&emulator, "q-poison");
    client
        .put(&STANDARD.encode(event.to_string()))
        .await
        .unwrap();
    for _ in 0..2 {
        eventually("the message visible again", WAIT, || async {
            let got = client.receive(1, 1).await.unwrap();
            (!got.is_empty()).then_some(())
        })
        .await;
    }
    client.put("not an event at all").await.unwrap();
    let app = TestApp::spawn(
        &emulator,
        &queue_settings(&url, &[("ingest.queue.max_dequeue", "2")]),
    )
    .await;

    eventually("both quarantined", WAIT, || async {
        metric(&app, "callvault_queue_messages_quarantined_total 2")
            .await
            .then_some(())
    })
    .await;
    wait_until_empty(&client).await;
    assert!(
        app.jobs().await.is_empty(),
        "the poison message's event was not taken as work"
    );
    assert_eq!(media_downloads(&emulator, "doc-q-poison"), 0);
}

#[tokio::test]
async fn a_message_whose_events_were_committed_is_a_duplicate_and_nothing_is_fetched_twice() {
    let Some((url, client)) = new_queue().await else {
        return;
    };
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = TestApp::spawn(&emulator, &queue_settings(&url, &[])).await;
    // The events are committed (here through the webhook), and the message is still in the
    // queue, as when callvault stops between its commit and the delete.
    let event = recording_event(&emulator, "q-again");
    assert_eq!(
        app.post_events(&serde_json::json!([event])).await.status(),
        200
    );
    app.wait_for_jobs(1, JobState::Archived, WAIT).await;
    client
        .put(&STANDARD.encode(event.to_string()))
        .await
        .unwrap();

    eventually("the message deleted", WAIT, || async {
        metric(&app, "callvault_queue_messages_deleted_total 1")
            .await
            .then_some(())
    })
    .await;
    assert!(metric(&app, "callvault_events_duplicate_total 1").await);
    assert_eq!(app.jobs().await.len(), 1);
    assert_eq!(media_downloads(&emulator, "doc-q-again"), 1, "fetched once");
}

#[tokio::test]
async fn two_replicas_on_one_queue_archive_everything_once() {
    let Some((url, client)) = new_queue().await else {
        return;
    };
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let settings = queue_settings(&url, &[("ingest.queue.batch", "4")]);
    let first = TestApp::spawn_on(&emulator, TestDatabase::existing(&db.url), &settings).await;
    let second = TestApp::spawn_on(&emulator, TestDatabase::existing(&db.url), &settings).await;
    let calls: Vec<String> = (0..12).map(|i| format!("q-rep-{i}")).collect();
    for call in &calls {
        let event = recording_event(&emulator, call);
        client
            .put(&STANDARD.encode(event.to_string()))
            .await
            .unwrap();
    }
    first
        .wait_for_jobs(calls.len(), JobState::Archived, WAIT)
        .await;
    wait_until_empty(&client).await;
    for call in &calls {
        assert_eq!(
            media_downloads(&emulator, &format!("doc-{call}")),
            1,
            "{call} fetched once"
        );
    }
    drop(second);
}
