//! Prometheus text exposition (format 0.0.4) of the process counters and queue gauges.

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::by_label::ByLabel;
use super::{Metrics, QueueGauges};

impl Metrics {
    /// Prometheus text exposition (version 0.0.4) of the counters and, when the database
    /// answered, of `queue`.
    pub fn render(&self, queue: Option<&QueueGauges>) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        prometheus_text::encode(&mut text, &self.registry).expect("process metrics encode");
        prometheus_text::encode(&mut text, &scrape_registry(queue)).expect("queue gauges encode");
        text
    }
}

/// The families this process counts itself, in exposition order. Help texts have no final full
/// stop: the registry adds one.
pub(super) fn process_registry(metrics: &Metrics) -> Registry {
    let mut registry = Registry::default();
    let events = [
        (
            "received",
            &metrics.events_received,
            "Events in webhook deliveries, of any type",
        ),
        (
            "accepted",
            &metrics.events_accepted,
            "RecordingFileStatusUpdated and RecordingStateChanged events stored as work",
        ),
        (
            "duplicate",
            &metrics.events_duplicate,
            "Events whose id was already seen (redeliveries)",
        ),
        (
            "quarantined",
            &metrics.events_quarantined,
            "Events stored in quarantine with a reason",
        ),
        (
            "unknown_type",
            &metrics.events_unknown_type,
            "Events of types callvault does not act on",
        ),
        (
            "erased",
            &metrics.events_erased,
            "Events announcing an erased recording, recorded and not queued",
        ),
    ];
    for (name, counter, help) in events {
        registry.register(format!("callvault_events_{name}"), help, counter.clone());
    }
    registry.register(
        "callvault_attempts_started",
        "Transfer attempts started by this process",
        metrics.attempts.clone(),
    );
    let outcomes: Vec<(String, Counter)> = [
        ("archived", &metrics.attempts_archived),
        ("retried", &metrics.attempts_retried),
        ("failed", &metrics.attempts_failed),
        ("expired", &metrics.attempts_expired),
    ]
    .into_iter()
    .map(|(outcome, counter)| (outcome.to_owned(), counter.clone()))
    .collect();
    registry.register_collector(Box::new(ByLabel {
        name: "callvault_attempts",
        help: "Finished transfer attempts by outcome",
        label: "outcome",
        series: outcomes,
    }));
    registry.register(
        "callvault_archived_bytes",
        "Media and metadata bytes of chunks archived by this process",
        metrics.bytes_archived.clone(),
    );
    registry.register(
        "callvault_downloaded_bytes",
        "Media bytes received from ACS, including attempts that later failed",
        metrics.bytes_downloaded.clone(),
    );
    registry.register(
        "callvault_storage_uploads_aborted",
        "Incomplete multipart uploads this process aborted after their writer could not",
        metrics.storage_uploads_aborted.clone(),
    );
    registry.register(
        "callvault_recordings_short",
        "Recordings whose chunks fall short of their announced recordingDurationMs beyond verify.duration_tolerance_ms, found when their manifest was written",
        metrics.recordings_short.clone(),
    );
    registry.register(
        "callvault_verify_failures",
        "Scheduled verifications that found an archived object missing or different from its manifest",
        metrics.verify_failures.clone(),
    );
    registry.register(
        "callvault_verified_bytes",
        "Bytes the scheduled verifier re-read from the archive",
        metrics.verified_bytes.clone(),
    );
    registry.register(
        "callvault_participant_ids_skipped",
        "Participant ids of archived chunks left out of the participant index: too long, malformed or beyond 1,000 per chunk",
        metrics.participant_ids_skipped.clone(),
    );
    registry.register(
        "callvault_webhook_unauthorized",
        "Webhook deliveries refused with 401 for a missing or wrong secret or bearer token (Event Grid does not retry them)",
        metrics.webhook_unauthorized.clone(),
    );
    for (name, help, counter) in [
        (
            "callvault_pull_acknowledged",
            "Events received from the Event Grid namespace and acknowledged once committed",
            &metrics.pull_acknowledged,
        ),
        (
            "callvault_pull_rejected",
            "Received events rejected to the subscription's dead letter (quarantined here too)",
            &metrics.pull_rejected,
        ),
        (
            "callvault_pull_released",
            "Received events released for a later delivery because the database failed",
            &metrics.pull_released,
        ),
        (
            "callvault_pull_failures",
            "Failed Event Grid namespace calls and lock tokens a settle action could not settle",
            &metrics.pull_failures,
        ),
        (
            "callvault_queue_messages_deleted",
            "Storage queue messages deleted after their events were committed",
            &metrics.queue_deleted,
        ),
        (
            "callvault_queue_messages_quarantined",
            "Storage queue messages quarantined: received more than ingest.queue.max_dequeue times, or holding no events",
            &metrics.queue_poison,
        ),
        (
            "callvault_queue_failures",
            "Failed storage queue calls",
            &metrics.queue_failures,
        ),
    ] {
        registry.register(name, help, counter.clone());
    }
    registry.register(
        "callvault_retention_skipped",
        "Recordings old enough for retention that a legal hold or store lock kept, counted per run",
        metrics.retention_skipped.clone(),
    );
    let starts: Vec<(String, Counter)> = [
        ("started", &metrics.recording_starts_started),
        ("retried", &metrics.recording_starts_retried),
        ("failed", &metrics.recording_starts_failed),
    ]
    .into_iter()
    .map(|(outcome, counter)| (outcome.to_owned(), counter.clone()))
    .collect();
    registry.register_collector(Box::new(ByLabel {
        name: "callvault_recording_starts",
        help: "Recording starts of established call legs (recording.auto_start) by how the attempt ended; failed ones gave up",
        label: "outcome",
        series: starts,
    }));
    registry.register(
        "callvault_transfer_duration_seconds",
        "Seconds from claim to archived, per archived chunk",
        metrics.transfer.clone(),
    );
    registry
}

/// The gauges of one scrape: whether the database answered and, if it did, what it said.
fn scrape_registry(queue: Option<&QueueGauges>) -> Registry {
    let mut registry = Registry::default();
    registry.register(
        "callvault_database_up",
        "1 when the database answered this scrape's queries, else 0 (the queue gauges are then absent)",
        ConstGauge::new(i64::from(queue.is_some())),
    );
    let Some(queue) = queue else {
        return registry;
    };
    let jobs = crate::queue::JobState::ALL
        .into_iter()
        .map(|state| {
            let count = queue
                .jobs
                .iter()
                .filter(|(s, _)| *s == state)
                .map(|(_, n)| *n)
                .sum::<i64>();
            (state.to_string(), ConstGauge::new(count))
        })
        .collect();
    registry.register_collector(Box::new(ByLabel {
        name: "callvault_jobs",
        help: "Jobs (one per chunk) by state, from the database",
        label: "state",
        series: jobs,
    }));
    registry.register(
        "callvault_oldest_pending_job_age_seconds",
        "Age of the oldest pending job (0 when none is pending)",
        ConstGauge::new(queue.oldest_pending_age_seconds),
    );
    registry.register(
        "callvault_deadline_slack_seconds",
        "Smallest time left before a pending or running job's ACS deletion deadline; negative once past, +Inf when no job is pending",
        ConstGauge::new(queue.deadline_slack_seconds.unwrap_or(f64::INFINITY)),
    );
    registry.register(
        "callvault_jobs_at_risk",
        "Pending or running jobs within admin.deadline_warning_hours of their deadline",
        ConstGauge::new(queue.jobs_at_risk),
    );
    // Read from the database, like the gauges: every replica, and an erasure made with the
    // command line, count the same. Erasures are never undone, so the count only grows.
    let erased = crate::queue::erasures::Origin::ALL
        .into_iter()
        .map(|origin| {
            let count = queue
                .recordings_erased
                .iter()
                .filter(|(by, _)| *by == origin.as_str())
                .map(|(_, n)| *n)
                .sum::<i64>();
            (
                origin.as_str().to_owned(),
                ConstCounter::new(count.max(0) as u64),
            )
        })
        .collect();
    registry.register_collector(Box::new(ByLabel {
        name: "callvault_recordings_erased",
        help: "Recordings erased, by who asked: an operator's request or the retention policy",
        label: "by",
        series: erased,
    }));
    let disabled = queue
        .event_sinks_disabled
        .iter()
        .map(|(sink, off)| (sink.clone(), ConstGauge::new(i64::from(*off))))
        .collect();
    registry.register_collector(Box::new(ByLabel {
        name: "callvault_event_sink_disabled",
        help: "1 when a sink's receiver answered 410 Gone and the sink sends nothing until an operator enables it, else 0",
        label: "sink",
        series: disabled,
    }));
    registry
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::JobState;

    fn gauges() -> QueueGauges {
        QueueGauges {
            jobs: vec![(JobState::Failed, 2), (JobState::Pending, 3)],
            oldest_pending_age_seconds: 12.5,
            deadline_slack_seconds: Some(-30.0),
            jobs_at_risk: 1,
            recordings_erased: vec![("retention", 4)],
            event_sinks_disabled: vec![("gone".into(), true), ("fine".into(), false)],
        }
    }

    /// name{labels} value, as Prometheus parses a sample line.
    fn samples(text: &str) -> Vec<(String, f64)> {
        text.lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
                let value = match value {
                    "+Inf" => f64::INFINITY,
                    other => other
                        .parse()
                        .unwrap_or_else(|_| panic!("bad value in `{line}`")),
                };
                (series.to_owned(), value)
            })
            .collect()
    }

    fn value(text: &str, series: &str) -> f64 {
        samples(text)
            .into_iter()
            .find(|(s, _)| s == series)
            .unwrap_or_else(|| panic!("{series} missing from\n{text}"))
            .1
    }

    #[test]
    fn every_job_state_is_rendered_even_when_the_database_has_none() {
        let text = Metrics::default().render(Some(&gauges()));
        for state in JobState::ALL {
            value(&text, &format!("callvault_jobs{{state=\"{state}\"}}"));
        }
        assert_eq!(value(&text, "callvault_jobs{state=\"pending\"}"), 3.0);
        assert_eq!(value(&text, "callvault_jobs{state=\"archived\"}"), 0.0);
        assert_eq!(value(&text, "callvault_deadline_slack_seconds"), -30.0);
        assert_eq!(
            value(&text, "callvault_oldest_pending_job_age_seconds"),
            12.5
        );
        assert_eq!(value(&text, "callvault_database_up"), 1.0);
    }

    #[test]
    fn the_histogram_is_cumulative_and_ends_with_inf() {
        let metrics = Metrics::default();
        metrics.observe_transfer(0.2);
        metrics.observe_transfer(7.0);
        let text = metrics.render(None);
        assert_eq!(
            value(
                &text,
                "callvault_transfer_duration_seconds_bucket{le=\"0.1\"}"
            ),
            0.0
        );
        assert_eq!(
            value(
                &text,
                "callvault_transfer_duration_seconds_bucket{le=\"0.25\"}"
            ),
            1.0
        );
        assert_eq!(
            value(
                &text,
                "callvault_transfer_duration_seconds_bucket{le=\"10\"}"
            ),
            2.0
        );
        assert_eq!(
            value(
                &text,
                "callvault_transfer_duration_seconds_bucket{le=\"+Inf\"}"
            ),
            2.0
        );
        assert_eq!(
            value(&text, "callvault_transfer_duration_seconds_count"),
            2.0
        );
        assert!((value(&text, "callvault_transfer_duration_seconds_sum") - 7.2).abs() < 0.01);
    }

    #[test]
    fn without_the_database_only_process_counters_are_rendered() {
        let text = Metrics::default().render(None);
        assert_eq!(value(&text, "callvault_database_up"), 0.0);
        assert!(!text.contains("callvault_jobs{"), "{text}");
    }

    #[test]
    fn no_pending_job_means_infinite_slack() {
        let text = Metrics::default().render(Some(&QueueGauges::default()));
        assert_eq!(
            value(&text, "callvault_deadline_slack_seconds"),
            f64::INFINITY
        );
    }

    #[test]
    fn every_family_is_prefixed_and_typed_once() {
        let text = Metrics::default().render(Some(&gauges()));
        let mut families = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap().to_owned();
                assert!(!families.contains(&name), "{name} typed twice");
                families.push(name);
            }
        }
        for (series, _) in samples(&text) {
            assert!(series.starts_with("callvault_"), "{series}");
            let family = series.split('{').next().unwrap();
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| family.strip_suffix(suffix))
                .filter(|base| families.iter().any(|f| f == base))
                .unwrap_or(family);
            assert!(
                families.iter().any(|f| f == base),
                "{series} has no TYPE line"
            );
        }
    }

    /// Each HELP and TYPE line, and each series with its value, order aside.
    fn exposition_lines(text: &str) -> std::collections::BTreeMap<String, Option<f64>> {
        let mut lines: std::collections::BTreeMap<_, _> = samples(text)
            .into_iter()
            .map(|(series, value)| (series, Some(value)))
            .collect();
        for meta in text.lines().filter(|line| line.starts_with("# ")) {
            lines.insert(meta.to_owned(), None);
        }
        lines
    }

    /// Families the hand-written exposition did not have; every other one must be unchanged.
    const FAMILIES_ADDED_SINCE: [&str; 14] = [
        "callvault_participant_ids_skipped_total",
        "callvault_queue_messages_deleted_total",
        "callvault_queue_messages_quarantined_total",
        "callvault_queue_failures_total",
        "callvault_webhook_unauthorized_total",
        "callvault_pull_acknowledged_total",
        "callvault_pull_rejected_total",
        "callvault_pull_released_total",
        "callvault_pull_failures_total",
        "callvault_events_erased_total",
        "callvault_retention_skipped_total",
        "callvault_recordings_erased_total",
        "callvault_event_sink_disabled",
        "callvault_recording_starts_total",
    ];

    #[test]
    fn erasures_are_counted_per_origin_with_every_origin_named() {
        let text = Metrics::default().render(Some(&gauges()));
        assert_eq!(
            value(&text, "callvault_recordings_erased_total{by=\"retention\"}"),
            4.0
        );
        assert_eq!(
            value(&text, "callvault_recordings_erased_total{by=\"request\"}"),
            0.0
        );
        assert!(text.contains("# TYPE callvault_recordings_erased_total counter"));
    }

    #[test]
    fn the_exposition_keeps_the_series_types_and_help_of_the_hand_written_one() {
        let metrics = Metrics::default();
        Metrics::add(&metrics.events_received, 5);
        Metrics::add(&metrics.events_accepted, 3);
        Metrics::add(&metrics.attempts, 4);
        Metrics::add(&metrics.attempts_archived, 2);
        Metrics::add(&metrics.attempts_failed, 1);
        Metrics::add(&metrics.bytes_archived, 2048);
        metrics.bytes_downloaded(4096);
        metrics.observe_transfer(0.2);
        metrics.observe_transfer(7.0);
        // The same process, scraped before `prometheus-client` wrote the exposition.
        let before = include_str!("hand_written_scrape.prom");
        let mut after = exposition_lines(&metrics.render(Some(&gauges())));
        for family in FAMILIES_ADDED_SINCE {
            assert!(
                after.keys().any(|line| line.starts_with(family)),
                "{family} is rendered"
            );
        }
        after.retain(|line, _| {
            let series = line
                .trim_start_matches("# HELP ")
                .trim_start_matches("# TYPE ");
            !FAMILIES_ADDED_SINCE
                .iter()
                .any(|family| series.starts_with(family))
        });
        assert_eq!(after, exposition_lines(before));
    }
}
