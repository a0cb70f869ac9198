//! Appending to the chain and reading it back.
//!
//! An append first bumps the head row (`UPDATE audit_head … RETURNING`), which takes its row
//! lock on PostgreSQL until the transaction ends (SQLite has one writer anyway). A second
//! appender, in this process or another replica, waits there and then reads the head the
//! first one left, so records get consecutive `seq`s and each names its predecessor's hash.
//! The primary key on `seq` and the unique `prev_hash` refuse a fork even if that ever failed.
//! Append last in a transaction: the lock is held until it commits.

use serde::Serialize;

use super::entry::{AuditEntry, AuditRecord, canonical};
use crate::queue::{Db, QueueError, Tx};

/// The `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Appends `entry` in its own transaction; answers the record as stored.
pub async fn append(db: &Db, entry: AuditEntry) -> Result<AuditRecord, QueueError> {
    let mut tx = db.begin_write().await?;
    let record = append_in(&mut tx, entry).await?;
    tx.commit().await?;
    Ok(record)
}

/// Appends `entry` inside `tx`: the record is kept only if `tx` commits. Call it as the
/// transaction's last statement, since other appenders wait from here until the commit.
pub async fn append_in(tx: &mut Tx, entry: AuditEntry) -> Result<AuditRecord, QueueError> {
    let detail = entry.canonical_detail();
    let (seq, prev_hash, prev_at): (i64, String, i64) =
        sqlx::query_as("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash, at")
            .fetch_one(&mut **tx)
            .await?;
    let mut record = AuditRecord {
        seq,
        // Never earlier than the record before, so time ranges and seq ranges agree even
        // when replicas' clocks differ a little.
        at: entry.at.max(prev_at),
        actor: entry.actor,
        action: entry.action.as_str().to_owned(),
        recording_id: entry.recording_id,
        recording_key: entry.recording_key,
        detail,
        prev_hash,
        hash: String::new(),
    };
    record.hash = record.expected_hash();
    sqlx::query(
        "INSERT INTO audit_log (seq, at, actor, action, recording_id, recording_key, detail, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(record.seq)
    .bind(record.at)
    .bind(&record.actor)
    .bind(&record.action)
    .bind(record.recording_id)
    .bind(&record.recording_key)
    .bind(canonical(&record.detail))
    .bind(&record.prev_hash)
    .bind(&record.hash)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE audit_head SET hash = $1, at = $2 WHERE id = 1")
        .bind(&record.hash)
        .bind(record.at)
        .execute(&mut **tx)
        .await?;
    Ok(record)
}

/// The name records give the recording of row `id` (`callId/recordingKey`), None when no
/// such row exists.
pub async fn recording_name(db: &Db, id: i64) -> Result<Option<String>, QueueError> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT call_id, recording_key FROM recordings WHERE id = $1")
            .bind(id)
            .fetch_optional(db.pool())
            .await?;
    Ok(row.map(|(call_id, key)| AuditEntry::recording_name(&call_id, &key)))
}

/// A record as its row holds it; `detail` is canonical JSON text.
#[derive(Debug, sqlx::FromRow)]
struct AuditRow {
    seq: i64,
    at: i64,
    actor: String,
    action: String,
    recording_id: Option<i64>,
    recording_key: Option<String>,
    detail: String,
    prev_hash: String,
    hash: String,
}

impl From<AuditRow> for AuditRecord {
    fn from(row: AuditRow) -> Self {
        Self {
            seq: row.seq,
            at: row.at,
            actor: row.actor,
            action: row.action,
            recording_id: row.recording_id,
            recording_key: row.recording_key,
            // A detail that no longer parses was changed: kept as text, it fails its hash.
            detail: serde_json::from_str(&row.detail)
                .unwrap_or(serde_json::Value::String(row.detail)),
            prev_hash: row.prev_hash,
            hash: row.hash,
        }
    }
}

const COLUMNS: &str =
    "seq, at, actor, action, recording_id, recording_key, detail, prev_hash, hash";

/// Up to `limit` records after `seq`, in order (the verifier and the store copy walk with it).
pub async fn records_after(db: &Db, seq: i64, limit: i64) -> Result<Vec<AuditRecord>, QueueError> {
    let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2");
    let rows: Vec<AuditRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(seq)
        .bind(limit)
        .fetch_all(db.pool())
        .await?;
    Ok(rows.into_iter().map(AuditRecord::from).collect())
}

/// The head as the database keeps it: (seq, hash) of the newest record, (0, genesis) when empty.
pub async fn head(db: &Db) -> Result<(i64, String), QueueError> {
    Ok(
        sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(db.pool())
            .await?,
    )
}

/// What a page of the trail is filtered by. Times are milliseconds since the epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Records at or after this time.
    pub from: Option<i64>,
    /// Records before this time.
    pub to: Option<i64>,
    /// Only records about this recording row.
    pub recording_id: Option<i64>,
    /// Only records about the recording of this name (`callId/recordingKey`).
    pub recording_key: Option<String>,
    /// The cursor: records after this seq.
    pub after: i64,
    pub limit: i64,
}

/// One page, oldest first; `next_cursor` is present when there may be more.
#[derive(Debug, Clone, Serialize)]
pub struct AuditPage {
    pub records: Vec<AuditRecord>,
    pub next_cursor: Option<String>,
}

/// A page of the trail, keyset-paginated on `seq`.
pub async fn page(db: &Db, query: &AuditQuery) -> Result<AuditPage, QueueError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_log WHERE seq > $1
           AND ($2 IS NULL OR at >= $2) AND ($3 IS NULL OR at < $3)
           AND ($4 IS NULL OR recording_id = $4) AND ($5 IS NULL OR recording_key = $5)
         ORDER BY seq LIMIT $6"
    );
    let rows: Vec<AuditRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(query.after)
        .bind(query.from)
        .bind(query.to)
        .bind(query.recording_id)
        .bind(query.recording_key.as_deref())
        .bind(query.limit)
        .fetch_all(db.pool())
        .await?;
    let records: Vec<AuditRecord> = rows.into_iter().map(AuditRecord::from).collect();
    let next_cursor = (records.len() as i64 == query.limit)
        .then(|| records.last().map(|record| record.seq.to_string()))
        .flatten();
    Ok(AuditPage {
        records,
        next_cursor,
    })
}
