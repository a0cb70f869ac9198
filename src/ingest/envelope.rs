//! The two delivery schemas, Event Grid and CloudEvents 1.0, read into one envelope.

use serde_json::Value;

pub const SUBSCRIPTION_VALIDATION: &str = "Microsoft.EventGrid.SubscriptionValidationEvent";
pub const SUBSCRIPTION_DELETION: &str = "Microsoft.EventGrid.SubscriptionDeletedEvent";
pub const RECORDING_FILE_STATUS_UPDATED: &str =
    "Microsoft.Communication.RecordingFileStatusUpdated";
pub const RECORDING_STATE_CHANGED: &str = "Microsoft.Communication.RecordingStateChanged";

/// One event of a delivery, whichever schema carried it.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// `id`; may be empty when the sender left it out (then the event is quarantined).
    pub id: String,
    /// `eventType` (Event Grid) or `type` (CloudEvents).
    pub event_type: String,
    pub subject: String,
    /// `eventTime` or `time`.
    pub time: Option<String>,
    pub data: Value,
    /// The event exactly as received, for quarantine.
    pub raw: Value,
}

/// Why a body is not an event delivery at all (answered with 400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("the body is not an array of events (nor a single CloudEvent)")]
    NotAnEventArray,
}

/// Reads a body: an array of events, or one CloudEvent object (`application/cloudevents+json`).
/// An element that is not an object still yields an envelope (with no type), so it can be
/// quarantined rather than refusing the batch.
pub fn parse_body(body: &[u8]) -> Result<Vec<Envelope>, EnvelopeError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|err| EnvelopeError::NotJson(err.to_string()))?;
    match value {
        Value::Array(items) => Ok(items.into_iter().map(envelope).collect()),
        Value::Object(ref object) if object.contains_key("specversion") => {
            Ok(vec![envelope(value)])
        }
        _ => Err(EnvelopeError::NotAnEventArray),
    }
}

fn text(raw: &Value, key: &str) -> Option<String> {
    raw.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn envelope(raw: Value) -> Envelope {
    let is_cloud_event = raw.get("specversion").is_some();
    let (type_key, time_key) = if is_cloud_event {
        ("type", "time")
    } else {
        ("eventType", "eventTime")
    };
    Envelope {
        id: text(&raw, "id").unwrap_or_default(),
        event_type: text(&raw, type_key).unwrap_or_default(),
        subject: text(&raw, "subject").unwrap_or_default(),
        time: text(&raw, time_key),
        data: raw.get("data").cloned().unwrap_or(Value::Null),
        raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_event_grid_and_cloud_events_alike() {
        let grid = br#"[{"id":"a","eventType":"T","subject":"/s","eventTime":"t","data":{"x":1}}]"#;
        let cloud = br#"[{"specversion":"1.0","id":"b","type":"T","subject":"/s","time":"t","data":{"x":1}}]"#;
        for body in [&grid[..], &cloud[..]] {
            let events = parse_body(body).unwrap();
            assert_eq!(events.len(), 1);
            assert_eq!(events[0].event_type, "T");
            assert_eq!(events[0].subject, "/s");
            assert_eq!(events[0].data["x"], 1);
        }
    }

    #[test]
    fn a_single_cloud_event_object_is_a_batch_of_one() {
        let events = parse_body(br#"{"specversion":"1.0","id":"b","type":"T","data":{}}"#).unwrap();
        assert_eq!(events[0].id, "b");
    }

    #[test]
    fn non_json_and_non_arrays_are_refused() {
        assert!(matches!(
            parse_body(b"nope"),
            Err(EnvelopeError::NotJson(_))
        ));
        assert_eq!(
            parse_body(br#"{"id":"x"}"#).unwrap_err(),
            EnvelopeError::NotAnEventArray
        );
        assert_eq!(
            parse_body(b"42").unwrap_err(),
            EnvelopeError::NotAnEventArray
        );
    }
}
