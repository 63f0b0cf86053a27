//! The `Rcu` read path: each thread keeps its own copy of the current version's shards.
//!
//! A read looks up the calling thread's [`Reader`] for this map and compares the generation it
//! cached with the published one (see [`Published`]): while nothing was published, that is one
//! plain load, and the lookup goes straight from the thread's reader to the shard table. The same
//! reader holds the thread's read counts, on the cache line the read touches anyway.
//!
//! Reads nest: a closure may read the same map again, and a destructor run by a reload may too. A
//! nested read may find a newer version and reload, but it must not free the shards an outer read
//! on the same thread is still looking at. So the outermost read marks the reader active (a plain
//! flag: no borrow counter, whose read-modify-write cost a third of a lookup), a read that finds
//! the mark set takes the nested path, and a nested reload keeps the replaced shards in `retired`
//! until the next reload made outside any read.
//!
//! The price: every thread that has read the map keeps the shards of the version it last saw alive
//! until its next read of the map, or until the map is dropped. Versions share their unchanged
//! shards, so this is usually a few shards per thread, at most one old version per thread (plus
//! those replaced while a closure read the map again).

use std::cell::{Cell, UnsafeCell};
use std::mem;
use std::sync::Arc;

use crossbeam_utils::CachePadded;

use super::published::Published;
use crate::per_thread::PerThread;
use crate::stats::{MapStats, ReadCounters};
use crate::table::{Shards, Table};

/// The per-thread readers of one `Rcu` map.
pub(crate) struct Readers<K, V> {
    /// Padded: `thread_local` allocates neighbouring threads' readers side by side, and each is
    /// written on every read.
    slots: PerThread<CachePadded<Reader<K, V>>>,
}

/// One thread's reader of one map, created on the thread's first read. `repr(C)`: what a read
/// touches comes first, on one cache line.
#[repr(C)]
struct Reader<K, V> {
    /// Whether a read of this map is running on this thread.
    active: Cell<bool>,
    /// The generation `shards` belong to (or an older one: see [`Published::generation`]).
    generation: Cell<u64>,
    /// Replaced only by [`Reader::reload`], which never holds a reference into it across user code.
    shards: UnsafeCell<Shards<K, V>>,
    reads: ReadCounters,
    /// Shards replaced while an outer read might still use them.
    retired: UnsafeCell<Vec<Shards<K, V>>>,
    /// Whether `reads` is attached to the map's statistics.
    attached: Cell<bool>,
}

// SAFETY: `PerThread` (over `ThreadLocal`) requires `Send` of its entries in its type, for every `K`
// and `V`, although a reader only moves between threads in two ways: the reader of an exited thread
// is handed to a new thread, and all readers are dropped by the thread that drops the map. Either
// way the map itself was shared with (`Sync`) or moved to (`Send`) that thread, which requires
// `Published<K, V>` (the map's own field, holding `Arc<Frozen<K, V>>`) to be `Send + Sync`, that is
// `K` and `V` to be `Send + Sync`: exactly what the `Arc`s inside a reader require. A map of
// non-`Send` keys or values never leaves its thread, so neither do its readers. The cells are never
// shared between threads: `PerThread::get_or_missed` only hands a reader to its own thread.
unsafe impl<K, V> Send for Reader<K, V> {}

impl<K, V> Readers<K, V> {
    pub(crate) fn new() -> Self {
        Readers {
            slots: PerThread::new(),
        }
    }

    /// Runs `f` on the shards of the current version of `published`, with the calling thread's read
    /// counters when `counting` (the spec's compile-time statistics switch).
    #[inline]
    pub(crate) fn read<R>(
        &self,
        published: &Published<K, V>,
        stats: &MapStats,
        counting: bool,
        f: impl FnOnce(&[Arc<Table<K, V>>], Option<&ReadCounters>) -> R,
    ) -> R {
        let reader = self.slots.get_or_missed(
            || CachePadded::new(Reader::new(published)),
            |reader| {
                if !reader.attached.replace(true) {
                    // SAFETY: the reader stays in `self.slots` (`ThreadLocal` never moves its
                    // values) until the store, and so the map owning `stats`, is dropped.
                    unsafe { stats.attach_reads(&reader.reads) };
                }
            },
        );
        if reader.active.get() {
            return reader.read_nested(published, counting, f);
        }
        reader.active.set(true);
        let _active = Active(&reader.active);
        reader.read_current(published, false, counting, f)
    }
}

impl<K, V> Reader<K, V> {
    /// A read from inside another read of this map on this thread.
    #[cold]
    #[inline(never)]
    fn read_nested<R>(
        &self,
        published: &Published<K, V>,
        counting: bool,
        f: impl FnOnce(&[Arc<Table<K, V>>], Option<&ReadCounters>) -> R,
    ) -> R {
        self.read_current(published, true, counting, f)
    }

    /// Brings the cached shards up to date (`nested`: under an outer read) and runs `f` on them.
    #[inline(always)]
    fn read_current<R>(
        &self,
        published: &Published<K, V>,
        nested: bool,
        counting: bool,
        f: impl FnOnce(&[Arc<Table<K, V>>], Option<&ReadCounters>) -> R,
    ) -> R {
        let generation = published.generation();
        if generation != self.generation.get() {
            self.reload(published, generation, nested);
        }
        // SAFETY: `shards` is only written by `reload`, which holds no reference into it while user
        // code runs; the slice points into the `Arc`'s allocation, not into the cell, and a nested
        // reload keeps that allocation alive in `retired` while an outer read is active.
        let shards: &[Arc<Table<K, V>>] = unsafe { &*self.shards.get() };
        f(shards, counting.then_some(&self.reads))
    }

    #[cold]
    fn new(published: &Published<K, V>) -> Self {
        let generation = published.generation();
        Reader {
            active: Cell::new(false),
            generation: Cell::new(generation),
            shards: UnsafeCell::new(Arc::clone(&published.load().shards)),
            retired: UnsafeCell::new(Vec::new()),
            reads: ReadCounters::default(),
            attached: Cell::new(false),
        }
    }

    /// Replaces the cached shards with those of the current version, `generation`. Under an outer
    /// read (`nested`) the old shards are kept; otherwise they and any kept ones are dropped, last,
    /// because dropping may run the user's destructors, which may read this map again.
    #[cold]
    #[inline(never)]
    fn reload(&self, published: &Published<K, V>, generation: u64, nested: bool) {
        let next = Arc::clone(&published.load().shards);
        // SAFETY: this thread's reader (see `Send`); no reference into either cell is alive: reads
        // hold only slices into the shards' allocation (see `Readers::read`), and the references
        // made here end before any user code (a destructor) can run.
        let old = unsafe { mem::replace(&mut *self.shards.get(), next) };
        self.generation.set(generation);
        if nested {
            // SAFETY: as above.
            unsafe { (*self.retired.get()).push(old) };
        } else {
            // SAFETY: as above.
            let retired = unsafe { mem::take(&mut *self.retired.get()) };
            drop(old);
            drop(retired);
        }
    }
}

/// Clears a reader's active mark when the outermost read ends, also when its closure panics.
struct Active<'a>(&'a Cell<bool>);

impl Drop for Active<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        self.0.set(false);
    }
}
