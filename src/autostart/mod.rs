//! Recording on policy: the starter that starts the recording of every established call
//! leg, once.
//!
//! Intake commits the intent (`start_state = pending`) with the event; this claims due
//! starts under a lease (so two replicas never both call), calls the preview control API
//! with a `Repeatability-Request-ID` derived from the leg id (so even a call repeated after
//! a lost answer or a lapsed lease returns the same recording), and records the outcome.

mod decide;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::acs::control::{CallLocator, RecordingControl, StartOptions};
use crate::call_leg::repeatability_request_id;
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::queue::call_legs::{self, ClaimedStart, StartOutcome};
use crate::queue::{Db, now_millis};

pub use decide::Retry;

/// Starts claimed at once by one starter.
const BATCH: usize = 4;

/// The starter of one process.
pub struct Starter {
    db: Db,
    control: RecordingControl,
    options: StartOptions,
    retry: Retry,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
    poll: Duration,
    lease: Duration,
    owner: String,
}

impl Starter {
    /// The starter `[recording]` describes, calling ACS with `[acs]`'s credentials; `wake`
    /// is notified by intake when a start becomes owed.
    pub fn new(
        settings: &Settings,
        db: Db,
        metrics: Arc<Metrics>,
        wake: Arc<Notify>,
    ) -> Result<Self, crate::config::ConfigError> {
        let recording = &settings.recording;
        let timeout = Duration::from_secs(settings.acs.request_timeout_secs.max(1));
        let control = RecordingControl::new(settings.acs_credentials()?)
            .and_then(|control| control.with_timeout(timeout))
            .map_err(|err| crate::config::ConfigError::Invalid {
                key: "acs.connection_string",
                message: err.to_string(),
            })?;
        let options = StartOptions {
            recording_state_callback_uri: Some(recording.callback_uri.trim().to_owned()),
            recording_content_type: Some(recording.content.clone()),
            recording_channel_type: Some(recording.channel.clone()),
            recording_format_type: Some(recording.format.clone()),
            ..StartOptions::default()
        };
        let host = hostname();
        Ok(Self {
            db,
            control,
            options,
            retry: Retry {
                max_attempts: i64::from(recording.max_attempts),
                initial: Duration::from_millis(recording.backoff_initial_ms),
                max: Duration::from_millis(recording.backoff_max_ms),
            },
            metrics,
            wake,
            poll: Duration::from_millis(settings.worker.poll_interval_ms.max(10)),
            // Longer than any one request may take, so a live call never loses its lease.
            lease: (timeout * 2).max(Duration::from_secs(10)),
            owner: format!("{host}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
        })
    }

    /// Claims and makes due starts until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(owner = %self.owner, "recording starter running");
        while !shutdown.is_cancelled() {
            let claimed = match self.step(&shutdown).await {
                Ok(claimed) => claimed,
                Err(err) => {
                    tracing::warn!(error = %err, "recording starter could not claim starts");
                    0
                }
            };
            if claimed == BATCH {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
    }

    /// Claims up to a batch of due starts and makes them; answers how many it claimed.
    pub async fn step(
        &self,
        shutdown: &CancellationToken,
    ) -> Result<usize, crate::queue::QueueError> {
        let now = now_millis();
        let lease_until = now + self.lease.as_millis() as i64;
        let claimed =
            call_legs::claim_starts(&self.db, &self.owner, BATCH, lease_until, now).await?;
        let count = claimed.len();
        let attempts = claimed
            .into_iter()
            .map(|start| self.attempt(start, shutdown));
        futures_util::future::join_all(attempts).await;
        Ok(count)
    }

    async fn attempt(&self, start: ClaimedStart, shutdown: &CancellationToken) {
        let locator = CallLocator::Conversation(start.conversation_id.clone());
        let options = StartOptions {
            repeatability_request_id: Some(repeatability_request_id(&start.call_leg_id)),
            repeatability_first_sent: chrono::DateTime::from_timestamp_millis(
                start.start_first_sent_at,
            ),
            ..self.options.clone()
        };
        let answer = tokio::select! {
            answer = self.control.start(&locator, &options) => Some(answer),
            _ = shutdown.cancelled() => None,
        };
        let now = now_millis();
        let outcome = match answer {
            Some(answer) => self.retry.decide(answer, start.start_attempts, now),
            None => StartOutcome::Release {
                error: "the starter stopped before ACS answered".into(),
            },
        };
        self.count(&start, &outcome);
        match call_legs::finish_start(&self.db, &start, &outcome, now).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(call_leg_id = %start.call_leg_id, "recording start lease lost before its outcome was recorded; the repeated start returns the same recording")
            }
            Err(err) => {
                tracing::warn!(call_leg_id = %start.call_leg_id, error = %err, "could not record a recording start; it is made again once its lease lapses")
            }
        }
    }

    fn count(&self, start: &ClaimedStart, outcome: &StartOutcome) {
        let leg = &start.call_leg_id;
        let attempts = start.start_attempts;
        match outcome {
            StartOutcome::Started { recording_id } => {
                Metrics::add(&self.metrics.recording_starts_started, 1);
                tracing::info!(call_leg_id = %leg, %recording_id, attempts, "recording started for an established call leg");
            }
            StartOutcome::Retry { error, .. } => {
                Metrics::add(&self.metrics.recording_starts_retried, 1);
                tracing::warn!(call_leg_id = %leg, attempts, %error, "recording start failed; retrying");
            }
            StartOutcome::Failed { error } => {
                Metrics::add(&self.metrics.recording_starts_failed, 1);
                tracing::error!(call_leg_id = %leg, attempts, %error, "recording start given up");
            }
            StartOutcome::Release { .. } => {}
        }
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "callvault".to_owned())
}
