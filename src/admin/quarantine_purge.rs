//! Quarantine is bounded in time as ingest bounds it in size: an entry is deleted
//! `admin.quarantine_retention_days` after its last activity (its replay, or else its
//! arrival). By then ACS has long deleted the recording it announced, so replay could no
//! longer save anything. Runs once at start and then every hour.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::queries;
use crate::queue::{Db, QueueError, now_millis};

/// How often old entries are deleted.
pub const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// The longest retention honoured; beyond it entries are kept as if for ever (and the
/// date arithmetic cannot overflow).
const MAX_RETENTION_DAYS: u64 = 100 * 365;

/// The epoch-millisecond time before which entries are purged, `retention_days` before `now`.
pub fn cutoff(retention_days: u64, now: i64) -> i64 {
    let days = retention_days.min(MAX_RETENTION_DAYS) as i64;
    now - days * 24 * 3600 * 1000
}

/// Deletes the entries past their retention; answers how many.
pub async fn purge_once(db: &Db, retention_days: u64) -> Result<u64, QueueError> {
    let purged = queries::purge_quarantine(db, cutoff(retention_days, now_millis())).await?;
    if purged > 0 {
        tracing::info!(
            purged,
            retention_days,
            "quarantine entries past admin.quarantine_retention_days deleted"
        );
    }
    Ok(purged)
}

/// Runs until `shutdown`: a purge at once, then every [`PURGE_EVERY`].
pub async fn run(db: Db, retention_days: u64, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(PURGE_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if let Err(err) = purge_once(&db, retention_days).await {
            tracing::warn!(error = %err, "cannot purge old quarantine entries; the database may be unavailable");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_is_the_retention_before_now() {
        let now = 100 * 24 * 3600 * 1000;
        assert_eq!(cutoff(30, now), 70 * 24 * 3600 * 1000);
        assert_eq!(cutoff(0, now), now);
    }

    #[test]
    fn a_huge_retention_does_not_overflow() {
        assert!(cutoff(u64::MAX, 0) < 0);
    }
}
