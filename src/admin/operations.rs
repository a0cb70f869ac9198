//! The operator actions behind both the admin API and the `jobs` / `recordings` commands,
//! so the two cannot drift apart.

use super::queries;
use super::state::RecordingState;
use super::views::{
    ChunkView, JobView, QuarantinePage, QuarantineSummary, QuarantineView, RecordingDetail,
    RecordingPage, RecordingSummary, ReplaySummary,
};
use crate::audit::Actor;
use crate::queue::jobs;
use crate::queue::{Db, JobState, QueueError, recordings};
use crate::storage::manifest::CHUNK_MAXIMUM_SIZE_EXCEEDED;

/// Largest page of recordings or jobs one request may ask for.
pub const MAX_LIMIT: i64 = 1000;

/// Why an operator action did not happen; `code` is the stable API error code.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    #[error("job {id} is {state}; only failed or expired jobs can be replayed")]
    NotReplayable { id: i64, state: String },
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// A legal hold or a store lock keeps the recording; the refusal says until when.
    #[error("{}", .0.message)]
    NotErasable(super::erasure::Refusal),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

impl OpsError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        OpsError::Invalid {
            code,
            message: message.into(),
        }
    }
}

/// Checks a page size.
pub fn limit(requested: Option<i64>, default: i64) -> Result<i64, OpsError> {
    match requested {
        None => Ok(default),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(OpsError::invalid(
            "invalid_limit",
            format!("limit {n} is not between 1 and {MAX_LIMIT}"),
        )),
    }
}

/// A page cursor: the row id the next page starts below.
pub fn parse_cursor(cursor: Option<&str>) -> Result<Option<i64>, OpsError> {
    match cursor.filter(|c| !c.is_empty()) {
        None => Ok(None),
        Some(cursor) => cursor.parse::<i64>().map(Some).map_err(|_| {
            OpsError::invalid(
                "invalid_cursor",
                format!("`{cursor}` is not a cursor from next_cursor"),
            )
        }),
    }
}

/// Recordings newest first, one page; `cursor` is a previous page's `next_cursor`.
pub async fn list_recordings(
    db: &Db,
    state: Option<RecordingState>,
    limit: i64,
    cursor: Option<&str>,
    now: i64,
) -> Result<RecordingPage, OpsError> {
    let before = parse_cursor(cursor)?;
    // One row more than asked tells whether another page follows.
    let mut rows = queries::recordings(db, state, before, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = more
        .then(|| rows.last().map(|row| row.recording.id.to_string()))
        .flatten();
    Ok(RecordingPage {
        recordings: rows
            .iter()
            .map(|row| RecordingSummary::new(row, now))
            .collect(),
        next_cursor,
    })
}

/// One recording by row id, ACS recording id or recording key.
pub async fn recording_detail(db: &Db, key: &str, now: i64) -> Result<RecordingDetail, OpsError> {
    let id = match key.parse::<i64>() {
        Ok(id) => Some(id),
        Err(_) => queries::recording_id_by_key(db, key).await?,
    };
    let row = match id {
        Some(id) => queries::recording(db, id).await?,
        None => None,
    };
    let row = row.ok_or_else(|| OpsError::NotFound {
        code: "recording_not_found",
        message: format!("no recording with id, recording id or key `{key}`"),
    })?;
    let recording = &row.recording;
    let summary = RecordingSummary::new(&row, now);
    let jobs = recordings::jobs(db, recording.id).await?;
    let attempts = queries::attempts(db, recording.id).await?;
    let waiting_for_chunk = (summary.state == RecordingState::Incomplete)
        .then(|| {
            let ends: Vec<_> = jobs
                .iter()
                .map(|job| (job.chunk_index, job.end_reason.as_deref()))
                .collect();
            missing_chunk(&ends)
        })
        .flatten();
    let chunks = jobs
        .into_iter()
        .map(|job| {
            let attempt_history = attempts
                .iter()
                .filter(|a| a.job_id == job.id)
                .cloned()
                .collect();
            let row = queries::JobRow {
                job,
                call_id: recording.call_id.clone(),
                recording_key: recording.recording_key.clone(),
            };
            ChunkView {
                job: JobView::new(&row, now),
                attempt_history,
            }
        })
        .collect();
    let state_events = queries::state_events(
        db,
        recording.recording_id.as_deref(),
        recording.server_call_id.as_deref(),
    )
    .await?;
    Ok(RecordingDetail {
        duration_ms: recording.duration_ms,
        session_end_reason: recording.session_end_reason.clone(),
        content_type: recording.content_type.clone(),
        channel_type: recording.channel_type.clone(),
        format_type: recording.format_type.clone(),
        manifest_written_at: recording.manifest_written_at,
        waiting_for_chunk,
        chunks,
        event_ids: recordings::event_ids(db, recording.id).await?,
        state_events,
        worm: super::holds::lock_view(db, recording.id).await?,
        summary,
    })
}

/// The first chunk index not announced yet, given (index, endReason) of the known chunks:
/// a gap, or the one after a last chunk that ended with `ChunkMaximumSizeExceeded`.
pub fn missing_chunk(known: &[(i64, Option<&str>)]) -> Option<i64> {
    let mut known = known.to_vec();
    known.sort_by_key(|(index, _)| *index);
    let mut next = 0;
    let mut last_end = None;
    for (index, end_reason) in known {
        if index > next {
            return Some(next);
        }
        next = index + 1;
        last_end = Some(end_reason);
    }
    match last_end {
        None => Some(0),
        Some(Some(CHUNK_MAXIMUM_SIZE_EXCEEDED)) => Some(next),
        Some(_) => None,
    }
}

/// Jobs in any of `states` (all when empty), most urgent first.
pub async fn list_jobs(
    db: &Db,
    states: &[JobState],
    limit: i64,
    now: i64,
) -> Result<Vec<JobView>, OpsError> {
    let rows = queries::jobs(db, states, limit).await?;
    Ok(rows.iter().map(|row| JobView::new(row, now)).collect())
}

/// One job.
pub async fn job(db: &Db, id: i64, now: i64) -> Result<JobView, OpsError> {
    queries::job(db, id)
        .await?
        .map(|row| JobView::new(&row, now))
        .ok_or_else(|| job_not_found(id))
}

fn job_not_found(id: i64) -> OpsError {
    OpsError::NotFound {
        code: "job_not_found",
        message: format!("no job with id {id}"),
    }
}

/// Puts a `failed` or `expired` job back to `pending` with attempts reset.
/// The caller wakes the workers.
pub async fn replay_job(db: &Db, actor: &Actor, id: i64, now: i64) -> Result<JobView, OpsError> {
    if !jobs::replay(db, actor, id, now).await? {
        let current = queries::job(db, id)
            .await?
            .ok_or_else(|| job_not_found(id))?;
        return Err(OpsError::NotReplayable {
            id,
            state: current.job.state.to_string(),
        });
    }
    job(db, id, now).await
}

/// What a bulk replay selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplaySelection {
    /// Every job in this state (`failed` or `expired`).
    State(JobState),
    /// These jobs; ids that are unknown or not replayable are skipped.
    Ids(Vec<i64>),
}

/// Replays several jobs. The caller wakes the workers.
pub async fn replay_jobs(
    db: &Db,
    actor: &Actor,
    selection: &ReplaySelection,
    now: i64,
) -> Result<ReplaySummary, OpsError> {
    match selection {
        ReplaySelection::State(state @ (JobState::Failed | JobState::Expired)) => {
            Ok(ReplaySummary {
                replayed: jobs::replay_state(db, actor, *state, now).await?,
                skipped: Vec::new(),
            })
        }
        ReplaySelection::State(other) => Err(OpsError::invalid(
            "invalid_state",
            format!("only failed or expired jobs can be replayed, not {other}"),
        )),
        ReplaySelection::Ids(ids) => {
            if ids.len() as i64 > MAX_LIMIT {
                return Err(OpsError::invalid(
                    "too_many_ids",
                    format!("at most {MAX_LIMIT} ids per request"),
                ));
            }
            let mut summary = ReplaySummary {
                replayed: 0,
                skipped: Vec::new(),
            };
            for id in ids {
                if jobs::replay(db, actor, *id, now).await? {
                    summary.replayed += 1;
                } else {
                    summary.skipped.push(*id);
                }
            }
            Ok(summary)
        }
    }
}

/// Quarantined events newest first, one page, without payloads; `cursor` is a previous
/// page's `next_cursor`.
pub async fn list_quarantine(
    db: &Db,
    include_replayed: bool,
    limit: i64,
    cursor: Option<&str>,
) -> Result<QuarantinePage, OpsError> {
    let before = parse_cursor(cursor)?;
    let mut rows = queries::quarantine(db, include_replayed, before, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = more
        .then(|| rows.last().map(|row| row.id.to_string()))
        .flatten();
    Ok(QuarantinePage {
        quarantine: rows.into_iter().map(QuarantineSummary::from).collect(),
        next_cursor,
    })
}

/// One quarantine entry with its stored payload.
pub async fn quarantine_entry(db: &Db, id: i64) -> Result<QuarantineView, OpsError> {
    queries::quarantine_entry(db, id)
        .await?
        .map(QuarantineView::from)
        .ok_or_else(|| OpsError::NotFound {
            code: "quarantine_not_found",
            message: format!("no quarantine entry with id {id}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MORE: Option<&str> = Some("ChunkMaximumSizeExceeded");
    const END: Option<&str> = Some("SessionEnded");

    #[test]
    fn the_missing_chunk_is_the_first_gap() {
        assert_eq!(missing_chunk(&[(0, MORE), (2, END)]), Some(1));
        assert_eq!(missing_chunk(&[(1, END)]), Some(0));
        assert_eq!(missing_chunk(&[]), Some(0));
    }

    #[test]
    fn a_chunk_that_announces_more_waits_for_the_next() {
        assert_eq!(missing_chunk(&[(0, MORE), (1, MORE)]), Some(2));
    }

    #[test]
    fn nothing_is_missing_after_a_final_chunk() {
        assert_eq!(missing_chunk(&[(1, END), (0, MORE)]), None);
        assert_eq!(missing_chunk(&[(0, None)]), None);
    }

    #[test]
    fn limits_outside_the_range_are_refused() {
        assert_eq!(limit(None, 50).unwrap(), 50);
        assert_eq!(limit(Some(MAX_LIMIT), 50).unwrap(), MAX_LIMIT);
        for bad in [0, -1, MAX_LIMIT + 1] {
            assert!(matches!(
                limit(Some(bad), 50),
                Err(OpsError::Invalid {
                    code: "invalid_limit",
                    ..
                })
            ));
        }
    }
}
