//! Recordings: one row per recording, found by its identity, filed in a folder chosen once;
//! what the manifest and the operator views are built from.

use super::{Db, Job, QueueError, Tx};
use crate::recording::{Announcement, millis, recording_identity};

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Recording {
    pub id: i64,
    pub call_id: String,
    /// The recording's folder below its call: the contract's recordingKey (the recording id,
    /// or the start time as `YYYYMMDDTHHMMSSZ`), with `-2`, `-3`… when another recording of
    /// the call held that name first. Chosen once, when the row is created.
    pub recording_key: String,
    pub recording_id: Option<String>,
    pub server_call_id: Option<String>,
    pub start_time: Option<String>,
    pub duration_ms: Option<i64>,
    pub session_end_reason: Option<String>,
    pub content_type: Option<String>,
    pub channel_type: Option<String>,
    pub format_type: Option<String>,
    pub media_extension: String,
    pub deadline_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub manifest_key: Option<String>,
    pub manifest_written_at: Option<i64>,
    /// The duration check made when the manifest was written (migration 0009): `complete`,
    /// `short` or `unknown`, with its figures; see [`super::integrity`].
    pub completeness: Option<String>,
    pub covered_ms: Option<i64>,
    pub shortfall_ms: Option<i64>,
    pub completeness_note: Option<String>,
    pub completeness_checked_at: Option<i64>,
    /// The scheduled verifier's last full re-read: when, `ok` / `failed` / `error`, and what it found.
    pub last_verified_at: Option<i64>,
    pub last_verify_result: Option<String>,
    pub last_verify_detail: Option<String>,
    /// When the recording was erased (migration 0013); its objects are gone, a tombstone
    /// names them, and nothing of it is archived again.
    pub erased_at: Option<i64>,
    /// `start_time` in epoch milliseconds, when it parses: what retention goes by.
    pub started_at: Option<i64>,
}

pub async fn get(db: &Db, id: i64) -> Result<Option<Recording>, QueueError> {
    Ok(sqlx::query_as("SELECT * FROM recordings WHERE id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await?)
}

/// Every job of a recording, in chunk order.
pub async fn jobs(db: &Db, recording: i64) -> Result<Vec<Job>, QueueError> {
    Ok(
        sqlx::query_as("SELECT * FROM jobs WHERE recording_id = $1 ORDER BY chunk_index, id")
            .bind(recording)
            .fetch_all(db.pool())
            .await?,
    )
}

/// Ids of the events that announced chunks of a recording.
pub async fn event_ids(db: &Db, recording: i64) -> Result<Vec<String>, QueueError> {
    Ok(
        sqlx::query_scalar(
            "SELECT id FROM events WHERE recording_id = $1 ORDER BY received_at, id",
        )
        .bind(recording)
        .fetch_all(db.pool())
        .await?,
    )
}

/// Unsynced: should a crash lose this mark, the manifest sweep writes the same manifest again.
pub async fn set_manifest(db: &Db, recording: i64, key: &str, now: i64) -> Result<(), QueueError> {
    set_manifest_announcing(db, recording, key, now, None).await
}

/// Records the manifest written at `key` and, in the same transaction, the `archived` event
/// announcing it, so the event exists exactly when the record does; the manifest is already
/// readable in the store. Unsynced, like a plain mark: should a power cut (not a process
/// crash, which loses nothing committed) take the commit back, the sweep writes the same
/// manifest version again with the same event id, which is then delivered again. A full
/// fsync here cost about a fifth of the archiving throughput on SQLite (benches/events.sh).
pub async fn set_manifest_announcing(
    db: &Db,
    recording: i64,
    key: &str,
    now: i64,
    event: Option<&super::outbox::NewEvent>,
) -> Result<(), QueueError> {
    let event = event.filter(|event| db.events().wants(event.event_type));
    let mut tx = db.begin_write_unsynced().await?;
    sqlx::query("UPDATE recordings SET manifest_key = $1, manifest_written_at = $2, updated_at = $2 WHERE id = $3")
        .bind(key)
        .bind(now)
        .bind(recording)
        .execute(&mut *tx)
        .await?;
    if let Some(event) = event {
        super::outbox::record(&mut tx, db.events(), event, now).await?;
    }
    tx.commit().await?;
    if let Some(event) = event {
        db.events().wake(event.event_type);
    }
    Ok(())
}

/// Recordings, newest first; `before` is the id to continue after (pagination cursor).
pub async fn list(db: &Db, limit: i64, before: Option<i64>) -> Result<Vec<Recording>, QueueError> {
    Ok(sqlx::query_as(
        "SELECT * FROM recordings WHERE ($1 IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

pub const STALE_MANIFESTS_SQL: &str = "SELECT recording_id FROM recording_counts
     WHERE active_chunks = 0 AND archived_chunks > 0
       AND (manifest_written_at IS NULL OR last_archived_at > manifest_written_at)
     ORDER BY recording_id";

/// Recordings with an archived chunk newer than their manifest (or no manifest yet) and no
/// job still in flight: candidates for a manifest refresh after an interrupted write. A
/// recording with a pending or running job is refreshed when that job ends. Read from the
/// partial index `recording_counts_stale` (migration 0005), whose condition this repeats.
pub async fn stale_manifests(db: &Db) -> Result<Vec<i64>, QueueError> {
    Ok(sqlx::query_scalar(STALE_MANIFESTS_SQL)
        .fetch_all(db.pool())
        .await?)
}

/// Folder names tried for one recording before giving up: far more recordings than one call
/// ever starts in one second.
const FOLDER_ATTEMPTS: u32 = 1000;

/// A recording row as `find_or_create` left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingRow {
    /// An earlier announcement created it; this one was folded in.
    Known(i64),
    /// Created by this announcement: it has no jobs yet.
    Created(i64),
}

impl RecordingRow {
    pub fn id(self) -> i64 {
        match self {
            RecordingRow::Known(id) | RecordingRow::Created(id) => id,
        }
    }
}

/// The row of the recording `work` announces: the one with its identity, else a new one in
/// the first free folder. Runs in the ingest transaction; safe against another replica
/// inserting a recording of the same call at the same time, because both the identity and
/// the folder are unique per call: a clash inserts nothing, and the next round sees the
/// winner's row.
pub async fn find_or_create(
    tx: &mut Tx,
    work: &Announcement,
    now: i64,
) -> Result<RecordingRow, QueueError> {
    let identity = work.identity();
    for _ in 0..FOLDER_ATTEMPTS {
        // One read of the call's recordings (a call has a handful) answers every question:
        // which row has this identity, which older row may take it, which folders are taken.
        let rows: Vec<CallRecording> = sqlx::query_as(
            "SELECT id, identity, recording_key, recording_id, start_time, content_type, channel_type, format_type
             FROM recordings WHERE call_id = $1",
        )
        .bind(&work.call_id)
        .fetch_all(&mut **tx)
        .await?;
        if let Some(id) = find(tx, work, &identity, &rows).await? {
            update(tx, id, work, now).await?;
            return Ok(RecordingRow::Known(id));
        }
        let taken: Vec<String> = rows.into_iter().map(|row| row.recording_key).collect();
        let folder = free_folder(&work.recording_key, &taken);
        if let Some(id) = insert(tx, work, &identity, &folder, now).await? {
            return Ok(RecordingRow::Created(id));
        }
    }
    Err(QueueError::Database(sqlx::Error::Protocol(format!(
        "no free folder for a recording of call {} after {FOLDER_ATTEMPTS} tries",
        work.call_id
    ))))
}

/// What `find_or_create` reads of each recording of a call.
#[derive(Debug, sqlx::FromRow)]
struct CallRecording {
    id: i64,
    identity: Option<String>,
    recording_key: String,
    recording_id: Option<String>,
    start_time: Option<String>,
    content_type: Option<String>,
    channel_type: Option<String>,
    format_type: Option<String>,
}

/// `base`, else `base-2`, `base-3`…: the first name no recording of the call holds.
pub fn free_folder(base: &str, taken: &[String]) -> String {
    let is_free = |name: &str| !taken.iter().any(|t| t == name);
    if is_free(base) {
        return base.to_owned();
    }
    (2u64..)
        .map(|n| format!("{base}-{n}"))
        .find(|name| is_free(name))
        .expect("some suffix is free")
}

/// The row with this identity among the call's `rows`. A row written before identities
/// were kept has none: it is the recording whose folder is the announced key and whose
/// stored fields give the same identity, and it takes that identity now.
async fn find(
    tx: &mut Tx,
    work: &Announcement,
    identity: &str,
    rows: &[CallRecording],
) -> Result<Option<i64>, QueueError> {
    if let Some(known) = rows
        .iter()
        .find(|row| row.identity.as_deref() == Some(identity))
    {
        return Ok(Some(known.id));
    }
    let earlier = rows
        .iter()
        .find(|row| row.recording_key == work.recording_key && row.identity.is_none());
    let Some(row) = earlier else {
        return Ok(None);
    };
    let stored = recording_identity(
        row.recording_id.as_deref(),
        row.start_time.as_deref(),
        [
            row.content_type.as_deref(),
            row.channel_type.as_deref(),
            row.format_type.as_deref(),
        ],
    );
    if stored.as_deref() != Some(identity) {
        return Ok(None);
    }
    let claimed =
        sqlx::query("UPDATE recordings SET identity = $1 WHERE id = $2 AND identity IS NULL")
            .bind(identity)
            .bind(row.id)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    Ok((claimed == 1).then_some(row.id))
}

/// Inserts the recording in `folder`; None when its identity or folder was taken meanwhile.
async fn insert(
    tx: &mut Tx,
    work: &Announcement,
    identity: &str,
    folder: &str,
    now: i64,
) -> Result<Option<i64>, QueueError> {
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO recordings (call_id, recording_key, identity, recording_id, server_call_id, start_time, duration_ms,
             session_end_reason, content_type, channel_type, format_type, media_extension, deadline_at, created_at, updated_at,
             started_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15)
         ON CONFLICT DO NOTHING
         RETURNING id",
    )
    .bind(&work.call_id)
    .bind(folder)
    .bind(identity)
    .bind(&work.recording_id)
    .bind(&work.server_call_id)
    .bind(&work.start_time)
    .bind(work.duration_ms)
    .bind(&work.session_end_reason)
    .bind(&work.content_type)
    .bind(&work.channel_type)
    .bind(&work.format_type)
    .bind(&work.media_extension)
    .bind(millis(work.deadline))
    .bind(now)
    .bind(started_at(work))
    .fetch_optional(&mut **tx)
    .await?;
    Ok(inserted)
}

/// Folds a later announcement of a known recording into its row.
async fn update(tx: &mut Tx, id: i64, work: &Announcement, now: i64) -> Result<(), QueueError> {
    sqlx::query(
        "UPDATE recordings SET
             recording_id = COALESCE(recording_id, $1),
             server_call_id = COALESCE(server_call_id, $2),
             start_time = COALESCE(start_time, $3),
             duration_ms = COALESCE($4, duration_ms),
             session_end_reason = COALESCE($5, session_end_reason),
             content_type = COALESCE(content_type, $6),
             channel_type = COALESCE(channel_type, $7),
             format_type = COALESCE(format_type, $8),
             deadline_at = CASE WHEN $9 < deadline_at THEN $9 ELSE deadline_at END,
             updated_at = $10,
             started_at = COALESCE(started_at, $12)
         WHERE id = $11",
    )
    .bind(&work.recording_id)
    .bind(&work.server_call_id)
    .bind(&work.start_time)
    .bind(work.duration_ms)
    .bind(&work.session_end_reason)
    .bind(&work.content_type)
    .bind(&work.channel_type)
    .bind(&work.format_type)
    .bind(millis(work.deadline))
    .bind(now)
    .bind(id)
    .bind(started_at(work))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The announced start in epoch milliseconds, when it parses.
fn started_at(work: &Announcement) -> Option<i64> {
    let start = work.start_time.as_deref()?.trim();
    chrono::DateTime::parse_from_rfc3339(start)
        .ok()
        .map(|time| time.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_free_name_is_the_key_then_a_suffix() {
        let taken = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(free_folder("20261127T092023Z", &[]), "20261127T092023Z");
        assert_eq!(
            free_folder("20261127T092023Z", &taken(&["20261127T092023Z"])),
            "20261127T092023Z-2"
        );
        assert_eq!(
            free_folder(
                "20261127T092023Z",
                &taken(&[
                    "20261127T092023Z",
                    "20261127T092023Z-2",
                    "20261127T092023Z-4"
                ])
            ),
            "20261127T092023Z-3"
        );
        assert_eq!(free_folder("k", &taken(&["other"])), "k");
    }
}
