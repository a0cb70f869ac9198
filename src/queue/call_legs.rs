//! Call legs and the recording starts owed for them.
//!
//! Intake writes a leg's newest state (by eventTime, so a late older event changes nothing)
//! and, when recording on policy is on and the leg is established, the start intent, in the
//! delivery's transaction. The starter claims a due start under a lease, as workers claim
//! jobs: a lapsed lease (its starter died) makes the start due again, and only the lease's
//! holder may record how it went.

use serde::Serialize;

use super::{Backend, Db, QueueError, Tx};
use crate::call_leg::LegChange;

/// Where a leg's recording start is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StartState {
    /// Nothing to start: recording on policy is off, or the leg was never established.
    None,
    /// A start is owed and due at `start_next_attempt_at`.
    Pending,
    /// A starter holds the start under a lease.
    Starting,
    /// The recording was started; `recording_id` names it.
    Started,
    /// Given up after the attempts allowed; `last_error` says why.
    Failed,
}

impl StartState {
    pub const ALL: [StartState; 5] = [
        StartState::None,
        StartState::Pending,
        StartState::Starting,
        StartState::Started,
        StartState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StartState::None => "none",
            StartState::Pending => "pending",
            StartState::Starting => "starting",
            StartState::Started => "started",
            StartState::Failed => "failed",
        }
    }
}

/// What intake did with one change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// The change is now the leg's state (false: an older change arriving late).
    pub newest: bool,
    /// A recording start became owed with this change.
    pub start_owed: bool,
}

/// Stores `change` in the caller's transaction; with `auto_start`, an established leg
/// whose start was never owed gets one, due now.
pub async fn record(
    tx: &mut Tx,
    change: &LegChange,
    auto_start: bool,
    now: i64,
) -> Result<Recorded, QueueError> {
    let newest = sqlx::query(
        "INSERT INTO call_legs (call_leg_id, conversation_id, state, first_seen_at, state_changed_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $4)
         ON CONFLICT (call_leg_id) DO UPDATE SET state = excluded.state,
             state_changed_at = excluded.state_changed_at, updated_at = excluded.updated_at
         WHERE call_legs.state_changed_at < excluded.state_changed_at",
    )
    .bind(&change.call_leg_id)
    .bind(&change.conversation_id)
    .bind(&change.state)
    .bind(now)
    .bind(change.state_changed_at)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    let start_owed = auto_start
        && newest
        && change.is_established()
        && sqlx::query(
            "UPDATE call_legs SET start_state = 'pending', start_requested_at = $2,
                 start_next_attempt_at = $2, updated_at = $2
             WHERE call_leg_id = $1 AND start_state = 'none'",
        )
        .bind(&change.call_leg_id)
        .bind(now)
        .execute(&mut **tx)
        .await?
        .rows_affected()
            == 1;
    Ok(Recorded { newest, start_owed })
}

/// A start claimed by a starter, to make before `lease_until`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedStart {
    pub id: i64,
    pub call_leg_id: String,
    pub conversation_id: String,
    /// Attempts including this one.
    pub start_attempts: i64,
    /// When the first attempt went out (this one, on a first attempt).
    pub start_first_sent_at: i64,
    pub start_lease_owner: String,
}

fn due_sql(backend: Backend) -> String {
    let lock = match backend {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    format!(
        "UPDATE call_legs SET start_state = 'starting', start_attempts = start_attempts + 1,
             start_first_sent_at = COALESCE(start_first_sent_at, $3),
             start_lease_owner = $1, start_lease_until = $2, updated_at = $3
         WHERE id IN (
             SELECT id FROM call_legs
             WHERE start_state = 'pending' AND start_next_attempt_at <= $3
             ORDER BY start_next_attempt_at, id LIMIT $4 {lock})
         RETURNING id, call_leg_id, conversation_id, start_attempts, start_first_sent_at, start_lease_owner"
    )
}

/// Claims up to `limit` due starts for `owner` until `lease_until`; a start whose lease
/// lapsed is due again first. Synced: a claim is followed by a call to ACS.
pub async fn claim_starts(
    db: &Db,
    owner: &str,
    limit: usize,
    lease_until: i64,
    now: i64,
) -> Result<Vec<ClaimedStart>, QueueError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "UPDATE call_legs SET start_state = 'pending', start_lease_owner = NULL, start_lease_until = NULL,
             start_next_attempt_at = $1, updated_at = $1
         WHERE start_state = 'starting' AND start_lease_until < $1",
    )
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let mut claimed: Vec<ClaimedStart> = sqlx::query_as(sqlx::AssertSqlSafe(due_sql(db.backend())))
        .bind(owner.to_owned())
        .bind(lease_until)
        .bind(now)
        .bind(limit as i64)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    claimed.sort_by_key(|start| start.id);
    Ok(claimed)
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    Started {
        recording_id: String,
    },
    /// Pending again, due at `next_attempt_at`.
    Retry {
        next_attempt_at: i64,
        error: String,
    },
    /// Given up.
    Failed {
        error: String,
    },
    /// Not the attempt's fault (shutdown): pending again, the attempt not counted.
    Release {
        error: String,
    },
}

/// Most bytes of an error kept; ACS's messages are short, a proxy's page may not be.
pub const MAX_ERROR_BYTES: usize = 1024;

fn bounded(error: &str) -> &str {
    &error[..error.floor_char_boundary(MAX_ERROR_BYTES)]
}

/// Records how `start` went; false when its lease was lost meanwhile (nothing changed).
pub async fn finish_start(
    db: &Db,
    start: &ClaimedStart,
    outcome: &StartOutcome,
    now: i64,
) -> Result<bool, QueueError> {
    let owned = "WHERE id = $1 AND start_lease_owner = $2 AND start_state = 'starting'";
    let released = "start_lease_owner = NULL, start_lease_until = NULL";
    let query = match outcome {
        StartOutcome::Started { recording_id } => sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE call_legs SET start_state = 'started', recording_id = $3, started_at = $4,
                 updated_at = $4, last_error = NULL, {released} {owned}"
        )))
        .bind(start.id)
        .bind(start.start_lease_owner.clone())
        .bind(recording_id.clone())
        .bind(now),
        StartOutcome::Retry {
            next_attempt_at,
            error,
        } => sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE call_legs SET start_state = 'pending', start_next_attempt_at = $3, last_error = $4,
                 updated_at = $5, {released} {owned}"
        )))
        .bind(start.id)
        .bind(start.start_lease_owner.clone())
        .bind(*next_attempt_at)
        .bind(bounded(error).to_owned())
        .bind(now),
        StartOutcome::Failed { error } => sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE call_legs SET start_state = 'failed', last_error = $3, updated_at = $4,
                 {released} {owned}"
        )))
        .bind(start.id)
        .bind(start.start_lease_owner.clone())
        .bind(bounded(error).to_owned())
        .bind(now),
        StartOutcome::Release { error } => sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE call_legs SET start_state = 'pending', start_attempts = start_attempts - 1,
                 start_next_attempt_at = $3, last_error = $4, updated_at = $3, {released} {owned}"
        )))
        .bind(start.id)
        .bind(start.start_lease_owner.clone())
        .bind(now)
        .bind(bounded(error).to_owned()),
    };
    let mut tx = db.begin_write().await?;
    let updated = query.execute(&mut *tx).await?.rows_affected();
    tx.commit().await?;
    Ok(updated == 1)
}

/// A leg as the views show it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CallLegRow {
    pub id: i64,
    pub call_leg_id: String,
    pub conversation_id: String,
    pub state: String,
    pub first_seen_at: i64,
    pub state_changed_at: i64,
    pub updated_at: i64,
    pub start_state: String,
    pub start_requested_at: Option<i64>,
    pub start_first_sent_at: Option<i64>,
    pub start_attempts: i64,
    pub start_next_attempt_at: Option<i64>,
    pub recording_id: Option<String>,
    pub started_at: Option<i64>,
    pub last_error: Option<String>,
}

const COLUMNS: &str =
    "id, call_leg_id, conversation_id, state, first_seen_at, state_changed_at, updated_at,
    start_state, start_requested_at, start_first_sent_at, start_attempts, start_next_attempt_at,
    recording_id, started_at, last_error";

/// Legs newest first (by row id), with ids below `before`, optionally of one conversation.
pub async fn list(
    db: &Db,
    conversation_id: Option<&str>,
    before: Option<i64>,
    limit: usize,
) -> Result<Vec<CallLegRow>, QueueError> {
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM call_legs
         WHERE id < $1 AND ($2 IS NULL OR conversation_id = $2)
         ORDER BY id DESC LIMIT $3"
    )))
    .bind(before.unwrap_or(i64::MAX))
    .bind(conversation_id.map(str::to_owned))
    .bind(limit as i64)
    .fetch_all(db.pool())
    .await?;
    Ok(rows)
}

/// One leg by row id or call leg id.
pub async fn find(db: &Db, key: &str) -> Result<Option<CallLegRow>, QueueError> {
    let row_id = key.parse::<i64>().ok();
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM call_legs WHERE call_leg_id = $1 OR id = $2
         ORDER BY CASE WHEN call_leg_id = $1 THEN 0 ELSE 1 END LIMIT 1"
    )))
    .bind(key.to_owned())
    .bind(row_id)
    .fetch_optional(db.pool())
    .await?;
    Ok(row)
}
