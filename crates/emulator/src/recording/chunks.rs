//! Cutting a stopped recording into chunks: a chunk ends when it reaches the maximum media
//! duration or file size (`ChunkMaximumSizeExceeded`), the last one when the session ends
//! (`SessionEnded`); and the media file of each chunk in the recording's format.

use std::ops::Range;

use super::config::RecordingConfig;
use super::machine::pauses_within;
use super::request::{ChannelType, FormatType, RecordingTypes};
use crate::media::{Audio, MediaSpec, Mp3, Mp4, SAMPLES_PER_MS, Wav};

/// ACS's end reason of a chunk cut because it was full.
pub const CHUNK_FULL: &str = "ChunkMaximumSizeExceeded";
/// ACS's end reason of the last chunk.
pub const SESSION_ENDED: &str = "SessionEnded";

/// Most channels an unmixed recording has; later participants share the last one.
pub const MAX_UNMIXED_CHANNELS: usize = 5;

/// One chunk of a recording, in media milliseconds since the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkPlan {
    /// The chunk's place in the recording.
    pub index: u32,
    /// Start (inclusive) and end (exclusive).
    pub span: Range<u64>,
    /// [`CHUNK_FULL`] or [`SESSION_ENDED`].
    pub end_reason: &'static str,
}

/// The channel of each participant: all on channel 0 when mixed; one each when unmixed,
/// up to [`MAX_UNMIXED_CHANNELS`], the rest sharing the last channel.
pub fn channel_of(types: &RecordingTypes, participant: usize) -> usize {
    match types.channel {
        ChannelType::Mixed => 0,
        ChannelType::Unmixed => participant.min(MAX_UNMIXED_CHANNELS - 1),
    }
}

/// How many channels the media has for `participants` participants.
pub fn channel_count(types: &RecordingTypes, participants: usize) -> u16 {
    match types.channel {
        ChannelType::Mixed => 1,
        ChannelType::Unmixed => participants.clamp(1, MAX_UNMIXED_CHANNELS) as u16,
    }
}

/// The longest chunk the configuration allows for this format: the maximum duration, or
/// less when the maximum size is reached first; never below the format's smallest unit
/// (an MP3 frame, a millisecond), so a tiny size limit cannot cut endlessly.
pub fn max_chunk_ms(config: &RecordingConfig, types: &RecordingTypes, channels: u16) -> u64 {
    let by_duration = u64::try_from(config.chunk_max_duration.as_millis()).unwrap_or(u64::MAX);
    let by_size = config
        .chunk_max_bytes
        .map_or(u64::MAX, |bytes| match types.format {
            FormatType::Wav => Wav::max_ms_within(bytes, channels),
            FormatType::Mp3 => Mp3::max_ms_within(bytes),
            FormatType::Mp4 => Mp4::max_ms_within(bytes),
        });
    let max = by_duration.min(by_size);
    match types.format {
        // Whole frames, so every chunk but the last is exactly as long as its frames.
        FormatType::Mp3 => (max / Mp3::FRAME_MS * Mp3::FRAME_MS).max(Mp3::FRAME_MS),
        _ => max.max(1),
    }
}

/// Cuts `duration_ms` into chunks of at most `max_ms`.
pub fn plan(duration_ms: u64, max_ms: u64) -> Vec<ChunkPlan> {
    let max_ms = max_ms.max(1);
    let count = duration_ms.div_ceil(max_ms).max(1);
    (0..count)
        .map(|index| {
            let start = index * max_ms;
            let last = index + 1 == count;
            ChunkPlan {
                index: index as u32,
                span: start..if last { duration_ms } else { start + max_ms },
                end_reason: if last { SESSION_ENDED } else { CHUNK_FULL },
            }
        })
        .collect()
}

/// The media file of `chunk`: silence where `pauses` (whole-recording times) fall inside it;
/// `seed` makes an MP4's synthetic data differ between chunks.
pub fn media(
    types: &RecordingTypes,
    chunk: &ChunkPlan,
    pauses: &[Range<u64>],
    participants: usize,
    seed: u64,
) -> MediaSpec {
    let duration = chunk.span.end - chunk.span.start;
    match types.format {
        FormatType::Mp3 => MediaSpec::Mp3(Mp3::lasting(duration)),
        FormatType::Mp4 => MediaSpec::Mp4(Mp4::new(duration, seed)),
        FormatType::Wav => {
            let mut channels = vec![Vec::new(); channel_count(types, participants) as usize];
            for participant in 0..participants {
                channels[channel_of(types, participant)].push(participant);
            }
            let to_samples = |ms: u64| (ms - chunk.span.start) * SAMPLES_PER_MS;
            let pauses = pauses_within(pauses, &chunk.span)
                .into_iter()
                .map(|pause| to_samples(pause.start)..to_samples(pause.end))
                .collect();
            MediaSpec::Wav(Wav::new(Audio {
                samples: duration * SAMPLES_PER_MS,
                channels,
                pauses,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn types(format: &str) -> RecordingTypes {
        RecordingTypes::parse(None, None, Some(format)).unwrap()
    }

    fn config(max_ms: u64, max_bytes: Option<u64>) -> RecordingConfig {
        RecordingConfig {
            chunk_max_duration: Duration::from_millis(max_ms),
            chunk_max_bytes: max_bytes,
            ..RecordingConfig::default()
        }
    }

    #[test]
    fn a_long_recording_is_cut_into_full_chunks_and_a_last_one() {
        let chunks = plan(2500, 1000);
        let spans: Vec<_> = chunks.iter().map(|chunk| chunk.span.clone()).collect();
        assert_eq!(spans, vec![0..1000, 1000..2000, 2000..2500]);
        let reasons: Vec<_> = chunks.iter().map(|chunk| chunk.end_reason).collect();
        assert_eq!(reasons, [CHUNK_FULL, CHUNK_FULL, SESSION_ENDED]);
        assert_eq!(chunks[2].index, 2);
    }

    #[test]
    fn an_exact_multiple_ends_with_a_full_length_last_chunk() {
        let chunks = plan(2000, 1000);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[1].span, 1000..2000);
        assert_eq!(chunks[1].end_reason, SESSION_ENDED);
        assert_eq!(plan(10, 1000).len(), 1);
    }

    #[test]
    fn the_size_limit_cuts_chunks_whose_files_fit_it() {
        for format in ["wav", "mp3", "mp4"] {
            let types = types(format);
            let max_ms = max_chunk_ms(&config(3_600_000, Some(200_000)), &types, 2);
            assert!(max_ms < 3_600_000, "{format}");
            let chunk = ChunkPlan {
                index: 0,
                span: 0..max_ms,
                end_reason: CHUNK_FULL,
            };
            let len = media(&types, &chunk, &[], 2, 1).len();
            assert!(len <= 200_000, "{format}: {len}");
            assert!(len > 150_000, "{format} wastes the limit: {len}");
        }
    }

    #[test]
    fn the_duration_limit_applies_when_it_comes_first() {
        assert_eq!(max_chunk_ms(&config(1000, None), &types("wav"), 1), 1000);
        assert_eq!(
            max_chunk_ms(&config(1000, Some(u64::MAX)), &types("mp4"), 1),
            1000
        );
        assert_eq!(max_chunk_ms(&config(1000, None), &types("mp3"), 1), 972);
        assert_eq!(max_chunk_ms(&config(1, Some(1)), &types("mp3"), 1), 36);
        assert_eq!(max_chunk_ms(&config(0, None), &types("wav"), 1), 1);
    }

    #[test]
    fn unmixed_wav_has_a_channel_per_participant_up_to_five() {
        let unmixed = types("wav");
        let chunk = ChunkPlan {
            index: 0,
            span: 0..10,
            end_reason: SESSION_ENDED,
        };
        for (participants, channels) in [(1, 1), (3, 3), (5, 5), (7, 5)] {
            let MediaSpec::Wav(wav) = media(&unmixed, &chunk, &[], participants, 0) else {
                panic!("not a wav");
            };
            assert_eq!(wav.audio().channel_count(), channels);
        }
        let mixed = RecordingTypes::parse(Some("audio"), Some("mixed"), Some("wav")).unwrap();
        let MediaSpec::Wav(wav) = media(&mixed, &chunk, &[], 3, 0) else {
            panic!("not a wav");
        };
        assert_eq!(wav.audio().channels, vec![vec![0, 1, 2]]);
    }

    #[test]
    fn pauses_become_silent_samples_of_the_chunk_they_fall_in() {
        let chunk = ChunkPlan {
            index: 1,
            span: 1000..2000,
            end_reason: SESSION_ENDED,
        };
        let MediaSpec::Wav(wav) = media(&types("wav"), &chunk, &[500..1100, 1900..2500], 2, 0)
        else {
            panic!("not a wav");
        };
        assert_eq!(wav.audio().pauses, vec![0..1600, 14_400..16_000]);
        assert_eq!(wav.audio().samples, 16_000);
    }
}
