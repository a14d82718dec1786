//! Rate limits for the reports a personality can make Janus print: a short
//! burst, then a few lines a second, and a count of what was left unsaid.
//!
//! Each personality has one [`ReportLimiter`] with a token bucket per
//! [`Cause`]. A report is shown while its bucket has a token; otherwise it is
//! only counted, which costs a lock and an addition, so that a guest that traps
//! in a loop makes Janus spend no more time on the console than on the traps.
//! The next report shown of that cause is preceded by a summary of how many
//! were suppressed, and [`ReportLimiter::due_summaries`] gives the summaries
//! that are owed once the flood has stopped (the console's timer asks for them
//! at [`ReportLimiter::next_due`]). Totals per cause stay for the statistics.

use alloc::string::{String, ToString};
use core::fmt;

/// What made a personality trigger a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// An SMCCC call Janus does not know.
    UnknownCall,
    /// A call Janus refused (bad arguments: CPU_ON of a CPU it lacks, a
    /// console write outside its RAM, ...).
    RefusedCall,
    /// A memory access Janus refused (data or instruction abort injected).
    RefusedAccess,
    /// An instruction Janus does not emulate (undefined instruction injected).
    Undefined,
    /// An access to a device register that is not there or of the wrong
    /// width (read as zero, write ignored).
    DeviceRegister,
}

/// How many causes there are.
pub const CAUSES: usize = 5;

impl Cause {
    /// Every cause, in index order.
    pub const ALL: [Cause; CAUSES] = [
        Cause::UnknownCall,
        Cause::RefusedCall,
        Cause::RefusedAccess,
        Cause::Undefined,
        Cause::DeviceRegister,
    ];

    /// The cause's name in summaries and statistics.
    pub const fn name(self) -> &'static str {
        match self {
            Cause::UnknownCall => "unknown-call",
            Cause::RefusedCall => "refused-call",
            Cause::RefusedAccess => "refused-access",
            Cause::Undefined => "undefined-instruction",
            Cause::DeviceRegister => "device-register",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// Reports of one cause shown at once before the rate applies.
pub const BURST: u64 = 10;
/// Reports of one cause shown per second once the burst is spent.
pub const PER_SECOND: u64 = 2;

/// Whether to print a report now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Print it, after a summary line if `suppressed` is not 0.
    Show {
        /// Reports of this cause suppressed since the last one shown.
        suppressed: u64,
    },
    /// Count it only. `wake_at` is the counter value at which a summary
    /// will be owed, given with the first report suppressed since the last
    /// summary (so that the caller arms a timer once, not at every report).
    Suppress {
        /// When [`ReportLimiter::due_summaries`] will have this one's count.
        wake_at: Option<u64>,
    },
}

/// One cause's bucket and counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Bucket {
    /// Credit in counter ticks: a report shown costs `interval` of them, and
    /// at most `BURST` reports' worth builds up.
    credit: u64,
    /// Counter value when `credit` was last brought up to date.
    updated: u64,
    /// Reports not shown since the last one shown or summarised.
    suppressed: u64,
    /// Every report of this cause.
    total: u64,
}

/// The report rate limits of one personality.
#[derive(Clone, Debug)]
pub struct ReportLimiter {
    buckets: [Bucket; CAUSES],
    /// Counter ticks between two reports at the steady rate.
    interval: u64,
}

impl ReportLimiter {
    /// Limits for a counter running at `frequency` Hz, starting at counter
    /// value `now` with full bursts.
    pub fn new(frequency: u64, now: u64) -> Self {
        let interval = (frequency / PER_SECOND).max(1);
        let full = Bucket {
            credit: interval.saturating_mul(BURST),
            updated: now,
            suppressed: 0,
            total: 0,
        };
        ReportLimiter {
            buckets: [full; CAUSES],
            interval,
        }
    }

    /// Counts a report of `cause` at counter value `now` and says whether to show it.
    pub fn admit(&mut self, cause: Cause, now: u64) -> Verdict {
        let interval = self.interval;
        let Some(bucket) = self.buckets.get_mut(cause.index()) else {
            return Verdict::Suppress { wake_at: None };
        };
        bucket.total = bucket.total.saturating_add(1);
        refill(bucket, interval, now);
        if bucket.credit >= interval {
            bucket.credit -= interval;
            Verdict::Show {
                suppressed: core::mem::take(&mut bucket.suppressed),
            }
        } else {
            bucket.suppressed = bucket.suppressed.saturating_add(1);
            let wake_at = (bucket.suppressed == 1).then(|| {
                bucket
                    .updated
                    .saturating_add(interval.saturating_sub(bucket.credit))
            });
            Verdict::Suppress { wake_at }
        }
    }

    /// The summaries owed at counter value `now`: each cause with suppressed
    /// reports whose bucket has a token again (which the summary spends), with
    /// its count, which starts again from 0.
    pub fn due_summaries(&mut self, now: u64) -> impl Iterator<Item = (Cause, u64)> + '_ {
        let interval = self.interval;
        Cause::ALL
            .into_iter()
            .zip(self.buckets.iter_mut())
            .filter_map(move |(cause, bucket)| {
                if bucket.suppressed == 0 {
                    return None;
                }
                refill(bucket, interval, now);
                if bucket.credit < interval {
                    return None;
                }
                bucket.credit -= interval;
                Some((cause, core::mem::take(&mut bucket.suppressed)))
            })
    }

    /// Every suppressed count, whatever the rate (the personality stopped, or
    /// the board powers off: nothing is owed after this), counts back to 0.
    pub fn take_all_summaries(&mut self) -> impl Iterator<Item = (Cause, u64)> + '_ {
        Cause::ALL
            .into_iter()
            .zip(self.buckets.iter_mut())
            .filter_map(|(cause, bucket)| {
                let suppressed = core::mem::take(&mut bucket.suppressed);
                (suppressed != 0).then_some((cause, suppressed))
            })
    }

    /// The counter value at which a summary will be owed, if one is waiting.
    pub fn next_due(&self) -> Option<u64> {
        self.buckets
            .iter()
            .filter(|bucket| bucket.suppressed != 0)
            .map(|bucket| {
                let missing = self.interval.saturating_sub(bucket.credit);
                bucket.updated.saturating_add(missing)
            })
            .min()
    }

    /// Every report of `cause` so far, shown or not.
    pub fn total(&self, cause: Cause) -> u64 {
        self.buckets
            .get(cause.index())
            .map_or(0, |bucket| bucket.total)
    }

    /// Reports of `cause` suppressed and not yet summarised.
    pub fn suppressed(&self, cause: Cause) -> u64 {
        self.buckets
            .get(cause.index())
            .map_or(0, |bucket| bucket.suppressed)
    }
}

/// The line (without Janus' prefix) that says how many reports of `cause`
/// personality `name` made that were not shown.
#[derive(Clone, Copy, Debug)]
pub struct Summary<'a> {
    /// The personality.
    pub name: &'a str,
    /// What it did.
    pub cause: Cause,
    /// How many times, not shown.
    pub count: u64,
}

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} more {} reports suppressed",
            self.name,
            self.count,
            self.cause.name()
        )
    }
}

/// [`Summary`] as a string.
pub fn summary(name: &str, cause: Cause, count: u64) -> String {
    Summary { name, cause, count }.to_string()
}

/// Adds the credit earned since the bucket was last brought up to date, up
/// to a full burst. A counter that went backwards earns nothing.
fn refill(bucket: &mut Bucket, interval: u64, now: u64) {
    let earned = now.saturating_sub(bucket.updated);
    let full = interval.saturating_mul(BURST);
    bucket.credit = bucket.credit.saturating_add(earned).min(full);
    bucket.updated = bucket.updated.max(now);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1 kHz counter: a report every 500 ticks at the steady rate.
    const HZ: u64 = 1000;

    fn shown(limiter: &mut ReportLimiter, cause: Cause, now: u64, count: u64) -> u64 {
        (0..count)
            .filter(|_| matches!(limiter.admit(cause, now), Verdict::Show { .. }))
            .count() as u64
    }

    #[test]
    fn a_burst_is_shown_then_reports_are_counted() {
        let mut limiter = ReportLimiter::new(HZ, 0);
        assert_eq!(shown(&mut limiter, Cause::UnknownCall, 0, BURST), BURST);
        // The first one suppressed says when its summary falls due, the next ones do not.
        assert_eq!(
            limiter.admit(Cause::UnknownCall, 0),
            Verdict::Suppress { wake_at: Some(500) }
        );
        assert_eq!(
            limiter.admit(Cause::UnknownCall, 0),
            Verdict::Suppress { wake_at: None }
        );
        assert_eq!(shown(&mut limiter, Cause::UnknownCall, 0, 98), 0);
        assert_eq!(limiter.suppressed(Cause::UnknownCall), 100);
        assert_eq!(limiter.total(Cause::UnknownCall), BURST + 100);
    }

    #[test]
    fn the_steady_rate_is_per_second_and_the_next_shown_carries_the_count() {
        let mut limiter = ReportLimiter::new(HZ, 0);
        shown(&mut limiter, Cause::RefusedAccess, 0, 50);
        // 499 ticks later the next token is not there yet.
        assert_eq!(
            limiter.admit(Cause::RefusedAccess, 499),
            Verdict::Suppress { wake_at: None }
        );
        assert_eq!(
            limiter.admit(Cause::RefusedAccess, 500),
            Verdict::Show { suppressed: 41 }
        );
        // Then one every 500 ticks: at 1,000, 1,500, ... 10,000.
        let mut count = 0;
        for now in (501..10_501).step_by(10) {
            count += shown(&mut limiter, Cause::RefusedAccess, now, 1);
        }
        assert_eq!(count, 19);
    }

    #[test]
    fn the_summary_names_the_personality_the_cause_and_the_count() {
        assert_eq!(
            summary("work", Cause::UnknownCall, 199_990),
            "work: 199990 more unknown-call reports suppressed"
        );
    }

    #[test]
    fn causes_are_limited_apart() {
        let mut limiter = ReportLimiter::new(HZ, 0);
        shown(&mut limiter, Cause::UnknownCall, 0, 100);
        assert_eq!(
            limiter.admit(Cause::RefusedAccess, 0),
            Verdict::Show { suppressed: 0 }
        );
    }

    #[test]
    fn summaries_fall_due_when_a_token_is_back_and_add_up() {
        let mut limiter = ReportLimiter::new(HZ, 0);
        shown(&mut limiter, Cause::UnknownCall, 0, 1000);
        assert_eq!(limiter.next_due(), Some(500));
        assert_eq!(limiter.due_summaries(499).count(), 0);
        let due: alloc::vec::Vec<_> = limiter.due_summaries(500).collect();
        assert_eq!(due, [(Cause::UnknownCall, 990)]);
        assert_eq!(limiter.next_due(), None);
        assert_eq!(limiter.due_summaries(10_000).count(), 0);
    }

    #[test]
    fn take_all_summaries_ignores_the_rate() {
        let mut limiter = ReportLimiter::new(HZ, 0);
        shown(&mut limiter, Cause::Undefined, 0, 12);
        shown(&mut limiter, Cause::DeviceRegister, 0, 11);
        let all: alloc::vec::Vec<_> = limiter.take_all_summaries().collect();
        assert_eq!(all, [(Cause::Undefined, 2), (Cause::DeviceRegister, 1)]);
        assert_eq!(limiter.take_all_summaries().count(), 0);
    }

    #[test]
    fn shown_plus_summarised_is_the_total() {
        let mut limiter = ReportLimiter::new(HZ, 0);
        let mut accounted = 0;
        for now in 0..200_000u64 {
            if let Verdict::Show { suppressed } = limiter.admit(Cause::UnknownCall, now / 20) {
                accounted += 1 + suppressed;
            }
        }
        accounted += limiter
            .take_all_summaries()
            .map(|(_, count)| count)
            .sum::<u64>();
        assert_eq!(accounted, 200_000);
        assert_eq!(limiter.total(Cause::UnknownCall), 200_000);
    }

    #[test]
    fn a_counter_going_backwards_earns_nothing() {
        let mut limiter = ReportLimiter::new(HZ, 5_000);
        shown(&mut limiter, Cause::UnknownCall, 5_000, 20);
        assert!(matches!(
            limiter.admit(Cause::UnknownCall, 0),
            Verdict::Suppress { .. }
        ));
    }
}
