//! Event Grid delivery: handshakes, headers, batches, retries, dead letters, duplicates.

use serde_json::Value;

use super::subscriber::{Subscriber, Validation};
use super::*;
use crate::{ChunkEvent, DeliveryOptions, Schema, recording_file_status_updated};

fn events(emulator: &Emulator, count: u32) -> Vec<Value> {
    (0..count)
        .map(|index| {
            let document_id = format!("doc-{index}");
            let urls = emulator.add_document(spec(&document_id, synthetic(10)));
            recording_file_status_updated(
                &format!("event-{index}"),
                "/recording/call/call-1/serverCallId/server-1",
                chrono::Utc::now(),
                &[ChunkEvent {
                    document_id,
                    index,
                    end_reason: "SessionEnded".into(),
                    urls: Some(urls),
                }],
                "Mp4",
            )
        })
        .collect()
}

#[tokio::test]
async fn the_handshake_comes_first_then_one_post_per_event() {
    let emulator = start().await;
    let subscriber = Subscriber::start(Validation::Echo, &[], None).await;
    let events = events(&emulator, 2);
    let report = emulator
        .deliver(&subscriber.url, events.clone(), DeliveryOptions::default())
        .await;
    assert!(report.validated);
    assert_eq!(report.attempts, vec![(0, 200), (1, 200)]);
    assert_eq!((report.delivered, report.failed), (2, 0));

    let received = subscriber.received();
    assert_eq!(received.len(), 3);
    let handshake = &received[0];
    assert_eq!(
        handshake.header("aeg-event-type"),
        Some("SubscriptionValidation")
    );
    assert_eq!(
        handshake.body[0]["eventType"],
        "Microsoft.EventGrid.SubscriptionValidationEvent"
    );
    for (notification, event) in received[1..].iter().zip(&events) {
        assert_eq!(notification.method, "POST");
        assert_eq!(notification.path_and_query, "/api/events?code=SECRET");
        assert_eq!(
            notification.header("content-type"),
            Some("application/json")
        );
        assert_eq!(notification.header("aeg-event-type"), Some("Notification"));
        assert_eq!(notification.header("aeg-delivery-count"), Some("0"));
        assert_eq!(
            notification.header("aeg-subscription-name"),
            Some("CALLVAULT-EMULATOR")
        );
        assert_eq!(notification.header("aeg-data-version"), Some("1.0"));
        assert_eq!(notification.header("aeg-metadata-version"), Some("1"));
        assert_eq!(notification.body, Value::Array(vec![event.clone()]));
    }
    subscriber.stop().await;
    emulator.stop().await;
}

#[tokio::test]
async fn a_503_is_retried_with_a_rising_delivery_count_until_accepted() {
    let emulator = start().await;
    let subscriber = Subscriber::start(Validation::Echo, &[503, 500], None).await;
    let report = emulator
        .deliver(
            &subscriber.url,
            events(&emulator, 1),
            DeliveryOptions::default(),
        )
        .await;
    assert_eq!(report.attempts, vec![(0, 503), (0, 500), (0, 200)]);
    assert_eq!((report.delivered, report.failed), (1, 0));
    let counts: Vec<_> = subscriber
        .notifications()
        .iter()
        .map(|n| n.header("aeg-delivery-count").unwrap().to_owned())
        .collect();
    assert_eq!(counts, ["0", "1", "2"]);
    subscriber.stop().await;
    emulator.stop().await;
}

#[tokio::test]
async fn statuses_event_grid_dead_letters_are_not_retried() {
    for status in [400, 401, 403, 413] {
        let emulator = start().await;
        let subscriber = Subscriber::start(Validation::Echo, &[status], None).await;
        let report = emulator
            .deliver(
                &subscriber.url,
                events(&emulator, 2),
                DeliveryOptions::default(),
            )
            .await;
        assert_eq!(report.attempts, vec![(0, status), (1, 200)], "{status}");
        assert_eq!((report.delivered, report.failed), (1, 1), "{status}");
        subscriber.stop().await;
        emulator.stop().await;
    }
}

#[tokio::test]
async fn a_batch_is_given_up_when_the_retry_schedule_runs_out() {
    let emulator = start().await;
    let subscriber = Subscriber::start(Validation::Echo, &[500; 10], None).await;
    let report = emulator
        .deliver(
            &subscriber.url,
            events(&emulator, 1),
            DeliveryOptions::default(),
        )
        .await;
    assert_eq!(
        report.attempts,
        vec![(0, 500); 4],
        "one try and three retries"
    );
    assert_eq!((report.delivered, report.failed), (0, 1));
    subscriber.stop().await;
    emulator.stop().await;
}

#[tokio::test]
async fn an_unreachable_subscriber_is_retried_and_reported_as_status_0() {
    let emulator = start().await;
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = url::Url::parse(&format!(
        "http://{}/api/events",
        closed.local_addr().unwrap()
    ))
    .unwrap();
    drop(closed);
    let options = DeliveryOptions {
        handshake: false,
        ..DeliveryOptions::default()
    };
    let report = emulator.deliver(&url, events(&emulator, 1), options).await;
    assert!(!report.validated);
    assert_eq!(report.attempts, vec![(0, 0); 4]);
    assert_eq!(report.failed, 1);
    emulator.stop().await;
}

#[tokio::test]
async fn duplicates_deliver_every_batch_twice_and_batches_group_events() {
    let emulator = start().await;
    let subscriber = Subscriber::start(Validation::Echo, &[], None).await;
    let events = events(&emulator, 3);
    let options = DeliveryOptions {
        duplicate: true,
        batch_size: 2,
        ..DeliveryOptions::default()
    };
    let report = emulator
        .deliver(&subscriber.url, events.clone(), options)
        .await;
    assert_eq!(
        report.attempts,
        vec![(0, 200), (1, 200), (0, 200), (1, 200)]
    );
    assert_eq!(report.delivered, 4);
    let bodies: Vec<Value> = subscriber
        .notifications()
        .into_iter()
        .map(|n| n.body)
        .collect();
    assert_eq!(bodies[0], Value::Array(events[..2].to_vec()));
    assert_eq!(bodies[1], Value::Array(events[2..].to_vec()));
    assert_eq!(bodies[2], bodies[0]);
    assert_eq!(bodies[3], bodies[1]);
    subscriber.stop().await;
    emulator.stop().await;
}

#[tokio::test]
async fn a_202_to_the_validation_event_stops_delivery() {
    let emulator = start().await;
    let subscriber = Subscriber::start(Validation::Accepted, &[], None).await;
    let report = emulator
        .deliver(
            &subscriber.url,
            events(&emulator, 2),
            DeliveryOptions::default(),
        )
        .await;
    assert!(!report.validated);
    assert!(report.attempts.is_empty());
    assert_eq!((report.delivered, report.failed), (0, 2));
    assert_eq!(
        subscriber.received().len(),
        1,
        "only the handshake was sent"
    );
    subscriber.stop().await;
    emulator.stop().await;
}

#[tokio::test]
async fn visiting_the_validation_url_validates_too() {
    let emulator = start().await;
    let subscriber = Subscriber::start(Validation::Manual, &[], None).await;
    let report = emulator
        .deliver(
            &subscriber.url,
            events(&emulator, 1),
            DeliveryOptions::default(),
        )
        .await;
    assert!(report.validated);
    assert_eq!(report.delivered, 1);
    subscriber.stop().await;
    emulator.stop().await;
}

#[tokio::test]
async fn cloud_events_use_the_options_handshake_and_the_batch_content_type() {
    let emulator = start().await;
    let subscriber = Subscriber::start(Validation::Echo, &[], Some("eventgrid.azure.net")).await;
    let events = events(&emulator, 1);
    let options = DeliveryOptions {
        schema: Schema::CloudEvents,
        ..DeliveryOptions::default()
    };
    let report = emulator
        .deliver(&subscriber.url, events.clone(), options)
        .await;
    assert!(report.validated);
    assert_eq!(report.delivered, 1);
    let received = subscriber.received();
    assert_eq!(received[0].method, "OPTIONS");
    assert_eq!(
        received[0].header("webhook-request-origin"),
        Some("eventgrid.azure.net")
    );
    let notification = &received[1];
    assert_eq!(
        notification.header("content-type"),
        Some("application/cloudevents-batch+json")
    );
    let cloud_event = &notification.body[0];
    assert_eq!(cloud_event["specversion"], "1.0");
    assert_eq!(
        cloud_event["type"],
        "Microsoft.Communication.RecordingFileStatusUpdated"
    );
    assert_eq!(cloud_event["data"], events[0]["data"]);
    subscriber.stop().await;
    emulator.stop().await;
}

#[tokio::test]
async fn a_cloud_events_endpoint_that_allows_no_origin_is_not_validated() {
    let emulator = start().await;
    let subscriber = Subscriber::start(Validation::Echo, &[], None).await;
    let options = DeliveryOptions {
        schema: Schema::CloudEvents,
        ..DeliveryOptions::default()
    };
    let report = emulator
        .deliver(&subscriber.url, events(&emulator, 1), options)
        .await;
    assert!(!report.validated);
    assert_eq!(subscriber.notifications().len(), 0);
    assert_eq!(report.failed, 1);
    subscriber.stop().await;
    emulator.stop().await;
}
