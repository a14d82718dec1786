//! Wall-clock time for the audit records: the RTC's seconds made fine-grained and
//! monotonic with the generic timer's counter.
//!
//! The PL031 counts whole seconds. At boot Janus reads it once with the counter
//! ([`WallClock::new`]); afterwards the time is that second plus the counter's
//! progress. [`WallClock::observe_rtc`] lets a later RTC reading pull the clock
//! forward when the counter-derived time has fallen more than a second behind,
//! never back: [`WallClock::now`] never decreases.

use crate::channel::fs::Timespec;

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// The clock: a base time at a base counter value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WallClock {
    base: Timespec,
    base_counter: u64,
    frequency_hz: u64,
    last: Timespec,
}

impl WallClock {
    /// A clock reading `rtc_seconds` when the counter read `counter`, the counter
    /// ticking at `frequency_hz` (`CNTFRQ_EL0`; 0 is taken as 1 Hz).
    pub fn new(rtc_seconds: u64, counter: u64, frequency_hz: u64) -> WallClock {
        let base = Timespec {
            sec: rtc_seconds,
            nsec: 0,
        };
        WallClock {
            base,
            base_counter: counter,
            frequency_hz: frequency_hz.max(1),
            last: base,
        }
    }

    /// The time at counter value `counter`; never earlier than a previous answer.
    pub fn now(&mut self, counter: u64) -> Timespec {
        let time = self.at(counter);
        if time > self.last {
            self.last = time;
        }
        self.last
    }

    /// The counter-derived time at `counter`, without the monotonic clamp.
    fn at(&self, counter: u64) -> Timespec {
        let ticks = counter.saturating_sub(self.base_counter);
        let seconds = ticks / self.frequency_hz;
        let rest = ticks % self.frequency_hz;
        // rest < frequency <= u64::MAX, so the product fits in u128.
        let nanos = u128::from(rest) * u128::from(NANOS_PER_SECOND) / u128::from(self.frequency_hz);
        let nanos = u64::try_from(nanos).unwrap_or(NANOS_PER_SECOND - 1);
        let total_nanos = u64::from(self.base.nsec) + nanos;
        Timespec {
            sec: self
                .base
                .sec
                .saturating_add(seconds)
                .saturating_add(total_nanos / NANOS_PER_SECOND),
            nsec: (total_nanos % NANOS_PER_SECOND) as u32,
        }
    }

    /// Takes a new RTC reading at `counter`: if the clock is more than a second
    /// behind it, it jumps forward to that second; it never goes back.
    pub fn observe_rtc(&mut self, rtc_seconds: u64, counter: u64) {
        let current = self.now(counter);
        if rtc_seconds > current.sec.saturating_add(1) {
            self.base = Timespec {
                sec: rtc_seconds,
                nsec: 0,
            };
            self.base_counter = counter;
            self.last = self.base;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_adds_fractions_to_the_rtc_second() {
        let mut clock = WallClock::new(1_000, 500, 100);
        assert_eq!(
            clock.now(500),
            Timespec {
                sec: 1_000,
                nsec: 0
            }
        );
        assert_eq!(
            clock.now(550),
            Timespec {
                sec: 1_000,
                nsec: 500_000_000
            }
        );
        assert_eq!(
            clock.now(850),
            Timespec {
                sec: 1_003,
                nsec: 500_000_000
            }
        );
    }

    #[test]
    fn time_never_goes_back() {
        let mut clock = WallClock::new(1_000, 500, 100);
        let later = clock.now(900);
        assert_eq!(clock.now(600), later);
        assert_eq!(clock.now(0), later);
        clock.observe_rtc(10, 900);
        assert_eq!(clock.now(900), later);
    }

    #[test]
    fn a_far_ahead_rtc_pulls_the_clock_forward() {
        let mut clock = WallClock::new(1_000, 0, 100);
        clock.observe_rtc(1_001, 50);
        assert_eq!(clock.now(50).sec, 1_000);
        clock.observe_rtc(2_000, 100);
        assert_eq!(
            clock.now(100),
            Timespec {
                sec: 2_000,
                nsec: 0
            }
        );
        assert_eq!(
            clock.now(150),
            Timespec {
                sec: 2_000,
                nsec: 500_000_000
            }
        );
    }

    #[test]
    fn extreme_values_saturate() {
        let mut clock = WallClock::new(u64::MAX, 0, 0);
        assert_eq!(clock.now(u64::MAX).sec, u64::MAX);
        let mut clock = WallClock::new(0, 0, u64::MAX);
        assert!(clock.now(u64::MAX - 1).nsec < 1_000_000_000);
    }
}
