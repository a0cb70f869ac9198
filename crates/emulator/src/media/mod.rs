//! Media bytes: given ones, synthetic ones computed from `(seed, offset)`, or recorded calls
//! in ACS's formats (WAV, MP3, MP4), all computed on demand so a GiB-sized recording costs no
//! memory and any range of it can be served directly.

mod audio;
mod mp3;
mod mp4;
mod wav;

pub use audio::{Audio, SAMPLE_RATE, SAMPLES_PER_MS, tone_hz};
pub use mp3::Mp3;
pub use mp4::Mp4;
pub use wav::Wav;

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use sha2::{Digest, Sha256};

/// Bytes per chunk of a served body: small enough for throttling and resets to be precise,
/// large enough that a GiB does not take a million polls.
pub(crate) const CHUNK: usize = 64 * 1024;

/// What a document's media is made of.
#[derive(Debug, Clone)]
pub enum MediaSpec {
    /// Exactly these bytes.
    Bytes(Bytes),
    /// Deterministic pseudo-random bytes generated on the fly from (seed, offset) — never
    /// held in memory; any length, 1 GiB and beyond.
    Synthetic { len: u64, seed: u64 },
    /// A playable WAV of a recorded call (tones per participant, silent pauses).
    Wav(Wav),
    /// Valid MP3 frames of silence (see [`Mp3`]).
    Mp3(Mp3),
    /// A valid MP4 container around synthetic media data (see [`Mp4`]).
    Mp4(Mp4),
}

impl MediaSpec {
    /// Total length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            MediaSpec::Bytes(bytes) => bytes.len() as u64,
            MediaSpec::Synthetic { len, .. } => *len,
            MediaSpec::Wav(wav) => wav.len(),
            MediaSpec::Mp3(mp3) => mp3.len(),
            MediaSpec::Mp4(mp4) => mp4.len(),
        }
    }

    /// Fills `buf` with the bytes from `offset` on; given bytes are copied, the rest computed.
    fn fill(&self, offset: u64, buf: &mut [u8]) {
        match self {
            MediaSpec::Bytes(bytes) => {
                let start = (offset as usize).min(bytes.len());
                let n = (bytes.len() - start).min(buf.len());
                buf[..n].copy_from_slice(&bytes[start..start + n]);
                buf[n..].fill(0);
            }
            MediaSpec::Synthetic { seed, .. } => fill_synthetic(*seed, offset, buf),
            MediaSpec::Wav(wav) => wav.fill(offset, buf),
            MediaSpec::Mp3(mp3) => mp3.fill(offset, buf),
            MediaSpec::Mp4(mp4) => mp4.fill(offset, buf),
        }
    }

    /// Whether the media has no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes `start..end` (end exclusive, clamped to the length) as one buffer; meant for
    /// tests and small ranges, serving goes through [`MediaSpec::stream`].
    pub fn read(&self, start: u64, end: u64) -> Bytes {
        let end = end.min(self.len());
        if start >= end {
            return Bytes::new();
        }
        match self {
            MediaSpec::Bytes(bytes) => bytes.slice(start as usize..end as usize),
            _ => {
                let mut buf = BytesMut::zeroed((end - start) as usize);
                self.fill(start, &mut buf);
                buf.freeze()
            }
        }
    }

    /// Streams the bytes `start..end` (end exclusive) in chunks of at most [`CHUNK`] bytes,
    /// generating synthetic ones as they are polled.
    pub(crate) fn stream(&self, start: u64, end: u64) -> impl Stream<Item = Bytes> + use<> {
        let media = self.clone();
        futures_util::stream::unfold(start, move |offset| {
            let next = (offset + CHUNK as u64).min(end);
            let chunk = (offset < end).then(|| media.read(offset, next));
            async move { chunk.map(|chunk| (chunk, next)) }
        })
    }

    /// Lowercase hex SHA-256 of the whole media, computed piece by piece.
    pub fn sha256_hex(&self) -> String {
        let mut hasher = Sha256::new();
        match self {
            MediaSpec::Bytes(bytes) => hasher.update(bytes),
            _ => {
                let len = self.len();
                let mut buf = vec![0u8; 1 << 20];
                let mut offset = 0u64;
                while offset < len {
                    let n = (len - offset).min(buf.len() as u64) as usize;
                    self.fill(offset, &mut buf[..n]);
                    hasher.update(&buf[..n]);
                    offset += n as u64;
                }
            }
        }
        hex::encode(hasher.finalize())
    }
}

/// Fills `buf` with the synthetic bytes that start at `offset` for `seed`. Byte `o` is byte
/// `o % 8` (little-endian) of a SplitMix64 hash of `(seed, o / 8)`, so any offset can be
/// computed without the bytes before it.
pub fn fill_synthetic(seed: u64, offset: u64, buf: &mut [u8]) {
    let mut position = offset;
    let mut filled = 0;
    while filled < buf.len() {
        let skip = (position % 8) as usize;
        let word = synthetic_word(seed, position / 8).to_le_bytes();
        let n = (8 - skip).min(buf.len() - filled);
        buf[filled..filled + n].copy_from_slice(&word[skip..skip + n]);
        filled += n;
        position += n as u64;
    }
}

fn synthetic_word(seed: u64, index: u64) -> u64 {
    const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut z = seed ^ index.wrapping_add(1).wrapping_mul(GOLDEN);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    #[test]
    fn synthetic_bytes_at_an_offset_match_the_bytes_generated_from_zero() {
        let media = MediaSpec::Synthetic { len: 1000, seed: 7 };
        let whole = media.read(0, 1000);
        for start in [0, 1, 7, 8, 9, 333, 999] {
            assert_eq!(media.read(start, 1000), whole.slice(start as usize..));
        }
    }

    #[test]
    fn different_seeds_give_different_bytes() {
        let a = MediaSpec::Synthetic { len: 64, seed: 1 }.read(0, 64);
        let b = MediaSpec::Synthetic { len: 64, seed: 2 }.read(0, 64);
        assert_ne!(a, b);
    }

    #[test]
    fn sha256_of_synthetic_media_equals_the_digest_of_its_bytes() {
        let len = (1 << 20) + 12_345;
        let media = MediaSpec::Synthetic { len, seed: 42 };
        let expected = hex::encode(Sha256::digest(media.read(0, len)));
        assert_eq!(media.sha256_hex(), expected);
        let given = MediaSpec::Bytes(Bytes::from_static(b"abc"));
        assert_eq!(
            given.sha256_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[tokio::test]
    async fn a_streamed_range_concatenates_to_the_read_range() {
        let media = MediaSpec::Synthetic {
            len: 3 * CHUNK as u64 + 5,
            seed: 3,
        };
        let chunks: Vec<Bytes> = media.stream(10, media.len()).collect().await;
        assert!(chunks.iter().all(|chunk| chunk.len() <= CHUNK));
        assert_eq!(chunks.concat(), media.read(10, media.len()).to_vec());
    }

    #[test]
    fn a_gibibyte_range_near_the_end_is_read_without_the_rest() {
        let len = 1u64 << 30;
        let media = MediaSpec::Synthetic { len, seed: 9 };
        let tail = media.read(len - 16, len + 100);
        assert_eq!(tail.len(), 16);
    }
}
