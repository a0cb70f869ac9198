//! What a RecordingFileStatusUpdated event announces, once validated: the unit of work
//! that ingest hands to the queue.

use chrono::{DateTime, Utc};

/// A recording's files announced by one event.
#[derive(Debug, Clone)]
pub struct Announcement {
    /// The Event Grid / CloudEvents id.
    pub event_id: String,
    pub call_id: String,
    pub server_call_id: Option<String>,
    pub recording_id: Option<String>,
    /// The recording id when known, else the start time as `YYYYMMDDTHHMMSSZ`: the folder
    /// name the recording gets unless another recording of the call already holds it.
    pub recording_key: String,
    /// `recordingStartTime` as sent.
    pub start_time: Option<String>,
    pub duration_ms: Option<i64>,
    pub session_end_reason: Option<String>,
    pub content_type: Option<String>,
    pub channel_type: Option<String>,
    pub format_type: Option<String>,
    /// The media files' extension, from the format type; a new recording row keeps it.
    pub media_extension: String,
    /// When ACS deletes the files: recording start + retention.
    pub deadline: DateTime<Utc>,
    pub chunks: Vec<ChunkSpec>,
}

impl Announcement {
    /// What makes two announcements the same recording (see [`recording_identity`]).
    pub fn identity(&self) -> String {
        recording_identity(
            self.recording_id.as_deref(),
            self.start_time.as_deref(),
            [
                self.content_type.as_deref(),
                self.channel_type.as_deref(),
                self.format_type.as_deref(),
            ],
        )
        .unwrap_or_else(|| format!("key:{}", self.recording_key))
    }
}

/// One chunk to fetch. Its URLs passed the guard for their purpose and this documentId
/// when the event was judged; they are kept as text, like the stored job, and the worker
/// checks them again before it uses them.
#[derive(Debug, Clone)]
pub struct ChunkSpec {
    pub document_id: String,
    pub index: u32,
    pub end_reason: Option<String>,
    pub content_url: String,
    pub metadata_url: String,
    /// A GA chunk's `deleteLocation`; preview chunks have none.
    pub delete_url: Option<String>,
}

/// `YYYYMMDDTHHMMSSZ`, the recording key when an event has no recording id.
pub fn start_time_key(start: DateTime<Utc>) -> String {
    start.format("%Y%m%dT%H%M%SZ").to_string()
}

/// A recording's identity: `id:{recordingId}` when the id is known; else its start time as a
/// normalised instant to the nanosecond, with its content, channel and format type, so that
/// a mixed AudioVideo and an unmixed Audio recording started in the same second stay apart,
/// while one instant spelt with another precision or offset stays one recording.
/// `types` are content, channel and format, compared without regard to case. None when
/// there is neither an id nor a start time.
pub fn recording_identity(
    recording_id: Option<&str>,
    start_time: Option<&str>,
    types: [Option<&str>; 3],
) -> Option<String> {
    if let Some(id) = recording_id {
        return Some(format!("id:{id}"));
    }
    let raw = start_time?.trim();
    let instant = DateTime::parse_from_rfc3339(raw)
        .map(|t| {
            t.to_utc()
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
        })
        // Ingest refuses such a time; a row written by hand is still told apart by its text.
        .unwrap_or_else(|_| raw.to_owned());
    let types = types.map(|t| t.unwrap_or_default().trim().to_ascii_lowercase());
    // JSON keeps the parts apart whatever characters the types hold.
    Some(format!(
        "start:{}",
        serde_json::json!([instant, types[0], types[1], types[2]])
    ))
}

/// Milliseconds since the Unix epoch: how every time is stored.
pub fn millis(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

/// The inverse of [`millis`].
pub fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start_identity(start: &str, types: [&str; 3]) -> String {
        recording_identity(None, Some(start), types.map(Some)).unwrap()
    }

    #[test]
    fn recordings_started_in_the_same_second_differ() {
        let mixed = start_identity(
            "2026-11-27T09:20:23.1000000Z",
            ["AudioVideo", "Mixed", "Mp4"],
        );
        let unmixed = start_identity("2026-11-27T09:20:23.9000000Z", ["Audio", "Unmixed", "Wav"]);
        assert_ne!(mixed, unmixed);
        assert_eq!(
            mixed,
            r#"start:["2026-11-27T09:20:23.100000000Z","audiovideo","mixed","mp4"]"#
        );
        // The same instant with other types is another recording too.
        assert_ne!(
            mixed,
            start_identity("2026-11-27T09:20:23.1000000Z", ["Audio", "Mixed", "Mp3"])
        );
    }

    #[test]
    fn one_instant_spelt_two_ways_is_one_recording() {
        let types = ["AudioVideo", "Mixed", "Mp4"];
        assert_eq!(
            start_identity("2026-11-27T09:20:23.1000000Z", types),
            start_identity("2026-11-27T10:20:23.1+01:00", types)
        );
        assert_eq!(
            start_identity("2026-11-27T09:20:23.1Z", types),
            start_identity("2026-11-27T09:20:23.1Z", ["audiovideo", "MIXED", "mp4"])
        );
    }

    #[test]
    fn a_recording_id_wins_and_nothing_is_no_identity() {
        assert_eq!(
            recording_identity(Some("r1"), Some("2026-11-27T09:20:23Z"), [None; 3]).as_deref(),
            Some("id:r1")
        );
        assert_eq!(recording_identity(None, None, [None; 3]), None);
    }
}
