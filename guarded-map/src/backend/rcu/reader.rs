//! The `Rcu` read path: each thread keeps its own copy of the current version's shards.
//!
//! A read looks up the calling thread's [`Reader`] for this map. The address and length of the
//! reader's shards sit in the thread's fast-path entry (see [`PerThread`]); the read compares that
//! address with the published one (see [`Published`]): while nothing was published, that is one
//! plain load, and the lookup goes straight to the cached shards, with nothing loaded through the
//! reader first. The same reader holds the thread's read counts.
//!
//! Reads nest: a closure may read the same map again, and a destructor run by a reload may too. A
//! nested read must not free the shards an outer read on the same thread is still looking at. So
//! each read marks the reader while it runs (see [`ReadCounters::enter`]: the mark shares a word
//! with the read count, so a read stores once when it begins and once when it ends). A nested read
//! that finds a newer version published does not reload: it reads that version through a reference
//! of its own, dropped when it ends, so however many versions are published during one long read,
//! the thread keeps only the one the outer read uses. The two stores are most of what a read costs
//! beyond the lookup (measured: about a tenth), and the cheapest sound way found to know, at a
//! reload, whether an outer read is running. The same mark tells a write on this thread that it
//! is nested in a read (see [`Readers::reading_here`]).
//!
//! The price: every thread that has read the map keeps the shards of the version it last saw alive
//! until its next read of the map, or until the map is dropped. Versions share their unchanged
//! shards, so this is usually a few shards per thread, at most one old version per thread.

use std::cell::{Cell, UnsafeCell};
use std::mem;
use std::slice;
use std::sync::Arc;

use crossbeam_utils::CachePadded;

use super::published::Published;
use crate::per_thread::{Hot, PerThread};
use crate::shared_table::SharedTable;
use crate::stats::{Attached, Attachment, Entered, ReadCounters};
use crate::table::Pair;
use crate::table::Shards;

/// The per-thread readers of one `Rcu` map.
pub(crate) struct Readers<K, V> {
    /// Padded: `thread_local` allocates neighbouring threads' readers side by side, and each is
    /// written on every read. Each reader's counts are attached on its thread's first read.
    slots: Attached<PerThread<CachePadded<Reader<K, V>>>>,
}

/// One thread's reader of one map, created on the thread's first read. `repr(C)`: what a read
/// touches comes first, on one cache line.
#[repr(C)]
struct Reader<K, V> {
    /// The thread's read counts and the mark of a running read.
    reads: ReadCounters,
    /// Replaced only by [`Reader::reload`], outside any other read of this thread, and never
    /// holding a reference into it across user code.
    shards: UnsafeCell<Shards<K, V>>,
    /// The tag of the version `shards` belong to (or of an older one: see [`Published::tag`]).
    tag: Cell<u64>,
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
// shared between threads: `PerThread` only hands a reader to its own thread.
unsafe impl<K, V> Send for Reader<K, V> {}

impl<K, V> Readers<K, V> {
    /// Whether a read of this map runs on the calling thread (a write nested in it is refused).
    pub(crate) fn reading_here(&self) -> bool {
        self.slots
            .existing()
            .is_some_and(|reader| reader.reads.running())
    }

    /// Readers whose read counts are attached through `attachment`.
    pub(crate) fn new(attachment: Attachment) -> Self {
        let mut slots = Attached::new(Box::new(PerThread::new()));
        slots.attach_to(attachment, |_, _| {});
        Readers { slots }
    }

    /// Runs `f` on the shards of the current version of `published`, with the calling thread's read
    /// counters when `counting` (the spec's compile-time statistics switch).
    ///
    /// The fast path (this thread read this map last, and nothing was published since: the last
    /// fast-path entry carries the published tag) is all that is inlined; everything else, even
    /// the preparation for it, is in [`read_slow`], so that the hot loop keeps its registers for
    /// the lookup.
    ///
    /// [`read_slow`]: Self::read_slow
    #[inline]
    pub(crate) fn read<R>(
        &self,
        published: &Published<K, V>,
        counting: bool,
        f: impl FnOnce(&[SharedTable<Pair<K, V>>], Option<&ReadCounters>) -> R,
    ) -> R {
        if let Some((reader, hot)) = self.slots.tagged(published.tag()) {
            // SAFETY: an entry carries a version's tag only with the words of that version's
            // shards, which its reader holds (see `read_slow`); this one's tag is the published
            // one, so the reader has not reloaded since.
            return unsafe { reader.run(hot, counting, f) };
        }
        self.read_slow(published, counting, f)
    }

    /// [`read`](Self::read) on the thread's first read of the map, after it used other maps, or
    /// after a publish.
    #[cold]
    #[inline(never)]
    fn read_slow<R>(
        &self,
        published: &Published<K, V>,
        counting: bool,
        f: impl FnOnce(&[SharedTable<Pair<K, V>>], Option<&ReadCounters>) -> R,
    ) -> R {
        let tag = published.tag();
        if let Some((reader, hot)) = self.slots.tagged_prev(tag) {
            // SAFETY: as in `read`.
            return unsafe { reader.run(hot, counting, f) };
        }
        let reader = self
            .slots
            .value_or(|| CachePadded::new(Reader::new(published)));
        if !reader.attached.replace(true) {
            // The same reader again (`ThreadLocal` never moves its values), borrowed from the data.
            self.slots.attach(|slots, keep| {
                keep.keep(&slots.value_or(|| unreachable!("created above")).reads);
            });
        }
        // Declared before the mark, so dropped after it is cleared: the shards a reload replaces
        // are dropped once this read has ended, and the user's destructors they may run are
        // outside it (free to write this map).
        let mut replaced = None;
        let running = Running::enter(&reader.reads, counting);
        if reader.tag.get() != tag {
            if running.nested() {
                // The outer read uses the cached shards: read the new version through a
                // reference of this read's own instead of replacing them.
                let version = published.load();
                return f(&version.shards, counting.then_some(&reader.reads));
            }
            replaced = Some(reader.reload(published, tag));
        }
        // Read both again after the reload: a destructor it ran may have read this map and
        // reloaded once more. A reader's tag and shards always change together.
        let hot = reader.hot();
        // SAFETY: `reader` is this thread's value, and the tag is that of the version whose
        // shards `hot` describes (or an older one of the same map: see `Published::tag`), a tag no
        // other map's versions ever carry. This is the entry `read` relies on.
        unsafe { self.slots.remember(reader.tag.get(), reader, hot) };
        // SAFETY: the reader's current shards, alive until its next reload, which happens outside
        // any other read of this thread, so not before this one ends.
        let shards = unsafe { Reader::shards_of(hot) };
        let out = f(shards, counting.then_some(&reader.reads));
        drop(running);
        drop(replaced);
        out
    }
}

impl<K, V> Reader<K, V> {
    /// The fast-path words of the cached shards: their slice's address and length.
    fn hot(&self) -> Hot {
        // SAFETY: this thread's reader (see `Send`); the reference ends here.
        let shards: &[SharedTable<Pair<K, V>>] = unsafe { &*self.shards.get() };
        (shards.as_ptr().cast(), shards.len())
    }

    /// Runs `f` on the shards `hot` describes, marking the read while it runs.
    ///
    /// # Safety
    ///
    /// `hot` must be this reader's current fast-path words: the shards stay alive until its next
    /// reload, and no reload happens while this read runs (nested reads do not reload).
    #[inline(always)]
    unsafe fn run<R>(
        &self,
        hot: Hot,
        counting: bool,
        f: impl FnOnce(&[SharedTable<Pair<K, V>>], Option<&ReadCounters>) -> R,
    ) -> R {
        let _running = Running::enter(&self.reads, counting);
        // SAFETY: the caller's contract.
        let shards = unsafe { Reader::shards_of(hot) };
        f(shards, counting.then_some(&self.reads))
    }

    /// The slice [`Reader::hot`] described.
    ///
    /// # Safety
    ///
    /// `hot` must come from `hot()` of a reader whose shards have not been dropped since.
    #[inline(always)]
    unsafe fn shards_of<'a>(hot: Hot) -> &'a [SharedTable<Pair<K, V>>] {
        // SAFETY: the caller's contract: a live slice of `SharedTable`s, never written (versions
        // are immutable).
        unsafe { slice::from_raw_parts(hot.0.cast(), hot.1) }
    }

    #[cold]
    fn new(published: &Published<K, V>) -> Self {
        let tag = published.tag();
        Reader {
            tag: Cell::new(tag),
            shards: UnsafeCell::new(Arc::clone(&published.load().shards)),
            reads: ReadCounters::default(),
            attached: Cell::new(false),
        }
    }

    /// Replaces the cached shards with those of the current version, whose tag is `tag` (or a
    /// later one's: see [`Published::tag`]), and returns the old ones. Called outside any other
    /// read of this thread. The caller drops them after its read, because dropping may run the
    /// user's destructors, which may use this map again.
    #[cold]
    #[inline(never)]
    #[must_use]
    fn reload(&self, published: &Published<K, V>, tag: u64) -> Shards<K, V> {
        let next = Arc::clone(&published.load().shards);
        // SAFETY: this thread's reader (see `Send`); no reference into the cell is alive: reads
        // hold only slices into the shards' allocation, and no other read of this thread runs
        // (see `Readers::read`); the reference made here ends before any user code (a destructor)
        // can run.
        let old = unsafe { mem::replace(&mut *self.shards.get(), next) };
        self.tag.set(tag);
        old
    }
}

/// One running read: marks the reader as reading (see [`ReadCounters::enter`]), and clears the
/// mark when the outermost read ends, also when its closure panics.
struct Running<'a> {
    reads: &'a ReadCounters,
    entered: Entered,
}

impl<'a> Running<'a> {
    #[inline(always)]
    fn enter(reads: &'a ReadCounters, counting: bool) -> Self {
        Running {
            entered: reads.enter(counting),
            reads,
        }
    }

    /// Whether another read of the map was running on this thread when this one began.
    fn nested(&self) -> bool {
        matches!(self.entered, Entered::Nested)
    }
}

impl Drop for Running<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        self.reads.leave(self.entered);
    }
}
