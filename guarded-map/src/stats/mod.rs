//! Per-map statistics: what [`GuardedMap::stats`](crate::GuardedMap::stats) and the registry report.
//!
//! Counting happens on the hot path in per-thread slots ([`slots`]), or in state a backend keeps of
//! its own ([`kept`]); this module holds the public, plain-data view of those counts.

mod attach;
pub(crate) mod hot_keys;
pub(crate) mod kept;
pub(crate) mod sink;
pub(crate) mod slots;
mod table;

pub(crate) use attach::{Attached, Attachment};
pub use hot_keys::HotKey;
pub(crate) use kept::{Entered, Kept, PublishCounts, ReadCounters, WriteCounts, Wrote};
pub use slots::LastSwitch;
pub(crate) use slots::{Counts, MapStats, Recorder};
pub(crate) use table::Counter;
pub use table::Stats;

impl Stats {
    /// Keyed reads that found their entry.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Users: HashMap<u32, u32>, sharded);
    ///
    /// let users: GuardedMap<u32, u32, Users> = GuardedMap::new();
    /// users.insert(1, 1);
    /// users.update(&1, |n| *n += 1);
    /// users.get_cloned(&1);
    /// users.get_cloned(&2);
    /// assert_eq!(users.stats().hits(), 1);
    /// ```
    pub fn hits(&self) -> u64 {
        self.gets - self.misses
    }

    /// Writes of every kind (`inserts + updates + removes + retains + clears`).
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Users: HashMap<u32, u32>, sharded);
    ///
    /// let users: GuardedMap<u32, u32, Users> = GuardedMap::new();
    /// users.insert(1, 1);
    /// users.update(&1, |n| *n += 1);
    /// users.get_cloned(&1);
    /// users.get_cloned(&2);
    /// assert_eq!(users.stats().writes(), 2);
    /// ```
    pub fn writes(&self) -> u64 {
        self.inserts + self.updates + self.removes + self.retains + self.clears
    }
}

impl Stats {
    /// Entries over capacity: how full the tables are, from 0 to 1 (0 for a map with no capacity).
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Users: HashMap<u32, u32>, sharded);
    ///
    /// let users: GuardedMap<u32, u32, Users> = GuardedMap::with_capacity(1_000);
    /// users.insert(1, 1);
    /// let load = users.stats().load_factor();
    /// assert!(load > 0.0 && load < 0.01);
    /// ```
    pub fn load_factor(&self) -> f64 {
        if self.capacity == 0 {
            0.0
        } else {
            self.len as f64 / self.capacity as f64
        }
    }

    /// Estimated bytes of capacity held but unused: [`memory_bytes`](Self::memory_bytes) for the
    /// capacity no entry fills.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Users: HashMap<u32, u32>, sharded);
    ///
    /// let users: GuardedMap<u32, u32, Users> = GuardedMap::with_capacity(1_000);
    /// let empty = users.stats().slack_bytes();
    /// assert_eq!(empty, users.stats().memory_bytes);
    /// users.insert(1, 1);
    /// assert!(users.stats().slack_bytes() < empty);
    /// ```
    pub fn slack_bytes(&self) -> u64 {
        if self.capacity == 0 {
            return 0;
        }
        let unused = self.capacity.saturating_sub(self.len);
        (u128::from(self.memory_bytes) * u128::from(unused) / u128::from(self.capacity)) as u64
    }
}
