//! The sound of a recorded call: every participant hums a tone of their own, and the
//! recording is silent while it is paused. Samples are computed from their index, so any
//! stretch of a four-hour recording can be produced without the rest.

use std::ops::Range;

/// Samples per second of every recording ACS makes (docs/protocol.md §5: 16 kHz).
pub const SAMPLE_RATE: u32 = 16_000;

/// Samples per millisecond at [`SAMPLE_RATE`].
pub const SAMPLES_PER_MS: u64 = SAMPLE_RATE as u64 / 1000;

/// Tone periods, in samples, of participants 0, 1, 2, …: 400, 500, 640, 800 and 1000 Hz.
/// Whole periods keep a tone exact at any sample index; later participants reuse them.
const PERIODS: [u64; 5] = [40, 32, 25, 20, 16];

/// Samples after which every channel repeats: the least common multiple of [`PERIODS`]
/// (50 ms), so a channel can be tabulated once and read from the table.
pub const CYCLE: u64 = 800;

/// Peak level of a channel, as a share of full scale: clearly audible, never clipping.
const LEVEL: f64 = 0.3;

/// The audio of one chunk: `channels[c]` lists the participants heard on channel `c`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audio {
    /// Samples per channel.
    pub samples: u64,
    /// For each channel, the participants (by their place in the call) mixed into it.
    pub channels: Vec<Vec<usize>>,
    /// Sample ranges, sorted and disjoint, during which the recording was paused.
    pub pauses: Vec<Range<u64>>,
}

impl Audio {
    /// The number of channels; at least one, so a call nobody joined is still a valid file.
    pub fn channel_count(&self) -> u16 {
        self.channels.len().clamp(1, u16::MAX as usize) as u16
    }

    /// Whether sample `index` falls inside a pause.
    pub fn is_paused(&self, index: u64) -> bool {
        let after = self.pauses.partition_point(|pause| pause.end <= index);
        self.pauses
            .get(after)
            .is_some_and(|pause| pause.contains(&index))
    }

    /// Sample `index` of `channel`: the mean of its participants' tones, or silence.
    pub fn sample(&self, index: u64, channel: usize) -> i16 {
        if self.is_paused(index) {
            0
        } else {
            self.voice(index, channel)
        }
    }

    /// One [`CYCLE`] of `channel` as if never paused: every later sample repeats it.
    pub fn cycle(&self, channel: usize) -> Vec<i16> {
        (0..CYCLE).map(|index| self.voice(index, channel)).collect()
    }

    /// Sample `index` of `channel`, pauses aside.
    fn voice(&self, index: u64, channel: usize) -> i16 {
        let Some(speakers) = self.channels.get(channel) else {
            return 0;
        };
        if speakers.is_empty() {
            return 0;
        }
        let sum: f64 = speakers
            .iter()
            .map(|&participant| tone(participant, index))
            .sum();
        (sum / speakers.len() as f64 * LEVEL * f64::from(i16::MAX)).round() as i16
    }
}

/// Participant `participant`'s tone at sample `index`, between -1 and 1.
fn tone(participant: usize, index: u64) -> f64 {
    let period = PERIODS[participant % PERIODS.len()];
    let phase = (index % period) as f64 / period as f64;
    (phase * std::f64::consts::TAU).sin()
}

/// The frequency in Hz of participant `participant`'s tone.
pub fn tone_hz(participant: usize) -> u32 {
    SAMPLE_RATE / PERIODS[participant % PERIODS.len()] as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audio(channels: Vec<Vec<usize>>, pauses: Vec<Range<u64>>) -> Audio {
        Audio {
            samples: 16_000,
            channels,
            pauses,
        }
    }

    #[test]
    fn each_participant_has_a_tone_of_their_own() {
        let hz: Vec<u32> = (0..5).map(tone_hz).collect();
        assert_eq!(hz, [400, 500, 640, 800, 1000]);
        let audio = audio(vec![vec![0], vec![1]], vec![]);
        let first: Vec<i16> = (0..40).map(|i| audio.sample(i, 0)).collect();
        let second: Vec<i16> = (0..40).map(|i| audio.sample(i, 1)).collect();
        assert_ne!(first, second);
        assert_eq!(audio.sample(10, 0), (0.3 * 32767.0f64).round() as i16);
        assert_eq!(audio.sample(40, 0), audio.sample(0, 0), "periodic");
    }

    #[test]
    fn pauses_are_silent_and_only_pauses() {
        let audio = audio(vec![vec![0, 1]], vec![100..200, 300..301]);
        assert!(!audio.is_paused(99));
        assert!(audio.is_paused(100) && audio.is_paused(199) && audio.is_paused(300));
        assert!(!audio.is_paused(200) && !audio.is_paused(301));
        assert!((100..200).all(|i| audio.sample(i, 0) == 0));
        assert!((0..100).any(|i| audio.sample(i, 0) != 0));
    }

    #[test]
    fn every_channel_repeats_after_a_cycle() {
        let audio = audio(vec![vec![0, 1, 2, 3, 4], vec![2]], vec![]);
        for channel in 0..2 {
            let cycle = audio.cycle(channel);
            for index in [0, 1, 399, 799] {
                assert_eq!(
                    audio.sample(index + 3 * CYCLE, channel),
                    cycle[index as usize]
                );
            }
        }
        assert!(PERIODS.iter().all(|period| CYCLE.is_multiple_of(*period)));
    }

    #[test]
    fn a_channel_that_does_not_exist_is_silent() {
        let audio = audio(vec![vec![0]], vec![]);
        assert_eq!(audio.sample(10, 3), 0);
        assert_eq!(audio.channel_count(), 1);
        assert_eq!(self::audio(vec![], vec![]).channel_count(), 1);
    }
}
