//! The metadata document ACS writes beside each chunk (docs/protocol.md §3), filled from what
//! happened: the chunk's start and length, the pauses inside it, the requested types and
//! the call's participants.

use std::ops::Range;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::chunks::{ChunkPlan, channel_count, channel_of};
use super::machine::pauses_within;
use super::request::{ChannelType, FormatType, RecordingTypes};
use crate::documents::RESOURCE_ID;
use crate::events::azure_time;
use crate::media::SAMPLE_RATE;

/// What a chunk's metadata is made from.
pub struct ChunkFacts<'a> {
    /// The call's `callId`.
    pub call_id: &'a str,
    /// The chunk's `documentId`.
    pub document_id: &'a str,
    /// Which part of the recording the chunk is.
    pub chunk: &'a ChunkPlan,
    /// When the recording started; media time 0.
    pub recording_start: DateTime<Utc>,
    /// Every pause of the recording, in media milliseconds.
    pub pauses: &'a [Range<u64>],
    /// The requested types.
    pub types: &'a RecordingTypes,
    /// The call's participants, in the order they joined.
    pub participants: &'a [String],
}

/// The metadata document. As in real documents (see samples/recording-metadata.json),
/// `recordingInfo.contentType` carries the channel type and `channelType` the content
/// type, so clients meet the quirk here too. Unmixed recordings give each participant its
/// `channel` (0-based). Pause `startTime`s are absolute; durations are milliseconds.
pub fn document(facts: &ChunkFacts<'_>) -> Bytes {
    let at = |ms: u64| facts.recording_start + chrono::Duration::milliseconds(ms as i64);
    let pauses: Vec<Value> = pauses_within(facts.pauses, &facts.chunk.span)
        .into_iter()
        .map(|pause| {
            json!({ "startTime": azure_time(at(pause.start)), "duration": pause.end - pause.start })
        })
        .collect();
    let participants: Vec<Value> = facts
        .participants
        .iter()
        .enumerate()
        .map(|(place, id)| match facts.types.channel {
            ChannelType::Mixed => json!({ "participantId": id }),
            ChannelType::Unmixed => {
                json!({ "participantId": id, "channel": channel_of(facts.types, place) })
            }
        })
        .collect();
    let mut recording_info = json!({
        "contentType": facts.types.channel_name(),
        "channelType": facts.types.content_name(),
        "format": facts.types.format_name(),
        "audioConfiguration": audio_configuration(facts.types, facts.participants.len()),
    });
    if facts.types.format == FormatType::Mp4 {
        recording_info["videoConfiguration"] = json!({
            "longerSideLength": 1920,
            "shorterSideLength": 1080,
            "framerate": 8,
            "bitRate": 1_000_000,
        });
    }
    let document = json!({
        "resourceId": RESOURCE_ID,
        "callId": facts.call_id,
        "chunkDocumentId": facts.document_id,
        "chunkIndex": facts.chunk.index,
        "chunkStartTime": azure_time(at(facts.chunk.span.start)),
        "chunkDuration": facts.chunk.span.end - facts.chunk.span.start,
        "pauseResumeIntervals": pauses,
        "recordingInfo": recording_info,
        "participants": participants,
    });
    Bytes::from(serde_json::to_vec_pretty(&document).unwrap_or_default())
}

fn audio_configuration(types: &RecordingTypes, participants: usize) -> Value {
    let channels = channel_count(types, participants);
    let bit_rate = match types.format {
        FormatType::Wav => SAMPLE_RATE * 16 * u32::from(channels),
        FormatType::Mp3 => 32_000,
        FormatType::Mp4 => 128_000,
    };
    json!({ "sampleRate": SAMPLE_RATE, "bitRate": bit_rate, "channels": channels })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::chunks::SESSION_ENDED;

    fn start() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-27T09:20:23.6089755Z")
            .unwrap()
            .to_utc()
    }

    fn metadata(types: &RecordingTypes, span: Range<u64>, pauses: &[Range<u64>]) -> Value {
        let participants = ["8:acs:a".to_owned(), "8:acs:b".to_owned()];
        let chunk = ChunkPlan {
            index: 1,
            span,
            end_reason: SESSION_ENDED,
        };
        let facts = ChunkFacts {
            call_id: "call",
            document_id: "doc",
            chunk: &chunk,
            recording_start: start(),
            pauses,
            types,
            participants: &participants,
        };
        serde_json::from_slice(&document(&facts)).unwrap()
    }

    #[test]
    fn times_and_pauses_follow_the_chunk() {
        let value = metadata(
            &RecordingTypes::PREVIEW,
            60_000..120_000,
            &[(30_000..70_000), (90_000..95_500), (130_000..131_000)],
        );
        assert_eq!(value["chunkStartTime"], "2026-11-27T09:21:23.6089755Z");
        assert_eq!(value["chunkDuration"], 60_000);
        assert_eq!(value["chunkIndex"], 1);
        assert_eq!(
            value["pauseResumeIntervals"],
            json!([
                { "startTime": "2026-11-27T09:21:23.6089755Z", "duration": 10_000 },
                { "startTime": "2026-11-27T09:21:53.6089755Z", "duration": 5_500 },
            ])
        );
        assert_eq!(value["recordingInfo"]["videoConfiguration"]["framerate"], 8);
        assert_eq!(
            value["participants"][1],
            json!({ "participantId": "8:acs:b" })
        );
    }

    #[test]
    fn unmixed_wav_names_each_participants_channel() {
        let types = RecordingTypes::parse(Some("audio"), Some("unmixed"), Some("wav")).unwrap();
        let value = metadata(&types, 0..1000, &[]);
        assert_eq!(value["recordingInfo"]["format"], "wav");
        assert_eq!(value["recordingInfo"]["contentType"], "unmixed");
        assert_eq!(value["recordingInfo"]["channelType"], "audio");
        assert_eq!(value["recordingInfo"]["audioConfiguration"]["channels"], 2);
        assert!(value["recordingInfo"].get("videoConfiguration").is_none());
        assert_eq!(value["participants"][1]["channel"], 1);
        assert_eq!(value["pauseResumeIntervals"], json!([]));
    }
}
