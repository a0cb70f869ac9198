//! The two delivery schemas, Event Grid and CloudEvents 1.0, read into one envelope.

use std::cell::Cell;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

pub use callvault_acs_protocol::events::{
    CALL_LEG_STATE_CHANGED, RECORDING_FILE_STATUS_UPDATED, RECORDING_STATE_CHANGED,
    SUBSCRIPTION_VALIDATION,
};
pub const SUBSCRIPTION_DELETION: &str = "Microsoft.EventGrid.SubscriptionDeletedEvent";

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

/// Event Grid's maximum batch. A larger body is not from Event Grid; it is refused before
/// its events are read, so it costs neither memory nor quarantine rows.
pub const MAX_EVENTS_PER_DELIVERY: usize = 5_000;

/// Why a body is not an event delivery at all (answered with 400, or 413 for too many events).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("the body is not an array of events (nor a single CloudEvent)")]
    NotAnEventArray,
    #[error(
        "the delivery holds more than {MAX_EVENTS_PER_DELIVERY} events, Event Grid's maximum batch"
    )]
    TooManyEvents,
}

/// Reads a body: an array of events, or one CloudEvent object (`application/cloudevents+json`).
/// An element that is not an object still yields an envelope (with no type), so it can be
/// quarantined rather than refusing the batch.
pub fn parse_body(body: &[u8]) -> Result<Vec<Envelope>, EnvelopeError> {
    let overflowed = Cell::new(false);
    let mut reader = serde_json::Deserializer::from_slice(body);
    let parsed = DeliverySeed {
        overflowed: &overflowed,
    }
    .deserialize(&mut reader)
    .and_then(|delivery| reader.end().map(|()| delivery));
    let delivery = match parsed {
        Ok(delivery) => delivery,
        Err(_) if overflowed.get() => return Err(EnvelopeError::TooManyEvents),
        Err(err) => return Err(EnvelopeError::NotJson(err.to_string())),
    };
    match delivery {
        Delivery::Batch(items) => Ok(items.into_iter().map(envelope).collect()),
        Delivery::Single(value) if value.get("specversion").is_some() => Ok(vec![envelope(value)]),
        Delivery::Single(_) | Delivery::Other => Err(EnvelopeError::NotAnEventArray),
    }
}

/// A body's top level, read without building more than [`MAX_EVENTS_PER_DELIVERY`] elements.
enum Delivery {
    Batch(Vec<Value>),
    Single(Value),
    Other,
}

/// Stops reading an array at its first element past the cap (and says so through
/// `overflowed`): a body of two million zeros is refused after 5,001 of them.
struct DeliverySeed<'a> {
    overflowed: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for DeliverySeed<'_> {
    type Value = Delivery;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Delivery, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DeliverySeed<'_> {
    type Value = Delivery;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of events or one CloudEvent")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Delivery, A::Error> {
        // Grown as elements arrive, never reserved from a size the sender states.
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Value>()? {
            if items.len() == MAX_EVENTS_PER_DELIVERY {
                self.overflowed.set(true);
                return Err(serde::de::Error::custom("too many events"));
            }
            items.push(item);
        }
        Ok(Delivery::Batch(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Delivery, A::Error> {
        Value::deserialize(MapAccessDeserializer::new(map)).map(Delivery::Single)
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Delivery, E> {
        Ok(Delivery::Other)
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Delivery, E> {
        Ok(Delivery::Other)
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Delivery, E> {
        Ok(Delivery::Other)
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Delivery, E> {
        Ok(Delivery::Other)
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Delivery, E> {
        Ok(Delivery::Other)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Delivery, E> {
        Ok(Delivery::Other)
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

    #[test]
    fn five_thousand_events_are_read_and_one_more_is_refused() {
        let body = |n: usize| format!("[{}]", vec!["0"; n].join(","));
        assert_eq!(parse_body(body(5_000).as_bytes()).unwrap().len(), 5_000);
        assert_eq!(
            parse_body(body(5_001).as_bytes()).unwrap_err(),
            EnvelopeError::TooManyEvents
        );
    }

    #[test]
    fn two_million_zeros_are_refused_as_too_many_events() {
        let body = format!("[{}]", vec!["0"; 2_000_000].join(","));
        assert!(body.len() < 4 * 1024 * 1024);
        assert_eq!(
            parse_body(body.as_bytes()).unwrap_err(),
            EnvelopeError::TooManyEvents
        );
    }

    #[test]
    fn trailing_bytes_after_the_events_are_not_json() {
        assert!(matches!(
            parse_body(b"[] []"),
            Err(EnvelopeError::NotJson(_))
        ));
    }
}
