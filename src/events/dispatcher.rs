//! Delivering the outbox: per sink, claim due rows up to its concurrency, send each, record
//! the outcome; woken by a commit that wrote rows for the sink, a delivery ending, or a poll.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::sync::{Notify, Semaphore};
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

async fn run_sink(
    events: Arc<Events>,
    sink: Arc<Sink>,
    db: Db,
    owner: String,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(sink.concurrency));
    let ended = Arc::new(Notify::new());
    let mut deliveries = JoinSet::new();
    while !shutdown.is_cancelled() {
        while deliveries.try_join_next().is_some() {}
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
                        let (events, sink, db, ended) =
                            (events.clone(), sink.clone(), db.clone(), ended.clone());
                        deliveries.spawn(async move {
                            deliver(&events, &sink, &db, &delivery).await;
                            drop(permit);
                            ended.notify_one();
                        });
                    }
                }
                Err(err) => {
                    tracing::warn!(sink = %sink.name, error = %err, "cannot claim events to deliver")
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = sink.wake.notified() => {}
            _ = ended.notified() => {}
            _ = tokio::time::sleep(events.poll_interval) => {}
        }
    }
    while deliveries.join_next().await.is_some() {}
}

async fn deliver(events: &Events, sink: &Sink, db: &Db, delivery: &Delivery) {
    let sent = match &sink.target {
        Target::Webhook(webhook) => webhook.send(&delivery.event_id, &delivery.body).await,
        Target::StorageQueue(queue) => queue.send(&storage_queue::fit(&delivery.body)).await,
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
                "the sink's receiver answered 410 Gone: this sink is DISABLED and sends nothing until callvault restarts; its events wait in the outbox"
            );
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
    match outbox::finish(db, delivery, &outcome, now).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(sink = %sink.name, event_id = %delivery.event_id, "event lease lost before its outcome was recorded; it will be delivered again")
        }
        Err(err) => {
            tracing::warn!(sink = %sink.name, event_id = %delivery.event_id, error = %err, "cannot record the delivery; the event will be delivered again once its lease lapses")
        }
    }
}
