//! The evidence kept per recording (migration 0009): the duration check made when its manifest
//! was written, and the last full re-read by the scheduled verifier.

use super::outbox::{self, EventType, VerifyFailure};
use super::{Db, QueueError};

/// The duration check of one recording, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletenessRecord<'a> {
    /// `complete`, `short` or `unknown`.
    pub verdict: &'a str,
    pub covered_ms: i64,
    pub shortfall_ms: Option<i64>,
    pub note: Option<&'a str>,
}

/// Stores the check; returns the verdict it replaces (None when the recording had none), so
/// the caller counts a recording once when it turns short.
pub async fn record_completeness(
    db: &Db,
    recording: i64,
    check: &CompletenessRecord<'_>,
    now: i64,
) -> Result<Option<String>, QueueError> {
    let mut tx = db.begin_write().await?;
    let previous: Option<Option<String>> =
        sqlx::query_scalar("SELECT completeness FROM recordings WHERE id = $1")
            .bind(recording)
            .fetch_optional(&mut *tx)
            .await?;
    sqlx::query(
        "UPDATE recordings SET completeness = $1, covered_ms = $2, shortfall_ms = $3,
             completeness_note = $4, completeness_checked_at = $5 WHERE id = $6",
    )
    .bind(check.verdict)
    .bind(check.covered_ms)
    .bind(check.shortfall_ms)
    .bind(check.note)
    .bind(now)
    .bind(recording)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(previous.flatten())
}

/// A recording the verifier may read next.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct VerifyCandidate {
    pub id: i64,
    pub manifest_key: String,
    /// Media and metadata bytes of its archived chunks: what a full re-read costs.
    pub archived_bytes: i64,
    pub last_verified_at: Option<i64>,
}

/// The recording with a manifest verified longest ago (never verified first, then by id), read
/// from the index `recordings_verify_order`, whose expression this repeats.
pub async fn next_to_verify(db: &Db) -> Result<Option<VerifyCandidate>, QueueError> {
    Ok(sqlx::query_as(
        "SELECT r.id, r.manifest_key, COALESCE(c.archived_bytes, 0) AS archived_bytes, r.last_verified_at
         FROM recordings r LEFT JOIN recording_counts c ON c.recording_id = r.id
         WHERE r.manifest_key IS NOT NULL
         ORDER BY COALESCE(r.last_verified_at, 0), r.id LIMIT 1",
    )
    .fetch_optional(db.pool())
    .await?)
}

/// How a verification ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum VerifyResult {
    /// Every object matched its manifest.
    Ok,
    /// An object is missing or differs from its manifest.
    Failed,
    /// The store could not be read; nothing is known about the objects.
    Error,
}

impl VerifyResult {
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyResult::Ok => "ok",
            VerifyResult::Failed => "failed",
            VerifyResult::Error => "error",
        }
    }
}

/// Stores a verification's outcome; `detail` is bounded by the caller.
pub async fn record_verification(
    db: &Db,
    recording: i64,
    result: VerifyResult,
    detail: Option<&str>,
    at: i64,
) -> Result<(), QueueError> {
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "UPDATE recordings SET last_verified_at = $1, last_verify_result = $2, last_verify_detail = $3
         WHERE id = $4",
    )
    .bind(at)
    .bind(result.as_str())
    .bind(detail)
    .bind(recording)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Stores a verification that found objects missing or altered and, in the same transaction,
/// the `verify_failed` event that announces it (for the sinks that take it).
pub async fn record_failed_verification(
    db: &Db,
    recording: i64,
    detail: Option<&str>,
    failure: &VerifyFailure<'_>,
    at: i64,
) -> Result<(), QueueError> {
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "UPDATE recordings SET last_verified_at = $1, last_verify_result = 'failed', last_verify_detail = $2
         WHERE id = $3",
    )
    .bind(at)
    .bind(detail)
    .bind(recording)
    .execute(&mut *tx)
    .await?;
    let announced =
        outbox::record_verify_failure(&mut tx, db.events(), recording, failure, at).await?;
    tx.commit().await?;
    if announced {
        db.events().wake(EventType::VerifyFailed);
    }
    Ok(())
}

/// Recordings whose chunks fall short of their announced duration, and recordings whose last
/// verification failed, each counted from its partial index.
pub async fn evidence_counts(db: &Db) -> Result<EvidenceCounts, QueueError> {
    let count = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql).fetch_one(db.pool()).await
    };
    Ok(EvidenceCounts {
        short: count("SELECT COUNT(*) FROM recordings WHERE completeness = 'short'").await?,
        verify_failed: count("SELECT COUNT(*) FROM recordings WHERE last_verify_result = 'failed'")
            .await?,
    })
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EvidenceCounts {
    pub short: i64,
    pub verify_failed: i64,
}
