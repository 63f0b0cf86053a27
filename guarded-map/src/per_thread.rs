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
//! An entry is found by the object's id; ids come from one counter and are never reused, so an
//! object that takes a dropped one's memory never matches its entries.

use std::cell::Cell;
use std::ptr;
use std::sync::OnceLock;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::{AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::SeqCst, fence};

use crate::sync::ThreadLocal;

/// Ids issued so far; never reused (a `u64` counter does not wrap).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A number no [`PerThread`] ever had as its id.
fn fresh_id() -> u64 {
    NEXT_ID.fetch_add(1, Relaxed)
}

/// A fast-path entry: a [`PerThread`] this thread looked up.
#[derive(Clone, Copy)]
struct Last {
    /// Its id; 0 is never issued, so the initial entry matches nothing.
    id: u64,
    /// Its value for this thread.
    value: *const (),
}

const NONE: Last = Last {
    id: 0,
    value: ptr::null(),
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
            id: fresh_id(),
            values: OnceLock::new(),
            created: AtomicUsize::new(0),
        }
    }

    /// The calling thread's value, created by `init` on its first use.
    #[inline(always)]
    pub(crate) fn get_or(&self, init: impl FnOnce() -> T) -> &T {
        match self.find(load(&LAST)) {
            Some(value) => value,
            None => self.get_slow(init),
        }
    }

    #[cold]
    #[inline(never)]
    fn get_slow(&self, init: impl FnOnce() -> T) -> &T {
        let prev = load(&PREV);
        if let Some(value) = self.find(prev) {
            store(&PREV, load(&LAST));
            store(&LAST, prev);
            return value;
        }
        let value = self.value_or(init);
        store(&PREV, load(&LAST));
        store(
            &LAST,
            Last {
                id: self.id,
                value: ptr::from_ref(value).cast(),
            },
        );
        value
    }

    /// The value of fast-path entry `entry`, if it is this object's.
    #[inline(always)]
    fn find(&self, entry: Last) -> Option<&T> {
        // SAFETY: `LAST` and `PREV` are this thread's own, and an entry carries this object's id
        // only if `get_slow` put it there, with a value of `self.values` taken on this thread (ids
        // are unique for the life of the process). The object is alive (we are in `&self`), and
        // `ThreadLocal` neither moves nor frees a value before it is dropped itself. The value is
        // this thread's, which `ThreadLocal::get` would have returned as `&T` too.
        (entry.id == self.id).then(|| unsafe { &*entry.value.cast::<T>() })
    }

    /// The calling thread's value, created by `init` on its first use, without the fast path.
    pub(crate) fn value_or(&self, init: impl FnOnce() -> T) -> &T {
        // The reference `get_or` returns when it creates the value is derived from a `&mut` (Miri
        // sees it invalidated by the first write made through a later `get`); ours outlive this call
        // (in `LAST`, attached counters), so always take the one `get` derives from the cell.
        let values = self.values.get_or_init(|| Box::new(ThreadLocal::new()));
        values.get_or(|| {
            // Before the value is inserted, so that `fold` never sees more values than this; and
            // fenced, so that a user who asks `created` after a fence of its own either sees this
            // value counted or has its earlier stores seen by this thread from here on (the `Rcu`
            // writer frees what no reader can have seen).
            self.created.fetch_add(1, SeqCst);
            fence(SeqCst);
            init()
        });
        values.get().expect("created for this thread just above")
    }

    /// How many values were created (each thread's first use), as of now.
    pub(crate) fn created(&self) -> usize {
        self.created.load(Relaxed)
    }

    /// The calling thread's value, if it has one, without creating it.
    pub(crate) fn existing(&self) -> Option<&T> {
        self.values.get()?.get()
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
}
