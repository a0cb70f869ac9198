//! WORM state per recording (migration 0010): its legal hold, and when the scheduled lock of
//! `storage.lock_after_hours` covered its objects.

use super::{Db, QueueError};

/// A recording's row in `recording_locks`.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct LockRow {
    /// 1 while an operator's legal hold is on.
    pub legal_hold: i64,
    pub legal_hold_changed_at: Option<i64>,
    /// When the scheduled job locked the recording's objects.
    pub locked_at: Option<i64>,
    /// The newest archived chunk or manifest time that lock covered.
    pub locked_through: Option<i64>,
}

/// A recording whose holding period is over and whose objects are not locked yet.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DueLock {
    pub id: i64,
    pub call_id: String,
    pub recording_key: String,
    /// Its newest archived chunk or manifest time, which the lock will cover.
    pub newest: i64,
}

pub async fn get(db: &Db, recording: i64) -> Result<Option<LockRow>, QueueError> {
    Ok(sqlx::query_as(
        "SELECT legal_hold, legal_hold_changed_at, locked_at, locked_through
         FROM recording_locks WHERE recording_id = $1",
    )
    .bind(recording)
    .fetch_optional(db.pool())
    .await?)
}

/// Records that the store's legal hold is now `on` for the recording's objects.
pub async fn set_legal_hold(db: &Db, recording: i64, on: bool, now: i64) -> Result<(), QueueError> {
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "INSERT INTO recording_locks (recording_id, legal_hold, legal_hold_changed_at)
         VALUES ($1, $2, $3)
         ON CONFLICT (recording_id) DO UPDATE SET legal_hold = $2, legal_hold_changed_at = $3",
    )
    .bind(recording)
    .bind(i64::from(on))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The newest time an object of the recording was written: its last archived chunk or its
/// manifest, whichever is later.
const NEWEST: &str =
    "CASE WHEN COALESCE(c.last_archived_at, 0) > COALESCE(r.manifest_written_at, 0)
                      THEN c.last_archived_at ELSE r.manifest_written_at END";

/// Recordings after row `after` with no job in flight whose newest object was written at or
/// before `written_before` and is not covered by a lock yet, in row order. A late chunk or a
/// rewritten manifest after a lock makes its recording due again. An erased recording never
/// is: its tombstone must stay deletable, and nothing else of it is left to lock.
pub async fn due(
    db: &Db,
    written_before: i64,
    after: i64,
    limit: i64,
) -> Result<Vec<DueLock>, QueueError> {
    let sql = format!(
        "SELECT r.id, r.call_id, r.recording_key, {NEWEST} AS newest
         FROM recordings r
         JOIN recording_counts c ON c.recording_id = r.id
         LEFT JOIN recording_locks l ON l.recording_id = r.id
         WHERE c.active_chunks = 0 AND c.archived_chunks > 0
           AND r.erased_at IS NULL
           AND {NEWEST} <= $1
           AND (l.locked_through IS NULL OR l.locked_through < {NEWEST})
           AND r.id > $3
         ORDER BY r.id LIMIT $2"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(written_before)
        .bind(limit)
        .bind(after)
        .fetch_all(db.pool())
        .await?)
}

/// Records that the recording's objects written up to `through` were locked at `now`.
pub async fn mark_locked(
    db: &Db,
    recording: i64,
    through: i64,
    now: i64,
) -> Result<(), QueueError> {
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "INSERT INTO recording_locks (recording_id, locked_at, locked_through)
         VALUES ($1, $2, $3)
         ON CONFLICT (recording_id) DO UPDATE SET locked_at = $2, locked_through = $3",
    )
    .bind(recording)
    .bind(now)
    .bind(through)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}
