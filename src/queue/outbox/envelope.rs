//! The events callvault emits, as CloudEvents 1.0 structured JSON.

use serde::Serialize;

/// What happened to a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// A manifest was written: every chunk of the recording so far is archived.
    Archived,
    /// A chunk became `failed` or `expired`: the recording will not be complete without an
    /// operator.
    Failed,
    /// The recording was erased: its objects are gone and its tombstone is in the store.
    Erased,
    /// A verification found an archived object missing or different from its manifest.
    VerifyFailed,
}

/// A type name this build does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an event type (archived, failed, erased, verify_failed)")]
pub struct UnknownEventType(pub String);

impl EventType {
    pub const ALL: [EventType; 4] = [
        EventType::Archived,
        EventType::Failed,
        EventType::Erased,
        EventType::VerifyFailed,
    ];

    /// The CloudEvents `type`.
    pub fn cloud_event_type(self) -> &'static str {
        match self {
            EventType::Archived => "com.callvault.recording.archived",
            EventType::Failed => "com.callvault.recording.failed",
            EventType::Erased => "com.callvault.recording.erased",
            EventType::VerifyFailed => "com.callvault.recording.verify_failed",
        }
    }

    /// The name used in settings (`types = ["failed"]`) and the admin API.
    pub fn short_name(self) -> &'static str {
        match self {
            EventType::Archived => "archived",
            EventType::Failed => "failed",
            EventType::Erased => "erased",
            EventType::VerifyFailed => "verify_failed",
        }
    }
}

impl std::str::FromStr for EventType {
    type Err = UnknownEventType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.short_name() == s || t.cloud_event_type() == s)
            .ok_or_else(|| UnknownEventType(s.to_owned()))
    }
}

/// An event to record.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The CloudEvent id: unique per manifest version (archived) or per failure.
    pub id: String,
    pub event_type: EventType,
    /// Stable per recording: `{callId}/{recordingKey}`.
    pub subject: String,
    /// The recording's row, which orders deliveries.
    pub recording_id: i64,
    /// RFC 3339.
    pub time: String,
    pub data: serde_json::Value,
}

#[derive(Serialize)]
struct CloudEvent<'a> {
    specversion: &'static str,
    id: &'a str,
    source: &'a str,
    #[serde(rename = "type")]
    event_type: &'static str,
    subject: &'a str,
    time: &'a str,
    datacontenttype: &'static str,
    data: &'a serde_json::Value,
}

/// The CloudEvent as delivered (structured mode).
pub fn cloud_event(source: &str, event: &NewEvent) -> String {
    serde_json::to_string(&CloudEvent {
        specversion: "1.0",
        id: &event.id,
        source,
        event_type: event.event_type.cloud_event_type(),
        subject: &event.subject,
        time: &event.time,
        datacontenttype: "application/json",
        data: &event.data,
    })
    .expect("a CloudEvent always serialises")
}

/// The subject of every event about a recording.
pub fn subject(call_id: &str, recording_key: &str) -> String {
    format!("{call_id}/{recording_key}")
}
