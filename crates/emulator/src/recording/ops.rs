//! The control operations behind both API generations: start, read, pause, resume and
//! stop a recording, each announcing its change of state to the recording's callback.

use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use chrono::Utc;

type DateTimeUtc = chrono::DateTime<Utc>;

use super::callbacks::{self, StateChange};
use super::calls::Call;
use super::machine::{Conflict, RecordingState, Timeline};
use super::registry::{Generation, Recording, RecordingSnapshot};
use super::request::RecordingTypes;
use super::{publish, stop};
use crate::state::{Shared, lock};

/// Why an operation failed: the status and message of ACS's error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// 400, 404 or 409.
    pub status: u16,
    /// Said to the client.
    pub message: String,
}

impl Failure {
    /// A 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            message: message.into(),
        }
    }

    fn not_found(id: &str) -> Self {
        Self {
            status: 404,
            message: format!("recording `{id}` does not exist"),
        }
    }
}

impl From<Conflict> for Failure {
    fn from(conflict: Conflict) -> Self {
        Self {
            status: 409,
            message: conflict.to_string(),
        }
    }
}

/// A validated start request.
pub struct Start {
    /// Which API it came through.
    pub generation: Generation,
    /// serverCallId (GA) or conversationId (preview).
    pub call_key: String,
    /// What to record.
    pub types: RecordingTypes,
    /// Where to send RecordingStateChanged.
    pub callback: Option<url::Url>,
    /// Start paused.
    pub pause_on_start: bool,
    /// `Repeatability-Request-ID`, if sent.
    pub repeatability_id: Option<String>,
}

/// Which recording an operation is about; a preview path also names its conversation,
/// and a recording of another conversation is not found there.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The recording id from the path.
    pub recording_id: &'a str,
    /// The conversationId of a preview path.
    pub conversation: Option<&'a str>,
}

/// A pause or a resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `:pause` / `/Pause`.
    Pause,
    /// `:resume` / `/Resume`.
    Resume,
}

impl Shared {
    /// Media milliseconds since `started`, at the configured time scale.
    fn media_ms(&self, started: Instant) -> u64 {
        let scale = self.recording.time_scale;
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        (started.elapsed().as_secs_f64() * scale * 1000.0) as u64
    }

    /// Registers (or replaces the participants of) a call; answers its callId.
    pub(crate) fn register_call(&self, call_key: &str, participants: Vec<String>) -> String {
        let mut registry = lock(&self.recordings);
        let call = registry
            .calls
            .entry(call_key.to_owned())
            .or_insert_with(|| Call::new(None));
        call.participants = participants;
        call.call_id.clone()
    }

    /// Makes the next `times` start requests (of either API) answer `status` and start nothing.
    pub(crate) fn fail_starts(&self, status: u16, times: u32) {
        let mut registry = lock(&self.recordings);
        registry.failing_starts.clear();
        registry
            .failing_starts
            .extend(std::iter::repeat_n(status, times as usize));
    }

    /// The fault a start request meets, if any is left.
    pub(crate) fn start_fault(&self) -> Option<Failure> {
        let status = lock(&self.recordings).failing_starts.pop_front()?;
        Some(Failure {
            status,
            message: format!("the emulator answers {status} to this start (a fault)"),
        })
    }

    /// The ids of the recordings started for `call_key` (serverCallId or conversationId).
    pub(crate) fn recordings_of(&self, call_key: &str) -> Vec<String> {
        let registry = lock(&self.recordings);
        let mut ids: Vec<(DateTimeUtc, String)> = registry
            .recordings
            .values()
            .filter(|recording| recording.call_key == call_key)
            .map(|recording| (recording.started_at, recording.id.clone()))
            .collect();
        ids.sort();
        ids.into_iter().map(|(_, id)| id).collect()
    }

    /// Starts a recording, or answers the one an earlier request with the same
    /// `Repeatability-Request-ID` started. Answers its id and state.
    pub(crate) fn start_recording(&self, start: Start) -> (String, RecordingState) {
        let mut guard = lock(&self.recordings);
        let registry = &mut *guard;
        let known = start
            .repeatability_id
            .as_ref()
            .and_then(|request| registry.repeatability.get(request))
            .and_then(|id| registry.recordings.get(id));
        if let Some(recording) = known {
            return (recording.id.clone(), recording.timeline.state());
        }
        let id = new_recording_id();
        let call = registry
            .calls
            .entry(start.call_key.clone())
            .or_insert_with(|| Call::new(None));
        let recording = Recording {
            id: id.clone(),
            call_key: start.call_key,
            generation: start.generation,
            types: start.types,
            started_at: Utc::now(),
            started: Instant::now(),
            timeline: Timeline::start(start.pause_on_start),
            callbacks: start
                .callback
                .map(|url| callbacks::sender(&self.runtime, self.http.clone(), url)),
            chunks: Vec::new(),
            file_event: None,
        };
        let state = recording.timeline.state();
        announce(&recording, call);
        if let Some(request) = start.repeatability_id {
            registry.repeatability.insert(request, id.clone());
        }
        registry.recordings.insert(id.clone(), recording);
        (id, state)
    }

    /// The state of a recording.
    pub(crate) fn recording_state(&self, target: Target<'_>) -> Result<RecordingState, Failure> {
        let registry = lock(&self.recordings);
        let recording = find(&registry.recordings, target)?;
        Ok(recording.timeline.state())
    }

    /// Pauses or resumes a recording.
    pub(crate) fn pause_or_resume(
        &self,
        target: Target<'_>,
        action: Action,
    ) -> Result<(), Failure> {
        let mut guard = lock(&self.recordings);
        let registry = &mut *guard;
        let recording = find_mut(&mut registry.recordings, target)?;
        let at = self.media_ms(recording.started);
        match action {
            Action::Pause => recording.timeline.pause(at)?,
            Action::Resume => recording.timeline.resume(at)?,
        }
        if let Some(call) = registry.calls.get(&recording.call_key) {
            announce(recording, call);
        }
        Ok(())
    }

    /// Stops a recording: cuts it into chunks, serves them as documents, and schedules
    /// RecordingFileStatusUpdated for every subscriber.
    pub(crate) fn stop_recording(self: &Arc<Self>, target: Target<'_>) -> Result<(), Failure> {
        let (documents, event) = {
            let mut guard = lock(&self.recordings);
            let registry = &mut *guard;
            let recording = find_mut(&mut registry.recordings, target)?;
            let at = self.media_ms(recording.started);
            recording.timeline.stop(at)?;
            let call = registry
                .calls
                .entry(recording.call_key.clone())
                .or_insert_with(|| Call::new(None));
            announce(recording, call);
            stop::finish(self, recording, call)
        };
        for document in documents {
            self.add_document(document);
        }
        publish::schedule(self.clone(), event);
        Ok(())
    }

    /// The emulator's view of a recording.
    pub(crate) fn recording_snapshot(&self, recording_id: &str) -> Option<RecordingSnapshot> {
        lock(&self.recordings).snapshot(recording_id)
    }
}

/// Queues RecordingStateChanged with the recording's current state.
fn announce(recording: &Recording, call: &Call) {
    let Some(callbacks) = &recording.callbacks else {
        return;
    };
    let event = callbacks::event(
        &StateChange {
            recording_id: &recording.id,
            state: recording.timeline.state().api_name(),
            start: recording.started_at,
            server_call_id: &recording.call_key,
            call_connection_id: &call.call_connection_id,
            correlation_id: &call.correlation_id,
        },
        Utc::now(),
    );
    // The sender only stops with the runtime; then there is nobody left to tell.
    let _ = callbacks.send(event);
}

fn find<'a>(
    recordings: &'a std::collections::HashMap<String, Recording>,
    target: Target<'_>,
) -> Result<&'a Recording, Failure> {
    recordings
        .get(target.recording_id)
        .filter(|recording| matches_conversation(recording, target))
        .ok_or_else(|| Failure::not_found(target.recording_id))
}

fn find_mut<'a>(
    recordings: &'a mut std::collections::HashMap<String, Recording>,
    target: Target<'_>,
) -> Result<&'a mut Recording, Failure> {
    recordings
        .get_mut(target.recording_id)
        .filter(|recording| matches_conversation(recording, target))
        .ok_or_else(|| Failure::not_found(target.recording_id))
}

fn matches_conversation(recording: &Recording, target: Target<'_>) -> bool {
    target
        .conversation
        .is_none_or(|conversation| recording.call_key == conversation)
}

/// A recording id shaped like ACS's: base64 of a small JSON document.
fn new_recording_id() -> String {
    let inner = serde_json::json!({
        "PlatformEndpointId": uuid::Uuid::new_v4().to_string(),
        "ResourceSpecificId": uuid::Uuid::new_v4().to_string(),
    });
    STANDARD_NO_PAD.encode(inner.to_string())
}
