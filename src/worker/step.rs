//! One step of a worker: claim at most one due job, run its attempt to the end (lease renewed,
//! outcome recorded, manifest refreshed, source deleted when configured), and name what came of
//! it. The worker loop runs the same claim and attempt for every job it takes; tests step
//! until [`StepOutcome::Idle`] to drain the queue without polling.

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use futures_util::FutureExt;
use tokio_util::sync::CancellationToken;

use super::Worker;
use super::retry::TransferError;
use super::runner::lease_of;
use super::transfer;
use crate::metrics::Metrics;
use crate::queue::jobs::{self, Finish};
use crate::queue::{Job, QueueError, now_millis};

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// No job was due.
    Idle,
    /// The chunk is in the archive.
    Archived,
    /// The attempt failed; the job is due again later.
    Retried,
    /// The job failed for good; an operator may replay it.
    Failed,
    /// ACS no longer has the recording.
    Expired,
    /// Shutdown interrupted the attempt; the job was handed back to the queue.
    Released,
    /// Another claim owns the job now (this attempt's lease lapsed); nothing was recorded.
    LeaseLost,
    /// The outcome could not be written; the lease will lapse and the job run again.
    Unrecorded,
}

impl Worker {
    /// Claims at most one due job and runs its attempt to the end.
    pub async fn step(&self) -> Result<StepOutcome, QueueError> {
        let Some(job) = self.claim(1).await?.pop() else {
            return Ok(StepOutcome::Idle);
        };
        Ok(self.attempt(job, CancellationToken::new()).await)
    }

    /// Claims up to `count` due jobs, each under a lease of its own.
    pub(super) async fn claim(&self, count: usize) -> Result<Vec<Job>, QueueError> {
        let now = now_millis();
        let lease_until = now + self.options.lease.as_millis() as i64;
        // A lease names the claim, not just the process: should this process's own lease
        // lapse and the job be claimed again here, the first attempt must see it lost.
        let leases: Vec<String> = (0..count)
            .map(|_| {
                format!(
                    "{}/{}",
                    self.id,
                    &uuid::Uuid::new_v4().simple().to_string()[..8]
                )
            })
            .collect();
        jobs::claim_many(&self.ctx.db, &leases, lease_until, now).await
    }

    /// One attempt at one claimed job, with its lease renewed until the attempt ends.
    pub(super) async fn attempt(&self, job: Job, cancel: CancellationToken) -> StepOutcome {
        Metrics::add(&self.ctx.metrics.attempts, 1);
        let started = Instant::now();
        let lease_lost = CancellationToken::new();
        let renewal = self.keep_lease(&job, cancel.clone(), lease_lost.clone());
        let attempt =
            AssertUnwindSafe(transfer::archive_chunk(&self.ctx, &job, &cancel)).catch_unwind();
        let result = tokio::select! {
            result = attempt => result,
            never = renewal => match never {},
        };
        let result = result.unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned());
            Err(TransferError::Integrity(format!(
                "transfer panicked: {}",
                message.unwrap_or_default()
            )))
        });
        let now = now_millis();
        let outcome = match result {
            Ok(chunk) => Finish::Archived(chunk),
            Err(TransferError::Cancelled) => {
                if lease_lost.is_cancelled() {
                    tracing::warn!("lease lost to another worker; abandoning this attempt");
                    return StepOutcome::LeaseLost;
                }
                if let Err(err) = jobs::release(&self.ctx.db, &job, lease_of(&job), now).await {
                    tracing::warn!(error = %err, "could not release the job; its lease will lapse");
                    return StepOutcome::Unrecorded;
                }
                tracing::info!("transfer interrupted by shutdown; job released");
                return StepOutcome::Released;
            }
            Err(err) => self
                .options
                .retry
                .decide(&err, job.attempts, now >= job.deadline_at, now),
        };
        self.record(&job, outcome, started).await
    }
}
