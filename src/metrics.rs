//! Process counters, rendered as Prometheus text together with gauges read from the database.

mod exposition;

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the transfer-duration histogram, in seconds.
pub const TRANSFER_BUCKETS: [f64; 12] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// Counters shared by ingest and workers of one process.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Events in webhook deliveries, of any type.
    pub events_received: AtomicU64,
    /// RecordingFileStatusUpdated events that queued work.
    pub events_accepted: AtomicU64,
    /// Events whose id was already seen.
    pub events_duplicate: AtomicU64,
    /// Events stored in quarantine.
    pub events_quarantined: AtomicU64,
    /// Events of types callvault does not act on.
    pub events_unknown_type: AtomicU64,
    /// Transfer attempts started.
    pub attempts: AtomicU64,
    /// Attempts by outcome.
    pub attempts_archived: AtomicU64,
    pub attempts_retried: AtomicU64,
    pub attempts_failed: AtomicU64,
    pub attempts_expired: AtomicU64,
    /// Media bytes received from ACS (including bytes of attempts that later failed).
    pub bytes_downloaded: AtomicU64,
    /// Media and metadata bytes in archived chunks.
    pub bytes_archived: AtomicU64,
    /// Transfer durations of archived chunks: bucket counts, then sum in milliseconds and count.
    transfer_buckets: [AtomicU64; TRANSFER_BUCKETS.len()],
    transfer_millis_sum: AtomicU64,
    transfer_count: AtomicU64,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn bytes_downloaded(&self, n: u64) {
        Self::add(&self.bytes_downloaded, n);
    }

    pub fn observe_transfer(&self, seconds: f64) {
        for (bucket, bound) in self.transfer_buckets.iter().zip(TRANSFER_BUCKETS) {
            if seconds <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.transfer_millis_sum
            .fetch_add((seconds * 1000.0) as u64, Ordering::Relaxed);
        self.transfer_count.fetch_add(1, Ordering::Relaxed);
    }

    /// (cumulative bucket counts, sum in seconds, count) of the transfer histogram.
    pub fn transfer_histogram(&self) -> (Vec<(f64, u64)>, f64, u64) {
        let buckets = TRANSFER_BUCKETS
            .iter()
            .zip(&self.transfer_buckets)
            .map(|(b, c)| (*b, Self::get(c)))
            .collect();
        (
            buckets,
            Self::get(&self.transfer_millis_sum) as f64 / 1000.0,
            Self::get(&self.transfer_count),
        )
    }
}

/// Gauges read from the database at scrape time, so every replica reports the same queue.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueGauges {
    /// Jobs per state; a state missing here is rendered as 0.
    pub jobs: Vec<(crate::queue::JobState, i64)>,
    /// Age of the oldest pending job, in seconds (0 when none is pending).
    pub oldest_pending_age_seconds: f64,
    /// Smallest time left before a pending or running job's deadline, in seconds; negative
    /// once a deadline has passed, `None` when no job is pending or running.
    pub deadline_slack_seconds: Option<f64>,
    /// Pending or running jobs whose deadline is within `admin.deadline_warning_hours`.
    pub jobs_at_risk: i64,
}
