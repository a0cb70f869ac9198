//! The worker loop: up to `concurrency` transfers at once, woken by ingest or a poll timer,
//! each transfer holding a lease that a side task keeps renewing.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::retry::RetryPolicy;
use super::step::StepOutcome;
use super::{WorkerContext, completeness, manifest};
use crate::config::WorkerSettings;
use crate::metrics::Metrics;
use crate::queue::jobs::{self, Finish};
use crate::queue::{Job, now_millis, recordings};

/// Tuning of one worker process.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub concurrency: usize,
    pub lease: Duration,
    pub poll_interval: Duration,
    pub retry: RetryPolicy,
    pub delete_source_after_archive: bool,
    /// `verify.duration_tolerance_ms`, for the duration check of each manifest written.
    pub duration_tolerance_ms: u64,
}

impl WorkerOptions {
    /// The tuning that `[worker]` describes.
    pub fn from_settings(worker: &WorkerSettings) -> Self {
        Self {
            concurrency: worker.concurrency,
            lease: Duration::from_secs(worker.lease_secs),
            poll_interval: Duration::from_millis(worker.poll_interval_ms),
            retry: RetryPolicy {
                max_attempts: i64::from(worker.max_attempts),
                initial: Duration::from_millis(worker.backoff_initial_ms),
                max: Duration::from_millis(worker.backoff_max_ms),
            },
            delete_source_after_archive: worker.delete_source_after_archive,
            duration_tolerance_ms: DEFAULT_DURATION_TOLERANCE_MS,
        }
    }
}

/// The default of `verify.duration_tolerance_ms`, until a caller sets the configured one.
pub const DEFAULT_DURATION_TOLERANCE_MS: u64 = 5000;

/// How often recordings whose manifest write was interrupted are looked for.
const MANIFEST_SWEEP: Duration = Duration::from_secs(60);

pub struct Worker {
    pub(super) ctx: WorkerContext,
    pub(super) options: WorkerOptions,
    /// Unique per process, so a lease names its holder.
    pub(super) id: String,
    wake: Arc<Notify>,
}

impl Worker {
    pub fn new(ctx: WorkerContext, options: WorkerOptions, wake: Arc<Notify>) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".into());
        let id = format!("{host}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        Self {
            ctx,
            options,
            id,
            wake,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs until `shutdown` fires; in-flight transfers are then aborted and their jobs released.
    pub async fn run(self, shutdown: CancellationToken) {
        let me = Arc::new(self);
        tracing::info!(worker = %me.id, concurrency = me.options.concurrency, "worker started");
        let slots = Arc::new(Semaphore::new(me.options.concurrency));
        let mut transfers = JoinSet::new();
        let mut last_sweep: Option<Instant> = None;
        loop {
            while let Some(done) = transfers.try_join_next() {
                if let Err(err) = done {
                    tracing::error!(error = %err, "transfer task ended abnormally");
                }
            }
            if last_sweep.is_none_or(|at| at.elapsed() >= MANIFEST_SWEEP) {
                me.sweep_manifests().await;
                last_sweep = Some(Instant::now());
            }
            let first = tokio::select! {
                _ = shutdown.cancelled() => break,
                slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            };
            // Every slot free now is filled by the same claim: one statement and one commit
            // for several jobs.
            let mut free = vec![first];
            while let Ok(slot) = slots.clone().try_acquire_owned() {
                free.push(slot);
            }
            match me.claim(free.len()).await {
                Ok(claimed) => {
                    let starved = claimed.len() < free.len();
                    for (job, slot) in claimed.into_iter().zip(free.drain(..)) {
                        let me = me.clone();
                        let cancel = shutdown.child_token();
                        let span = tracing::info_span!(
                            "transfer",
                            job_id = job.id,
                            recording = job.recording_id,
                            chunk_index = job.chunk_index,
                            attempt = job.attempts
                        );
                        transfers.spawn(
                            async move {
                                me.attempt(job, cancel).await;
                                drop(slot);
                            }
                            .instrument(span),
                        );
                    }
                    drop(free);
                    if starved {
                        me.idle(&shutdown).await;
                    }
                }
                Err(err) => {
                    drop(free);
                    tracing::warn!(error = %err, "cannot claim jobs; the database may be unavailable");
                    me.idle(&shutdown).await;
                }
            }
        }
        tracing::info!(worker = %me.id, in_flight = transfers.len(), "worker stopping; releasing in-flight jobs");
        while transfers.join_next().await.is_some() {}
        tracing::info!(worker = %me.id, "worker stopped");
    }

    async fn idle(&self, shutdown: &CancellationToken) {
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = self.wake.notified() => {}
            _ = tokio::time::sleep(self.options.poll_interval) => {}
        }
    }

    async fn sweep_manifests(&self) {
        match recordings::stale_manifests(&self.ctx.db).await {
            Ok(ids) => {
                for id in ids {
                    if let Err(err) = self.refresh_manifest(id).await {
                        tracing::warn!(recording = id, error = %err, "manifest refresh failed; will try again");
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "cannot look for stale manifests"),
        }
    }

    /// Writes the manifest if the recording is complete, then checks its durations.
    async fn refresh_manifest(&self, recording: i64) -> Result<(), manifest::ManifestError> {
        if let Some(written) = manifest::refresh(&self.ctx.db, &self.ctx.archive, recording).await?
        {
            completeness::check(
                &self.ctx,
                recording,
                &written,
                self.options.duration_tolerance_ms,
            )
            .await?;
        }
        Ok(())
    }

    /// Renews the lease every third of its length; cancels the transfer if it is lost.
    pub(super) async fn keep_lease(
        &self,
        job: &Job,
        transfer: CancellationToken,
        lost: CancellationToken,
    ) -> Infallible {
        let every = self.options.lease / 3;
        loop {
            tokio::select! {
                // Once cancelled, the transfer returns promptly and this future is dropped.
                _ = transfer.cancelled() => return std::future::pending().await,
                _ = tokio::time::sleep(every) => {}
            }
            let until = now_millis() + self.options.lease.as_millis() as i64;
            match jobs::renew(&self.ctx.db, job.id, lease_of(job), until).await {
                Ok(true) => {}
                Ok(false) => {
                    lost.cancel();
                    transfer.cancel();
                }
                // A database hiccup is not a lost lease; try again next tick.
                Err(err) => tracing::warn!(job_id = job.id, error = %err, "lease renewal failed"),
            }
        }
    }

    /// Counts and logs the attempt's outcome, writes it, then refreshes the manifest and
    /// deletes the source of an archived chunk.
    pub(super) async fn record(&self, job: &Job, outcome: Finish, started: Instant) -> StepOutcome {
        let metrics = &self.ctx.metrics;
        let seconds = started.elapsed().as_secs_f64();
        match &outcome {
            Finish::Archived(chunk) => {
                Metrics::add(&metrics.attempts_archived, 1);
                Metrics::add(
                    &metrics.bytes_archived,
                    chunk.media_bytes + chunk.metadata_bytes,
                );
                metrics.observe_transfer(seconds);
                tracing::info!(bytes = chunk.media_bytes, sha256 = %chunk.media_sha256, seconds, "chunk archived");
            }
            Finish::Retry {
                error,
                next_attempt_at,
            } => {
                Metrics::add(&metrics.attempts_retried, 1);
                let in_ms = next_attempt_at - now_millis();
                tracing::warn!(error = %error, retry_in_ms = in_ms, "attempt failed; will retry");
            }
            Finish::Failed { error } => {
                Metrics::add(&metrics.attempts_failed, 1);
                tracing::error!(error = %error, "job failed; replay it once the cause is fixed");
            }
            Finish::Expired { error } => {
                Metrics::add(&metrics.attempts_expired, 1);
                tracing::error!(error = %error, "job expired: ACS no longer has the recording");
            }
        }
        match jobs::finish(&self.ctx.db, job, lease_of(job), &outcome, now_millis()).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(
                    "lease was lost before the outcome was recorded; another worker owns the job"
                );
                return StepOutcome::LeaseLost;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot record the outcome; the lease will lapse and the job run again");
                return StepOutcome::Unrecorded;
            }
        }
        match &outcome {
            Finish::Archived(chunk) => {
                if let Err(err) = self.refresh_manifest(job.recording_id).await {
                    tracing::warn!(error = %err, "manifest not written yet; the sweep will retry");
                }
                if self.options.delete_source_after_archive {
                    self.delete_source(job, chunk).await;
                }
                StepOutcome::Archived
            }
            Finish::Retry { .. } => StepOutcome::Retried,
            Finish::Failed { .. } => StepOutcome::Failed,
            Finish::Expired { .. } => StepOutcome::Expired,
        }
    }

    /// Deletes the chunk at ACS, but only after re-reading the archived object and matching its sha256.
    async fn delete_source(&self, job: &Job, chunk: &jobs::ArchivedChunk) {
        let Some(url) = job.delete_url.as_deref() else {
            return;
        };
        let key = crate::storage::layout::object_key(&chunk.media_key);
        match self.ctx.archive.digest_of(&key).await {
            Ok(Some(digest))
                if digest.sha256 == chunk.media_sha256 && digest.bytes == chunk.media_bytes => {}
            other => {
                tracing::warn!(
                    ?other,
                    "archived object does not verify; the source is kept at ACS"
                );
                return;
            }
        }
        // The row is read back from the database: only a GA deleteLocation of this job's own
        // documentId may receive a DELETE, checked right before it is sent.
        let url = match self.ctx.guard.stored_delete(url, &job.document_id) {
            Ok(url) => url,
            Err(err) => {
                tracing::warn!(error = %err, "refusing to send DELETE; the source is kept at ACS");
                return;
            }
        };
        match self.ctx.acs.delete(&url).await {
            Ok(()) => {
                let _ = jobs::mark_source_deleted(&self.ctx.db, job.id, now_millis()).await;
                tracing::info!("source deleted at ACS");
            }
            Err(err) => {
                tracing::warn!(error = %err, "could not delete the source at ACS; it expires on its own")
            }
        }
    }
}

/// The lease this attempt holds, as the claim recorded it.
pub(super) fn lease_of(job: &Job) -> &str {
    job.lease_owner.as_deref().unwrap_or_default()
}
