//! The life of one recording: active, paused (the API's `inactive`), stopped; and the
//! timeline of its pauses in media milliseconds since the start, which the chunks, their
//! metadata and their silence are cut from.
//!
//! Refusals: an operation the recording's current state does not allow is a
//! [`Conflict`], answered **409 Conflict** on both API generations: pausing a paused
//! recording, resuming an active one, and pausing, resuming or stopping a stopped one.
//! Reading the state of a stopped recording is allowed (`inactive`).

use std::ops::Range;

/// Where a recording is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingState {
    /// Recording.
    Active,
    /// Paused: the media goes on, silent.
    Paused,
    /// Stopped for good; its chunks exist.
    Stopped,
}

impl RecordingState {
    /// What the API reports: `active`, or `inactive` when paused or stopped.
    pub fn api_name(self) -> &'static str {
        match self {
            RecordingState::Active => "active",
            RecordingState::Paused | RecordingState::Stopped => "inactive",
        }
    }

    /// `active`, `paused` or `stopped`, for the emulator's own reports.
    pub fn name(self) -> &'static str {
        match self {
            RecordingState::Active => "active",
            RecordingState::Paused => "paused",
            RecordingState::Stopped => "stopped",
        }
    }
}

/// An operation the recording's state does not allow (409).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// Pause of a paused recording.
    #[error("the recording is already paused")]
    AlreadyPaused,
    /// Resume of an active recording.
    #[error("the recording is active; only a paused recording can be resumed")]
    NotPaused,
    /// Anything but a state read on a stopped recording.
    #[error("the recording has been stopped")]
    Stopped,
}

/// The recording's state and the pauses so far, in media milliseconds since the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    state: RecordingState,
    /// Closed pauses, then possibly one still open (`end` = `None`).
    pauses: Vec<(u64, Option<u64>)>,
    /// The latest time seen, so a clock that stalls never puts an event before another.
    last_ms: u64,
    /// The media duration, once stopped.
    duration_ms: Option<u64>,
}

impl Timeline {
    /// A recording started at media time 0, paused from the start when `paused`.
    pub fn start(paused: bool) -> Self {
        Self {
            state: if paused {
                RecordingState::Paused
            } else {
                RecordingState::Active
            },
            pauses: if paused { vec![(0, None)] } else { vec![] },
            last_ms: 0,
            duration_ms: None,
        }
    }

    /// The current state.
    pub fn state(&self) -> RecordingState {
        self.state
    }

    /// The media duration, once stopped.
    pub fn duration_ms(&self) -> Option<u64> {
        self.duration_ms
    }

    fn at(&mut self, ms: u64) -> u64 {
        self.last_ms = self.last_ms.max(ms);
        self.last_ms
    }

    /// Pauses at `ms`.
    pub fn pause(&mut self, ms: u64) -> Result<(), Conflict> {
        match self.state {
            RecordingState::Active => {
                let at = self.at(ms);
                self.pauses.push((at, None));
                self.state = RecordingState::Paused;
                Ok(())
            }
            RecordingState::Paused => Err(Conflict::AlreadyPaused),
            RecordingState::Stopped => Err(Conflict::Stopped),
        }
    }

    /// Resumes at `ms`.
    pub fn resume(&mut self, ms: u64) -> Result<(), Conflict> {
        match self.state {
            RecordingState::Paused => {
                let at = self.at(ms);
                self.close_pause(at);
                self.state = RecordingState::Active;
                Ok(())
            }
            RecordingState::Active => Err(Conflict::NotPaused),
            RecordingState::Stopped => Err(Conflict::Stopped),
        }
    }

    /// Stops at `ms` (a pause still open ends there) and returns the media duration, at
    /// least 1 ms so even an instant recording has a chunk with a sample in it.
    pub fn stop(&mut self, ms: u64) -> Result<u64, Conflict> {
        if self.state == RecordingState::Stopped {
            return Err(Conflict::Stopped);
        }
        let at = self.at(ms).max(1);
        self.close_pause(at);
        self.state = RecordingState::Stopped;
        self.duration_ms = Some(at);
        Ok(at)
    }

    fn close_pause(&mut self, at: u64) {
        if let Some(open) = self.pauses.last_mut().filter(|pause| pause.1.is_none()) {
            open.1 = Some(at);
        }
    }

    /// The pauses so far; one still open ends at the latest time seen.
    pub fn pauses(&self) -> Vec<Range<u64>> {
        self.pauses
            .iter()
            .map(|&(start, end)| start..end.unwrap_or(self.last_ms))
            .collect()
    }
}

/// The parts of `pauses` inside `chunk`, in chunk-relative order. A pause that spans a
/// chunk boundary is split between the chunks; an instant pause belongs to the chunk it
/// falls in.
pub fn pauses_within(pauses: &[Range<u64>], chunk: &Range<u64>) -> Vec<Range<u64>> {
    pauses
        .iter()
        .filter(|pause| {
            if pause.is_empty() {
                chunk.contains(&pause.start)
            } else {
                pause.start < chunk.end && pause.end > chunk.start
            }
        })
        .map(|pause| pause.start.max(chunk.start)..pause.end.min(chunk.end))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_resume_and_stop_follow_the_state_machine() {
        let mut timeline = Timeline::start(false);
        assert_eq!(timeline.state().api_name(), "active");
        assert_eq!(timeline.resume(5), Err(Conflict::NotPaused));
        timeline.pause(10).unwrap();
        assert_eq!(timeline.state().api_name(), "inactive");
        assert_eq!(timeline.pause(11), Err(Conflict::AlreadyPaused));
        timeline.resume(20).unwrap();
        timeline.pause(30).unwrap();
        assert_eq!(timeline.stop(45), Ok(45));
        assert_eq!(timeline.state(), RecordingState::Stopped);
        assert_eq!(timeline.state().api_name(), "inactive");
        assert_eq!(timeline.pauses(), vec![10..20, 30..45]);
        assert_eq!(timeline.pause(50), Err(Conflict::Stopped));
        assert_eq!(timeline.resume(50), Err(Conflict::Stopped));
        assert_eq!(timeline.stop(50), Err(Conflict::Stopped));
        assert_eq!(timeline.duration_ms(), Some(45));
    }

    #[test]
    fn pause_on_start_opens_a_pause_at_zero() {
        let mut timeline = Timeline::start(true);
        assert_eq!(timeline.state(), RecordingState::Paused);
        timeline.resume(100).unwrap();
        timeline.stop(200).unwrap();
        assert_eq!(timeline.pauses(), vec![0..100]);
    }

    #[test]
    fn time_never_runs_backwards_and_a_recording_lasts_at_least_a_millisecond() {
        let mut timeline = Timeline::start(false);
        timeline.pause(50).unwrap();
        timeline.resume(40).unwrap();
        assert_eq!(timeline.pauses(), vec![50..50]);
        let mut instant = Timeline::start(false);
        assert_eq!(instant.stop(0), Ok(1));
    }

    #[test]
    fn pauses_are_split_at_chunk_boundaries() {
        let pauses = vec![5..15, 20..20, 25..40];
        assert_eq!(pauses_within(&pauses, &(0..10)), vec![5..10]);
        assert_eq!(
            pauses_within(&pauses, &(10..30)),
            vec![10..15, 20..20, 25..30]
        );
        assert_eq!(pauses_within(&pauses, &(30..50)), vec![30..40]);
        assert!(pauses_within(&pauses, &(40..50)).is_empty());
    }
}
