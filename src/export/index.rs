//! `index.json`: what an export holds and why, decided once before the first byte is written
//! and kept in the progress record, so a resumed export writes the same index.

use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};

use super::selection::Selection;
use super::{ExportError, subject};
use crate::queue::Db;
use crate::queue::recordings::{self, Recording};
use crate::storage::Archive;
use crate::storage::layout::{object_key, recording_folder};
use crate::storage::manifest::Manifest;

pub const SCHEMA: &str = "callvault.export/v1";
/// A manifest of 1,000 chunks is well under 1 MiB; anything far larger is not one of ours.
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// The whole of `index.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub schema: String,
    pub export_id: String,
    /// The request as it was made.
    pub asked_for: Selection,
    /// When the export was planned (RFC 3339, UTC).
    pub created_at: String,
    /// Who asked: the admin token's name, or the operating-system user of the command line.
    pub requested_by: String,
    pub recordings: Vec<IndexedRecording>,
    /// Files of the recordings exported (index.json and SHA256SUMS aside), and their bytes.
    pub files: u64,
    pub bytes: u64,
}

/// One recording the request matched, exported or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexedRecording {
    pub id: i64,
    pub call_id: String,
    pub recording_id: Option<String>,
    pub recording_key: String,
    /// Where its files are in the tar, below `recordings/`.
    pub folder: String,
    pub start_time: Option<String>,
    pub participants: Vec<String>,
    pub status: RecordingStatus,
    /// Why the recording is in this export.
    pub reason: String,
    /// Set for an erased recording: when it was erased.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased_at: Option<String>,
    /// For a recording not exported: why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub files: Vec<IndexedFile>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingStatus {
    /// Its media, metadata and manifest are in the tar.
    Exported,
    /// Erased before the export: listed, nothing of it exported.
    Erased,
    /// Not completely archived (no manifest yet): listed, nothing of it exported.
    NotArchived,
}

/// One file in the tar, with the object it was read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexedFile {
    /// Path inside the tar.
    pub path: String,
    /// The object's key in the store.
    pub key: String,
    pub bytes: u64,
    /// Lowercase hex; the manifest's for media and metadata, the manifest's own for it.
    pub sha256: String,
}

/// Who asked, for what, when: the parts of the index that do not come from the database.
#[derive(Debug, Clone)]
pub struct Order {
    pub selection: Selection,
    pub export_id: String,
    pub requested_by: String,
    /// Epoch milliseconds.
    pub created_at: i64,
}

/// Finds the recordings `order` asks for and reads each one's manifest: the index to export.
pub async fn plan(db: &Db, archive: &Archive, order: &Order) -> Result<Index, ExportError> {
    let selection = order.selection.clone().checked()?;
    let matched: Vec<(Recording, String)> = match &selection {
        Selection::Recordings(ids) => {
            let mut found = Vec::with_capacity(ids.len());
            for id in ids {
                let recording = recordings::get(db, *id)
                    .await?
                    .ok_or(ExportError::RecordingNotFound(*id))?;
                found.push((recording, "asked for by its id".to_owned()));
            }
            found
        }
        Selection::Participant(participant) => {
            let mut found = Vec::new();
            for id in subject::recordings_of_participant(db, participant).await? {
                if let Some(recording) = recordings::get(db, id).await? {
                    let reason = format!(
                        "the participant index lists participant {} in its chunks' metadata",
                        crate::quote::quote(participant)
                    );
                    found.push((recording, reason));
                }
            }
            found
        }
    };
    let mut index = Index {
        schema: SCHEMA.to_owned(),
        export_id: order.export_id.clone(),
        asked_for: selection,
        created_at: rfc3339(order.created_at),
        requested_by: order.requested_by.clone(),
        recordings: Vec::with_capacity(matched.len()),
        files: 0,
        bytes: 0,
    };
    for (recording, reason) in matched {
        let indexed = index_recording(archive, &recording, reason).await?;
        index.files += indexed.files.len() as u64;
        index.bytes += indexed.files.iter().map(|file| file.bytes).sum::<u64>();
        index.recordings.push(indexed);
    }
    Ok(index)
}

async fn index_recording(
    archive: &Archive,
    recording: &Recording,
    reason: String,
) -> Result<IndexedRecording, ExportError> {
    let folder = recording_folder(&recording.call_id, &recording.recording_key);
    let mut indexed = IndexedRecording {
        id: recording.id,
        call_id: recording.call_id.clone(),
        recording_id: recording.recording_id.clone(),
        recording_key: recording.recording_key.clone(),
        folder: folder.clone(),
        start_time: recording.start_time.clone(),
        participants: Vec::new(),
        status: RecordingStatus::Exported,
        reason,
        erased_at: None,
        note: None,
        files: Vec::new(),
    };
    if let Some(erased_at) = subject::erased_at(recording) {
        indexed.status = RecordingStatus::Erased;
        indexed.erased_at = Some(rfc3339(erased_at));
        indexed.note = Some("erased before this export: nothing of it is kept".into());
        return Ok(indexed);
    }
    let Some(manifest_key) = &recording.manifest_key else {
        indexed.status = RecordingStatus::NotArchived;
        indexed.note =
            Some("not completely archived yet (no manifest): export it again once it is".into());
        return Ok(indexed);
    };
    let (manifest, manifest_file) = read_manifest(archive, recording.id, manifest_key).await?;
    indexed.participants = manifest.participants.clone();
    let path_of = |key: &str| {
        let name = key.rsplit('/').next().unwrap_or(key);
        format!("recordings/{folder}/{name}")
    };
    for chunk in &manifest.chunks {
        for object in [&chunk.media, &chunk.metadata] {
            indexed.files.push(IndexedFile {
                path: path_of(&object.key),
                key: object.key.clone(),
                bytes: object.bytes,
                sha256: object.sha256.to_ascii_lowercase(),
            });
        }
    }
    indexed.files.push(IndexedFile {
        path: path_of(&manifest_file.key),
        ..manifest_file
    });
    Ok(indexed)
}

/// The manifest, and its own size and sha256 as read now (the export checks that it has not
/// been rewritten by the time its entry is written).
async fn read_manifest(
    archive: &Archive,
    recording: i64,
    key: &str,
) -> Result<(Manifest, IndexedFile), ExportError> {
    let path = object_key(key);
    let missing = |_| ExportError::Missing {
        key: key.to_owned(),
    };
    let head = archive.store().head(&path).await.map_err(|err| match err {
        object_store::Error::NotFound { .. } => missing(()),
        other => ExportError::Storage(other.into()),
    })?;
    if head.size > MAX_MANIFEST_BYTES {
        return Err(ExportError::UnreadableManifest {
            recording,
            key: key.to_owned(),
            detail: format!(
                "it is {} bytes, more than the {MAX_MANIFEST_BYTES} a manifest can be",
                head.size
            ),
        });
    }
    let body = archive.read(&path).await?;
    let manifest: Manifest =
        serde_json::from_slice(&body).map_err(|err| ExportError::UnreadableManifest {
            recording,
            key: key.to_owned(),
            detail: err.to_string(),
        })?;
    let digest = crate::storage::ObjectDigest::of_bytes(&path, &body);
    Ok((
        manifest,
        IndexedFile {
            path: String::new(),
            key: key.to_owned(),
            bytes: digest.bytes,
            sha256: digest.sha256,
        },
    ))
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
