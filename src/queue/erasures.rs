//! Erased recordings (migration 0013): the intent recorded before anything is deleted, the
//! mark once the tombstone is written, and the retention selection.
//!
//! A recording's row outlives its erasure with `erased_at` set: its identity recognises a
//! re-announcement, which must not archive it again. Its jobs and attempts go at once, with
//! the participant ids and object keys they held; what was erased is in the tombstone.

use sqlx::Row;

use super::outbox::{self, EventType, NewEvent};
use super::{Db, QueueError, Tx};

/// Who asked for an erasure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// An operator, through the admin API or the command line.
    Request,
    /// The scheduled job of `retention.delete_after_days`.
    Retention,
}

impl Origin {
    pub const ALL: [Origin; 2] = [Origin::Request, Origin::Retention];

    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Request => "request",
            Origin::Retention => "retention",
        }
    }
}

/// A recording's row in `erasures`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct ErasureRow {
    pub recording_id: i64,
    /// `started` (objects may still be in the store) or `done` (tombstone written).
    pub state: String,
    pub origin: String,
    pub actor: String,
    pub reason: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    /// The tombstone document, as written to the store.
    pub tombstone: String,
}

impl ErasureRow {
    pub fn is_done(&self) -> bool {
        self.state == "done"
    }
}

/// What starting an erasure records.
#[derive(Debug, Clone)]
pub struct Intent<'a> {
    pub recording: i64,
    pub origin: Origin,
    pub actor: &'a str,
    pub reason: &'a str,
    /// The tombstone document to write once the objects are gone.
    pub tombstone: &'a str,
}

pub async fn get(db: &Db, recording: i64) -> Result<Option<ErasureRow>, QueueError> {
    Ok(
        sqlx::query_as("SELECT * FROM erasures WHERE recording_id = $1")
            .bind(recording)
            .fetch_optional(db.pool())
            .await?,
    )
}

/// Whether the recording was erased (or its erasure started): no object of it may be written.
pub async fn is_erased(db: &Db, recording: i64) -> Result<bool, QueueError> {
    let erased: Option<Option<i64>> =
        sqlx::query_scalar("SELECT erased_at FROM recordings WHERE id = $1")
            .bind(recording)
            .fetch_optional(db.pool())
            .await?;
    Ok(matches!(erased, Some(Some(_))))
}

/// The same question inside an ingest transaction.
pub async fn is_erased_in(tx: &mut Tx, recording: i64) -> Result<bool, QueueError> {
    let erased: Option<Option<i64>> =
        sqlx::query_scalar("SELECT erased_at FROM recordings WHERE id = $1")
            .bind(recording)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(matches!(erased, Some(Some(_))))
}

/// Records the intent to erase and, in the same transaction, marks the recording erased and
/// deletes its jobs and attempts (so no worker claims them again and no manifest is rewritten)
/// and its counts. False when an erasure of it was already recorded: the
/// caller then finishes that one.
pub async fn begin(db: &Db, intent: &Intent<'_>, now: i64) -> Result<bool, QueueError> {
    let mut tx = db.begin_write().await?;
    let inserted = sqlx::query(
        "INSERT INTO erasures (recording_id, state, origin, actor, reason, started_at, tombstone)
         VALUES ($1, 'started', $2, $3, $4, $5, $6) ON CONFLICT (recording_id) DO NOTHING",
    )
    .bind(intent.recording)
    .bind(intent.origin.as_str())
    .bind(intent.actor)
    .bind(intent.reason)
    .bind(now)
    .bind(intent.tombstone)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    sqlx::query(
        "UPDATE recordings SET erased_at = $1, manifest_key = NULL, manifest_written_at = NULL,
             updated_at = $1 WHERE id = $2",
    )
    .bind(now)
    .bind(intent.recording)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "DELETE FROM attempts WHERE job_id IN (SELECT id FROM jobs WHERE recording_id = $1)",
    )
    .bind(intent.recording)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM jobs WHERE recording_id = $1")
        .bind(intent.recording)
        .execute(&mut *tx)
        .await?;
    // Out of every per-state count and state filter (its triggers take it out of the state
    // it was in): an erased recording is in none of failed, archiving, complete, incomplete.
    sqlx::query("DELETE FROM recording_counts WHERE recording_id = $1")
        .bind(intent.recording)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// Marks the erasure done (its tombstone is in the store), writes the event that announces
/// it (`erased`, for the sinks that take it) and removes the recording from the participant
/// index (migration 0011), whose rows name the people in it. Only now: until then `callvault
/// erase --participant` still finds a half-done erasure and finishes it. False when another
/// run marked it done first: nothing changes and nothing is announced twice.
pub async fn finish(
    db: &Db,
    recording: i64,
    announce: &NewEvent,
    now: i64,
) -> Result<bool, QueueError> {
    let mut tx = db.begin_write().await?;
    let marked = sqlx::query(
        "UPDATE erasures SET state = 'done', finished_at = $1 WHERE recording_id = $2 AND state = 'started'",
    )
    .bind(now)
    .bind(recording)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if marked == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    let announced = outbox::record(&mut tx, db.events(), announce, now).await?;
    sqlx::query("DELETE FROM participant_recordings WHERE recording_id = $1")
        .bind(recording)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    if announced > 0 {
        db.events().wake(EventType::Erased);
    }
    Ok(true)
}

/// Erasures started and not finished (a crash, a store outage), oldest first.
pub async fn unfinished(db: &Db, limit: i64) -> Result<Vec<i64>, QueueError> {
    Ok(sqlx::query_scalar(
        "SELECT recording_id FROM erasures WHERE state = 'started' ORDER BY started_at, recording_id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// Finished erasures per origin, for `callvault_recordings_erased_total`.
pub async fn counts(db: &Db) -> Result<Vec<(Origin, i64)>, QueueError> {
    let rows = sqlx::query(
        "SELECT origin, COUNT(*) AS n FROM erasures WHERE state = 'done' GROUP BY origin",
    )
    .fetch_all(db.pool())
    .await?;
    let mut counts = Vec::new();
    for row in rows {
        let origin: String = row.try_get(0)?;
        let n: i64 = row.try_get(1)?;
        if let Some(origin) = Origin::ALL.into_iter().find(|o| o.as_str() == origin) {
            counts.push((origin, n));
        }
    }
    Ok(counts)
}

/// A recording retention may erase: not erased, started before the cutoff.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct Expired {
    pub id: i64,
    pub call_id: String,
    pub recording_key: String,
    pub recording_id: Option<String>,
    /// Its start in epoch milliseconds (its arrival when the announcement had no start).
    pub started: i64,
}

/// Recordings not erased whose start is before `started_before`, oldest first, after the
/// (started, id) position `after`, at most `limit`. Reads the partial index
/// `recordings_retention` (migration 0013), whose expression this repeats.
pub async fn expired(
    db: &Db,
    started_before: i64,
    after: Option<(i64, i64)>,
    limit: i64,
) -> Result<Vec<Expired>, QueueError> {
    let (after_started, after_id) = after.unwrap_or((i64::MIN, i64::MIN));
    Ok(sqlx::query_as(
        "SELECT id, call_id, recording_key, recording_id, COALESCE(started_at, created_at) AS started
         FROM recordings
         WHERE erased_at IS NULL AND COALESCE(started_at, created_at) < $1
           AND (COALESCE(started_at, created_at) > $2
                OR (COALESCE(started_at, created_at) = $2 AND id > $3))
         ORDER BY COALESCE(started_at, created_at), id LIMIT $4",
    )
    .bind(started_before)
    .bind(after_started)
    .bind(after_id)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// A manifest the chain recorded for a recording: the sha256 of each version written.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ManifestVersion {
    pub sha256: String,
    pub written_at: i64,
}

/// Every manifest version of the recording the chain recorded (signed manifests only).
pub async fn manifest_versions(
    db: &Db,
    recording: i64,
) -> Result<Vec<ManifestVersion>, QueueError> {
    Ok(sqlx::query_as(
        "SELECT sha256, written_at FROM manifest_chain WHERE recording_id = $1 ORDER BY id",
    )
    .bind(recording)
    .fetch_all(db.pool())
    .await?)
}
