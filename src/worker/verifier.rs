//! The scheduled verifier: re-reads archived recordings in full, the one verified longest ago
//! first, at `verify.bytes_per_hour`, and keeps each recording's last verification in the
//! database for the admin API. A failure is logged, counted (`callvault_verify_failures_total`)
//! and announced (`verify_failed`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::verify_pacing::Pacer;
use crate::audit::{self, Action, Actor, AuditEntry};
use crate::metrics::Metrics;
use crate::queue::integrity::{self, VerifyResult};
use crate::queue::outbox::{FailedObject, ObjectFacts, VerifyFailure};
use crate::queue::{Db, QueueError, now_millis};
use crate::storage::layout::object_key;
use crate::storage::verify::{ObjectCheck, Status, Summary, verify_recording};
use crate::storage::{Archive, ObjectDigest};

/// At most this much of what a verification found is kept with the recording.
pub const MAX_DETAIL_BYTES: usize = 2000;

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyStep {
    /// No recording has a manifest yet.
    Idle,
    Verified {
        recording: i64,
        result: VerifyResult,
        /// Media and metadata bytes of the recording: what the pacer charges.
        bytes: u64,
    },
}

pub struct Verifier {
    db: Db,
    archive: Archive,
    metrics: Arc<Metrics>,
    pacer: Pacer,
    /// How long to wait when there is nothing to verify.
    idle: Duration,
    /// The current round over the archive: when it began and what it has read.
    round_started_at: i64,
    round_recordings: u64,
    round_bytes: u64,
}

impl Verifier {
    /// `bytes_per_hour` must be positive.
    pub fn new(
        db: Db,
        archive: Archive,
        metrics: Arc<Metrics>,
        bytes_per_hour: u64,
        idle: Duration,
    ) -> Self {
        Self {
            db,
            archive,
            metrics,
            pacer: Pacer::new(bytes_per_hour),
            idle,
            round_started_at: now_millis(),
            round_recordings: 0,
            round_bytes: 0,
        }
    }

    /// Verifies the recording verified longest ago and records the outcome. Does not wait for
    /// the budget: [`Verifier::run`] does.
    pub async fn step(&mut self) -> Result<VerifyStep, QueueError> {
        let Some(next) = integrity::next_to_verify(&self.db).await? else {
            return Ok(VerifyStep::Idle);
        };
        if next
            .last_verified_at
            .is_some_and(|at| at >= self.round_started_at)
        {
            tracing::info!(
                recordings = self.round_recordings,
                bytes = self.round_bytes,
                seconds = (now_millis() - self.round_started_at) / 1000,
                "every archived recording has been re-read once this round; starting the next"
            );
            self.round_started_at = now_millis();
            self.round_recordings = 0;
            self.round_bytes = 0;
        }
        let bytes = u64::try_from(next.archived_bytes).unwrap_or(0);
        let mut failed = Vec::new();
        let (result, detail) =
            match verify_recording(&self.archive, &object_key(&next.manifest_key)).await {
                Ok(checks) => {
                    let mut summary = Summary::default();
                    checks.iter().for_each(|check| summary.add(check));
                    if summary.all_ok() {
                        (VerifyResult::Ok, None)
                    } else {
                        let found: Vec<String> = checks
                            .iter()
                            .filter(|check| check.status != Status::Ok)
                            .map(ToString::to_string)
                            .collect();
                        let detail = format!(
                            "{} mismatched, {} missing: {}",
                            summary.mismatched,
                            summary.missing,
                            found.join("; ")
                        );
                        failed = failed_objects(&checks);
                        (VerifyResult::Failed, Some(bounded(detail)))
                    }
                }
                Err(err) => (VerifyResult::Error, Some(bounded(err.to_string()))),
            };
        let now = now_millis();
        if result == VerifyResult::Failed {
            let failure = VerifyFailure {
                manifest_key: &next.manifest_key,
                verified_by: "verifier",
                depth: "full",
                objects: &failed,
            };
            integrity::record_failed_verification(
                &self.db,
                next.id,
                detail.as_deref(),
                &failure,
                now,
            )
            .await?;
        } else {
            integrity::record_verification(&self.db, next.id, result, detail.as_deref(), now)
                .await?;
        }
        Metrics::add(&self.metrics.verified_bytes, bytes);
        self.round_recordings += 1;
        self.round_bytes = self.round_bytes.saturating_add(bytes);
        match result {
            VerifyResult::Ok => {}
            VerifyResult::Failed => {
                Metrics::add(&self.metrics.verify_failures, 1);
                record_failure(
                    &self.db,
                    &Actor::system("verifier"),
                    next.id,
                    &next.manifest_key,
                    detail.as_deref(),
                )
                .await?;
                tracing::error!(
                    recording = next.id,
                    manifest = %next.manifest_key,
                    detail = detail.as_deref().unwrap_or_default(),
                    "scheduled verification FAILED: an archived object is missing or altered"
                );
            }
            VerifyResult::Error => tracing::warn!(
                recording = next.id,
                error = detail.as_deref().unwrap_or_default(),
                "scheduled verification could not read the archive; the recording is tried again next round"
            ),
        }
        Ok(VerifyStep::Verified {
            recording: next.id,
            result,
            bytes,
        })
    }

    /// Verifies until `shutdown`, keeping to the byte budget.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let origin = Instant::now();
        tracing::info!(
            bytes_per_hour = self.pacer.bytes_per_hour(),
            "scheduled verifier started"
        );
        loop {
            let wait = self.pacer.wait(origin.elapsed());
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
            let started = origin.elapsed();
            let idle = match self.step().await {
                Ok(VerifyStep::Verified {
                    recording,
                    result,
                    bytes,
                }) => {
                    self.pacer.charge(started, bytes);
                    tracing::info!(
                        recording,
                        result = result.as_str(),
                        bytes,
                        bytes_this_hour = self.pacer.bytes_this_hour(),
                        bytes_per_hour = self.pacer.bytes_per_hour(),
                        next_in_secs = self.pacer.wait(origin.elapsed()).as_secs(),
                        "recording verified"
                    );
                    false
                }
                Ok(VerifyStep::Idle) => true,
                Err(err) => {
                    tracing::warn!(error = %err, "scheduled verifier cannot use the database");
                    true
                }
            };
            if idle {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(self.idle) => {}
                }
            }
        }
        tracing::info!("scheduled verifier stopped");
    }
}

/// `text` cut to [`MAX_DETAIL_BYTES`] at a character boundary.
pub fn bounded(mut text: String) -> String {
    if text.len() > MAX_DETAIL_BYTES {
        let mut end = MAX_DETAIL_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// The objects of `checks` that are missing or altered, as a `verify_failed` event names them.
pub fn failed_objects(checks: &[ObjectCheck]) -> Vec<FailedObject> {
    let facts = |digest: &Option<ObjectDigest>| {
        digest.as_ref().map(|digest| ObjectFacts {
            bytes: digest.bytes,
            sha256: digest.sha256.clone(),
        })
    };
    checks
        .iter()
        .filter_map(|check| {
            let (problem, detail) = match &check.status {
                Status::Missing => ("missing", None),
                Status::Mismatch(detail) => ("mismatch", Some(detail.clone())),
                Status::Ok | Status::Unchecked(_) => return None,
            };
            Some(FailedObject {
                key: check.key.clone(),
                problem,
                detail,
                expected: facts(&check.expected),
                found: facts(&check.found),
            })
        })
        .collect()
}

/// The audit record of a verification that found a missing or altered object, by the
/// scheduled verifier or `callvault verify`. Into the inbox, like an archive: the verifier
/// runs beside the workers and should not wait for the chain's head.
pub async fn record_failure(
    db: &Db,
    actor: &Actor,
    recording: i64,
    manifest_key: &str,
    detail: Option<&str>,
) -> Result<(), QueueError> {
    let mut entry = AuditEntry::new(actor, Action::VerifyFailed).detail(serde_json::json!({
        "manifest": manifest_key,
        "found": detail,
    }));
    if let Some(name) = audit::recording_name(db, recording).await? {
        entry = entry.recording(recording, name);
    }
    audit::enqueue(db, entry).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_are_cut_at_a_character_boundary() {
        assert_eq!(bounded("short".into()), "short");
        let long = "é".repeat(MAX_DETAIL_BYTES);
        let cut = bounded(long);
        assert!(cut.len() <= MAX_DETAIL_BYTES + '…'.len_utf8());
        assert!(cut.ends_with('…'));
    }
}
