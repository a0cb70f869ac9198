//! `ingest.mode = "storage_queue"`: Event Grid delivers each event as a message into an Azure
//! Storage queue (base64 today, plain JSON in the past) and callvault receives from it, so no
//! inbound endpoint is needed. Each message goes through the same intake as a webhook
//! delivery and is deleted only after the transaction holding its events committed; its
//! invisibility is extended while the intake runs. A message received more than
//! `max_dequeue` times, or one that holds no events at all, is quarantined with its text and
//! deleted. Several replicas may receive from one queue: a received message is hidden from
//! the others, and dedup catches one that comes back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::future::join_all;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::delivery::Intake;
use super::envelope::{self, Envelope};
use crate::azure_queue::{QueueAuth, QueueClient, QueueError, QueueMessage};
use crate::config::QueueDeliverySettings;
use crate::metrics::Metrics;
use crate::queue::intake::{Quarantined, StoredPayload, quarantine};
use crate::queue::{QueueError as DbError, now_millis};

/// Waits after empty receives grow to this, so a new message is taken within about a second.
const MAX_IDLE: Duration = Duration::from_secs(1);
const FIRST_IDLE: Duration = Duration::from_millis(100);
/// The longest wait between failed receives.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub struct QueueConsumer {
    client: QueueClient,
    intake: Intake,
    metrics: Arc<Metrics>,
    batch: u32,
    visibility_secs: u64,
    max_dequeue: u32,
}

impl QueueConsumer {
    pub fn new(settings: &QueueDeliverySettings, intake: Intake) -> Result<Self, QueueError> {
        let url = settings
            .queue_url()
            .map_err(|err| QueueError::Malformed(err.to_string()))?;
        let (key, sas) = settings.credentials();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("callvault/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| QueueError::Transport(err.to_string()))?;
        let auth = QueueAuth::new(&url, &key, &sas);
        Ok(Self {
            client: QueueClient::new(http, url, auth),
            metrics: intake.metrics.clone(),
            intake,
            batch: settings.batch,
            visibility_secs: settings.visibility_timeout_secs,
            max_dequeue: settings.max_dequeue,
        })
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let mut idle = FIRST_IDLE;
        let mut backoff = FIRST_IDLE;
        loop {
            let received = tokio::select! {
                _ = shutdown.cancelled() => return,
                received = self.client.receive(self.batch, self.visibility_secs) => received,
            };
            let pause = match received {
                Ok(messages) if messages.is_empty() => {
                    backoff = FIRST_IDLE;
                    let pause = idle;
                    idle = (idle * 2).min(MAX_IDLE);
                    pause
                }
                Ok(messages) => {
                    idle = FIRST_IDLE;
                    backoff = FIRST_IDLE;
                    // Not cancelled midway: what is committed gets deleted.
                    join_all(messages.into_iter().map(|message| self.take(message))).await;
                    continue;
                }
                Err(err) => {
                    Metrics::add(&self.metrics.queue_failures, 1);
                    tracing::warn!(error = %err, retry_in = ?backoff, "receiving from the storage queue failed");
                    let pause = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    pause
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    async fn take(&self, message: QueueMessage) {
        if message.dequeue_count > self.max_dequeue {
            let reason = format!(
                "the storage queue delivered this message {} times, more than ingest.queue.max_dequeue ({})",
                message.dequeue_count, self.max_dequeue
            );
            return self.quarantine_and_delete(message, &reason).await;
        }
        let events = match events_of(&message.text) {
            Ok(events) => events,
            Err(reason) => return self.quarantine_and_delete(message, &reason).await,
        };
        let receipt = Mutex::new(message.pop_receipt.clone());
        let stored = tokio::select! {
            stored = self.intake.store(events) => stored,
            () = self.keep_hidden(&message, &receipt) => unreachable!("extending never ends by itself"),
        };
        let message = QueueMessage {
            pop_receipt: receipt.into_inner().unwrap_or_else(|p| p.into_inner()),
            ..message
        };
        match stored {
            Ok(_) => self.delete(&message).await,
            // Left in the queue: it becomes visible again after its timeout.
            Err(err) => tracing::warn!(
                error = %err,
                dequeue_count = message.dequeue_count,
                "a queue message was not stored; it comes again after its visibility timeout"
            ),
        }
    }

    /// Extends the message's invisibility at half its timeout, forever: the caller stops it.
    async fn keep_hidden(&self, message: &QueueMessage, receipt: &Mutex<String>) {
        let every = Duration::from_secs(self.visibility_secs / 2).max(Duration::from_secs(1));
        loop {
            tokio::time::sleep(every).await;
            let current = QueueMessage {
                pop_receipt: receipt.lock().map(|r| r.clone()).unwrap_or_default(),
                ..message.clone()
            };
            match self.client.extend(&current, self.visibility_secs).await {
                Ok(next) => {
                    if let Ok(mut held) = receipt.lock() {
                        *held = next;
                    }
                }
                Err(err) => {
                    Metrics::add(&self.metrics.queue_failures, 1);
                    tracing::warn!(error = %err, "extending a queue message's invisibility failed");
                }
            }
        }
    }

    async fn delete(&self, message: &QueueMessage) {
        match self.client.delete(message).await {
            Ok(()) => Metrics::add(&self.metrics.queue_deleted, 1),
            Err(err) => {
                Metrics::add(&self.metrics.queue_failures, 1);
                let why = if err.is_gone() {
                    "another receiver holds it now"
                } else {
                    "it comes again after its visibility timeout, and is then a duplicate"
                };
                tracing::warn!(error = %err, "a stored queue message could not be deleted: {why}");
            }
        }
    }

    async fn quarantine_and_delete(&self, message: QueueMessage, reason: &str) {
        match self.quarantine(&message.text, reason).await {
            Ok(id) => {
                Metrics::add(&self.metrics.queue_poison, 1);
                Metrics::add(&self.metrics.events_quarantined, 1);
                tracing::warn!(quarantine_id = id, reason, "queue message quarantined");
                self.delete(&message).await;
            }
            // Kept in the queue: nothing is lost while the database is down.
            Err(err) => {
                tracing::warn!(error = %err, "a queue message to quarantine was not stored")
            }
        }
    }

    async fn quarantine(&self, text: &str, reason: &str) -> Result<i64, DbError> {
        let payload = StoredPayload::of(text);
        let mut tx = self.intake.db.begin_write().await?;
        let entry = Quarantined {
            event_id: None,
            event_type: None,
            reason,
            payload: &payload,
        };
        let id = quarantine(&mut tx, &entry, now_millis()).await?;
        tx.commit().await?;
        Ok(id)
    }
}

/// The events of a message's text: base64 of JSON as Event Grid writes it now, or the JSON
/// itself as it wrote it before; one event (its schema) or an array of them.
pub fn events_of(text: &str) -> Result<Vec<Envelope>, String> {
    let trimmed = text.trim();
    let decoded = STANDARD.decode(trimmed).ok().filter(|bytes| {
        matches!(
            bytes.iter().find(|b| !b.is_ascii_whitespace()),
            Some(b'{' | b'[')
        )
    });
    let body = decoded.unwrap_or_else(|| trimmed.as_bytes().to_vec());
    let value: Value = serde_json::from_slice(&body)
        .map_err(|err| format!("the message is neither base64 of JSON nor JSON: {err}"))?;
    let batch = match value {
        Value::Array(_) => value,
        Value::Object(_) => Value::Array(vec![value]),
        _ => return Err("the message holds neither an event nor an array of events".into()),
    };
    let bytes = serde_json::to_vec(&batch).map_err(|err| err.to_string())?;
    envelope::parse_body(&bytes).map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_base64_and_plain_json_messages_of_one_event_or_several() {
        let event = r#"{"id":"e1","eventType":"T","subject":"s","data":{}}"#;
        for text in [
            event.to_owned(),
            STANDARD.encode(event),
            format!("[{event},{event}]"),
            format!("  {}\n", STANDARD.encode(format!("[{event}]"))),
        ] {
            let events = events_of(&text).unwrap();
            assert!(!events.is_empty(), "{text}");
            assert_eq!(events[0].id, "e1");
        }
        assert!(
            events_of("bm90IGpzb24=").is_err(),
            "base64 of text that is not JSON"
        );
        assert!(events_of("42").is_err());
        assert!(events_of("").is_err());
    }
}
