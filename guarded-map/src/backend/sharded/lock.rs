//! [`ShardLock`]: a reader-writer lock whose word also counts the reads it served.
//!
//! Why not `parking_lot::RwLock`: a `Sharded` read pays two locked instructions on the shard's lock
//! word, to take the lock and to release it. Counting the read anywhere else puts a load and a store
//! between them, where nothing overlaps: a locked instruction waits for every older store. That cost
//! a measurable share of a read of a cache-resident map (BENCHMARKS.md). Here the release's one `fetch_add` both drops the reader
//! and counts the read, so counting costs nothing; no lock crate counts its acquisitions.
//!
//! The word holds a writer bit, a waiting bit, the number of readers inside, and above them a
//! wrapping count of the counted reads that left. Uncontended, a reader enters with one `fetch_add`
//! (no compare-and-swap to retry when another reader comes or goes) and a writer with one
//! compare-and-swap; each leaves with one read-modify-write. A thread that cannot enter spins
//! briefly, trying again ([`SPIN_ROUNDS`]), and then queues on a `parking_lot` mutex, which parks it. The head of that queue sets the waiting bit, which turns
//! new readers and writers away (so a waiting writer is not starved by a stream of readers), and
//! parks on the word until whoever is inside leaves: the last reader or the writer wakes it.
//!
//! As with `parking_lot`'s lock, a thread that read-locks a shard it already holds would deadlock
//! once a writer waits between the two. A read nested in a read of the same map (which the map
//! allows, see `reentry`) therefore enters with [`ShardLock::read_nested`], past a waiting writer.

use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use crate::stats::{Counter, Counts, Kept, WriteCounts};
use crate::sync::{
    AtomicU64, ConstPtr, MutPtr, Mutex, ParkingSpot, UnsafeCell, spin_until, yield_now,
};

/// A writer is inside.
const WRITER: u64 = 1;
/// The head of the queue waits to enter: readers and writers that were not queued step aside.
const WAITING: u64 = 1 << 1;
/// One reader inside; readers occupy bits 2 to 16.
const READER: u64 = 1 << 2;
const READERS: u64 = 0x7FFF << 2;
/// The top reader bit: a reader that finds it set backs out, so the field never overflows.
const READERS_FULL: u64 = 1 << 16;
/// Where the count of reads starts; it takes the rest of the word.
const COUNT_SHIFT: u32 = 17;
const COUNT_BITS: u32 = u64::BITS - COUNT_SHIFT;
/// One counted read.
const DONE: u64 = 1 << COUNT_SHIFT;
/// The count's bits below its top one: all set in the word a release finds when the count it adds
/// flips the top bit.
const BELOW_TOP: u64 = ((1 << (COUNT_BITS - 1)) - 1) << COUNT_SHIFT;

/// The lock's word, the overflow of its read count, and the counts of the writes made under it;
/// readable without the lock's type. `repr(C)`: the word first, the counts last (see [`ShardLock`]).
#[repr(C)]
pub(crate) struct LockWord {
    state: AtomicU64,
    /// How many times the top bit of the read count has flipped (see [`widen`]).
    flips: AtomicU64,
    /// Where the head of the queue parks.
    spot: ParkingSpot,
    /// Beside the word, so that a write guard reaches them through the pointer it holds anyway.
    writes: WriteCounts,
}

/// A reader-writer lock over `T` that counts the reads its `COUNTED` read guards make, and keeps
/// the counts of the writes made under it.
///
/// `repr(C)`, in this order: the data (a table's header), then the word, whose own state comes
/// first and its write counts last. So the data and the state share a cache line with the gauges a
/// shard puts before the lock, and what only some writes touch (the write counts, the queue) comes
/// after.
#[repr(C)]
pub(crate) struct ShardLock<T> {
    data: UnsafeCell<T>,
    word: LockWord,
    /// The queue of threads that could not enter at once; its holder is the head.
    queue: Mutex<()>,
}

// SAFETY: the lock hands out `&T` to several threads at once only under the read lock and `&mut T`
// to one thread only under the write lock, as `RwLock` does, which is `Sync` on the same bounds.
unsafe impl<T: Send + Sync> Sync for ShardLock<T> {}
// SAFETY: owning the lock is owning a `T`.
unsafe impl<T: Send> Send for ShardLock<T> {}

impl Kept for LockWord {
    /// Adds the counted reads and the writes. Misses are counted in the per-thread slots: they are rarer, and
    /// the lock cannot tell them.
    #[inline]
    fn add_to(&self, total: &mut Counts) {
        total.add_one(Counter::Get, self.reads());
        self.writes.add_to(total);
    }
}

impl LockWord {
    /// The counts of the writes made under this lock, which only its holder writes (see
    /// [`WriteCounts::record`]). Borrowed from the lock, not a guard, so that a write can count
    /// while it holds an entry of the data.
    #[inline(always)]
    pub(crate) fn write_counts(&self) -> &WriteCounts {
        &self.writes
    }

    /// Reads counted so far (a running one not included).
    fn reads(&self) -> u64 {
        // Flips first: a count loaded after them is at least as new, never older (see `widen`).
        let flips = self.flips.load(Acquire);
        widen(flips, self.state.load(Relaxed) >> COUNT_SHIFT, COUNT_BITS)
    }

    /// Enters as a reader unless a writer is inside or the queue's head waits; nothing changes
    /// when it returns false.
    #[inline(always)]
    fn try_enter(&self) -> bool {
        let old = self.state.fetch_add(READER, Acquire);
        if old & (WRITER | WAITING | READERS_FULL) != 0 {
            self.back_out();
            return false;
        }
        true
    }

    /// Enters as a reader unless a writer is inside, even past a waiting one: for a thread that may
    /// already hold this lock for reading, which the waiting writer then waits for.
    fn try_enter_nested(&self) -> bool {
        let old = self.state.fetch_add(READER, Acquire);
        if old & (WRITER | READERS_FULL) != 0 {
            self.back_out();
            return false;
        }
        true
    }

    /// [`try_enter`](Self::try_enter) for a spinning reader: looks before it writes, so that
    /// spinning does not take the line away from the writer inside.
    #[inline]
    fn try_enter_quietly(&self) -> bool {
        self.state.load(Relaxed) & (WRITER | WAITING | READERS_FULL) == 0 && self.try_enter()
    }

    /// Leaves uncounted, after entering where it should not have.
    #[cold]
    #[inline(never)]
    fn back_out(&self) {
        self.leave(0);
    }

    /// Leaves as a reader, adding `done` (a [`DONE`] or 0) to the read count.
    #[inline(always)]
    fn leave(&self, done: u64) {
        let old = self.state.fetch_add(done.wrapping_sub(READER), Release);
        let flipped = done != 0 && old & BELOW_TOP == BELOW_TOP;
        if old & WAITING != 0 || flipped {
            self.leave_slow(old, flipped);
        }
    }

    /// What a leaving reader rarely has to do: note that its count flipped the count's top bit,
    /// and wake the head of the queue if it was the last reader in.
    #[cold]
    #[inline(never)]
    fn leave_slow(&self, old: u64, flipped: bool) {
        if flipped {
            // Released after the count's flip, so that `reads` never sees it ahead of the count.
            self.flips.fetch_add(1, Release);
        }
        if old & WAITING != 0 && old & READERS == READER {
            self.wake();
        }
    }

    /// Enters as the writer if nobody is inside and nobody waits.
    #[inline]
    fn try_lock_exclusive(&self) -> bool {
        let mut state = self.state.load(Relaxed);
        while state & (WRITER | WAITING | READERS) == 0 {
            match self
                .state
                .compare_exchange_weak(state, state | WRITER, Acquire, Relaxed)
            {
                Ok(_) => return true,
                Err(now) => state = now,
            }
        }
        false
    }

    /// Leaves as the writer.
    #[inline]
    fn unlock_exclusive(&self) {
        // Not `fetch_and`, which x86 can only do in a compare-and-swap loop when the old value is
        // wanted; the bit is set, so subtracting it clears it.
        let old = self.state.fetch_sub(WRITER, Release);
        if old & WAITING != 0 {
            self.wake();
        }
    }

    /// Enters as a reader, for the head of the queue.
    fn lock_shared_queued(&self) {
        loop {
            let old = self.state.fetch_add(READER, Acquire);
            if old & (WRITER | READERS_FULL) == 0 {
                if old & WAITING != 0 {
                    self.state.fetch_and(!WAITING, Relaxed);
                }
                return;
            }
            // Undone without `leave`: nobody waits on readers while the head is a reader.
            self.state.fetch_sub(READER, Relaxed);
            if old & WRITER == 0 {
                // Some 16 000 readers inside: rare enough to spin.
                yield_now();
                continue;
            }
            self.state.fetch_or(WAITING, Relaxed);
            self.park_while(|state| state & WRITER != 0);
        }
    }

    /// Enters as the writer, for the head of the queue.
    fn lock_exclusive_queued(&self) {
        let mut state = self.state.load(Relaxed);
        loop {
            if state & (WRITER | READERS) == 0 {
                match self.state.compare_exchange_weak(
                    state,
                    (state | WRITER) & !WAITING,
                    Acquire,
                    Relaxed,
                ) {
                    Ok(_) => return,
                    Err(now) => state = now,
                }
            } else if state & WAITING == 0 {
                state = self.state.fetch_or(WAITING, Relaxed) | WAITING;
            } else {
                self.park_while(|state| state & (WRITER | READERS) != 0);
                state = self.state.load(Relaxed);
            }
        }
    }

    /// Parks the head of the queue, its waiting bit set, while `blocked` holds. The check runs
    /// under the parking table's lock, which `wake` takes after the change that unblocks: either
    /// the check sees the change, or the wakeup finds this thread parked.
    fn park_while(&self, blocked: impl Fn(u64) -> bool) {
        let check = || blocked(self.state.load(Relaxed));
        // SAFETY: the key is the address of `state`, an atomic of ours that nothing else parks on
        // (the queue's mutex parks on its own address).
        unsafe { self.spot.park_while(self.key(), check) };
    }

    /// Wakes the head of the queue (the only thread that parks on the word).
    fn wake(&self) {
        // SAFETY: as in `park_while`.
        unsafe { self.spot.wake_one(self.key()) };
    }

    fn key(&self) -> usize {
        std::ptr::from_ref(&self.state).addr()
    }
}

/// The full read count from the count's low `bits` bits, `low`, and the number of times its top bit
/// has flipped, `flips` (the count over `2^(bits-1)`, or one less while the release that flipped it
/// is still adding the flip). Of the values ending in `low`, exactly one lies in the `2^bits` wide
/// range those two flip counts allow.
fn widen(flips: u64, low: u64, bits: u32) -> u64 {
    let base = flips.wrapping_mul(1 << (bits - 1));
    base.wrapping_add(low.wrapping_sub(base) & ((1 << bits) - 1))
}

impl<T> ShardLock<T> {
    pub(crate) fn new(value: T) -> Self {
        ShardLock {
            word: LockWord {
                state: AtomicU64::new(0),
                writes: WriteCounts::default(),
                flips: AtomicU64::new(0),
                spot: ParkingSpot::new(),
            },
            queue: Mutex::new(()),
            data: UnsafeCell::new(value),
        }
    }

    /// The word that counts this lock's reads.
    pub(crate) fn word(&self) -> &LockWord {
        &self.word
    }

    /// The value, through an exclusive borrow of the lock (no locking).
    pub(crate) fn get_mut(&mut self) -> &mut T {
        // SAFETY: `&mut self` excludes every guard and every other access.
        self.data.with_mut(|value| unsafe { &mut *value })
    }

    /// Read-locks without waiting. A `COUNTED` read is added to the lock word's reads on release.
    #[inline(always)]
    pub(crate) fn try_read<const COUNTED: bool>(&self) -> Option<ReadGuard<'_, T, COUNTED>> {
        self.word.try_enter().then(|| self.read_guard())
    }

    /// Read-locks, spinning briefly and then waiting in the queue when a writer is inside or waits.
    pub(crate) fn read<const COUNTED: bool>(&self) -> ReadGuard<'_, T, COUNTED> {
        if !self.word.try_enter() && !spin_until(|| self.word.try_enter_quietly()) {
            let _head = self.queue.lock();
            self.word.lock_shared_queued();
        }
        self.read_guard()
    }

    /// Read-locks for a thread that holds a read lock of the same map (maybe this one): enters past
    /// a waiting writer, which may be waiting for this very thread, and otherwise only waits for a
    /// writer inside to leave, by spinning and yielding, never in the queue (whose head may be that
    /// waiting writer).
    pub(crate) fn read_nested<const COUNTED: bool>(&self) -> ReadGuard<'_, T, COUNTED> {
        while !self.word.try_enter_nested() {
            if !spin_until(|| self.word.try_enter_nested()) {
                yield_now();
            }
        }
        self.read_guard()
    }

    fn read_guard<const COUNTED: bool>(&self) -> ReadGuard<'_, T, COUNTED> {
        ReadGuard {
            word: &self.word,
            data: ManuallyDrop::new(self.data.get()),
        }
    }

    /// Write-locks without waiting: `None` when anyone is inside or waits.
    #[inline]
    pub(crate) fn try_write(&self) -> Option<WriteGuard<'_, T>> {
        self.word.try_lock_exclusive().then(|| self.write_guard())
    }

    /// Write-locks, spinning briefly and then waiting in the queue while anyone is inside or waits.
    pub(crate) fn write(&self) -> WriteGuard<'_, T> {
        if !self.word.try_lock_exclusive() && !spin_until(|| self.word.try_lock_exclusive()) {
            let _head = self.queue.lock();
            self.word.lock_exclusive_queued();
        }
        self.write_guard()
    }

    fn write_guard(&self) -> WriteGuard<'_, T> {
        WriteGuard {
            word: &self.word,
            data: ManuallyDrop::new(self.data.get_mut()),
        }
    }
}

/// A read lock on a [`ShardLock`]; releases it when dropped (on unwind too), counting the read if
/// `COUNTED`. Two words, so that it comes back from the out-of-line slow path in registers.
pub(crate) struct ReadGuard<'a, T, const COUNTED: bool> {
    word: &'a LockWord,
    /// Ends its access before the lock is released (under loom, the access is tracked).
    data: ManuallyDrop<ConstPtr<T>>,
}

impl<T, const COUNTED: bool> Deref for ReadGuard<'_, T, COUNTED> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the read lock is held while the guard lives: no writer is inside.
        unsafe { ConstPtr::deref(&self.data) }
    }
}

impl<'a, T> ReadGuard<'a, T, true> {
    /// The same lock, released without counting a read: the read turned out not to be one (an
    /// adaptive map's read that found the map in its other form).
    pub(crate) fn uncounted(self) -> ReadGuard<'a, T, false> {
        let this = ManuallyDrop::new(self);
        ReadGuard {
            word: this.word,
            // SAFETY: `this` is never dropped, so the pointer moves to the new guard, which ends
            // its access once.
            data: unsafe { std::ptr::read(&this.data) },
        }
    }
}

impl<T, const COUNTED: bool> Drop for ReadGuard<'_, T, COUNTED> {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: dropped once, here, and not used after.
        unsafe { ManuallyDrop::drop(&mut self.data) };
        self.word.leave(if COUNTED { DONE } else { 0 });
    }
}

/// A write lock on a [`ShardLock`]; releases it when dropped (on unwind too).
pub(crate) struct WriteGuard<'a, T> {
    word: &'a LockWord,
    /// Ends its access before the lock is released (under loom, the access is tracked).
    data: ManuallyDrop<MutPtr<T>>,
}

impl<T> Deref for WriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the write lock is held while the guard lives: nobody else is inside.
        unsafe { MutPtr::deref(&self.data) }
    }
}

impl<T> DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`, and `&mut self` makes this the only reference the guard gives.
        unsafe { MutPtr::deref(&self.data) }
    }
}

impl<'a, T> WriteGuard<'a, T> {
    /// Whether this guard holds `lock`.
    pub(crate) fn holds(&self, lock: &ShardLock<T>) -> bool {
        std::ptr::eq(self.word, &lock.word)
    }

    /// The word of the lock held, for the counts kept beside it.
    #[inline(always)]
    pub(crate) fn word(&self) -> &'a LockWord {
        self.word
    }
}

impl<T> Drop for WriteGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: dropped once, here, and not used after.
        unsafe { ManuallyDrop::drop(&mut self.data) };
        self.word.unlock_exclusive();
    }
}

#[cfg(all(test, not(guarded_map_loom)))]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;
    use std::thread;

    use super::{BELOW_TOP, COUNT_SHIFT, ShardLock, widen};

    #[test]
    fn widen_recovers_the_count_from_its_low_bits_and_lagging_flips() {
        let bits = 4;
        let half = 1 << (bits - 1);
        for count in 0..200u64 {
            let low = count % (1 << bits);
            let flips = count / half;
            assert_eq!(widen(flips, low, bits), count, "flips {flips}");
            if flips > 0 {
                // The release that flipped the top bit has not added its flip yet.
                assert_eq!(widen(flips - 1, low, bits), count, "lagging at {count}");
            }
        }
    }

    #[test]
    fn an_uncounted_guard_releases_the_lock_without_counting() {
        let lock = ShardLock::new(String::from("shard"));
        let counted = lock.try_read::<true>().unwrap();
        let uncounted = counted.uncounted();
        assert_eq!(uncounted.as_str(), "shard");
        assert!(lock.try_write().is_none(), "still read-locked");
        drop(uncounted);
        assert_eq!(lock.word.reads(), 0);
        drop(lock.try_read::<true>());
        assert_eq!(lock.word.reads(), 1);
        assert!(lock.try_write().is_some(), "released");
    }

    #[test]
    fn the_read_count_survives_its_top_bit_flipping_and_wrapping() {
        let lock = ShardLock::new(0u32);
        // Just below the flip of the count's top bit, then below its wrap.
        for start in [BELOW_TOP >> COUNT_SHIFT, u64::MAX >> COUNT_SHIFT] {
            lock.word.state.store(start << COUNT_SHIFT, Relaxed);
            let before = lock.word.reads();
            for _ in 0..3 {
                drop(lock.try_read::<true>());
            }
            drop(lock.try_read::<false>());
            assert_eq!(lock.word.reads(), before + 3);
        }
        assert_eq!(lock.word.flips.load(Relaxed), 2);
    }

    /// Threads that both read (counted) and write: every write lands, the readers never see a
    /// write half done, and the count is exact once they are joined. Sized for Miri, which checks
    /// that the lock orders every access to the value.
    #[test]
    fn readers_and_writers_exclude_each_other_and_every_read_is_counted() {
        let lock = ShardLock::new((0u64, 0u64));
        let (threads, rounds) = if cfg!(miri) { (2, 20) } else { (4, 50_000) };
        thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    for i in 0..rounds {
                        if i % 3 == 0 {
                            let mut pair = lock.try_write().unwrap_or_else(|| lock.write());
                            pair.0 += 1;
                            pair.1 += 1;
                        } else {
                            let pair = lock.try_read::<true>().unwrap_or_else(|| lock.read());
                            assert_eq!(pair.0, pair.1);
                        }
                    }
                });
            }
        });
        let writes = threads * (0..rounds).filter(|i| i % 3 == 0).count() as u64;
        assert_eq!(*lock.read::<false>(), (writes, writes));
        assert_eq!(lock.word.reads(), threads * rounds as u64 - writes);
        assert_eq!(
            lock.word.state.load(Relaxed) & !(u64::MAX << COUNT_SHIFT),
            0
        );
    }
}

/// loom models of the lock protocol: every interleaving of a writer and counted readers. Run with
/// `RUSTFLAGS="--cfg guarded_map_loom" cargo test -p guarded-map --lib --release loom_`.
#[cfg(all(test, guarded_map_loom))]
mod loom_tests {
    use loom::sync::Arc;
    use loom::thread;

    use super::ShardLock;

    /// A writer against two counted readers (one of which may back out and wait behind it): the
    /// readers see the pair whole, the writer waits for them, and every read is counted once.
    #[test]
    fn loom_readers_and_a_writer() {
        loom::model(|| {
            let lock = Arc::new(ShardLock::new((0u32, 0u32)));
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    let lock = lock.clone();
                    thread::spawn(move || {
                        let pair = lock.try_read::<true>().unwrap_or_else(|| lock.read());
                        assert_eq!(pair.0, pair.1);
                    })
                })
                .collect();
            {
                let mut pair = lock.try_write().unwrap_or_else(|| lock.write());
                pair.0 += 1;
                pair.1 += 1;
            }
            for reader in readers {
                reader.join().unwrap();
            }
            assert_eq!(*lock.read::<false>(), (1, 1));
            assert_eq!(lock.word().reads(), 2);
        });
    }

    /// Two writers and a reader: one writer may have to queue behind the other (and set the
    /// waiting bit the reader must respect); no write is lost and the reader sees a whole pair.
    #[test]
    fn loom_writers_and_a_reader() {
        loom::model(|| {
            let lock = Arc::new(ShardLock::new((0u32, 0u32)));
            let writers: Vec<_> = (0..2)
                .map(|_| {
                    let lock = lock.clone();
                    thread::spawn(move || {
                        let mut pair = lock.try_write().unwrap_or_else(|| lock.write());
                        pair.0 += 1;
                        pair.1 += 1;
                    })
                })
                .collect();
            {
                let pair = lock.try_read::<true>().unwrap_or_else(|| lock.read());
                assert_eq!(pair.0, pair.1);
            }
            for writer in writers {
                writer.join().unwrap();
            }
            assert_eq!(*lock.read::<false>(), (2, 2));
            assert_eq!(lock.word().reads(), 1);
        });
    }

    /// A reader that reads again while a writer may be waiting for it (a read nested in a read of
    /// the same map): the nested read enters past the waiting writer instead of queueing behind
    /// it, so neither waits for the other forever (loom reports a deadlock), and the writer
    /// still gets in once both reads end.
    #[test]
    fn loom_nested_read_passes_a_waiting_writer() {
        loom::model(|| {
            let lock = Arc::new(ShardLock::new((0u32, 0u32)));
            let writer = {
                let lock = lock.clone();
                thread::spawn(move || {
                    let mut pair = lock.try_write().unwrap_or_else(|| lock.write());
                    pair.0 += 1;
                    pair.1 += 1;
                })
            };
            {
                let outer = lock.try_read::<true>().unwrap_or_else(|| lock.read());
                // Under loom a spinning thread yields until another makes progress: these let
                // the writer get past its spin and wait before the nested read comes.
                for _ in 0..3 {
                    thread::yield_now();
                }
                let inner = lock.read_nested::<true>();
                assert_eq!(outer.0, inner.0);
                assert_eq!(inner.0, inner.1);
            }
            writer.join().unwrap();
            assert_eq!(*lock.read::<false>(), (1, 1));
            assert_eq!(lock.word().reads(), 2);
        });
    }
}
