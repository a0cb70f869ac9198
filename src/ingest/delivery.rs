//! Storing one webhook delivery in one transaction: every event is accepted, recognised as a
//! duplicate, quarantined with its reason, or counted as a type we do not act on.

use std::sync::Arc;

use serde_json::Value;

use super::envelope::{self, Envelope};
use super::recording_event::announcement;
use crate::acs::UrlGuard;
use crate::metrics::Metrics;
use crate::queue::intake::{self, Enqueued, EventOutcome, StateChange};
use crate::queue::{Db, QueueError, Tx, now_millis};

/// What ingest needs to turn events into work.
#[derive(Clone)]
pub struct Intake {
    pub db: Db,
    pub guard: UrlGuard,
    /// For preview chunks, which carry only a documentId.
    pub acs_endpoint: url::Url,
    pub retention: chrono::Duration,
    pub metrics: Arc<Metrics>,
    /// Wakes the workers of this process when work arrives.
    pub wake: Arc<tokio::sync::Notify>,
}

/// Counts of one delivery, returned to the sender.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DeliverySummary {
    pub accepted: usize,
    pub duplicates: usize,
    pub quarantined: usize,
    pub ignored: usize,
}

impl DeliverySummary {
    fn count(&mut self, outcome: EventOutcome) {
        match outcome {
            EventOutcome::Accepted => self.accepted += 1,
            EventOutcome::Duplicate => self.duplicates += 1,
            EventOutcome::Quarantined => self.quarantined += 1,
            EventOutcome::Ignored => self.ignored += 1,
        }
    }
}

impl Intake {
    /// Stores every event of a delivery and commits once, before the caller answers 200.
    pub async fn store(&self, events: &[Envelope]) -> Result<DeliverySummary, QueueError> {
        let now = now_millis();
        let mut tx = self.db.begin_write().await?;
        let mut summary = DeliverySummary::default();
        for event in events {
            summary.count(self.store_event(&mut tx, event, now).await?);
        }
        tx.commit().await?;
        let metrics = &self.metrics;
        Metrics::add(&metrics.events_received, events.len() as u64);
        Metrics::add(&metrics.events_accepted, summary.accepted as u64);
        Metrics::add(&metrics.events_duplicate, summary.duplicates as u64);
        Metrics::add(&metrics.events_quarantined, summary.quarantined as u64);
        Metrics::add(&metrics.events_unknown_type, summary.ignored as u64);
        if summary.accepted > 0 {
            self.wake.notify_one();
        }
        Ok(summary)
    }

    async fn store_event(
        &self,
        tx: &mut Tx,
        event: &Envelope,
        now: i64,
    ) -> Result<EventOutcome, QueueError> {
        let raw = event.raw.to_string();
        if event.event_type.is_empty() || event.id.trim().is_empty() {
            let reason = if event.raw.is_object() {
                "the event has no id or no type"
            } else {
                "the element is not a JSON object"
            };
            return self.quarantine(tx, None, event, reason, &raw, now).await;
        }
        let kind = match event.event_type.as_str() {
            envelope::RECORDING_FILE_STATUS_UPDATED | envelope::RECORDING_STATE_CHANGED => {
                EventOutcome::Accepted
            }
            _ => EventOutcome::Ignored,
        };
        if !intake::claim_event_id(tx, &event.id, &event.event_type, kind, now).await? {
            return Ok(EventOutcome::Duplicate);
        }
        match event.event_type.as_str() {
            envelope::RECORDING_FILE_STATUS_UPDATED => {
                self.store_recording_files(tx, event, &raw, now).await
            }
            envelope::RECORDING_STATE_CHANGED => {
                self.store_state_change(tx, event, &raw, now).await
            }
            other => {
                tracing::info!(event_id = %event.id, event_type = other, "event type not acted on");
                Ok(EventOutcome::Ignored)
            }
        }
    }

    async fn store_recording_files(
        &self,
        tx: &mut Tx,
        event: &Envelope,
        raw: &str,
        now: i64,
    ) -> Result<EventOutcome, QueueError> {
        match self.queue_recording_files(tx, event, now).await? {
            Ok(()) => Ok(EventOutcome::Accepted),
            Err(reason) => {
                self.quarantine(tx, Some(&event.id), event, &reason, raw, now)
                    .await
            }
        }
    }

    /// Validates a RecordingFileStatusUpdated event and queues its chunks, linking the event to
    /// its recording. `Ok(Err(reason))` when the event is invalid for us.
    async fn queue_recording_files(
        &self,
        tx: &mut Tx,
        event: &Envelope,
        now: i64,
    ) -> Result<Result<(), String>, QueueError> {
        let work = match announcement(
            event,
            &self.guard,
            &self.acs_endpoint,
            self.retention,
            chrono::Utc::now(),
        ) {
            Ok(work) => work,
            Err(invalid) => return Ok(Err(invalid.to_string())),
        };
        match intake::enqueue(tx, &work, now).await? {
            Enqueued::Queued {
                recording,
                new_jobs,
            } => {
                intake::set_event_outcome(tx, &event.id, EventOutcome::Accepted, Some(recording))
                    .await?;
                tracing::info!(event_id = %event.id, call_id = %work.call_id, recording, chunks = work.chunks.len(), new_jobs, "recording files queued");
                Ok(Ok(()))
            }
            Enqueued::IndexConflict {
                index,
                existing_document,
            } => Ok(Err(format!(
                "chunk index {index} is already taken by document {existing_document} of the same recording"
            ))),
        }
    }

    async fn store_state_change(
        &self,
        tx: &mut Tx,
        event: &Envelope,
        raw: &str,
        now: i64,
    ) -> Result<EventOutcome, QueueError> {
        let text = |key: &str| {
            event
                .data
                .get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let (Some(recording_id), Some(state)) = (text("recordingId"), text("state")) else {
            return self
                .quarantine(
                    tx,
                    Some(&event.id),
                    event,
                    "RecordingStateChanged without data.recordingId or data.state",
                    raw,
                    now,
                )
                .await;
        };
        let change = StateChange {
            event_id: &event.id,
            recording_id,
            state,
            start_date_time: text("startDateTime"),
            server_call_id: text("serverCallId"),
            event_time: event.time.as_deref(),
            payload: raw,
        };
        intake::record_state_change(tx, &change, now).await?;
        tracing::info!(event_id = %event.id, recording_id, state, "recording state changed");
        Ok(EventOutcome::Accepted)
    }

    async fn quarantine(
        &self,
        tx: &mut Tx,
        event_id: Option<&str>,
        event: &Envelope,
        reason: &str,
        raw: &str,
        now: i64,
    ) -> Result<EventOutcome, QueueError> {
        let event_type = Some(event.event_type.as_str()).filter(|t| !t.is_empty());
        let id = intake::quarantine(tx, event_id, event_type, reason, raw, now).await?;
        if let Some(event_id) = event_id {
            intake::set_event_outcome(tx, event_id, EventOutcome::Quarantined, None).await?;
        }
        tracing::warn!(
            quarantine_id = id,
            event_id = event_id.unwrap_or(""),
            reason,
            "event quarantined"
        );
        Ok(EventOutcome::Quarantined)
    }

    /// Re-validates a quarantined event (after a configuration fix). On success its work is
    /// queued and the entry marked replayed; otherwise the entry stays, with the new reason returned.
    pub async fn replay_quarantined(
        &self,
        quarantine_id: i64,
    ) -> Result<Option<Result<(), String>>, QueueError> {
        let Some(payload): Option<String> = sqlx::query_scalar(
            "SELECT payload FROM quarantine WHERE id = $1 AND replayed_at IS NULL",
        )
        .bind(quarantine_id)
        .fetch_optional(self.db.pool())
        .await?
        else {
            return Ok(None);
        };
        let event = match envelope::parse_body(format!("[{payload}]").as_bytes()) {
            Ok(mut events) if events.len() == 1 => events.remove(0),
            _ => return Ok(Some(Err("the stored payload is not an event".into()))),
        };
        let now = now_millis();
        let mut tx = self.db.begin_write().await?;
        let outcome = match event.event_type.as_str() {
            envelope::RECORDING_FILE_STATUS_UPDATED => {
                intake::claim_event_id(
                    &mut tx,
                    &event.id,
                    &event.event_type,
                    EventOutcome::Accepted,
                    now,
                )
                .await?;
                self.queue_recording_files(&mut tx, &event, now).await?
            }
            other => Err(format!("event type `{other}` cannot be replayed")),
        };
        let label = match &outcome {
            Ok(()) => "accepted".to_owned(),
            Err(reason) => format!("still invalid: {reason}"),
        };
        let replayed_at = outcome.is_ok().then_some(now);
        sqlx::query("UPDATE quarantine SET replayed_at = $1, replay_outcome = $2 WHERE id = $3")
            .bind(replayed_at)
            .bind(&label)
            .bind(quarantine_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if outcome.is_ok() {
            self.wake.notify_one();
        }
        Ok(Some(outcome))
    }
}
