//! Erasing a recording, behind `POST /admin/recordings/{id}/erase`, `callvault erase` and the
//! retention job: refused under a legal hold or a store lock, otherwise crash-safe in four
//! steps. (1) The intent is recorded with the tombstone to write, and in the same transaction
//! the recording is marked erased and its jobs deleted, so no worker claims it again, no
//! manifest is rewritten and no lock is set on it. (2) Every object in its folder is deleted,
//! with every version the store keeps. (3) The tombstone is written. (4) The erasure is marked
//! done. A run that stops anywhere is finished by the next one, which repeats (2) to (4).

use bytes::Bytes;
use chrono::Utc;
use serde::Serialize;

use super::erased_event::erased_event;
use super::operations::OpsError;
use super::queries;
use super::views::rfc3339;
use crate::queue::erasures::{self, Intent, Origin};
use crate::queue::recordings::{self, Recording};
use crate::queue::{Db, locks};
use crate::storage::tombstone::{ErasedObject, SCHEMA, Tombstone};
use crate::storage::{Archive, ObjectLock};

/// Most bytes of a reason kept: a sentence or two, not a document.
pub const MAX_REASON_BYTES: usize = 1000;

/// Who asks for an erasure, and why.
#[derive(Debug, Clone)]
pub struct ErasureRequest {
    pub origin: Origin,
    /// The operator's name (or `retention`), written into the tombstone.
    pub actor: String,
    pub reason: String,
}

impl ErasureRequest {
    /// An operator's request; the reason is required and bounded.
    pub fn by_operator(actor: &str, reason: &str) -> Result<Self, OpsError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(OpsError::invalid(
                "reason_required",
                "an erasure needs a reason (who asked for it and why), kept in its tombstone",
            ));
        }
        if reason.len() > MAX_REASON_BYTES || reason.chars().any(char::is_control) {
            return Err(OpsError::invalid(
                "invalid_reason",
                format!("the reason must be at most {MAX_REASON_BYTES} bytes of text on one line"),
            ));
        }
        Ok(Self {
            origin: Origin::Request,
            actor: actor.to_owned(),
            reason: reason.to_owned(),
        })
    }
}

/// Why a recording cannot be erased now, and from when it can.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// `legal_hold` or `store_lock`.
    pub cause: &'static str,
    pub message: String,
    /// When erasure becomes possible; None for a legal hold, which has no end date.
    pub possible_from: Option<String>,
}

/// What an erasure did, or (dry run) would do.
#[derive(Debug, Clone, Serialize)]
pub struct ErasureOutcome {
    /// Row id of the recording.
    pub recording: i64,
    pub call_id: String,
    pub recording_id: Option<String>,
    /// `done`, `already_erased` (nothing left to do), or `dry_run`.
    pub status: &'static str,
    /// Keys of the current objects deleted (dry run: found in the store now).
    pub deleted: Vec<String>,
    /// Earlier versions and delete markers deleted (S3 with versioning).
    pub versions_deleted: usize,
    pub tombstone_key: String,
    pub tombstone: Tombstone,
}

/// Finds the recording named by `key`: row id, ACS recording id or recording key.
pub async fn find_recording(db: &Db, key: &str) -> Result<Recording, OpsError> {
    let id = match key.parse::<i64>() {
        Ok(id) => Some(id),
        Err(_) => queries::recording_id_by_key(db, key).await?,
    };
    let row = match id {
        Some(id) => recordings::get(db, id).await?,
        None => None,
    };
    row.ok_or_else(|| OpsError::NotFound {
        code: "recording_not_found",
        message: format!("no recording with id, recording id or key `{key}`"),
    })
}

/// Every recording `participant` took part in, from the participant index, for `callvault
/// erase --participant`: the identifier is normalised as the index keys it, so any way of
/// writing it finds the same recordings. A recording whose erasure is done is no longer there.
pub async fn recordings_of_participant(
    db: &Db,
    participant: &str,
) -> Result<Vec<Recording>, OpsError> {
    let found = crate::participants::recordings_of(db, participant)
        .await
        .map_err(|err| match err {
            crate::participants::LookupError::Invalid(invalid) => {
                OpsError::invalid("invalid_participant", invalid.to_string())
            }
            crate::participants::LookupError::Queue(err) => OpsError::Queue(err),
        })?;
    let mut recordings = Vec::with_capacity(found.len());
    for entry in found {
        if let Some(recording) = recordings::get(db, entry.id).await? {
            recordings.push(recording);
        }
    }
    Ok(recordings)
}

/// Whether anything keeps the recording's objects from being deleted now: an operator's legal
/// hold, or a store lock whose retention has not ended (locked at write, or by the scheduled
/// lock of `storage.lock_after_hours`). A recording not locked yet inside its holding period
/// can be erased: that is what the holding period is for.
pub async fn refusal(
    db: &Db,
    lock: Option<ObjectLock>,
    recording: &Recording,
    now: i64,
) -> Result<Option<Refusal>, OpsError> {
    let row = locks::get(db, recording.id).await?.unwrap_or_default();
    if row.legal_hold != 0 {
        let since = row
            .legal_hold_changed_at
            .map(|at| format!(" since {}", rfc3339(at)))
            .unwrap_or_default();
        return Ok(Some(Refusal {
            cause: "legal_hold",
            message: format!(
                "recording {} is under a legal hold{since}; a legal hold has no end date, so it can be erased only once the hold is released (`callvault recordings hold {} --release`)",
                recording.id, recording.id
            ),
            possible_from: None,
        }));
    }
    let Some(lock) = lock else {
        return Ok(None);
    };
    let locked_from = if lock.at_write() {
        newest_object_time(db, recording).await?
    } else {
        row.locked_at
    };
    let Some(locked_from) = locked_from else {
        return Ok(None);
    };
    let until = locked_from + i64::from(lock.days) * 86_400_000;
    if until <= now {
        return Ok(None);
    }
    Ok(Some(Refusal {
        cause: "store_lock",
        message: format!(
            "recording {}'s objects are locked by the store ({:?} mode, {} days from {}) until {}; it can be erased from then on",
            recording.id,
            lock.mode,
            lock.days,
            rfc3339(locked_from),
            rfc3339(until)
        ),
        possible_from: Some(rfc3339(until)),
    }))
}

/// When the recording's newest object was written (its last chunk or its manifest): locked at
/// write, that object's retention ends last.
async fn newest_object_time(db: &Db, recording: &Recording) -> Result<Option<i64>, OpsError> {
    let jobs = recordings::jobs(db, recording.id).await?;
    Ok(jobs
        .iter()
        .filter_map(|job| job.archived_at)
        .chain(recording.manifest_written_at)
        .max())
}

/// The tombstone of `recording`, from what the database recorded of its objects and what the
/// manifest chain recorded of its versions; the manifest's own size and sha256 are read
/// from the store.
async fn tombstone_of(
    db: &Db,
    archive: &Archive,
    recording: &Recording,
    request: &ErasureRequest,
    now: i64,
) -> Result<Tombstone, OpsError> {
    let mut objects = Vec::new();
    for job in recordings::jobs(db, recording.id).await? {
        let pairs = [
            (job.media_key, job.media_bytes, job.media_sha256),
            (job.metadata_key, job.metadata_bytes, job.metadata_sha256),
        ];
        for (key, bytes, sha256) in pairs {
            if let (Some(key), Some(bytes), Some(sha256)) = (key, bytes, sha256) {
                objects.push(ErasedObject {
                    key,
                    bytes: bytes.max(0) as u64,
                    sha256,
                });
            }
        }
    }
    if let Some(key) = &recording.manifest_key
        && let Some(digest) = archive
            .existing_digest(&crate::storage::layout::object_key(key))
            .await?
    {
        objects.push(ErasedObject {
            key: digest.key,
            bytes: digest.bytes,
            sha256: digest.sha256,
        });
    }
    let manifest_versions = erasures::manifest_versions(db, recording.id)
        .await?
        .into_iter()
        .map(|version| version.sha256)
        .collect();
    Ok(Tombstone {
        schema: SCHEMA.to_owned(),
        call_id: recording.call_id.clone(),
        recording_id: recording.recording_id.clone(),
        server_call_id: recording.server_call_id.clone(),
        recording_key: recording.recording_key.clone(),
        recording_start_time: recording.start_time.clone(),
        erased_at: rfc3339(now),
        erased_by: request.actor.clone(),
        origin: request.origin.as_str().to_owned(),
        reason: request.reason.clone(),
        objects,
        manifest_versions,
    })
}

/// Erases the recording (or, with `dry_run`, says what would go). A recording whose erasure
/// was started before is finished, whatever this request says; one already erased is
/// answered `already_erased`.
pub async fn erase(
    db: &Db,
    archive: &Archive,
    recording: &Recording,
    request: &ErasureRequest,
    dry_run: bool,
) -> Result<ErasureOutcome, OpsError> {
    let now = Utc::now().timestamp_millis();
    let layout = archive.layout(&recording.call_id, &recording.recording_key);
    if let Some(started) = erasures::get(db, recording.id).await? {
        let tombstone: Tombstone = serde_json::from_str(&started.tombstone).map_err(|err| {
            OpsError::invalid(
                "unreadable_tombstone",
                format!(
                    "the recorded tombstone of recording {} cannot be read: {err}",
                    recording.id
                ),
            )
        })?;
        if started.is_done() || dry_run {
            let deleted = if dry_run && !started.is_done() {
                archive.objects_to_erase(&layout).await?
            } else {
                Vec::new()
            };
            return Ok(outcome(
                recording,
                &layout,
                if started.is_done() {
                    "already_erased"
                } else {
                    "dry_run"
                },
                deleted,
                0,
                tombstone,
            ));
        }
        return finish(db, archive, recording, tombstone).await;
    }
    if let Some(refusal) = refusal(db, archive.object_lock(), recording, now).await? {
        return Err(OpsError::NotErasable(refusal));
    }
    let tombstone = tombstone_of(db, archive, recording, request, now).await?;
    if dry_run {
        let found = archive.objects_to_erase(&layout).await?;
        return Ok(outcome(recording, &layout, "dry_run", found, 0, tombstone));
    }
    let body = String::from_utf8(tombstone.to_bytes()).expect("JSON is UTF-8");
    let intent = Intent {
        recording: recording.id,
        origin: request.origin,
        actor: &request.actor,
        reason: &request.reason,
        tombstone: &body,
    };
    if !erasures::begin(db, &intent, now).await? {
        // Another erasure of it started meanwhile: finish that one, with its tombstone.
        return Box::pin(erase(db, archive, recording, request, false)).await;
    }
    tracing::info!(recording = recording.id, origin = request.origin.as_str(), actor = %request.actor, "erasure started");
    finish(db, archive, recording, tombstone).await
}

/// Steps 2 to 4: the objects, the tombstone, the mark.
async fn finish(
    db: &Db,
    archive: &Archive,
    recording: &Recording,
    tombstone: Tombstone,
) -> Result<ErasureOutcome, OpsError> {
    let layout = archive.layout(&recording.call_id, &recording.recording_key);
    let erased = archive.erase_objects(&layout).await?;
    let written = archive
        .write_tombstone(&layout, Bytes::from(tombstone.to_bytes()))
        .await?;
    // Recorded before the erasure is marked done: a failure leaves it `started`, and the
    // re-run that finishes it records it then.
    audit_erasure(db, recording, &tombstone, &erased.keys).await?;
    // Announced with the mark, so only once the tombstone is readable.
    let announce = erased_event(recording, &tombstone, &written);
    erasures::finish(db, recording.id, &announce, Utc::now().timestamp_millis()).await?;
    Ok(outcome(
        recording,
        &layout,
        "done",
        erased.keys,
        erased.versions,
        tombstone,
    ))
}

/// The audit record of an erasure: who, why, and every object deleted, chained with the rest.
async fn audit_erasure(
    db: &Db,
    recording: &Recording,
    tombstone: &Tombstone,
    deleted: &[String],
) -> Result<(), OpsError> {
    tracing::info!(
        recording = recording.id,
        call_id = %recording.call_id,
        origin = %tombstone.origin,
        actor = %tombstone.erased_by,
        reason = %tombstone.reason,
        objects = deleted.len(),
        "recording erased; tombstone written"
    );
    let actor = crate::audit::Actor::token(&tombstone.erased_by, crate::audit::Role::Operator);
    let entry = crate::audit::AuditEntry::new(&actor, crate::audit::Action::Erased)
        .recording(
            recording.id,
            crate::audit::AuditEntry::recording_name(&recording.call_id, &recording.recording_key),
        )
        .detail(serde_json::json!({
            "origin": tombstone.origin,
            "reason": tombstone.reason,
            "deleted": deleted,
        }));
    crate::audit::append(db, entry).await?;
    Ok(())
}

fn outcome(
    recording: &Recording,
    layout: &crate::storage::RecordingLayout,
    status: &'static str,
    deleted: Vec<String>,
    versions_deleted: usize,
    tombstone: Tombstone,
) -> ErasureOutcome {
    ErasureOutcome {
        recording: recording.id,
        call_id: recording.call_id.clone(),
        recording_id: recording.recording_id.clone(),
        status,
        deleted,
        versions_deleted,
        tombstone_key: layout.tombstone().to_string(),
        tombstone,
    }
}

/// Finishes every erasure that was started and not finished (a crash, a store outage); returns
/// how many it finished. Errors are logged and the erasure left for the next round.
pub async fn finish_unfinished(db: &Db, archive: &Archive) -> Result<usize, OpsError> {
    let mut finished = 0;
    for id in erasures::unfinished(db, 100).await? {
        let Some(recording) = recordings::get(db, id).await? else {
            continue;
        };
        let request = ErasureRequest {
            origin: Origin::Request,
            actor: String::new(),
            reason: String::new(),
        };
        match erase(db, archive, &recording, &request, false).await {
            Ok(_) => finished += 1,
            Err(err) => {
                tracing::error!(recording = id, error = %err, "an unfinished erasure still cannot finish; retrying next round");
            }
        }
    }
    Ok(finished)
}
