//! [`PerThread`]: one value per thread and per object, with a two-entry fast path.
//!
//! A thread's values for all objects live in its own [`arena`], so that values written by
//! different threads never share a cache line without each taking a padded line of its own (see
//! there). An object finds a thread's value in a table indexed by the thread's number ([`home`]),
//! in buckets of doubling size allocated as numbers reach them: eight bytes per thread number.
//!
//! That lookup costs a thread-local load and two dependent loads. A hot loop almost always touches
//! one map at a time, so each thread remembers the last object it looked up and that object's value
//! for it; a repeated lookup is then one thread-local load and one comparison. The entry before it
//! is kept too, off the hot path, so that code alternating between two objects (a request that reads
//! one map and writes another) does not miss every time. No crate offers this fast path, nor
//! per-thread values that are not padded each to a line of their own.
//!
//! An entry is found by the object's id; ids come from one counter and are never reused, so an
//! object that takes a dropped one's memory never matches its entries.

mod arena;
mod home;

use std::ptr::{self, NonNull};
use std::slice;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};

use crate::sync::{AtomicPtr, AtomicUsize, fence};
use home::{LAST, Last, PREV, load, store};

/// Ids issued so far; never reused (a `u64` counter does not wrap).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A number no [`PerThread`] ever had as its id.
fn fresh_id() -> u64 {
    NEXT_ID.fetch_add(1, Relaxed)
}

/// Buckets in a table: bucket `b` holds the values of thread numbers `2^b - 1 .. 2^(b+1) - 1`.
const BUCKETS: usize = 32;

/// Where thread number `number` is: its bucket and its index there.
fn position(number: usize) -> (usize, usize) {
    let n = number + 1;
    let bucket = (usize::BITS - 1 - n.leading_zeros()) as usize;
    assert!(bucket < BUCKETS, "more than 2^32 threads at once");
    (bucket, n - (1 << bucket))
}

/// The values of one object, by thread number.
struct Table<T> {
    /// Each the first of `1 << b` cells, or null until a thread of that bucket has a value.
    buckets: [AtomicPtr<AtomicPtr<T>>; BUCKETS],
}

/// One `T` per thread that uses this object.
pub(crate) struct PerThread<T: Send> {
    id: u64,
    /// Made on the first value: many objects never have one (statistics their backend keeps
    /// elsewhere, an `Rcu` map never read).
    table: AtomicPtr<Table<T>>,
    /// How many values were created (each thread number's first use).
    created: AtomicUsize,
}

// `PerThread<T>` is `Send` and `Sync` for every `T: Send` (its fields are atomics), as it must be:
// each value is used by one thread at a time (its number's), and shared only through `fold`,
// which needs `T: Sync`.

impl<T: Send> PerThread<T> {
    pub(crate) fn new() -> Self {
        PerThread {
            id: fresh_id(),
            table: AtomicPtr::new(ptr::null_mut()),
            created: AtomicUsize::new(0),
        }
    }

    /// The calling thread's value, created by `init` on its first use.
    #[inline(always)]
    pub(crate) fn get_or(&self, init: impl FnOnce() -> T) -> &T {
        // Both entries inline: code that alternates between two objects (an adaptive map's gate
        // and its `Rcu` store's readers, on every read) stays on the fast path.
        if let Some(value) = self.find(load(&LAST)) {
            return value;
        }
        match self.find(load(&PREV)) {
            Some(value) => value,
            None => self.get_slow(init),
        }
    }

    #[cold]
    #[inline(never)]
    fn get_slow(&self, init: impl FnOnce() -> T) -> &T {
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
        // only if `get_slow` put it there, with this object's value for this thread's number (ids
        // are unique for the life of the process; a thread that gives its number back forgets
        // its entries first, see `home.rs`). The object is alive (we are in `&self`), and values
        // are neither moved nor freed before it is dropped.
        (entry.id == self.id).then(|| unsafe { &*entry.value.cast::<T>() })
    }

    /// The calling thread's value, created by `init` on its first use, without the fast path.
    pub(crate) fn value_or(&self, init: impl FnOnce() -> T) -> &T {
        let home = home::current();
        let cell = self.cell(home.number);
        let found = cell.load(Acquire);
        if !found.is_null() {
            // SAFETY: a value in this object's table lives until the object is dropped, and this
            // thread's number is this thread's alone while it runs.
            return unsafe { &*found };
        }
        let value = init();
        // Before the value is stored, and fenced, so that a user who asks `created` after a fence
        // of its own either sees this value counted or has its earlier stores seen by this thread
        // from here on (the `Rcu` writer frees what no reader can have seen).
        self.created.fetch_add(1, SeqCst);
        fence(SeqCst);
        let value = home.arena.alloc(value);
        // Release: whoever loads the pointer sees the value written.
        cell.store(value.as_ptr(), Release);
        // SAFETY: just made; it lives until the object is dropped.
        unsafe { value.as_ref() }
    }

    /// How many values were created (each thread number's first use), as of now.
    pub(crate) fn created(&self) -> usize {
        self.created.load(Relaxed)
    }

    /// The calling thread's value, if it has one, without creating it.
    pub(crate) fn existing(&self) -> Option<&T> {
        let (bucket, index) = position(home::current().number);
        let value = self.bucket(bucket)?[index].load(Acquire);
        // SAFETY: as in `value_or`.
        (!value.is_null()).then(|| unsafe { &*value })
    }

    /// The cells of bucket `bucket`, if it was made.
    fn bucket(&self, bucket: usize) -> Option<&[AtomicPtr<T>]> {
        cells(&self.table()?.buckets[bucket], bucket)
    }

    /// Every bucket that was made.
    fn buckets(&self) -> impl Iterator<Item = &[AtomicPtr<T>]> {
        let slots = self.table().map(|table| table.buckets.iter());
        slots
            .into_iter()
            .flatten()
            .enumerate()
            .filter_map(|(bucket, slot)| cells(slot, bucket))
    }

    /// The table, if a value was ever made.
    fn table(&self) -> Option<&Table<T>> {
        // SAFETY: a published table lives until the object is dropped.
        unsafe { self.table.load(Acquire).as_ref() }
    }

    /// The cell of thread number `number`, with its table and bucket made if they were not.
    fn cell(&self, number: usize) -> &AtomicPtr<T> {
        let (bucket, index) = position(number);
        let table = published(
            &self.table,
            || {
                Box::into_raw(Box::new(Table {
                    buckets: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
                }))
            },
            // SAFETY: made by `Box::into_raw` just above, never published.
            |lost| drop(unsafe { Box::from_raw(lost) }),
        );
        // SAFETY: a published table lives until the object is dropped.
        let slot = &unsafe { &*table }.buckets[bucket];
        let cells = published(
            slot,
            || {
                let cells: Box<[AtomicPtr<T>]> = (0..1usize << bucket)
                    .map(|_| AtomicPtr::new(ptr::null_mut()))
                    .collect();
                Box::into_raw(cells).cast::<AtomicPtr<T>>()
            },
            // SAFETY: made by `Box::into_raw` of a slice of this length just above, never
            // published.
            |lost| drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(lost, 1 << bucket)) }),
        );
        // SAFETY: a published bucket of `1 << bucket` cells lives until the object is dropped.
        let cells = unsafe { slice::from_raw_parts(cells, 1 << bucket) };
        &cells[index]
    }
}

/// The cells of bucket `bucket` of a table, whose pointer is in `slot`, if it was made.
fn cells<T>(slot: &AtomicPtr<AtomicPtr<T>>, bucket: usize) -> Option<&[AtomicPtr<T>]> {
    let cells = slot.load(Acquire);
    // SAFETY: a published bucket of `1 << bucket` cells lives until its object is dropped, and
    // the slot is in that object's table.
    (!cells.is_null()).then(|| unsafe { slice::from_raw_parts(cells, 1 << bucket) })
}

/// The pointer in `slot`, published from `make` if it was null; a thread that loses the race to
/// publish hands what it made to `unmake`.
fn published<P>(
    slot: &AtomicPtr<P>,
    make: impl FnOnce() -> *mut P,
    unmake: impl FnOnce(*mut P),
) -> *mut P {
    let found = slot.load(Acquire);
    if !found.is_null() {
        return found;
    }
    let made = make();
    match slot.compare_exchange(ptr::null_mut(), made, AcqRel, Acquire) {
        Ok(_) => made,
        Err(won) => {
            unmake(made);
            won
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
    /// Folds every thread's value (threads that have exited included) into `init`. A value created
    /// meanwhile may be left out; every value that existed before the call is in. Values live as
    /// long as `self` (an exited thread's pass to the next thread), so `f` may keep references.
    pub(crate) fn fold<'s, A>(&'s self, init: A, f: impl FnMut(A, &'s T) -> A) -> A {
        self.buckets()
            .flatten()
            .filter_map(|cell| {
                // SAFETY: as in `value_or`: a value lives until the object is dropped, so for
                // `'s`; shared access to a value needs `T: Sync`.
                unsafe { cell.load(Acquire).as_ref() }
            })
            .fold(init, f)
    }
}

impl<T: Send> Drop for PerThread<T> {
    fn drop(&mut self) {
        for cells in self.buckets() {
            for cell in cells {
                if let Some(value) = NonNull::new(cell.load(Acquire)) {
                    // SAFETY: made by `Arena::alloc` in `value_or`, freed once (here), and no
                    // reference to it is left: `&mut self`.
                    unsafe { arena::free(value) };
                }
            }
            // SAFETY: made by `Box::into_raw` of a slice of this length in `cell`, freed once.
            drop(unsafe { Box::from_raw(ptr::from_ref(cells).cast_mut()) });
        }
        let table = self.table.load(Acquire);
        if !table.is_null() {
            // SAFETY: made by `Box::into_raw` in `cell`, freed once.
            drop(unsafe { Box::from_raw(table) });
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

    #[test]
    fn an_exited_threads_values_go_to_the_next_thread() {
        use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

        let counts: PerThread<AtomicU64> = PerThread::new();
        let threads = if cfg!(miri) { 8 } else { 200 };
        for _ in 0..threads {
            std::thread::scope(|s| {
                s.spawn(|| counts.get().fetch_add(1, Relaxed));
            });
        }
        assert_eq!(counts.fold(0, |n, c| n + c.load(Relaxed)), threads);
        // One after another, they took the few numbers free at the time (other tests run threads
        // meanwhile), not one each.
        let created = counts.created();
        assert!(
            created < threads as usize / 2,
            "{created} values for {threads} threads"
        );
        assert!(super::home::numbers_issued() >= created);
    }

    #[test]
    fn threads_values_never_share_a_chunk() {
        let a: PerThread<u64> = PerThread::new();
        let b: PerThread<u64> = PerThread::new();
        let chunk = |v: &u64| std::ptr::from_ref(v).addr() / 4096;
        let (a_here, b_here) = (chunk(a.get()), chunk(b.get()));
        assert_eq!(a_here, b_here, "one thread's values sit together");
        std::thread::scope(|s| {
            s.spawn(|| {
                assert_ne!(chunk(a.get()), a_here);
                assert_ne!(chunk(b.get()), b_here);
            });
        });
    }
}
