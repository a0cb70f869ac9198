//! How recordings are cut into chunks and how fast emulated time runs.

use std::time::Duration;

/// Settings of the emulated recording control API.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingConfig {
    /// Longest media duration of one chunk; a longer recording is split, each full chunk
    /// ending with `ChunkMaximumSizeExceeded` (ACS: 4 h).
    pub chunk_max_duration: Duration,
    /// Largest media file of one chunk, if any; it splits chunks like the duration does.
    pub chunk_max_bytes: Option<u64>,
    /// How long after a stop `RecordingFileStatusUpdated` is delivered (ACS: minutes).
    pub file_ready_delay: Duration,
    /// Media seconds per wall-clock second, so a demo can record minutes of call in
    /// seconds. Timestamps in metadata and events follow media time from the start.
    pub time_scale: f64,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        Self {
            chunk_max_duration: Duration::from_secs(4 * 60 * 60),
            chunk_max_bytes: None,
            file_ready_delay: Duration::from_secs(3),
            time_scale: 1.0,
        }
    }
}
