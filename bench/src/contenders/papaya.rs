//! papaya 0.2: a lock-free map with epoch-based reclamation. Each operation pins the map, as
//! conc-map-bench does and as most callers do (a handle cannot hold a pin: it borrows the map).

use std::hash::BuildHasher;

use crate::adapter::{Empty, Read, Shared, Write};

/// A `papaya::HashMap<u64, u64, H>` shared by the worker threads.
pub type Papaya<H> = Shared<papaya::HashMap<u64, u64, H>>;

impl<H: BuildHasher + Default + Send + Sync + 'static> Empty for papaya::HashMap<u64, u64, H> {
    fn with_capacity(capacity: usize) -> Self {
        papaya::HashMap::with_capacity_and_hasher(capacity, H::default())
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
