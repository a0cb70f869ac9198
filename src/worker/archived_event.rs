//! The `archived` event a manifest write announces: everything a next stage needs to fetch
//! and check the recording's files, and nothing it would have to ask callvault for.

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::queue::outbox::{EventType, NewEvent, subject};
use crate::queue::recordings::Recording;
use crate::storage::{Manifest, StorageLocation};

/// The event for `manifest`, written at `manifest_key` with bytes of `manifest_sha256`.
///
/// Its id is derived from the manifest version (the recording and every chunk's content), so
/// writing the same version again (the sweep after an interrupted write) gives the same id,
/// which the outbox records once; a late chunk makes a new version and a new id.
pub fn archived_event(
    recording: &Recording,
    manifest: &Manifest,
    manifest_key: &str,
    manifest_sha256: &str,
    location: &StorageLocation,
) -> NewEvent {
    let mut version = Sha256::new();
    version.update(recording.id.to_be_bytes());
    version.update(manifest_key.as_bytes());
    for chunk in &manifest.chunks {
        version.update(chunk.index.to_be_bytes());
        version.update(chunk.media.sha256.as_bytes());
        version.update(chunk.metadata.sha256.as_bytes());
    }
    let version = hex::encode(&version.finalize()[..16]);
    let chunks: Vec<_> = manifest
        .chunks
        .iter()
        .map(|chunk| {
            json!({
                "index": chunk.index,
                "documentId": chunk.document_id,
                "endReason": chunk.end_reason,
                "media": {"key": chunk.media.key, "bytes": chunk.media.bytes, "sha256": chunk.media.sha256},
                "metadata": {"key": chunk.metadata.key, "bytes": chunk.metadata.bytes, "sha256": chunk.metadata.sha256},
            })
        })
        .collect();
    NewEvent {
        id: format!("archived-{version}"),
        event_type: EventType::Archived,
        subject: subject(&recording.call_id, &recording.recording_key),
        recording_id: recording.id,
        time: manifest.archived_at.clone(),
        data: json!({
            "callId": manifest.call_id,
            "serverCallId": manifest.server_call_id,
            "recordingId": manifest.recording_id,
            "recordingKey": recording.recording_key,
            "recordingStartTime": manifest.recording_start_time,
            "recordingDurationMs": manifest.recording_duration_ms,
            "contentType": manifest.content_type,
            "channelType": manifest.channel_type,
            "format": manifest.format,
            "participants": manifest.participants,
            "chunkCount": manifest.chunks.len(),
            "chunks": chunks,
            "manifest": {"key": manifest_key, "sha256": manifest_sha256},
            "storage": location,
        }),
    }
}
