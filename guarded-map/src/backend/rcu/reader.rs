//! The `Rcu` read path: each thread keeps its own cached copy of the current version.
//!
//! `arc-swap`'s `load` is wait-free but pays two locked instructions per call (it records and then
//! repays a "debt" on a shared slot). A read here instead looks up the calling thread's [`Reader`]
//! for this map and asks its `arc_swap::Cache` for the version: while nothing was published that is
//! one plain pointer comparison; after a publish it reloads once. The same lookup yields the thread's
//! statistics counters, so a counted read costs one thread-local lookup in all.
//!
//! The price: every thread that has read the map keeps the version it last saw alive until its next
//! read of the map, or until the map is dropped. Versions share their unchanged shards, so this is
//! usually a few shards per thread, at most one old version per thread.

use std::cell::RefCell;
use std::sync::Arc;

use crossbeam_utils::CachePadded;

use crate::per_thread::PerThread;
use crate::stats::{MapStats, Recorder, SharedCounters};
use crate::sync::{ArcCell, VersionCache};
use crate::table::Frozen;

/// The per-thread readers of one `Rcu` map.
pub(crate) struct Readers<K, V> {
    /// Padded: `thread_local` allocates neighbouring threads' slots side by side, and the borrow
    /// flag is written on every read.
    slots: PerThread<CachePadded<ReaderSlot<K, V>>>,
}

/// One thread's reader, created on its first read. `RefCell` catches re-entrance: a read from inside
/// another read's closure (or from a destructor run by a reload) finds it borrowed and takes the
/// uncached path instead of replacing a version the outer read still uses.
struct ReaderSlot<K, V>(RefCell<Reader<K, V>>);

struct Reader<K, V> {
    version: VersionCache<Frozen<K, V>>,
    counters: SharedCounters,
}

// SAFETY: `PerThread` (over `ThreadLocal`) requires `Send` of its entries in its type, for every `K`
// and `V`, although a slot only moves between threads in two ways: the slot of an exited thread is
// handed to a new thread, and all slots are dropped by the thread that drops the map. Either way the
// map itself was shared with (`Sync`) or moved to (`Send`) that thread, which requires
// `Arc<ArcCell<Frozen<K, V>>>` (the map's own field) to be `Send + Sync`, that is `K` and `V` to be
// `Send + Sync`: exactly what the `Arc`s inside a slot require. A map of non-`Send` keys or values
// never leaves its thread, so neither do its slots. Within a thread the `RefCell` is never shared:
// `PerThread::get_or` only hands a slot to its own thread.
unsafe impl<K, V> Send for ReaderSlot<K, V> {}

impl<K, V> Readers<K, V> {
    pub(crate) fn new() -> Self {
        Readers {
            slots: PerThread::new(),
        }
    }

    /// Runs `f` on the current version of `cell`, with a recorder for the calling thread
    /// (`counting` is the spec's compile-time statistics switch).
    #[inline]
    pub(crate) fn read<R>(
        &self,
        cell: &Arc<ArcCell<Frozen<K, V>>>,
        stats: &MapStats,
        counting: bool,
        f: impl FnOnce(&Frozen<K, V>, Recorder<'_>) -> R,
    ) -> R {
        let slot = self
            .slots
            .get_or(|| CachePadded::new(ReaderSlot(RefCell::new(Reader::new(cell, stats)))));
        let Ok(mut reader) = slot.0.try_borrow_mut() else {
            return Self::read_uncached(cell, stats, counting, f);
        };
        let Reader { version, counters } = &mut *reader;
        let rec = stats.recorder_with(counting.then_some(&***counters));
        f(version.load(), rec)
    }

    /// A re-entrant read: through `arc-swap`'s own load and the shared counter lookup.
    #[cold]
    #[inline(never)]
    fn read_uncached<R>(
        cell: &ArcCell<Frozen<K, V>>,
        stats: &MapStats,
        counting: bool,
        f: impl FnOnce(&Frozen<K, V>, Recorder<'_>) -> R,
    ) -> R {
        let version = cell.load();
        f(&version, stats.recorder(counting))
    }
}

impl<K, V> Reader<K, V> {
    #[cold]
    fn new(cell: &Arc<ArcCell<Frozen<K, V>>>, stats: &MapStats) -> Self {
        Reader {
            version: VersionCache::new(Arc::clone(cell)),
            counters: Arc::clone(stats.counters()),
        }
    }
}
