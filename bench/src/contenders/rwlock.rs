//! `parking_lot::RwLock<hashbrown::HashMap>`: the map most services start with.

use std::hash::BuildHasher;

use parking_lot::RwLock;

use crate::adapter::{Empty, Read, Shared, Write};

type Table<H> = hashbrown::HashMap<u64, u64, H>;

/// One `RwLock` around one `hashbrown::HashMap<u64, u64, H>`.
pub type Locked<H> = Shared<RwLock<Table<H>>>;

impl<H: BuildHasher + Default + Send + Sync + 'static> Empty for RwLock<Table<H>> {
    fn with_capacity(capacity: usize) -> Self {
        RwLock::new(Table::with_capacity_and_hasher(capacity, H::default()))
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
