//! The `erased` event an erasure announces once its tombstone is in the store: who erased the
//! recording and why, and every object that went, with the hashes the tombstone keeps.

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::queue::outbox::{EventType, NewEvent, subject};
use crate::queue::recordings::Recording;
use crate::storage::ObjectDigest;
use crate::storage::tombstone::Tombstone;

/// The event for the erasure of `recording`, whose tombstone was written as `written`.
///
/// Its id is derived from the tombstone's content: a recording is erased once, and a run that
/// finishes an interrupted erasure writes the same tombstone, so the same id.
pub fn erased_event(
    recording: &Recording,
    tombstone: &Tombstone,
    written: &ObjectDigest,
) -> NewEvent {
    let mut id = Sha256::new();
    id.update(recording.id.to_be_bytes());
    id.update(written.sha256.as_bytes());
    let objects: Vec<_> = tombstone
        .objects
        .iter()
        .map(|object| json!({"key": object.key, "bytes": object.bytes, "sha256": object.sha256}))
        .collect();
    NewEvent {
        id: format!("erased-{}", hex::encode(&id.finalize()[..16])),
        event_type: EventType::Erased,
        subject: subject(&recording.call_id, &recording.recording_key),
        recording_id: recording.id,
        time: tombstone.erased_at.clone(),
        data: json!({
            "callId": tombstone.call_id,
            "serverCallId": tombstone.server_call_id,
            "recordingId": tombstone.recording_id,
            "recordingKey": tombstone.recording_key,
            "recordingStartTime": tombstone.recording_start_time,
            "erasedAt": tombstone.erased_at,
            "origin": tombstone.origin,
            "actor": tombstone.erased_by,
            "reason": tombstone.reason,
            "tombstone": {"key": written.key, "bytes": written.bytes, "sha256": written.sha256},
            "objects": objects,
        }),
    }
}
