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
//!
//! An entry is found by a number: the object's id, or, for a user that keeps words of its own beside
//! the value (see [`PerThread::tagged`]), a tag that also names the state those words describe, so
//! that one comparison checks both. Ids and tags come from one counter and are never reused.

use std::cell::Cell;
use std::ptr;
use std::sync::OnceLock;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::{AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};

use crate::sync::ThreadLocal;

/// Ids and tags issued so far; never reused (a `u64` counter does not wrap).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A number no [`PerThread`] id or other tag ever had, for [`PerThread::remember`].
pub(crate) fn fresh_tag() -> u64 {
    NEXT_ID.fetch_add(1, Relaxed)
}

/// Two words a [`PerThread`] user keeps beside its value in the fast path, so that a hot read needs
/// no load through the value (the `Rcu` reader keeps its shard slice there).
pub(crate) type Hot = (*const (), usize);

/// A fast-path entry: a [`PerThread`] this thread looked up.
#[derive(Clone, Copy)]
struct Last {
    /// Its id or a tag (see [`PerThread::remember`]); 0 is never issued, so the initial entry
    /// matches nothing.
    id: u64,
    /// Its value for this thread.
    value: *const (),
    /// What its user keeps beside the value (see [`PerThread::remember`]).
    hot: Hot,
}

const NONE: Last = Last {
    id: 0,
    value: ptr::null(),
    hot: (ptr::null(), 0),
};

#[cfg(not(guarded_map_loom))]
std::thread_local! {
    /// The last [`PerThread`] this thread looked up.
    static LAST: Cell<Last> = const { Cell::new(NONE) };
    /// The one looked up before it.
    static PREV: Cell<Last> = const { Cell::new(NONE) };
}

// Loom runs its modelled threads on one OS thread: there the entries are loom's thread locals.
#[cfg(guarded_map_loom)]
loom::thread_local! {
    static LAST: Cell<Last> = Cell::new(NONE);
    static PREV: Cell<Last> = Cell::new(NONE);
}

/// Reads one of this thread's fast-path entries.
#[inline(always)]
fn load(entry: &'static LocalKey<Cell<Last>>) -> Last {
    entry.with(Cell::get)
}

/// Writes one of this thread's fast-path entries.
#[inline(always)]
fn store(entry: &'static LocalKey<Cell<Last>>, value: Last) {
    entry.with(|cell| cell.set(value));
}

#[cfg(guarded_map_loom)]
use loom::thread::LocalKey;
#[cfg(not(guarded_map_loom))]
use std::thread::LocalKey;

/// One `T` per thread that uses this object.
pub(crate) struct PerThread<T: Send> {
    id: u64,
    /// Made on the first value: a `ThreadLocal` holds 63 bucket pointers inline (504 bytes), and
    /// many maps never have a value here (statistics their backend keeps elsewhere, an `Rcu` map
    /// never read).
    values: OnceLock<Box<ThreadLocal<T>>>,
    /// How many values were created: `ThreadLocal`'s iterator looks at every one of its 63 buckets
    /// (about 600 instructions even for one value), so [`fold`](Self::fold) stops at this count.
    created: AtomicUsize,
}

impl<T: Send> PerThread<T> {
    pub(crate) fn new() -> Self {
        PerThread {
            id: fresh_tag(),
            values: OnceLock::new(),
            created: AtomicUsize::new(0),
        }
    }

    /// The calling thread's value, created by `init` on its first use.
    #[inline(always)]
    pub(crate) fn get_or(&self, init: impl FnOnce() -> T) -> &T {
        match self.find(load(&LAST), self.id) {
            Some((value, _)) => value,
            None => self.get_slow(init),
        }
    }

    #[cold]
    #[inline(never)]
    fn get_slow(&self, init: impl FnOnce() -> T) -> &T {
        if let Some((value, _)) = self.tagged_prev(self.id) {
            return value;
        }
        let value = self.value_or(init);
        // SAFETY: `self.id` is this object's own, so no other object's entry carries it.
        unsafe { self.remember(self.id, value, (ptr::null(), 0)) };
        value
    }

    /// The fast-path entry `entry`'s value and words, if the entry carries `id`.
    #[inline(always)]
    fn find(&self, entry: Last, id: u64) -> Option<(&T, Hot)> {
        // SAFETY: `LAST` and `PREV` are this thread's own, and an entry carries `id` only if
        // `remember` put it there, with a value of `self.values` taken on this thread: `id` is this
        // object's id or a tag that `remember`'s contract keeps to this object (never to another;
        // ids and tags are unique for the life of the process). The object is alive (we are in
        // `&self`), and `ThreadLocal` neither moves nor frees a value before it is dropped itself.
        // The value is this thread's, which `ThreadLocal::get` would have returned as `&T` too.
        (entry.id == id).then(|| (unsafe { &*entry.value.cast::<T>() }, entry.hot))
    }

    /// The calling thread's value and the words kept beside it, if the last entry looked up carries
    /// `tag` (see [`remember`](Self::remember)). One thread-local load and one comparison.
    #[inline(always)]
    pub(crate) fn tagged(&self, tag: u64) -> Option<(&T, Hot)> {
        self.find(load(&LAST), tag)
    }

    /// As [`tagged`](Self::tagged), for the entry before the last one, which then becomes the last.
    pub(crate) fn tagged_prev(&self, tag: u64) -> Option<(&T, Hot)> {
        let prev = load(&PREV);
        let found = self.find(prev, tag)?;
        store(&PREV, load(&LAST));
        store(&LAST, prev);
        Some(found)
    }

    /// The calling thread's value, created by `init` on its first use, without the fast path.
    pub(crate) fn value_or(&self, init: impl FnOnce() -> T) -> &T {
        // The reference `get_or` returns when it creates the value is derived from a `&mut` (Miri
        // sees it invalidated by the first write made through a later `get`); ours outlive this call
        // (in `LAST`, attached counters), so always take the one `get` derives from the cell.
        let values = self.values.get_or_init(|| Box::new(ThreadLocal::new()));
        values.get_or(|| {
            // Before the value is inserted, so that `fold` never sees more values than this.
            self.created.fetch_add(1, Release);
            init()
        });
        values.get().expect("created for this thread just above")
    }

    /// The calling thread's value, if it has one, without creating it.
    pub(crate) fn existing(&self) -> Option<&T> {
        self.values.get()?.get()
    }

    /// Makes `value`, with `hot` beside it, the last entry looked up, found by `tag`.
    ///
    /// # Safety
    ///
    /// `value` must be this thread's value (from [`value_or`](Self::value_or) or a lookup), and
    /// `tag` this object's id or a tag from [`fresh_tag`] that no other object is ever given.
    pub(crate) unsafe fn remember(&self, tag: u64, value: &T, hot: Hot) {
        let value = ptr::from_ref(value).cast();
        let last = load(&LAST);
        // A value already last (under an older tag) is replaced, not pushed down: the entry before
        // it stays.
        if last.value != value {
            store(&PREV, last);
        }
        store(
            &LAST,
            Last {
                id: tag,
                value,
                hot,
            },
        );
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
    /// Folds every thread's value (threads that have exited included) into `init`.
    ///
    /// Values are met in the order of their threads' ids, not of their creation, so the walk stops
    /// after as many values as were created only if none was created meanwhile (a new one met
    /// early would otherwise take the place of an old one met late); if one was, it walks again.
    /// A value created meanwhile may be left out; every value that existed before the call is in.
    pub(crate) fn fold<A: Clone>(&self, init: A, mut f: impl FnMut(A, &T) -> A) -> A {
        loop {
            // Counted before the value is inserted (see `value_or`): at most `created` are seen.
            let created = self.created.load(Acquire);
            let Some(values) = self.values.get() else {
                return init;
            };
            let folded = values.iter().take(created).fold(init.clone(), &mut f);
            if self.created.load(Acquire) == created {
                return folded;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::{PerThread, fresh_tag};

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

    #[test]
    fn fold_sees_every_value_while_others_are_created() {
        use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

        let counts: PerThread<AtomicU64> = PerThread::new();
        counts.get().store(1, Relaxed);
        std::thread::scope(|s| {
            // Threads come and go, each creating its value or taking over an exited thread's (ids
            // are reused, so new values may sit before old ones in the walk); every fold still
            // sees every count made by a thread that is done.
            for round in 0..20 {
                let creators: Vec<_> = (0..4)
                    .map(|_| s.spawn(|| counts.get().fetch_add(1, Relaxed)))
                    .collect();
                let seen = counts.fold(0, |n, c| n + c.load(Relaxed));
                assert!(
                    seen > round * 4,
                    "fold saw {seen} of at least {}",
                    round * 4 + 1
                );
                for creator in creators {
                    creator.join().unwrap();
                }
            }
        });
        assert_eq!(counts.fold(0, |n, c| n + c.load(Relaxed)), 81);
    }

    #[test]
    fn a_tagged_entry_is_found_by_its_tag_only() {
        let a: PerThread<Cell<u32>> = PerThread::new();
        let b: PerThread<Cell<u32>> = PerThread::new();
        let (old, new) = (fresh_tag(), fresh_tag());
        let value = a.value_or(|| Cell::new(7));
        // SAFETY: this thread's value of `a`; the tags are fresh and used for `a` only.
        unsafe { a.remember(old, value, (value.as_ptr().cast(), 1)) };
        assert!(
            a.tagged(old)
                .is_some_and(|(v, hot)| v.get() == 7 && hot.1 == 1)
        );
        assert!(
            a.tagged(new).is_none(),
            "an older tag never stands for a newer one"
        );
        // Remembered again under a new tag, the value replaces its own entry...
        // SAFETY: as above.
        unsafe { a.remember(new, value, (value.as_ptr().cast(), 2)) };
        assert!(a.tagged(old).is_none() && a.tagged_prev(old).is_none());
        // ...and another object's lookup pushes it down, where `tagged_prev` finds it.
        b.get().set(1);
        assert!(a.tagged(new).is_none());
        assert!(a.tagged_prev(new).is_some_and(|(_, hot)| hot.1 == 2));
        assert!(
            a.tagged(new).is_some(),
            "found in second place, it is last again"
        );
    }
}
