//! Completeness evidence: whether the chunks a manifest lists cover the duration ACS announced
//! for the recording (`recordingDurationMs`), so a chunk that was never announced is noticed
//! while ACS still holds it.
//!
//! Covered time is the sum of the chunks' `chunkDuration` plus the part of each pause that lies
//! outside every chunk's span (`chunkStartTime` + `chunkDuration`). A pause inside a chunk is
//! already part of its duration and is not counted twice. When a chunk's start is unknown, no
//! pause is counted: a pause that cannot be placed may only make a recording look shorter,
//! never hide a gap.

use std::fmt;

use object_store::path::Path;

use super::manifest::Manifest;
use super::{Archive, StorageError};

/// A recordingDurationMs beyond 30 days is not a call: the check says unknown rather than
/// trusting it.
pub const MAX_RECORDING_DURATION_MS: i64 = 30 * 24 * 3_600_000;

/// The outcome of the duration check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The chunks cover the announced duration, within the tolerance.
    Complete,
    /// The chunks fall short of the announced duration by more than the tolerance.
    Short,
    /// A duration needed for the check is missing or out of range; the note says which.
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Complete => "complete",
            Verdict::Short => "short",
            Verdict::Unknown => "unknown",
        }
    }
}

/// What the check found, with the figures behind the verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completeness {
    pub verdict: Verdict,
    /// `recordingDurationMs`, when it was in range.
    pub announced_ms: Option<i64>,
    /// Sum of the chunks' durations (those that have one).
    pub chunks_ms: i64,
    /// Paused time outside every chunk's span.
    pub pauses_outside_ms: i64,
    /// Announced minus covered (negative when the chunks cover more); None when unknown.
    pub shortfall_ms: Option<i64>,
    pub tolerance_ms: u64,
    /// Why the verdict is unknown, or a caveat on how pauses were counted.
    pub note: Option<String>,
}

impl Completeness {
    pub fn covered_ms(&self) -> i64 {
        self.chunks_ms + self.pauses_outside_ms
    }
}

impl fmt::Display for Completeness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.verdict, self.announced_ms, self.shortfall_ms) {
            (Verdict::Short, Some(announced), Some(shortfall)) => write!(
                f,
                "chunks cover {} ms ({} ms of chunks, {} ms of pauses outside them) of the announced {announced} ms: {shortfall} ms short, beyond the tolerance of {} ms",
                self.covered_ms(),
                self.chunks_ms,
                self.pauses_outside_ms,
                self.tolerance_ms
            ),
            (Verdict::Complete, Some(announced), _) => write!(
                f,
                "chunks cover {} ms of the announced {announced} ms (tolerance {} ms)",
                self.covered_ms(),
                self.tolerance_ms
            ),
            _ => write!(
                f,
                "duration not checked: {}",
                self.note.as_deref().unwrap_or("no duration to compare")
            ),
        }
    }
}

/// Checks the durations a manifest records against the one its event announced.
pub fn assess(manifest: &Manifest, tolerance_ms: u64) -> Completeness {
    let chunks_ms: i64 = manifest
        .chunks
        .iter()
        .filter_map(|chunk| chunk.duration_ms)
        .map(as_i64)
        .fold(0i64, i64::saturating_add);
    let unknown = |note: String| Completeness {
        verdict: Verdict::Unknown,
        announced_ms: None,
        chunks_ms,
        pauses_outside_ms: 0,
        shortfall_ms: None,
        tolerance_ms,
        note: Some(note),
    };
    let announced = match manifest.recording_duration_ms {
        None => return unknown("the event gave no recordingDurationMs".into()),
        Some(ms) if !(0..=MAX_RECORDING_DURATION_MS).contains(&ms) => {
            return unknown(format!(
                "recordingDurationMs {ms} is outside 0..={MAX_RECORDING_DURATION_MS}"
            ));
        }
        Some(ms) => ms,
    };
    if let Some(chunk) = manifest.chunks.iter().find(|c| c.duration_ms.is_none()) {
        return Completeness {
            announced_ms: Some(announced),
            ..unknown(format!(
                "chunk {} has no usable chunkDuration in its metadata document",
                chunk.index
            ))
        };
    }
    let (pauses_outside_ms, note) = pauses_outside_chunks(manifest);
    let shortfall = announced - chunks_ms.saturating_add(pauses_outside_ms);
    let verdict = if shortfall > i64::try_from(tolerance_ms).unwrap_or(i64::MAX) {
        Verdict::Short
    } else {
        Verdict::Complete
    };
    Completeness {
        verdict,
        announced_ms: Some(announced),
        chunks_ms,
        pauses_outside_ms,
        shortfall_ms: Some(shortfall),
        tolerance_ms,
        note,
    }
}

/// Paused milliseconds that no chunk span contains, with a caveat when pauses were left out.
fn pauses_outside_chunks(manifest: &Manifest) -> (i64, Option<String>) {
    let Some(pauses) = manifest.pause_resume_intervals.as_deref() else {
        return (0, None);
    };
    if pauses.is_empty() {
        return (0, None);
    }
    let mut spans = Vec::with_capacity(manifest.chunks.len());
    for chunk in &manifest.chunks {
        let start = chunk.start_time.as_deref().and_then(epoch_ms);
        let (Some(start), Some(duration)) = (start, chunk.duration_ms) else {
            return (
                0,
                Some(format!(
                    "pauses not counted: chunk {} has no usable chunkStartTime",
                    chunk.index
                )),
            );
        };
        spans.push((start, start.saturating_add(as_i64(duration))));
    }
    let paused = merge(
        pauses
            .iter()
            .filter_map(|pause| {
                let start = epoch_ms(&pause.start_time)?;
                Some((start, start.saturating_add(as_i64(pause.duration_ms))))
            })
            .collect(),
    );
    let outside = measure(&paused) - overlap(&paused, &merge(spans));
    (outside.max(0), None)
}

fn as_i64(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

fn epoch_ms(time: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(time)
        .ok()
        .map(|at| at.timestamp_millis())
}

/// Sorted, disjoint intervals covering the same time as `intervals`.
fn merge(mut intervals: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    intervals.retain(|(start, end)| end > start);
    intervals.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(intervals.len());
    for (start, end) in intervals {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

fn measure(intervals: &[(i64, i64)]) -> i64 {
    intervals
        .iter()
        .map(|(start, end)| end - start)
        .fold(0, i64::saturating_add)
}

/// Time two sorted, disjoint interval lists share.
fn overlap(a: &[(i64, i64)], b: &[(i64, i64)]) -> i64 {
    let (mut i, mut j, mut shared) = (0, 0, 0i64);
    while i < a.len() && j < b.len() {
        let start = a[i].0.max(b[j].0);
        let end = a[i].1.min(b[j].1);
        if end > start {
            shared = shared.saturating_add(end - start);
        }
        if a[i].1 < b[j].1 { i += 1 } else { j += 1 }
    }
    shared
}

/// Reads the manifest at `key` and checks it; None when it is missing or unreadable (the
/// object checks report that).
pub async fn assess_archived(
    archive: &Archive,
    key: &Path,
    tolerance_ms: u64,
) -> Result<Option<Completeness>, StorageError> {
    let body = match archive.read(key).await {
        Ok(body) => body,
        Err(StorageError::Store(object_store::Error::NotFound { .. })) => return Ok(None),
        Err(err) => return Err(err),
    };
    Ok(serde_json::from_slice::<Manifest>(&body)
        .ok()
        .map(|manifest| assess(&manifest, tolerance_ms)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::manifest::{ManifestChunk, ObjectDigest, PauseInterval, SCHEMA};

    const START: &str = "2026-11-27T09:00:00Z";

    /// A time `ms` after START.
    fn at(ms: i64) -> String {
        (chrono::DateTime::parse_from_rfc3339(START).unwrap() + chrono::Duration::milliseconds(ms))
            .to_rfc3339()
    }

    fn chunk(index: u32, start_ms: Option<i64>, duration_ms: Option<u64>) -> ManifestChunk {
        let digest = ObjectDigest {
            key: format!("c/r/chunk-{index:04}.wav"),
            bytes: 1,
            sha256: "0".repeat(64),
        };
        ManifestChunk {
            index,
            document_id: format!("doc-{index}"),
            end_reason: None,
            media: digest.clone(),
            metadata: digest,
            archived_at: START.into(),
            start_time: start_ms.map(at),
            duration_ms,
        }
    }

    fn pause(start_ms: i64, duration_ms: u64) -> PauseInterval {
        PauseInterval {
            start_time: at(start_ms),
            duration_ms,
        }
    }

    fn manifest(
        announced: Option<i64>,
        chunks: Vec<ManifestChunk>,
        pauses: Option<Vec<PauseInterval>>,
    ) -> Manifest {
        Manifest {
            schema: SCHEMA.into(),
            call_id: "c".into(),
            recording_id: Some("r".into()),
            server_call_id: None,
            recording_start_time: Some(START.into()),
            recording_duration_ms: announced,
            content_type: None,
            channel_type: None,
            format: None,
            session_end_reason: None,
            participants: vec![],
            chunks,
            event_ids: vec![],
            archived_at: START.into(),
            pause_resume_intervals: pauses,
        }
    }

    #[test]
    fn chunks_that_cover_the_announced_duration_are_complete() {
        let m = manifest(
            Some(1_200_000),
            vec![
                chunk(0, Some(0), Some(600_000)),
                chunk(1, Some(600_000), Some(600_000)),
            ],
            Some(vec![]),
        );
        let found = assess(&m, 0);
        assert_eq!(found.verdict, Verdict::Complete);
        assert_eq!(found.shortfall_ms, Some(0));
        assert_eq!(found.covered_ms(), 1_200_000);
    }

    #[test]
    fn a_missing_chunk_makes_the_recording_short_beyond_the_tolerance_only() {
        let m = manifest(
            Some(1_800_000),
            vec![
                chunk(0, Some(0), Some(600_000)),
                chunk(1, Some(600_000), Some(600_000)),
            ],
            None,
        );
        let found = assess(&m, 5000);
        assert_eq!(found.verdict, Verdict::Short);
        assert_eq!(found.shortfall_ms, Some(600_000));
        let text = found.to_string();
        assert!(
            text.contains("600000 ms short") && text.contains("5000 ms"),
            "{text}"
        );
        assert_eq!(
            assess(&m, 600_000).verdict,
            Verdict::Complete,
            "exactly the tolerance"
        );
        assert_eq!(assess(&m, 599_999).verdict, Verdict::Short);
    }

    #[test]
    fn a_pause_inside_a_chunk_is_not_counted_twice_but_one_between_chunks_is() {
        let chunks = || {
            vec![
                chunk(0, Some(0), Some(600_000)),
                // A 60 s pause between the chunks, in which ACS recorded nothing.
                chunk(1, Some(660_000), Some(600_000)),
            ]
        };
        let inside = manifest(
            Some(1_260_000),
            chunks(),
            Some(vec![pause(100_000, 30_000)]),
        );
        let found = assess(&inside, 1000);
        assert_eq!(found.pauses_outside_ms, 0);
        assert_eq!(found.verdict, Verdict::Short);

        let between = manifest(
            Some(1_260_000),
            chunks(),
            Some(vec![pause(600_000, 60_000)]),
        );
        let found = assess(&between, 0);
        assert_eq!(found.pauses_outside_ms, 60_000);
        assert_eq!(found.verdict, Verdict::Complete);

        // Half in the first chunk, half in the gap; listed twice (once per chunk).
        let straddling = manifest(
            Some(1_260_000),
            chunks(),
            Some(vec![pause(570_000, 60_000), pause(570_000, 60_000)]),
        );
        assert_eq!(assess(&straddling, 0).pauses_outside_ms, 30_000);
    }

    #[test]
    fn without_chunk_starts_pauses_are_not_counted_and_the_note_says_why() {
        let m = manifest(
            Some(1_260_000),
            vec![
                chunk(0, Some(0), Some(600_000)),
                chunk(1, None, Some(600_000)),
            ],
            Some(vec![pause(600_000, 60_000)]),
        );
        let found = assess(&m, 0);
        assert_eq!(found.pauses_outside_ms, 0);
        assert_eq!(
            found.verdict,
            Verdict::Short,
            "an unplaced pause never hides a gap"
        );
        assert!(
            found
                .note
                .unwrap()
                .contains("chunk 1 has no usable chunkStartTime")
        );
    }

    #[test]
    fn missing_or_absurd_durations_give_unknown_with_a_reason() {
        let chunks = || vec![chunk(0, Some(0), Some(600_000))];
        let none = assess(&manifest(None, chunks(), None), 0);
        assert_eq!(none.verdict, Verdict::Unknown);
        assert!(
            none.note
                .as_deref()
                .unwrap()
                .contains("no recordingDurationMs")
        );
        for absurd in [-1, MAX_RECORDING_DURATION_MS + 1, i64::MAX] {
            let found = assess(&manifest(Some(absurd), chunks(), None), 0);
            assert_eq!(found.verdict, Verdict::Unknown, "{absurd}");
            assert!(found.to_string().contains("outside"), "{found}");
        }
        let gap = assess(
            &manifest(
                Some(1_200_000),
                vec![
                    chunk(0, Some(0), Some(600_000)),
                    chunk(1, Some(600_000), None),
                ],
                None,
            ),
            0,
        );
        assert_eq!(gap.verdict, Verdict::Unknown);
        assert!(
            gap.to_string()
                .contains("chunk 1 has no usable chunkDuration"),
            "{gap}"
        );
    }

    #[test]
    fn an_old_manifest_without_the_new_fields_still_parses() {
        let old = r#"{"schema":"callvault.manifest/v1","callId":"c","recordingId":null,
            "serverCallId":null,"recordingStartTime":null,"recordingDurationMs":600000,
            "contentType":null,"channelType":null,"format":null,"sessionEndReason":null,
            "participants":[],"chunks":[{"index":0,"documentId":"d","endReason":null,
            "media":{"key":"k","bytes":1,"sha256":"00"},"metadata":{"key":"m","bytes":1,"sha256":"00"},
            "archivedAt":"2026-11-27T09:00:00Z"}],"eventIds":[],"archivedAt":"2026-11-27T09:00:00Z"}"#;
        let manifest: Manifest = serde_json::from_str(old).unwrap();
        assert_eq!(manifest.pause_resume_intervals, None);
        assert_eq!(manifest.chunks[0].duration_ms, None);
        assert_eq!(assess(&manifest, 0).verdict, Verdict::Unknown);
        let written = serde_json::to_string(&manifest).unwrap();
        assert!(
            !written.contains("durationMs\":null"),
            "absent stays absent: {written}"
        );
    }

    #[test]
    fn huge_values_saturate_instead_of_overflowing() {
        let m = manifest(
            Some(MAX_RECORDING_DURATION_MS),
            vec![
                chunk(0, Some(0), Some(u64::MAX)),
                chunk(1, Some(0), Some(u64::MAX)),
            ],
            Some(vec![pause(0, u64::MAX)]),
        );
        assert_eq!(assess(&m, u64::MAX).verdict, Verdict::Complete);
    }
}
