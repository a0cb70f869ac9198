//! MP3 recordings: a stream of valid MPEG-2 Layer III frames (16 kHz, mono, 32 kbit/s, no
//! CRC). The frames are real but empty: their side information codes no spectral data, so
//! decoders play them as silence. The emulator carries no MP3 encoder, so the participants'
//! tones (and the pauses) are only heard in WAV recordings; sizes and durations are exact.

/// Samples per MPEG-2 Layer III frame.
const SAMPLES_PER_FRAME: u64 = 576;

/// Milliseconds per frame at 16 kHz (576 / 16 000 s).
const FRAME_MS: u64 = 36;

/// Bytes per frame at 32 kbit/s and 16 kHz: 72 × 32 000 / 16 000, no padding.
const FRAME_LEN: u64 = 144;

/// Frame header: sync, MPEG-2, Layer III, no CRC | 32 kbit/s, 16 kHz, no padding |
/// mono, original.
const HEADER: [u8; 4] = [0xFF, 0xF3, 0x48, 0xC4];

/// A silent MP3 of a whole number of frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mp3 {
    frames: u64,
}

impl Mp3 {
    /// Milliseconds per frame: chunks of an MP3 recording are cut at multiples of it.
    pub const FRAME_MS: u64 = FRAME_MS;

    /// An MP3 lasting at least `ms` milliseconds (rounded up to whole frames).
    pub fn lasting(ms: u64) -> Self {
        Self {
            frames: ms.div_ceil(FRAME_MS),
        }
    }

    /// Total length in bytes.
    pub fn len(&self) -> u64 {
        self.frames * FRAME_LEN
    }

    /// Whether it has no frames.
    pub fn is_empty(&self) -> bool {
        self.frames == 0
    }

    /// How long it plays, in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        self.frames * SAMPLES_PER_FRAME * 1000 / u64::from(super::audio::SAMPLE_RATE)
    }

    /// The length of an MP3 lasting `ms` milliseconds.
    pub fn len_for(ms: u64) -> u64 {
        Self::lasting(ms).len()
    }

    /// The longest duration, in whole frames, whose file fits in `bytes`.
    pub fn max_ms_within(bytes: u64) -> u64 {
        bytes / FRAME_LEN * FRAME_MS
    }

    /// Fills `buf` with the file's bytes from `offset` on (zeros past the end).
    pub fn fill(&self, offset: u64, buf: &mut [u8]) {
        for (position, byte) in (offset..).zip(buf.iter_mut()) {
            let in_frame = (position % FRAME_LEN) as usize;
            *byte = match HEADER.get(in_frame) {
                Some(header) if position < self.len() => *header,
                // Side information and main data are all zero: no spectral data, silence.
                _ => 0,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_follow_each_other_every_144_bytes() {
        let mp3 = Mp3::lasting(100);
        assert_eq!(mp3.len(), 3 * FRAME_LEN);
        assert_eq!(mp3.duration_ms(), 108);
        let mut file = vec![0; mp3.len() as usize];
        mp3.fill(0, &mut file);
        for frame in file.chunks(FRAME_LEN as usize) {
            assert_eq!(frame[..4], HEADER);
            assert!(frame[4..].iter().all(|&b| b == 0));
        }
    }

    #[test]
    fn the_header_says_mpeg2_layer3_32kbps_16khz_mono() {
        assert_eq!(HEADER[0], 0xFF);
        assert_eq!(HEADER[1] >> 5, 0b111, "sync");
        assert_eq!((HEADER[1] >> 3) & 0b11, 0b10, "MPEG-2");
        assert_eq!((HEADER[1] >> 1) & 0b11, 0b01, "Layer III");
        assert_eq!(HEADER[2] >> 4, 4, "32 kbit/s in the MPEG-2 table");
        assert_eq!((HEADER[2] >> 2) & 0b11, 0b10, "16 kHz in the MPEG-2 table");
        assert_eq!(HEADER[3] >> 6, 0b11, "mono");
        assert_eq!(FRAME_LEN, 72 * 32_000 / 16_000);
    }

    #[test]
    fn the_longest_duration_within_a_size_fits_it() {
        let ms = Mp3::max_ms_within(10_000);
        assert_eq!(ms % FRAME_MS, 0);
        assert!(Mp3::len_for(ms) <= 10_000);
        assert!(Mp3::len_for(ms + FRAME_MS) > 10_000);
    }
}
