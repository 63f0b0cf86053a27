//! The `Rcu` read path: each thread marks its reads of a map, so that its writer knows when no
//! reader can still see what a write unlinked (see `trie/grace.rs`).
//!
//! A read finds the calling thread's [`Reader`] for this map (one thread-local load and one
//! comparison while a loop uses one map), stores its mark, fences (a compiler fence where
//! `membarrier` is available), loads the root and looks the key up. It takes no count on what it
//! reads, and keeps nothing between reads but its reader (32 bytes in the thread's arena).
//!
//! The mark is the word of the thread's [`ReadCounters`]: odd while a read runs, and counting
//! outermost reads, so one store when a read begins and one when it ends both mark and count it.
//! Reads nest (a closure may read the map again): a nested read finds the mark set and leaves it
//! alone. The same mark tells a write on this thread that it is nested in a read (see
//! [`Readers::reading_here`]).
//!
//! Beside the mark, the outermost read shows the version of the root it loaded, so that what
//! writes retire while it runs (a closure may run long) is freed unless its tree holds it. A
//! nested read, which loads the newest root, marks a word of its own, so that a grace period
//! started while it runs waits for it to end.

use std::sync::atomic::{Ordering::Acquire, Ordering::Relaxed, Ordering::SeqCst, compiler_fence};

use crate::fence::{expedited, reader_fence};
use crate::per_thread::PerThread;
use crate::stats::{Attached, Attachment, Counts, Entered, Kept, ReadCounters};
use crate::sync::{AtomicU64, wait_while};
use crate::trie::grace::Marks;
use crate::trie::root::{Current, Root};

/// The per-thread readers of one `Rcu` map.
pub(crate) struct Readers {
    /// Attached as a whole: the map's statistics sum every thread's reader.
    slots: Attached<PerThread<Reader>>,
}

/// One thread's reader of one map, created on the thread's first read: 32 bytes in the thread's
/// arena, beside its readers of other maps (see `per_thread`).
struct Reader {
    /// The thread's read counts and the marks of its running reads.
    reads: ReadCounters,
    /// The version of the root the running outermost read loaded; `u64::MAX` between reads (see
    /// `trie/grace.rs`).
    seen: AtomicU64,
}

impl Default for Reader {
    fn default() -> Self {
        Reader {
            reads: ReadCounters::default(),
            seen: AtomicU64::new(u64::MAX),
        }
    }
}

impl Kept for PerThread<Reader> {
    fn add_to(&self, total: &mut Counts) {
        self.fold((), |(), reader| reader.reads.add_to(total));
    }
}

impl Readers {
    /// Readers whose read counts are attached through `attachment`.
    pub(crate) fn new(attachment: Attachment) -> Self {
        let mut slots = Attached::new(Box::new(PerThread::new()));
        slots.attach_to(attachment, |slots, keep| keep.keep(slots));
        Readers { slots }
    }

    /// Whether a read of this map runs on the calling thread (a write nested in it is refused).
    pub(crate) fn reading_here(&self) -> bool {
        self.slots
            .existing()
            .is_some_and(|reader| reader.reads.running())
    }

    /// Runs `f` with `arg` on the current tree of `root` (with the calling thread's read counters
    /// when `counting`, the spec's compile-time statistics switch), if `valid()`, asked once the
    /// read is marked and fenced and before the root is loaded; otherwise the read is abandoned,
    /// uncounted, and `arg` handed back (`valid` is `|| true` for an `Rcu` map). An adaptive map validates its form so (see `backend/adaptive/gate.rs`): a
    /// switch away from this form changes the form, fences, and waits for the marked reads to end
    /// ([`wait_for_reads`](Self::wait_for_reads)) before it empties the tree.
    #[inline(always)]
    pub(crate) fn read_if<K, V, R, T>(
        &self,
        root: &Root<K, V>,
        counting: bool,
        valid: impl FnOnce() -> bool,
        arg: T,
        f: impl FnOnce(Current<'_, K, V>, Option<&ReadCounters>, T) -> R,
    ) -> Result<R, T> {
        let reader = self.slots.get();
        if !expedited() {
            return Self::read_fenced(reader, root, counting, valid, arg, f);
        }
        // The writer's `membarrier` supplies the hardware fence (see `trie/grace.rs`).
        Self::marked(
            reader,
            root,
            counting,
            || compiler_fence(SeqCst),
            valid,
            arg,
            f,
        )
    }

    /// Runs `f` on the tree of `root` inside a read marked on `reader`, fenced by `fence`, if
    /// `valid()` after the fence.
    #[inline(always)]
    fn marked<K, V, R, T>(
        reader: &Reader,
        root: &Root<K, V>,
        counting: bool,
        fence: impl FnOnce(),
        valid: impl FnOnce() -> bool,
        arg: T,
        f: impl FnOnce(Current<'_, K, V>, Option<&ReadCounters>, T) -> R,
    ) -> Result<R, T> {
        let running = Running::enter(reader);
        fence();
        if !valid() {
            running.abandon();
            return Err(arg);
        }
        // SAFETY: the mark is stored and fenced, and the tree is used only by `f`, inside this
        // read: `f`'s result cannot borrow from it (the closure is generic over the lifetime).
        let tree = unsafe { root.read() };
        running.loaded(tree.born());
        let out = f(tree, counting.then_some(&reader.reads), arg);
        drop(running);
        Ok(out)
    }

    /// [`read_if`](Self::read_if) in a process without `membarrier`: every read fences.
    #[cold]
    #[inline(never)]
    fn read_fenced<K, V, R, T>(
        reader: &Reader,
        root: &Root<K, V>,
        counting: bool,
        valid: impl FnOnce() -> bool,
        arg: T,
        f: impl FnOnce(Current<'_, K, V>, Option<&ReadCounters>, T) -> R,
    ) -> Result<R, T> {
        Self::marked(reader, root, counting, reader_fence, valid, arg, f)
    }

    /// Waits until every read marked now has ended (a grace period that blocks): for a switch of
    /// an adaptive map, which has changed the form and fenced (`writer_fence`) before.
    pub(crate) fn wait_for_reads(&self) {
        let words: Vec<&AtomicU64> = self.slots.fold(Vec::new(), |mut words, reader| {
            words.extend([reader.reads.mark(), reader.reads.nested_mark()]);
            words
        });
        wait_for_marks(words);
    }

    /// Whether any thread has ever read the map (see `Writer::retire`).
    pub(crate) fn any(&self) -> bool {
        self.slots.created() > 0
    }

    /// Calls `visit` on every reader's words (for the writer's grace periods).
    pub(crate) fn marks(&self, visit: &mut dyn FnMut(Marks<'_>)) {
        self.slots.fold((), |(), reader| {
            visit(Marks {
                mark: reader.reads.mark(),
                seen: &reader.seen,
                nested: reader.reads.nested_mark(),
            });
        });
    }
}

/// Waits until each of the mark `words` (see [`ReadCounters`]) that is odd now has changed: the
/// reads running now have ended. The caller has fenced (`writer_fence`) after what those reads
/// must see.
pub(crate) fn wait_for_marks<'a>(words: impl IntoIterator<Item = &'a AtomicU64>) {
    let running: Vec<(&AtomicU64, u64)> = words
        .into_iter()
        .map(|word| (word, word.load(Acquire)))
        .filter(|&(_, value)| value & 1 != 0)
        .collect();
    for (word, value) in running {
        wait_while(|| word.load(Acquire) == value);
    }
}

/// One running read: marks the reader as reading (see [`ReadCounters::enter`]), and clears the
/// mark when the read ends, also when its closure panics.
struct Running<'a> {
    reader: &'a Reader,
    entered: Entered,
}

impl<'a> Running<'a> {
    #[inline(always)]
    fn enter(reader: &'a Reader) -> Self {
        let entered = reader.reads.enter();
        Running { reader, entered }
    }

    /// The outermost read loaded a root of version `born`.
    #[inline(always)]
    fn loaded(&self, born: u64) {
        if let Entered::Outermost(_) = self.entered {
            self.reader.seen.store(born, Relaxed);
        }
    }
}

impl Running<'_> {
    /// Ends the read uncounted, before it loaded anything.
    #[inline(always)]
    fn abandon(self) {
        let running = std::mem::ManuallyDrop::new(self);
        running.reader.reads.abandon(running.entered);
    }
}

impl Drop for Running<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        if let Entered::Outermost(_) = self.entered {
            // Before the mark clears: a writer that sees the next read's mark sees this too.
            self.reader.seen.store(u64::MAX, Relaxed);
        }
        self.reader.reads.leave(self.entered);
    }
}
