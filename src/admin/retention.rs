//! `retention.delete_after_days`: a scheduled job in `serve` erases the recordings that started
//! longer ago than that, oldest first, at most `retention.batch_size` a run, skipping those a
//! legal hold or a store lock keeps (logged and counted; a later run erases them once free).
//! `callvault retention plan` prints [`select`]'s answer, the very selection a run erases.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::erasure::{self, ErasureRequest, Refusal};
use super::operations::OpsError;
use super::views::rfc3339;
use crate::config::RetentionSettings;
use crate::metrics::Metrics;
use crate::queue::erasures::{self, Expired, Origin};
use crate::queue::{Db, recordings};
use crate::storage::{Archive, ObjectLock};

/// Recordings a selection reads past the ones it erases at most (held or locked ones it
/// skips), so a run over an archive full of holds stays bounded.
pub const MAX_SKIPPED_PER_RUN: usize = 10_000;

/// What the next run erases, and what it passes over and why.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Selection {
    /// The start a recording must be older than (RFC 3339).
    pub cutoff: String,
    pub erase: Vec<Planned>,
    pub skipped: Vec<Skipped>,
}

/// One recording the run erases.
#[derive(Debug, Clone, Serialize)]
pub struct Planned {
    #[serde(flatten)]
    pub recording: Expired,
    pub started: String,
}

/// One recording old enough that a hold or lock keeps.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    #[serde(flatten)]
    pub planned: Planned,
    pub refusal: Refusal,
}

/// The start before which a recording is erased.
pub fn cutoff(delete_after_days: u64, now: DateTime<Utc>) -> i64 {
    now.timestamp_millis() - delete_after_days as i64 * 86_400_000
}

/// The recordings the next run erases: not erased, started before the cutoff, oldest first,
/// at most `batch_size`, passing over (and listing) those a hold or lock keeps.
pub async fn select(
    db: &Db,
    lock: Option<ObjectLock>,
    settings: &RetentionSettings,
    now: DateTime<Utc>,
) -> Result<Selection, OpsError> {
    let before = cutoff(settings.delete_after_days, now);
    let mut selection = Selection {
        cutoff: rfc3339(before),
        ..Selection::default()
    };
    if settings.delete_after_days == 0 {
        return Ok(selection);
    }
    let wanted = settings.batch_size as usize;
    let page = (wanted + 1).min(1000) as i64;
    let mut after = None;
    loop {
        let rows = erasures::expired(db, before, after, page).await?;
        for row in &rows {
            after = Some((row.started, row.id));
            let planned = Planned {
                started: rfc3339(row.started),
                recording: row.clone(),
            };
            let Some(recording) = recordings::get(db, row.id).await? else {
                continue;
            };
            match erasure::refusal(db, lock, &recording, now.timestamp_millis()).await? {
                Some(refusal) => selection.skipped.push(Skipped { planned, refusal }),
                None => selection.erase.push(planned),
            }
            if selection.erase.len() >= wanted || selection.skipped.len() >= MAX_SKIPPED_PER_RUN {
                return Ok(selection);
            }
        }
        if (rows.len() as i64) < page {
            return Ok(selection);
        }
    }
}

/// What one run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    pub cutoff: String,
    /// Row ids of the recordings erased.
    pub erased: Vec<i64>,
    /// Held or locked: passed over.
    pub skipped: usize,
    /// Erasures that failed (a store outage): tried again next run.
    pub failed: usize,
    /// Erasures started earlier (a crash) and finished by this run.
    pub resumed: usize,
}

/// One run: finishes erasures left half-done, then erases [`select`]'s recordings.
pub async fn run_once(
    db: &Db,
    archive: &Archive,
    metrics: &Metrics,
    settings: &RetentionSettings,
    now: DateTime<Utc>,
) -> Result<RunSummary, OpsError> {
    let resumed = erasure::finish_unfinished(db, archive).await?;
    let selection = select(db, archive.object_lock(), settings, now).await?;
    let mut summary = RunSummary {
        cutoff: selection.cutoff.clone(),
        skipped: selection.skipped.len(),
        resumed,
        ..RunSummary::default()
    };
    for skipped in &selection.skipped {
        tracing::warn!(recording = skipped.planned.recording.id, cause = skipped.refusal.cause, possible_from = ?skipped.refusal.possible_from, "retention: recording kept by a hold or lock; skipped");
    }
    Metrics::add(&metrics.retention_skipped, summary.skipped as u64);
    for planned in &selection.erase {
        let Some(recording) = recordings::get(db, planned.recording.id).await? else {
            continue;
        };
        let request = ErasureRequest {
            origin: Origin::Retention,
            actor: "retention".to_owned(),
            reason: format!(
                "retention.delete_after_days = {}: started {}, before {}",
                settings.delete_after_days, planned.started, selection.cutoff
            ),
        };
        match erasure::erase(db, archive, &recording, &request, false).await {
            Ok(_) => summary.erased.push(recording.id),
            Err(err) => {
                summary.failed += 1;
                tracing::error!(recording = recording.id, error = %err, "retention: erasure failed; retrying next run");
            }
        }
    }
    audit_retention_run(db, &summary).await;
    Ok(summary)
}

/// The audit record of one retention run (each erasure has its own record too).
async fn audit_retention_run(db: &Db, summary: &RunSummary) {
    tracing::info!(
        cutoff = %summary.cutoff,
        erased = summary.erased.len(),
        skipped = summary.skipped,
        failed = summary.failed,
        resumed = summary.resumed,
        "retention run"
    );
    let actor = crate::audit::Actor::system("retention");
    let detail = serde_json::to_value(summary).unwrap_or_default();
    let entry =
        crate::audit::AuditEntry::new(&actor, crate::audit::Action::RetentionRun).detail(detail);
    if let Err(err) = crate::audit::append(db, entry).await {
        tracing::error!(error = %err, "the retention run's audit record was not written");
    }
}

/// Runs until `shutdown`: a run at once, then every `retention.interval_minutes`.
pub async fn run(
    db: Db,
    archive: Archive,
    metrics: std::sync::Arc<Metrics>,
    settings: RetentionSettings,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(Duration::from_secs(settings.interval_minutes * 60));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if let Err(err) = run_once(&db, &archive, &metrics, &settings, Utc::now()).await {
            tracing::error!(error = %err, "retention run failed; retrying at the next interval");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_is_the_days_before_now() {
        let now = DateTime::from_timestamp_millis(10 * 86_400_000).unwrap();
        assert_eq!(cutoff(3, now), 7 * 86_400_000);
    }
}
