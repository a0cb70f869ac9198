//! RecordingFileStatusUpdated: parse loosely, validate strictly, never unwrap.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::envelope::Envelope;
use crate::acs::UrlGuard;
use crate::quote::quote;
use crate::recording::{Announcement, ChunkSpec, start_time_key};
use crate::storage::layout::media_extension;

/// Most chunks one event may announce. A 4-hour chunk limit makes real recordings a handful
/// of chunks; a thousand is more than any call and bounds the work one event causes.
pub const MAX_CHUNKS_PER_EVENT: usize = 1_000;

/// How far ahead of our clock a `recordingStartTime` may be (clock skew) before the event is
/// refused: a start time in the future would push the deadline past ACS's real deletion.
pub const MAX_START_TIME_AHEAD: chrono::Duration = chrono::Duration::minutes(5);

/// Why an event is quarantined; the text is what operators read. Input is quoted through
/// [`quote`], so a reason never carries more than a few hundred characters of it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidEvent {
    #[error("the event has no id")]
    MissingId,
    #[error(
        "subject `{}` is not /recording/call/{{callId}} followed by serverCallId/{{id}} and/or recordingId/{{id}}",
        quote(.0)
    )]
    BadSubject(String),
    #[error("data.recordingStorageInfo.recordingChunks is missing or empty")]
    NoChunks,
    #[error(
        "the event announces {0} chunks; at most {MAX_CHUNKS_PER_EVENT} are accepted per event"
    )]
    TooManyChunks(usize),
    #[error("chunk {position}: {problem}")]
    BadChunk { position: usize, problem: String },
    #[error("chunk index {0} appears twice in the event")]
    DuplicateIndex(u32),
    #[error("data.recordingStartTime `{}` is not an ISO 8601 time", quote(.0))]
    BadStartTime(String),
    #[error(
        "data.recordingStartTime `{}` is more than 5 minutes in the future; check the sender's clock",
        quote(.0)
    )]
    FutureStartTime(String),
    #[error(
        "the event has neither a recording id nor data.recordingStartTime, so the recording cannot be named"
    )]
    NoRecordingKey,
}

/// The parts of a subject: `/recording/call/{callId}` then `serverCallId/{id}` and
/// `recordingId/{id}` pairs, in any order, each at most once.
#[derive(Debug, PartialEq, Eq)]
pub struct Subject {
    pub call_id: String,
    pub server_call_id: Option<String>,
    pub recording_id: Option<String>,
}

/// Reads the segments after the call id as key/value pairs, never by position: Event Grid
/// has added keys before (`…/serverCallId/{id}/recordingId/{id}`). An unknown or repeated
/// key, an empty value or a key without a value makes the subject unreadable.
pub fn parse_subject(subject: &str) -> Option<Subject> {
    let rest = subject.strip_prefix("/recording/call/")?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let mut parts = rest.split('/');
    let call_id = parts.next().filter(|id| !id.is_empty())?.to_owned();
    let mut parsed = Subject {
        call_id,
        server_call_id: None,
        recording_id: None,
    };
    while let Some(key) = parts.next() {
        let value = parts.next().filter(|value| !value.is_empty())?.to_owned();
        let slot = match key {
            "serverCallId" => &mut parsed.server_call_id,
            "recordingId" => &mut parsed.recording_id,
            _ => return None,
        };
        if slot.replace(value).is_some() {
            return None;
        }
    }
    Some(parsed)
}

fn text(value: &Value, key: &str) -> Option<String> {
    value
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Validates one RecordingFileStatusUpdated event into work for the queue.
/// `acs_endpoint` builds preview download URLs; `retention` sets the deadline.
pub fn announcement(
    event: &Envelope,
    guard: &UrlGuard,
    acs_endpoint: &url::Url,
    retention: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<Announcement, InvalidEvent> {
    if event.id.trim().is_empty() {
        return Err(InvalidEvent::MissingId);
    }
    let subject = parse_subject(&event.subject)
        .ok_or_else(|| InvalidEvent::BadSubject(event.subject.clone()))?;
    let data = &event.data;
    let raw_chunks = data
        .pointer("/recordingStorageInfo/recordingChunks")
        .and_then(Value::as_array)
        .filter(|chunks| !chunks.is_empty())
        .ok_or(InvalidEvent::NoChunks)?;
    if raw_chunks.len() > MAX_CHUNKS_PER_EVENT {
        return Err(InvalidEvent::TooManyChunks(raw_chunks.len()));
    }
    let mut chunks = Vec::with_capacity(raw_chunks.len());
    let mut indices = HashSet::with_capacity(raw_chunks.len());
    for (position, raw) in raw_chunks.iter().enumerate() {
        let chunk = chunk(raw, guard, acs_endpoint)
            .map_err(|problem| InvalidEvent::BadChunk { position, problem })?;
        if !indices.insert(chunk.index) {
            return Err(InvalidEvent::DuplicateIndex(chunk.index));
        }
        chunks.push(chunk);
    }
    chunks.sort_by_key(|chunk| chunk.index);

    let start_time = text(data, "recordingStartTime");
    let parsed_start = match &start_time {
        Some(raw) => Some(
            DateTime::parse_from_rfc3339(raw)
                .map_err(|_| InvalidEvent::BadStartTime(raw.clone()))?
                .with_timezone(&Utc),
        ),
        None => None,
    };
    if let (Some(raw), Some(start)) = (&start_time, parsed_start)
        && start > now + MAX_START_TIME_AHEAD
    {
        return Err(InvalidEvent::FutureStartTime(raw.clone()));
    }
    let recording_id = subject
        .recording_id
        .clone()
        .or_else(|| text(data, "recordingId"));
    let recording_key = match (&recording_id, parsed_start) {
        (Some(id), _) => id.clone(),
        (None, Some(start)) => start_time_key(start),
        (None, None) => return Err(InvalidEvent::NoRecordingKey),
    };
    // Without a start time the event time is the best bound we have on when ACS deletes it.
    let event_time = event
        .time
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.to_utc());
    let deadline = parsed_start.or(event_time).unwrap_or(now) + retention;
    let format_type = text(data, "recordingFormatType");

    Ok(Announcement {
        event_id: event.id.clone(),
        call_id: subject.call_id,
        server_call_id: subject.server_call_id,
        recording_id,
        recording_key,
        start_time,
        duration_ms: data.get("recordingDurationMs").and_then(Value::as_i64),
        session_end_reason: text(data, "sessionEndReason"),
        content_type: text(data, "recordingContentType"),
        channel_type: text(data, "recordingChannelType"),
        media_extension: media_extension(format_type.as_deref()).to_owned(),
        format_type,
        deadline,
        chunks,
    })
}

fn chunk(raw: &Value, guard: &UrlGuard, acs_endpoint: &url::Url) -> Result<ChunkSpec, String> {
    use crate::acs::Fetch;
    use crate::acs::url_guard::GuardError;
    use crate::quote::quote;

    let document_id = text(raw, "documentId").ok_or("documentId is missing")?;
    let index = match raw.get("index") {
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|i| *i <= 100_000)
            .ok_or(format!("index {n} is not a chunk index"))?,
        Some(other) => {
            let quoted = quote(&other.to_string());
            return Err(format!("index {quoted} is not an integer"));
        }
        None => return Err("index is missing".into()),
    } as u32;
    let end_reason = text(raw, "endReason");
    let refused = |err: GuardError| err.to_string();
    // Each location is checked for its own purpose and this chunk's documentId.
    let locations = (
        text(raw, "contentLocation"),
        text(raw, "metadataLocation"),
        text(raw, "deleteLocation"),
    );
    let (content, metadata, delete) = match locations {
        (Some(content), Some(metadata), delete) => (
            guard
                .ga_download(&content, Fetch::Media, &document_id)
                .map_err(refused)?,
            guard
                .ga_download(&metadata, Fetch::Metadata, &document_id)
                .map_err(refused)?,
            delete
                .map(|delete| guard.ga_delete(&delete, &document_id))
                .transpose()
                .map_err(refused)?,
        ),
        (None, None, None) => (
            guard
                .preview(acs_endpoint, &document_id, Fetch::Media)
                .map_err(refused)?,
            guard
                .preview(acs_endpoint, &document_id, Fetch::Metadata)
                .map_err(refused)?,
            None,
        ),
        (Some(_), None, _) => return Err("contentLocation without metadataLocation".into()),
        (None, Some(_), _) => return Err("metadataLocation without contentLocation".into()),
        (None, None, Some(_)) => {
            return Err("deleteLocation without contentLocation and metadataLocation".into());
        }
    };
    Ok(ChunkSpec {
        document_id,
        index,
        end_reason,
        content_url: content.as_str().to_owned(),
        metadata_url: metadata.as_str().to_owned(),
        delete_url: delete.map(|url| url.as_str().to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acs::Fetch;
    use crate::ingest::envelope::parse_body;

    fn endpoint() -> url::Url {
        url::Url::parse("https://contoso-acs.communication.azure.com/").unwrap()
    }

    fn guard() -> UrlGuard {
        UrlGuard::new(&[".asm.skype.com".to_owned()], &endpoint(), false)
    }

    fn sample(name: &str) -> Envelope {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        parse_body(&std::fs::read(path).unwrap()).unwrap().remove(0)
    }

    fn parse(event: &Envelope) -> Result<Announcement, InvalidEvent> {
        announcement(
            event,
            &guard(),
            &endpoint(),
            chrono::Duration::hours(48),
            Utc::now(),
        )
    }

    fn subject(call: &str, server: Option<&str>, recording: Option<&str>) -> Option<Subject> {
        Some(Subject {
            call_id: call.into(),
            server_call_id: server.map(Into::into),
            recording_id: recording.map(Into::into),
        })
    }

    #[test]
    fn parses_all_four_subject_shapes() {
        assert_eq!(
            parse_subject("/recording/call/c1/serverCallId/s1"),
            subject("c1", Some("s1"), None)
        );
        assert_eq!(
            parse_subject("/recording/call/c1/serverCallId/s1/recordingId/r1"),
            subject("c1", Some("s1"), Some("r1"))
        );
        assert_eq!(
            parse_subject("/recording/call/c1/recordingId/r1"),
            subject("c1", None, Some("r1"))
        );
        assert_eq!(
            parse_subject("/recording/call/c1"),
            subject("c1", None, None)
        );
    }

    #[test]
    fn subject_keys_are_read_as_pairs_in_any_order() {
        assert_eq!(
            parse_subject("/recording/call/c1/recordingId/r1/serverCallId/s1"),
            subject("c1", Some("s1"), Some("r1"))
        );
        assert_eq!(
            parse_subject("/recording/call/c1/serverCallId/s1/"),
            subject("c1", Some("s1"), None)
        );
    }

    #[test]
    fn unknown_repeated_or_unpaired_subject_keys_are_refused() {
        for bad in [
            "",
            "/recording/call/",
            "/recording/call/c1/other/x",
            "/recording/call/c1/serverCallId/",
            "/recording/call/c1/serverCallId",
            "/recording/call/c1/serverCallId/s1/recordingId",
            "/recording/call/c1/serverCallId/s1/recordingId/r1/extra/x",
            "/recording/call/c1/serverCallId/s1/serverCallId/s2",
            "/recording/call/c1/recordingId//serverCallId/s1",
            "/x/c1",
        ] {
            assert_eq!(parse_subject(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_current_event_grid_sample_is_keyed_by_its_recording_id() {
        let work = parse(&sample(
            "recording-file-status-updated.ga-recording-id.json",
        ))
        .unwrap();
        assert_eq!(work.call_id, "4ab31c52-3cc8-4d3d-9a5a-1a2b3c4d5e6f");
        assert!(
            work.server_call_id
                .as_deref()
                .unwrap()
                .starts_with("aHR0cHM6")
        );
        assert_eq!(
            work.recording_id.as_deref(),
            Some("eyJQbGF0Zm9ybUVuZHBvaW50SWQiOiI1Njc4In0")
        );
        assert_eq!(work.chunks.len(), 2);
    }

    #[test]
    fn a_bad_subject_quotes_at_most_200_characters_of_it() {
        let mut event = sample("recording-file-status-updated.ga.json");
        event.subject = format!("/recording/call/c/{}", "x".repeat(1_000_000));
        let reason = parse(&event).unwrap_err().to_string();
        assert!(reason.len() < 400, "{} bytes", reason.len());
        assert!(reason.contains('…'), "{reason}");
    }

    #[test]
    fn ga_sample_yields_two_chunks_keyed_by_start_time() {
        let work = parse(&sample("recording-file-status-updated.ga.json")).unwrap();
        assert_eq!(work.call_id, "4ab31c52-3cc8-4d3d-9a5a-1a2b3c4d5e6f");
        assert_eq!(work.recording_key, "20261127T092023Z");
        assert_eq!(work.chunks.len(), 2);
        assert_eq!(work.chunks[1].end_reason.as_deref(), Some("SessionEnded"));
        assert_eq!(work.format_type.as_deref(), Some("Mp4"));
        assert_eq!(
            work.deadline.to_rfc3339(),
            "2026-11-29T09:20:23.608975500+00:00"
        );
    }

    #[test]
    fn recordings_started_in_one_second_share_a_key_but_not_an_identity() {
        let announce = |start: &str, [content, channel, format]: [&str; 3]| {
            let mut event = sample("recording-file-status-updated.ga.json");
            event.data["recordingStartTime"] = start.into();
            event.data["recordingContentType"] = content.into();
            event.data["recordingChannelType"] = channel.into();
            event.data["recordingFormatType"] = format.into();
            parse(&event).unwrap()
        };
        let mixed = announce(
            "2026-11-27T09:20:23.1000000Z",
            ["AudioVideo", "Mixed", "Mp4"],
        );
        let unmixed = announce("2026-11-27T09:20:23.9000000Z", ["Audio", "Unmixed", "Wav"]);
        assert_eq!(mixed.recording_key, "20261127T092023Z");
        assert_eq!(unmixed.recording_key, "20261127T092023Z");
        assert_ne!(mixed.identity(), unmixed.identity());
        let again = announce(
            "2026-11-27T09:20:23.1000000Z",
            ["AudioVideo", "Mixed", "Mp4"],
        );
        assert_eq!(again.identity(), mixed.identity());
    }

    #[test]
    fn preview_sample_downloads_from_the_endpoint() {
        let work = parse(&sample("recording-file-status-updated.preview.json")).unwrap();
        assert_eq!(
            work.chunks[0].content_url,
            "https://contoso-acs.communication.azure.com/recording/download/0-wus-d3-5f6e7d8c9b0a1f2e3d4c5b6a79880011"
        );
        assert!(work.chunks[0].metadata_url.ends_with("/metadata"));
    }

    #[test]
    fn cloud_events_sample_is_keyed_by_recording_id() {
        let work = parse(&sample("recording-file-status-updated.cloudevents.json")).unwrap();
        assert_eq!(
            work.recording_key,
            "eyJQbGF0Zm9ybUVuZHBvaW50SWQiOiIxMjM0In0"
        );
    }

    #[test]
    fn a_forged_download_host_is_invalid() {
        let mut event = sample("recording-file-status-updated.ga.json");
        event.data["recordingStorageInfo"]["recordingChunks"][0]["contentLocation"] =
            "https://attacker.example/x".into();
        let err = parse(&event).unwrap_err();
        assert!(err.to_string().contains("attacker.example"), "{err}");
    }

    #[test]
    fn acs_api_paths_on_the_endpoint_are_invalid_naming_the_location() {
        let phone_numbers =
            "https://contoso-acs.communication.azure.com/phoneNumbers?api-version=2022-12-01";
        let recordings = "https://contoso-acs.communication.azure.com/calling/recordings/ID?api-version=2025-06-15";
        let mut event = sample("recording-file-status-updated.ga.json");
        let chunk = &mut event.data["recordingStorageInfo"]["recordingChunks"][0];
        chunk["contentLocation"] = phone_numbers.into();
        chunk["metadataLocation"] = phone_numbers.into();
        chunk["deleteLocation"] = recordings.into();
        assert_eq!(
            parse(&event).unwrap_err().to_string(),
            format!(
                "chunk 0: contentLocation `{phone_numbers}` is not /v1/objects/{{documentId}}[/…]"
            )
        );

        let mut event = sample("recording-file-status-updated.ga.json");
        event.data["recordingStorageInfo"]["recordingChunks"][0]["deleteLocation"] =
            recordings.into();
        assert_eq!(
            parse(&event).unwrap_err().to_string(),
            format!("chunk 0: deleteLocation `{recordings}` is not /v1/objects/{{documentId}}[/…]")
        );
    }

    #[test]
    fn a_delete_location_of_another_chunk_is_invalid() {
        let mut event = sample("recording-file-status-updated.ga.json");
        let chunks = &mut event.data["recordingStorageInfo"]["recordingChunks"];
        chunks[1]["deleteLocation"] = chunks[0]["deleteLocation"].clone();
        let err = parse(&event).unwrap_err().to_string();
        assert!(err.starts_with("chunk 1: deleteLocation `"), "{err}");

        let mut event = sample("recording-file-status-updated.ga.json");
        let chunk = &mut event.data["recordingStorageInfo"]["recordingChunks"][0];
        chunk.as_object_mut().unwrap().remove("contentLocation");
        chunk.as_object_mut().unwrap().remove("metadataLocation");
        let err = parse(&event).unwrap_err().to_string();
        assert!(
            err.contains("deleteLocation without contentLocation"),
            "{err}"
        );
    }

    #[test]
    fn chunk_reasons_quote_at_most_200_characters_of_the_input() {
        let long = format!(
            "https://contoso-acs.communication.azure.com/{}",
            "a".repeat(100_000)
        );
        for (key, value) in [
            ("index", serde_json::Value::from("9".repeat(100_000))),
            ("contentLocation", long.clone().into()),
            ("deleteLocation", long.into()),
            ("documentId", "/".repeat(100_000).into()),
        ] {
            let mut event = sample("recording-file-status-updated.ga.json");
            event.data["recordingStorageInfo"]["recordingChunks"][0][key] = value;
            let reason = parse(&event).unwrap_err().to_string();
            assert!(
                reason.chars().count() < 450,
                "{key}: {} chars",
                reason.len()
            );
        }
    }

    #[test]
    fn the_samples_delete_locations_are_kept_for_their_chunks() {
        let work = parse(&sample("recording-file-status-updated.ga.json")).unwrap();
        let document = |chunk: &ChunkSpec| chunk.document_id.clone();
        for chunk in &work.chunks {
            let delete = guard()
                .stored_delete(chunk.delete_url.as_deref().unwrap(), &document(chunk))
                .unwrap();
            assert_eq!(delete.document_id(), chunk.document_id);
            let content = guard()
                .stored_download(&chunk.content_url, Fetch::Media, &document(chunk))
                .unwrap();
            assert_eq!(content.document_id(), chunk.document_id);
        }
        let preview = parse(&sample("recording-file-status-updated.preview.json")).unwrap();
        assert!(preview.chunks[0].delete_url.is_none());
    }

    #[test]
    fn missing_chunks_and_bad_indices_are_invalid() {
        let mut event = sample("recording-file-status-updated.ga.json");
        event.data["recordingStorageInfo"]["recordingChunks"] = serde_json::json!([]);
        assert_eq!(parse(&event).unwrap_err(), InvalidEvent::NoChunks);

        let mut event = sample("recording-file-status-updated.ga.json");
        event.data["recordingStorageInfo"]["recordingChunks"][0]["index"] = (-1).into();
        assert!(matches!(
            parse(&event).unwrap_err(),
            InvalidEvent::BadChunk { position: 0, .. }
        ));

        let mut event = sample("recording-file-status-updated.ga.json");
        event.data["recordingStorageInfo"]["recordingChunks"][1]["index"] = 0.into();
        assert_eq!(parse(&event).unwrap_err(), InvalidEvent::DuplicateIndex(0));
    }

    fn with_chunks(chunks: Vec<serde_json::Value>) -> Envelope {
        let mut event = sample("recording-file-status-updated.ga.json");
        event.data["recordingStorageInfo"]["recordingChunks"] = chunks.into();
        event
    }

    fn ga_chunk(index: u64) -> serde_json::Value {
        let doc = format!("0-eus-d12-{index:032x}");
        let base = format!("https://us-storage.asm.skype.com/v1/objects/{doc}");
        serde_json::json!({
            "documentId": doc, "index": index, "endReason": "ChunkMaximumSizeExceeded",
            "contentLocation": format!("{base}/content/video"),
            "metadataLocation": format!("{base}/content/acsmetadata"),
            "deleteLocation": format!("{base}/content/deletedata"),
        })
    }

    #[test]
    fn a_thousand_chunks_are_accepted_and_one_more_is_refused() {
        let work = parse(&with_chunks((0..1_000).map(ga_chunk).collect())).unwrap();
        assert_eq!(work.chunks.len(), 1_000);
        assert_eq!(
            parse(&with_chunks((0..1_001).map(ga_chunk).collect())).unwrap_err(),
            InvalidEvent::TooManyChunks(1_001)
        );
    }

    #[test]
    fn a_repeated_index_among_many_chunks_is_found() {
        let mut chunks: Vec<_> = (0..1_000).map(ga_chunk).collect();
        chunks[999]["index"] = 3.into();
        assert_eq!(
            parse(&with_chunks(chunks)).unwrap_err(),
            InvalidEvent::DuplicateIndex(3)
        );
    }

    #[test]
    fn a_start_time_more_than_five_minutes_ahead_is_refused() {
        let now = Utc::now();
        let at = |ahead: chrono::Duration| {
            let mut event = sample("recording-file-status-updated.ga.json");
            event.data["recordingStartTime"] = (now + ahead).to_rfc3339().into();
            announcement(
                &event,
                &guard(),
                &endpoint(),
                chrono::Duration::hours(24),
                now,
            )
        };
        assert!(at(chrono::Duration::minutes(4)).is_ok());
        assert!(matches!(
            at(chrono::Duration::minutes(6)).unwrap_err(),
            InvalidEvent::FutureStartTime(_)
        ));
    }
}
