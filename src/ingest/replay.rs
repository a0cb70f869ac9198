//! Replaying a quarantined event after a configuration fix: validated again (before any
//! write, like a delivery), queued when it now passes, and the entry marked replayed.

use serde_json::json;

use super::delivery::{Announced, Intake, enqueue};
use super::envelope::{self, parse_body};
use super::plan::{self, Action};
use crate::audit::{self, Action as AuditAction, Actor, AuditEntry};
use crate::queue::intake::{self, EventOutcome};
use crate::queue::{QueueError, now_millis};

/// What replaying one quarantine entry did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// The event is valid now; its work is queued and the entry marked replayed.
    Accepted,
    /// Still invalid; the entry stays open with this reason as its replay outcome.
    StillInvalid(String),
    /// Only a prefix of the event was kept, so it cannot be rebuilt; nothing was changed.
    Truncated,
    /// No open entry with that id (unknown, or already replayed).
    NotOpen,
    /// It announces a recording that was erased: nothing is queued, and the entry is closed.
    Erased,
}

impl Intake {
    /// Re-validates a quarantined event with the current configuration; `actor`'s replay is
    /// recorded in the audit trail with the entry's outcome, in the same transaction.
    pub async fn replay_quarantined(
        &self,
        actor: &Actor,
        quarantine_id: i64,
    ) -> Result<Replay, QueueError> {
        let Some((payload, truncated)): Option<(String, i64)> = sqlx::query_as(
            "SELECT payload, payload_truncated FROM quarantine WHERE id = $1 AND replayed_at IS NULL",
        )
        .bind(quarantine_id)
        .fetch_optional(self.db.pool())
        .await?
        else {
            return Ok(Replay::NotOpen);
        };
        if truncated != 0 {
            return Ok(Replay::Truncated);
        }
        let action = match parse_body(format!("[{payload}]").as_bytes()) {
            Ok(mut events) if events.len() == 1 => {
                let event = events.remove(0);
                match event.event_type.as_str() {
                    envelope::RECORDING_FILE_STATUS_UPDATED => {
                        plan::recording_files(&event, self, chrono::Utc::now())
                    }
                    other => Action::Invalid(format!(
                        "event type `{}` cannot be replayed",
                        crate::quote::quote(other)
                    )),
                }
            }
            _ => Action::Invalid("the stored payload is not an event".into()),
        };

        let now = now_millis();
        let mut tx = self.db.begin_write().await?;
        let outcome = match &action {
            Action::Files(work) => {
                intake::claim_event_id(
                    &mut tx,
                    &work.event_id,
                    envelope::RECORDING_FILE_STATUS_UPDATED,
                    EventOutcome::Accepted,
                    now,
                )
                .await?;
                match enqueue(&mut tx, work, now).await? {
                    Announced::Queued => Replay::Accepted,
                    Announced::IndexTaken(taken) => Replay::StillInvalid(taken.to_string()),
                    Announced::Erased => Replay::Erased,
                }
            }
            Action::Invalid(reason) => Replay::StillInvalid(reason.clone()),
            Action::Ignored | Action::StateChange(_) | Action::CallLeg(_) => {
                Replay::StillInvalid("the stored payload is not a recording event".into())
            }
        };
        let replayed_at = matches!(outcome, Replay::Accepted | Replay::Erased).then_some(now);
        let label = match &outcome {
            Replay::StillInvalid(reason) => format!("still invalid: {reason}"),
            Replay::Erased => "recording erased: nothing queued".to_owned(),
            _ => "accepted".to_owned(),
        };
        sqlx::query("UPDATE quarantine SET replayed_at = $1, replay_outcome = $2 WHERE id = $3")
            .bind(replayed_at)
            .bind(&label)
            .bind(quarantine_id)
            .execute(&mut *tx)
            .await?;
        let mut entry = AuditEntry::new(actor, AuditAction::QuarantineReplayed).at(now);
        let mut detail = json!({"quarantine": quarantine_id, "outcome": label});
        if let Action::Files(work) = &action {
            detail["event_id"] = json!(work.event_id);
            if outcome == Replay::Accepted {
                let recording: Option<(i64, String, String)> = sqlx::query_as(
                    "SELECT r.id, r.call_id, r.recording_key FROM events e JOIN recordings r ON r.id = e.recording_id WHERE e.id = $1",
                )
                .bind(&work.event_id)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some((id, call_id, key)) = recording {
                    entry = entry.recording(id, AuditEntry::recording_name(&call_id, &key));
                }
            }
        }
        audit::append_in(&mut tx, entry.detail(detail)).await?;
        tx.commit().await?;
        match outcome {
            Replay::Accepted => self.wake.notify_one(),
            Replay::Erased => crate::metrics::Metrics::add(&self.metrics.events_erased, 1),
            _ => {}
        }
        Ok(outcome)
    }
}
