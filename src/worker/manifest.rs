//! Writing `manifest.json` once a recording is complete, and again when a later chunk arrives.

use std::collections::BTreeSet;

use bytes::Bytes;

use super::archived_event::archived_event;
use crate::queue::{Db, Job, JobState, recordings};
use crate::recording::from_millis;
use crate::storage::manifest::{
    Manifest, ManifestChunk, ObjectDigest, PauseInterval, SCHEMA, complete_prefix,
};
use crate::storage::{Archive, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(transparent)]
    Queue(#[from] crate::queue::QueueError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Writes the manifest when chunks `0..=k` are archived and chunk k ends the session.
/// Returns the manifest written, or None when the recording is not complete yet.
pub async fn refresh(
    db: &Db,
    archive: &Archive,
    recording_id: i64,
) -> Result<Option<Manifest>, ManifestError> {
    let Some(recording) = recordings::get(db, recording_id).await? else {
        return Ok(None);
    };
    if recording.erased_at.is_some() {
        return Ok(None);
    }
    let jobs = recordings::jobs(db, recording_id).await?;
    let archived: Vec<_> = jobs
        .iter()
        .filter(|job| job.state() == JobState::Archived)
        .collect();
    let ends: Vec<_> = archived
        .iter()
        .map(|job| (job.chunk_index as u32, job.end_reason.as_deref()))
        .collect();
    let Some(covered) = complete_prefix(&ends) else {
        return Ok(None);
    };

    let mut chunks: Vec<_> = archived
        .into_iter()
        .filter(|job| (job.chunk_index as usize) < covered)
        .collect();
    chunks.sort_by_key(|job| job.chunk_index);
    let mut participants = BTreeSet::new();
    for job in &chunks {
        let ids: Vec<String> = job
            .participants
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or_default();
        participants.extend(ids);
    }
    let now = chrono::Utc::now();
    let manifest = Manifest {
        schema: SCHEMA.to_owned(),
        call_id: recording.call_id.clone(),
        recording_id: recording.recording_id.clone(),
        server_call_id: recording.server_call_id.clone(),
        recording_start_time: recording.start_time.clone(),
        recording_duration_ms: recording.duration_ms,
        content_type: recording.content_type.clone(),
        channel_type: recording.channel_type.clone(),
        format: recording.format_type.clone(),
        session_end_reason: recording.session_end_reason.clone(),
        participants: participants.into_iter().collect(),
        chunks: chunks
            .iter()
            .map(|job| ManifestChunk {
                index: job.chunk_index as u32,
                document_id: job.document_id.clone(),
                end_reason: job.end_reason.clone(),
                media: ObjectDigest {
                    key: job.media_key.clone().unwrap_or_default(),
                    bytes: job.media_bytes.unwrap_or_default() as u64,
                    sha256: job.media_sha256.clone().unwrap_or_default(),
                },
                metadata: ObjectDigest {
                    key: job.metadata_key.clone().unwrap_or_default(),
                    bytes: job.metadata_bytes.unwrap_or_default() as u64,
                    sha256: job.metadata_sha256.clone().unwrap_or_default(),
                },
                archived_at: from_millis(job.archived_at.unwrap_or_default()).to_rfc3339(),
                start_time: job.chunk_start_time.clone(),
                duration_ms: job.chunk_duration_ms.and_then(|ms| u64::try_from(ms).ok()),
            })
            .collect(),
        event_ids: recordings::event_ids(db, recording_id).await?,
        archived_at: now.to_rfc3339(),
        pause_resume_intervals: Some(pauses_of(&chunks)),
    };
    let key = archive
        .layout(&recording.call_id, &recording.recording_key)
        .manifest();
    let sha256 = match archive.manifest_signer() {
        Some(signer) => {
            super::signed_manifest::write(db, archive, signer, recording_id, &key, &manifest)
                .await?
        }
        None => {
            let body = serde_json::to_vec_pretty(&manifest).expect("a manifest always serialises");
            archive.put_bytes(&key, Bytes::from(body)).await?.sha256
        }
    };
    // An erasure that started meanwhile may have listed the folder before this manifest.
    if crate::queue::erasures::is_erased(db, recording_id).await? {
        archive
            .erase_objects(&archive.layout(&recording.call_id, &recording.recording_key))
            .await?;
        return Ok(None);
    }
    // The manifest is readable in the store before its event can exist.
    let event = archived_event(
        &recording,
        &manifest,
        key.as_ref(),
        &sha256,
        archive.location(),
    );
    recordings::set_manifest_announcing(
        db,
        recording_id,
        key.as_ref(),
        now.timestamp_millis(),
        Some(&event),
    )
    .await?;
    tracing::info!(recording = recording_id, call_id = %recording.call_id, chunks = covered, key = %key, "manifest written");
    Ok(Some(manifest))
}

/// The pauses every chunk's metadata document listed, each once (ACS may list a pause that
/// spans a chunk boundary in both chunks), in time order. A chunk whose list was unreadable
/// adds none.
fn pauses_of(chunks: &[&Job]) -> Vec<PauseInterval> {
    let mut pauses = BTreeSet::new();
    for job in chunks {
        let listed: Vec<PauseInterval> = job
            .pause_intervals
            .as_deref()
            .and_then(|list| serde_json::from_str(list).ok())
            .unwrap_or_default();
        pauses.extend(listed);
    }
    pauses.into_iter().collect()
}
