//! `storage.lock_after_hours`: objects are written unlocked and locked here once the holding
//! period has passed since the recording's newest object was written, so that a recording
//! found to hold what may not be kept (PCI DSS: card security codes a pause missed) can still
//! be erased within it. Each lock is recorded (migration 0010) so it is done once; a chunk or
//! manifest written later makes the recording due again.
//!
//! Erasure: an erased recording is never due (`locks::due` leaves it out, and each recording
//! is checked again right before its lock), so its tombstone stays deletable and nothing of it
//! is locked after it was erased inside its holding period. After the holding period the
//! store refuses an erasure until the retention ends.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::operations::OpsError;
use crate::queue::{Db, locks};
use crate::storage::Archive;

/// How often due recordings are looked for.
pub const LOCK_EVERY: Duration = Duration::from_secs(600);

/// Recordings locked per database round.
const BATCH: i64 = 100;

/// The epoch-millisecond time a recording's newest object must be older than to be locked.
pub fn cutoff(after_hours: u32, now: DateTime<Utc>) -> i64 {
    now.timestamp_millis() - i64::from(after_hours) * 3_600_000
}

/// Locks every recording whose holding period had ended by `now`, retained for
/// `storage.object_lock_days` from `now`; returns how many recordings it locked. A recording
/// the store refuses is logged and left due, for the next round; the others go on.
pub async fn lock_due(
    db: &Db,
    archive: &Archive,
    after_hours: u32,
    now: DateTime<Utc>,
) -> Result<usize, OpsError> {
    let (mut locked, mut after) = (0, 0);
    loop {
        let due = locks::due(db, cutoff(after_hours, now), after, BATCH).await?;
        for recording in &due {
            after = recording.id;
            // An erasure that started since the due list was read: nothing of it may be locked.
            if crate::queue::erasures::is_erased(db, recording.id).await? {
                continue;
            }
            let layout = archive.layout(&recording.call_id, &recording.recording_key);
            let objects = match archive.lock_recording(&layout, now).await {
                Ok(objects) => objects,
                Err(err) => {
                    tracing::error!(recording = recording.id, error = %err, "holding period over but the store refused the lock; retrying next round");
                    continue;
                }
            };
            locks::mark_locked(db, recording.id, recording.newest, now.timestamp_millis()).await?;
            tracing::info!(
                recording = recording.id,
                objects,
                "holding period over: objects locked"
            );
            locked += 1;
        }
        if (due.len() as i64) < BATCH {
            return Ok(locked);
        }
    }
}

/// Runs until `shutdown`: a round at once, then every [`LOCK_EVERY`].
pub async fn run(db: Db, archive: Archive, after_hours: u32, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(LOCK_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if let Err(err) = lock_due(&db, &archive, after_hours, Utc::now()).await {
            tracing::error!(error = %err, "cannot read the recordings due for their lock; retrying in 10 minutes");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_is_the_holding_period_before_now() {
        let now = DateTime::from_timestamp_millis(100 * 3_600_000).unwrap();
        assert_eq!(cutoff(24, now), 76 * 3_600_000);
        assert_eq!(cutoff(0, now), 100 * 3_600_000);
    }
}
