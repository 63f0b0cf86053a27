//! dashmap 6: sharded `RwLock`s over hashbrown tables, the usual choice for a concurrent map.

use std::hash::BuildHasher;

use dashmap::DashMap;

use crate::adapter::{Empty, Read, Shared, Write};

/// A `DashMap<u64, u64, H>` shared by the worker threads.
pub type Dash<H> = Shared<DashMap<u64, u64, H>>;

impl<H: BuildHasher + Default + Clone + Send + Sync + 'static> Empty for DashMap<u64, u64, H> {
    fn with_capacity(capacity: usize) -> Self {
        DashMap::with_capacity_and_hasher(capacity, H::default())
    }
}

impl<H: BuildHasher + Clone> Read for Dash<H> {
    #[inline]
    fn get(&mut self, key: u64) -> Option<u64> {
        self.0.get(&key).map(|value| *value)
    }
}

impl<H: BuildHasher + Clone> Write for Dash<H> {
    fn insert(&mut self, key: u64, value: u64) -> bool {
        self.0.insert(key, value).is_none()
    }

    fn remove(&mut self, key: u64) -> bool {
        self.0.remove(&key).is_some()
    }

    fn increment(&mut self, key: u64) -> bool {
        self.0.get_mut(&key).map(|mut value| *value += 1).is_some()
    }
}
