//! WAV recordings: a real, playable RIFF/WAVE file of 16 kHz 16-bit PCM, one channel when
//! mixed, one per participant when unmixed, computed byte by byte on demand.

use std::sync::Arc;

use super::audio::{Audio, CYCLE, SAMPLE_RATE, SAMPLES_PER_MS};

/// Bytes before the first sample: the RIFF, `fmt ` and `data` headers.
pub const HEADER_LEN: u64 = 44;

/// Bytes per sample of one channel.
const SAMPLE_BYTES: u64 = 2;

/// A WAV file of `audio`.
#[derive(Debug, Clone)]
pub struct Wav {
    audio: Arc<Audio>,
    /// One cycle of each channel, computed once: serving reads samples from here.
    cycles: Arc<Vec<Vec<i16>>>,
}

impl Wav {
    /// The WAV file of `audio`.
    pub fn new(audio: Audio) -> Self {
        let cycles = (0..usize::from(audio.channel_count()))
            .map(|channel| audio.cycle(channel))
            .collect();
        Self {
            audio: Arc::new(audio),
            cycles: Arc::new(cycles),
        }
    }

    /// The audio it carries.
    pub fn audio(&self) -> &Audio {
        &self.audio
    }

    /// Total length in bytes.
    pub fn len(&self) -> u64 {
        HEADER_LEN + self.data_len()
    }

    /// Whether the file is empty (never: the header is always there).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The length of a file of `ms` milliseconds with `channels` channels.
    pub fn len_for(ms: u64, channels: u16) -> u64 {
        HEADER_LEN + ms * SAMPLES_PER_MS * SAMPLE_BYTES * u64::from(channels.max(1))
    }

    /// The longest whole-millisecond duration whose file fits in `bytes`.
    pub fn max_ms_within(bytes: u64, channels: u16) -> u64 {
        bytes.saturating_sub(HEADER_LEN)
            / (SAMPLES_PER_MS * SAMPLE_BYTES * u64::from(channels.max(1)))
    }

    fn frame_bytes(&self) -> u64 {
        SAMPLE_BYTES * u64::from(self.audio.channel_count())
    }

    fn data_len(&self) -> u64 {
        self.audio.samples * self.frame_bytes()
    }

    fn header(&self) -> [u8; HEADER_LEN as usize] {
        let channels = self.audio.channel_count();
        let block_align = channels * SAMPLE_BYTES as u16;
        // RIFF sizes are 32-bit; a 4 h chunk of 5 channels (2.3 GB) still fits.
        let data_len = u32::try_from(self.data_len()).unwrap_or(u32::MAX);
        let mut header = [0u8; HEADER_LEN as usize];
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            header[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(b"RIFF");
        put(&data_len.saturating_add(36).to_le_bytes());
        put(b"WAVE");
        put(b"fmt ");
        put(&16u32.to_le_bytes());
        put(&1u16.to_le_bytes()); // PCM
        put(&channels.to_le_bytes());
        put(&SAMPLE_RATE.to_le_bytes());
        put(&(SAMPLE_RATE * u32::from(block_align)).to_le_bytes());
        put(&block_align.to_le_bytes());
        put(&16u16.to_le_bytes()); // bits per sample
        put(b"data");
        put(&data_len.to_le_bytes());
        header
    }

    /// Fills `buf` with the file's bytes from `offset` on (zeros past the end).
    pub fn fill(&self, offset: u64, buf: &mut [u8]) {
        let header = self.header();
        let channels = u64::from(self.audio.channel_count());
        let mut position = offset;
        let mut filled = 0;
        while filled < buf.len() {
            if position < HEADER_LEN {
                buf[filled] = header[position as usize];
                position += 1;
                filled += 1;
                continue;
            }
            // One sample per step, so a sample is computed once for its two bytes.
            let data = position - HEADER_LEN;
            let slot = data / SAMPLE_BYTES;
            let skip = (data % SAMPLE_BYTES) as usize;
            let frame = slot / channels;
            let sample = if frame < self.audio.samples && !self.audio.is_paused(frame) {
                self.cycles[(slot % channels) as usize][(frame % CYCLE) as usize]
            } else {
                0
            }
            .to_le_bytes();
            let n = (SAMPLE_BYTES as usize - skip).min(buf.len() - filled);
            buf[filled..filled + n].copy_from_slice(&sample[skip..skip + n]);
            filled += n;
            position += n as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(channels: usize, samples: u64) -> Wav {
        Wav::new(Audio {
            samples,
            channels: (0..channels).map(|c| vec![c]).collect(),
            pauses: vec![],
        })
    }

    fn bytes(wav: &Wav) -> Vec<u8> {
        let mut buf = vec![0; wav.len() as usize];
        wav.fill(0, &mut buf);
        buf
    }

    fn u32_at(bytes: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn header_sizes_match_the_file() {
        let wav = wav(3, 1600);
        let file = bytes(&wav);
        assert_eq!(&file[0..4], b"RIFF");
        assert_eq!(u32_at(&file, 4) as usize, file.len() - 8);
        assert_eq!(&file[8..16], b"WAVEfmt ");
        assert_eq!(u16::from_le_bytes([file[22], file[23]]), 3);
        assert_eq!(u32_at(&file, 24), 16_000);
        assert_eq!(u32_at(&file, 28), 16_000 * 6);
        assert_eq!(&file[36..40], b"data");
        assert_eq!(u32_at(&file, 40) as usize, file.len() - 44);
        assert_eq!(file.len() as u64, Wav::len_for(100, 3));
    }

    #[test]
    fn samples_are_interleaved_by_channel() {
        let wav = wav(2, 100);
        let file = bytes(&wav);
        let at = |frame: usize, channel: usize| {
            let i = 44 + frame * 4 + channel * 2;
            i16::from_le_bytes([file[i], file[i + 1]])
        };
        for frame in 0..100 {
            assert_eq!(at(frame, 0), wav.audio().sample(frame as u64, 0));
            assert_eq!(at(frame, 1), wav.audio().sample(frame as u64, 1));
        }
    }

    #[test]
    fn any_range_equals_the_same_bytes_of_the_whole_file() {
        let wav = wav(2, 333);
        let whole = bytes(&wav);
        for start in [0usize, 1, 43, 44, 45, 100, whole.len() - 1] {
            let mut part = vec![0; whole.len() - start];
            wav.fill(start as u64, &mut part);
            assert_eq!(part, whole[start..]);
        }
    }

    #[test]
    fn the_longest_duration_within_a_size_fits_it() {
        let bytes = 1_000_000;
        let ms = Wav::max_ms_within(bytes, 2);
        assert!(Wav::len_for(ms, 2) <= bytes);
        assert!(Wav::len_for(ms + 1, 2) > bytes);
    }
}
