//! scc 3: `HashMap` (bucket locks, in-place updates) and `HashIndex` (read-optimized: lock-free
//! reads, an update replaces the entry).

use std::hash::BuildHasher;

use crate::adapter::{Empty, Read, Shared, Write};

/// A `scc::HashMap<u64, u64, H>` shared by the worker threads.
pub type SccMap<H> = Shared<scc::HashMap<u64, u64, H>>;

/// A `scc::HashIndex<u64, u64, H>` shared by the worker threads.
pub type SccIndex<H> = Shared<scc::HashIndex<u64, u64, H>>;

impl<H: BuildHasher + Default + Send + Sync + 'static> Empty for scc::HashMap<u64, u64, H> {
    fn with_capacity(capacity: usize) -> Self {
        scc::HashMap::with_capacity_and_hasher(capacity, H::default())
    }
}

impl<H: BuildHasher + Default + Send + Sync + 'static> Empty for scc::HashIndex<u64, u64, H> {
    fn with_capacity(capacity: usize) -> Self {
        scc::HashIndex::with_capacity_and_hasher(capacity, H::default())
    }
}

impl<H: BuildHasher> Read for SccMap<H> {
    #[inline]
    fn get(&mut self, key: u64) -> Option<u64> {
        self.0.read_sync(&key, |_, value| *value)
    }
}

impl<H: BuildHasher> Write for SccMap<H> {
    fn insert(&mut self, key: u64, value: u64) -> bool {
        self.0.insert_sync(key, value).is_ok()
    }

    fn remove(&mut self, key: u64) -> bool {
        self.0.remove_sync(&key).is_some()
    }

    fn increment(&mut self, key: u64) -> bool {
        self.0.update_sync(&key, |_, value| *value += 1).is_some()
    }
}

impl<H: BuildHasher> Read for SccIndex<H> {
    #[inline]
    fn get(&mut self, key: u64) -> Option<u64> {
        self.0.peek_with(&key, |_, value| *value)
    }
}

impl<H: BuildHasher> Write for SccIndex<H> {
    fn insert(&mut self, key: u64, value: u64) -> bool {
        self.0.insert_sync(key, value).is_ok()
    }

    fn remove(&mut self, key: u64) -> bool {
        self.0.remove_sync(&key)
    }

    fn increment(&mut self, key: u64) -> bool {
        // HashIndex values are shared with lock-free readers, so they are never changed in place:
        // the update inserts a new entry and retires the old one, under the bucket lock that
        // `get_sync` holds until the entry is dropped (so no increment is lost).
        match self.0.get_sync(&key) {
            Some(mut entry) => {
                let next = *entry.get() + 1;
                entry.update(next);
                true
            }
            None => false,
        }
    }
}
