//! The workloads: the three of conc-map-bench, run by `bustle`, and two of ours (pure read and
//! hot keys), run by [`crate::drive`] because `bustle` draws keys uniformly and always writes.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// One workload of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Workload {
    /// conc-map-bench "ReadHeavy": 98 % read, 1 % insert, 1 % remove; prefilled to 75 %.
    ReadHeavy,
    /// conc-map-bench "Exchange": 10 % read, 40 % insert, 40 % remove, 10 % update; prefilled to 75 %.
    Exchange,
    /// conc-map-bench "RapidGrow": 5 % read, 80 % insert, 5 % remove, 10 % update; starts empty.
    RapidGrow,
    /// Lookups only, of keys that are all present, uniformly drawn: a lookup table built once.
    PureRead,
    /// 90 % lookups, 10 % in-place increments, keys Zipf-distributed (exponent 1): a few hot keys
    /// take most of the traffic, as counters and sessions of popular clients do.
    HotKey,
}

impl Workload {
    /// Every workload, in the order of the report.
    pub const ALL: [Workload; 5] = [
        Workload::ReadHeavy,
        Workload::Exchange,
        Workload::RapidGrow,
        Workload::PureRead,
        Workload::HotKey,
    ];

    /// The name used on the command line, in the table and in the results file.
    pub fn name(self) -> &'static str {
        match self {
            Workload::ReadHeavy => "ReadHeavy",
            Workload::Exchange => "Exchange",
            Workload::RapidGrow => "RapidGrow",
            Workload::PureRead => "PureRead",
            Workload::HotKey => "HotKey",
        }
    }

    /// The operation mix, for the workloads `bustle` runs.
    pub fn bustle_mix(self) -> Option<bustle::Mix> {
        let mix = |read, insert, remove, update| bustle::Mix {
            read,
            insert,
            remove,
            update,
            upsert: 0,
        };
        match self {
            Workload::ReadHeavy => Some(mix(98, 1, 1, 0)),
            Workload::Exchange => Some(mix(10, 40, 40, 10)),
            Workload::RapidGrow => Some(mix(5, 80, 5, 10)),
            Workload::PureRead | Workload::HotKey => None,
        }
    }

    /// The fraction of the capacity filled before the clock starts.
    pub fn prefill(self) -> f64 {
        match self {
            Workload::RapidGrow => 0.0,
            _ => 0.75,
        }
    }

    /// Operations per run as a multiple of the capacity. Each run must last long enough (tenths of
    /// a second at the default capacity) for the clock and the scheduler not to matter; the cheaper
    /// the operations, the more of them. (At one multiple, a pure-read run lasted ~10 ms here and
    /// its figures varied twofold between identical maps.)
    pub fn operations(self) -> f64 {
        match self {
            Workload::PureRead => 32.0,
            Workload::ReadHeavy | Workload::HotKey => 8.0,
            Workload::Exchange => 4.0,
            Workload::RapidGrow => 2.0,
        }
    }

    /// The fraction of operations that write.
    pub fn write_fraction(self) -> f64 {
        match self.bustle_mix() {
            Some(mix) => f64::from(100 - mix.read) / 100.0,
            None if self == Workload::HotKey => 0.1,
            None => 0.0,
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Workload {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<_> = Workload::ALL.iter().map(|w| w.name()).collect();
                format!(
                    "unknown workload `{s}` (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

/// One measured run: a workload at a size on a number of threads.
#[derive(Debug, Clone, Copy)]
pub struct Job {
    /// What runs.
    pub workload: Workload,
    /// Worker threads.
    pub threads: usize,
    /// The capacity is `2^capacity_log2` entries (the prefill and the operation count follow it).
    pub capacity_log2: u8,
    /// Seeds the keys and the operation order: every contender of a round sees the same ones.
    pub seed: u64,
}

impl Job {
    /// The capacity in entries.
    pub fn capacity(&self) -> usize {
        1 << self.capacity_log2
    }

    /// Entries present before the clock starts.
    pub fn prefilled(&self) -> usize {
        (self.capacity() as f64 * self.workload.prefill()) as usize
    }

    /// Operations in the run, over all threads.
    pub fn operations(&self) -> usize {
        (self.capacity() as f64 * self.workload.operations()) as usize
    }
}
