//! Delivering events to a webhook the way Event Grid does: handshake first, JSON arrays in
//! batches, success only on 200–204, retries on the configured schedule, and no retry for
//! the statuses Event Grid dead-letters at once.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::events;
use crate::handshake;
use crate::state::Shared;

/// The `aeg-subscription-name` of every delivery (Event Grid sends names upper-cased).
pub const SUBSCRIPTION_NAME: &str = "CALLVAULT-EMULATOR";

/// Statuses Event Grid does not retry: the batch is dead-lettered.
const NOT_RETRIED: [u16; 4] = [400, 401, 403, 413];

/// The schema events are delivered in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Schema {
    /// Event Grid's own schema, `Content-Type: application/json`.
    #[default]
    EventGrid,
    /// CloudEvents 1.0, `Content-Type: application/cloudevents-batch+json`; Event Grid
    /// schema events given to `deliver` are converted.
    CloudEvents,
}

/// How [`crate::Emulator::deliver`] delivers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeliveryOptions {
    /// The schema of the POSTs (and so of the handshake).
    pub schema: Schema,
    /// Deliver every batch twice (a second pass after the first), as Event Grid's
    /// at-least-once delivery sometimes does.
    pub duplicate: bool,
    /// Events per POST; 0 counts as 1.
    pub batch_size: usize,
    /// Validate the endpoint before delivering; without a passed handshake nothing is sent.
    pub handshake: bool,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        Self {
            schema: Schema::EventGrid,
            duplicate: false,
            batch_size: 1,
            handshake: true,
        }
    }
}

/// What happened to a delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryReport {
    /// Every POST of a batch, in order: (batch index, status, or 0 for a transport error).
    /// A duplicate delivery reports the same batch index again.
    pub attempts: Vec<(usize, u16)>,
    /// Batch deliveries answered 2xx (a duplicated batch counts twice).
    pub delivered: usize,
    /// Batch deliveries given up: a status that is not retried, retries exhausted, or a
    /// failed handshake (then every batch counts as failed and none is sent).
    pub failed: usize,
    /// Whether the handshake ran and passed.
    pub validated: bool,
}

/// Delivers `events` to `subscriber` (its query string, e.g. `?code=SECRET`, is kept),
/// waiting `retry_delays` between the attempts of a batch.
pub(crate) async fn deliver(
    shared: &Shared,
    subscriber: &url::Url,
    events: Vec<Value>,
    options: DeliveryOptions,
    retry_delays: &[Duration],
) -> DeliveryReport {
    let batches: Vec<Batch> = events
        .chunks(options.batch_size.max(1))
        .map(|events| Batch::new(events, options.schema))
        .collect();
    let mut report = DeliveryReport::default();
    if options.handshake {
        report.validated = handshake::validate(shared, subscriber, options.schema).await;
        if !report.validated {
            tracing::warn!(subscriber = %without_query(subscriber), "emulated subscription validation failed; nothing delivered");
            report.failed = batches.len() * if options.duplicate { 2 } else { 1 };
            return report;
        }
    }
    let passes = if options.duplicate { 2 } else { 1 };
    for _ in 0..passes {
        for (index, batch) in batches.iter().enumerate() {
            let accepted =
                deliver_batch(shared, subscriber, index, batch, retry_delays, &mut report).await;
            if accepted {
                report.delivered += 1;
            } else {
                report.failed += 1;
            }
        }
    }
    report
}

/// One POST body and the headers that describe it.
struct Batch {
    body: Value,
    content_type: &'static str,
    data_version: String,
    metadata_version: String,
}

impl Batch {
    fn new(events: &[Value], schema: Schema) -> Self {
        let first = events.first();
        let version = |key: &str, default: &str| {
            first
                .and_then(|event| event.get(key))
                .and_then(Value::as_str)
                .unwrap_or(default)
                .to_owned()
        };
        let (body, content_type) = match schema {
            Schema::EventGrid => (Value::Array(events.to_vec()), "application/json"),
            Schema::CloudEvents => (
                Value::Array(events.iter().map(events::to_cloud_event).collect()),
                "application/cloudevents-batch+json",
            ),
        };
        Self {
            body,
            content_type,
            data_version: version("dataVersion", "1.0"),
            metadata_version: version("metadataVersion", "1"),
        }
    }
}

/// Sends one batch until it succeeds, meets a status that is not retried, or the retry
/// schedule runs out; true when it was accepted.
async fn deliver_batch(
    shared: &Shared,
    subscriber: &url::Url,
    index: usize,
    batch: &Batch,
    retry_delays: &[Duration],
    report: &mut DeliveryReport,
) -> bool {
    let mut delays = retry_delays.iter();
    let mut delivery_count = 0u32;
    loop {
        let status = post(shared, subscriber, batch, delivery_count).await;
        report.attempts.push((index, status));
        if (200..=204).contains(&status) {
            return true;
        }
        if NOT_RETRIED.contains(&status) {
            tracing::warn!(subscriber = %without_query(subscriber), batch = index, status, "emulated delivery dead-lettered");
            return false;
        }
        let Some(delay) = delays.next() else {
            tracing::warn!(subscriber = %without_query(subscriber), batch = index, status, "emulated delivery retries exhausted");
            return false;
        };
        tokio::time::sleep(*delay).await;
        delivery_count += 1;
    }
}

/// One POST; the status, or 0 when no response came back.
async fn post(shared: &Shared, subscriber: &url::Url, batch: &Batch, delivery_count: u32) -> u16 {
    let body = match serde_json::to_vec(&batch.body) {
        Ok(body) => body,
        Err(_) => return 0,
    };
    let sent = shared
        .entra
        .authorize(shared.http.post(subscriber.clone()))
        .header(reqwest::header::CONTENT_TYPE, batch.content_type)
        .header("aeg-event-type", "Notification")
        .header("aeg-subscription-name", SUBSCRIPTION_NAME)
        .header("aeg-delivery-count", delivery_count.to_string())
        .header("aeg-data-version", batch.data_version.as_str())
        .header("aeg-metadata-version", batch.metadata_version.as_str())
        .body(body)
        .timeout(Duration::from_secs(30))
        .send()
        .await;
    match sent {
        Ok(response) => response.status().as_u16(),
        Err(err) => {
            tracing::debug!(subscriber = %without_query(subscriber), error = %err, "emulated delivery got no response");
            0
        }
    }
}

/// The subscriber URL without its query string, which may hold the webhook's secret.
fn without_query(url: &url::Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.to_string()
}
