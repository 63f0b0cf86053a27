//! The clock that times lock waits and `Rcu` publishes.
//!
//! Where the CPU has an invariant time-stamp counter, a reading is that counter (through
//! `quanta`, which calibrates it against the OS clock once per process): a few instructions,
//! where std's `Instant` calls `clock_gettime`, about 65 instructions a reading, so that the two
//! readings that time a publish were 3 % of an `Rcu` write's instructions (BENCHMARKS.md, "Write
//! paths"). Elsewhere `quanta` reads the OS clock; under Miri and loom, which cannot run the
//! counter instruction, so does this module.

use std::time::Duration;

#[cfg(not(any(miri, guarded_map_loom)))]
mod imp {
    use std::sync::OnceLock;

    /// The process's clock, calibrated at its first use (well under a millisecond on a quiet
    /// machine, at most 200 ms).
    fn clock() -> &'static quanta::Clock {
        static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
        CLOCK.get_or_init(quanta::Clock::new)
    }

    /// A reading: counter ticks.
    #[derive(Clone, Copy)]
    pub(crate) struct Reading(u64);

    impl Reading {
        #[inline]
        pub(crate) fn now() -> Self {
            Reading(clock().raw())
        }

        #[inline]
        pub(crate) fn nanos_since(self) -> u64 {
            let clock = clock();
            clock.delta_as_nanos(self.0, clock.raw())
        }
    }

    pub(crate) fn calibrate() {
        clock();
    }
}

#[cfg(any(miri, guarded_map_loom))]
mod imp {
    use std::time::Instant;

    #[derive(Clone, Copy)]
    pub(crate) struct Reading(Instant);

    impl Reading {
        pub(crate) fn now() -> Self {
            Reading(Instant::now())
        }

        pub(crate) fn nanos_since(self) -> u64 {
            u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
        }
    }

    pub(crate) fn calibrate() {}
}

use imp::Reading;

/// Calibrates the clock now, so that the first timed operation does not pay for it.
pub(crate) fn calibrate() {
    imp::calibrate();
}

/// A point in time to measure from.
#[derive(Clone, Copy)]
pub(crate) struct Since(Reading);

impl Since {
    #[inline]
    pub(crate) fn now() -> Self {
        Since(Reading::now())
    }

    /// Nanoseconds since this point (zero if the counter went back, as it may between cores).
    #[inline]
    pub(crate) fn nanos(self) -> u64 {
        self.0.nanos_since()
    }

    /// The time since this point.
    pub(crate) fn elapsed(self) -> Duration {
        Duration::from_nanos(self.nanos())
    }
}

#[cfg(test)]
mod tests {
    use super::Since;
    use std::time::{Duration, Instant};

    #[test]
    fn measures_what_the_os_clock_measures() {
        // A calibration off by more than 20 % fails every attempt; a thread preempted between
        // two readings (a loaded machine) fails one.
        let attempts: Vec<(Duration, Duration)> = (0..5)
            .map(|_| {
                let os = Instant::now();
                let ours = Since::now();
                std::thread::sleep(Duration::from_millis(20));
                (ours.elapsed(), os.elapsed())
            })
            .collect();
        assert!(
            attempts
                .iter()
                .any(|&(ours, os)| ours >= os.mul_f64(0.8) && ours <= os.mul_f64(1.2)),
            "{attempts:?}"
        );
    }
}
