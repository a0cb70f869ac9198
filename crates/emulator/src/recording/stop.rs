//! What a stopped recording becomes: its chunks as documents (media + metadata) on the
//! existing download routes, and the RecordingFileStatusUpdated event that announces them.

use chrono::Utc;
use serde_json::Value;

use super::calls::Call;
use super::chunks::{self, ChunkPlan};
use super::metadata::{self, ChunkFacts};
use super::registry::{Generation, Recording};
use super::request::{ContentType, event_name};
use crate::documents::{DocumentSpec, DocumentUrls};
use crate::events::{ChunkEvent, FileStatus, file_status_updated};
use crate::state::Shared;

/// Cuts the stopped `recording` of `call` into chunks; remembers them and their event on
/// the recording and returns the documents to serve and the event to publish.
pub(crate) fn finish(
    shared: &Shared,
    recording: &mut Recording,
    call: &Call,
) -> (Vec<DocumentSpec>, Value) {
    let duration_ms = recording.timeline.duration_ms().unwrap_or(1);
    let pauses = recording.timeline.pauses();
    let types = recording.types;
    let channels = chunks::channel_count(&types, call.participants.len());
    let plans = chunks::plan(
        duration_ms,
        chunks::max_chunk_ms(&shared.recording, &types, channels),
    );
    let created_at = shared.now();
    let mut documents = Vec::with_capacity(plans.len());
    let mut chunk_events = Vec::with_capacity(plans.len());
    for plan in &plans {
        let document_id = format!("0-emu-d1-{}", uuid::Uuid::new_v4().simple());
        let metadata = metadata::document(&ChunkFacts {
            call_id: &call.call_id,
            document_id: &document_id,
            chunk: plan,
            recording_start: recording.started_at,
            pauses: &pauses,
            types: &types,
            participants: &call.participants,
        });
        documents.push(DocumentSpec {
            document_id: document_id.clone(),
            media: chunks::media(
                &types,
                plan,
                &pauses,
                call.participants.len(),
                seed(&document_id),
            ),
            metadata: Some(metadata),
            call_id: call.call_id.clone(),
            chunk_index: plan.index,
            created_at,
        });
        chunk_events.push(chunk_event(shared, recording, plan, document_id));
    }
    let subject = match recording.generation {
        Generation::Ga => format!(
            "/recording/call/{}/serverCallId/{}",
            call.call_id, recording.call_key
        ),
        Generation::Preview => format!("/recording/call/{}", call.call_id),
    };
    let content = event_name(types.content_name());
    let channel = event_name(types.channel_name());
    let format = event_name(types.format_name());
    let event = file_status_updated(&FileStatus {
        event_id: &uuid::Uuid::new_v4().to_string(),
        subject: &subject,
        start_time: recording.started_at,
        duration_ms,
        chunks: &chunk_events,
        ga_types: (recording.generation == Generation::Ga).then_some([
            content.as_str(),
            channel.as_str(),
            format.as_str(),
        ]),
        event_time: Utc::now() + shared.recording.file_ready_delay,
    });
    recording.chunks = chunk_events;
    recording.file_event = Some(event.clone());
    (documents, event)
}

/// The chunk as the event lists it: GA chunks carry their locations (audio recordings at
/// `…/content/audio`, as ACS serves them); preview chunks only their document id.
fn chunk_event(
    shared: &Shared,
    recording: &Recording,
    plan: &ChunkPlan,
    document_id: String,
) -> ChunkEvent {
    let urls = (recording.generation == Generation::Ga).then(|| {
        let mut urls = DocumentUrls::on(&shared.endpoint, &document_id);
        if recording.types.content == ContentType::Audio
            && let Ok(mut segments) = urls.content.path_segments_mut()
        {
            segments.pop().push("audio");
        }
        urls
    });
    ChunkEvent {
        document_id,
        index: plan.index,
        end_reason: plan.end_reason.to_owned(),
        urls,
    }
}

/// A per-document seed for synthetic media, so chunks differ from each other.
fn seed(document_id: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(document_id.as_bytes());
    u64::from_le_bytes(digest[..8].try_into().unwrap_or_default())
}
