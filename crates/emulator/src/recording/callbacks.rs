//! `Microsoft.Communication.RecordingStateChanged`: the CloudEvent ACS POSTs to a
//! recording's `recordingStateCallbackUri` on every change of state. Delivery is best
//! effort, in order, a few tries each, and never holds up the API's answer.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::events::azure_time;
use callvault_acs_protocol::events::RECORDING_STATE_CHANGED;

/// Waits before the second and third try of one event.
const RETRY_DELAYS: [Duration; 2] = [Duration::from_millis(200), Duration::from_secs(1)];

/// How long one POST may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What one event says.
pub struct StateChange<'a> {
    /// The recording.
    pub recording_id: &'a str,
    /// `active` or `inactive`.
    pub state: &'a str,
    /// When the recording started.
    pub start: DateTime<Utc>,
    /// The call's serverCallId (the conversationId for a preview recording).
    pub server_call_id: &'a str,
    /// The call's callConnectionId.
    pub call_connection_id: &'a str,
    /// The call's correlationId.
    pub correlation_id: &'a str,
}

/// The CloudEvent, shaped like samples/recording-state-changed.cloudevent.json.
pub fn event(change: &StateChange<'_>, now: DateTime<Utc>) -> Value {
    json!({
        "specversion": "1.0",
        "id": uuid::Uuid::new_v4().to_string(),
        "source": format!("calling/recordings/{}", change.recording_id),
        "type": RECORDING_STATE_CHANGED,
        "time": azure_time(now),
        "datacontenttype": "application/json",
        "data": {
            "recordingId": change.recording_id,
            "state": change.state,
            "startDateTime": azure_time(change.start),
            "serverCallId": change.server_call_id,
            "callConnectionId": change.call_connection_id,
            "correlationId": change.correlation_id,
        }
    })
}

/// Starts the sender of one recording's events on `runtime`: events sent to the returned
/// channel are POSTed to `url` one after the other, as a one-event JSON array.
pub fn sender(
    runtime: &tokio::runtime::Handle,
    http: reqwest::Client,
    url: url::Url,
) -> mpsc::UnboundedSender<Value> {
    let (events, mut queue) = mpsc::unbounded_channel::<Value>();
    runtime.spawn(async move {
        while let Some(event) = queue.recv().await {
            post_with_retries(&http, &url, &event).await;
        }
    });
    events
}

async fn post_with_retries(http: &reqwest::Client, url: &url::Url, event: &Value) {
    let body = Value::Array(vec![event.clone()]);
    let mut delays = RETRY_DELAYS.iter();
    loop {
        let outcome = http
            .post(url.clone())
            .json(&body)
            .timeout(TIMEOUT)
            .send()
            .await
            .map(|response| response.status());
        match outcome {
            Ok(status) if status.is_success() => return,
            outcome => {
                let Some(delay) = delays.next() else {
                    let mut shown = url.clone();
                    shown.set_query(None);
                    tracing::warn!(callback = %shown, outcome = ?outcome.map(|s| s.as_u16()).map_err(|e| e.to_string()), "RecordingStateChanged not delivered");
                    return;
                };
                tokio::time::sleep(*delay).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_has_the_keys_of_the_sample() {
        let sample: Value = serde_json::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/recording-state-changed.cloudevent.json"
        )))
        .unwrap();
        let sample = &sample[0];
        let start = Utc::now();
        let event = event(
            &StateChange {
                recording_id: "rec",
                state: "inactive",
                start,
                server_call_id: "srv",
                call_connection_id: "conn",
                correlation_id: "corr",
            },
            start,
        );
        let keys = |value: &Value| {
            value
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(&event), keys(sample));
        assert_eq!(keys(&event["data"]), keys(&sample["data"]));
        assert_eq!(event["type"], sample["type"]);
        assert_eq!(event["source"], "calling/recordings/rec");
        assert_eq!(event["data"]["state"], "inactive");
        assert_eq!(event["data"]["serverCallId"], "srv");
    }
}
