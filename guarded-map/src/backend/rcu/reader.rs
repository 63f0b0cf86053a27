//! The `Rcu` read path: each thread marks its reads of a map, so that its writer knows when no
//! reader can still see what a write unlinked (see `trie/grace.rs`).
//!
//! A read finds the calling thread's [`Reader`] for this map (one thread-local load and one
//! comparison while a loop uses one map), stores its mark, fences (a compiler fence where
//! `membarrier` is available), loads the root and looks the key up. It takes no count on what it
//! reads, and keeps nothing between reads: an idle thread holds no memory of the map.
//!
//! The mark is the word of the thread's [`ReadCounters`]: odd while a read runs, and counting
//! outermost reads, so one store when a read begins and one when it ends both mark and count it.
//! Reads nest (a closure may read the map again): a nested read finds the mark set and leaves it
//! alone. The same mark tells a write on this thread that it is nested in a read (see
//! [`Readers::reading_here`]).

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use crossbeam_utils::CachePadded;

use crate::per_thread::PerThread;
use crate::stats::{Attached, Attachment, Entered, ReadCounters};
use crate::sync::AtomicU64;
use crate::trie::grace::reader_fence;
use crate::trie::node::NodeRef;
use crate::trie::root::Root;

/// The per-thread readers of one `Rcu` map.
pub(crate) struct Readers {
    /// Padded: `thread_local` allocates neighbouring threads' readers side by side, and each is
    /// written on every read. Each reader's counts are attached on its thread's first read.
    slots: Attached<PerThread<CachePadded<Reader>>>,
}

/// One thread's reader of one map, created on the thread's first read.
#[derive(Default)]
struct Reader {
    /// The thread's read counts and the mark of a running read.
    reads: ReadCounters,
    /// Whether `reads` is attached to the map's statistics.
    attached: AtomicBool,
}

impl Readers {
    /// Readers whose read counts are attached through `attachment`.
    pub(crate) fn new(attachment: Attachment) -> Self {
        let mut slots = Attached::new(Box::new(PerThread::new()));
        slots.attach_to(attachment, |_, _| {});
        Readers { slots }
    }

    /// Whether a read of this map runs on the calling thread (a write nested in it is refused).
    pub(crate) fn reading_here(&self) -> bool {
        self.slots
            .existing()
            .is_some_and(|reader| reader.reads.running())
    }

    /// Runs `f` on the current tree of `root`, with the calling thread's read counters when
    /// `counting` (the spec's compile-time statistics switch).
    #[inline]
    pub(crate) fn read<K, V, R>(
        &self,
        root: &Root<K, V>,
        counting: bool,
        f: impl FnOnce(NodeRef<'_, K, V>, Option<&ReadCounters>) -> R,
    ) -> R {
        let reader = self.slots.get();
        if !reader.attached.load(Relaxed) {
            self.attach(reader);
        }
        let running = Running::enter(&reader.reads, counting);
        reader_fence();
        // SAFETY: the mark is stored and fenced, and the tree is used only by `f`, inside this
        // read: `f`'s result cannot borrow from it (the closure is generic over the lifetime).
        let out = f(unsafe { root.read() }, counting.then_some(&reader.reads));
        drop(running);
        out
    }

    /// Attaches the reader's counts to the map's statistics, on its thread's first read.
    #[cold]
    #[inline(never)]
    fn attach(&self, reader: &Reader) {
        reader.attached.store(true, Relaxed);
        // The same reader again (`ThreadLocal` never moves its values), borrowed from the data.
        self.slots.attach(|slots, keep| keep.keep(&slots.get().reads));
    }

    /// Calls `visit` on every reader's mark (for the writer's grace periods).
    pub(crate) fn marks(&self, visit: &mut dyn FnMut(&AtomicU64)) {
        self.slots.fold((), |(), reader| visit(reader.reads.mark()));
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
}

impl Drop for Running<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        self.reads.leave(self.entered);
    }
}
