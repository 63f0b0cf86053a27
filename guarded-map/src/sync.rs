//! The synchronization primitives the backends are written against.
//!
//! Normal builds use `parking_lot` (no poisoning: a panic in user code never breaks later calls)
//! and `parking_lot_core` (to park a writer until the readers of a shard lock leave). Under
//! `--cfg guarded_map_loom` the same names are loom's modelled primitives, so the loom tests
//! explore every interleaving of our publish, grace-period and locking protocols. Parking becomes
//! yielding, which loom explores as a spin loop.

#[cfg(not(guarded_map_loom))]
mod imp {
    pub(crate) use parking_lot::{Mutex, MutexGuard};
    pub(crate) use std::hint::spin_loop;
    pub(crate) use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, fence};
    pub(crate) use std::thread::yield_now;

    /// Where threads park until another wakes them: parking_lot's global parking table. It takes
    /// no room; the key is an address the caller names.
    pub(crate) struct ParkingSpot;

    impl ParkingSpot {
        pub(crate) fn new() -> Self {
            ParkingSpot
        }

        /// Parks the calling thread on `key` unless `blocked` is false when checked under the
        /// parking table's lock; returns on [`wake_one`](Self::wake_one) of the same key (or
        /// spuriously: callers loop).
        ///
        /// # Safety
        ///
        /// `key` must be the address of an object of ours that nobody else parks on: parking_lot's
        /// locks park on their own addresses, and a lock at `key` would take our wakeups for its
        /// own and its own for ours.
        pub(crate) unsafe fn park_while(&self, key: usize, blocked: impl FnOnce() -> bool) {
            // SAFETY: the caller's contract; the callbacks neither panic nor park.
            unsafe {
                parking_lot_core::park(
                    key,
                    blocked,
                    || {},
                    |_, _| {},
                    parking_lot_core::DEFAULT_PARK_TOKEN,
                    None,
                );
            }
        }

        /// Wakes one thread parked on `key`, if any.
        ///
        /// # Safety
        ///
        /// As for [`park_while`](Self::park_while).
        pub(crate) unsafe fn wake_one(&self, key: usize) {
            // SAFETY: the caller's contract; the callback does nothing.
            unsafe {
                parking_lot_core::unpark_one(key, |_| parking_lot_core::DEFAULT_UNPARK_TOKEN)
            };
        }
    }

    /// `std::cell::UnsafeCell` with loom's interface, so that loom can check who touches the data a
    /// lock guards and when.
    #[derive(Debug)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) fn new(value: T) -> Self {
            UnsafeCell(std::cell::UnsafeCell::new(value))
        }
        pub(crate) fn get(&self) -> ConstPtr<T> {
            ConstPtr(self.0.get())
        }
        pub(crate) fn get_mut(&self) -> MutPtr<T> {
            MutPtr(self.0.get())
        }
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }

    /// A shared access to an [`UnsafeCell`]'s value.
    pub(crate) struct ConstPtr<T>(*const T);

    impl<T> ConstPtr<T> {
        /// # Safety
        ///
        /// Nothing may write the value while the reference lives.
        pub(crate) unsafe fn deref(&self) -> &T {
            // SAFETY: the caller's contract; the pointer comes from a live `UnsafeCell`.
            unsafe { &*self.0 }
        }
    }

    /// An exclusive access to an [`UnsafeCell`]'s value.
    pub(crate) struct MutPtr<T>(*mut T);

    impl<T> MutPtr<T> {
        /// # Safety
        ///
        /// Nothing else may read or write the value while the reference lives.
        #[allow(clippy::mut_from_ref)]
        pub(crate) unsafe fn deref(&self) -> &mut T {
            // SAFETY: the caller's contract; the pointer comes from a live `UnsafeCell`.
            unsafe { &mut *self.0 }
        }
    }
}

#[cfg(guarded_map_loom)]
mod imp {
    pub(crate) use loom::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, fence};

    /// parking_lot-shaped wrapper over loom's mutex (loom poisons; a model never recovers from panics).
    #[derive(Debug)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);
    pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;
    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock().unwrap()
        }
        /// Blocks: loom 0.7 can report a false "unable to acquire" after a failed `try_*` on its
        /// locks, and the try-then-time split only matters for statistics, which models do not use.
        pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            Some(self.lock())
        }
    }

    pub(crate) use loom::cell::{ConstPtr, MutPtr, UnsafeCell};
    pub(crate) use loom::hint::spin_loop;
    pub(crate) use loom::thread::yield_now;

    /// The parking table modelled by a mutex and a condition variable: the check under the lock
    /// and the wakeup that takes it are what loom explores (a lost wakeup is a deadlock it reports).
    pub(crate) struct ParkingSpot {
        lock: loom::sync::Mutex<()>,
        parked: loom::sync::Condvar,
    }

    impl ParkingSpot {
        pub(crate) fn new() -> Self {
            ParkingSpot {
                lock: loom::sync::Mutex::new(()),
                parked: loom::sync::Condvar::new(),
            }
        }

        /// # Safety
        ///
        /// None under loom (the key is not used); `unsafe` to match the parking version.
        pub(crate) unsafe fn park_while(&self, _key: usize, blocked: impl FnOnce() -> bool) {
            let guard = self.lock.lock().unwrap();
            if blocked() {
                drop(self.parked.wait(guard).unwrap());
            }
        }

        /// # Safety
        ///
        /// None under loom (the key is not used); `unsafe` to match the parking version.
        pub(crate) unsafe fn wake_one(&self, _key: usize) {
            let _guard = self.lock.lock().unwrap();
            self.parked.notify_one();
        }
    }
}

pub(crate) use imp::*;

/// How many rounds a thread that cannot take a lock of ours spins before it queues or parks;
/// round `n` waits `2^n` spin hints and then tries again, 127 hints in all (a few microseconds at
/// most). Our critical sections are short (a shard's hash-table operation takes tens of
/// nanoseconds, an `Rcu` write about a microsecond), so almost every conflict ends within the
/// spin; parking instead costs two context switches, and without the spin two threads put each
/// other to sleep on most conflicts (BENCHMARKS.md, "Write paths"). Under loom a hint is a yield,
/// and one round keeps the spin path in the models without multiplying them.
const SPIN_ROUNDS: u32 = if cfg!(guarded_map_loom) { 1 } else { 7 };

/// Runs `attempt` after each round of a bounded exponential spin until it succeeds; false when the
/// spin ran out. `attempt` should look before it writes, so that spinning does not take the
/// lock's cache line from the thread inside.
#[inline]
pub(crate) fn spin_until(mut attempt: impl FnMut() -> bool) -> bool {
    for round in 0..SPIN_ROUNDS {
        for _ in 0..1u32 << round {
            spin_loop();
        }
        if attempt() {
            return true;
        }
    }
    false
}

/// Spins, then yields, while `busy`: for a rare waiter (a switch of an adaptive map) on something
/// that ends soon (a read).
pub(crate) fn wait_while(busy: impl Fn() -> bool) {
    let mut spins = 0u32;
    while busy() {
        if spins < 64 && !cfg!(guarded_map_loom) {
            spins += 1;
            spin_loop();
        } else {
            yield_now();
        }
    }
}

/// Locks `lock`, spinning briefly (see [`spin_until`]) before it parks.
pub(crate) fn lock_spinning<T>(lock: &Mutex<T>) -> MutexGuard<'_, T> {
    let mut taken = None;
    if spin_until(|| {
        taken = lock.try_lock();
        taken.is_some()
    }) && let Some(guard) = taken
    {
        return guard;
    }
    lock.lock()
}
