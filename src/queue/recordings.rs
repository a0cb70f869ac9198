//! Recordings: what the manifest and the operator views are built from.

use super::{Db, Job, QueueError};

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Recording {
    pub id: i64,
    pub call_id: String,
    pub recording_key: String,
    pub recording_id: Option<String>,
    pub server_call_id: Option<String>,
    pub start_time: Option<String>,
    pub duration_ms: Option<i64>,
    pub session_end_reason: Option<String>,
    pub content_type: Option<String>,
    pub channel_type: Option<String>,
    pub format_type: Option<String>,
    pub media_extension: String,
    pub deadline_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub manifest_key: Option<String>,
    pub manifest_written_at: Option<i64>,
}

pub async fn get(db: &Db, id: i64) -> Result<Option<Recording>, QueueError> {
    Ok(sqlx::query_as("SELECT * FROM recordings WHERE id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await?)
}

/// Every job of a recording, in chunk order.
pub async fn jobs(db: &Db, recording: i64) -> Result<Vec<Job>, QueueError> {
    Ok(
        sqlx::query_as("SELECT * FROM jobs WHERE recording_id = $1 ORDER BY chunk_index, id")
            .bind(recording)
            .fetch_all(db.pool())
            .await?,
    )
}

/// Ids of the events that announced chunks of a recording.
pub async fn event_ids(db: &Db, recording: i64) -> Result<Vec<String>, QueueError> {
    Ok(
        sqlx::query_scalar(
            "SELECT id FROM events WHERE recording_id = $1 ORDER BY received_at, id",
        )
        .bind(recording)
        .fetch_all(db.pool())
        .await?,
    )
}

pub async fn set_manifest(db: &Db, recording: i64, key: &str, now: i64) -> Result<(), QueueError> {
    sqlx::query("UPDATE recordings SET manifest_key = $1, manifest_written_at = $2, updated_at = $2 WHERE id = $3")
        .bind(key)
        .bind(now)
        .bind(recording)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Recordings, newest first; `before` is the id to continue after (pagination cursor).
pub async fn list(db: &Db, limit: i64, before: Option<i64>) -> Result<Vec<Recording>, QueueError> {
    Ok(sqlx::query_as(
        "SELECT * FROM recordings WHERE ($1 IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// Recordings with an archived chunk newer than their manifest (or no manifest yet) and no
/// job still in flight: candidates for a manifest refresh after an interrupted write. A
/// recording with a pending or running job is refreshed when that job ends.
pub async fn stale_manifests(db: &Db) -> Result<Vec<i64>, QueueError> {
    Ok(sqlx::query_scalar(
        "SELECT r.id FROM recordings r
         WHERE EXISTS (SELECT 1 FROM jobs j WHERE j.recording_id = r.id AND j.state = 'archived'
                         AND (r.manifest_written_at IS NULL OR j.archived_at > r.manifest_written_at))
           AND NOT EXISTS (SELECT 1 FROM jobs p WHERE p.recording_id = r.id AND p.state IN ('pending', 'running'))
         ORDER BY r.id",
    )
    .fetch_all(db.pool())
    .await?)
}
