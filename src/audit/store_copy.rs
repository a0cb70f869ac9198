//! The audit trail's copy in the archive's store, so it outlives the database: write-once
//! JSON Lines objects, `{prefix}audit/YYYY-MM-DD/<first-seq>-<last-seq>.jsonl`, each holding
//! consecutive records of one day (the day of its first record, UTC), one canonical JSON
//! record a line. Objects go through the same write-once put as metadata documents, so they
//! carry their sha256 and are locked at write where `storage.object_lock_mode` locks at write.
//!
//! A flush is resumable and never overlaps: it first records the range it will write
//! (`audit_flush.pending_last`), then writes it, then moves `flushed_seq`. A flush that died
//! in between is finished by the next one with exactly the same range, hence the same object.

use std::time::Duration;

use bytes::Bytes;
use chrono::DateTime;
use tokio_util::sync::CancellationToken;

use super::chain::records_after;
use super::entry::AuditRecord;
use super::inbox::chain_pending;
use crate::queue::{Db, QueueError};
use crate::storage::{Archive, StorageError, layout};

/// At most this many records per object (and per flush step).
pub const BATCH: i64 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("cannot write the audit trail's copy to the store: {0}")]
    Storage(#[from] StorageError),
}

/// One object written (or found already written with the same records).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flushed {
    pub key: String,
    pub first: i64,
    pub last: i64,
}

/// The object key of records `first..=last`, whose first record is of `day` (`YYYY-MM-DD`).
pub fn object_key(archive: &Archive, day: &str, first: i64, last: i64) -> String {
    format!(
        "{}{day}/{first:012}-{last:012}.jsonl",
        archive.audit_folder()
    )
}

/// (first, last) from an object key's file name, None for anything else.
pub fn range_of(key: &str) -> Option<(i64, i64)> {
    let name = key.rsplit('/').next()?.strip_suffix(".jsonl")?;
    let (first, last) = name.split_once('-')?;
    let (first, last) = (first.parse().ok()?, last.parse().ok()?);
    (first >= 1 && last >= first).then_some((first, last))
}

/// `YYYY-MM-DD` (UTC) of a time in milliseconds.
pub fn day_of(at: i64) -> String {
    DateTime::from_timestamp_millis(at)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string()
}

/// The bytes of one object: each record's canonical JSON, one a line.
pub fn object_bytes(records: &[AuditRecord]) -> Bytes {
    let mut text = String::new();
    for record in records {
        text.push_str(&record.json_line());
        text.push('\n');
    }
    Bytes::from(text)
}

/// Writes the next object, if any records wait; None when the copy is up to date.
pub async fn flush_once(db: &Db, archive: &Archive) -> Result<Option<Flushed>, CopyError> {
    let Some((flushed, last)) = plan(db).await? else {
        return Ok(None);
    };
    let records = records_after(db, flushed, last - flushed).await?;
    let (Some(first_record), Some(last_record)) = (records.first(), records.last()) else {
        return Ok(None);
    };
    let (first, last) = (first_record.seq, last_record.seq);
    let key = object_key(archive, &day_of(first_record.at), first, last);
    archive
        .put_bytes_once(&layout::object_key(&key), object_bytes(&records))
        .await?;
    sqlx::query(
        "UPDATE audit_flush SET flushed_seq = $1, pending_last = NULL WHERE id = 1 AND flushed_seq = $2",
    )
    .bind(last)
    .bind(flushed)
    .execute(db.pool())
    .await
    .map_err(QueueError::from)?;
    tracing::debug!(key, first, last, "audit records copied to the store");
    Ok(Some(Flushed { key, first, last }))
}

/// The range to write next, (flushed_seq, last), recorded as pending before anything is
/// written; None when nothing waits.
async fn plan(db: &Db) -> Result<Option<(i64, i64)>, QueueError> {
    let mut tx = db.begin_write().await?;
    // A no-op update: it takes the row's lock, so two flushers plan one after the other.
    let (flushed, pending): (i64, Option<i64>) = sqlx::query_as(
        "UPDATE audit_flush SET flushed_seq = flushed_seq WHERE id = 1 RETURNING flushed_seq, pending_last",
    )
    .fetch_one(&mut *tx)
    .await?;
    if let Some(last) = pending {
        tx.commit().await?;
        return Ok(Some((flushed, last)));
    }
    let ats: Vec<(i64, i64)> =
        sqlx::query_as("SELECT seq, at FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(flushed)
            .bind(BATCH)
            .fetch_all(&mut *tx)
            .await?;
    let Some(&(_, first_at)) = ats.first() else {
        tx.commit().await?;
        return Ok(None);
    };
    // One day per object: `at` never decreases along the chain, so a day's records are consecutive.
    let day = day_of(first_at);
    let last = ats
        .iter()
        .take_while(|(_, at)| day_of(*at) == day)
        .map(|(seq, _)| *seq)
        .last()
        .unwrap_or(flushed + 1);
    sqlx::query("UPDATE audit_flush SET pending_last = $1 WHERE id = 1")
        .bind(last)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some((flushed, last)))
}

/// Chains the inbox, then flushes until the copy is up to date; answers the objects written.
pub async fn flush_all(db: &Db, archive: &Archive) -> Result<Vec<Flushed>, CopyError> {
    chain_pending(db).await?;
    let mut written = Vec::new();
    while let Some(flushed) = flush_once(db, archive).await? {
        written.push(flushed);
    }
    Ok(written)
}

/// The last seq copied to the store.
pub async fn flushed_seq(db: &Db) -> Result<i64, QueueError> {
    Ok(
        sqlx::query_scalar("SELECT flushed_seq FROM audit_flush WHERE id = 1")
            .fetch_one(db.pool())
            .await?,
    )
}

/// Runs until `shutdown`: flushes everything waiting, then again every `every`.
pub async fn run(db: Db, archive: Archive, every: Duration, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if let Err(err) = flush_all(&db, &archive).await {
            tracing::error!(error = %err, "cannot copy the audit trail to the store; retrying at the next round");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_carry_their_range_and_nothing_else_parses() {
        assert_eq!(
            range_of("p/audit/2026-12-03/000000000001-000000000042.jsonl"),
            Some((1, 42))
        );
        for other in [
            "audit/2026-12-03/notes.txt",
            "audit/2026-12-03/5-4.jsonl",
            "audit/2026-12-03/0-4.jsonl",
            "audit/2026-12-03/a-b.jsonl",
        ] {
            assert_eq!(range_of(other), None, "{other}");
        }
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(1_764_720_000_000), "2025-12-03");
    }
}
