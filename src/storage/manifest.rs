//! `manifest.json`: written last, its presence means the recording is complete.

use serde::{Deserialize, Serialize};

pub const SCHEMA: &str = "callvault.manifest/v1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema: String,
    pub call_id: String,
    pub recording_id: Option<String>,
    pub server_call_id: Option<String>,
    pub recording_start_time: Option<String>,
    pub recording_duration_ms: Option<i64>,
    pub content_type: Option<String>,
    pub channel_type: Option<String>,
    pub format: Option<String>,
    pub session_end_reason: Option<String>,
    pub participants: Vec<String>,
    pub chunks: Vec<ManifestChunk>,
    pub event_ids: Vec<String>,
    pub archived_at: String,
    /// Every pause the chunks' metadata documents list, once each, in time order. Absent in
    /// manifests written before pauses were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_resume_intervals: Option<Vec<PauseInterval>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestChunk {
    pub index: u32,
    pub document_id: String,
    pub end_reason: Option<String>,
    pub media: ObjectDigest,
    pub metadata: ObjectDigest,
    pub archived_at: String,
    /// `chunkStartTime` from the chunk's metadata document, when it was a valid time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// `chunkDuration` (ms) from the chunk's metadata document, when it was in range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// One entry of a metadata document's `pauseResumeIntervals`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PauseInterval {
    /// When the pause began, RFC 3339 as ACS wrote it.
    pub start_time: String,
    pub duration_ms: u64,
}

/// An archived object: its key, size and sha256 (lowercase hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectDigest {
    pub key: String,
    pub bytes: u64,
    pub sha256: String,
}

impl ObjectDigest {
    /// The digest `bytes` will have once written at `key`.
    pub fn of_bytes(key: &object_store::path::Path, bytes: &[u8]) -> Self {
        use sha2::{Digest, Sha256};
        Self {
            key: key.to_string(),
            bytes: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(bytes)),
        }
    }
}

/// The endReason that says another chunk follows.
pub const CHUNK_MAXIMUM_SIZE_EXCEEDED: &str = "ChunkMaximumSizeExceeded";

/// A recording is complete when chunks `0..=k` are all archived and chunk k does not say
/// that another follows. `archived` is (index, endReason) of archived chunks, in any order.
/// Returns how many chunks the manifest covers.
pub fn complete_prefix(archived: &[(u32, Option<&str>)]) -> Option<usize> {
    let mut indices: Vec<_> = archived.to_vec();
    indices.sort_by_key(|(index, _)| *index);
    let mut covered = 0usize;
    let mut last_end_reason = None;
    for (index, end_reason) in indices {
        if index as usize != covered {
            break;
        }
        covered += 1;
        last_end_reason = Some(end_reason);
    }
    match last_end_reason {
        Some(end_reason) if end_reason != Some(CHUNK_MAXIMUM_SIZE_EXCEEDED) => Some(covered),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_only_when_contiguous_from_zero_and_last_chunk_ends_the_session() {
        assert_eq!(complete_prefix(&[(0, Some("SessionEnded"))]), Some(1));
        assert_eq!(
            complete_prefix(&[(0, Some(CHUNK_MAXIMUM_SIZE_EXCEEDED))]),
            None
        );
        assert_eq!(
            complete_prefix(&[
                (1, Some("SessionEnded")),
                (0, Some(CHUNK_MAXIMUM_SIZE_EXCEEDED))
            ]),
            Some(2)
        );
        assert_eq!(complete_prefix(&[(1, Some("SessionEnded"))]), None);
        assert_eq!(complete_prefix(&[]), None);
        assert_eq!(complete_prefix(&[(0, None)]), Some(1));
    }
}
