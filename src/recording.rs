//! What a RecordingFileStatusUpdated event announces, once validated: the unit of work
//! that ingest hands to the queue.

use chrono::{DateTime, Utc};

use crate::acs::{DeleteUrl, DownloadUrl};

/// A recording's files announced by one event.
#[derive(Debug, Clone)]
pub struct Announcement {
    /// The Event Grid / CloudEvents id.
    pub event_id: String,
    pub call_id: String,
    pub server_call_id: Option<String>,
    pub recording_id: Option<String>,
    /// The recording id when known, else the start time as `YYYYMMDDTHHMMSSZ`.
    pub recording_key: String,
    /// `recordingStartTime` as sent.
    pub start_time: Option<String>,
    pub duration_ms: Option<i64>,
    pub session_end_reason: Option<String>,
    pub content_type: Option<String>,
    pub channel_type: Option<String>,
    pub format_type: Option<String>,
    /// When ACS deletes the files: recording start + retention.
    pub deadline: DateTime<Utc>,
    pub chunks: Vec<ChunkSpec>,
}

/// One chunk to fetch. Its URLs passed the guard for their purpose and this documentId.
#[derive(Debug, Clone)]
pub struct ChunkSpec {
    pub document_id: String,
    pub index: u32,
    pub end_reason: Option<String>,
    pub content: DownloadUrl,
    pub metadata: DownloadUrl,
    /// A GA chunk's `deleteLocation`; preview chunks have none.
    pub delete: Option<DeleteUrl>,
}

/// `YYYYMMDDTHHMMSSZ`, the recording key when an event has no recording id.
pub fn start_time_key(start: DateTime<Utc>) -> String {
    start.format("%Y%m%dT%H%M%SZ").to_string()
}

/// Milliseconds since the Unix epoch: how every time is stored.
pub fn millis(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

/// The inverse of [`millis`].
pub fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
