//! Delivering the outbox: per sink, claim due rows up to its concurrency, send each, record
//! the outcome; woken by a commit that wrote rows for the sink, a delivery ending, or a poll.
//! Each poll (and the start) also reads whether the sink is disabled and releases rows whose
//! lease lapsed, so a claim is one statement.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::http::Sent;
use super::{Events, Sink, Target, storage_queue};
use crate::queue::outbox::{self, Delivery, Outcome};
use crate::queue::{Db, now_millis};

/// Exponential backoff with jitter between delivery attempts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The wait after attempt number `attempts` failed.
    pub fn delay(&self, attempts: i64) -> Duration {
        ExponentialBuilder::new()
            .with_min_delay(self.initial)
            .with_max_delay(self.max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
            .nth(attempts.clamp(1, 64) as usize - 1)
            .unwrap_or(self.max)
    }
}

/// Delivers every sink's outbox until `shutdown`; deliveries under way then finish (each
/// is bounded by `events.request_timeout_secs`).
pub async fn run(events: Events, db: Db, shutdown: CancellationToken) {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "callvault".into());
    let owner = format!("{host}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let events = Arc::new(events);
    let mut sinks = JoinSet::new();
    for sink in events.sinks.clone() {
        sinks.spawn(run_sink(
            events.clone(),
            sink,
            db.clone(),
            owner.clone(),
            shutdown.clone(),
        ));
    }
    while sinks.join_next().await.is_some() {}
}

/// After a commit wakes a sink, how long it waits for the commits just behind it, so that one
/// claim takes a burst of rows rather than one transaction each.
const GATHER: Duration = Duration::from_millis(200);

/// A delivery's outcome on its way to the one transaction that records a burst of them; the
/// permit goes back once it is recorded, so the next claim sees the row finished.
type Ended = (Delivery, Outcome, OwnedSemaphorePermit);

async fn run_sink(
    events: Arc<Events>,
    sink: Arc<Sink>,
    db: Db,
    owner: String,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(sink.concurrency));
    let recorded = Arc::new(Notify::new());
    let (ended, outcomes) = mpsc::unbounded_channel::<Ended>();
    let recorder = tokio::spawn(record_outcomes(
        db.clone(),
        sink.clone(),
        outcomes,
        recorded.clone(),
    ));
    let mut deliveries = JoinSet::new();
    let mut gather = false;
    // The persisted state is read at start, then on every poll, so a sink enabled by an
    // operator (or disabled by another replica) is seen within one poll interval.
    let mut polled = true;
    while !shutdown.is_cancelled() {
        while deliveries.try_join_next().is_some() {}
        if gather {
            tokio::time::sleep(GATHER).await;
        }
        if polled || sink.disabled.load(Ordering::Relaxed) {
            refresh_disabled(&db, &sink).await;
        }
        if polled {
            release_lapsed(&db, &sink).await;
        }
        let free = permits.available_permits();
        if free > 0 && !sink.disabled.load(Ordering::Relaxed) {
            let now = now_millis();
            let lease_until = now + events.lease.as_millis() as i64;
            match outbox::claim(&db, &sink.name, &owner, free, lease_until, now).await {
                Ok(claimed) => {
                    for delivery in claimed {
                        let permit = permits
                            .clone()
                            .try_acquire_owned()
                            .expect("claimed no more than the free permits");
                        let (events, sink, ended, db) =
                            (events.clone(), sink.clone(), ended.clone(), db.clone());
                        deliveries.spawn(async move {
                            let outcome = deliver(&events, &sink, &db, &delivery).await;
                            let _ = ended.send((delivery, outcome, permit));
                        });
                    }
                }
                Err(err) => {
                    tracing::warn!(sink = %sink.name, error = %err, "cannot claim events to deliver")
                }
            }
        }
        (gather, polled) = tokio::select! {
            _ = shutdown.cancelled() => (false, false),
            _ = sink.wake.notified() => (true, false),
            _ = recorded.notified() => (false, false),
            _ = tokio::time::sleep(events.poll_interval) => (false, true),
        };
    }
    while deliveries.join_next().await.is_some() {}
    drop(ended);
    let _ = recorder.await;
}

/// Puts the sink's rows whose dispatcher died back to pending.
async fn release_lapsed(db: &Db, sink: &Sink) {
    match outbox::release_lapsed(db, &sink.name, now_millis()).await {
        Ok(0) => {}
        Ok(released) => {
            tracing::warn!(sink = %sink.name, released, "events whose delivery lease lapsed are due again")
        }
        Err(err) => {
            tracing::warn!(sink = %sink.name, error = %err, "cannot release events whose lease lapsed")
        }
    }
}

/// Takes the sink's disabled state from the database; on an error the state stays as it was.
async fn refresh_disabled(db: &Db, sink: &Sink) {
    match outbox::is_disabled(db, &sink.name).await {
        Ok(disabled) => {
            let was = sink.disabled.swap(disabled, Ordering::Relaxed);
            if was && !disabled {
                tracing::info!(sink = %sink.name, "sink enabled again; delivering its pending events");
            } else if !was && disabled {
                tracing::error!(sink = %sink.name, "sink is DISABLED (its receiver answered 410 Gone); enable it with `callvault events enable-sink {}`", sink.name);
            }
        }
        Err(err) => {
            tracing::warn!(sink = %sink.name, error = %err, "cannot read whether the sink is disabled")
        }
    }
}

/// Records outcomes as they come, every one waiting at that moment in one transaction.
async fn record_outcomes(
    db: Db,
    sink: Arc<Sink>,
    mut outcomes: mpsc::UnboundedReceiver<Ended>,
    recorded: Arc<Notify>,
) {
    while let Some(first) = outcomes.recv().await {
        let mut batch = vec![first];
        while batch.len() < 256
            && let Ok(more) = outcomes.try_recv()
        {
            batch.push(more);
        }
        let rows: Vec<(Delivery, Outcome)> = batch
            .iter()
            .map(|(delivery, outcome, _)| (delivery.clone(), outcome.clone()))
            .collect();
        match outbox::finish_many(&db, &rows, now_millis()).await {
            Ok(held) => {
                for ((delivery, _), held) in rows.iter().zip(held) {
                    if !held {
                        tracing::warn!(sink = %sink.name, event_id = %delivery.event_id, "event lease lost before its outcome was recorded; it will be delivered again");
                    }
                }
            }
            Err(err) => {
                tracing::warn!(sink = %sink.name, events = rows.len(), error = %err, "cannot record deliveries; those events will be delivered again once their leases lapse")
            }
        }
        drop(batch);
        recorded.notify_one();
    }
}

/// Sends one event and decides what becomes of its row.
async fn deliver(events: &Events, sink: &Sink, db: &Db, delivery: &Delivery) -> Outcome {
    let sent = match &sink.target {
        Target::Webhook(webhook) => webhook.send(&delivery.event_id, &delivery.body).await,
        Target::StorageQueue(queue) => queue.send(&storage_queue::fit(&delivery.body)).await,
        Target::EventGridTopic(topic) => topic.send(&delivery.body).await,
    };
    let now = now_millis();
    let outcome = match sent {
        Sent::Delivered => Outcome::Delivered,
        Sent::Retry { error, .. } if delivery.attempts >= events.max_attempts => Outcome::Failed {
            error: format!("gave up after {} attempts: {error}", delivery.attempts),
        },
        Sent::Retry { error, after } => {
            let wait = events
                .backoff
                .delay(delivery.attempts)
                .max(after.unwrap_or_default().min(events.backoff.max));
            Outcome::Retry {
                next_attempt_at: now + wait.as_millis() as i64,
                error,
            }
        }
        Sent::Gone { error } => {
            sink.disabled.store(true, Ordering::Relaxed);
            tracing::error!(
                sink = %sink.name,
                event_id = %delivery.event_id,
                error = %error,
                "the sink's receiver answered 410 Gone: this sink is DISABLED and sends nothing until an operator enables it (`callvault events enable-sink {}` or POST /admin/events/sinks/{}/enable); its events wait in the outbox",
                sink.name,
                sink.name
            );
            if let Err(err) = outbox::disable_sink(db, &sink.name, 410, &error, now).await {
                tracing::error!(sink = %sink.name, error = %err, "cannot record that the sink is disabled; it stays disabled in this process only");
            }
            Outcome::Release {
                next_attempt_at: now,
                error,
            }
        }
        Sent::Refused { error } => Outcome::Failed { error },
    };
    match &outcome {
        Outcome::Delivered => {
            tracing::debug!(sink = %sink.name, event_id = %delivery.event_id, attempts = delivery.attempts, "event delivered")
        }
        Outcome::Retry { error, .. } => {
            tracing::warn!(sink = %sink.name, event_id = %delivery.event_id, attempts = delivery.attempts, error = %error, "event delivery failed; will retry")
        }
        Outcome::Failed { error } => {
            tracing::error!(sink = %sink.name, event_id = %delivery.event_id, attempts = delivery.attempts, error = %error, "event delivery failed for good; replay it with `callvault events replay`")
        }
        Outcome::Release { .. } => {}
    }
    outcome
}
