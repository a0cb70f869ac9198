//! Storage queue delivery against a scripted queue service on loopback: what Put Message
//! sends (path, headers, Shared Key or SAS, the base64 event in its XML), retries on 5xx
//! within their bound, no retry on a refusal, and the control routes. The round trip through
//! Azurite, with callvault reading the queue, is in callvault's integration tests.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::subscriber::{Received, Subscriber, Validation};
use super::*;
use crate::{QueueDestination, QueueDestinationError};

/// A queue of Azurite's account on the scripted server.
fn destination(server: &Subscriber, sas: Option<&str>) -> QueueDestination {
    let url = format!(
        "http://127.0.0.1:{}/devstoreaccount1/recordings",
        server.url.port().unwrap()
    );
    QueueDestination::new(&url, None, sas).unwrap()
}

fn event(id: &str) -> Value {
    json!({ "id": id, "eventType": "Microsoft.Communication.RecordingFileStatusUpdated",
            "subject": "/recording/call/c/serverCallId/s", "data": { "n": 1 },
            "dataVersion": "1.0", "metadataVersion": "1", "eventTime": "2026-12-07T15:00:00Z" })
}

/// The event a Put Message carries: the base64 text of its `<MessageText>`.
fn message_event(put: &Received) -> Value {
    let text = put
        .raw
        .split_once("<QueueMessage><MessageText>")
        .and_then(|(_, rest)| rest.split_once("</MessageText></QueueMessage>"))
        .map(|(text, _)| text)
        .unwrap_or_else(|| panic!("not a QueueMessage: {}", put.raw));
    serde_json::from_slice(&STANDARD.decode(text).unwrap()).unwrap()
}

#[tokio::test]
async fn each_event_is_one_shared_key_signed_message_of_base64_json() {
    let emulator = start().await;
    let queue = Subscriber::start(Validation::Echo, &[201, 201], None).await;
    let events = [event("e-1"), event("e-2")];
    let report = emulator
        .deliver_to_queue(&destination(&queue, None), &events)
        .await;
    assert_eq!(report.attempts, vec![(0, 201), (1, 201)]);
    assert_eq!((report.delivered, report.failed), (2, 0));

    let puts = queue.received();
    assert_eq!(puts.len(), 2);
    for (put, event) in puts.iter().zip(&events) {
        assert_eq!(put.method, "POST");
        assert_eq!(put.path_and_query, "/devstoreaccount1/recordings/messages");
        assert_eq!(put.header("content-type"), Some("application/xml"));
        assert_eq!(put.header("x-ms-version"), Some("2021-08-06"));
        assert!(put.header("x-ms-date").unwrap().ends_with(" GMT"));
        assert!(
            put.header("authorization")
                .unwrap()
                .starts_with("SharedKey devstoreaccount1:")
        );
        assert_eq!(&message_event(put), event);
    }
    queue.stop().await;
    emulator.stop().await;
}

#[tokio::test]
async fn a_sas_goes_in_the_query_and_no_key_is_sent() {
    let emulator = start().await;
    let queue = Subscriber::start(Validation::Echo, &[201], None).await;
    let report = emulator
        .deliver_to_queue(
            &destination(&queue, Some("?sv=2021-08-06&sp=a&sig=abc%3D")),
            &[event("e-sas")],
        )
        .await;
    assert_eq!(report.delivered, 1);
    let put = &queue.received()[0];
    assert_eq!(
        put.path_and_query,
        "/devstoreaccount1/recordings/messages?sv=2021-08-06&sp=a&sig=abc%3D"
    );
    assert_eq!(put.header("authorization"), None);
    assert!(!report.queue.contains("sig="), "the SAS is not reported");
    queue.stop().await;
    emulator.stop().await;
}

#[tokio::test]
async fn a_5xx_is_retried_within_the_schedule_and_a_refusal_is_not() {
    let emulator = start().await;
    let flaky = Subscriber::start(Validation::Echo, &[503, 500, 201], None).await;
    let report = emulator
        .deliver_to_queue(&destination(&flaky, None), &[event("e-flaky")])
        .await;
    assert_eq!(report.attempts, vec![(0, 503), (0, 500), (0, 201)]);
    assert_eq!(report.delivered, 1);

    // The test schedule has three delays: four attempts, then the event is given up.
    let down = Subscriber::start(Validation::Echo, &[503; 10], None).await;
    let report = emulator
        .deliver_to_queue(&destination(&down, None), &[event("e-down")])
        .await;
    assert_eq!(report.attempts, vec![(0, 503); 4]);
    assert_eq!((report.delivered, report.failed), (0, 1));

    let refusing = Subscriber::start(Validation::Echo, &[403, 201], None).await;
    let report = emulator
        .deliver_to_queue(
            &destination(&refusing, None),
            &[event("e-refused"), event("e-next")],
        )
        .await;
    assert_eq!(report.attempts, vec![(0, 403), (1, 201)]);
    assert_eq!((report.delivered, report.failed), (1, 1));
    for server in [flaky, down, refusing] {
        server.stop().await;
    }
    emulator.stop().await;
}

#[tokio::test]
async fn an_event_too_large_for_a_message_is_given_up_unsent() {
    let emulator = start().await;
    let queue = Subscriber::start(Validation::Echo, &[], None).await;
    let mut large = event("e-large");
    large["data"]["padding"] = json!("x".repeat(50 * 1024));
    let report = emulator
        .deliver_to_queue(&destination(&queue, None), &[large, event("e-small")])
        .await;
    assert_eq!(report.attempts, vec![(1, 200)]);
    assert_eq!((report.delivered, report.failed), (1, 1));
    assert_eq!(queue.received().len(), 1);
    queue.stop().await;
    emulator.stop().await;
}

#[tokio::test]
async fn queues_are_set_over_http_and_deliver_gives_them_the_events() {
    let emulator = start().await;
    let queue = Subscriber::start(Validation::Echo, &[201], None).await;
    let queues = emulator.endpoint().join("emulator/queues").unwrap();
    let refused = http()
        .put(queues.clone())
        .json(&json!([{ "url": "https://acme.queue.core.windows.net/recordings" }]))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["code"], "invalid_queue");
    assert!(error["message"].as_str().unwrap().contains("acme"));

    let url = destination(&queue, None).url().to_string();
    let set: Value = http()
        .put(queues.clone())
        .json(&json!([{ "url": format!("{url}?sv=1&sig=SECRET") }]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(set["queues"], json!([url]));

    let answer: Value = http()
        .post(emulator.endpoint().join("emulator/deliver").unwrap())
        .json(&json!({ "events": [event("e-http")] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["reports"][0]["queue"], url.as_str());
    assert_eq!(answer["reports"][0]["delivered"], 1);
    assert_eq!(message_event(&queue.received()[0])["id"], "e-http");
    queue.stop().await;
    emulator.stop().await;
}

#[test]
fn a_destination_without_a_credential_says_what_is_missing() {
    let err = QueueDestination::new("https://acme.queue.core.windows.net/recordings", None, None)
        .unwrap_err();
    assert_eq!(err, QueueDestinationError::NoCredential("acme".into()));
    assert!(err.to_string().contains("account key"));
}
