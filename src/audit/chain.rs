//! Appending to the chain and reading it back.
//!
//! An append first locks the head row (a no-op `UPDATE audit_head … RETURNING`), which holds
//! its row lock on PostgreSQL until the transaction ends (SQLite has one writer anyway). A
//! second appender, in this process or another replica, waits there and then reads the head
//! the first one left, so records get consecutive `seq`s and each names its predecessor's
//! hash. The primary key on `seq` and the unique `prev_hash` refuse a fork even if that ever
//! failed. Append last in a transaction: the lock is held until it commits. Hot paths do not
//! append; they enqueue into the inbox (`inbox.rs`), which a chainer appends from.

use serde::Serialize;
use serde_json::Value;

use super::entry::{AuditEntry, AuditRecord, canonical};
use super::inbox;
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
///
/// An operator's action is appended at once, so the trail shows it the moment it is done.
/// What waits in the inbox happened before it, so one bounded batch of that is chained first,
/// under the same lock: the chain's order then stays close to the order things happened in,
/// instead of an action overtaking the archives that preceded it by up to a chainer's round.
pub async fn append_in(tx: &mut Tx, entry: AuditEntry) -> Result<AuditRecord, QueueError> {
    let mut head = Head::lock(tx).await?;
    inbox::chain_locked(tx, &mut head, i64::MAX).await?;
    let record = head.push(tx, Unlinked::from(entry)).await?;
    head.save(tx).await?;
    Ok(record)
}

/// A record's contents before it is linked into the chain: an entry, or an inbox row.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Unlinked {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub recording_id: Option<i64>,
    pub recording_key: Option<String>,
    /// Already bounded ([`AuditEntry::canonical_detail`]).
    pub detail: Value,
}

impl From<AuditEntry> for Unlinked {
    fn from(entry: AuditEntry) -> Self {
        Self {
            detail: entry.canonical_detail(),
            at: entry.at,
            actor: entry.actor,
            action: entry.action.as_str().to_owned(),
            recording_id: entry.recording_id,
            recording_key: entry.recording_key,
        }
    }
}

/// The chain's head as a transaction holding its lock sees it; [`Head::save`] writes it back.
#[derive(Debug)]
pub(super) struct Head {
    seq: i64,
    hash: String,
    at: i64,
}

impl Head {
    /// Takes the head row's lock until `tx` ends, and reads it.
    pub(super) async fn lock(tx: &mut Tx) -> Result<Head, QueueError> {
        let (seq, hash, at) =
            sqlx::query_as("UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash, at")
                .fetch_one(&mut **tx)
                .await?;
        Ok(Head { seq, hash, at })
    }

    /// Links `unlinked` after the head, inserts it, and moves the head to it.
    pub(super) async fn push(
        &mut self,
        tx: &mut Tx,
        unlinked: Unlinked,
    ) -> Result<AuditRecord, QueueError> {
        let mut record = AuditRecord {
            seq: self.seq + 1,
            // Never earlier than the record before, so time ranges and seq ranges agree even
            // when replicas' clocks differ a little, or a record waited in the inbox.
            at: unlinked.at.max(self.at),
            actor: unlinked.actor,
            action: unlinked.action,
            recording_id: unlinked.recording_id,
            recording_key: unlinked.recording_key,
            detail: unlinked.detail,
            prev_hash: self.hash.clone(),
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
        self.seq = record.seq;
        self.hash.clone_from(&record.hash);
        self.at = record.at;
        Ok(record)
    }

    /// Writes the head back: the newest record's seq, hash and time.
    pub(super) async fn save(self, tx: &mut Tx) -> Result<(), QueueError> {
        sqlx::query("UPDATE audit_head SET seq = $1, hash = $2, at = $3 WHERE id = 1")
            .bind(self.seq)
            .bind(&self.hash)
            .bind(self.at)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
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
