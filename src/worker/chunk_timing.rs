//! What a chunk's metadata document says about time: `chunkStartTime`, `chunkDuration` (ms) and
//! `pauseResumeIntervals`. The document comes from outside and is archived as is; only values
//! within bounds are kept, and a value that is missing or out of range is recorded as unknown
//! (NULL) rather than guessed, so the duration check says "unknown" instead of "complete".

use serde_json::Value;

use crate::queue::jobs::ChunkTiming;
use crate::storage::manifest::PauseInterval;

/// ACS cuts chunks at a few hours; anything beyond two days is not a chunk length.
pub const MAX_CHUNK_DURATION_MS: u64 = 48 * 3_600_000;
/// More pauses than this in one chunk is not a real document: the list is not used.
pub const MAX_PAUSES_PER_CHUNK: usize = 64;
/// RFC 3339 with seven fractional digits is 28 bytes; a longer "time" is refused.
const MAX_TIME_BYTES: usize = 64;

/// The time facts of a metadata document; a document that is not JSON gives none.
pub fn chunk_timing(document: &[u8]) -> ChunkTiming {
    let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(document) else {
        return ChunkTiming::default();
    };
    let pauses = match doc.get("pauseResumeIntervals") {
        // No list: ACS writes an empty one, but absence also means no pause.
        None | Some(Value::Null) => Some(Vec::new()),
        Some(list) => pauses(list),
    };
    ChunkTiming {
        start_time: doc.get("chunkStartTime").and_then(time),
        duration_ms: doc
            .get("chunkDuration")
            .and_then(milliseconds)
            .map(|ms| ms as i64),
        pause_intervals: pauses
            .map(|list| serde_json::to_string(&list).expect("pauses always serialise")),
    }
}

/// A time as written, when it is a short string that parses as RFC 3339.
fn time(value: &Value) -> Option<String> {
    let text = value.as_str()?;
    (text.len() <= MAX_TIME_BYTES && chrono::DateTime::parse_from_rfc3339(text).is_ok())
        .then(|| text.to_owned())
}

/// A whole number of milliseconds within `0..=MAX_CHUNK_DURATION_MS`; a number written with
/// a fraction is rounded.
fn milliseconds(value: &Value) -> Option<u64> {
    let ms = match value.as_u64() {
        Some(ms) => ms,
        None => {
            let ms = value.as_f64()?;
            if !ms.is_finite() || ms < 0.0 {
                return None;
            }
            ms.round() as u64
        }
    };
    (ms <= MAX_CHUNK_DURATION_MS).then_some(ms)
}

/// The pauses of a list whose every entry is valid; None for anything else.
fn pauses(list: &Value) -> Option<Vec<PauseInterval>> {
    let entries = list.as_array()?;
    if entries.len() > MAX_PAUSES_PER_CHUNK {
        return None;
    }
    entries
        .iter()
        .map(|entry| {
            Some(PauseInterval {
                start_time: time(entry.get("startTime")?)?,
                duration_ms: milliseconds(entry.get("duration")?)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_sample_metadata_document() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/recording-metadata.json"
        );
        let timing = chunk_timing(&std::fs::read(path).unwrap());
        assert_eq!(
            timing.start_time.as_deref(),
            Some("2026-11-27T09:20:23.6089755Z")
        );
        assert_eq!(timing.duration_ms, Some(14_400_000));
        assert_eq!(
            timing.pause_intervals.as_deref(),
            Some(r#"[{"startTime":"2026-11-27T09:35:37.9450001Z","durationMs":5220}]"#)
        );
    }

    #[test]
    fn a_missing_or_nonsense_duration_is_unknown() {
        for doc in [
            r#"{}"#,
            r#"{"chunkDuration":-1}"#,
            r#"{"chunkDuration":"600000"}"#,
            r#"{"chunkDuration":172800001}"#,
            r#"{"chunkDuration":1e300}"#,
            r#"{"chunkDuration":null}"#,
        ] {
            assert_eq!(chunk_timing(doc.as_bytes()).duration_ms, None, "{doc}");
        }
        assert_eq!(
            chunk_timing(br#"{"chunkDuration":600000.4}"#).duration_ms,
            Some(600_000)
        );
        assert_eq!(
            chunk_timing(br#"{"chunkDuration":172800000}"#).duration_ms,
            Some(172_800_000)
        );
        assert_eq!(chunk_timing(b"not json"), ChunkTiming::default());
        assert_eq!(chunk_timing(b"[1,2]"), ChunkTiming::default());
    }

    #[test]
    fn a_bad_start_time_is_unknown() {
        let long = format!(
            r#"{{"chunkStartTime":"2026-11-27T09:20:23.{}Z"}}"#,
            "1".repeat(60)
        );
        for doc in [
            r#"{"chunkStartTime":"yesterday"}"#,
            r#"{"chunkStartTime":12}"#,
            long.as_str(),
        ] {
            assert_eq!(chunk_timing(doc.as_bytes()).start_time, None, "{doc}");
        }
    }

    #[test]
    fn a_pause_list_is_used_only_when_every_entry_is_valid_and_it_is_not_too_long() {
        let pause = r#"{"startTime":"2026-11-27T09:35:37Z","duration":5}"#;
        let timing = |list: String| {
            chunk_timing(format!(r#"{{"pauseResumeIntervals":{list}}}"#).as_bytes()).pause_intervals
        };
        assert_eq!(timing("[]".into()).as_deref(), Some("[]"));
        assert_eq!(chunk_timing(b"{}").pause_intervals.as_deref(), Some("[]"));
        assert!(timing(format!("[{pause}]")).is_some());
        let most = vec![pause; MAX_PAUSES_PER_CHUNK].join(",");
        assert!(timing(format!("[{most}]")).is_some());
        assert_eq!(timing(format!("[{most},{pause}]")), None, "one too many");
        assert_eq!(
            timing(format!(r#"[{pause},{{"startTime":"x","duration":5}}]"#)),
            None
        );
        assert_eq!(
            timing(r#"[{"startTime":"2026-11-27T09:35:37Z","duration":-5}]"#.into()),
            None
        );
        assert_eq!(
            timing(r#"[{"startTime":"2026-11-27T09:35:37Z"}]"#.into()),
            None
        );
        assert_eq!(timing(r#""5 s""#.into()), None);
    }
}
