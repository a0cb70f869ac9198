//! What the admin API answers and the CLI prints (`--json` prints exactly these).
//! Times are kept as epoch milliseconds (`*_at`) and also given as RFC 3339 where an
//! operator reads them; `time_left_seconds` is negative once a deadline has passed.

use std::collections::BTreeMap;

use serde::Serialize;

use super::queries::{
    AttemptRow, JobRow, QuarantineListRow, QuarantineRow, RecordingRow, StateEventRow,
};
use super::state::RecordingState;
use crate::recording::from_millis;
use crate::storage::layout::recording_folder;

/// RFC 3339 in UTC, to the second.
pub fn rfc3339(ms: i64) -> String {
    from_millis(ms).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Whole seconds from `now` until `at` (negative once passed).
pub fn seconds_until(at: i64, now: i64) -> i64 {
    (at - now).div_euclid(1000)
}

/// One line of the recordings list.
#[derive(Debug, Clone, Serialize)]
pub struct RecordingSummary {
    /// Row id, used in `/admin/recordings/{id}`.
    pub id: i64,
    pub call_id: String,
    /// The recording's folder name below its call: the recording id or the start time as
    /// `YYYYMMDDTHHMMSSZ`, with `-2`, `-3`… for a later recording that would share it.
    pub recording_key: String,
    /// Where its objects are, below `storage.prefix`: `{callId}/{recordingKey}`, sanitised.
    pub folder: String,
    pub recording_id: Option<String>,
    pub server_call_id: Option<String>,
    pub start_time: Option<String>,
    pub state: RecordingState,
    pub chunks_total: i64,
    pub chunks_archived: i64,
    pub archived_bytes: i64,
    /// When ACS deletes the recording.
    pub deadline_at: i64,
    pub deadline: String,
    pub time_left_seconds: i64,
    pub manifest_key: Option<String>,
    pub created_at: i64,
    /// The duration check made when the manifest was written; None before that.
    pub completeness: Option<CompletenessView>,
    /// The scheduled verifier's last full re-read; None while it has not read the recording.
    pub last_verification: Option<VerificationView>,
    /// When it was erased: its objects are gone and `tombstone.json` names them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub erased_at: Option<String>,
}

/// Whether the chunks cover the duration ACS announced (see docs/storage.md).
#[derive(Debug, Clone, Serialize)]
pub struct CompletenessView {
    /// `complete`, `short` or `unknown`.
    pub verdict: String,
    /// recordingDurationMs from the event.
    pub announced_ms: Option<i64>,
    /// Chunk durations plus pauses outside every chunk.
    pub covered_ms: Option<i64>,
    /// Announced minus covered; negative when the chunks cover more.
    pub shortfall_ms: Option<i64>,
    /// Why the verdict is unknown, or how pauses were counted.
    pub note: Option<String>,
    pub checked_at: Option<i64>,
}

/// The last full re-read of a recording by the scheduled verifier.
#[derive(Debug, Clone, Serialize)]
pub struct VerificationView {
    /// `ok`, `failed` (an object missing or altered) or `error` (the store could not be read).
    pub result: String,
    pub verified_at: i64,
    pub verified: String,
    /// What was found, for `failed` and `error`.
    pub detail: Option<String>,
}

impl RecordingSummary {
    pub fn new(row: &RecordingRow, now: i64) -> Self {
        let r = &row.recording;
        Self {
            id: r.id,
            call_id: r.call_id.clone(),
            recording_key: r.recording_key.clone(),
            folder: recording_folder(&r.call_id, &r.recording_key),
            recording_id: r.recording_id.clone(),
            server_call_id: r.server_call_id.clone(),
            start_time: r.start_time.clone(),
            state: RecordingState::derive(&row.counts, r.manifest_key.is_some()),
            chunks_total: row.counts.chunks,
            chunks_archived: row.counts.archived_chunks,
            archived_bytes: row.archived_bytes,
            deadline_at: r.deadline_at,
            deadline: rfc3339(r.deadline_at),
            time_left_seconds: seconds_until(r.deadline_at, now),
            manifest_key: r.manifest_key.clone(),
            created_at: r.created_at,
            completeness: r.completeness.as_ref().map(|verdict| CompletenessView {
                verdict: verdict.clone(),
                announced_ms: r.duration_ms,
                covered_ms: r.covered_ms,
                shortfall_ms: r.shortfall_ms,
                note: r.completeness_note.clone(),
                checked_at: r.completeness_checked_at,
            }),
            last_verification: r.last_verified_at.zip(r.last_verify_result.as_ref()).map(
                |(at, result)| VerificationView {
                    result: result.clone(),
                    verified_at: at,
                    verified: rfc3339(at),
                    detail: r.last_verify_detail.clone(),
                },
            ),
            erased_at: r.erased_at.map(rfc3339),
        }
    }
}

/// A page of recordings; pass `next_cursor` as `cursor` for the next page.
#[derive(Debug, Clone, Serialize)]
pub struct RecordingPage {
    pub recordings: Vec<RecordingSummary>,
    /// Absent on the last page.
    pub next_cursor: Option<String>,
}

/// An archived object.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectView {
    pub key: String,
    pub bytes: Option<i64>,
    pub sha256: Option<String>,
}

/// One job (one chunk).
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    pub id: i64,
    /// Row id of the recording.
    pub recording: i64,
    pub call_id: String,
    pub recording_key: String,
    pub chunk_index: i64,
    pub document_id: String,
    pub end_reason: Option<String>,
    pub state: String,
    pub attempts: i64,
    /// Why the last attempt failed; for `failed` and `expired` jobs, why they stopped.
    pub last_error: Option<String>,
    pub next_attempt_at: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub deadline_at: i64,
    pub deadline: String,
    pub time_left_seconds: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub archived_at: Option<i64>,
    pub media: Option<ObjectView>,
    pub metadata: Option<ObjectView>,
    pub source_deleted_at: Option<i64>,
    pub content_url: String,
    pub metadata_url: String,
}

impl JobView {
    pub fn new(row: &JobRow, now: i64) -> Self {
        let j = &row.job;
        let object = |key: &Option<String>, bytes, sha256: &Option<String>| {
            key.as_ref().map(|key| ObjectView {
                key: key.clone(),
                bytes,
                sha256: sha256.clone(),
            })
        };
        Self {
            id: j.id,
            recording: j.recording_id,
            call_id: row.call_id.clone(),
            recording_key: row.recording_key.clone(),
            chunk_index: j.chunk_index,
            document_id: j.document_id.clone(),
            end_reason: j.end_reason.clone(),
            state: j.state.to_string(),
            attempts: j.attempts,
            last_error: j.last_error.clone(),
            next_attempt_at: j.next_attempt_at,
            lease_owner: j.lease_owner.clone(),
            lease_until: j.lease_until,
            deadline_at: j.deadline_at,
            deadline: rfc3339(j.deadline_at),
            time_left_seconds: seconds_until(j.deadline_at, now),
            created_at: j.created_at,
            updated_at: j.updated_at,
            archived_at: j.archived_at,
            media: object(&j.media_key, j.media_bytes, &j.media_sha256),
            metadata: object(&j.metadata_key, j.metadata_bytes, &j.metadata_sha256),
            source_deleted_at: j.source_deleted_at,
            content_url: j.content_url.clone(),
            metadata_url: j.metadata_url.clone(),
        }
    }
}

/// A chunk of a recording: its job and every attempt at it.
#[derive(Debug, Clone, Serialize)]
pub struct ChunkView {
    #[serde(flatten)]
    pub job: JobView,
    pub attempt_history: Vec<AttemptRow>,
}

/// Everything known about one recording.
#[derive(Debug, Clone, Serialize)]
pub struct RecordingDetail {
    #[serde(flatten)]
    pub summary: RecordingSummary,
    pub duration_ms: Option<i64>,
    pub session_end_reason: Option<String>,
    pub content_type: Option<String>,
    pub channel_type: Option<String>,
    pub format_type: Option<String>,
    pub manifest_written_at: Option<i64>,
    /// For an `incomplete` recording: the index of the chunk ACS has not announced yet.
    pub waiting_for_chunk: Option<i64>,
    pub chunks: Vec<ChunkView>,
    /// Ids of the events that announced its chunks.
    pub event_ids: Vec<String>,
    /// RecordingStateChanged events for its ACS recording id.
    pub state_events: Vec<StateEventRow>,
    /// Its legal hold and scheduled lock.
    pub worm: super::holds::LockView,
}

/// A quarantined event with the reason it was refused, without its payload.
#[derive(Debug, Clone, Serialize)]
pub struct QuarantineSummary {
    pub id: i64,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub reason: String,
    /// The event's full size in bytes as received.
    pub payload_bytes: i64,
    /// Hex sha256 of the event as received (absent for entries stored before it was kept).
    pub payload_sha256: Option<String>,
    /// Only the first 64 KiB of the event are stored; such an entry cannot be replayed.
    pub payload_truncated: bool,
    pub received_at: i64,
    pub received: String,
    pub replayed_at: Option<i64>,
    pub replay_outcome: Option<String>,
}

impl From<QuarantineListRow> for QuarantineSummary {
    fn from(row: QuarantineListRow) -> Self {
        Self {
            id: row.id,
            event_id: row.event_id,
            event_type: row.event_type,
            reason: row.reason,
            payload_bytes: row.payload_bytes,
            payload_sha256: row.payload_sha256,
            payload_truncated: row.payload_truncated != 0,
            received_at: row.received_at,
            received: rfc3339(row.received_at),
            replayed_at: row.replayed_at,
            replay_outcome: row.replay_outcome,
        }
    }
}

/// A page of quarantine entries; pass `next_cursor` as `cursor` for the next page.
#[derive(Debug, Clone, Serialize)]
pub struct QuarantinePage {
    pub quarantine: Vec<QuarantineSummary>,
    /// Absent on the last page.
    pub next_cursor: Option<String>,
}

/// One quarantine entry with its stored payload.
#[derive(Debug, Clone, Serialize)]
pub struct QuarantineView {
    #[serde(flatten)]
    pub summary: QuarantineSummary,
    /// The event as stored: JSON when it is whole and valid, else the stored text as a string
    /// (a prefix of the event when `payload_truncated`).
    pub payload: serde_json::Value,
}

impl From<QuarantineRow> for QuarantineView {
    fn from(row: QuarantineRow) -> Self {
        let payload =
            serde_json::from_str(&row.payload).unwrap_or(serde_json::Value::String(row.payload));
        Self {
            summary: row.entry.into(),
            payload,
        }
    }
}

/// The answer of a bulk replay.
#[derive(Debug, Clone, Serialize)]
pub struct ReplaySummary {
    pub replayed: u64,
    /// Requested ids that were unknown or not `failed`/`expired`.
    pub skipped: Vec<i64>,
}

/// The queue at a glance.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// Jobs per state; every state is present.
    pub jobs: BTreeMap<String, i64>,
    /// Recordings per derived state; every state is present.
    pub recordings: BTreeMap<String, i64>,
    pub archived_bytes: i64,
    /// None when no job is pending.
    pub oldest_pending_age_seconds: Option<i64>,
    /// Smallest time left before a pending or running job's deadline; None when there is none.
    pub deadline_slack_seconds: Option<i64>,
    pub jobs_at_risk: i64,
    pub deadline_warning_hours: u64,
    pub quarantine_open: i64,
    /// Recordings whose chunks fall short of their announced duration.
    pub recordings_short: i64,
    /// Recordings whose last scheduled verification found an object missing or altered.
    pub recordings_verify_failed: i64,
}
