//! CallLegStateChanged: the leg id, the conversation it belongs to and its state, each
//! bounded and of a known shape, or a reason to quarantine the event.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::DateTime;
use serde_json::Value;

use super::envelope::Envelope;
use crate::call_leg::{LegChange, derived_event_id};
use crate::quote::quote;

/// Longest `CallLegId` accepted; ACS sends GUIDs.
pub const MAX_CALL_LEG_ID_CHARS: usize = 256;
/// Longest `ConversationId` accepted: Base64Url of a conversation URL, a few hundred characters.
pub const MAX_CONVERSATION_ID_CHARS: usize = 4096;
/// Longest `CallState` accepted.
pub const MAX_STATE_CHARS: usize = 64;

/// Why a CallLegStateChanged event is quarantined.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidCallLeg {
    #[error("CallLegStateChanged without data.{0}")]
    Missing(&'static str),
    #[error("data.{field} is {chars} characters long; at most {max} are accepted")]
    TooLong {
        field: &'static str,
        chars: usize,
        max: usize,
    },
    #[error("data.CallLegId `{}` holds a character other than letters, digits and . _ : -", quote(.0))]
    BadCallLegId(String),
    #[error(
        "data.ConversationId `{}` is not Base64Url of an http(s) conversation URL",
        quote(.0)
    )]
    BadConversationId(String),
    #[error("data.CallState `{}` is not a word of letters", quote(.0))]
    BadState(String),
    #[error("eventTime is missing, so the leg's states cannot be ordered")]
    NoEventTime,
    #[error("eventTime `{}` is not an ISO 8601 time", quote(.0))]
    BadEventTime(String),
    #[error("subject `{}` is not callLeg/{{CallLegId}}/callState for this leg", quote(.0))]
    BadSubject(String),
}

/// The value of `key` in `data`, spelled as the 2021 document does (`CallLegId`) or in camel
/// case (`callLegId`), as Event Grid's newer events are.
fn field<'a>(data: &'a Value, key: &str) -> Option<&'a Value> {
    data.get(key).or_else(|| {
        let mut camel = key.to_owned();
        camel[..1].make_ascii_lowercase();
        data.get(camel.as_str())
    })
}

fn text<'a>(data: &'a Value, key: &'static str) -> Result<&'a str, InvalidCallLeg> {
    field(data, key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(InvalidCallLeg::Missing(key))
}

fn bounded<'a>(value: &'a str, field: &'static str, max: usize) -> Result<&'a str, InvalidCallLeg> {
    let chars = value.chars().count();
    if chars > max {
        return Err(InvalidCallLeg::TooLong { field, chars, max });
    }
    Ok(value)
}

/// The id an event is deduplicated by: its own, or, when it has none (`"id": null` in the
/// 2021 shape), one derived from its leg, state and eventTime as sent.
pub fn dedup_id(event: &Envelope) -> String {
    if !event.id.trim().is_empty() {
        return event.id.clone();
    }
    let raw = |key| {
        field(&event.data, key)
            .map(Value::to_string)
            .unwrap_or_default()
    };
    derived_event_id(
        &raw("CallLegId"),
        &raw("CallState"),
        event.time.as_deref().unwrap_or_default(),
    )
}

/// Validates one CallLegStateChanged event.
pub fn leg_change(event: &Envelope) -> Result<LegChange, InvalidCallLeg> {
    let data = &event.data;
    let call_leg_id = bounded(text(data, "CallLegId")?, "CallLegId", MAX_CALL_LEG_ID_CHARS)?;
    if !call_leg_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))
    {
        return Err(InvalidCallLeg::BadCallLegId(call_leg_id.to_owned()));
    }
    let conversation_id = bounded(
        text(data, "ConversationId")?,
        "ConversationId",
        MAX_CONVERSATION_ID_CHARS,
    )?;
    if !is_conversation_id(conversation_id) {
        return Err(InvalidCallLeg::BadConversationId(
            conversation_id.to_owned(),
        ));
    }
    let state = bounded(text(data, "CallState")?, "CallState", MAX_STATE_CHARS)?;
    if !state.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(InvalidCallLeg::BadState(state.to_owned()));
    }
    let time = event.time.as_deref().ok_or(InvalidCallLeg::NoEventTime)?;
    let state_changed_at = DateTime::parse_from_rfc3339(time)
        .map_err(|_| InvalidCallLeg::BadEventTime(time.to_owned()))?
        .timestamp_millis();
    let subject = event.subject.trim();
    if !subject.is_empty() && !subject_names(subject, call_leg_id) {
        return Err(InvalidCallLeg::BadSubject(subject.to_owned()));
    }
    Ok(LegChange {
        call_leg_id: call_leg_id.to_owned(),
        conversation_id: conversation_id.to_owned(),
        state: state.to_owned(),
        state_changed_at,
    })
}

/// `callLeg/{id}/callState`, with or without a leading `/`.
fn subject_names(subject: &str, call_leg_id: &str) -> bool {
    let subject = subject.strip_prefix('/').unwrap_or(subject);
    subject
        .strip_prefix("callLeg/")
        .and_then(|rest| rest.strip_suffix("/callState"))
        .is_some_and(|id| id == call_leg_id)
}

/// Base64Url (padded or not) of an `http://` or `https://` URL.
fn is_conversation_id(id: &str) -> bool {
    let unpadded = id.trim_end_matches('=');
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(unpadded) else {
        return false;
    };
    std::str::from_utf8(&bytes)
        .ok()
        .and_then(|text| url::Url::parse(text).ok())
        .is_some_and(|url| matches!(url.scheme(), "http" | "https"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::envelope::parse_body;

    const CONVERSATION: &str = "aHR0cHM6Ly9jb252LXVrc28tMDIuY29udi5za3lwZS5jb20vY29udi9hYmM";

    fn event(data: serde_json::Value) -> Envelope {
        let body = serde_json::json!([{
            "id": null, "topic": null, "subject": "callLeg/leg-1/callState",
            "data": data,
            "eventType": "Microsoft.Communication.CallLegStateChanged",
            "eventTime": "2021-04-14T16:32:34.1115003Z", "metadataVersion": null, "dataVersion": null
        }]);
        parse_body(body.to_string().as_bytes()).unwrap().remove(0)
    }

    fn established() -> Envelope {
        event(serde_json::json!({
            "ConversationId": CONVERSATION, "CallLegId": "leg-1", "CallState": "Established"
        }))
    }

    #[test]
    fn the_2021_shape_is_read() {
        let change = leg_change(&established()).unwrap();
        assert_eq!(change.call_leg_id, "leg-1");
        assert_eq!(change.conversation_id, CONVERSATION);
        assert!(change.is_established());
        assert_eq!(change.state_changed_at, 1_618_417_954_111);
    }

    #[test]
    fn camel_case_keys_are_read_too() {
        let change = leg_change(&event(serde_json::json!({
            "conversationId": CONVERSATION, "callLegId": "leg-1", "callState": "Disconnected"
        })))
        .unwrap();
        assert_eq!(change.state, "Disconnected");
    }

    #[test]
    fn an_event_without_id_gets_one_from_its_leg_state_and_time() {
        let first = dedup_id(&established());
        assert_eq!(first, dedup_id(&established()));
        let mut later = established();
        later.time = Some("2021-04-14T16:40:00Z".into());
        assert_ne!(first, dedup_id(&later));
        let mut with_id = established();
        with_id.id = "given".into();
        assert_eq!(dedup_id(&with_id), "given");
    }

    #[test]
    fn each_bad_field_is_named() {
        let with = |key: &str, value: serde_json::Value| {
            let mut event = established();
            event.data[key] = value;
            leg_change(&event).unwrap_err()
        };
        assert_eq!(
            with("CallLegId", "".into()),
            InvalidCallLeg::Missing("CallLegId")
        );
        assert!(matches!(
            with("CallLegId", "x".repeat(257).into()),
            InvalidCallLeg::TooLong {
                field: "CallLegId",
                chars: 257,
                ..
            }
        ));
        assert!(matches!(
            with("CallLegId", "a/b".into()),
            InvalidCallLeg::BadCallLegId(_)
        ));
        assert!(matches!(
            with("ConversationId", "not base64!".into()),
            InvalidCallLeg::BadConversationId(_)
        ));
        // Base64Url, but of something that is not a URL.
        assert!(matches!(
            with("ConversationId", "aGVsbG8".into()),
            InvalidCallLeg::BadConversationId(_)
        ));
        assert!(matches!(
            with("CallState", "Est ablished".into()),
            InvalidCallLeg::BadState(_)
        ));
        assert!(matches!(
            with("CallState", 3.into()),
            InvalidCallLeg::Missing("CallState")
        ));
        let mut event = established();
        event.time = Some("yesterday".into());
        assert!(matches!(
            leg_change(&event).unwrap_err(),
            InvalidCallLeg::BadEventTime(_)
        ));
        event.time = None;
        assert_eq!(leg_change(&event).unwrap_err(), InvalidCallLeg::NoEventTime);
        let mut event = established();
        event.subject = "callLeg/other/callState".into();
        assert!(matches!(
            leg_change(&event).unwrap_err(),
            InvalidCallLeg::BadSubject(_)
        ));
    }

    #[test]
    fn a_huge_field_is_quoted_short() {
        let mut event = established();
        event.data["ConversationId"] = "é".repeat(4_000).into();
        let reason = leg_change(&event).unwrap_err().to_string();
        assert!(reason.chars().count() < 300, "{reason}");
    }
}
