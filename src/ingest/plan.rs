//! Judging one event before anything is written: what it is, whether it is valid, and what
//! quarantine would keep of it. Everything here is pure and bounded, so the write
//! transaction that follows holds the database only for its inserts.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::call_leg_event::{dedup_id, leg_change};
use super::delivery::Intake;
use super::envelope::{self, Envelope};
use super::recording_event::announcement;
use crate::call_leg::LegChange;
use crate::queue::intake::{EventOutcome, StoredPayload};
use crate::recording::Announcement;

/// What an event will do once the transaction opens.
#[derive(Debug)]
pub enum Plan {
    /// Not an object, or without an id or a type: quarantined without claiming an id.
    Unidentified(&'static str),
    /// An event with an id, which is claimed first (a claimed id is a redelivery).
    Identified(Action),
}

/// What an event with an id does once its id is claimed.
#[derive(Debug)]
pub enum Action {
    /// A type we do not act on.
    Ignored,
    /// Invalid for us: quarantined with this reason.
    Invalid(String),
    /// A valid RecordingFileStatusUpdated.
    Files(Box<Announcement>),
    /// A valid RecordingStateChanged.
    StateChange(StateChangeFields),
    /// A valid CallLegStateChanged.
    CallLeg(LegChange),
}

impl Action {
    /// The outcome an event id is first recorded with.
    pub fn claimed_as(&self) -> EventOutcome {
        match self {
            Action::Ignored => EventOutcome::Ignored,
            Action::Invalid(_) => EventOutcome::Quarantined,
            Action::Files(_) | Action::StateChange(_) | Action::CallLeg(_) => {
                EventOutcome::Accepted
            }
        }
    }
}

/// The fields of a RecordingStateChanged event that are stored.
#[derive(Debug)]
pub struct StateChangeFields {
    pub recording_id: String,
    pub state: String,
    pub start_date_time: Option<String>,
    pub server_call_id: Option<String>,
    pub event_time: Option<String>,
    pub payload: String,
}

/// An event with its plan and, when it will be quarantined, the payload to keep.
pub struct Planned {
    pub event: Envelope,
    pub plan: Plan,
    payload: Option<StoredPayload>,
}

impl Planned {
    pub fn new(mut event: Envelope, intake: &Intake, now: DateTime<Utc>) -> Self {
        if event.event_type == envelope::CALL_LEG_STATE_CHANGED {
            event.id = dedup_id(&event);
        }
        let plan = plan(&event, intake, now);
        let payload = matches!(
            plan,
            Plan::Unidentified(_) | Plan::Identified(Action::Invalid(_))
        )
        .then(|| StoredPayload::of(&event.raw.to_string()));
        Self {
            event,
            plan,
            payload,
        }
    }

    /// What quarantine keeps of the event (prepared in advance for events planned to be
    /// quarantined; computed on the spot in the rare case the database refuses a valid one).
    pub fn stored_payload(&self) -> Cow<'_, StoredPayload> {
        match &self.payload {
            Some(payload) => Cow::Borrowed(payload),
            None => Cow::Owned(StoredPayload::of(&self.event.raw.to_string())),
        }
    }
}

fn plan(event: &Envelope, intake: &Intake, now: DateTime<Utc>) -> Plan {
    if event.event_type.is_empty() || event.id.trim().is_empty() {
        return Plan::Unidentified(if event.raw.is_object() {
            "the event has no id or no type"
        } else {
            "the element is not a JSON object"
        });
    }
    Plan::Identified(match event.event_type.as_str() {
        envelope::RECORDING_FILE_STATUS_UPDATED => recording_files(event, intake, now),
        envelope::RECORDING_STATE_CHANGED => state_change(event),
        envelope::CALL_LEG_STATE_CHANGED => match leg_change(event) {
            Ok(change) => Action::CallLeg(change),
            Err(invalid) => Action::Invalid(invalid.to_string()),
        },
        _ => Action::Ignored,
    })
}

/// Validates a RecordingFileStatusUpdated event with the current configuration.
pub fn recording_files(event: &Envelope, intake: &Intake, now: DateTime<Utc>) -> Action {
    match announcement(
        event,
        &intake.guard,
        &intake.acs_endpoint,
        intake.retention,
        now,
    ) {
        Ok(work) => Action::Files(Box::new(work)),
        Err(invalid) => Action::Invalid(invalid.to_string()),
    }
}

fn state_change(event: &Envelope) -> Action {
    let text = |key: &str| {
        event
            .data
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let (Some(recording_id), Some(state)) = (text("recordingId"), text("state")) else {
        return Action::Invalid(
            "RecordingStateChanged without data.recordingId or data.state".to_owned(),
        );
    };
    Action::StateChange(StateChangeFields {
        recording_id,
        state,
        start_date_time: text("startDateTime"),
        server_call_id: text("serverCallId"),
        event_time: event.time.clone(),
        payload: event.raw.to_string(),
    })
}
