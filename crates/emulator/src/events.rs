//! Event payloads as Event Grid delivers them for ACS: RecordingFileStatusUpdated in the
//! Event Grid schema (shaped like samples/recording-file-status-updated.*.json), its
//! CloudEvents 1.0 form, CallLegStateChanged, and the subscription validation event.

use chrono::{DateTime, Timelike, Utc};
use serde_json::{Value, json};

use crate::documents::DocumentUrls;
use callvault_acs_protocol::events::{
    CALL_LEG_STATE_CHANGED, RECORDING_FILE_STATUS_UPDATED, SUBSCRIPTION_VALIDATION,
};

/// The `topic` (Event Grid) / `source` (CloudEvents) of every emulated event.
pub const TOPIC: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Communication/CommunicationServices/contoso-acs";

/// How long each emulated chunk claims to last, for `recordingDurationMs`.
const CHUNK_DURATION_MS: u64 = 600_000;

/// One entry of `recordingStorageInfo.recordingChunks`.
#[derive(Debug, Clone)]
pub struct ChunkEvent {
    /// `documentId`.
    pub document_id: String,
    /// `index`: the chunk's place in the recording.
    pub index: u32,
    /// `SessionEnded`, `ChunkMaximumSizeExceeded`, …
    pub end_reason: String,
    /// `None` gives the 2021 preview shape: `documentId`, `index`, `endReason` only.
    pub urls: Option<DocumentUrls>,
}

/// Azure's timestamp form: seven fractional digits and `Z`, e.g. `2026-11-27T09:20:23.6089755Z`.
pub fn azure_time(time: DateTime<Utc>) -> String {
    format!(
        "{}.{:07}Z",
        time.format("%Y-%m-%dT%H:%M:%S"),
        time.nanosecond() % 1_000_000_000 / 100
    )
}

/// A `Microsoft.Communication.RecordingFileStatusUpdated` event in the Event Grid schema.
/// When any chunk has URLs the GA fields (`recordingContentType`, `recordingChannelType`,
/// `recordingFormatType`, each chunk's locations) are present, derived from `format`
/// (`Mp4`: AudioVideo/Mixed, `Mp3`: Audio/Mixed, `Wav`: Audio/Unmixed); without URLs the
/// event has the preview shape and `format` is not used. Each chunk claims to last 10 min.
pub fn recording_file_status_updated(
    event_id: &str,
    subject: &str,
    start_time: DateTime<Utc>,
    chunks: &[ChunkEvent],
    format: &str,
) -> Value {
    let duration_ms = CHUNK_DURATION_MS * chunks.len().max(1) as u64;
    let (content, channel) = match format {
        "Mp4" => ("AudioVideo", "Mixed"),
        "Wav" => ("Audio", "Unmixed"),
        _ => ("Audio", "Mixed"),
    };
    let ga = chunks.iter().any(|chunk| chunk.urls.is_some());
    file_status_updated(&FileStatus {
        event_id,
        subject,
        start_time,
        duration_ms,
        chunks,
        ga_types: ga.then_some([content, channel, format]),
        // Event Grid publishes a few minutes after the recording stops.
        event_time: start_time + chrono::Duration::milliseconds(duration_ms as i64 + 3 * 60 * 1000),
    })
}

/// Everything a RecordingFileStatusUpdated event says.
#[derive(Debug, Clone)]
pub struct FileStatus<'a> {
    /// The event's `id`.
    pub event_id: &'a str,
    /// `/recording/call/{callId}[/serverCallId/{serverCallId}]`.
    pub subject: &'a str,
    /// `recordingStartTime`.
    pub start_time: DateTime<Utc>,
    /// `recordingDurationMs`.
    pub duration_ms: u64,
    /// `recordingStorageInfo.recordingChunks`.
    pub chunks: &'a [ChunkEvent],
    /// `recordingContentType`, `recordingChannelType`, `recordingFormatType` as the event
    /// spells them (`AudioVideo`, `Mixed`, `Mp4`); `None` gives the preview shape.
    pub ga_types: Option<[&'a str; 3]>,
    /// `eventTime`.
    pub event_time: DateTime<Utc>,
}

/// A `Microsoft.Communication.RecordingFileStatusUpdated` event in the Event Grid schema,
/// saying exactly what `status` says (`sessionEndReason` is `CallEnded`).
pub fn file_status_updated(status: &FileStatus<'_>) -> Value {
    let recording_chunks: Vec<Value> = status.chunks.iter().map(chunk_json).collect();
    let mut data = json!({
        "recordingStorageInfo": { "recordingChunks": recording_chunks },
        "recordingStartTime": azure_time(status.start_time),
        "recordingDurationMs": status.duration_ms,
        "sessionEndReason": "CallEnded",
    });
    if let Some([content, channel, format]) = status.ga_types {
        data["recordingContentType"] = json!(content);
        data["recordingChannelType"] = json!(channel);
        data["recordingFormatType"] = json!(format);
    }
    json!({
        "id": status.event_id,
        "topic": TOPIC,
        "subject": status.subject,
        "data": data,
        "eventType": RECORDING_FILE_STATUS_UPDATED,
        "dataVersion": "1.0",
        "metadataVersion": "1",
        "eventTime": azure_time(status.event_time),
    })
}

fn chunk_json(chunk: &ChunkEvent) -> Value {
    let mut value = json!({
        "documentId": chunk.document_id,
        "index": chunk.index,
        "endReason": chunk.end_reason,
    });
    if let Some(urls) = &chunk.urls {
        value["contentLocation"] = json!(urls.content.as_str());
        value["metadataLocation"] = json!(urls.metadata.as_str());
        value["deleteLocation"] = json!(urls.delete.as_str());
    }
    value
}

/// The same event in CloudEvents 1.0 (`specversion`, `id`, `source`, `subject`, `type`,
/// `time`, `datacontenttype`, `data`). An event that already is a CloudEvent is returned as is.
pub fn to_cloud_event(event: &Value) -> Value {
    if event.get("specversion").is_some() {
        return event.clone();
    }
    let field = |key: &str| event.get(key).cloned().unwrap_or(Value::Null);
    json!({
        "specversion": "1.0",
        "id": field("id"),
        "source": field("topic"),
        "subject": field("subject"),
        "type": field("eventType"),
        "time": field("eventTime"),
        "datacontenttype": "application/json",
        "data": field("data"),
    })
}

/// A `Microsoft.Communication.CallLegStateChanged` event in the shape of the 2021 document:
/// Event Grid schema with `id`, `topic`, `metadataVersion` and `dataVersion` null, and
/// PascalCase data keys.
pub fn call_leg_state_changed(
    call_leg_id: &str,
    conversation_id: &str,
    state: &str,
    event_time: DateTime<Utc>,
) -> Value {
    json!({
        "id": null,
        "topic": null,
        "subject": format!("callLeg/{call_leg_id}/callState"),
        "data": {
            "ConversationId": conversation_id,
            "CallLegId": call_leg_id,
            "CallState": state,
        },
        "eventType": CALL_LEG_STATE_CHANGED,
        "eventTime": azure_time(event_time),
        "metadataVersion": null,
        "dataVersion": null,
    })
}

/// The `Microsoft.EventGrid.SubscriptionValidationEvent` Event Grid posts before the first
/// delivery; `validation_url` is the manual alternative to answering the code.
pub fn subscription_validation(code: &str, validation_url: &str) -> Value {
    json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "topic": TOPIC,
        "subject": "",
        "data": { "validationCode": code, "validationUrl": validation_url },
        "eventType": SUBSCRIPTION_VALIDATION,
        "eventTime": azure_time(Utc::now()),
        "metadataVersion": "1",
        "dataVersion": "2",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Value {
        let text = match name {
            "ga" => include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../tests/fixtures/recording-file-status-updated.ga.json"
            )),
            "preview" => {
                include_str!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../tests/fixtures/recording-file-status-updated.preview.json"
                ))
            }
            _ => {
                include_str!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../tests/fixtures/recording-file-status-updated.cloudevents.json"
                ))
            }
        };
        serde_json::from_str::<Value>(text).unwrap()[0].clone()
    }

    fn keys(value: &Value) -> Vec<String> {
        value.as_object().unwrap().keys().cloned().collect()
    }

    fn start() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-27T09:20:23.6089755Z")
            .unwrap()
            .to_utc()
    }

    fn ga_event() -> Value {
        let endpoint = url::Url::parse("http://127.0.0.1:1/").unwrap();
        let chunk = |index: u32, end: &str| ChunkEvent {
            document_id: format!("doc-{index}"),
            index,
            end_reason: end.into(),
            urls: Some(DocumentUrls::on(&endpoint, &format!("doc-{index}"))),
        };
        let chunks = [
            chunk(0, "ChunkMaximumSizeExceeded"),
            chunk(1, "SessionEnded"),
        ];
        recording_file_status_updated(
            "e-1",
            "/recording/call/c/serverCallId/s",
            start(),
            &chunks,
            "Mp4",
        )
    }

    #[test]
    fn azure_time_has_seven_fractional_digits() {
        assert_eq!(azure_time(start()), "2026-11-27T09:20:23.6089755Z");
    }

    #[test]
    fn ga_event_has_the_keys_of_the_ga_sample() {
        let sample = sample("ga");
        let event = ga_event();
        assert_eq!(keys(&event), keys(&sample));
        assert_eq!(keys(&event["data"]), keys(&sample["data"]));
        let chunk = &event["data"]["recordingStorageInfo"]["recordingChunks"][1];
        assert_eq!(
            keys(chunk),
            keys(&sample["data"]["recordingStorageInfo"]["recordingChunks"][1])
        );
        assert_eq!(
            chunk["contentLocation"],
            "http://127.0.0.1:1/v1/objects/doc-1/content/video"
        );
        assert_eq!(
            event["data"]["recordingStartTime"],
            "2026-11-27T09:20:23.6089755Z"
        );
        assert_eq!(event["data"]["recordingContentType"], "AudioVideo");
        assert_eq!(event["eventType"], RECORDING_FILE_STATUS_UPDATED);
    }

    #[test]
    fn chunks_without_urls_give_the_preview_shape() {
        let chunks = [ChunkEvent {
            document_id: "doc".into(),
            index: 0,
            end_reason: "SessionEnded".into(),
            urls: None,
        }];
        let event =
            recording_file_status_updated("e", "/recording/call/c", start(), &chunks, "Mp4");
        let sample = sample("preview");
        assert_eq!(keys(&event["data"]), keys(&sample["data"]));
        assert_eq!(
            keys(&event["data"]["recordingStorageInfo"]["recordingChunks"][0]),
            keys(&sample["data"]["recordingStorageInfo"]["recordingChunks"][0])
        );
    }

    #[test]
    fn the_cloud_event_form_has_the_keys_of_the_cloud_events_sample() {
        let event = ga_event();
        let cloud = to_cloud_event(&event);
        assert_eq!(keys(&cloud), keys(&sample("cloudevents")));
        assert_eq!(cloud["type"], event["eventType"]);
        assert_eq!(cloud["source"], TOPIC);
        assert_eq!(cloud["data"], event["data"]);
        assert_eq!(to_cloud_event(&cloud), cloud);
    }

    #[test]
    fn the_call_leg_event_has_the_2021_shape() {
        let event = call_leg_state_changed("leg-1", "Y29udg", "Established", start());
        assert_eq!(
            keys(&event),
            [
                "data",
                "dataVersion",
                "eventTime",
                "eventType",
                "id",
                "metadataVersion",
                "subject",
                "topic"
            ]
        );
        assert!(event["id"].is_null());
        assert_eq!(event["subject"], "callLeg/leg-1/callState");
        assert_eq!(event["data"]["CallLegId"], "leg-1");
        assert_eq!(event["data"]["ConversationId"], "Y29udg");
        assert_eq!(event["data"]["CallState"], "Established");
        assert_eq!(event["eventTime"], "2026-11-27T09:20:23.6089755Z");
        let cloud = to_cloud_event(&event);
        assert_eq!(cloud["type"], CALL_LEG_STATE_CHANGED);
        assert_eq!(cloud["data"], event["data"]);
    }

    #[test]
    fn the_validation_event_has_the_keys_of_the_sample() {
        let sample: Value = serde_json::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/eventgrid-subscription-validation.json"
        )))
        .unwrap();
        let event = subscription_validation("code", "http://x/");
        assert_eq!(keys(&event), keys(&sample[0]));
        assert_eq!(event["data"]["validationCode"], "code");
    }
}
