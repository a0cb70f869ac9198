//! The `verify_failed` event: a verification found an archived object missing or different
//! from its manifest. Written in the transaction that records the failure with the recording.

use serde::Serialize;
use serde_json::json;

use super::super::{QueueError, Tx};
use super::envelope::subject;
use super::{EventRoutes, EventType, NewEvent, record};
use crate::recording::from_millis;

/// At most this many objects are named in one event; the rest are counted.
pub const MAX_OBJECTS: usize = 100;

/// The longest problem description one object carries.
const DETAIL_BYTES: usize = 512;

/// Size and sha256 of one object, as the manifest recorded it or as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectFacts {
    pub bytes: u64,
    pub sha256: String,
}

/// One object a verification found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedObject {
    pub key: String,
    /// `missing` (nothing at the key) or `mismatch` (other content).
    pub problem: &'static str,
    /// What differs, in words.
    pub detail: Option<String>,
    /// What the manifest recorded; None when the manifest itself is missing or unreadable.
    pub expected: Option<ObjectFacts>,
    /// What the store holds, when the object was read back in full.
    pub found: Option<ObjectFacts>,
}

/// What one failed verification found.
#[derive(Debug, Clone)]
pub struct VerifyFailure<'a> {
    pub manifest_key: &'a str,
    /// `verifier` (the scheduled one) or `cli` (`callvault verify`).
    pub verified_by: &'a str,
    /// `full` (every object read back) or `fast` (one HEAD each).
    pub depth: &'a str,
    pub objects: &'a [FailedObject],
}

#[derive(sqlx::FromRow)]
struct RecordingFacts {
    call_id: String,
    recording_key: String,
    recording_id: Option<String>,
    server_call_id: Option<String>,
    start_time: Option<String>,
}

/// Records a `verify_failed` event for recording row `recording`; answers whether a row was
/// written for some sink.
pub async fn record_verify_failure(
    tx: &mut Tx,
    routes: &EventRoutes,
    recording: i64,
    failure: &VerifyFailure<'_>,
    now: i64,
) -> Result<bool, QueueError> {
    if !routes.wants(EventType::VerifyFailed) {
        return Ok(false);
    }
    let Some(facts): Option<RecordingFacts> = sqlx::query_as(
        "SELECT call_id, recording_key, recording_id, server_call_id, start_time
         FROM recordings WHERE id = $1",
    )
    .bind(recording)
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(false);
    };
    let named: Vec<FailedObject> = failure
        .objects
        .iter()
        .take(MAX_OBJECTS)
        .map(|object| FailedObject {
            detail: object.detail.as_deref().map(bounded),
            ..object.clone()
        })
        .collect();
    let count = |problem: &str| {
        failure
            .objects
            .iter()
            .filter(|object| object.problem == problem)
            .count()
    };
    let event = NewEvent {
        id: format!("verify-failed-{}", uuid::Uuid::new_v4().simple()),
        event_type: EventType::VerifyFailed,
        subject: subject(&facts.call_id, &facts.recording_key),
        recording_id: recording,
        time: from_millis(now).to_rfc3339(),
        data: json!({
            "callId": facts.call_id,
            "serverCallId": facts.server_call_id,
            "recordingId": facts.recording_id,
            "recordingKey": facts.recording_key,
            "recordingStartTime": facts.start_time,
            "manifest": {"key": failure.manifest_key},
            "verifiedBy": failure.verified_by,
            "depth": failure.depth,
            "mismatched": count("mismatch"),
            "missing": count("missing"),
            "objects": named,
            "objectsOmitted": failure.objects.len().saturating_sub(MAX_OBJECTS),
        }),
    };
    Ok(record(tx, routes, &event, now).await? > 0)
}

fn bounded(detail: &str) -> String {
    if detail.len() <= DETAIL_BYTES {
        return detail.to_owned();
    }
    let mut end = DETAIL_BYTES;
    while !detail.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &detail[..end])
}
