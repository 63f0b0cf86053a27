//! Grace periods: when a node a write unlinked can be freed, because no reader can still see it.
//!
//! Readers take no count on what they read. Each reader has a *mark* (a word of its own): odd
//! while a read runs, and different after every read (it counts them). A read stores its mark,
//! then loads the root; a writer unlinks nodes, then *retires* them here. Once enough are retired,
//! the writer makes every reader's mark visible (`fence::writer_fence`) and notes the readers whose mark
//! is odd: the retired nodes are freed once each of those marks has changed. A reader whose mark
//! was even then started its read after the nodes were unlinked, so it never saw them.
//!
//! A long read (a closure that runs while other threads write) must not hold back everything
//! retired meanwhile. So a reader also shows the version of the root it loaded (its *seen*
//! version; the largest possible until it is stored): a node first published by a later version
//! is not in that reader's tree, and is freed without waiting for it
//! ([`Garbage::reachable_from`]). A read nested in it loads the newest root; it marks a word of
//! its own the same way, and the nodes of a batch wait for a nested read only if it was running
//! when the batch's grace period started (one that began later loaded a root without them).
//!
//! The fence between a reader's mark and its load of the root must be a full one, which costs a
//! read more than the lookup itself. On Linux the reader's side is a compiler fence only, and the
//! writer's side is `membarrier(PRIVATE_EXPEDITED)`, which runs a full fence on every core that
//! runs a thread of the process: the cost moves to the writer, once per batch of retired nodes
//! (liburcu's "memb" flavour). Where `membarrier` is missing, and under loom and Miri, both sides
//! are full fences.
//!
//! A map no thread has read yet needs no grace period at all: its writer frees what it unlinked
//! with the write (see `Writer::retire` in `root.rs`), which keeps maps that are only written, or
//! filled before their first read, as small as their live tree.
//!
//! Nothing waits: a writer that finds a reader still inside keeps the batch and looks again at its
//! next write. A reader stuck in a long read holds back what its own tree holds, never a writer.

use std::collections::VecDeque;
use std::mem;
use std::ptr::NonNull;
use std::sync::atomic::Ordering::Acquire;

use super::node::{Dead, Hollow, Node};
use crate::fence::writer_fence;
use crate::sync::{AtomicU64, Mutex};

/// Nodes retired before a grace period is started: a few dozen writes' paths (fewer under loom and
/// Miri, so that a model's or a test's few writes reach grace periods).
const BATCH: usize = if cfg!(guarded_map_loom) {
    1
} else if cfg!(miri) {
    8
} else {
    128
};
/// Entries in retired leaves before a grace period is started, whatever their number: the memory
/// a map holds back beyond its own stays within a few such batches.
const BATCH_ENTRIES: usize = 8 * 1024;
/// Nodes a write frees at most, of those past their grace period: a write retires one per level
/// and a leaf, so this keeps up, and freeing a few at a time, interleaved with the writes'
/// allocations of the same sizes, stays in the allocator's per-thread caches (freeing a batch at
/// once overflows them: measured, about 1 200 instructions of `malloc` and `free` per write).
const FREED_PER_WRITE: usize = 8;

/// What a write unlinked, held for its `Drop` (which frees it).
pub(crate) enum Garbage<K, V> {
    /// A node nobody holds: freed with its entries and its children's counts.
    Dead(Dead<K, V>),
    /// An inner node whose children its copy adopted: its memory only.
    Hollow(Hollow<K, V>),
}

impl<K, V> Garbage<K, V> {
    /// Entries this holds (a leaf's; an inner node's are counted where its leaves are retired).
    fn entries(&self) -> usize {
        match self {
            Garbage::Dead(dead) => dead.entries(),
            Garbage::Hollow(_) => 0,
        }
    }

    /// Readers whose root is at least this version may reach what freeing this frees.
    fn reachable_from(&self) -> u64 {
        match self {
            Garbage::Dead(dead) => dead.reachable_from(),
            Garbage::Hollow(hollow) => hollow.reachable_from(),
        }
    }
}

/// One reader's words, as `collect` visits them: its mark, the version of the root its running
/// read loaded (`u64::MAX` when not known yet), and the mark of its nested reads.
pub(crate) struct Marks<'a> {
    pub(crate) mark: &'a AtomicU64,
    pub(crate) seen: &'a AtomicU64,
    pub(crate) nested: &'a AtomicU64,
}

/// A reader inside a read at the start of a grace period: the batch's nodes it may reach are
/// freed once its mark has changed.
struct Busy {
    mark: NonNull<AtomicU64>,
    seen: NonNull<AtomicU64>,
    nested: NonNull<AtomicU64>,
    word: u64,
    /// Its nested mark then: odd if a nested read was running.
    nested_word: u64,
}

impl Busy {
    /// Whether the read that was running when the grace period started still runs.
    ///
    /// # Safety
    ///
    /// The reader's words are alive (see [`Grace::collect`]).
    unsafe fn inside(&self) -> bool {
        // SAFETY: the caller's contract.
        unsafe { self.mark.as_ref() }.load(Acquire) == self.word
    }

    /// Whether the reader may still reach a node first published by version `born`.
    ///
    /// # Safety
    ///
    /// As for [`inside`](Self::inside).
    unsafe fn may_reach(&self, born: u64) -> bool {
        // SAFETY: the caller's contract.
        let (seen, nested) = unsafe { (self.seen.as_ref(), self.nested.as_ref()) };
        born <= seen.load(Acquire)
            || (self.nested_word & 1 != 0 && nested.load(Acquire) == self.nested_word)
    }
}

/// Nodes waiting for the readers that were inside when their grace period started.
struct Batch<K, V> {
    garbage: Vec<Garbage<K, V>>,
    busy: Vec<Busy>,
}

struct State<K, V> {
    /// Past its grace period, freed a few at a time (see [`FREED_PER_WRITE`]).
    ready: Vec<Garbage<K, V>>,
    pending: Vec<Garbage<K, V>>,
    /// Entries in the pending garbage's leaves.
    pending_entries: usize,
    waiting: VecDeque<Batch<K, V>>,
    /// The map is gone, with its readers: garbage is freed at once.
    closed: bool,
}

/// One map's retired nodes. Shared with its snapshots, which retire their roots here when the
/// last one lets go.
pub(crate) struct Grace<K, V> {
    state: Mutex<State<K, V>>,
}

// SAFETY: the marks in `Busy` are only dereferenced by `collect`, on behalf of the map that owns
// them and while it is alive (its contract); the garbage is `Send` when `K` and `V` are `Send +
// Sync` (the nodes' own bound).
unsafe impl<K: Send + Sync, V: Send + Sync> Send for Grace<K, V> {}
// SAFETY: as above; all state is behind the mutex.
unsafe impl<K: Send + Sync, V: Send + Sync> Sync for Grace<K, V> {}

impl<K, V> Grace<K, V> {
    pub(crate) fn new() -> Self {
        Grace {
            state: Mutex::new(State {
                ready: Vec::new(),
                pending: Vec::new(),
                pending_entries: 0,
                waiting: VecDeque::new(),
                closed: false,
            }),
        }
    }

    /// Retires `garbage`. Returns what can be freed at once (the map is gone): drop it outside any
    /// lock of the map.
    #[must_use]
    pub(crate) fn retire(
        &self,
        garbage: impl IntoIterator<Item = Garbage<K, V>>,
    ) -> Vec<Garbage<K, V>> {
        let mut state = self.state.lock();
        if state.closed {
            return garbage.into_iter().collect();
        }
        for garbage in garbage {
            state.pending_entries += garbage.entries();
            state.pending.push(garbage);
        }
        Vec::new()
    }

    /// Gives up a handle that readers of the map may still reach through an older root (a
    /// snapshot's root, a shared node the live tree stops holding).
    pub(crate) fn release(&self, node: Node<K, V>) {
        if let Some(dead) = node.release() {
            drop(self.retire([Garbage::Dead(dead)]));
        }
    }

    /// Frees what no reader can see any more, and starts a grace period for what was retired when
    /// enough was. Returns the garbage to free: drop it once the writer lock is released (freeing
    /// runs the user's destructors).
    ///
    /// # Safety
    ///
    /// Called by the map's writer, with `marks` calling its argument on the mark of every reader
    /// of the map (see the module), marks that stay alive until the map is dropped; the map must
    /// call [`close`](Self::close) before they go.
    pub(crate) unsafe fn collect(
        &self,
        marks: impl FnOnce(&mut dyn FnMut(Marks<'_>)),
    ) -> Vec<Garbage<K, V>> {
        let mut state = self.state.lock();
        let state = &mut *state;
        let free = &mut state.ready;
        for batch in &mut state.waiting {
            // SAFETY: the marks are alive while the map is (the caller's contract).
            batch.busy.retain(|busy| unsafe { busy.inside() });
            let busy = &batch.busy;
            free.extend(batch.garbage.extract_if(.., |garbage| {
                let born = garbage.reachable_from();
                // SAFETY: as above.
                !busy.iter().any(|busy| unsafe { busy.may_reach(born) })
            }));
        }
        state.waiting.retain(|batch| !batch.garbage.is_empty());
        if state.pending.len() >= BATCH || state.pending_entries >= BATCH_ENTRIES {
            state.pending_entries = 0;
            writer_fence();
            let mut busy = Vec::new();
            marks(&mut |reader| {
                let word = reader.mark.load(Acquire);
                if word & 1 != 0 {
                    busy.push(Busy {
                        mark: NonNull::from(reader.mark),
                        seen: NonNull::from(reader.seen),
                        nested: NonNull::from(reader.nested),
                        word,
                        nested_word: reader.nested.load(Acquire),
                    });
                }
            });
            let garbage = mem::take(&mut state.pending);
            if busy.is_empty() {
                free.extend(garbage);
            } else {
                // Looked at again at the next write: partly freed at once if only old readers
                // are inside.
                state.waiting.push_back(Batch { garbage, busy });
            }
        }
        let ready = &mut state.ready;
        // Keep up with what is retired, but free more when a long read held back a lot.
        let count = ready.len().min(FREED_PER_WRITE.max(ready.len() / 16));
        ready.split_off(ready.len() - count)
    }

    /// The map is being dropped, and its readers with it: returns everything retired, to free,
    /// and frees what is retired later at once.
    #[must_use]
    pub(crate) fn close(&self) -> Vec<Garbage<K, V>> {
        let mut state = self.state.lock();
        state.closed = true;
        state.pending_entries = 0;
        let mut free = mem::take(&mut state.pending);
        free.append(&mut state.ready);
        for batch in state.waiting.drain(..) {
            free.extend(batch.garbage);
        }
        free
    }

    /// Nodes retired and not yet freed (for tests; the loom build has none that ask).
    #[cfg(all(test, not(guarded_map_loom)))]
    pub(crate) fn retained(&self) -> usize {
        let state = self.state.lock();
        let waiting: usize = state.waiting.iter().map(|b| b.garbage.len()).sum();
        state.ready.len() + state.pending.len() + waiting
    }
}

#[cfg(all(test, not(guarded_map_loom)))]
mod tests {
    use super::{BATCH, Garbage, Grace, Marks};
    use crate::sync::AtomicU64;
    use crate::table::Table;
    use crate::trie::node::Node;
    use std::sync::atomic::Ordering::Relaxed;

    /// A batch of retired leaves first published by `version`.
    fn leaves(version: u64) -> Vec<Garbage<u64, u64>> {
        (0..BATCH)
            .map(|_| {
                let leaf = Node::leaf(Table::new(), 8);
                leaf.stamp(version);
                Garbage::Dead(leaf.into_dead())
            })
            .collect()
    }

    /// One reader's words.
    struct Reader {
        mark: AtomicU64,
        seen: AtomicU64,
        nested: AtomicU64,
    }

    impl Reader {
        /// A reader inside a read of a tree of version `seen`, its nested-read word `nested`.
        fn inside(seen: u64, nested: u64) -> Self {
            Reader {
                mark: AtomicU64::new(1),
                seen: AtomicU64::new(seen),
                nested: AtomicU64::new(nested),
            }
        }

        fn collect(&self, grace: &Grace<u64, u64>) -> usize {
            // SAFETY: the reader's words outlive the grace period (dropped after it).
            let freed = unsafe {
                grace.collect(|visit| {
                    visit(Marks {
                        mark: &self.mark,
                        seen: &self.seen,
                        nested: &self.nested,
                    })
                })
            };
            freed.len()
        }
    }

    #[test]
    fn retired_nodes_wait_for_the_reads_that_may_see_them() {
        let grace = Grace::new();
        // A read running on a tree of version 3.
        let reader = Reader::inside(3, 0);
        drop(grace.retire(leaves(2)));
        drop(grace.retire(leaves(4)));
        let mut freed = reader.collect(&grace);
        // Version 4's leaves are not in that read's tree: freed, a few per write.
        while grace.retained() > BATCH {
            freed += reader.collect(&grace);
        }
        assert_eq!(freed, BATCH);
        for _ in 0..2 * BATCH {
            freed += reader.collect(&grace);
        }
        assert_eq!(
            grace.retained(),
            BATCH,
            "version 2's leaves wait for the read"
        );
        // The read ends (the word changes).
        reader.mark.store(2, Relaxed);
        reader.seen.store(u64::MAX, Relaxed);
        while grace.retained() > 0 {
            freed += reader.collect(&grace);
        }
        assert_eq!(freed, 2 * BATCH);
    }

    #[test]
    fn a_nested_read_holds_back_only_the_batches_begun_while_it_ran() {
        let grace = Grace::new();
        // An outer read on version 1, with a nested read running.
        let reader = Reader::inside(1, 1);
        drop(grace.retire(leaves(5)));
        reader.collect(&grace);
        for _ in 0..BATCH {
            reader.collect(&grace);
        }
        assert_eq!(grace.retained(), BATCH, "the nested read may see version 5");
        reader.nested.store(2, Relaxed);
        while grace.retained() > 0 {
            reader.collect(&grace);
        }
        // A nested read that begins after the batch's grace period started holds nothing back.
        drop(grace.retire(leaves(6)));
        reader.collect(&grace);
        reader.nested.store(3, Relaxed);
        while grace.retained() > 0 {
            reader.collect(&grace);
        }
        assert_eq!(grace.close().len(), 0);
    }
}
