//! The SQL behind the operator views, beyond what `queue` offers. Written for sqlx `Any`:
//! `$n` placeholders, BIGINT epoch milliseconds, sums cast to BIGINT (PostgreSQL would
//! otherwise answer NUMERIC).

use sqlx::AssertSqlSafe;

use super::state::{ChunkCounts, RecordingState};
use crate::queue::recordings::Recording;
use crate::queue::{Db, Job, JobState, QueueError};

/// A recording with the job counts its state is derived from.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RecordingRow {
    #[sqlx(flatten)]
    pub recording: Recording,
    #[sqlx(flatten)]
    pub counts: ChunkCounts,
    /// Media and metadata bytes of its archived chunks.
    pub archived_bytes: i64,
}

/// The counts come from `recording_counts`, which the job triggers keep (migration 0005): one
/// primary-key probe per page row, however many jobs the recordings have.
const RECORDING_COLUMNS: &str = "r.*,
    COALESCE(c.chunks, 0) AS chunks,
    COALESCE(c.archived_chunks, 0) AS archived_chunks,
    COALESCE(c.active_chunks, 0) AS active_chunks,
    COALESCE(c.broken_chunks, 0) AS broken_chunks,
    COALESCE(c.archived_bytes, 0) AS archived_bytes";

const RECORDING_FROM: &str = "recordings r LEFT JOIN recording_counts c ON c.recording_id = r.id";

/// Recordings newest first, with ids below `before` (the cursor), optionally in one state.
pub async fn recordings(
    db: &Db,
    state: Option<RecordingState>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<RecordingRow>, QueueError> {
    Ok(sqlx::query_as(AssertSqlSafe(recordings_sql(state)))
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(db.pool())
        .await?)
}

/// The page query: `$1` the cursor (`i64::MAX` for the first page), `$2` the limit.
/// A plain `id < $1` (no `$1 IS NULL OR …`) lets a cached generic plan start the primary-key
/// walk at the cursor instead of filtering down to it from the newest row. A state filter
/// walks `recording_counts` instead, where the rare states (failed, archiving) have partial
/// indexes, so a page of them does not read every recording to find a few.
pub fn recordings_sql(state: Option<RecordingState>) -> String {
    match state {
        None => format!(
            "SELECT {RECORDING_COLUMNS} FROM {RECORDING_FROM} WHERE r.id < $1
             ORDER BY r.id DESC LIMIT $2"
        ),
        // The condition's columns are unqualified: broken_chunks and active_chunks exist only
        // in recording_counts, manifest_key only in recordings.
        Some(state) => format!(
            "SELECT {RECORDING_COLUMNS} FROM recording_counts c JOIN recordings r ON r.id = c.recording_id
             WHERE c.recording_id < $1 AND {} ORDER BY c.recording_id DESC LIMIT $2",
            state.sql_condition()
        ),
    }
}

/// One recording by row id.
pub async fn recording(db: &Db, id: i64) -> Result<Option<RecordingRow>, QueueError> {
    let sql = format!("SELECT {RECORDING_COLUMNS} FROM {RECORDING_FROM} WHERE r.id = $1");
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(db.pool())
        .await?)
}

/// The row id of the newest recording whose ACS recording id or recording key is `key`.
pub async fn recording_id_by_key(db: &Db, key: &str) -> Result<Option<i64>, QueueError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM recordings WHERE recording_id = $1 OR recording_key = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(key)
    .fetch_optional(db.pool())
    .await?)
}

pub const RECORDING_STATE_COUNTS_SQL: &str =
    "SELECT state, CAST(SUM(recordings) AS BIGINT) FROM recording_state_counts GROUP BY state";
pub const JOB_COUNTS_SQL: &str =
    "SELECT state, CAST(SUM(jobs) AS BIGINT) FROM job_counts GROUP BY state";
pub const ARCHIVED_BYTES_SQL: &str =
    "SELECT CAST(COALESCE(SUM(archived_bytes), 0) AS BIGINT) FROM job_counts";

/// Recordings per derived state, from the counts the triggers keep (states with no
/// recording may be missing or 0).
pub async fn recording_counts_by_state(db: &Db) -> Result<Vec<(String, i64)>, QueueError> {
    Ok(sqlx::query_as(RECORDING_STATE_COUNTS_SQL)
        .fetch_all(db.pool())
        .await?)
}

/// Jobs per state, from the counts the triggers keep (a few rows per state, never the jobs).
pub async fn job_counts_by_state(db: &Db) -> Result<Vec<(String, i64)>, QueueError> {
    Ok(sqlx::query_as(JOB_COUNTS_SQL).fetch_all(db.pool()).await?)
}

/// A job with the names of its recording.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    #[sqlx(flatten)]
    pub job: Job,
    pub call_id: String,
    pub recording_key: String,
}

const JOB_SELECT: &str =
    "SELECT j.*, r.call_id, r.recording_key FROM jobs j JOIN recordings r ON r.id = j.recording_id";

/// Jobs in any of `states` (all when empty), most urgent deadline first.
pub async fn jobs(db: &Db, states: &[JobState], limit: i64) -> Result<Vec<JobRow>, QueueError> {
    // The states come from a closed enum, so spelling them into the SQL is safe.
    let filter = if states.is_empty() {
        "1 = 1".to_owned()
    } else {
        let list: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
        format!("j.state IN ({})", list.join(", "))
    };
    let sql = format!(
        "{JOB_SELECT} WHERE {filter} ORDER BY j.deadline_at, j.recording_id, j.chunk_index LIMIT $1"
    );
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(limit)
        .fetch_all(db.pool())
        .await?)
}

/// One job by id.
pub async fn job(db: &Db, id: i64) -> Result<Option<JobRow>, QueueError> {
    Ok(
        sqlx::query_as(AssertSqlSafe(format!("{JOB_SELECT} WHERE j.id = $1")))
            .bind(id)
            .fetch_optional(db.pool())
            .await?,
    )
}

/// One attempt at a job.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct AttemptRow {
    pub job_id: i64,
    pub attempt: i64,
    pub worker: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub outcome: Option<String>,
    pub error: Option<String>,
}

/// Every attempt at any chunk of a recording, oldest first.
pub async fn attempts(db: &Db, recording: i64) -> Result<Vec<AttemptRow>, QueueError> {
    Ok(sqlx::query_as(
        "SELECT a.job_id, a.attempt, a.worker, a.started_at, a.finished_at, a.outcome, a.error
         FROM attempts a JOIN jobs j ON j.id = a.job_id WHERE j.recording_id = $1
         ORDER BY a.started_at, a.id",
    )
    .bind(recording)
    .fetch_all(db.pool())
    .await?)
}

/// A RecordingStateChanged event (the payload is left out: it repeats these fields).
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct StateEventRow {
    pub event_id: String,
    /// ACS's recording id, telling apart several recordings of one call.
    pub recording_id: String,
    pub state: String,
    pub start_date_time: Option<String>,
    pub server_call_id: Option<String>,
    pub event_time: Option<String>,
    pub received_at: i64,
}

/// RecordingStateChanged events of a recording, in the order they happened: by ACS recording
/// id when the recording has one; otherwise (events whose subject names only the
/// serverCallId) those of its call.
pub async fn state_events(
    db: &Db,
    recording_id: Option<&str>,
    server_call_id: Option<&str>,
) -> Result<Vec<StateEventRow>, QueueError> {
    Ok(sqlx::query_as(
        "SELECT event_id, recording_id, state, start_date_time, server_call_id, event_time, received_at
         FROM recording_state_events
         WHERE ($1 IS NOT NULL AND recording_id = $1) OR ($1 IS NULL AND server_call_id = $2)
         ORDER BY event_time, received_at",
    )
    .bind(recording_id)
    .bind(server_call_id)
    .fetch_all(db.pool())
    .await?)
}

/// A quarantined event without its payload: what a list shows.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct QuarantineListRow {
    pub id: i64,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub reason: String,
    /// The full payload's size; the stored payload may be a prefix of it.
    pub payload_bytes: i64,
    /// Hex sha256 of the full payload (absent for entries stored before it was kept).
    pub payload_sha256: Option<String>,
    /// 1 when only a prefix of the payload is stored.
    pub payload_truncated: i64,
    pub received_at: i64,
    pub replayed_at: Option<i64>,
    pub replay_outcome: Option<String>,
}

/// A quarantined event with its stored payload.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct QuarantineRow {
    #[sqlx(flatten)]
    pub entry: QuarantineListRow,
    pub payload: String,
}

const QUARANTINE_COLUMNS: &str = "id, event_id, event_type, reason, payload_bytes, payload_sha256,
    payload_truncated, received_at, replayed_at, replay_outcome";

/// Quarantined events newest first, with ids below `before` (the cursor), without their
/// payloads; replayed ones only when asked.
pub async fn quarantine(
    db: &Db,
    include_replayed: bool,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<QuarantineListRow>, QueueError> {
    let open_only = if include_replayed {
        ""
    } else {
        "AND replayed_at IS NULL"
    };
    let sql = format!(
        "SELECT {QUARANTINE_COLUMNS} FROM quarantine WHERE ($1 IS NULL OR id < $1) {open_only}
         ORDER BY id DESC LIMIT $2"
    );
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(before)
        .bind(limit)
        .fetch_all(db.pool())
        .await?)
}

/// One quarantine entry with its payload.
pub async fn quarantine_entry(db: &Db, id: i64) -> Result<Option<QuarantineRow>, QueueError> {
    let sql = format!("SELECT {QUARANTINE_COLUMNS}, payload FROM quarantine WHERE id = $1");
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(db.pool())
        .await?)
}

/// Deletes the entries whose last activity (replay, or else arrival) is before `cutoff`.
pub async fn purge_quarantine(db: &Db, cutoff: i64) -> Result<u64, QueueError> {
    Ok(
        sqlx::query("DELETE FROM quarantine WHERE COALESCE(replayed_at, received_at) < $1")
            .bind(cutoff)
            .execute(db.pool())
            .await?
            .rows_affected(),
    )
}

/// Quarantine entries not replayed yet.
pub async fn open_quarantine_count(db: &Db) -> Result<i64, QueueError> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM quarantine WHERE replayed_at IS NULL")
            .fetch_one(db.pool())
            .await?,
    )
}

/// The queue's urgency in one round trip.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct Urgency {
    /// `created_at` of the oldest pending job.
    pub oldest_pending_created_at: Option<i64>,
    /// The earliest deadline of a pending or running job.
    pub earliest_deadline_at: Option<i64>,
    /// Pending or running jobs whose deadline is before the `at_risk_before` argument.
    pub at_risk: i64,
}

/// Each part reads one index: `jobs_state_age` for the oldest pending job, `jobs_state`
/// (state, deadline) for the rest, so the archived history is never read. The earliest
/// deadline is one MIN per state: over `state IN (…)` PostgreSQL would read the whole range.
pub const URGENCY_SQL: &str = "SELECT
    (SELECT MIN(created_at) FROM jobs WHERE state = 'pending') AS oldest_pending_created_at,
    (SELECT MIN(d) FROM (
        SELECT MIN(deadline_at) AS d FROM jobs WHERE state = 'pending'
        UNION ALL SELECT MIN(deadline_at) FROM jobs WHERE state = 'running') x) AS earliest_deadline_at,
    (SELECT COUNT(*) FROM jobs WHERE state IN ('pending', 'running') AND deadline_at < $1) AS at_risk";

pub async fn urgency(db: &Db, at_risk_before: i64) -> Result<Urgency, QueueError> {
    Ok(sqlx::query_as(URGENCY_SQL)
        .bind(at_risk_before)
        .fetch_one(db.pool())
        .await?)
}

/// Pending or running jobs whose deadline is before `before`, most urgent first.
pub async fn jobs_at_risk(db: &Db, before: i64, limit: i64) -> Result<Vec<JobRow>, QueueError> {
    Ok(sqlx::query_as(AssertSqlSafe(format!(
        "{JOB_SELECT} WHERE j.state IN ('pending', 'running') AND j.deadline_at < $1
         ORDER BY j.deadline_at, j.recording_id, j.chunk_index LIMIT $2"
    )))
    .bind(before)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// Media and metadata bytes of every archived chunk, from the counts the triggers keep.
pub async fn archived_bytes(db: &Db) -> Result<i64, QueueError> {
    Ok(sqlx::query_scalar(ARCHIVED_BYTES_SQL)
        .fetch_one(db.pool())
        .await?)
}
