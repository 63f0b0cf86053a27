//! [`PerThread`]: one value per thread and per object, with a two-entry fast path.
//!
//! The `thread_local` crate gives every object its own per-thread values, but each lookup pays a
//! call into std's lazily initialized thread-local key plus two dependent loads (bucket, entry): about
//! a nanosecond, a third of an unsynchronized hash lookup. A hot loop almost always touches one map at
//! a time, so each thread remembers the last object it looked up and that object's value for it; a
//! repeated lookup is then one thread-local load and one comparison. The entry before it is kept
//! too, off the hot path, so that code alternating between two objects (a request that reads one
//! map and writes another; a map's reads and its write statistics) does not miss every time. No
//! crate offers this fast path.

use std::cell::Cell;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use thread_local::ThreadLocal;

/// Ids of live and dropped [`PerThread`] objects; never reused (a `u64` counter does not wrap).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Two words a [`PerThread`] user keeps beside its value in the fast path, so that a hot read needs
/// no load through the value (the `Rcu` reader keeps its shard slice there).
pub(crate) type Hot = (*const (), usize);

/// A fast-path entry: a [`PerThread`] this thread looked up.
#[derive(Clone, Copy)]
struct Last {
    /// Its id; 0 is never issued, so the initial entry matches nothing.
    id: u64,
    /// Its value for this thread.
    value: *const (),
    /// What its user keeps beside the value (see [`PerThread::set_hot`]).
    hot: Hot,
}

const NONE: Last = Last {
    id: 0,
    value: ptr::null(),
    hot: (ptr::null(), 0),
};

std::thread_local! {
    /// The last [`PerThread`] this thread looked up.
    static LAST: Cell<Last> = const { Cell::new(NONE) };
    /// The one looked up before it.
    static PREV: Cell<Last> = const { Cell::new(NONE) };
}

/// One `T` per thread that uses this object.
pub(crate) struct PerThread<T: Send> {
    id: u64,
    values: ThreadLocal<T>,
}

impl<T: Send> PerThread<T> {
    pub(crate) fn new() -> Self {
        PerThread {
            id: NEXT_ID.fetch_add(1, Relaxed),
            values: ThreadLocal::new(),
        }
    }

    /// The calling thread's value, created by `init` on its first use.
    #[inline(always)]
    pub(crate) fn get_or(&self, init: impl FnOnce() -> T) -> &T {
        self.get_or_missed(init, |_| (ptr::null(), 0)).0
    }

    /// The calling thread's value, created by `init` on its first use, and the words kept beside
    /// it. `missed` runs on the value whenever the one-entry fast path missed (so at least once per
    /// thread, with the value in its final place; `ThreadLocal` does not say whether it created the
    /// value) and returns the words to keep.
    #[inline(always)]
    pub(crate) fn get_or_missed(
        &self,
        init: impl FnOnce() -> T,
        missed: impl FnOnce(&T) -> Hot,
    ) -> (&T, Hot) {
        let last = LAST.get();
        if last.id == self.id {
            // SAFETY: `LAST` is this thread's own, and it holds `self.id` only with a pointer that
            // `get_slow` took from `self.values` on this thread. Ids are unique for the life of the
            // process, so the entry is this object's, which is alive (we are in `&self`), and
            // `ThreadLocal` neither moves nor frees a value before it is dropped itself. The value is
            // this thread's, which `ThreadLocal::get` would have returned as `&T` too.
            return (unsafe { &*last.value.cast::<T>() }, last.hot);
        }
        self.get_slow(init, missed)
    }

    #[cold]
    #[inline(never)]
    fn get_slow(&self, init: impl FnOnce() -> T, missed: impl FnOnce(&T) -> Hot) -> (&T, Hot) {
        let prev = PREV.get();
        if prev.id == self.id {
            PREV.set(LAST.get());
            LAST.set(prev);
            // SAFETY: as in `get_or_missed`: `PREV` holds `self.id` only with a pointer that this
            // function took from `self.values` on this thread (entries move between `LAST` and
            // `PREV` whole).
            return (unsafe { &*prev.value.cast::<T>() }, prev.hot);
        }
        // The reference `get_or` returns when it creates the value is derived from a `&mut` (Miri
        // sees it invalidated by the first write made through a later `get`); ours outlive this call
        // (in `LAST`, attached counters), so always take the one `get` derives from the cell.
        self.values.get_or(init);
        let value = self
            .values
            .get()
            .expect("created for this thread just above");
        let hot = missed(value);
        PREV.set(LAST.get());
        LAST.set(Last {
            id: self.id,
            value: ptr::from_ref(value).cast(),
            hot,
        });
        (value, hot)
    }

    /// Replaces the words kept beside the calling thread's value, if it is in the fast path (if
    /// not, the next lookup misses and takes them from `missed`).
    #[inline]
    pub(crate) fn set_hot(&self, hot: Hot) {
        for entry in [&LAST, &PREV] {
            let mut e = entry.get();
            if e.id == self.id {
                e.hot = hot;
                entry.set(e);
            }
        }
    }
}

impl<T: Send + Default> PerThread<T> {
    /// The calling thread's value, created by `T::default()` on its first use.
    #[inline(always)]
    pub(crate) fn get(&self) -> &T {
        self.get_or(T::default)
    }
}

impl<T: Send + Sync> PerThread<T> {
    /// Every thread's value (threads that have exited included).
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.values.iter()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::PerThread;

    #[test]
    fn each_thread_and_object_has_its_own_value() {
        let a: PerThread<Cell<u32>> = PerThread::new();
        let b: PerThread<Cell<u32>> = PerThread::new();
        let c: PerThread<Cell<u32>> = PerThread::new();
        for _ in 0..3 {
            // Alternate between two (the second entry serves) and then three objects (every
            // lookup misses both entries).
            a.get().set(a.get().get() + 1);
            b.get().set(b.get().get() + 10);
            a.get().set(a.get().get() + 1);
            c.get().set(c.get().get() + 100);
        }
        assert_eq!((a.get().get(), b.get().get(), c.get().get()), (6, 30, 300));
        std::thread::scope(|s| {
            s.spawn(|| assert_eq!(a.get().get(), 0));
        });
        drop(a);
        // A new object may reuse the old one's memory; its fresh id keeps the fast path apart.
        let d: PerThread<Cell<u32>> = PerThread::new();
        assert_eq!(d.get().get(), 0);
        assert_eq!(b.get().get(), 30);
    }
}
