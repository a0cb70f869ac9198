//! The exports table (migration 0014): access-request exports made through the admin API,
//! claimed one at a time by a replica with a lease, their progress, outcome and removal.

use super::{Db, QueueError};

/// One export as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExportRow {
    /// A random id, also the file's name (`{id}.tar`).
    pub id: String,
    /// The request as JSON.
    pub selection: String,
    pub requested_by: String,
    /// `queued`, `running`, `done`, `failed` or `removed`.
    pub state: String,
    pub files_total: Option<i64>,
    pub bytes_total: Option<i64>,
    pub files_done: i64,
    pub bytes_done: i64,
    pub error: Option<String>,
    pub lease: Option<String>,
    pub lease_until: Option<i64>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub removed_at: Option<i64>,
}

/// How far a running export has come.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportProgress {
    pub files_done: i64,
    pub files_total: i64,
    pub bytes_done: i64,
    pub bytes_total: i64,
}

pub async fn insert(
    db: &Db,
    id: &str,
    selection: &str,
    requested_by: &str,
    now: i64,
) -> Result<(), QueueError> {
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "INSERT INTO exports (id, selection, requested_by, state, created_at)
         VALUES ($1, $2, $3, 'queued', $4)",
    )
    .bind(id)
    .bind(selection)
    .bind(requested_by)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn get(db: &Db, id: &str) -> Result<Option<ExportRow>, QueueError> {
    Ok(sqlx::query_as("SELECT * FROM exports WHERE id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await?)
}

/// Exports queued or running, to bound how many may wait.
pub async fn open_count(db: &Db) -> Result<i64, QueueError> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM exports WHERE state IN ('queued', 'running')")
            .fetch_one(db.pool())
            .await?,
    )
}

/// Claims the oldest queued export, or a running one whose lease lapsed (its replica stopped),
/// for `lease` until `lease_until`. Another replica's claim of the same row wins or loses
/// whole: the update re-checks the row's state.
pub async fn claim(
    db: &Db,
    lease: &str,
    lease_until: i64,
    now: i64,
) -> Result<Option<ExportRow>, QueueError> {
    let mut tx = db.begin_write().await?;
    let candidate: Option<String> = sqlx::query_scalar(
        "SELECT id FROM exports
         WHERE state = 'queued' OR (state = 'running' AND lease_until < $1)
         ORDER BY created_at, id LIMIT 1",
    )
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(id) = candidate else {
        tx.commit().await?;
        return Ok(None);
    };
    let claimed: Option<ExportRow> = sqlx::query_as(
        "UPDATE exports SET state = 'running', lease = $1, lease_until = $2,
             started_at = COALESCE(started_at, $3)
         WHERE id = $4 AND (state = 'queued' OR (state = 'running' AND lease_until < $3))
         RETURNING *",
    )
    .bind(lease)
    .bind(lease_until)
    .bind(now)
    .bind(&id)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(claimed)
}

/// Records progress and renews the lease; false when the lease is no longer this claim's.
pub async fn report(
    db: &Db,
    id: &str,
    lease: &str,
    lease_until: i64,
    progress: ExportProgress,
) -> Result<bool, QueueError> {
    // Progress lost in a crash is reported again by whoever continues the export.
    let mut tx = db.begin_write_unsynced().await?;
    let updated = sqlx::query(
        "UPDATE exports SET lease_until = $1, files_done = $2, files_total = $3,
             bytes_done = $4, bytes_total = $5
         WHERE id = $6 AND lease = $7 AND state = 'running'",
    )
    .bind(lease_until)
    .bind(progress.files_done)
    .bind(progress.files_total)
    .bind(progress.bytes_done)
    .bind(progress.bytes_total)
    .bind(id)
    .bind(lease)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(updated == 1)
}

/// Ends a claimed export: `done`, or `failed` with `error`.
///
/// `record` is the audit record of the end, appended in the same transaction, so the trail
/// names the export exactly when it is marked done.
pub async fn finish(
    db: &Db,
    id: &str,
    lease: &str,
    progress: ExportProgress,
    error: Option<&str>,
    now: i64,
    record: Option<crate::audit::AuditEntry>,
) -> Result<bool, QueueError> {
    let mut tx = db.begin_write().await?;
    let updated = sqlx::query(
        "UPDATE exports SET state = $1, error = $2, finished_at = $3, lease = NULL,
             lease_until = NULL, files_done = $4, files_total = $5, bytes_done = $6, bytes_total = $7
         WHERE id = $8 AND lease = $9 AND state = 'running'",
    )
    .bind(if error.is_some() { "failed" } else { "done" })
    .bind(error)
    .bind(now)
    .bind(progress.files_done)
    .bind(progress.files_total)
    .bind(progress.bytes_done)
    .bind(progress.bytes_total)
    .bind(id)
    .bind(lease)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if let (1, Some(record)) = (updated, record) {
        crate::audit::append_in(&mut tx, record).await?;
    }
    tx.commit().await?;
    Ok(updated == 1)
}

/// Exports that ended (done or failed) before `cutoff` and whose files are still kept.
pub async fn ended_before(db: &Db, cutoff: i64) -> Result<Vec<String>, QueueError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM exports WHERE state IN ('done', 'failed') AND finished_at < $1
         ORDER BY finished_at",
    )
    .bind(cutoff)
    .fetch_all(db.pool())
    .await?)
}

/// Marks an export's files as deleted.
pub async fn mark_removed(db: &Db, id: &str, now: i64) -> Result<(), QueueError> {
    let mut tx = db.begin_write().await?;
    sqlx::query("UPDATE exports SET state = 'removed', removed_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
