//! Per-map statistics: what [`GuardedMap::stats`](crate::GuardedMap::stats) and the registry report.
//!
//! Counting happens on the hot path in per-thread slots ([`slots`]), or in state a backend keeps of
//! its own ([`kept`]); this module holds the public, plain-data view of those counts.

mod attach;
pub(crate) mod kept;
pub(crate) mod sink;
pub(crate) mod slots;
mod table;

pub(crate) use attach::{Attached, Attachment};
pub(crate) use kept::{Entered, Kept, PublishCounts, ReadCounters, WriteCounts, Wrote};
pub(crate) use slots::{Counts, MapStats, Recorder, duration_nanos};
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
