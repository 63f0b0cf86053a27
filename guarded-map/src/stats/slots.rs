//! Per-thread counter slots: the only statistics code on the hot path.
//!
//! Each thread that touches a map gets its own cache-line-padded slot for that map ([`PerThread`]
//! over the `thread_local` crate, which reuses the slot of an exited thread so counts are never
//! dropped). Only the owning thread writes a slot, with a relaxed load and store (no locked
//! read-modify-write); readers sum all slots. Capacity changes, being rare, go to one shared gauge.
//!
//! A backend that touches state of its own on every read counts its reads there, where counting
//! costs least, and attaches those counts here ([`KeptReads`]) so that they are summed with the
//! rest: the `Rcu` reader's per-thread [`ReadCounters`], on the cache line the read touches anyway,
//! and the `Sharded` shard locks, whose release counts the read.

use std::ops::Index;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use crossbeam_utils::CachePadded;
use parking_lot::Mutex;

use crate::per_thread::PerThread;
use crate::spec::Descriptor;

/// What a slot counts. The discriminant is the slot index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Counter {
    Get,
    Miss,
    Insert,
    Update,
    Remove,
    Retain,
    Clear,
    Snapshot,
    Rejected,
    Added,
    Removed,
    Contended,
    WaitNanos,
    Publishes,
    PublishNanos,
    Copied,
}

const COUNTERS: usize = Counter::Copied as usize + 1;

/// One thread's counters for one map.
#[derive(Default)]
pub(crate) struct Counters([AtomicU64; COUNTERS]);

impl Counters {
    #[inline]
    fn add(&self, counter: Counter, n: u64) {
        bump(&self.0[counter as usize], n);
    }
}

/// Adds `n` to a counter that only the calling thread writes: a relaxed load and store is exact and
/// avoids a locked instruction.
#[inline(always)]
fn bump(cell: &AtomicU64, n: u64) {
    cell.store(cell.load(Relaxed).wrapping_add(n), Relaxed);
}

/// One thread's keyed reads of one `Rcu` map: their counts, and the mark of a running read.
///
/// The `Rcu` reader keeps these in its own per-thread state and attaches them to the map's
/// [`MapStats`] with [`MapStats::attach_reads`]. A read must mark the reader while it runs (see the
/// reader's nested reads): a load and a store when it begins, a store when it ends. The count of
/// outermost reads rides in the same word and stores, so counting costs nothing more; reads nested
/// in another (rare) find the mark set, leave the word alone and count apart.
#[derive(Default)]
pub(crate) struct ReadCounters {
    /// Bit 0: a read is running. Above it: outermost reads counted (one per 2).
    state: AtomicU64,
    nested: AtomicU64,
    misses: AtomicU64,
}

/// How a read began (see [`ReadCounters::enter`]).
#[derive(Clone, Copy)]
pub(crate) enum Entered {
    /// No other read was running; the value the word takes when this read ends (mark clear, the
    /// read counted if counting).
    Outermost(u64),
    /// Another read on this thread was running; the word is its.
    Nested,
}

impl ReadCounters {
    /// Begins a read: marks it running, counting it when `counting`.
    #[inline(always)]
    pub(crate) fn enter(&self, counting: bool) -> Entered {
        let state = self.state.load(Relaxed);
        if state & 1 != 0 {
            if counting {
                bump(&self.nested, 1);
            }
            return Entered::Nested;
        }
        let end = state + if counting { 2 } else { 0 };
        self.state.store(end | 1, Relaxed);
        Entered::Outermost(end)
    }

    /// Ends a read that [`enter`](Self::enter) began; the outermost one clears the mark. Nothing
    /// else writes the word meanwhile (nested reads leave it alone), so the value to store is known
    /// from `enter`: no load, and nothing for this store to wait on.
    #[inline(always)]
    pub(crate) fn leave(&self, entered: Entered) {
        if let Entered::Outermost(end) = entered {
            self.state.store(end, Relaxed);
        }
    }

    /// Counts a read that found nothing.
    #[inline(always)]
    pub(crate) fn missed(&self) {
        bump(&self.misses, 1);
    }
}

/// Read counts that a backend keeps in state of its own (the `Rcu` reader's [`ReadCounters`], the
/// `Sharded` lock words) and attaches to a map's [`MapStats`] with [`MapStats::attach_reads`].
pub(crate) trait KeptReads: Sync {
    /// Keyed reads counted so far.
    fn reads(&self) -> u64;
    /// Those of them that found nothing, when they are kept here too.
    fn misses(&self) -> u64;
}

impl KeptReads for ReadCounters {
    fn reads(&self) -> u64 {
        (self.state.load(Relaxed) >> 1).wrapping_add(self.nested.load(Relaxed))
    }
    fn misses(&self) -> u64 {
        self.misses.load(Relaxed)
    }
}

/// A pointer to attached read counts.
struct Attached(*const dyn KeptReads);

// SAFETY: the pointee is `Sync` (a `KeptReads` bound), and `MapStats::attach_reads`' contract keeps
// it alive for as long as the pointer can be read; sending or sharing the pointer is then like
// sending or sharing a shared reference to it.
unsafe impl Send for Attached {}
// SAFETY: as for `Send`.
unsafe impl Sync for Attached {}

/// Summed counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts([u64; COUNTERS]);

impl Counts {
    pub(crate) fn add(&mut self, other: &Counts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a = a.wrapping_add(b);
        }
    }
}

impl Index<Counter> for Counts {
    type Output = u64;
    fn index(&self, counter: Counter) -> &u64 {
        &self.0[counter as usize]
    }
}

/// The statistics of one live map instance, shared with the registry.
#[doc(hidden)]
pub struct MapStats {
    pub(crate) descriptor: &'static Descriptor,
    slots: PerThread<CachePadded<Counters>>,
    capacity: AtomicUsize,
    attached: Mutex<Vec<Attached>>,
    /// Bytes of table memory per entry of capacity (see [`Stats::memory_bytes`](crate::Stats)).
    entry_bytes: usize,
}

impl MapStats {
    pub(crate) fn new(descriptor: &'static Descriptor, entry_bytes: usize) -> Self {
        MapStats {
            descriptor,
            slots: PerThread::new(),
            capacity: AtomicUsize::new(0),
            attached: Mutex::new(Vec::new()),
            entry_bytes,
        }
    }

    /// The calling thread's counters, created on its first use.
    #[inline(always)]
    pub(crate) fn counters(&self) -> &Counters {
        self.slots.get()
    }

    /// Sums `reads` into this map's counts from now on.
    ///
    /// # Safety
    ///
    /// `reads` must stay where it is until the map owning these statistics is dropped. Counts are
    /// summed only while the map lives: by `GuardedMap::stats`, and by the registry until
    /// `GuardedMap`'s `Drop` unregisters the map, before its fields (the store holding `reads`)
    /// are dropped.
    pub(crate) unsafe fn attach_reads(&self, reads: &(dyn KeptReads + 'static)) {
        self.attached.lock().push(Attached(reads));
    }

    /// A recorder for the calling thread; `enabled` is a compile-time constant of the map's spec.
    #[inline(always)]
    pub(crate) fn recorder(&self, enabled: bool) -> Recorder<'_> {
        Recorder {
            counters: enabled.then(|| self.counters()),
            stats: self,
        }
    }

    /// The sum of every thread's counters.
    pub(crate) fn counts(&self) -> Counts {
        let mut total = Counts::default();
        for slot in self.slots.iter() {
            for (sum, cell) in total.0.iter_mut().zip(slot.0.iter()) {
                *sum = sum.wrapping_add(cell.load(Relaxed));
            }
        }
        for &Attached(reads) in self.attached.lock().iter() {
            // SAFETY: `attach_reads`' contract: the map, and so the attached counters, are alive
            // whenever counts are summed.
            let reads = unsafe { &*reads };
            for (counter, n) in [
                (Counter::Get, reads.reads()),
                (Counter::Miss, reads.misses()),
            ] {
                let sum = &mut total.0[counter as usize];
                *sum = sum.wrapping_add(n);
            }
        }
        total
    }

    /// The capacity gauge (entries the map can hold without allocating).
    pub(crate) fn capacity(&self) -> usize {
        self.capacity.load(Relaxed)
    }

    /// The estimated table memory of the map, in bytes.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.capacity().saturating_mul(self.entry_bytes)
    }
}

/// The calling thread's view of a map's statistics, made once per operation.
#[derive(Clone, Copy)]
#[doc(hidden)]
pub struct Recorder<'a> {
    counters: Option<&'a Counters>,
    stats: &'a MapStats,
}

impl Recorder<'_> {
    /// Whether this map collects statistics.
    #[inline(always)]
    pub(crate) fn enabled(&self) -> bool {
        self.counters.is_some()
    }

    /// Sums `reads` into the map's counts from now on, if the map collects statistics.
    ///
    /// # Safety
    ///
    /// As for [`MapStats::attach_reads`].
    pub(crate) unsafe fn attach_reads(&self, reads: &(dyn KeptReads + 'static)) {
        if self.enabled() {
            // SAFETY: the caller's contract.
            unsafe { self.stats.attach_reads(reads) };
        }
    }

    /// Counts `n` events.
    #[inline(always)]
    pub(crate) fn count(&self, counter: Counter, n: u64) {
        if let Some(counters) = self.counters {
            counters.add(counter, n);
        }
    }

    /// Counts one contended lock acquisition that waited `wait`.
    #[inline]
    pub(crate) fn contended(&self, wait: Duration) {
        crate::hooks::waited(wait);
        if self.enabled() {
            self.count(Counter::Contended, 1);
            self.count(Counter::WaitNanos, duration_nanos(wait));
            // A rare event, already slow: recorded straight into the facade's histogram.
            crate::report::observe_lock_wait(self.stats.descriptor, wait);
        }
    }

    /// Counts one RCU publish that took `took` and copied `copied` entries.
    #[inline]
    pub(crate) fn published(&self, took: Duration, copied: usize) {
        if self.enabled() {
            self.count(Counter::Publishes, 1);
            self.count(Counter::PublishNanos, duration_nanos(took));
            self.count(Counter::Copied, copied as u64);
            // A write that copied a shard: the facade's histogram costs little beside it.
            crate::report::observe_publish(self.stats.descriptor, took);
        }
    }

    /// Sets the capacity gauge (writers that know the whole map's capacity).
    #[inline]
    pub(crate) fn set_capacity(&self, capacity: usize) {
        self.stats.capacity.store(capacity, Relaxed);
    }

    /// Moves the capacity gauge by the change of one shard (writers that see only their shard).
    #[inline]
    pub(crate) fn capacity_changed(&self, before: usize, after: usize) {
        if after > before {
            self.stats.capacity.fetch_add(after - before, Relaxed);
        } else if before > after {
            self.stats.capacity.fetch_sub(before - after, Relaxed);
        }
    }
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
