//! The limit: an unsynchronized `hashbrown` map, read by all threads at once through a shared
//! reference. Nothing can be faster at a lookup; it can take part only in read-only workloads.

use std::hash::BuildHasher;
use std::sync::Arc;

use crate::adapter::{Map, Read};

/// A `hashbrown::HashMap<u64, u64, H>` filled once, then only read.
pub struct Unsynchronized<H>(Arc<hashbrown::HashMap<u64, u64, H>>);

impl<H: BuildHasher + Default + Send + Sync + 'static> Map for Unsynchronized<H> {
    type Handle = Self;

    fn load(keys: &[u64]) -> Self {
        let mut table = hashbrown::HashMap::with_capacity_and_hasher(keys.len(), H::default());
        table.extend(keys.iter().map(|&key| (key, key)));
        Self(Arc::new(table))
    }

    fn handle(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<H: BuildHasher> Read for Unsynchronized<H> {
    #[inline]
    fn get(&mut self, key: u64) -> Option<u64> {
        self.0.get(&key).copied()
    }
}
