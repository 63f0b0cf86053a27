//! `arc-swap` over a `hashbrown` map, copied on every write: the read-mostly map many services
//! write by hand. Reads are one atomic load and a lookup; a write clones the whole map, so the
//! runner gives it only workloads whose writes times size fit its copy budget.

use std::hash::BuildHasher;
use std::sync::Arc;

use arc_swap::{ArcSwap, Cache};
use parking_lot::Mutex;

use crate::adapter::{Concurrent, Map, Read, Write};

type Table<H> = hashbrown::HashMap<u64, u64, H>;

/// A copy-on-write map shared by the worker threads.
pub struct CopyOnWrite<H> {
    current: Arc<ArcSwap<Table<H>>>,
    /// Serializes writers: each copies the current map and publishes the copy, so two writers
    /// without it would lose one another's change.
    writer: Arc<Mutex<()>>,
}

/// A worker's handle: arc-swap's `Cache` keeps the current version and checks for a newer one with
/// one load, the way such maps are read in practice.
pub struct CowHandle<H> {
    cache: Cache<Arc<ArcSwap<Table<H>>>, Arc<Table<H>>>,
    writer: Arc<Mutex<()>>,
}

impl<H: BuildHasher + Default + Clone + Send + Sync + 'static> Map for CopyOnWrite<H> {
    type Handle = CowHandle<H>;

    fn load(keys: &[u64]) -> Self {
        // Built at once: inserting one by one would copy the map once per key.
        let mut table = Table::with_capacity_and_hasher(keys.len(), H::default());
        table.extend(keys.iter().map(|&key| (key, key)));
        Self {
            current: Arc::new(ArcSwap::from_pointee(table)),
            writer: Arc::default(),
        }
    }

    fn handle(&self) -> CowHandle<H> {
        CowHandle {
            cache: Cache::new(Arc::clone(&self.current)),
            writer: Arc::clone(&self.writer),
        }
    }
}

impl<H: BuildHasher + Default + Clone + Send + Sync + 'static> Concurrent for CopyOnWrite<H> {
    fn with_capacity(capacity: usize) -> Self {
        let table = Table::with_capacity_and_hasher(capacity, H::default());
        Self {
            current: Arc::new(ArcSwap::from_pointee(table)),
            writer: Arc::default(),
        }
    }
}

impl<H: BuildHasher> Read for CowHandle<H> {
    #[inline]
    fn get(&mut self, key: u64) -> Option<u64> {
        self.cache.load().get(&key).copied()
    }
}

impl<H: BuildHasher + Clone> CowHandle<H> {
    /// Copies the current map, applies `change` to the copy and publishes it (unless `change`
    /// reports that nothing changed).
    fn write(&mut self, change: impl FnOnce(&mut Table<H>) -> bool) -> bool {
        let _writer = self.writer.lock();
        let current = self.cache.arc_swap().load_full();
        let mut next = Table::clone(&current);
        let changed = change(&mut next);
        if changed {
            self.cache.arc_swap().store(Arc::new(next));
        }
        changed
    }
}

impl<H: BuildHasher + Clone> Write for CowHandle<H> {
    fn insert(&mut self, key: u64, value: u64) -> bool {
        // An insert over an existing key still publishes (the value may differ).
        let mut new = false;
        self.write(|table| {
            new = table.insert(key, value).is_none();
            true
        });
        new
    }

    fn remove(&mut self, key: u64) -> bool {
        self.write(|table| table.remove(&key).is_some())
    }

    fn increment(&mut self, key: u64) -> bool {
        self.write(|table| table.get_mut(&key).map(|value| *value += 1).is_some())
    }
}
