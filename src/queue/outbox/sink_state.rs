//! Sinks disabled because their receiver answered 410 Gone (migration 0017): kept in the
//! database, so a restart, another replica and the admin API all see the same state, until an
//! operator enables the sink again. A disabled sink's rows stay pending meanwhile.

use serde::Serialize;

use super::super::{Db, QueueError};

/// The longest reason kept (the receiver's answer, as `last_error` has it).
const REASON_BYTES: usize = 2048;

/// One disabled sink.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize)]
pub struct DisabledSink {
    pub sink: String,
    pub disabled_at: i64,
    /// The HTTP status that disabled it (410).
    pub status: i64,
    pub reason: String,
}

/// Every disabled sink, by name.
pub async fn disabled_sinks(db: &Db) -> Result<Vec<DisabledSink>, QueueError> {
    Ok(sqlx::query_as(
        "SELECT sink, disabled_at, status, reason FROM event_sinks_disabled ORDER BY sink",
    )
    .fetch_all(db.pool())
    .await?)
}

/// Whether `sink` is disabled now.
pub async fn is_disabled(db: &Db, sink: &str) -> Result<bool, QueueError> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT disabled_at FROM event_sinks_disabled WHERE sink = $1")
            .bind(sink.to_owned())
            .fetch_optional(db.pool())
            .await?;
    Ok(found.is_some())
}

/// Disables `sink`; a sink already disabled keeps the time and reason it was first disabled
/// with.
pub async fn disable_sink(
    db: &Db,
    sink: &str,
    status: u16,
    reason: &str,
    now: i64,
) -> Result<(), QueueError> {
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "INSERT INTO event_sinks_disabled (sink, disabled_at, status, reason) VALUES ($1, $2, $3, $4)
         ON CONFLICT (sink) DO NOTHING",
    )
    .bind(sink.to_owned())
    .bind(now)
    .bind(i64::from(status))
    .bind(bounded(reason))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Enables `sink` again and wakes its dispatcher in this process (another process's sees it
/// at its next poll); false when it was not disabled.
pub async fn enable_sink(db: &Db, sink: &str) -> Result<bool, QueueError> {
    let mut tx = db.begin_write().await?;
    let removed = sqlx::query("DELETE FROM event_sinks_disabled WHERE sink = $1")
        .bind(sink.to_owned())
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    if let Some(route) = db.events().sinks().iter().find(|route| route.name == sink) {
        route.wake.notify_one();
    }
    Ok(removed > 0)
}

fn bounded(reason: &str) -> &str {
    if reason.len() <= REASON_BYTES {
        return reason;
    }
    let mut end = REASON_BYTES;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}
