//! What a mirror writes into: a guarded map of either kind.

use std::hash::{BuildHasher, Hash};

use crate::{Descriptor, GuardedMap, MapSpec, Ordered, OrderedMap, SpecFor};

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
    /// Replaces the whole content with `entries` (distinct keys), in as few publishes as the map
    /// allows; gives them back if they exceed the map's `max_len` (nothing changed).
    fn replace_all(&self, entries: Vec<(K, V)>) -> Result<(), Vec<(K, V)>>;
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

    fn replace_all(&self, entries: Vec<(K, V)>) -> Result<(), Vec<(K, V)>> {
        if over_max_len(S::DESCRIPTOR, entries.len()) {
            return Err(entries);
        }
        GuardedMap::replace_all(self, entries);
        Ok(())
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

    fn replace_all(&self, entries: Vec<(K, V)>) -> Result<(), Vec<(K, V)>> {
        if over_max_len(S::DESCRIPTOR, entries.len()) {
            return Err(entries);
        }
        OrderedMap::replace_all(self, entries);
        Ok(())
    }
}

/// Whether `len` entries exceed the map's `max_len` (its `replace_all` would panic).
fn over_max_len(descriptor: &Descriptor, len: usize) -> bool {
    descriptor.max_len_limit().is_some_and(|max| len > max)
}
