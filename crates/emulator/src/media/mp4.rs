//! MP4 recordings: a structurally valid ISO BMFF file (`ftyp`, a `moov` whose `mvhd` states
//! the duration, and an `mdat`), whose media data is synthetic: deterministic pseudo-random
//! bytes, not encoded audio or video, so no player will show a picture. Its size follows
//! ACS's bit rates (1 Mbit/s video + 128 kbit/s audio) so chunking by size behaves as with
//! real recordings.

use super::fill_synthetic;

/// Media bytes per millisecond: (1 000 000 + 128 000) bit/s / 8 / 1000.
pub const BYTES_PER_MS: u64 = 141;

/// `ftyp` (24) + `moov` (8 + `mvhd` 108) + `mdat` header with a 64-bit size (16).
pub const HEADER_LEN: u64 = 24 + 116 + 16;

/// A synthetic MP4 of `duration_ms` milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mp4 {
    duration_ms: u64,
    seed: u64,
}

impl Mp4 {
    /// An MP4 of `duration_ms` milliseconds whose media bytes come from `seed`.
    pub fn new(duration_ms: u64, seed: u64) -> Self {
        Self { duration_ms, seed }
    }

    /// Total length in bytes.
    pub fn len(&self) -> u64 {
        Self::len_for(self.duration_ms)
    }

    /// Whether it is empty (never: the boxes are always there).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The length of an MP4 of `ms` milliseconds.
    pub fn len_for(ms: u64) -> u64 {
        HEADER_LEN + ms * BYTES_PER_MS
    }

    /// The longest whole-millisecond duration whose file fits in `bytes`.
    pub fn max_ms_within(bytes: u64) -> u64 {
        bytes.saturating_sub(HEADER_LEN) / BYTES_PER_MS
    }

    fn header(&self) -> Vec<u8> {
        let mut header = Vec::with_capacity(HEADER_LEN as usize);
        header.extend_from_slice(&24u32.to_be_bytes());
        header.extend_from_slice(b"ftypisom");
        header.extend_from_slice(&0x200u32.to_be_bytes());
        header.extend_from_slice(b"isommp41");

        header.extend_from_slice(&116u32.to_be_bytes());
        header.extend_from_slice(b"moov");
        header.extend_from_slice(&108u32.to_be_bytes());
        header.extend_from_slice(b"mvhd");
        header.extend_from_slice(&[0; 4]); // version 0, no flags
        header.extend_from_slice(&[0; 8]); // creation and modification time
        header.extend_from_slice(&1000u32.to_be_bytes()); // timescale: milliseconds
        let duration = u32::try_from(self.duration_ms).unwrap_or(u32::MAX);
        header.extend_from_slice(&duration.to_be_bytes());
        header.extend_from_slice(&0x0001_0000u32.to_be_bytes()); // rate 1.0
        header.extend_from_slice(&0x0100u16.to_be_bytes()); // volume 1.0
        header.extend_from_slice(&[0; 10]);
        for value in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
            header.extend_from_slice(&value.to_be_bytes()); // identity matrix
        }
        header.extend_from_slice(&[0; 24]);
        header.extend_from_slice(&2u32.to_be_bytes()); // next track id

        // size 1: the real size follows as 64 bits, so a long chunk never overflows it.
        header.extend_from_slice(&1u32.to_be_bytes());
        header.extend_from_slice(b"mdat");
        header.extend_from_slice(&(16 + self.duration_ms * BYTES_PER_MS).to_be_bytes());
        header
    }

    /// Fills `buf` with the file's bytes from `offset` on (zeros past the end).
    pub fn fill(&self, offset: u64, buf: &mut [u8]) {
        let mut filled = 0;
        if offset < HEADER_LEN {
            let header = self.header();
            let n = ((HEADER_LEN - offset) as usize).min(buf.len());
            buf[..n].copy_from_slice(&header[offset as usize..offset as usize + n]);
            filled = n;
        }
        let payload_offset = (offset + filled as u64).saturating_sub(HEADER_LEN);
        let payload_left = self.len().saturating_sub(HEADER_LEN + payload_offset);
        let n = (buf.len() - filled).min(payload_left as usize);
        fill_synthetic(self.seed, payload_offset, &mut buf[filled..filled + n]);
        buf[filled + n..].fill(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(mp4: &Mp4) -> Vec<u8> {
        let mut buf = vec![0; mp4.len() as usize];
        mp4.fill(0, &mut buf);
        buf
    }

    /// (type, offset, size) of the top-level boxes.
    fn boxes(file: &[u8]) -> Vec<(String, usize, u64)> {
        let mut found = Vec::new();
        let mut at = 0;
        while at < file.len() {
            let mut size = u64::from(u32::from_be_bytes(file[at..at + 4].try_into().unwrap()));
            let kind = String::from_utf8_lossy(&file[at + 4..at + 8]).into_owned();
            if size == 1 {
                size = u64::from_be_bytes(file[at + 8..at + 16].try_into().unwrap());
            }
            found.push((kind, at, size));
            at += size as usize;
        }
        found
    }

    #[test]
    fn the_file_is_ftyp_moov_mdat_with_sizes_that_add_up() {
        let mp4 = Mp4::new(1500, 3);
        let file = bytes(&mp4);
        let boxes = boxes(&file);
        let kinds: Vec<&str> = boxes.iter().map(|(kind, _, _)| kind.as_str()).collect();
        assert_eq!(kinds, ["ftyp", "moov", "mdat"]);
        let total: u64 = boxes.iter().map(|(_, _, size)| size).sum();
        assert_eq!(total, file.len() as u64);
        assert_eq!(&file[24 + 12..24 + 16], b"mvhd");
        let duration = u32::from_be_bytes(file[24 + 32..24 + 36].try_into().unwrap());
        assert_eq!(duration, 1500);
        assert_eq!(file.len() as u64, HEADER_LEN + 1500 * BYTES_PER_MS);
    }

    #[test]
    fn any_range_equals_the_same_bytes_of_the_whole_file() {
        let mp4 = Mp4::new(10, 9);
        let whole = bytes(&mp4);
        for start in [0usize, 5, 155, 156, 157, whole.len() - 1] {
            let mut part = vec![0; whole.len() - start];
            mp4.fill(start as u64, &mut part);
            assert_eq!(part, whole[start..], "from {start}");
        }
    }

    #[test]
    fn the_longest_duration_within_a_size_fits_it() {
        let ms = Mp4::max_ms_within(1_000_000);
        assert!(Mp4::len_for(ms) <= 1_000_000);
        assert!(Mp4::len_for(ms + 1) > 1_000_000);
    }
}
