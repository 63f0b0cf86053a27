//! What a mirror writes into: a guarded map of either kind.

use std::hash::{BuildHasher, Hash};

use crate::{GuardedMap, MapSpec, Ordered, OrderedMap, SpecFor};

/// A map a [`Mirror`](super::Mirror) keeps equal to a kernel map: implemented for
/// [`GuardedMap`] (either hash backend) and [`OrderedMap`].
pub trait MirrorTarget<K, V> {
    /// Sets `key` to `value`; `false` if the map is full (`max_len`) and `key` is new.
    fn set(&self, key: K, value: V) -> bool;
    /// Removes `key`.
    fn delete(&self, key: &K);
    /// The value of `key`.
    fn value(&self, key: &K) -> Option<V>;
    /// Every key.
    fn keys(&self) -> Vec<K>;
}

impl<K, V, S, H> MirrorTarget<K, V> for GuardedMap<K, V, S, H>
where
    K: Eq + Hash + Clone,
    V: Clone,
    S: SpecFor<K, V>,
    H: BuildHasher,
{
    fn set(&self, key: K, value: V) -> bool {
        self.try_insert(key, value).is_ok()
    }

    fn delete(&self, key: &K) {
        self.remove(key);
    }

    fn value(&self, key: &K) -> Option<V> {
        self.get_cloned(key)
    }

    fn keys(&self) -> Vec<K> {
        let mut keys = Vec::with_capacity(self.len());
        self.for_each(|k, _| keys.push(k.clone()));
        keys
    }
}

impl<K, V, S> MirrorTarget<K, V> for OrderedMap<K, V, S>
where
    K: Ord + Clone,
    V: Clone,
    S: MapSpec<Backend = Ordered>,
{
    fn set(&self, key: K, value: V) -> bool {
        self.try_insert(key, value).is_ok()
    }

    fn delete(&self, key: &K) {
        self.remove(key);
    }

    fn value(&self, key: &K) -> Option<V> {
        self.get_cloned(key)
    }

    fn keys(&self) -> Vec<K> {
        let mut keys = Vec::with_capacity(self.len());
        self.range::<K, _>(.., |k, _| keys.push(k.clone()));
        keys
    }
}
