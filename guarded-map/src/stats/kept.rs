//! Counts that a backend keeps in state of its own, where counting costs least, and attaches to a
//! map's [`MapStats`](super::MapStats) so that they are summed with the per-thread slots ([`Kept`]).
//!
//! - The `Rcu` reader's per-thread [`ReadCounters`], on the cache line a read touches anyway.
//! - The `Sharded` shard locks, whose release counts the read (see the lock's module).
//! - The `Sharded` shards' [`WriteCounts`], beside the lock's word, written under the write lock:
//!   one increment on a line the writer owns already. Looking the thread's slot up instead costs thread-local
//!   loads in front of the lock's compare-and-swap, which waits for them (BENCHMARKS.md).
//! - The `Rcu` writer's [`PublishCounts`], beside its writer lock: its writes' outcomes and its
//!   publishes. A thread's slot would cost the map memory for every thread that writes it.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed, Ordering::Release};

use super::slots::{Counts, bump};
use super::table::Counter;

/// Counts a backend keeps and attaches to a map's statistics through an
/// [`Attachment`](super::Attachment).
pub(crate) trait Kept: Sync {
    /// Adds the counts kept here to `total`.
    fn add_to(&self, total: &mut Counts);
}

/// One thread's keyed reads of one `Rcu` map: their counts, and the marks of running reads.
///
/// The `Rcu` reader keeps these in its own per-thread state, whose counts it attaches to the map's
/// statistics. A read must mark the reader while it runs (the writer's grace periods wait for
/// marked reads to end, see `trie/grace.rs`): a load and a store when it begins, a store when it
/// ends. The count of reads rides in the same words and stores, so counting costs nothing more,
/// and the words change with every read, which is what the writer watches for. Also when the map
/// does not count: a map without statistics attaches no counts.
#[derive(Default)]
pub(crate) struct ReadCounters {
    /// Bit 0: an outermost read is running. Above it: outermost reads, one per 2.
    state: crate::sync::AtomicU64,
    /// Reads nested in another on this thread (rare): odd while one runs, one more when each
    /// begins and when it ends, so twice their count.
    nested: crate::sync::AtomicU64,
    misses: AtomicU64,
}

/// How a read began (see [`ReadCounters::enter`]).
#[derive(Clone, Copy)]
pub(crate) enum Entered {
    /// No other read was running; the value the word takes when this read ends (mark clear, the
    /// read counted).
    Outermost(u64),
    /// Another read on this thread was running; the nested word marks this one.
    Nested,
}

impl ReadCounters {
    /// Begins a read: marks it running and counts it.
    #[inline(always)]
    pub(crate) fn enter(&self) -> Entered {
        let state = self.state.load(Relaxed);
        if state & 1 != 0 {
            self.step_nested();
            return Entered::Nested;
        }
        let end = state + 2;
        // Release: a writer that sees this mark sees what the reader stored before it (its seen
        // version reset by the last read, see the `Rcu` reader).
        self.state.store(end | 1, Release);
        Entered::Outermost(end)
    }

    /// Ends a read that [`enter`](Self::enter) began. Nothing else writes the outermost word
    /// meanwhile (nested reads leave it alone), so the value to store is known from `enter`: no
    /// load, and nothing for this store to wait on. Release: a writer that sees a mark change
    /// frees what the read looked at, after it.
    #[inline(always)]
    pub(crate) fn leave(&self, entered: Entered) {
        match entered {
            Entered::Outermost(end) => self.state.store(end, Release),
            Entered::Nested => self.step_nested(),
        }
    }

    /// Ends a read that [`enter`](Self::enter) began without counting it: it looked at nothing
    /// (an adaptive map's read that found the map in its other form, see `backend/adaptive`).
    /// The words go back to what they were: a writer that saw the mark set sees it change.
    #[inline(always)]
    pub(crate) fn abandon(&self, entered: Entered) {
        match entered {
            Entered::Outermost(end) => self.state.store(end - 2, Release),
            Entered::Nested => {
                let nested = self.nested.load(Relaxed);
                self.nested.store(nested - 1, Release);
            }
        }
    }

    /// Begins or ends a nested read: only this thread writes the word.
    fn step_nested(&self) {
        let nested = self.nested.load(Relaxed);
        self.nested.store(nested + 1, Release);
    }

    /// The word of outermost reads a writer's grace period watches (see `trie/grace.rs`).
    pub(crate) fn mark(&self) -> &crate::sync::AtomicU64 {
        &self.state
    }

    /// The word of nested reads a writer's grace period watches.
    pub(crate) fn nested_mark(&self) -> &crate::sync::AtomicU64 {
        &self.nested
    }

    /// Whether a read marked by [`enter`](Self::enter) runs (asked on the reader's own thread).
    pub(crate) fn running(&self) -> bool {
        self.state.load(Relaxed) & 1 != 0
    }

    /// Counts a read that found nothing.
    #[inline(always)]
    pub(crate) fn missed(&self) {
        bump(&self.misses, 1);
    }
}

impl Kept for ReadCounters {
    fn add_to(&self, total: &mut Counts) {
        let outermost = self.state.load(Relaxed) >> 1;
        let nested = self.nested.load(Relaxed) >> 1;
        total.add_one(Counter::Get, outermost.wrapping_add(nested));
        total.add_one(Counter::Miss, self.misses.load(Relaxed));
    }
}

/// What a keyed write did, as its statistics count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub(crate) enum Wrote {
    /// An insert or upsert that created its entry.
    Added,
    /// An insert that replaced a value.
    Replaced,
    /// An update or upsert that found its entry.
    Updated,
    /// A remove that removed its entry.
    Removed,
    /// A remove that found nothing.
    NotRemoved,
}

impl Wrote {
    const COUNT: usize = 5;
    const ALL: [Wrote; Self::COUNT] = [
        Wrote::Added,
        Wrote::Replaced,
        Wrote::Updated,
        Wrote::Removed,
        Wrote::NotRemoved,
    ];

    /// An insert, which `replaced` a value or added an entry.
    pub(crate) fn insert(replaced: bool) -> Self {
        if replaced {
            Wrote::Replaced
        } else {
            Wrote::Added
        }
    }

    /// The operation counter, and the entry counter if the write added or removed an entry.
    #[inline(always)]
    pub(crate) fn counters(self) -> (Counter, Option<Counter>) {
        match self {
            Wrote::Added => (Counter::Insert, Some(Counter::Added)),
            Wrote::Replaced => (Counter::Insert, None),
            Wrote::Updated => (Counter::Update, None),
            Wrote::Removed => (Counter::Remove, Some(Counter::Removed)),
            Wrote::NotRemoved => (Counter::Remove, None),
        }
    }
}

/// The keyed writes made under one lock (a `Sharded` shard's), one count per [`Wrote`] outcome.
///
/// Written only by the holder of that lock: the lock orders the writers, so a relaxed load and
/// store is exact (the compiler makes it one increment in memory), and the line is one the writer
/// has just taken for the lock anyway. One count per outcome, not per counter, so that a write
/// bumps exactly one: the counters are sums of outcomes, formed when the statistics are read.
#[derive(Default)]
pub(crate) struct WriteCounts {
    outcomes: [AtomicU64; Wrote::COUNT],
}

impl WriteCounts {
    /// Counts one write. The caller holds the lock that every writer of these counts holds.
    #[inline(always)]
    pub(crate) fn record(&self, wrote: Wrote) {
        bump(&self.outcomes[wrote as usize], 1);
    }
}

impl Kept for WriteCounts {
    #[inline]
    fn add_to(&self, total: &mut Counts) {
        for wrote in Wrote::ALL {
            let n = self.outcomes[wrote as usize].load(Relaxed);
            let (op, entry) = wrote.counters();
            total.add_one(op, n);
            if let Some(entry) = entry {
                total.add_one(entry, n);
            }
        }
    }
}

/// What an `Rcu` writer counts under its writer lock: the outcome of each write and each publish
/// (its time and the entries it copied).
///
/// Beside the writer lock, not in the writing thread's slot: a thread's slot costs a map memory
/// the first time that thread counts in it, and the lock already orders the writers, so
/// a relaxed load and store is exact (as in [`WriteCounts`]).
#[derive(Default)]
pub(crate) struct PublishCounts {
    wrote: WriteCounts,
    publishes: AtomicU64,
    nanos: AtomicU64,
    copied: AtomicU64,
}

impl PublishCounts {
    /// Counts one publish that took `nanos` and copied `copied` entries, made by a write whose
    /// outcome is `wrote` (`None`: not a keyed write). The caller holds the writer lock. Returns
    /// the publishes counted before this one.
    pub(crate) fn record(&self, wrote: Option<Wrote>, nanos: u64, copied: usize) -> u64 {
        if let Some(wrote) = wrote {
            self.wrote.record(wrote);
        }
        let before = self.publishes.load(Relaxed);
        bump(&self.publishes, 1);
        bump(&self.nanos, nanos);
        bump(&self.copied, copied as u64);
        before
    }

    /// Counts a keyed write that published nothing. The caller holds the writer lock.
    pub(crate) fn record_unpublished(&self, wrote: Wrote) {
        self.wrote.record(wrote);
    }
}

impl Kept for PublishCounts {
    fn add_to(&self, total: &mut Counts) {
        self.wrote.add_to(total);
        total.add_one(Counter::Publishes, self.publishes.load(Relaxed));
        total.add_one(Counter::PublishNanos, self.nanos.load(Relaxed));
        total.add_one(Counter::Copied, self.copied.load(Relaxed));
    }
}

#[cfg(test)]
mod tests {
    use super::{Kept, WriteCounts, Wrote};
    use crate::stats::{Counter, Counts};

    #[test]
    fn each_write_outcome_counts_its_operation_and_entry_change() {
        let counts = WriteCounts::default();
        for wrote in [
            Wrote::Added,
            Wrote::Added,
            Wrote::Replaced,
            Wrote::Updated,
            Wrote::Removed,
            Wrote::NotRemoved,
        ] {
            counts.record(wrote);
        }
        let mut total = Counts::default();
        counts.add_to(&mut total);
        counts.add_to(&mut total);
        let expect = [
            (Counter::Insert, 6),
            (Counter::Update, 2),
            (Counter::Remove, 4),
            (Counter::Added, 4),
            (Counter::Removed, 2),
            (Counter::Get, 0),
        ];
        for (counter, n) in expect {
            assert_eq!(total[counter], n, "{counter:?}");
        }
    }
}
