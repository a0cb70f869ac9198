//! Who a recording belongs to and whether it still exists: the two questions an access
//! request asks of the rest of callvault, each behind one function.

use super::ExportError;
use crate::participants::LookupError;
use crate::queue::Db;
use crate::queue::recordings::Recording;

/// The recordings the participant index lists for `participant`, oldest first. The id is
/// normalised as the index normalises it, so any way of writing it finds the same recordings.
pub async fn recordings_of_participant(
    db: &Db,
    participant: &str,
) -> Result<Vec<i64>, ExportError> {
    let found = crate::participants::recordings_of(db, participant)
        .await
        .map_err(|err| match err {
            LookupError::Invalid(invalid) => ExportError::InvalidSelection(invalid.to_string()),
            LookupError::Queue(err) => ExportError::Queue(err),
        })?;
    // The index answers newest first; an export lists recordings in the order they were made.
    Ok(found
        .into_iter()
        .rev()
        .map(|recording| recording.id)
        .collect())
}

/// When the recording was erased (epoch milliseconds, migration 0013), or None while it is
/// kept. An erased recording's objects are gone: it is listed, never exported.
pub fn erased_at(recording: &Recording) -> Option<i64> {
    recording.erased_at
}
