//! `ingest.mode = "eventgrid_pull"`: events received from an Event Grid namespace topic's
//! queue subscription, for deployments that cannot expose an inbound endpoint. Each event
//! goes through the same intake as a webhook delivery; its lock is acknowledged only after
//! the transaction holding it committed, renewed while the intake runs, released with a
//! delay when the database failed, and rejected (to the subscription's dead letter) when
//! the intake quarantined it. Several replicas may receive from one subscription: the
//! namespace locks each event to one receiver, and dedup catches a redelivery.

pub mod client;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tokio_util::sync::CancellationToken;

use self::client::{FailedToken, PullClient, PullError, Received, Settle};
use super::delivery::Intake;
use super::envelope;
use crate::config::PullSettings;
use crate::metrics::Metrics;

/// The longest wait between failed receives.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// What to do with one received event once the intake has answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Committed (accepted, a duplicate, or a type we do not act on).
    Acknowledge,
    /// Quarantined: it can never be accepted.
    Reject,
    /// The database did not take it: later.
    Release,
}

/// Receives and settles events for as long as the process runs.
pub struct Puller {
    client: PullClient,
    intake: Intake,
    metrics: Arc<Metrics>,
    max_events: u32,
    max_wait: Duration,
    release_delay_secs: u64,
    renew_every: Duration,
}

impl Puller {
    pub fn new(settings: &PullSettings, intake: Intake) -> Result<Self, PullError> {
        let endpoint = settings
            .endpoint_url()
            .map_err(|err| PullError::Malformed(err.to_string()))?;
        let max_wait = Duration::from_secs(settings.max_wait_secs);
        let client = PullClient::new(
            &endpoint,
            settings.topic.trim(),
            settings.subscription.trim(),
            settings.access_key.clone(),
            // A receive holds the request open for up to max_wait.
            max_wait + Duration::from_secs(30),
        )?;
        Ok(Self {
            client,
            metrics: intake.metrics.clone(),
            intake,
            max_events: settings.max_events,
            max_wait,
            release_delay_secs: settings.release_delay_secs,
            renew_every: Duration::from_secs(settings.renew_lock_secs),
        })
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let received = tokio::select! {
                _ = shutdown.cancelled() => return,
                received = self.client.receive(self.max_events, self.max_wait) => received,
            };
            match received {
                Ok(batch) => {
                    backoff = FIRST_BACKOFF;
                    if !batch.is_empty() {
                        // Not cancelled midway: what is committed gets acknowledged.
                        self.take(batch).await;
                    }
                }
                Err(err) => {
                    Metrics::add(&self.metrics.pull_failures, 1);
                    tracing::warn!(error = %err, retry_in = ?backoff, "receiving from Event Grid failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Stores each received event, keeping their locks meanwhile, then settles them.
    async fn take(&self, batch: Vec<Received>) {
        let tokens: Vec<String> = batch.iter().map(|r| r.lock_token.clone()).collect();
        let verdicts = tokio::select! {
            verdicts = self.store_each(batch) => verdicts,
            () = self.keep_locks(&tokens) => unreachable!("renewing never ends by itself"),
        };
        let pick = |wanted: Verdict| -> Vec<String> {
            verdicts
                .iter()
                .filter(|(_, verdict)| *verdict == wanted)
                .map(|(token, _)| token.clone())
                .collect()
        };
        let acknowledge = pick(Verdict::Acknowledge);
        self.settle_retrying(Settle::Acknowledge, &acknowledge)
            .await;
        Metrics::add(&self.metrics.pull_acknowledged, acknowledge.len() as u64);
        let reject = pick(Verdict::Reject);
        self.settle_retrying(Settle::Reject, &reject).await;
        Metrics::add(&self.metrics.pull_rejected, reject.len() as u64);
        let release = pick(Verdict::Release);
        let delay_secs = self.release_delay_secs;
        self.settle_retrying(Settle::Release { delay_secs }, &release)
            .await;
        Metrics::add(&self.metrics.pull_released, release.len() as u64);
    }

    /// Each event as its own delivery: concurrent stores share one transaction through the
    /// group commit, and each gets its own verdict.
    async fn store_each(&self, batch: Vec<Received>) -> Vec<(String, Verdict)> {
        join_all(batch.into_iter().map(|received| async move {
            let verdict = self.store_one(&received).await;
            (received.lock_token, verdict)
        }))
        .await
    }

    async fn store_one(&self, received: &Received) -> Verdict {
        let body = serde_json::to_vec(&[&received.event]).unwrap_or_default();
        // An array of one element is always an event list; a non-object becomes an
        // envelope without a type, which the intake quarantines.
        let Ok(events) = envelope::parse_body(&body) else {
            return Verdict::Reject;
        };
        match self.intake.store(events).await {
            Ok(summary) if summary.quarantined > 0 => Verdict::Reject,
            Ok(_) => Verdict::Acknowledge,
            Err(err) => {
                tracing::warn!(
                    error = %err,
                    delivery_count = received.delivery_count,
                    "a received event was not stored; it is released for a later delivery"
                );
                Verdict::Release
            }
        }
    }

    /// Renews the locks every `renew_every`, forever: the caller stops it.
    async fn keep_locks(&self, tokens: &[String]) {
        loop {
            tokio::time::sleep(self.renew_every).await;
            match self.client.settle(Settle::RenewLock, tokens).await {
                Ok(failed) => self.count_failed("renewLock", &failed),
                Err(err) => {
                    Metrics::add(&self.metrics.pull_failures, 1);
                    tracing::warn!(error = %err, "renewing the locks of received events failed");
                }
            }
        }
    }

    /// Settles `tokens`, trying once more those that failed for a reason other than a lost
    /// lock. What still fails comes again after its lock lapses, and dedup recognises it.
    async fn settle_retrying(&self, how: Settle, tokens: &[String]) {
        let mut pending = tokens.to_vec();
        for attempt in 0..2 {
            if pending.is_empty() {
                return;
            }
            let failed = match self.client.settle(how, &pending).await {
                Ok(failed) => failed,
                Err(err) => {
                    Metrics::add(&self.metrics.pull_failures, 1);
                    tracing::warn!(error = %err, action = ?how, tokens = pending.len(), "settling received events failed");
                    continue;
                }
            };
            self.count_failed(&format!("{how:?}"), &failed);
            pending = failed
                .into_iter()
                .filter(|failed| !failed.is_lost() && attempt == 0)
                .map(|failed| failed.lock_token)
                .collect();
        }
    }

    fn count_failed(&self, action: &str, failed: &[FailedToken]) {
        if failed.is_empty() {
            return;
        }
        Metrics::add(&self.metrics.pull_failures, failed.len() as u64);
        for token in failed {
            tracing::warn!(
                action,
                code = %token.code,
                message = %crate::quote::quote(&token.message),
                "Event Grid could not settle a lock token; the event comes again once its lock lapses"
            );
        }
    }
}
