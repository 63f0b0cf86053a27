//! The synchronization primitives the backends are written against.
//!
//! Normal builds use `parking_lot` (no poisoning: a panic in user code never breaks later calls) and
//! `arc-swap`. Under `--cfg guarded_map_loom` the same names are loom's modelled primitives, so the
//! loom tests explore every interleaving of our publish and locking protocols. `arc-swap` has no loom
//! support; there the published pointer is a modelled lock around an `Arc`, which keeps the protocol
//! around it (load, copy, publish under the writer lock) under test.

#[cfg(not(guarded_map_loom))]
mod imp {
    pub(crate) use parking_lot::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
    pub(crate) use std::sync::atomic::{AtomicU64, AtomicUsize};

    /// An atomically replaceable `Arc<T>`: wait-free loads, readers never block writers.
    pub(crate) type ArcCell<T> = arc_swap::ArcSwap<T>;
}

#[cfg(guarded_map_loom)]
mod imp {
    pub(crate) use loom::sync::atomic::{AtomicU64, AtomicUsize};
    use std::sync::Arc;

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

    /// parking_lot-shaped reader-writer lock, modelled as a loom mutex: loom 0.7's own `RwLock`
    /// aborts models with a false "expected to be able to acquire write lock". Exclusive reads are
    /// stricter than shared ones, so every interleaving of our protocol is still explored.
    #[derive(Debug)]
    pub(crate) struct RwLock<T>(loom::sync::Mutex<T>);
    pub(crate) type RwLockReadGuard<'a, T> = loom::sync::MutexGuard<'a, T>;
    pub(crate) type RwLockWriteGuard<'a, T> = loom::sync::MutexGuard<'a, T>;
    impl<T> RwLock<T> {
        pub(crate) fn new(value: T) -> Self {
            RwLock(loom::sync::Mutex::new(value))
        }
        pub(crate) fn read(&self) -> RwLockReadGuard<'_, T> {
            self.0.lock().unwrap()
        }
        pub(crate) fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
            Some(self.read())
        }
        pub(crate) fn write(&self) -> RwLockWriteGuard<'_, T> {
            self.0.lock().unwrap()
        }
        pub(crate) fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
            Some(self.write())
        }
        pub(crate) fn get_mut(&mut self) -> &mut T {
            self.0.get_mut().unwrap()
        }
    }

    /// Model of `arc_swap::ArcSwap`: loads and stores are atomic with respect to each other.
    #[derive(Debug)]
    pub(crate) struct ArcCell<T>(loom::sync::Mutex<Arc<T>>);
    impl<T> ArcCell<T> {
        pub(crate) fn from(value: Arc<T>) -> Self {
            ArcCell(loom::sync::Mutex::new(value))
        }
        pub(crate) fn load(&self) -> Arc<T> {
            self.0.lock().unwrap().clone()
        }
        pub(crate) fn load_full(&self) -> Arc<T> {
            self.load()
        }
        pub(crate) fn store(&self, value: Arc<T>) {
            *self.0.lock().unwrap() = value;
        }
    }
}

pub(crate) use imp::*;
