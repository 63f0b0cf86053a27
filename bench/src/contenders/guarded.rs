//! `GuardedMap` with either backend, used as an application uses it: through `&GuardedMap` shared
//! by an `Arc`, closures for in-place updates.

use std::hash::BuildHasher;

use guarded_map::{GuardedMap, SpecFor, map_spec};

use crate::adapter::{Empty, Read, Shared, Write};

map_spec!(
    /// `Rcu`, statistics on (as users run it).
    pub RcuStats: HashMap<u64, u64>, rcu
);
map_spec!(
    /// `Rcu`, statistics compiled out.
    pub RcuBare: HashMap<u64, u64>, rcu, stats = false
);
map_spec!(
    /// `Sharded` with the default shard count (four per core, as dashmap), statistics on.
    pub ShardedStats: HashMap<u64, u64>, sharded
);
map_spec!(
    /// `Sharded`, statistics compiled out.
    pub ShardedBare: HashMap<u64, u64>, sharded, stats = false
);
map_spec!(
    /// `Adaptive` (starts as `Sharded`, switches by its cost model), statistics on.
    pub AdaptiveStats: HashMap<u64, u64>, adaptive
);
map_spec!(
    /// `Adaptive` held in its `Rcu` form, statistics on: what the form costs, for instruction counts.
    pub AdaptiveRcu: HashMap<u64, u64>, adaptive, pin = guarded_map::ActiveBackend::Rcu
);
map_spec!(
    /// `Adaptive` held in its `Sharded` form, statistics on.
    pub AdaptiveSharded: HashMap<u64, u64>, adaptive, pin = guarded_map::ActiveBackend::Sharded
);

/// A `GuardedMap<u64, u64, S, H>` shared by the worker threads.
pub type Guarded<S, H> = Shared<GuardedMap<u64, u64, S, H>>;

impl<S, H> Empty for GuardedMap<u64, u64, S, H>
where
    S: SpecFor<u64, u64>,
    H: BuildHasher + Default + Send + Sync + 'static,
    Self: Send + Sync,
{
    fn with_capacity(capacity: usize) -> Self {
        GuardedMap::with_capacity_and_hasher(capacity, H::default())
    }
}

impl<S: SpecFor<u64, u64>, H: BuildHasher> Read for Guarded<S, H> {
    #[inline]
    fn get(&mut self, key: u64) -> Option<u64> {
        self.0.get_cloned(&key)
    }
}

impl<S: SpecFor<u64, u64>, H: BuildHasher> Write for Guarded<S, H> {
    fn insert(&mut self, key: u64, value: u64) -> bool {
        self.0.insert(key, value).is_none()
    }

    fn remove(&mut self, key: u64) -> bool {
        self.0.remove(&key).is_some()
    }

    fn increment(&mut self, key: u64) -> bool {
        self.0.update(&key, |value| *value += 1).is_some()
    }
}
