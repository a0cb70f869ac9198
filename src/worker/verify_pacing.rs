//! How the scheduled verifier keeps to `verify.bytes_per_hour`. Times are offsets from an
//! origin the caller chooses (the loop uses a monotonic clock), so the rule is tested with
//! made-up times rather than sleeps.
//!
//! The rule: a read of N bytes that starts at t lets the next read start at
//! t + N / bytes_per_hour hours, no earlier. Over any span of T hours the reads started in it
//! total at most bytes_per_hour × T plus the last one read: a recording is read whole, so an
//! hour can hold one recording more than the budget, and the pause after it is that much longer.

use std::time::Duration;

/// What each recording costs beyond its media and metadata: its manifest is read too, and a
/// recording with no bytes must still cost something, or an archive of empty recordings would
/// be re-read without pause.
pub const PER_RECORDING_BYTES: u64 = 64 * 1024;

const HOUR: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct Pacer {
    bytes_per_hour: u64,
    /// Earliest start of the next read; None before the first.
    next_start: Option<Duration>,
    /// The hour the progress counts are for, and the bytes read in it.
    hour_started: Option<Duration>,
    bytes_this_hour: u64,
}

impl Pacer {
    /// `bytes_per_hour` must be positive (0 means the verifier does not run).
    pub fn new(bytes_per_hour: u64) -> Self {
        assert!(bytes_per_hour > 0, "a verifier without a budget is not run");
        Self {
            bytes_per_hour,
            next_start: None,
            hour_started: None,
            bytes_this_hour: 0,
        }
    }

    /// How long to wait at `now` before the next read may start.
    pub fn wait(&self, now: Duration) -> Duration {
        self.next_start
            .map_or(Duration::ZERO, |next| next.saturating_sub(now))
    }

    /// What reading `bytes` (plus the per-recording allowance) takes out of the budget, as time.
    pub fn cost(&self, bytes: u64) -> Duration {
        let charged = u128::from(bytes.saturating_add(PER_RECORDING_BYTES));
        let nanos = charged * HOUR.as_nanos() / u128::from(self.bytes_per_hour);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Records a read of `bytes` that started at `started`.
    pub fn charge(&mut self, started: Duration, bytes: u64) {
        let from = self.next_start.map_or(started, |next| next.max(started));
        self.next_start = Some(from.saturating_add(self.cost(bytes)));
        match self.hour_started {
            Some(hour) if started.saturating_sub(hour) < HOUR => {
                self.bytes_this_hour = self.bytes_this_hour.saturating_add(bytes);
            }
            _ => {
                self.hour_started = Some(started);
                self.bytes_this_hour = bytes;
            }
        }
    }

    /// Bytes read since the current progress hour began (for the logs).
    pub fn bytes_this_hour(&self) -> u64 {
        self.bytes_this_hour
    }

    pub fn bytes_per_hour(&self) -> u64 {
        self.bytes_per_hour
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn the_first_read_starts_at_once_and_the_next_waits_for_its_share_of_the_hour() {
        let mut pacer = Pacer::new(3600 * MIB);
        assert_eq!(pacer.wait(secs(0)), Duration::ZERO);
        // 10 MiB minus the allowance: exactly ten seconds of a 1 MiB-per-second budget.
        pacer.charge(secs(100), 10 * MIB - PER_RECORDING_BYTES);
        assert_eq!(pacer.wait(secs(100)), secs(10));
        assert_eq!(pacer.wait(secs(104)), secs(6));
        assert_eq!(pacer.wait(secs(110)), Duration::ZERO);
        assert_eq!(pacer.wait(secs(500)), Duration::ZERO);
    }

    #[test]
    fn a_read_started_late_is_paced_from_when_it_started() {
        let mut pacer = Pacer::new(3600 * MIB);
        pacer.charge(secs(0), MIB - PER_RECORDING_BYTES);
        // Started 100 s after it was allowed to: the next waits one second from then.
        pacer.charge(secs(101), MIB - PER_RECORDING_BYTES);
        assert_eq!(pacer.wait(secs(101)), secs(1));
    }

    #[test]
    fn a_recording_larger_than_the_budget_is_read_whole_then_paid_for() {
        let mut pacer = Pacer::new(100 * MIB);
        pacer.charge(secs(0), 250 * MIB);
        let wait = pacer.wait(secs(0));
        assert!(wait > secs(9000) && wait < secs(9003), "{wait:?}");
    }

    #[test]
    fn empty_recordings_still_cost_time() {
        let mut pacer = Pacer::new(MIB);
        pacer.charge(secs(0), 0);
        assert_eq!(pacer.wait(secs(0)), secs(225), "64 KiB of 1 MiB an hour");
    }

    #[test]
    fn huge_sizes_do_not_overflow() {
        let mut pacer = Pacer::new(MIB);
        pacer.charge(secs(0), u64::MAX);
        assert!(pacer.wait(secs(0)) > secs(1_000_000_000));
    }

    /// Three simulated hours of reads of mixed sizes, each started as soon as the pacer lets it:
    /// every hour-long window holds at most the budget plus one recording.
    #[test]
    fn every_hour_holds_the_budget_plus_at_most_one_recording() {
        let budget = 500 * MIB;
        let mut pacer = Pacer::new(budget);
        let sizes = [3 * MIB, 40 * MIB, 120 * MIB, 0, 7 * MIB, 64 * MIB];
        let (mut now, mut reads) = (Duration::ZERO, Vec::new());
        for size in sizes.iter().cycle().take(60) {
            now += pacer.wait(now);
            reads.push((now, *size));
            pacer.charge(now, *size);
            // Reading takes a while too.
            now += secs(3);
        }
        assert!(now > secs(3 * 3600), "the simulation spans hours: {now:?}");
        let largest = *sizes.iter().max().unwrap();
        for (start, _) in &reads {
            let in_window: u64 = reads
                .iter()
                .filter(|(at, _)| at >= start && *at < *start + HOUR)
                .map(|(_, size)| size + PER_RECORDING_BYTES)
                .sum();
            assert!(
                in_window <= budget + largest + PER_RECORDING_BYTES,
                "{in_window} bytes in the hour from {start:?}"
            );
        }
        // On average, up to when the next read is allowed, the budget holds exactly.
        let total: u64 = reads.iter().map(|(_, size)| size).sum();
        let hours = (now + pacer.wait(now)).as_secs_f64() / 3600.0;
        assert!(
            (total as f64) / hours <= budget as f64,
            "{total} bytes in {hours} h"
        );
    }

    #[test]
    fn progress_counts_the_bytes_of_the_current_hour() {
        let mut pacer = Pacer::new(3600 * MIB);
        pacer.charge(secs(0), 5);
        pacer.charge(secs(1800), 7);
        assert_eq!(pacer.bytes_this_hour(), 12);
        pacer.charge(secs(3600), 11);
        assert_eq!(pacer.bytes_this_hour(), 11, "a new hour begins");
    }
}
