//! The inbox: audit records that hot paths write without waiting for the chain.
//!
//! Appending to the chain locks its head until the transaction commits, which would make
//! every archive commit on PostgreSQL wait for the one before. So an archive (and a failed
//! verification the worker finds) only inserts its entry here, in its own transaction, and a
//! chainer appends the inbox to the chain in id order: in one transaction it takes the head's
//! lock, deletes a bounded batch of rows (their delete is their claim, so with several
//! replicas each row is chained exactly once) and appends each as [`append_in`] would. A row
//! is in the inbox or in the chain, never both and never neither: the delete and the appends
//! commit together.
//!
//! `serve` chains every [`CHAIN_INTERVAL`] and once more when it stops; every read that must
//! see everything (`GET /admin/audit`, `callvault audit verify`, the store copy) chains first.
//!
//! [`append_in`]: super::append_in

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::chain::{Head, Unlinked};
use super::entry::{AuditEntry, canonical};
use crate::queue::{Db, QueueError, Tx};

/// At most this many rows are chained in one transaction.
pub const BATCH: i64 = 500;

/// How often `serve` chains what waits in the inbox.
pub const CHAIN_INTERVAL: Duration = Duration::from_secs(1);

/// Puts `entry` in the inbox inside `tx`: it is kept only if `tx` commits, and takes no
/// lock another writer waits for.
pub async fn enqueue_in(tx: &mut Tx, entry: AuditEntry) -> Result<(), QueueError> {
    let unlinked = Unlinked::from(entry);
    sqlx::query(
        "INSERT INTO audit_inbox (at, actor, action, recording_id, recording_key, detail)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(unlinked.at)
    .bind(&unlinked.actor)
    .bind(&unlinked.action)
    .bind(unlinked.recording_id)
    .bind(&unlinked.recording_key)
    .bind(canonical(&unlinked.detail))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Puts `entry` in the inbox in its own transaction.
pub async fn enqueue(db: &Db, entry: AuditEntry) -> Result<(), QueueError> {
    let mut tx = db.begin_write().await?;
    enqueue_in(&mut tx, entry).await?;
    tx.commit().await?;
    Ok(())
}

/// An inbox row as a chainer takes it.
#[derive(Debug, sqlx::FromRow)]
struct InboxRow {
    id: i64,
    at: i64,
    actor: String,
    action: String,
    recording_id: Option<i64>,
    recording_key: Option<String>,
    detail: String,
}

impl From<InboxRow> for Unlinked {
    fn from(row: InboxRow) -> Self {
        Self {
            at: row.at,
            actor: row.actor,
            action: row.action,
            recording_id: row.recording_id,
            recording_key: row.recording_key,
            // Written as canonical JSON; a row changed since is chained as the text it holds.
            detail: serde_json::from_str(&row.detail)
                .unwrap_or(serde_json::Value::String(row.detail)),
        }
    }
}

/// Chains up to [`BATCH`] inbox rows of id at most `up_to`, in id order, after `head`,
/// whose lock `tx` holds. Answers how many were chained.
pub(super) async fn chain_locked(
    tx: &mut Tx,
    head: &mut Head,
    up_to: i64,
) -> Result<i64, QueueError> {
    // The delete claims the rows: a row another chainer took first is simply not returned.
    let mut rows: Vec<InboxRow> = sqlx::query_as(
        "DELETE FROM audit_inbox WHERE id IN
             (SELECT id FROM audit_inbox WHERE id <= $1 ORDER BY id LIMIT $2)
         RETURNING id, at, actor, action, recording_id, recording_key, detail",
    )
    .bind(up_to)
    .bind(BATCH)
    .fetch_all(&mut **tx)
    .await?;
    // RETURNING promises no order.
    rows.sort_by_key(|row| row.id);
    let chained = rows.len() as i64;
    for row in rows {
        head.push(tx, Unlinked::from(row)).await?;
    }
    Ok(chained)
}

/// Chains every row the inbox holds when called (rows written meanwhile wait for the next
/// call, so a busy writer cannot keep this going), a bounded batch per transaction. Answers
/// how many were chained. Safe to run on several replicas at once.
pub async fn chain_pending(db: &Db) -> Result<i64, QueueError> {
    let newest: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM audit_inbox")
        .fetch_one(db.pool())
        .await?;
    let Some(up_to) = newest else {
        return Ok(0);
    };
    let mut total = 0;
    loop {
        let mut tx = db.begin_write().await?;
        let mut head = Head::lock(&mut tx).await?;
        let chained = chain_locked(&mut tx, &mut head, up_to).await?;
        if chained > 0 {
            head.save(&mut tx).await?;
        }
        tx.commit().await?;
        total += chained;
        if chained < BATCH {
            return Ok(total);
        }
    }
}

/// How many records wait in the inbox, not chained yet.
pub async fn unchained(db: &Db) -> Result<i64, QueueError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM audit_inbox")
        .fetch_one(db.pool())
        .await?)
}

/// Chains the inbox every `every` until `shutdown`. The last rows written before a stop are
/// chained by [`RunningApp::stop`](crate::app::RunningApp::stop), once nothing writes any more.
pub async fn run(db: Db, every: Duration, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match chain_pending(&db).await {
            Ok(0) => {}
            Ok(chained) => tracing::debug!(chained, "audit inbox chained"),
            Err(err) => tracing::warn!(
                error = %err,
                "cannot chain the audit inbox; its records wait there until the next round"
            ),
        }
    }
}
