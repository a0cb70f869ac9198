//! Process counters, exposed through a `prometheus-client` registry together with gauges read
//! from the database at scrape time.

mod by_label;
mod exposition;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Upper bounds of the transfer-duration histogram, in seconds.
pub const TRANSFER_BUCKETS: [f64; 12] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// Counters shared by ingest and workers of one process.
#[derive(Debug)]
pub struct Metrics {
    /// Events in webhook deliveries, of any type.
    pub events_received: Counter,
    /// RecordingFileStatusUpdated events that queued work.
    pub events_accepted: Counter,
    /// Events whose id was already seen.
    pub events_duplicate: Counter,
    /// Events stored in quarantine.
    pub events_quarantined: Counter,
    /// Events of types callvault does not act on.
    pub events_unknown_type: Counter,
    /// Events (delivered or replayed from quarantine) announcing an erased recording.
    pub events_erased: Counter,
    /// Transfer attempts started.
    pub attempts: Counter,
    /// Attempts by outcome.
    pub attempts_archived: Counter,
    pub attempts_retried: Counter,
    pub attempts_failed: Counter,
    pub attempts_expired: Counter,
    /// Media bytes received from ACS (including bytes of attempts that later failed).
    pub bytes_downloaded: Counter,
    /// Media and metadata bytes in archived chunks.
    pub bytes_archived: Counter,
    /// Incomplete multipart uploads aborted by a later attempt or the sweep.
    pub storage_uploads_aborted: Counter,
    /// Recordings whose chunks were found short of their announced duration when their
    /// manifest was written (each counted once when it turns short).
    pub recordings_short: Counter,
    /// Scheduled verifications that found an object missing or different from its manifest.
    pub verify_failures: Counter,
    /// Bytes the scheduled verifier re-read.
    pub verified_bytes: Counter,
    /// Webhook deliveries refused for a missing or wrong secret or bearer token.
    pub webhook_unauthorized: Counter,
    /// Events received from an Event Grid namespace and acknowledged after their commit.
    pub pull_acknowledged: Counter,
    /// Received events rejected to the subscription's dead letter (quarantined here too).
    pub pull_rejected: Counter,
    /// Received events released for a later delivery, the database having failed.
    pub pull_released: Counter,
    /// Lock tokens a settle action or a receive could not settle, and failed namespace calls.
    pub pull_failures: Counter,
    /// Recordings old enough for retention that a legal hold or store lock kept (per run).
    pub retention_skipped: Counter,
    /// Storage queue messages deleted after their events were committed.
    pub queue_deleted: Counter,
    /// Storage queue messages quarantined (dequeued too often, or holding no events).
    pub queue_poison: Counter,
    /// Failed storage queue calls.
    pub queue_failures: Counter,
    /// Participant ids of archived chunks the participant index left out (too long,
    /// malformed, beyond the per-chunk limit).
    pub participant_ids_skipped: Counter,
    /// Recording starts of established call legs, by how the attempt ended.
    pub recording_starts_started: Counter,
    pub recording_starts_retried: Counter,
    pub recording_starts_failed: Counter,
    /// Seconds from claim to archived, per archived chunk.
    transfer: Histogram,
    /// The families above, registered once; the counters in it share their values with the fields.
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut metrics = Metrics {
            events_received: Counter::default(),
            events_accepted: Counter::default(),
            events_duplicate: Counter::default(),
            events_quarantined: Counter::default(),
            events_unknown_type: Counter::default(),
            events_erased: Counter::default(),
            attempts: Counter::default(),
            attempts_archived: Counter::default(),
            attempts_retried: Counter::default(),
            attempts_failed: Counter::default(),
            attempts_expired: Counter::default(),
            bytes_downloaded: Counter::default(),
            bytes_archived: Counter::default(),
            storage_uploads_aborted: Counter::default(),
            recordings_short: Counter::default(),
            verify_failures: Counter::default(),
            verified_bytes: Counter::default(),
            webhook_unauthorized: Counter::default(),
            participant_ids_skipped: Counter::default(),
            pull_acknowledged: Counter::default(),
            pull_rejected: Counter::default(),
            pull_released: Counter::default(),
            pull_failures: Counter::default(),
            retention_skipped: Counter::default(),
            queue_deleted: Counter::default(),
            queue_poison: Counter::default(),
            queue_failures: Counter::default(),
            recording_starts_started: Counter::default(),
            recording_starts_retried: Counter::default(),
            recording_starts_failed: Counter::default(),
            transfer: Histogram::new(TRANSFER_BUCKETS),
            registry: Registry::default(),
        };
        metrics.registry = exposition::process_registry(&metrics);
        metrics
    }
}

impl Metrics {
    pub fn add(counter: &Counter, n: u64) {
        counter.inc_by(n);
    }

    pub fn get(counter: &Counter) -> u64 {
        counter.get()
    }

    pub fn bytes_downloaded(&self, n: u64) {
        Self::add(&self.bytes_downloaded, n);
    }

    pub fn observe_transfer(&self, seconds: f64) {
        self.transfer.observe(seconds);
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
    /// Recordings whose erasure is done, per origin (`request`, `retention`); a missing
    /// origin is rendered as 0.
    pub recordings_erased: Vec<(&'static str, i64)>,
    /// Each configured event sink, and whether a 410 Gone disabled it.
    pub event_sinks_disabled: Vec<(String, bool)>,
}
