//! Faults: error statuses, mid-stream resets, throttling, empty bodies.

use std::time::{Duration, Instant};

use super::*;
use crate::Fault;

#[tokio::test]
async fn a_status_fault_answers_an_acs_error_the_given_times_then_serves() {
    let emulator = start().await;
    let urls = emulator.add_document(spec("doc-503", synthetic(100)));
    emulator.set_fault(
        "doc-503",
        Fault::Status {
            status: 503,
            times: 2,
        },
    );
    let first = signed_get(&emulator, &urls.content, None).await;
    assert_eq!(first.status(), 503);
    let body: serde_json::Value = first.json().await.unwrap();
    let error = &body["error"];
    assert_eq!(error["code"], "ServiceUnavailable");
    for key in ["message", "target", "details"] {
        assert!(error.get(key).is_some(), "error has {key}");
    }
    assert_eq!(
        signed_get(&emulator, &urls.metadata, None).await.status(),
        503
    );
    assert_eq!(
        signed_get(&emulator, &urls.content, None).await.status(),
        200
    );
    assert_eq!(
        signed_get(&emulator, &urls.metadata, None).await.status(),
        200
    );
    emulator.stop().await;
}

#[tokio::test]
async fn a_reset_breaks_the_stream_and_a_range_request_resumes_it() {
    let emulator = start().await;
    let media = synthetic(500_000);
    let urls = emulator.add_document(spec("doc-reset", media.clone()));
    emulator.set_fault(
        "doc-reset",
        Fault::ResetAfter {
            after_bytes: 100_000,
            times: 1,
        },
    );
    let response = signed_get(&emulator, &urls.content, None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "content-length").as_deref(),
        Some("500000")
    );
    let (mut received, broken) = read_body(response).await;
    assert!(
        broken,
        "the client must see the stream fail, not end cleanly"
    );
    assert!(received.len() <= 100_000);
    assert_eq!(received, media.read(0, received.len() as u64));

    let range = format!("bytes={}-", received.len());
    let rest = signed_get(&emulator, &urls.content, Some(&range)).await;
    assert_eq!(rest.status(), 206);
    let (tail, broken) = read_body(rest).await;
    assert!(!broken);
    received.extend_from_slice(&tail);
    assert_eq!(received, media_bytes(&media));
    emulator.stop().await;
}

#[tokio::test]
async fn a_reset_applies_to_media_only() {
    let emulator = start().await;
    let urls = emulator.add_document(spec("doc-reset-meta", synthetic(100)));
    emulator.set_fault(
        "doc-reset-meta",
        Fault::ResetAfter {
            after_bytes: 10,
            times: 1,
        },
    );
    let metadata = signed_get(&emulator, &urls.metadata, None).await;
    let (body, broken) = read_body(metadata).await;
    assert!(!broken);
    assert_eq!(body, emulator.metadata_bytes("doc-reset-meta").unwrap());
    let (_, broken) = read_body(signed_get(&emulator, &urls.content, None).await).await;
    assert!(broken);
    emulator.stop().await;
}

#[tokio::test]
async fn throttled_media_arrives_no_faster_than_the_rate() {
    let emulator = start().await;
    let media = synthetic(20_000);
    let urls = emulator.add_document(spec("doc-slow", media.clone()));
    emulator.set_fault(
        "doc-slow",
        Fault::Throttle {
            bytes_per_second: 40_000,
        },
    );
    let started = Instant::now();
    let (body, broken) = read_body(signed_get(&emulator, &urls.content, None).await).await;
    assert!(!broken);
    assert_eq!(body, media_bytes(&media));
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "20 kB at 40 kB/s took {:?}",
        started.elapsed()
    );
    emulator.stop().await;
}

#[tokio::test]
async fn an_empty_body_fault_answers_200_with_nothing_then_serves() {
    let emulator = start().await;
    let urls = emulator.add_document(spec("doc-empty", synthetic(1234)));
    emulator.set_fault("doc-empty", Fault::EmptyBody { times: 1 });
    let empty = signed_get(&emulator, &urls.content, None).await;
    assert_eq!(empty.status(), 200);
    assert_eq!(header(&empty, "content-length").as_deref(), Some("0"));
    assert!(empty.bytes().await.unwrap().is_empty());
    let full = signed_get(&emulator, &urls.content, None).await;
    assert_eq!(full.bytes().await.unwrap().len(), 1234);
    emulator.stop().await;
}

#[tokio::test]
async fn a_new_fault_replaces_the_previous_one() {
    let emulator = start().await;
    let urls = emulator.add_document(spec("doc-replace", synthetic(10)));
    emulator.set_fault(
        "doc-replace",
        Fault::Status {
            status: 500,
            times: 5,
        },
    );
    assert_eq!(
        signed_get(&emulator, &urls.content, None).await.status(),
        500
    );
    emulator.set_fault(
        "doc-replace",
        Fault::Status {
            status: 503,
            times: 1,
        },
    );
    assert_eq!(
        signed_get(&emulator, &urls.content, None).await.status(),
        503
    );
    assert_eq!(
        signed_get(&emulator, &urls.content, None).await.status(),
        200
    );
    emulator.stop().await;
}

#[tokio::test]
async fn an_unsigned_request_does_not_use_up_a_fault() {
    let emulator = start().await;
    let urls = emulator.add_document(spec("doc-unsigned", synthetic(10)));
    emulator.set_fault(
        "doc-unsigned",
        Fault::Status {
            status: 503,
            times: 1,
        },
    );
    let unsigned = http().get(urls.content.clone()).send().await.unwrap();
    assert_eq!(unsigned.status(), 401);
    assert_eq!(
        signed_get(&emulator, &urls.content, None).await.status(),
        503
    );
    emulator.stop().await;
}
