//! Prometheus text exposition (format 0.0.4) of the process counters and queue gauges.

use std::fmt::Write;

use super::{Metrics, QueueGauges};

impl Metrics {
    /// Prometheus text exposition (version 0.0.4) of the counters and, when the database
    /// answered, of `queue`.
    pub fn render(&self, queue: Option<&QueueGauges>) -> String {
        let mut out = Exposition::default();
        let events = [
            (
                "received",
                &self.events_received,
                "Events in webhook deliveries, of any type.",
            ),
            (
                "accepted",
                &self.events_accepted,
                "RecordingFileStatusUpdated and RecordingStateChanged events stored as work.",
            ),
            (
                "duplicate",
                &self.events_duplicate,
                "Events whose id was already seen (redeliveries).",
            ),
            (
                "quarantined",
                &self.events_quarantined,
                "Events stored in quarantine with a reason.",
            ),
            (
                "unknown_type",
                &self.events_unknown_type,
                "Events of types callvault does not act on.",
            ),
        ];
        for (name, counter, help) in events {
            out.family(&format!("callvault_events_{name}_total"), "counter", help);
            out.sample(
                &format!("callvault_events_{name}_total"),
                "",
                Self::get(counter) as f64,
            );
        }

        out.family(
            "callvault_attempts_started_total",
            "counter",
            "Transfer attempts started by this process.",
        );
        out.sample(
            "callvault_attempts_started_total",
            "",
            Self::get(&self.attempts) as f64,
        );
        out.family(
            "callvault_attempts_total",
            "counter",
            "Finished transfer attempts by outcome.",
        );
        for (outcome, counter) in [
            ("archived", &self.attempts_archived),
            ("retried", &self.attempts_retried),
            ("failed", &self.attempts_failed),
            ("expired", &self.attempts_expired),
        ] {
            out.sample(
                "callvault_attempts_total",
                &format!("outcome=\"{outcome}\""),
                Self::get(counter) as f64,
            );
        }

        out.family(
            "callvault_archived_bytes_total",
            "counter",
            "Media and metadata bytes of chunks archived by this process.",
        );
        out.sample(
            "callvault_archived_bytes_total",
            "",
            Self::get(&self.bytes_archived) as f64,
        );
        out.family(
            "callvault_downloaded_bytes_total",
            "counter",
            "Media bytes received from ACS, including attempts that later failed.",
        );
        out.sample(
            "callvault_downloaded_bytes_total",
            "",
            Self::get(&self.bytes_downloaded) as f64,
        );

        let (buckets, sum, count) = self.transfer_histogram();
        let histogram = "callvault_transfer_duration_seconds";
        out.family(
            histogram,
            "histogram",
            "Seconds from claim to archived, per archived chunk.",
        );
        for (bound, cumulative) in buckets {
            out.sample(
                &format!("{histogram}_bucket"),
                &format!("le=\"{bound}\""),
                cumulative as f64,
            );
        }
        out.sample(&format!("{histogram}_bucket"), "le=\"+Inf\"", count as f64);
        out.sample(&format!("{histogram}_sum"), "", sum);
        out.sample(&format!("{histogram}_count"), "", count as f64);

        out.family("callvault_database_up", "gauge", "1 when the database answered this scrape's queries, else 0 (the queue gauges are then absent).");
        out.sample(
            "callvault_database_up",
            "",
            if queue.is_some() { 1.0 } else { 0.0 },
        );
        if let Some(queue) = queue {
            render_queue(&mut out, queue);
        }
        out.text
    }
}

fn render_queue(out: &mut Exposition, queue: &QueueGauges) {
    out.family(
        "callvault_jobs",
        "gauge",
        "Jobs (one per chunk) by state, from the database.",
    );
    for state in crate::queue::JobState::ALL {
        let count = queue
            .jobs
            .iter()
            .filter(|(s, _)| *s == state)
            .map(|(_, n)| *n)
            .sum::<i64>();
        out.sample(
            "callvault_jobs",
            &format!("state=\"{state}\""),
            count as f64,
        );
    }
    out.family(
        "callvault_oldest_pending_job_age_seconds",
        "gauge",
        "Age of the oldest pending job (0 when none is pending).",
    );
    out.sample(
        "callvault_oldest_pending_job_age_seconds",
        "",
        queue.oldest_pending_age_seconds,
    );
    out.family("callvault_deadline_slack_seconds", "gauge", "Smallest time left before a pending or running job's ACS deletion deadline; negative once past, +Inf when no job is pending.");
    out.sample(
        "callvault_deadline_slack_seconds",
        "",
        queue.deadline_slack_seconds.unwrap_or(f64::INFINITY),
    );
    out.family(
        "callvault_jobs_at_risk",
        "gauge",
        "Pending or running jobs within admin.deadline_warning_hours of their deadline.",
    );
    out.sample("callvault_jobs_at_risk", "", queue.jobs_at_risk as f64);
}

/// A minimal Prometheus text writer: one HELP and TYPE line per family, then its samples.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &str, value: f64) {
        let value = format_value(value);
        let _ = if labels.is_empty() {
            writeln!(self.text, "{name} {value}")
        } else {
            writeln!(self.text, "{name}{{{labels}}} {value}")
        };
    }
}

/// Prometheus spells infinities `+Inf` / `-Inf`; integers are written without a fraction.
fn format_value(value: f64) -> String {
    if value == f64::INFINITY {
        "+Inf".into()
    } else if value == f64::NEG_INFINITY {
        "-Inf".into()
    } else if value.is_nan() {
        "NaN".into()
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
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
}
