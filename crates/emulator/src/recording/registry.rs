//! What the emulator remembers of recordings and calls, and the view of a recording it
//! gives tests and the control surface.

use std::collections::HashMap;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use super::calls::Call;
use super::machine::Timeline;
use super::request::RecordingTypes;
use crate::events::ChunkEvent;

/// Which API generation started a recording; it decides the event's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Generation {
    /// `/calling/recordings`, located by serverCallId.
    Ga,
    /// `/conversations/{conversationId}/recordings`.
    Preview,
}

/// One recording.
pub struct Recording {
    /// Its `recordingId`.
    pub id: String,
    /// The serverCallId (GA) or conversationId (preview) of its call.
    pub call_key: String,
    /// The API generation that started it.
    pub generation: Generation,
    /// What it records.
    pub types: RecordingTypes,
    /// When it started: media time 0.
    pub started_at: DateTime<Utc>,
    /// The same moment on the monotonic clock, which media time is measured on.
    pub started: Instant,
    /// Its state and pauses.
    pub timeline: Timeline,
    /// Where RecordingStateChanged events go, if a callback was given.
    pub callbacks: Option<mpsc::UnboundedSender<Value>>,
    /// Its chunks, once stopped.
    pub chunks: Vec<ChunkEvent>,
    /// The RecordingFileStatusUpdated event announcing them, once stopped.
    pub file_event: Option<Value>,
}

/// Every recording and call, and the start requests already answered.
#[derive(Default)]
pub struct Registry {
    /// By recording id.
    pub recordings: HashMap<String, Recording>,
    /// By serverCallId or conversationId.
    pub calls: HashMap<String, Call>,
    /// `Repeatability-Request-ID` → the recording that request started.
    pub repeatability: HashMap<String, String>,
    /// Statuses the next start requests answer instead of starting (a fault, in order).
    pub failing_starts: std::collections::VecDeque<u16>,
}

/// A recording as the emulator sees it, for tests and `GET /emulator/recordings/{id}`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingSnapshot {
    /// The recording id.
    pub recording_id: String,
    /// The call's `callId`.
    pub call_id: String,
    /// The serverCallId (GA) or conversationId (preview) it was started with.
    pub server_call_id: String,
    /// `active`, `paused` or `stopped` (the API says `inactive` for the last two).
    pub state: String,
    /// `audio` / `audioVideo`.
    pub content_type: String,
    /// `mixed` / `unmixed`.
    pub channel_type: String,
    /// `mp3` / `mp4` / `wav`.
    pub format_type: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Media duration in milliseconds, once stopped.
    pub duration_ms: Option<u64>,
    /// The call's participants.
    pub participants: Vec<String>,
    /// The chunks' document ids, in order, once stopped.
    pub document_ids: Vec<String>,
    /// The RecordingFileStatusUpdated event, once stopped (delivered after
    /// `file_ready_delay`).
    pub file_status_event: Option<Value>,
}

impl Registry {
    /// The snapshot of recording `id`.
    pub fn snapshot(&self, id: &str) -> Option<RecordingSnapshot> {
        let recording = self.recordings.get(id)?;
        let call = self.calls.get(&recording.call_key);
        Some(RecordingSnapshot {
            recording_id: recording.id.clone(),
            call_id: call.map(|call| call.call_id.clone()).unwrap_or_default(),
            server_call_id: recording.call_key.clone(),
            state: recording.timeline.state().name().to_owned(),
            content_type: recording.types.content_name().to_owned(),
            channel_type: recording.types.channel_name().to_owned(),
            format_type: recording.types.format_name().to_owned(),
            started_at: recording.started_at,
            duration_ms: recording.timeline.duration_ms(),
            participants: call
                .map(|call| call.participants.clone())
                .unwrap_or_default(),
            document_ids: recording
                .chunks
                .iter()
                .map(|chunk| chunk.document_id.clone())
                .collect(),
            file_status_event: recording.file_event.clone(),
        })
    }
}
