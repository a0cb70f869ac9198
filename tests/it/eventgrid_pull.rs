//! `ingest.mode = "eventgrid_pull"` against the emulator's Event Grid namespace topic: events
//! received are archived and acknowledged after their commit, an invalid one is rejected to
//! the dead letter, failed acknowledgements are retried or redelivered without a second
//! transfer, and locks are renewed while a slow intake runs.

use std::path::Path;
use std::time::Duration;

use callvault::queue::JobState;
use callvault_emulator::events::{recording_file_status_updated, to_cloud_event};
use callvault_emulator::{Emulator, EmulatorConfig, NamespaceOptions, SubscriptionCounts};
use serde_json::{Value, json};
use sqlx::Connection;

use crate::pipeline::{add_chunk, start_time};
use crate::support::{TestApp, eventually, start_emulator};

const TOPIC: &str = "recordings";
const SUBSCRIPTION: &str = "callvault";
const WAIT: Duration = Duration::from_secs(30);

async fn pulling_app(
    emulator: &Emulator,
    options: NamespaceOptions,
    extra: &[(&str, String)],
) -> TestApp {
    emulator.namespace_subscription(TOPIC, SUBSCRIPTION, options);
    let mut settings = vec![
        ("ingest.mode", "eventgrid_pull".to_owned()),
        ("ingest.pull.endpoint", emulator.endpoint().to_string()),
        ("ingest.pull.topic", TOPIC.to_owned()),
        ("ingest.pull.subscription", SUBSCRIPTION.to_owned()),
        ("ingest.pull.access_key", emulator.namespace_key()),
        ("ingest.pull.max_wait_secs", "10".to_owned()),
    ];
    settings.extend(extra.iter().cloned());
    TestApp::spawn(emulator, &settings).await
}

/// A one-chunk recording in the emulator, announced as a CloudEvent.
fn recording_event(emulator: &Emulator, call: &str) -> Value {
    let chunk = add_chunk(
        emulator,
        call,
        &format!("doc-{call}"),
        0,
        "SessionEnded",
        30_000,
    );
    to_cloud_event(&recording_file_status_updated(
        &format!("evt-{call}"),
        &format!("/recording/call/{call}/recordingId/rec-{call}"),
        start_time(),
        &[chunk],
        "Mp4",
    ))
}

async fn settled(
    emulator: &Emulator,
    what: &str,
    done: impl Fn(&SubscriptionCounts) -> bool,
) -> SubscriptionCounts {
    eventually(what, WAIT, || async {
        let counts = emulator.namespace_counts(TOPIC, SUBSCRIPTION);
        done(&counts).then_some(counts)
    })
    .await
}

/// Media downloads of `document`: a second transfer would show as a second GET.
fn media_downloads(emulator: &Emulator, document: &str) -> usize {
    emulator
        .requests()
        .iter()
        .filter(|request| {
            request.method == "GET"
                && request.path.contains(document)
                && !request.path.ends_with("acsmetadata")
        })
        .count()
}

#[tokio::test]
async fn events_received_from_a_namespace_are_archived_and_acknowledged() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = pulling_app(&emulator, NamespaceOptions::default(), &[]).await;
    let events = vec![
        recording_event(&emulator, "pull-a"),
        recording_event(&emulator, "pull-b"),
    ];
    assert!(emulator.publish_to_namespace(TOPIC, events));

    for call in ["pull-a", "pull-b"] {
        app.wait_for_manifest(Path::new(&format!("{call}/rec-{call}")), WAIT)
            .await;
    }
    let counts = settled(&emulator, "both events acknowledged", |c| {
        c.outstanding == 0
    })
    .await;
    assert_eq!(counts.acknowledged, 2, "{counts:?}");
    assert_eq!(counts.rejected + counts.released, 0, "{counts:?}");
    assert!(
        emulator
            .namespace_dead_letters(TOPIC, SUBSCRIPTION)
            .is_empty()
    );

    // The webhook still takes deliveries with its secret; the mode adds a way in.
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("callvault_pull_acknowledged_total 2"),
        "{text}"
    );
}

#[tokio::test]
async fn an_event_that_can_never_be_accepted_is_quarantined_and_rejected_to_the_dead_letter() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = pulling_app(&emulator, NamespaceOptions::default(), &[]).await;
    let broken = json!({
        "specversion": "1.0", "id": "evt-broken", "source": "/acs",
        "type": "Microsoft.Communication.RecordingFileStatusUpdated",
        "subject": "/recording/call/c/serverCallId/s", "time": "2026-12-03T10:00:00Z",
        "data": {"recordingStorageInfo": "not an object"}
    });
    assert!(emulator.publish_to_namespace(TOPIC, vec![broken]));

    let counts = settled(&emulator, "the event rejected", |c| c.outstanding == 0).await;
    assert_eq!(counts.rejected, 1, "{counts:?}");
    let dead = emulator.namespace_dead_letters(TOPIC, SUBSCRIPTION);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, "Rejected");
    assert_eq!(dead[0].event["id"], "evt-broken");
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("callvault_events_quarantined_total 1"),
        "quarantined here too: {text}"
    );
    assert!(text.contains("callvault_pull_rejected_total 1"), "{text}");
}

#[tokio::test]
async fn a_failed_acknowledgement_is_tried_again() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let app = pulling_app(&emulator, NamespaceOptions::default(), &[]).await;
    emulator.fail_namespace_acknowledgements(TOPIC, SUBSCRIPTION, 1);
    assert!(emulator.publish_to_namespace(TOPIC, vec![recording_event(&emulator, "pull-retry")]));

    let counts = settled(&emulator, "the event acknowledged", |c| c.outstanding == 0).await;
    assert_eq!(counts.failed_tokens, 1, "{counts:?}");
    assert_eq!(counts.acknowledged, 1);
    assert_eq!(
        counts.received, 1,
        "acknowledged on the second try, not redelivered"
    );
    app.wait_for_jobs(1, JobState::Archived, WAIT).await;
}

#[tokio::test]
async fn an_event_never_acknowledged_comes_again_after_its_lock_lapses_and_is_archived_once() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let options = NamespaceOptions {
        lock_duration: Duration::from_secs(2),
        ..NamespaceOptions::default()
    };
    let app = pulling_app(
        &emulator,
        options,
        &[("ingest.pull.renew_lock_secs", "1".into())],
    )
    .await;
    // Both tries of the acknowledgement fail: to the namespace, as if callvault had died
    // after its commit.
    emulator.fail_namespace_acknowledgements(TOPIC, SUBSCRIPTION, 2);
    assert!(emulator.publish_to_namespace(TOPIC, vec![recording_event(&emulator, "pull-again")]));

    let counts = settled(&emulator, "the redelivery acknowledged", |c| {
        c.outstanding == 0
    })
    .await;
    assert_eq!(
        counts.received, 2,
        "delivered again once its lock lapsed: {counts:?}"
    );
    assert_eq!(counts.acknowledged, 1);
    app.wait_for_manifest(Path::new("pull-again/rec-pull-again"), WAIT)
        .await;
    let jobs = app.wait_for_jobs(1, JobState::Archived, WAIT).await;
    assert_eq!(jobs.len(), 1, "the redelivery is a duplicate");
    assert_eq!(
        media_downloads(&emulator, "doc-pull-again"),
        1,
        "fetched once"
    );
}

#[tokio::test]
async fn locks_are_renewed_while_a_slow_intake_runs() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let options = NamespaceOptions {
        lock_duration: Duration::from_secs(2),
        ..NamespaceOptions::default()
    };
    let app = pulling_app(
        &emulator,
        options,
        &[("ingest.pull.renew_lock_secs", "1".into())],
    )
    .await;
    // Another process holds SQLite's write lock for longer than two lock durations.
    let mut blocker = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut blocker)
        .await
        .unwrap();
    assert!(emulator.publish_to_namespace(TOPIC, vec![recording_event(&emulator, "pull-slow")]));
    settled(&emulator, "the event received", |c| c.received == 1).await;
    // The slowness under test: the intake waits on the database this long.
    tokio::time::sleep(Duration::from_secs(5)).await;
    sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();

    let counts = settled(&emulator, "the event acknowledged", |c| c.outstanding == 0).await;
    assert!(counts.renewed >= 2, "renewed while waiting: {counts:?}");
    assert_eq!(counts.received, 1, "its lock never lapsed: {counts:?}");
    assert_eq!(counts.failed_tokens, 0, "{counts:?}");
    app.wait_for_jobs(1, JobState::Archived, WAIT).await;
}
