//! The participant index: which recordings a person is in, for compliance work (export,
//! erasure, "every recording of customer X"). Each archived chunk's participant ids are
//! indexed when the chunk is recorded archived (see [`crate::queue::jobs::finish`]); chunks
//! archived before the index existed are added by [`backfill`].
//!
//! ```no_run
//! # async fn example(db: &callvault::queue::Db) -> Result<(), callvault::participants::LookupError> {
//! for recording in callvault::participants::recordings_of(db, "+1 425 555 0123").await? {
//!     println!("{} {:?}", recording.folder, recording.manifest_key);
//! }
//! # Ok(()) }
//! ```

pub mod backfill;

use serde::Serialize;

use crate::admin::state::{ChunkCounts, RecordingState};
use crate::admin::views::rfc3339;
use crate::queue::participants::{self as index, ChunkObjects, IndexedRecording};
use crate::queue::{Db, JobState, QueueError};
use crate::storage::layout::recording_folder;

pub use crate::participant_id::{
    InvalidParticipantId, MAX_ID_BYTES, MAX_PER_CHUNK, ParticipantId, ParticipantKind,
};

/// Why a lookup gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The identifier cannot be a participant id; nothing was looked up.
    #[error(transparent)]
    Invalid(#[from] InvalidParticipantId),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// A recording a participant is in: what it is, where its objects are, how far it got.
#[derive(Debug, Clone, Serialize)]
pub struct ParticipantRecording {
    /// Row id, as in `/admin/recordings/{id}` and `callvault recordings show`.
    pub id: i64,
    pub call_id: String,
    /// The recording's folder name below its call.
    pub recording_key: String,
    /// Where its objects are, below `storage.prefix`: `{callId}/{recordingKey}`, sanitised.
    pub folder: String,
    /// The ACS recording id, when the event carried one.
    pub recording_id: Option<String>,
    pub server_call_id: Option<String>,
    /// The recording's start time as ACS announced it.
    pub start_time: Option<String>,
    /// The recording's derived state, as in the recordings list.
    pub state: RecordingState,
    /// When callvault first heard of the recording.
    pub created_at: i64,
    pub created: String,
    /// When the first archived chunk naming the participant was archived, and its index.
    pub first_seen_at: i64,
    pub first_seen: String,
    pub first_seen_chunk: i64,
    /// `manifest.json`'s key, once written.
    pub manifest_key: Option<String>,
    /// Every chunk of the recording (not only those naming the participant), in order.
    pub chunks: Vec<ParticipantChunk>,
}

/// One chunk of such a recording and its objects' keys (present once archived).
#[derive(Debug, Clone, Serialize)]
pub struct ParticipantChunk {
    pub index: i64,
    pub state: JobState,
    pub media_key: Option<String>,
    pub metadata_key: Option<String>,
    pub archived_at: Option<i64>,
}

/// One page of a participant's recordings, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct ParticipantPage {
    /// The identifier as the index keys it.
    pub participant: ParticipantId,
    pub kind: ParticipantKind,
    pub recordings: Vec<ParticipantRecording>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// Recordings read per query by [`recordings_of`].
const LOOKUP_BATCH: i64 = 200;

/// Every recording `participant` is in, newest first. The identifier is normalised first
/// (`+1 425 555 0123` finds `4:+14255550123`), so any way of writing it finds the same
/// recordings; an identifier that cannot be one is refused. Reads in bounded batches, but
/// answers them all: page with [`page_of`] where the answer may be large (an agent's id is in
/// every call they took).
pub async fn recordings_of(
    db: &Db,
    participant: &str,
) -> Result<Vec<ParticipantRecording>, LookupError> {
    let id = ParticipantId::parse(participant)?;
    let mut all = Vec::new();
    let mut before = i64::MAX;
    loop {
        let batch = read(db, &id, before, LOOKUP_BATCH).await?;
        let done = (batch.len() as i64) < LOOKUP_BATCH;
        if let Some(last) = batch.last() {
            before = last.id;
        }
        all.extend(batch);
        if done {
            return Ok(all);
        }
    }
}

/// At most `limit` of `participant`'s recordings with row ids below `before` (all when
/// None), newest first, and the cursor of the next page.
pub async fn page_of(
    db: &Db,
    participant: &str,
    limit: i64,
    before: Option<i64>,
) -> Result<ParticipantPage, LookupError> {
    let id = ParticipantId::parse(participant)?;
    // One row more than asked tells whether another page follows.
    let mut recordings = read(db, &id, before.unwrap_or(i64::MAX), limit + 1).await?;
    let more = recordings.len() as i64 > limit;
    recordings.truncate(limit.max(0) as usize);
    let next_cursor = more
        .then(|| recordings.last().map(|r| r.id.to_string()))
        .flatten();
    Ok(ParticipantPage {
        kind: id.kind(),
        participant: id,
        recordings,
        next_cursor,
    })
}

async fn read(
    db: &Db,
    id: &ParticipantId,
    before: i64,
    limit: i64,
) -> Result<Vec<ParticipantRecording>, QueueError> {
    let rows = index::recordings_of(db, id, before, limit).await?;
    let ids: Vec<i64> = rows.iter().map(|row| row.recording.id).collect();
    let mut by_recording: std::collections::HashMap<i64, Vec<ParticipantChunk>> =
        std::collections::HashMap::with_capacity(ids.len());
    // In chunk order within each recording.
    for chunk in index::chunks_of(db, &ids).await? {
        by_recording
            .entry(chunk.recording_id)
            .or_default()
            .push(chunk_view(chunk));
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let chunks = by_recording.remove(&row.recording.id).unwrap_or_default();
            recording_view(row, chunks)
        })
        .collect())
}

fn chunk_view(chunk: ChunkObjects) -> ParticipantChunk {
    ParticipantChunk {
        index: chunk.chunk_index,
        state: chunk.state,
        media_key: chunk.media_key,
        metadata_key: chunk.metadata_key,
        archived_at: chunk.archived_at,
    }
}

fn recording_view(row: IndexedRecording, chunks: Vec<ParticipantChunk>) -> ParticipantRecording {
    let counts = ChunkCounts {
        chunks: row.chunks,
        archived_chunks: row.archived_chunks,
        active_chunks: row.active_chunks,
        broken_chunks: row.broken_chunks,
    };
    let r = row.recording;
    ParticipantRecording {
        id: r.id,
        folder: recording_folder(&r.call_id, &r.recording_key),
        state: RecordingState::derive(&counts, r.manifest_key.is_some()),
        call_id: r.call_id,
        recording_key: r.recording_key,
        recording_id: r.recording_id,
        server_call_id: r.server_call_id,
        start_time: r.start_time,
        created_at: r.created_at,
        created: rfc3339(r.created_at),
        first_seen_at: row.first_seen_at,
        first_seen: rfc3339(row.first_seen_at),
        first_seen_chunk: row.first_chunk_index,
        manifest_key: r.manifest_key,
        chunks,
    }
}
