//! What a failed attempt means: retry later, give up, or accept that ACS has deleted it.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::acs::download::AcsError;
use crate::queue::jobs::Finish;
use crate::storage::StorageError;

/// 401/403 may be a clock skew or a key being rotated: retry this many attempts, then fail.
const AUTH_ATTEMPTS: i64 = 3;
/// A 0-byte chunk is suspicious (ACS has served one before the file was ready): retry this
/// many attempts before accepting it.
pub const EMPTY_ATTEMPTS: i64 = 3;

/// Why an attempt did not archive the chunk.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error(transparent)]
    Source(#[from] AcsError),
    #[error("storage: {0}")]
    Storage(#[from] crate::storage::StorageError),
    #[error("integrity: {0}")]
    Integrity(String),
    #[error("refused download URL: {0}")]
    Refused(String),
    #[error("the recording row is missing")]
    MissingRecording,
    #[error("database: {0}")]
    Queue(#[from] crate::queue::QueueError),
    /// Shutdown or a lost lease: not the job's fault.
    #[error("cancelled")]
    Cancelled,
}

/// Backoff settings.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: i64,
    pub initial: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    /// Exponential with jitter: the delay before attempt `attempts + 1`.
    pub fn delay(&self, attempts: i64) -> Duration {
        let step = attempts.clamp(1, 64) as usize;
        ExponentialBuilder::new()
            .with_min_delay(self.initial)
            .with_max_delay(self.max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
            .nth(step - 1)
            .unwrap_or(self.max)
    }

    /// Decides the job's next state after attempt number `attempts` failed with `error`.
    pub fn decide(
        &self,
        error: &TransferError,
        attempts: i64,
        deadline_passed: bool,
        now: i64,
    ) -> Finish {
        let message = error.to_string();
        let retry = |message: String| {
            if attempts >= self.max_attempts {
                Finish::Failed {
                    error: format!("gave up after {attempts} attempts: {message}"),
                }
            } else {
                Finish::Retry {
                    next_attempt_at: now + self.delay(attempts).as_millis() as i64,
                    error: message,
                }
            }
        };
        match error {
            TransferError::Source(AcsError::Status {
                status: 404 | 410, ..
            }) if deadline_passed => Finish::Expired {
                error: format!(
                    "{message}; the ACS retention deadline has passed, so the recording is gone"
                ),
            },
            TransferError::Source(AcsError::Status {
                status: 401 | 403, ..
            }) if attempts >= AUTH_ATTEMPTS => Finish::Failed {
                error: format!(
                    "{message} ({attempts} attempts): ACS refuses our signature; check acs.connection_string (the access key) and the clock"
                ),
            },
            TransferError::Source(AcsError::Status { status, .. })
                if (400..500).contains(status)
                    && !matches!(status, 401 | 403 | 404 | 408 | 410 | 429)
                    && attempts >= AUTH_ATTEMPTS =>
            {
                Finish::Failed {
                    error: format!("{message} ({attempts} attempts)"),
                }
            }
            TransferError::Refused(_) | TransferError::MissingRecording => {
                Finish::Failed { error: message }
            }
            // ACS content does not change, so another object at the key is most likely a
            // different recording whose ids sanitise to the same key: never overwrite it.
            TransferError::Storage(StorageError::ExistingDiffers { key }) => Finish::Failed {
                error: format!(
                    "an object with other content already exists at {key}; it was kept. Inspect it, move it away, then replay this job"
                ),
            },
            _ => retry(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
        }
    }

    fn status(status: u16) -> TransferError {
        TransferError::Source(AcsError::Status {
            status,
            message: "x".into(),
        })
    }

    #[test]
    fn delays_grow_and_stay_under_the_cap() {
        let policy = policy();
        for attempts in 1..40 {
            let delay = policy.delay(attempts);
            assert!(delay >= Duration::from_millis(100), "{delay:?}");
            assert!(delay <= Duration::from_secs(20), "{delay:?}");
        }
        assert!(policy.delay(6) >= Duration::from_millis(3200));
    }

    #[test]
    fn server_errors_retry_until_attempts_run_out() {
        assert!(matches!(
            policy().decide(&status(503), 1, false, 0),
            Finish::Retry { .. }
        ));
        assert!(matches!(
            policy().decide(&status(503), 5, false, 0),
            Finish::Failed { .. }
        ));
    }

    #[test]
    fn not_found_expires_only_past_the_deadline() {
        assert!(matches!(
            policy().decide(&status(404), 1, false, 0),
            Finish::Retry { .. }
        ));
        assert!(matches!(
            policy().decide(&status(404), 1, true, 0),
            Finish::Expired { .. }
        ));
        assert!(matches!(
            policy().decide(&status(410), 1, true, 0),
            Finish::Expired { .. }
        ));
    }

    #[test]
    fn auth_failures_retry_a_few_times_then_fail_with_advice() {
        assert!(matches!(
            policy().decide(&status(401), 2, false, 0),
            Finish::Retry { .. }
        ));
        match policy().decide(&status(401), 3, false, 0) {
            Finish::Failed { error } => assert!(error.contains("acs.connection_string"), "{error}"),
            other => panic!("{other:?}"),
        }
    }

    /// A store that another attempt may find back (an outage, a reset) is retried.
    #[test]
    fn a_storage_error_retries() {
        let outage = StorageError::Store(object_store::Error::Generic {
            store: "S3",
            source: "connection refused".into(),
        });
        assert!(matches!(
            policy().decide(&TransferError::Storage(outage), 1, false, 0),
            Finish::Retry { .. }
        ));
    }

    /// Other bytes already at the key are never overwritten: the job fails at once, saying so.
    #[test]
    fn other_content_at_the_key_fails_at_once_with_advice() {
        let existing = StorageError::ExistingDiffers {
            key: "call/rec/chunk-0000.metadata.json".into(),
        };
        match policy().decide(&TransferError::Storage(existing), 1, false, 0) {
            Finish::Failed { error } => {
                assert!(error.contains("other content already exists"), "{error}");
                assert!(
                    error.contains("call/rec/chunk-0000.metadata.json"),
                    "{error}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_refused_url_fails_at_once() {
        assert!(matches!(
            policy().decide(&TransferError::Refused("x".into()), 1, false, 0),
            Finish::Failed { .. }
        ));
    }
}
