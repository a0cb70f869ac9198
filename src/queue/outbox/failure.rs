//! The `failed` event: a chunk became `failed` or `expired`, so its recording will not be
//! complete without an operator. Written in the transaction that records the outcome.

use serde_json::json;

use super::super::{QueueError, Tx};
use super::envelope::subject;
use super::{EventRoutes, EventType, NewEvent, record};
use crate::recording::from_millis;

/// The longest reason an event carries; the full one stays on the job.
const REASON_BYTES: usize = 2048;

#[derive(sqlx::FromRow)]
struct FailedChunk {
    recording_row: i64,
    call_id: String,
    recording_key: String,
    recording_id: Option<String>,
    server_call_id: Option<String>,
    start_time: Option<String>,
    chunk_index: i64,
    document_id: String,
    attempts: i64,
}

/// Records a `failed` event for job `job_id`, now in `state` (`failed` or `expired`).
pub async fn record_failure(
    tx: &mut Tx,
    routes: &EventRoutes,
    job_id: i64,
    state: &str,
    reason: &str,
    now: i64,
) -> Result<(), QueueError> {
    if !routes.wants(EventType::Failed) {
        return Ok(());
    }
    let chunk: FailedChunk = sqlx::query_as(
        "SELECT r.id AS recording_row, r.call_id, r.recording_key, r.recording_id, r.server_call_id,
                r.start_time, j.chunk_index, j.document_id, j.attempts
         FROM jobs j JOIN recordings r ON r.id = j.recording_id WHERE j.id = $1",
    )
    .bind(job_id)
    .fetch_one(&mut **tx)
    .await?;
    let event = NewEvent {
        id: uuid::Uuid::new_v4().to_string(),
        event_type: EventType::Failed,
        subject: subject(&chunk.call_id, &chunk.recording_key),
        recording_id: chunk.recording_row,
        time: from_millis(now).to_rfc3339(),
        data: json!({
            "callId": chunk.call_id,
            "serverCallId": chunk.server_call_id,
            "recordingId": chunk.recording_id,
            "recordingKey": chunk.recording_key,
            "recordingStartTime": chunk.start_time,
            "chunkIndex": chunk.chunk_index,
            "documentId": chunk.document_id,
            "state": state,
            "attempts": chunk.attempts,
            "reason": bounded(reason),
        }),
    };
    record(tx, routes, &event, now).await?;
    Ok(())
}

fn bounded(reason: &str) -> &str {
    if reason.len() <= REASON_BYTES {
        return reason;
    }
    let mut end = REASON_BYTES;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}
