//! papaya 0.2: a lock-free map with epoch-based reclamation. Each operation pins the map, as
//! conc-map-bench does and as most callers do (a handle cannot hold a pin: it borrows the map).

use std::hash::BuildHasher;
use std::sync::Arc;

use crate::adapter::{Concurrent, Map, Read, Write, load_by_inserts};

/// A `papaya::HashMap<u64, u64, H>` shared by the worker threads.
pub struct Papaya<H>(Arc<papaya::HashMap<u64, u64, H>>);

impl<H: BuildHasher + Default + Send + Sync + 'static> Map for Papaya<H> {
    type Handle = Self;

    fn load(keys: &[u64]) -> Self {
        load_by_inserts(keys)
    }

    fn handle(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<H: BuildHasher + Default + Send + Sync + 'static> Concurrent for Papaya<H> {
    fn with_capacity(capacity: usize) -> Self {
        Self(Arc::new(papaya::HashMap::with_capacity_and_hasher(
            capacity,
            H::default(),
        )))
    }
}

impl<H: BuildHasher> Read for Papaya<H> {
    #[inline]
    fn get(&mut self, key: u64) -> Option<u64> {
        self.0.pin().get(&key).copied()
    }
}

impl<H: BuildHasher> Write for Papaya<H> {
    fn insert(&mut self, key: u64, value: u64) -> bool {
        self.0.pin().insert(key, value).is_none()
    }

    fn remove(&mut self, key: u64) -> bool {
        self.0.pin().remove(&key).is_some()
    }

    fn increment(&mut self, key: u64) -> bool {
        self.0.pin().update(key, |value| value + 1).is_some()
    }
}
