//! Legal holds per recording: the store's hold on every object of the recording, and its
//! record in the database, behind both `/admin/recordings/{id}/hold` and `callvault
//! recordings hold`.

use serde::Serialize;
use serde_json::json;

use super::operations::OpsError;
use super::queries;
use super::views::rfc3339;
use crate::audit::{self, Action, Actor, AuditEntry};
use crate::queue::{Db, locks};
use crate::storage::Archive;

/// What a hold or release did.
#[derive(Debug, Clone, Serialize)]
pub struct HoldOutcome {
    /// Row id of the recording.
    pub recording: i64,
    pub legal_hold: bool,
    /// Objects whose legal hold the store now reports as `legal_hold`.
    pub objects: usize,
}

/// The WORM state of one recording, in its detail view.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LockView {
    pub legal_hold: bool,
    pub legal_hold_changed_at: Option<String>,
    /// When `storage.lock_after_hours`' job locked its objects; absent when locked at write
    /// or not locked.
    pub locked_at: Option<String>,
}

impl From<locks::LockRow> for LockView {
    fn from(row: locks::LockRow) -> Self {
        Self {
            legal_hold: row.legal_hold != 0,
            legal_hold_changed_at: row.legal_hold_changed_at.map(rfc3339),
            locked_at: row.locked_at.map(rfc3339),
        }
    }
}

/// The recording's lock state for its detail view.
pub async fn lock_view(db: &Db, recording: i64) -> Result<LockView, OpsError> {
    Ok(locks::get(db, recording)
        .await?
        .map(LockView::from)
        .unwrap_or_default())
}

/// Sets (`on`) or releases the legal hold on every object of the recording named by `key`
/// (row id, ACS recording id or recording key). The store first: the database then never
/// claims a hold the store does not have.
pub async fn set_legal_hold(
    db: &Db,
    archive: &Archive,
    actor: &Actor,
    key: &str,
    on: bool,
    now: i64,
) -> Result<HoldOutcome, OpsError> {
    let id = match key.parse::<i64>() {
        Ok(id) => Some(id),
        Err(_) => queries::recording_id_by_key(db, key).await?,
    };
    let row = match id {
        Some(id) => queries::recording(db, id).await?,
        None => None,
    };
    let recording = row
        .ok_or_else(|| OpsError::NotFound {
            code: "recording_not_found",
            message: format!("no recording with id, recording id or key `{key}`"),
        })?
        .recording;
    if recording.erased_at.is_some() {
        return Err(OpsError::invalid(
            "recording_erased",
            format!(
                "recording {} was erased; only its tombstone is left",
                recording.id
            ),
        ));
    }
    let layout = archive.layout(&recording.call_id, &recording.recording_key);
    let objects = archive.set_legal_hold(&layout, on).await?;
    if on && objects == 0 {
        // Recording a hold that covers nothing would tell a regulator something untrue.
        return Err(OpsError::invalid(
            "nothing_to_hold",
            format!(
                "recording {} has no archived objects yet; set the hold once it is archived",
                recording.id
            ),
        ));
    }
    locks::set_legal_hold(db, recording.id, on, now).await?;
    let action = if on { Action::Held } else { Action::Released };
    let entry = AuditEntry::new(actor, action)
        .at(now)
        .recording(
            recording.id,
            AuditEntry::recording_name(&recording.call_id, &recording.recording_key),
        )
        .detail(json!({"objects": objects}));
    audit::append(db, entry).await?;
    tracing::info!(
        recording = recording.id,
        legal_hold = on,
        objects,
        "legal hold changed by an operator"
    );
    Ok(HoldOutcome {
        recording: recording.id,
        legal_hold: on,
        objects,
    })
}
