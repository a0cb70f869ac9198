//! Writing one webhook delivery: event ids, recordings, chunk jobs and quarantine, all in the
//! caller's transaction so the delivery is committed whole before it is acknowledged.

use sqlx::Row;

use super::{QueueError, Tx, recordings};
use crate::recording::{Announcement, millis};

/// What became of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    /// New work was queued (or the chunks were already known).
    Accepted,
    /// The id was seen before; nothing was done.
    Duplicate,
    /// Stored in quarantine with its reason.
    Quarantined,
    /// A type we do not act on, counted and dropped.
    Ignored,
    /// It announced a recording that was erased: recorded, counted, and nothing queued.
    Erased,
}

impl EventOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            EventOutcome::Accepted => "accepted",
            EventOutcome::Duplicate => "duplicate",
            EventOutcome::Quarantined => "quarantined",
            EventOutcome::Ignored => "ignored",
            EventOutcome::Erased => "erased",
        }
    }
}

/// Records an event id; false when it was already recorded (a redelivery).
pub async fn claim_event_id(
    tx: &mut Tx,
    id: &str,
    event_type: &str,
    outcome: EventOutcome,
    now: i64,
) -> Result<bool, QueueError> {
    let inserted = sqlx::query(
        "INSERT INTO events (id, event_type, received_at, outcome) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(event_type)
    .bind(now)
    .bind(outcome.as_str())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Changes the outcome recorded for an event id.
pub async fn set_event_outcome(
    tx: &mut Tx,
    id: &str,
    outcome: EventOutcome,
    recording: Option<i64>,
) -> Result<(), QueueError> {
    sqlx::query("UPDATE events SET outcome = $1, recording_id = $2 WHERE id = $3")
        .bind(outcome.as_str())
        .bind(recording)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Most bytes of an event's payload kept in quarantine. Enough to read what was wrong with
/// any real event (Event Grid caps an event at 1 MB; ours are a few KB); a larger one is
/// cut, and its full size and sha256 are kept so it can still be identified.
pub const MAX_STORED_PAYLOAD_BYTES: usize = 64 * 1024;

/// Most bytes of a reason stored; reasons quote their input, this bounds them all the same.
pub const MAX_REASON_BYTES: usize = 1024;

/// An event's payload as quarantine keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPayload {
    /// The payload, cut to [`MAX_STORED_PAYLOAD_BYTES`] on a character boundary.
    pub text: String,
    /// The full payload's size in bytes.
    pub bytes: i64,
    /// Hex sha256 of the full payload.
    pub sha256: String,
    /// Whether `text` is a prefix of the payload rather than all of it.
    pub truncated: bool,
}

impl StoredPayload {
    pub fn of(payload: &str) -> Self {
        use sha2::Digest;
        let kept = payload.floor_char_boundary(MAX_STORED_PAYLOAD_BYTES);
        Self {
            text: payload[..kept].to_owned(),
            bytes: payload.len() as i64,
            sha256: hex::encode(sha2::Sha256::digest(payload.as_bytes())),
            truncated: kept < payload.len(),
        }
    }
}

/// An invalid event, ready to be stored with the reason it was refused.
#[derive(Debug, Clone)]
pub struct Quarantined<'a> {
    pub event_id: Option<&'a str>,
    pub event_type: Option<&'a str>,
    pub reason: &'a str,
    pub payload: &'a StoredPayload,
}

/// Stores an invalid event with the reason it was refused.
pub async fn quarantine(tx: &mut Tx, entry: &Quarantined<'_>, now: i64) -> Result<i64, QueueError> {
    let reason = &entry.reason[..entry.reason.floor_char_boundary(MAX_REASON_BYTES)];
    let row = sqlx::query(
        "INSERT INTO quarantine (event_id, event_type, reason, payload, payload_bytes, payload_sha256, payload_truncated, received_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(entry.event_id)
    .bind(entry.event_type)
    .bind(reason)
    .bind(&entry.payload.text)
    .bind(entry.payload.bytes)
    .bind(&entry.payload.sha256)
    .bind(i64::from(entry.payload.truncated))
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.try_get(0)?)
}

/// What enqueueing an announcement did.
#[derive(Debug, PartialEq, Eq)]
pub enum Enqueued {
    /// The recording row and how many chunk jobs were new (the rest were already known).
    Queued { recording: i64, new_jobs: usize },
    /// A chunk index is already taken by another document of the same recording.
    IndexConflict {
        index: u32,
        existing_document: String,
    },
    /// The recording was erased: no job is queued, so nothing of it is archived again.
    Erased { recording: i64 },
}

/// Finds or creates the recording by its identity (see `recordings::find_or_create`) and
/// inserts one job per chunk not already known by (recording, documentId), so a re-announced
/// chunk is never fetched twice.
pub async fn enqueue(tx: &mut Tx, work: &Announcement, now: i64) -> Result<Enqueued, QueueError> {
    let deadline = millis(work.deadline);
    let row = recordings::find_or_create(tx, work, now).await?;
    let recording = row.id();

    // A recording created just now has no jobs, so no index of it can be taken.
    if let recordings::RecordingRow::Known(id) = row
        && super::erasures::is_erased_in(tx, id).await?
    {
        return Ok(Enqueued::Erased { recording: id });
    }
    let known_chunks = match row {
        recordings::RecordingRow::Known(_) => work.chunks.as_slice(),
        recordings::RecordingRow::Created(_) => &[],
    };
    for chunk in known_chunks {
        let existing: Option<String> =
            sqlx::query_scalar("SELECT document_id FROM jobs WHERE recording_id = $1 AND chunk_index = $2 AND document_id <> $3")
                .bind(recording)
                .bind(i64::from(chunk.index))
                .bind(&chunk.document_id)
                .fetch_optional(&mut **tx)
                .await?;
        if let Some(existing_document) = existing {
            return Ok(Enqueued::IndexConflict {
                index: chunk.index,
                existing_document,
            });
        }
    }

    let mut new_jobs = 0;
    for chunk in &work.chunks {
        new_jobs += sqlx::query(
            "INSERT INTO jobs (recording_id, chunk_index, document_id, end_reason, content_url, metadata_url, delete_url,
                 state, next_attempt_at, deadline_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $8, $8)
             ON CONFLICT (recording_id, document_id) DO NOTHING",
        )
        .bind(recording)
        .bind(i64::from(chunk.index))
        .bind(&chunk.document_id)
        .bind(&chunk.end_reason)
        .bind(&chunk.content_url)
        .bind(&chunk.metadata_url)
        .bind(&chunk.delete_url)
        .bind(now)
        .bind(deadline)
        .execute(&mut **tx)
        .await?
        .rows_affected() as usize;
    }
    Ok(Enqueued::Queued {
        recording,
        new_jobs,
    })
}

/// Stores a RecordingStateChanged event; false when its id was already stored.
pub struct StateChange<'a> {
    pub event_id: &'a str,
    pub recording_id: &'a str,
    pub state: &'a str,
    pub start_date_time: Option<&'a str>,
    pub server_call_id: Option<&'a str>,
    pub event_time: Option<&'a str>,
    pub payload: &'a str,
}

pub async fn record_state_change(
    tx: &mut Tx,
    change: &StateChange<'_>,
    now: i64,
) -> Result<bool, QueueError> {
    let inserted = sqlx::query(
        "INSERT INTO recording_state_events (event_id, recording_id, state, start_date_time, server_call_id, event_time, received_at, payload)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(change.event_id)
    .bind(change.recording_id)
    .bind(change.state)
    .bind(change.start_date_time)
    .bind(change.server_call_id)
    .bind(change.event_time)
    .bind(now)
    .bind(change.payload)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_payload_is_kept_whole() {
        let stored = StoredPayload::of(r#"{"id":"a"}"#);
        assert_eq!(stored.text, r#"{"id":"a"}"#);
        assert_eq!(stored.bytes, 10);
        assert!(!stored.truncated);
        assert_eq!(stored.sha256.len(), 64);
    }

    #[test]
    fn a_large_payload_is_cut_to_64_kib_with_its_full_size_and_hash() {
        let payload = format!("\"{}\"", "é".repeat(1_000_000));
        let stored = StoredPayload::of(&payload);
        assert!(stored.text.len() <= MAX_STORED_PAYLOAD_BYTES);
        assert!(stored.text.len() > MAX_STORED_PAYLOAD_BYTES - 4);
        assert!(payload.starts_with(&stored.text));
        assert_eq!(stored.bytes, payload.len() as i64);
        assert!(stored.truncated);
        use sha2::Digest;
        assert_eq!(
            stored.sha256,
            hex::encode(sha2::Sha256::digest(payload.as_bytes()))
        );
    }
}
