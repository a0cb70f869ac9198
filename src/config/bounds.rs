//! Numeric settings bounded so that no value can overflow the date and duration arithmetic it
//! feeds (`chrono::Duration::hours` panics past ±2^63 ms) or stall the service for days.

use std::ops::RangeInclusive;

use super::{ConfigError, Settings, invalid};

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;
/// 30 days: far beyond any ACS retention, far below any arithmetic limit.
pub(crate) const MAX_HOURS: u64 = 720;

fn within(
    key: &'static str,
    value: u64,
    range: RangeInclusive<u64>,
    unit: &str,
    why: &str,
) -> Result<(), ConfigError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!(
                "is {value}; it must be between {} and {} {unit}{why}",
                range.start(),
                range.end()
            ),
        ))
    }
}

/// Checks every duration and count that arithmetic depends on.
pub(crate) fn check(settings: &Settings) -> Result<(), ConfigError> {
    within(
        "acs.retention_hours",
        settings.acs.retention_hours,
        1..=MAX_HOURS,
        "hours",
        " (ACS keeps recordings 24 hours)",
    )?;
    within(
        "acs.request_timeout_secs",
        settings.acs.request_timeout_secs,
        1..=3600,
        "seconds",
        "",
    )?;
    within(
        "admin.deadline_warning_hours",
        settings.admin.deadline_warning_hours,
        0..=MAX_HOURS,
        "hours",
        "",
    )?;
    within(
        "audit.flush_interval_secs",
        settings.audit.flush_interval_secs,
        1..=86_400,
        "seconds",
        "",
    )?;
    within(
        "admin.quarantine_retention_days",
        settings.admin.quarantine_retention_days,
        1..=3650,
        "days",
        " (0 would delete every entry at the next hourly purge)",
    )?;
    within(
        "admin.export_keep_hours",
        settings.admin.export_keep_hours,
        1..=MAX_HOURS,
        "hours",
        " (an export holds personal data: keep it only until it is handed over)",
    )?;
    let worker = &settings.worker;
    within(
        "worker.concurrency",
        worker.concurrency as u64,
        1..=1024,
        "transfers",
        "",
    )?;
    within(
        "worker.max_attempts",
        worker.max_attempts.into(),
        1..=1000,
        "attempts",
        "",
    )?;
    within(
        "worker.backoff_initial_ms",
        worker.backoff_initial_ms,
        1..=HOUR_MS,
        "milliseconds",
        "",
    )?;
    within(
        "worker.backoff_max_ms",
        worker.backoff_max_ms,
        worker.backoff_initial_ms..=DAY_MS,
        "milliseconds",
        " (from worker.backoff_initial_ms to one day)",
    )?;
    within(
        "worker.lease_secs",
        worker.lease_secs,
        1..=3600,
        "seconds",
        "",
    )?;
    within(
        "worker.poll_interval_ms",
        worker.poll_interval_ms,
        1..=HOUR_MS,
        "milliseconds",
        "",
    )?;
    check_retention(&settings.retention)?;
    check_verify(&settings.verify)
}

/// 100 years is past any retention law; past it the cutoff arithmetic is still far from overflow.
pub(crate) const MAX_RETENTION_DAYS: u64 = 36_500;

fn check_retention(retention: &super::RetentionSettings) -> Result<(), ConfigError> {
    if retention.delete_after_days != 0 {
        within(
            "retention.delete_after_days",
            retention.delete_after_days,
            1..=MAX_RETENTION_DAYS,
            "days",
            ", or 0 to keep recordings for ever",
        )?;
    }
    within(
        "retention.batch_size",
        retention.batch_size,
        1..=10_000,
        "recordings",
        "",
    )?;
    within(
        "retention.interval_minutes",
        retention.interval_minutes,
        1..=7 * 24 * 60,
        "minutes",
        "",
    )
}

/// Below 1 MiB an hour one recording would take days to re-read; above 1 PiB an hour is no
/// budget at all.
pub(crate) const MIN_VERIFY_BYTES_PER_HOUR: u64 = 1 << 20;
pub(crate) const MAX_VERIFY_BYTES_PER_HOUR: u64 = 1 << 50;

fn check_verify(verify: &super::VerifySettings) -> Result<(), ConfigError> {
    if verify.bytes_per_hour != 0 {
        within(
            "verify.bytes_per_hour",
            verify.bytes_per_hour,
            MIN_VERIFY_BYTES_PER_HOUR..=MAX_VERIFY_BYTES_PER_HOUR,
            "bytes",
            " (1 MiB to 1 PiB an hour), or 0 to turn the verifier off",
        )?;
    }
    within(
        "verify.duration_tolerance_ms",
        verify.duration_tolerance_ms,
        0..=HOUR_MS,
        "milliseconds",
        "",
    )
}
