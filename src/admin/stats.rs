//! The queue at a glance: `/admin/stats`, and the gauges `/metrics` reads at scrape time.

use std::collections::BTreeMap;

use super::operations::OpsError;
use super::queries;
use super::state::RecordingState;
use super::views::{Stats, seconds_until};
use crate::metrics::QueueGauges;
use crate::queue::{Db, JobState, QueueError};

/// The gauges `/metrics` reads at scrape time; `margin` is `admin.deadline_warning_hours`.
pub async fn queue_gauges(
    db: &Db,
    margin: chrono::Duration,
    now: i64,
) -> Result<QueueGauges, QueueError> {
    let counts = queries::job_counts_by_state(db).await?;
    let urgency = queries::urgency(db, now + margin.num_milliseconds()).await?;
    Ok(QueueGauges {
        jobs: counts
            .into_iter()
            .filter_map(|(state, n)| state.parse().ok().map(|state| (state, n)))
            .collect(),
        oldest_pending_age_seconds: urgency
            .oldest_pending_created_at
            .map_or(0.0, |created| (now - created).max(0) as f64 / 1000.0),
        deadline_slack_seconds: urgency
            .earliest_deadline_at
            .map(|deadline| (deadline - now) as f64 / 1000.0),
        jobs_at_risk: urgency.at_risk,
        recordings_erased: crate::queue::erasures::counts(db)
            .await?
            .into_iter()
            .map(|(origin, n)| (origin.as_str(), n))
            .collect(),
        event_sinks_disabled: sinks_disabled(db).await?,
    })
}

/// Every configured sink with whether it is disabled, from the table every replica shares.
async fn sinks_disabled(db: &Db) -> Result<Vec<(String, bool)>, QueueError> {
    let routes = db.events().sinks();
    if routes.is_empty() {
        return Ok(Vec::new());
    }
    let disabled = crate::queue::outbox::disabled_sinks(db).await?;
    Ok(routes
        .iter()
        .map(|route| {
            let off = disabled.iter().any(|d| d.sink == route.name);
            (route.name.clone(), off)
        })
        .collect())
}

/// The queue at a glance, for `/admin/stats`.
pub async fn stats(db: &Db, warning_hours: u64, now: i64) -> Result<Stats, OpsError> {
    let margin = chrono::Duration::hours(warning_hours as i64);
    let urgency = queries::urgency(db, now + margin.num_milliseconds()).await?;
    let mut jobs: BTreeMap<String, i64> = JobState::ALL
        .iter()
        .map(|state| (state.as_str().to_owned(), 0))
        .collect();
    jobs.extend(queries::job_counts_by_state(db).await?);
    let mut recordings: BTreeMap<String, i64> = RecordingState::ALL
        .iter()
        .map(|state| (state.as_str().to_owned(), 0))
        .collect();
    recordings.extend(queries::recording_counts_by_state(db).await?);
    let evidence = crate::queue::integrity::evidence_counts(db).await?;
    Ok(Stats {
        jobs,
        recordings,
        archived_bytes: queries::archived_bytes(db).await?,
        oldest_pending_age_seconds: urgency
            .oldest_pending_created_at
            .map(|created| seconds_until(now, created).max(0)),
        deadline_slack_seconds: urgency
            .earliest_deadline_at
            .map(|deadline| seconds_until(deadline, now)),
        jobs_at_risk: urgency.at_risk,
        deadline_warning_hours: warning_hours,
        quarantine_open: queries::open_quarantine_count(db).await?,
        recordings_short: evidence.short,
        recordings_verify_failed: evidence.verify_failed,
    })
}
