//! The one interface every contender implements, and its bridge to the `bustle` harness.
//!
//! Keys and values are `u64`. A contender is a cheap-to-clone owner of its map (an `Arc` inside):
//! `bustle` hands each worker thread its own handle, and a handle must own its way to the map.

use std::sync::Arc;

use crate::clock::{MixClock, Stamp};

/// A map under test, as the workloads see it.
pub trait Map: Send + Sync + 'static {
    /// What one worker thread operates through (papaya pins per operation, the others clone an
    /// `Arc`).
    type Handle: Read;

    /// A map filled with `keys`, each mapped to itself. The default inserts one by one through a
    /// handle; a contender whose single insert costs a whole-map copy builds its map at once.
    fn load(keys: &[u64]) -> Self;

    /// A handle for one worker thread.
    fn handle(&self) -> Self::Handle;
}

/// Lookups: all a read-only workload needs, and all the unsynchronized limit can do.
pub trait Read {
    /// The value of `key`, if present.
    fn get(&mut self, key: u64) -> Option<u64>;
}

/// Writes, for the mixed workloads.
pub trait Write: Read {
    /// Inserts `key -> value`; `true` when the key was not present before.
    fn insert(&mut self, key: u64, value: u64) -> bool;
    /// Removes `key`; `true` when it was present.
    fn remove(&mut self, key: u64) -> bool;
    /// Adds one to the value of `key` in place, atomically with respect to other writers; `true`
    /// when the key was present (a missing key is left missing).
    fn increment(&mut self, key: u64) -> bool;
}

/// A concurrent map that starts empty with a capacity hint: what `bustle` builds and prefills.
pub trait Concurrent: Map<Handle: Write> {
    /// An empty map with room for `capacity` entries.
    fn with_capacity(capacity: usize) -> Self;
}

/// Fills a concurrent map through one handle, checking that every key is new.
pub fn load_by_inserts<M: Concurrent>(keys: &[u64]) -> M {
    let map = M::with_capacity(keys.len());
    let mut handle = map.handle();
    for &key in keys {
        assert!(handle.insert(key, key), "load: key {key} inserted twice");
    }
    map
}

/// A map every thread shares through one `Arc`: its handle is a clone of the `Arc`, and it is
/// filled by inserts. Most contenders are one; each of them only says how its map starts empty
/// ([`Empty`]) and implements [`Read`] and [`Write`] for `Shared<ItsMap>`.
pub struct Shared<T>(pub Arc<T>);

/// How the map of a [`Shared`] contender starts empty.
pub trait Empty: Send + Sync + 'static {
    /// An empty map with room for `capacity` entries.
    fn with_capacity(capacity: usize) -> Self;
}

impl<T: Empty> Map for Shared<T>
where
    Self: Write,
{
    type Handle = Self;

    fn load(keys: &[u64]) -> Self {
        load_by_inserts(keys)
    }

    fn handle(&self) -> Self {
        Shared(Arc::clone(&self.0))
    }
}

impl<T: Empty> Concurrent for Shared<T>
where
    Self: Write,
{
    fn with_capacity(capacity: usize) -> Self {
        Shared(Arc::new(T::with_capacity(capacity)))
    }
}

/// Runs a [`Concurrent`] map under `bustle`: its `Collection` and `CollectionHandle` traits ask
/// exactly for the operations of [`Write`]. The handles also keep the run's clock (see
/// [`crate::clock`]).
pub struct Bustled<M> {
    map: Arc<M>,
    clock: Option<Arc<MixClock>>,
}

/// A worker thread's handle of a [`Bustled`] map.
pub struct BustledHandle<H> {
    handle: H,
    stamp: Stamp,
}

impl<M: Concurrent> bustle::Collection for Bustled<M> {
    type Handle = BustledHandle<M::Handle>;

    fn with_capacity(capacity: usize) -> Self {
        Bustled {
            map: Arc::new(M::with_capacity(capacity)),
            clock: MixClock::current(),
        }
    }

    fn pin(&self) -> Self::Handle {
        BustledHandle {
            handle: self.map.handle(),
            stamp: self
                .clock
                .as_ref()
                .map_or_else(Stamp::none, MixClock::stamp),
        }
    }
}

impl<H: Write> BustledHandle<H> {
    #[inline(always)]
    fn timed<R>(&mut self, op: impl FnOnce(&mut H) -> R) -> R {
        self.stamp.before();
        let out = op(&mut self.handle);
        self.stamp.after();
        out
    }
}

impl<H: Write> bustle::CollectionHandle for BustledHandle<H> {
    type Key = u64;

    fn get(&mut self, key: &u64) -> bool {
        self.timed(|h| h.get(*key).is_some())
    }

    fn insert(&mut self, key: &u64) -> bool {
        self.timed(|h| h.insert(*key, *key))
    }

    fn remove(&mut self, key: &u64) -> bool {
        self.timed(|h| h.remove(*key))
    }

    fn update(&mut self, key: &u64) -> bool {
        self.timed(|h| h.increment(*key))
    }
}
