//! Deadline awareness: ACS deletes a recording `acs.retention_hours` after it started, so a
//! job still pending close to that moment needs a human. Every minute (and once at start)
//! this logs the jobs within `admin.deadline_warning_hours` of their deadline.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::queries::{self, JobRow};
use super::views::seconds_until;
use crate::queue::{Db, QueueError, now_millis};

/// How often the queue is checked.
pub const CHECK_EVERY: Duration = Duration::from_secs(60);
/// Jobs named one by one in the log per check; the rest are only counted.
const NAMED_JOBS: i64 = 20;

/// Jobs at risk at one check: how many, and the most urgent of them.
#[derive(Debug, Clone)]
pub struct AtRisk {
    pub count: i64,
    pub most_urgent: Vec<JobRow>,
}

/// Pending or running jobs whose deadline is less than `margin` after `now`.
pub async fn at_risk(db: &Db, margin: chrono::Duration, now: i64) -> Result<AtRisk, QueueError> {
    let before = now + margin.num_milliseconds();
    let count = queries::urgency(db, before).await?.at_risk;
    let most_urgent = if count > 0 {
        queries::jobs_at_risk(db, before, NAMED_JOBS).await?
    } else {
        Vec::new()
    };
    Ok(AtRisk { count, most_urgent })
}

/// Checks once, logging a warning per named job and one summary.
pub async fn check_once(db: &Db, margin: chrono::Duration) -> Result<AtRisk, QueueError> {
    let now = now_millis();
    let found = at_risk(db, margin, now).await?;
    for row in &found.most_urgent {
        let job = &row.job;
        tracing::warn!(
            job_id = job.id,
            recording = job.recording_id,
            call_id = %row.call_id,
            recording_key = %row.recording_key,
            chunk_index = job.chunk_index,
            state = %job.state,
            attempts = job.attempts,
            time_left_seconds = seconds_until(job.deadline_at, now),
            last_error = job.last_error.as_deref().unwrap_or(""),
            "job close to its ACS deletion deadline"
        );
    }
    if found.count > 0 {
        tracing::warn!(
            jobs_at_risk = found.count,
            margin_hours = margin.num_hours(),
            "jobs are close to their ACS deletion deadline; see /admin/jobs?state=pending,running"
        );
    }
    Ok(found)
}

/// Runs until `shutdown`: a check at once, then every [`CHECK_EVERY`].
pub async fn watch(db: Db, warning_hours: u64, shutdown: CancellationToken) {
    let margin = chrono::Duration::hours(warning_hours as i64);
    let mut ticks = tokio::time::interval(CHECK_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if let Err(err) = check_once(&db, margin).await {
            tracing::warn!(error = %err, "cannot check job deadlines; the database may be unavailable");
        }
    }
}
