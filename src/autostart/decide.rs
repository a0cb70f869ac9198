//! What ACS's answer to a start means: started, try again later, or give up.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::acs::control::{ControlError, RecordingStatus};
use crate::queue::call_legs::StartOutcome;

/// Attempts and backoff of one leg's start.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub max_attempts: i64,
    pub initial: Duration,
    pub max: Duration,
}

impl Retry {
    /// Exponential with jitter: the delay after attempt number `attempts` failed.
    pub fn delay(&self, attempts: i64) -> Duration {
        ExponentialBuilder::new()
            .with_min_delay(self.initial)
            .with_max_delay(self.max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
            .nth(attempts.clamp(1, 64) as usize - 1)
            .unwrap_or(self.max)
    }

    /// The outcome of attempt number `attempts`, answered `answer`, at `now`.
    pub fn decide(
        &self,
        answer: Result<RecordingStatus, ControlError>,
        attempts: i64,
        now: i64,
    ) -> StartOutcome {
        let error = match answer {
            Ok(status) if !status.recording_id.trim().is_empty() => {
                return StartOutcome::Started {
                    recording_id: status.recording_id,
                };
            }
            Ok(_) => ControlError::Unexpected("the start answer has no recordingId".into()),
            Err(error) => error,
        };
        let message = error.to_string();
        if !is_transient(&error) {
            return StartOutcome::Failed {
                error: format!("ACS refused the start: {message}"),
            };
        }
        if attempts >= self.max_attempts {
            return StartOutcome::Failed {
                error: format!("gave up after {attempts} attempts: {message}"),
            };
        }
        StartOutcome::Retry {
            next_attempt_at: now + self.delay(attempts).as_millis() as i64,
            error: message,
        }
    }
}

/// A timeout, a lost connection, throttling or a server error may pass; a refusal (a bad
/// conversation id, a wrong key) will not.
fn is_transient(error: &ControlError) -> bool {
    match error {
        ControlError::Api { status, .. } => *status >= 500 || matches!(status, 408 | 429),
        ControlError::Transport(_) | ControlError::Unexpected(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry() -> Retry {
        Retry {
            max_attempts: 3,
            initial: Duration::from_millis(100),
            max: Duration::from_millis(1_000),
        }
    }

    fn api(status: u16) -> Result<RecordingStatus, ControlError> {
        Err(ControlError::Api {
            status,
            code: "c".into(),
            message: "m".into(),
        })
    }

    #[test]
    fn a_recording_id_is_a_start() {
        let answer = Ok(RecordingStatus {
            recording_id: "r1".into(),
            recording_state: None,
        });
        assert_eq!(
            retry().decide(answer, 1, 0),
            StartOutcome::Started {
                recording_id: "r1".into()
            }
        );
    }

    #[test]
    fn server_errors_and_throttling_are_retried_until_the_bound() {
        for status in [500, 503, 429, 408] {
            assert!(matches!(
                retry().decide(api(status), 1, 1_000),
                StartOutcome::Retry { next_attempt_at, .. } if next_attempt_at >= 1_100
            ));
        }
        let timeout = Err(ControlError::Transport("timed out".into()));
        assert!(matches!(
            retry().decide(timeout, 2, 0),
            StartOutcome::Retry { .. }
        ));
        match retry().decide(api(503), 3, 0) {
            StartOutcome::Failed { error } => {
                assert!(error.starts_with("gave up after 3 attempts"), "{error}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_refusal_is_given_up_at_once() {
        for status in [400, 401, 404] {
            assert!(matches!(
                retry().decide(api(status), 1, 0),
                StartOutcome::Failed { .. }
            ));
        }
    }

    #[test]
    fn an_answer_without_a_recording_id_is_retried() {
        let answer = Ok(RecordingStatus {
            recording_id: String::new(),
            recording_state: None,
        });
        assert!(matches!(
            retry().decide(answer, 1, 0),
            StartOutcome::Retry { .. }
        ));
    }
}
