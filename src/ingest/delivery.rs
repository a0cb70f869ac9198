//! Storing one webhook delivery: every event is first judged in memory (parsed, validated,
//! its quarantine payload prepared), then the delivery is written in one transaction that
//! only writes. Each event ends accepted, recognised as a duplicate, quarantined with its
//! reason, or counted as a type we do not act on.

use std::sync::Arc;

use super::envelope::Envelope;
use super::plan::{Action, Plan, Planned, StateChangeFields};
use crate::acs::UrlGuard;
use crate::metrics::Metrics;
use crate::queue::intake::{self, Enqueued, EventOutcome, Quarantined, StateChange};
use crate::queue::{Db, QueueError, Tx, now_millis};
use crate::recording::Announcement;

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

/// The first quarantined event of a delivery, for its one log line.
struct FirstQuarantined {
    id: i64,
    reason: String,
}

/// The outcome of one event's writes.
struct Written {
    outcome: EventOutcome,
    quarantined: Option<FirstQuarantined>,
}

impl Written {
    fn plain(outcome: EventOutcome) -> Self {
        Self {
            outcome,
            quarantined: None,
        }
    }
}

impl Intake {
    /// Stores every event of a delivery and commits once, before the caller answers 200.
    pub async fn store(&self, events: Vec<Envelope>) -> Result<DeliverySummary, QueueError> {
        let received = events.len();
        // Judging 4 MiB of events takes tens of milliseconds of CPU: off the HTTP worker, so
        // the requests it serves meanwhile (probes, other deliveries) are not held up.
        let intake = self.clone();
        let planned: Vec<Planned> = on_blocking_pool(move || {
            let now = chrono::Utc::now();
            events
                .into_iter()
                .map(|event| Planned::new(event, &intake, now))
                .collect()
        })
        .await;
        let now = now_millis();
        let mut tx = self.db.begin_write().await?;
        let mut summary = DeliverySummary::default();
        let mut first_quarantined = None;
        for event in &planned {
            let written = self.write(&mut tx, event, now).await?;
            summary.count(written.outcome);
            first_quarantined = first_quarantined.or(written.quarantined);
        }
        tx.commit().await?;
        // Freeing a 4 MiB tree of JSON values is milliseconds of work too.
        tokio::task::spawn_blocking(move || drop(planned));
        self.count(received, &summary);
        log_delivery(received, &summary, first_quarantined.as_ref());
        if summary.accepted > 0 {
            self.wake.notify_one();
        }
        Ok(summary)
    }

    fn count(&self, received: usize, summary: &DeliverySummary) {
        let metrics = &self.metrics;
        Metrics::add(&metrics.events_received, received as u64);
        Metrics::add(&metrics.events_accepted, summary.accepted as u64);
        Metrics::add(&metrics.events_duplicate, summary.duplicates as u64);
        Metrics::add(&metrics.events_quarantined, summary.quarantined as u64);
        Metrics::add(&metrics.events_unknown_type, summary.ignored as u64);
    }

    async fn write(&self, tx: &mut Tx, planned: &Planned, now: i64) -> Result<Written, QueueError> {
        let event = &planned.event;
        let action = match &planned.plan {
            Plan::Unidentified(reason) => return quarantine(tx, planned, None, reason, now).await,
            Plan::Identified(action) => action,
        };
        if !intake::claim_event_id(tx, &event.id, &event.event_type, action.claimed_as(), now)
            .await?
        {
            return Ok(Written::plain(EventOutcome::Duplicate));
        }
        match action {
            Action::Ignored => Ok(Written::plain(EventOutcome::Ignored)),
            Action::Invalid(reason) => quarantine(tx, planned, Some(&event.id), reason, now).await,
            Action::Files(work) => match enqueue(tx, work, now).await? {
                Ok(()) => Ok(Written::plain(EventOutcome::Accepted)),
                Err(reason) => {
                    intake::set_event_outcome(tx, &event.id, EventOutcome::Quarantined, None)
                        .await?;
                    quarantine(tx, planned, Some(&event.id), &reason, now).await
                }
            },
            Action::StateChange(fields) => {
                record_state_change(tx, &event.id, fields, now).await?;
                Ok(Written::plain(EventOutcome::Accepted))
            }
        }
    }
}

/// Runs CPU-bound work on tokio's blocking pool; a panic there is re-raised here.
pub(super) async fn on_blocking_pool<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(err) => std::panic::resume_unwind(err.into_panic()),
    }
}

/// Queues an announcement's chunks and links its event to the recording; `Err(reason)` when
/// a chunk index is already taken by another document (known only to the database).
pub(super) async fn enqueue(
    tx: &mut Tx,
    work: &Announcement,
    now: i64,
) -> Result<Result<(), String>, QueueError> {
    match intake::enqueue(tx, work, now).await? {
        Enqueued::Queued {
            recording,
            new_jobs,
        } => {
            intake::set_event_outcome(tx, &work.event_id, EventOutcome::Accepted, Some(recording))
                .await?;
            tracing::debug!(event_id = %work.event_id, call_id = %work.call_id, recording, chunks = work.chunks.len(), new_jobs, "recording files queued");
            Ok(Ok(()))
        }
        Enqueued::IndexConflict {
            index,
            existing_document,
        } => Ok(Err(format!(
            "chunk index {index} is already taken by document {} of the same recording",
            crate::quote::quote(&existing_document)
        ))),
    }
}

async fn record_state_change(
    tx: &mut Tx,
    event_id: &str,
    fields: &StateChangeFields,
    now: i64,
) -> Result<(), QueueError> {
    let change = StateChange {
        event_id,
        recording_id: &fields.recording_id,
        state: &fields.state,
        start_date_time: fields.start_date_time.as_deref(),
        server_call_id: fields.server_call_id.as_deref(),
        event_time: fields.event_time.as_deref(),
        payload: &fields.payload,
    };
    intake::record_state_change(tx, &change, now).await?;
    tracing::debug!(event_id, recording_id = %fields.recording_id, state = %fields.state, "recording state changed");
    Ok(())
}

async fn quarantine(
    tx: &mut Tx,
    planned: &Planned,
    event_id: Option<&str>,
    reason: &str,
    now: i64,
) -> Result<Written, QueueError> {
    let event_type = Some(planned.event.event_type.as_str()).filter(|t| !t.is_empty());
    let payload = planned.stored_payload();
    let entry = Quarantined {
        event_id,
        event_type,
        reason,
        payload: &payload,
    };
    let id = intake::quarantine(tx, &entry, now).await?;
    Ok(Written {
        outcome: EventOutcome::Quarantined,
        quarantined: Some(FirstQuarantined {
            id,
            reason: reason.to_owned(),
        }),
    })
}

/// One line per delivery, whatever its size: counts, and the first reason when events were
/// quarantined (the rest are in `/admin/quarantine`).
fn log_delivery(events: usize, summary: &DeliverySummary, first: Option<&FirstQuarantined>) {
    let DeliverySummary {
        accepted,
        duplicates,
        quarantined,
        ignored,
    } = *summary;
    match first {
        Some(first) => tracing::warn!(
            events,
            accepted,
            duplicates,
            quarantined,
            ignored,
            first_quarantine_id = first.id,
            first_reason = %first.reason,
            "delivery stored; events quarantined, see /admin/quarantine"
        ),
        None => tracing::info!(
            events,
            accepted,
            duplicates,
            quarantined,
            ignored,
            "delivery stored"
        ),
    }
}
