//! Per-map statistics: what [`GuardedMap::stats`](crate::GuardedMap::stats) and the registry report.
//!
//! Counting happens on the hot path in per-thread slots ([`slots`]), or in state a backend keeps of
//! its own ([`kept`]); this module holds the public, plain-data view of those counts.

pub(crate) mod kept;
pub(crate) mod sink;
pub(crate) mod slots;

pub(crate) use kept::{Entered, Kept, ReadCounters, WriteCounts, Wrote};
pub(crate) use slots::{Counter, Counts, MapStats, Recorder};

/// A plain snapshot of one map's (or one descriptor's) statistics.
///
/// Counters are totals since the map was created; `len` and `capacity` are gauges. Operation counts
/// are exact once the threads that performed them have been joined; while they run, a reader may see
/// each thread's count a little late, never a count that goes backwards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Keyed reads: `get_cloned`, `with`, `contains_key`.
    pub gets: u64,
    /// Keyed reads that found no entry (a subset of `gets`).
    pub misses: u64,
    /// `insert` and `try_insert` calls that stored their entry, and `upsert` calls that created one.
    pub inserts: u64,
    /// `update` calls that found their key, and `upsert` calls that found theirs.
    pub updates: u64,
    /// `remove` calls.
    pub removes: u64,
    /// `retain` calls.
    pub retains: u64,
    /// `clear` calls.
    pub clears: u64,
    /// `snapshot` calls (including the ones `Debug` and `Clone` make).
    pub snapshots: u64,
    /// Inserts refused because the map was at its `max_len`.
    pub rejected: u64,
    /// New keys added (by any operation).
    pub entries_added: u64,
    /// Keys removed (by `remove`, `retain` or `clear`).
    pub entries_removed: u64,
    /// Entries in the map.
    pub len: u64,
    /// Entries the map can hold without allocating.
    pub capacity: u64,
    /// Estimated bytes of the map's tables: `capacity` times the bytes hashbrown spends per entry
    /// (the key, the value, their stored hash on `Sharded`, a control byte, at a 7/8 load factor).
    /// Memory that keys and values own on the heap (a `String`'s text) is not included.
    pub memory_bytes: u64,
    /// Lock acquisitions that had to wait (the uncontended path is not timed).
    pub lock_contended: u64,
    /// Total time spent waiting for contended locks, in nanoseconds.
    pub lock_wait_nanos: u64,
    /// New versions published by the `Rcu` backend.
    pub rcu_publishes: u64,
    /// Total time spent building and publishing versions, in nanoseconds.
    pub rcu_publish_nanos: u64,
    /// Entries copied into new versions by the `Rcu` backend (its write amplification).
    pub rcu_copied_entries: u64,
}

impl Stats {
    /// Keyed reads that found their entry.
    pub fn hits(&self) -> u64 {
        self.gets - self.misses
    }

    /// Writes of every kind (`inserts + updates + removes + retains + clears`).
    pub fn writes(&self) -> u64 {
        self.inserts + self.updates + self.removes + self.retains + self.clears
    }

    pub(crate) fn from_counts(counts: &Counts) -> Stats {
        Stats {
            gets: counts[Counter::Get],
            misses: counts[Counter::Miss],
            inserts: counts[Counter::Insert],
            updates: counts[Counter::Update],
            removes: counts[Counter::Remove],
            retains: counts[Counter::Retain],
            clears: counts[Counter::Clear],
            snapshots: counts[Counter::Snapshot],
            rejected: counts[Counter::Rejected],
            entries_added: counts[Counter::Added],
            entries_removed: counts[Counter::Removed],
            len: 0,
            capacity: 0,
            memory_bytes: 0,
            lock_contended: counts[Counter::Contended],
            lock_wait_nanos: counts[Counter::WaitNanos],
            rcu_publishes: counts[Counter::Publishes],
            rcu_publish_nanos: counts[Counter::PublishNanos],
            rcu_copied_entries: counts[Counter::Copied],
        }
    }
}

impl std::ops::AddAssign for Stats {
    /// Sums two maps' statistics (counters and gauges alike).
    fn add_assign(&mut self, o: Stats) {
        let fields = [
            (&mut self.gets, o.gets),
            (&mut self.misses, o.misses),
            (&mut self.inserts, o.inserts),
            (&mut self.updates, o.updates),
            (&mut self.removes, o.removes),
            (&mut self.retains, o.retains),
            (&mut self.clears, o.clears),
            (&mut self.snapshots, o.snapshots),
            (&mut self.rejected, o.rejected),
            (&mut self.entries_added, o.entries_added),
            (&mut self.entries_removed, o.entries_removed),
            (&mut self.len, o.len),
            (&mut self.capacity, o.capacity),
            (&mut self.memory_bytes, o.memory_bytes),
            (&mut self.lock_contended, o.lock_contended),
            (&mut self.lock_wait_nanos, o.lock_wait_nanos),
            (&mut self.rcu_publishes, o.rcu_publishes),
            (&mut self.rcu_publish_nanos, o.rcu_publish_nanos),
            (&mut self.rcu_copied_entries, o.rcu_copied_entries),
        ];
        for (field, add) in fields {
            *field = field.wrapping_add(add);
        }
    }
}
