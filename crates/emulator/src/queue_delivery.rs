//! Delivering events into an Azure Storage Queue the way Event Grid does for a storage queue
//! destination: one event per message, its Event Grid-schema JSON base64-encoded as the
//! message text, Put Message authorised by Shared Key or SAS, retried on 5xx, 408, 429 and
//! transport errors on the configured schedule and given up on any other answer.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use callvault_acs_protocol::signing::rfc1123;
use callvault_acs_protocol::storage_shared_key::{self, StorageRequest};
use serde::Serialize;
use serde_json::Value;

use crate::queue_destination::{QueueCredential, QueueDestination};
use crate::state::Shared;

/// The Queue service version the requests speak (and sign).
const QUEUE_API_VERSION: &str = "2021-08-06";
/// A queue message's text may hold 64 KiB; a larger event cannot be put and is given up.
const MAX_MESSAGE_TEXT_BYTES: usize = 64 * 1024;
/// One Put Message may take this long.
const PUT_TIMEOUT: Duration = Duration::from_secs(30);

/// What happened to the events delivered into one queue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueReport {
    /// The queue, without any SAS.
    pub queue: String,
    /// Every Put Message, in order: (event index, status, or 0 for a transport error).
    pub attempts: Vec<(usize, u16)>,
    /// Events put into the queue.
    pub delivered: usize,
    /// Events given up: too large for a message, an answer that is not retried, or retries
    /// exhausted.
    pub failed: usize,
}

/// Puts each of `events` into `destination`, waiting `retry_delays` between the attempts of
/// one event.
pub(crate) async fn deliver(
    shared: &Shared,
    destination: &QueueDestination,
    events: &[Value],
    retry_delays: &[Duration],
) -> QueueReport {
    let mut report = QueueReport {
        queue: destination.to_string(),
        ..QueueReport::default()
    };
    for (index, event) in events.iter().enumerate() {
        let text = STANDARD.encode(event.to_string());
        if text.len() > MAX_MESSAGE_TEXT_BYTES {
            tracing::warn!(queue = %destination, event = index, bytes = text.len(), "an event is larger than the {MAX_MESSAGE_TEXT_BYTES} bytes a queue message holds; not delivered");
            report.failed += 1;
            continue;
        }
        if put_until_done(shared, destination, index, &text, retry_delays, &mut report).await {
            report.delivered += 1;
        } else {
            report.failed += 1;
        }
    }
    report
}

/// Puts one message until it is stored, meets an answer that is not retried, or the retry
/// schedule runs out; true when it was stored.
async fn put_until_done(
    shared: &Shared,
    destination: &QueueDestination,
    index: usize,
    text: &str,
    retry_delays: &[Duration],
    report: &mut QueueReport,
) -> bool {
    let mut delays = retry_delays.iter();
    loop {
        let status = put(shared, destination, text).await;
        report.attempts.push((index, status));
        if (200..300).contains(&status) {
            return true;
        }
        if !retried(status) {
            tracing::warn!(queue = %destination, event = index, status, "the queue refused the event; not retried");
            return false;
        }
        let Some(delay) = delays.next() else {
            tracing::warn!(queue = %destination, event = index, status, "queue delivery retries exhausted");
            return false;
        };
        tokio::time::sleep(*delay).await;
    }
}

/// Whether Event Grid tries again after `status` (0: no answer).
fn retried(status: u16) -> bool {
    matches!(status, 0 | 408 | 429 | 500..=599)
}

/// One Put Message; the status, or 0 when no answer came back.
async fn put(shared: &Shared, destination: &QueueDestination, text: &str) -> u16 {
    // Base64 needs no XML escaping.
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><QueueMessage><MessageText>{text}</MessageText></QueueMessage>"
    );
    let date = rfc1123(chrono::Utc::now());
    let content_type = "application/xml";
    let mut url = destination.messages_url();
    let authorization = match &destination.credential {
        QueueCredential::SharedKey { account, key } => Some(storage_shared_key::authorization(
            key,
            account,
            &StorageRequest {
                method: "POST",
                url: &url,
                content_length: body.len(),
                content_type,
                date: &date,
                version: QUEUE_API_VERSION,
            },
        )),
        QueueCredential::Sas(sas) => {
            url.set_query(Some(sas));
            None
        }
    };
    let mut request = shared
        .http
        .post(url)
        .header("x-ms-date", date)
        .header("x-ms-version", QUEUE_API_VERSION)
        .header("content-type", content_type)
        .body(body)
        .timeout(PUT_TIMEOUT);
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            if !response.status().is_success() {
                // Azure names the problem in a header (AuthenticationFailed, QueueNotFound…).
                let code = response
                    .headers()
                    .get("x-ms-error-code")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or("")
                    .chars()
                    .take(100)
                    .collect::<String>();
                tracing::debug!(queue = %destination, status, code, "Put Message failed");
            }
            status
        }
        Err(err) => {
            // Without the URL: a SAS would be in it.
            tracing::debug!(queue = %destination, error = %err.without_url(), "Put Message got no answer");
            0
        }
    }
}

/// Delivers `events` into every queue destination set at this moment, one queue after the
/// other (as separate subscriptions, each in its own order).
pub(crate) async fn deliver_to_all(
    shared: &Shared,
    events: &[Value],
    retry_delays: &[Duration],
) -> Vec<QueueReport> {
    let destinations = crate::state::lock(&shared.queues).clone();
    let deliveries = destinations
        .iter()
        .map(|destination| deliver(shared, destination, events, retry_delays));
    futures_util::future::join_all(deliveries).await
}
