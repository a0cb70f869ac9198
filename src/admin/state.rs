//! A recording's derived state, the one word an operator reads first. It is derived from the
//! recording's jobs and manifest rather than stored, so it can never disagree with them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How far a recording has come, most urgent first: a recording with a failed chunk is
/// `failed` even while other chunks are still archiving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingState {
    /// A chunk job is `failed` or `expired`: it needs an operator (replay, or accept the loss).
    Failed,
    /// A chunk job is `pending` or `running`.
    Archiving,
    /// Every announced chunk is archived and `manifest.json` is written.
    Complete,
    /// Every announced chunk is archived but the recording is not complete: a chunk that ACS
    /// has not announced yet is missing (a gap, or the last chunk ended with
    /// `ChunkMaximumSizeExceeded`), or the manifest is still being written.
    Incomplete,
}

/// Job counts of one recording, what the state is derived from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ChunkCounts {
    /// Jobs of the recording, in any state.
    pub chunks: i64,
    /// Jobs `archived`.
    pub archived_chunks: i64,
    /// Jobs `pending` or `running`.
    pub active_chunks: i64,
    /// Jobs `failed` or `expired`.
    pub broken_chunks: i64,
}

impl RecordingState {
    pub const ALL: [RecordingState; 4] = [
        RecordingState::Failed,
        RecordingState::Archiving,
        RecordingState::Complete,
        RecordingState::Incomplete,
    ];

    /// The state of a recording with these job counts and (or without) a manifest.
    pub fn derive(counts: &ChunkCounts, has_manifest: bool) -> Self {
        if counts.broken_chunks > 0 {
            RecordingState::Failed
        } else if counts.active_chunks > 0 {
            RecordingState::Archiving
        } else if has_manifest {
            RecordingState::Complete
        } else {
            RecordingState::Incomplete
        }
    }

    /// The same rule as [`derive`](Self::derive) as a SQL condition over the columns
    /// `broken_chunks`, `active_chunks` and `manifest_key`, so a state filter can paginate in SQL.
    pub fn sql_condition(self) -> &'static str {
        match self {
            RecordingState::Failed => "broken_chunks > 0",
            RecordingState::Archiving => "broken_chunks = 0 AND active_chunks > 0",
            RecordingState::Complete => {
                "broken_chunks = 0 AND active_chunks = 0 AND manifest_key IS NOT NULL"
            }
            RecordingState::Incomplete => {
                "broken_chunks = 0 AND active_chunks = 0 AND manifest_key IS NULL"
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RecordingState::Failed => "failed",
            RecordingState::Archiving => "archiving",
            RecordingState::Complete => "complete",
            RecordingState::Incomplete => "incomplete",
        }
    }
}

impl fmt::Display for RecordingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RecordingState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RecordingState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| {
                format!("`{s}` is not a recording state (failed, archiving, complete, incomplete)")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(archived: i64, active: i64, broken: i64) -> ChunkCounts {
        ChunkCounts {
            chunks: archived + active + broken,
            archived_chunks: archived,
            active_chunks: active,
            broken_chunks: broken,
        }
    }

    #[test]
    fn a_broken_chunk_outranks_everything() {
        assert_eq!(
            RecordingState::derive(&counts(3, 1, 1), true),
            RecordingState::Failed
        );
        assert_eq!(
            RecordingState::derive(&counts(0, 0, 1), false),
            RecordingState::Failed
        );
    }

    #[test]
    fn active_chunks_mean_archiving_even_after_a_manifest() {
        assert_eq!(
            RecordingState::derive(&counts(1, 1, 0), true),
            RecordingState::Archiving
        );
        assert_eq!(
            RecordingState::derive(&counts(0, 2, 0), false),
            RecordingState::Archiving
        );
    }

    #[test]
    fn all_archived_is_complete_only_with_a_manifest() {
        assert_eq!(
            RecordingState::derive(&counts(2, 0, 0), true),
            RecordingState::Complete
        );
        assert_eq!(
            RecordingState::derive(&counts(2, 0, 0), false),
            RecordingState::Incomplete
        );
    }

    #[test]
    fn states_round_trip_through_text() {
        for state in RecordingState::ALL {
            assert_eq!(state.as_str().parse::<RecordingState>(), Ok(state));
        }
        assert!(
            "done"
                .parse::<RecordingState>()
                .unwrap_err()
                .contains("done")
        );
    }
}
