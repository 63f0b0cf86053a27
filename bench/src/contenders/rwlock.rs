//! `parking_lot::RwLock<hashbrown::HashMap>`: the map most services start with.

use std::hash::BuildHasher;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::adapter::{Concurrent, Map, Read, Write, load_by_inserts};

/// One `RwLock` around one `hashbrown::HashMap<u64, u64, H>`.
pub struct Locked<H>(Arc<RwLock<hashbrown::HashMap<u64, u64, H>>>);

impl<H: BuildHasher + Default + Send + Sync + 'static> Map for Locked<H> {
    type Handle = Self;

    fn load(keys: &[u64]) -> Self {
        load_by_inserts(keys)
    }

    fn handle(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<H: BuildHasher + Default + Send + Sync + 'static> Concurrent for Locked<H> {
    fn with_capacity(capacity: usize) -> Self {
        let map = hashbrown::HashMap::with_capacity_and_hasher(capacity, H::default());
        Self(Arc::new(RwLock::new(map)))
    }
}

impl<H: BuildHasher> Read for Locked<H> {
    #[inline]
    fn get(&mut self, key: u64) -> Option<u64> {
        self.0.read().get(&key).copied()
    }
}

impl<H: BuildHasher> Write for Locked<H> {
    fn insert(&mut self, key: u64, value: u64) -> bool {
        self.0.write().insert(key, value).is_none()
    }

    fn remove(&mut self, key: u64) -> bool {
        self.0.write().remove(&key).is_some()
    }

    fn increment(&mut self, key: u64) -> bool {
        self.0
            .write()
            .get_mut(&key)
            .map(|value| *value += 1)
            .is_some()
    }
}
