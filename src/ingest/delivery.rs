//! Storing one webhook delivery: every event is first judged in memory (parsed, validated,
//! its quarantine payload prepared), then the delivery is written in one transaction that
//! only writes. Each event ends accepted, recognised as a duplicate, quarantined with its
//! reason, or counted as a type we do not act on.

use std::sync::Arc;

use super::envelope::Envelope;
use super::group_commit::{self, GroupCommit};
use super::plan::{Action, Plan, Planned, StateChangeFields};
use crate::acs::UrlGuard;
use crate::http_error::ApiError;
use crate::metrics::Metrics;
use crate::queue::intake::{self, Enqueued, EventOutcome, Quarantined, StateChange};
use crate::queue::{Db, QueueError, Tx, call_legs};
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
    /// Shares transactions between concurrent deliveries; without it each delivery
    /// commits alone.
    pub group_commit: Option<GroupCommit>,
    /// Recording on policy: an established call leg owes a recording start.
    pub auto_start: bool,
    /// Wakes this process's recording starter when a start becomes owed.
    pub start_wake: Arc<tokio::sync::Notify>,
}

/// Why a delivery was not stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// This delivery's own writes failed (and were undone).
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The transaction this delivery shared with others failed as a whole.
    #[error("the ingest transaction failed: {0}")]
    Batch(#[source] Arc<QueueError>),
    /// The process is shutting down, or the committer failed while writing this delivery.
    #[error("the ingest committer stopped before this delivery was committed")]
    Stopped,
}

impl StoreError {
    /// True when the sender should retry later (503) rather than the request being at fault.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Queue(err) => err.is_unavailable(),
            StoreError::Batch(err) => err.is_unavailable(),
            StoreError::Stopped => true,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Queue(err) => err.into(),
            err if err.is_unavailable() => {
                tracing::warn!(error = %err, "delivery not stored; the sender will retry");
                ApiError::unavailable(
                    "database_unavailable",
                    "the database is unavailable; retry later",
                )
            }
            err => {
                tracing::error!(error = %err, "database error");
                ApiError::internal("database error; see the server log")
            }
        }
    }
}

/// A delivery's writes, done: its counts and its first quarantined event.
pub(super) struct Stored {
    summary: DeliverySummary,
    first_quarantined: Option<FirstQuarantined>,
    starts_owed: usize,
}

/// Counts of one delivery, returned to the sender.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DeliverySummary {
    pub accepted: usize,
    pub duplicates: usize,
    pub quarantined: usize,
    pub ignored: usize,
    /// Events announcing an erased recording: recorded, nothing queued. Absent when none.
    #[serde(skip_serializing_if = "is_zero")]
    pub erased: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl DeliverySummary {
    fn count(&mut self, outcome: EventOutcome) {
        match outcome {
            EventOutcome::Accepted => self.accepted += 1,
            EventOutcome::Duplicate => self.duplicates += 1,
            EventOutcome::Quarantined => self.quarantined += 1,
            EventOutcome::Ignored => self.ignored += 1,
            EventOutcome::Erased => self.erased += 1,
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
    /// Recording starts that became owed (a call leg established with auto_start on).
    starts_owed: usize,
}

impl Written {
    fn plain(outcome: EventOutcome) -> Self {
        Self {
            outcome,
            quarantined: None,
            starts_owed: 0,
        }
    }
}

impl Intake {
    /// The intake `settings` describe, committing each delivery alone; `wake` is notified
    /// when work arrives.
    pub fn new(
        settings: &crate::config::Settings,
        db: Db,
        metrics: Arc<Metrics>,
        wake: Arc<tokio::sync::Notify>,
    ) -> Result<Self, crate::config::ConfigError> {
        Ok(Self {
            db,
            guard: settings.url_guard()?,
            acs_endpoint: settings.acs_credentials()?.endpoint,
            retention: chrono::Duration::hours(settings.acs.retention_hours as i64),
            metrics,
            wake,
            group_commit: None,
            auto_start: settings.recording.auto_start,
            start_wake: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// Starts a committer that lets concurrent deliveries share transactions.
    pub fn with_group_commit(mut self, limits: group_commit::Limits) -> Self {
        // The committer's own copy has no handle, so dropping every other copy stops it.
        self.group_commit = None;
        self.group_commit = Some(GroupCommit::start(self.clone(), limits));
        self
    }

    /// What the committer has done, when one runs.
    pub fn group_commit_stats(&self) -> Option<Arc<group_commit::CommitStats>> {
        self.group_commit
            .as_ref()
            .map(|group| group.stats().clone())
    }

    /// Stores every event of a delivery; returns only once the transaction holding them
    /// has committed, so the caller may answer 200.
    pub async fn store(&self, events: Vec<Envelope>) -> Result<DeliverySummary, StoreError> {
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
        let stored = match &self.group_commit {
            Some(group) => group.submit(planned).await?,
            None => group_commit::commit_alone(self, planned).await?,
        };
        let summary = stored.summary;
        self.count(received, &summary);
        log_delivery(received, &summary, stored.first_quarantined.as_ref());
        if summary.accepted > 0 {
            self.wake.notify_one();
        }
        if stored.starts_owed > 0 {
            self.start_wake.notify_one();
        }
        Ok(summary)
    }

    /// Writes one delivery's events in the caller's transaction.
    pub(super) async fn write_delivery(
        &self,
        tx: &mut Tx,
        planned: &[Planned],
        now: i64,
    ) -> Result<Stored, QueueError> {
        let mut summary = DeliverySummary::default();
        let mut first_quarantined = None;
        let mut starts_owed = 0;
        for event in planned {
            let written = self.write(tx, event, now).await?;
            summary.count(written.outcome);
            first_quarantined = first_quarantined.or(written.quarantined);
            starts_owed += written.starts_owed;
        }
        Ok(Stored {
            summary,
            first_quarantined,
            starts_owed,
        })
    }

    fn count(&self, received: usize, summary: &DeliverySummary) {
        let metrics = &self.metrics;
        Metrics::add(&metrics.events_received, received as u64);
        Metrics::add(&metrics.events_accepted, summary.accepted as u64);
        Metrics::add(&metrics.events_duplicate, summary.duplicates as u64);
        Metrics::add(&metrics.events_quarantined, summary.quarantined as u64);
        Metrics::add(&metrics.events_unknown_type, summary.ignored as u64);
        Metrics::add(&metrics.events_erased, summary.erased as u64);
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
                Announced::Queued => Ok(Written::plain(EventOutcome::Accepted)),
                Announced::Erased => Ok(Written::plain(EventOutcome::Erased)),
                Announced::IndexTaken(taken) => {
                    intake::set_event_outcome(tx, &event.id, EventOutcome::Quarantined, None)
                        .await?;
                    quarantine(tx, planned, Some(&event.id), &taken.to_string(), now).await
                }
            },
            Action::StateChange(fields) => {
                record_state_change(tx, &event.id, fields, now).await?;
                Ok(Written::plain(EventOutcome::Accepted))
            }
            Action::CallLeg(change) => {
                let recorded = call_legs::record(tx, change, self.auto_start, now).await?;
                tracing::debug!(event_id = %event.id, call_leg_id = %change.call_leg_id, state = %change.state, newest = recorded.newest, start_owed = recorded.start_owed, "call leg state changed");
                Ok(Written {
                    starts_owed: usize::from(recorded.start_owed),
                    ..Written::plain(EventOutcome::Accepted)
                })
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

/// What became of an announcement once the database had its say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Announced {
    /// Its chunks are queued and its event is linked to the recording.
    Queued,
    /// Known only to the database: the event is quarantined with this reason.
    IndexTaken(IndexTaken),
    /// The recording was erased; the event is recorded as `erased` and nothing is queued.
    Erased,
}

/// A chunk index already held by another document of the same recording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "chunk index {index} is already taken by document {} of the same recording",
    crate::quote::quote(.existing_document)
)]
pub(super) struct IndexTaken {
    index: u32,
    existing_document: String,
}

/// Queues an announcement's chunks and links its event to the recording.
pub(super) async fn enqueue(
    tx: &mut Tx,
    work: &Announcement,
    now: i64,
) -> Result<Announced, QueueError> {
    match intake::enqueue(tx, work, now).await? {
        Enqueued::Queued {
            recording,
            new_jobs,
        } => {
            intake::set_event_outcome(tx, &work.event_id, EventOutcome::Accepted, Some(recording))
                .await?;
            tracing::debug!(event_id = %work.event_id, call_id = %work.call_id, recording, chunks = work.chunks.len(), new_jobs, "recording files queued");
            Ok(Announced::Queued)
        }
        Enqueued::IndexConflict {
            index,
            existing_document,
        } => Ok(Announced::IndexTaken(IndexTaken {
            index,
            existing_document,
        })),
        Enqueued::Erased { recording } => {
            intake::set_event_outcome(tx, &work.event_id, EventOutcome::Erased, Some(recording))
                .await?;
            tracing::info!(event_id = %work.event_id, call_id = %work.call_id, recording, "event for an erased recording recorded and ignored");
            Ok(Announced::Erased)
        }
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
        starts_owed: 0,
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
        erased,
    } = *summary;
    match first {
        Some(first) => tracing::warn!(
            events,
            accepted,
            duplicates,
            quarantined,
            ignored,
            erased,
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
            erased,
            "delivery stored"
        ),
    }
}
