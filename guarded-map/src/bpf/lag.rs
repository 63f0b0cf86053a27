//! The distribution of a mirror's lag: a histogram of power-of-two nanosecond buckets, cheap
//! enough to take every change (a bucket index and an increment).

use std::time::Duration;

/// Lag observations in 64 power-of-two buckets of nanoseconds.
#[derive(Clone, Debug)]
pub(super) struct LagHistogram {
    buckets: [u64; 64],
    count: u64,
    max_ns: u64,
}

impl Default for LagHistogram {
    fn default() -> Self {
        LagHistogram {
            buckets: [0; 64],
            count: 0,
            max_ns: 0,
        }
    }
}

impl LagHistogram {
    pub(super) fn record(&mut self, ns: u64) {
        self.buckets[63 - (ns | 1).leading_zeros() as usize] += 1;
        self.count += 1;
        self.max_ns = self.max_ns.max(ns);
    }

    pub(super) fn count(&self) -> u64 {
        self.count
    }

    /// The upper bound of the bucket that holds the `q`-quantile (at most a factor 2 above it),
    /// capped at the largest lag seen; zero when nothing was recorded.
    pub(super) fn quantile(&self, q: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let upper = if i >= 63 { u64::MAX } else { (2u64 << i) - 1 };
                return Duration::from_nanos(upper.min(self.max_ns));
            }
        }
        Duration::from_nanos(self.max_ns)
    }

    pub(super) fn summary(&self) -> Lag {
        Lag {
            count: self.count,
            p50: self.quantile(0.5),
            p99: self.quantile(0.99),
            max: Duration::from_nanos(self.max_ns),
        }
    }
}

/// How long kernel changes took to reach a mirror's guarded map: from the kernel program's
/// timestamp to the change's application.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lag {
    /// Changes measured.
    pub count: u64,
    /// The median (the upper bound of its power-of-two bucket: at most 2x above).
    pub p50: Duration,
    /// The 99th percentile (likewise).
    pub p99: Duration,
    /// The largest.
    pub max: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_fall_in_their_bucket() {
        let mut lag = LagHistogram::default();
        assert_eq!(lag.summary(), Lag::default());
        for ns in 1..=1000u64 {
            lag.record(ns * 1000); // 1 µs to 1 ms
        }
        let s = lag.summary();
        assert_eq!(s.count, 1000);
        assert_eq!(s.max, Duration::from_millis(1));
        // The true median is 500 µs and the true p99 990 µs: each is at most 2x below its bound.
        assert!(
            s.p50 >= Duration::from_micros(500) && s.p50 < Duration::from_micros(1000),
            "{s:?}"
        );
        assert!(
            s.p99 >= Duration::from_micros(990) && s.p99 <= s.max,
            "{s:?}"
        );
    }
}
