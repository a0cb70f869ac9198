//! The event outbox: CloudEvents about recordings, one row per event and sink, written in the
//! transaction that records the change they announce (a manifest, a failed chunk, an erasure,
//! a failed verification), so an event exists exactly when its change is committed. The
//! dispatcher (`crate::events`) claims rows with a lease, in order per recording and sink, and
//! records how each delivery went.

mod claim;
mod envelope;
mod failure;
mod routes;
mod sink_state;
mod verify_failure;

use serde::Serialize;

pub use claim::{Delivery, Outcome, claim, finish, finish_many, release_lapsed};
pub use envelope::{EventType, NewEvent, UnknownEventType, cloud_event, subject};
pub use failure::record_failure;
pub use routes::{EventRoutes, SinkRoute};
pub use sink_state::{DisabledSink, disable_sink, disabled_sinks, enable_sink, is_disabled};
pub use verify_failure::{FailedObject, ObjectFacts, VerifyFailure, record_verify_failure};

use super::{Db, QueueError, Tx, now_millis};

/// Where an outbox row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RowState {
    Pending,
    Delivering,
    Delivered,
    Failed,
}

impl RowState {
    pub const ALL: [RowState; 4] = [
        RowState::Pending,
        RowState::Delivering,
        RowState::Delivered,
        RowState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RowState::Pending => "pending",
            RowState::Delivering => "delivering",
            RowState::Delivered => "delivered",
            RowState::Failed => "failed",
        }
    }
}

impl std::str::FromStr for RowState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RowState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| {
                format!("`{s}` is not an event state (pending, delivering, delivered, failed)")
            })
    }
}

/// Writes `event` for every sink whose types include it, inside `tx`; answers how many rows.
/// An event id already recorded for a sink (the same manifest version written again) adds
/// nothing for that sink.
pub async fn record(
    tx: &mut Tx,
    routes: &EventRoutes,
    event: &NewEvent,
    now: i64,
) -> Result<u64, QueueError> {
    let sinks: Vec<&SinkRoute> = routes.sinks_for(event.event_type).collect();
    if sinks.is_empty() {
        return Ok(0);
    }
    let body = envelope::cloud_event(routes.source(), event);
    let mut written = 0;
    for sink in sinks {
        written += sqlx::query(
            "INSERT INTO event_outbox (event_id, sink, event_type, recording_id, body, state, attempts,
                 next_attempt_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6, $6)
             ON CONFLICT (event_id, sink) DO NOTHING",
        )
        .bind(&event.id)
        .bind(&sink.name)
        .bind(event.event_type.short_name())
        .bind(event.recording_id)
        .bind(&body)
        .bind(now)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    }
    Ok(written)
}

/// One outbox row as the admin API shows it (without its body).
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Row {
    pub id: i64,
    pub event_id: String,
    pub sink: String,
    pub event_type: String,
    pub recording_id: i64,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub delivered_at: Option<i64>,
}

const ROW_COLUMNS: &str = "id, event_id, sink, event_type, recording_id, state, attempts, next_attempt_at, last_error, created_at, updated_at, delivered_at";

/// Rows newest first, optionally of one state and sink; `before` continues after that id.
pub async fn list(
    db: &Db,
    state: Option<RowState>,
    sink: Option<&str>,
    limit: i64,
    before: Option<i64>,
) -> Result<Vec<Row>, QueueError> {
    let sql = format!(
        "SELECT {ROW_COLUMNS} FROM event_outbox
         WHERE ($1 IS NULL OR state = $1) AND ($2 IS NULL OR sink = $2) AND ($3 IS NULL OR id < $3)
         ORDER BY id DESC LIMIT $4"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(state.map(RowState::as_str))
        .bind(sink.map(str::to_owned))
        .bind(before)
        .bind(limit)
        .fetch_all(db.pool())
        .await?)
}

/// The body of one row, the CloudEvent exactly as delivered.
pub async fn body(db: &Db, id: i64) -> Result<Option<String>, QueueError> {
    Ok(
        sqlx::query_scalar("SELECT body FROM event_outbox WHERE id = $1")
            .bind(id)
            .fetch_optional(db.pool())
            .await?,
    )
}

/// What to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// These rows, if they are `failed`.
    Ids(Vec<i64>),
    /// Every `failed` row, of one sink or of all.
    Failed { sink: Option<String> },
}

/// Puts `failed` rows back to `pending` with their attempts reset; answers how many.
pub async fn replay(db: &Db, which: &Replay) -> Result<u64, QueueError> {
    let now = now_millis();
    let reset = "UPDATE event_outbox SET state = 'pending', attempts = 0, next_attempt_at = $1, last_error = NULL, updated_at = $1";
    let mut tx = db.begin_write().await?;
    let replayed = match which {
        Replay::Ids(ids) => {
            let mut total = 0;
            for id in ids {
                total += sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{reset} WHERE id = $2 AND state = 'failed'"
                )))
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            total
        }
        Replay::Failed { sink } => sqlx::query(sqlx::AssertSqlSafe(format!(
            "{reset} WHERE state = 'failed' AND ($2 IS NULL OR sink = $2)"
        )))
        .bind(now)
        .bind(sink.clone())
        .execute(&mut *tx)
        .await?
        .rows_affected(),
    };
    tx.commit().await?;
    db.events().wake_all();
    Ok(replayed)
}

/// Depth and age of one sink's outbox, for `/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SinkGauges {
    pub sink: String,
    pub pending: i64,
    pub delivering: i64,
    pub failed: i64,
    /// Seconds since the oldest row not yet delivered (pending or delivering) was written; 0
    /// when there is none.
    pub oldest_pending_age_seconds: f64,
}

/// Gauges of `sink`, each read from the `(sink, state, id)` index: counts walk only the rows
/// in that state, the oldest row is the first index entry. Delivered rows are never counted.
pub async fn gauges(db: &Db, sink: &str, now: i64) -> Result<SinkGauges, QueueError> {
    let count = |state: &'static str| {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM event_outbox WHERE sink = $1 AND state = $2",
        )
        .bind(sink.to_owned())
        .bind(state)
        .fetch_one(db.pool())
    };
    let pending = count("pending").await?;
    let delivering = count("delivering").await?;
    let failed = count("failed").await?;
    let mut oldest: Option<i64> = None;
    for state in ["pending", "delivering"] {
        let first: Option<i64> = sqlx::query_scalar(
            "SELECT created_at FROM event_outbox WHERE sink = $1 AND state = $2 ORDER BY id LIMIT 1",
        )
        .bind(sink.to_owned())
        .bind(state)
        .fetch_optional(db.pool())
        .await?;
        oldest = match (oldest, first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    Ok(SinkGauges {
        sink: sink.to_owned(),
        pending,
        delivering,
        failed,
        oldest_pending_age_seconds: oldest
            .map(|at| ((now - at).max(0)) as f64 / 1000.0)
            .unwrap_or(0.0),
    })
}

#[cfg(test)]
mod tests;
