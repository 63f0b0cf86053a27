//! [`Snapshot`]: an immutable, consistent copy of a map that readers can keep as long as they like.

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use crate::table::Pair;
use crate::trie::Frozen;
use crate::trie::iter::Leaves;

/// An immutable view of a map at one instant, from [`GuardedMap::snapshot`](crate::GuardedMap::snapshot).
///
/// With the `Rcu` backend it is the published version itself (O(1), no copy); with `Sharded` it is a
/// copy made while every shard was read-locked. Either way it is the exact state after some write,
/// and it never changes. Cloning a snapshot is O(1).
///
/// ```
/// use guarded_map::{map_spec, GuardedMap};
/// map_spec!(Prices: HashMap<&'static str, u32>, rcu);
///
/// let prices: GuardedMap<&str, u32, Prices> = [("tea", 3), ("cake", 5)].into_iter().collect();
/// let before = prices.snapshot();
/// prices.insert("tea", 4);
/// assert_eq!(before.get("tea"), Some(&3));
/// assert_eq!(prices.snapshot().get("tea"), Some(&4));
/// assert_eq!(before.iter().map(|(_, v)| v).sum::<u32>(), 8);
/// ```
pub struct Snapshot<K, V, H = RandomState> {
    frozen: Arc<Frozen<K, V>>,
    hasher: H,
}

impl<K, V, H> Snapshot<K, V, H> {
    pub(crate) fn new(frozen: Arc<Frozen<K, V>>, hasher: H) -> Self {
        Snapshot { frozen, hasher }
    }

    /// A snapshot holding the entries of `map`, in one table, with `map`'s hasher.
    #[cfg(feature = "serde")]
    pub(crate) fn from_hash_map(map: std::collections::HashMap<K, V, H>) -> Self
    where
        K: Hash,
        H: BuildHasher + Clone,
    {
        let hasher = map.hasher().clone();
        let len = map.len();
        let pairs = map.into_iter().map(|(key, value)| {
            let hash = hasher.hash_one(&key);
            (hash, crate::table::Pair { key, value })
        });
        let frozen = Frozen::from_pairs(pairs, |key| hasher.hash_one(key));
        debug_assert_eq!(frozen.len(), len);
        Snapshot::new(Arc::new(frozen), hasher)
    }

    /// The number of entries.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Prices: HashMap<&'static str, u32>, rcu);
    ///
    /// let prices: GuardedMap<&str, u32, Prices> = [("tea", 3), ("cake", 5)].into_iter().collect();
    /// let snapshot = prices.snapshot();
    /// assert_eq!(snapshot.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.frozen.len()
    }

    /// Whether there are no entries.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Prices: HashMap<&'static str, u32>, rcu);
    ///
    /// let prices: GuardedMap<&str, u32, Prices> = [("tea", 3), ("cake", 5)].into_iter().collect();
    /// let snapshot = prices.snapshot();
    /// assert!(!snapshot.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.frozen.len() == 0
    }

    /// Every entry, in no particular order.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Prices: HashMap<&'static str, u32>, rcu);
    ///
    /// let prices: GuardedMap<&str, u32, Prices> = [("tea", 3), ("cake", 5)].into_iter().collect();
    /// let snapshot = prices.snapshot();
    /// let mut all: Vec<_> = snapshot.iter().collect();
    /// all.sort();
    /// assert_eq!(all, [(&"cake", &5), (&"tea", &3)]);
    /// ```
    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter {
            leaves: self.frozen.leaves(),
            current: None,
            remaining: self.frozen.len(),
        }
    }

    /// Every key, in no particular order.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Prices: HashMap<&'static str, u32>, rcu);
    ///
    /// let prices: GuardedMap<&str, u32, Prices> = [("tea", 3), ("cake", 5)].into_iter().collect();
    /// let snapshot = prices.snapshot();
    /// let mut keys: Vec<_> = snapshot.keys().copied().collect();
    /// keys.sort();
    /// assert_eq!(keys, ["cake", "tea"]);
    /// ```
    pub fn keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// Every value, in no particular order.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Prices: HashMap<&'static str, u32>, rcu);
    ///
    /// let prices: GuardedMap<&str, u32, Prices> = [("tea", 3), ("cake", 5)].into_iter().collect();
    /// let snapshot = prices.snapshot();
    /// assert_eq!(snapshot.values().sum::<u32>(), 8);
    /// ```
    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.iter().map(|(_, v)| v)
    }
}

impl<K: Eq + Hash, V, H: BuildHasher> Snapshot<K, V, H> {
    /// The value of `key`.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Prices: HashMap<&'static str, u32>, rcu);
    ///
    /// let prices: GuardedMap<&str, u32, Prices> = [("tea", 3), ("cake", 5)].into_iter().collect();
    /// let snapshot = prices.snapshot();
    /// assert_eq!(snapshot.get("tea"), Some(&3));
    /// assert_eq!(snapshot.get("coffee"), None);
    /// ```
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        let hash = self.hasher.hash_one(key);
        self.frozen.find(hash, key).map(|entry| &entry.value)
    }

    /// Whether `key` is present.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Prices: HashMap<&'static str, u32>, rcu);
    ///
    /// let prices: GuardedMap<&str, u32, Prices> = [("tea", 3), ("cake", 5)].into_iter().collect();
    /// let snapshot = prices.snapshot();
    /// assert!(snapshot.contains_key("cake"));
    /// ```
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        self.get(key).is_some()
    }
}

impl<K: Clone + Eq + Hash, V: Clone, H: Clone> Snapshot<K, V, H> {
    /// Copies the entries into a `std::collections::HashMap` with the map's hasher.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Prices: HashMap<&'static str, u32>, rcu);
    ///
    /// let prices: GuardedMap<&str, u32, Prices> = [("tea", 3), ("cake", 5)].into_iter().collect();
    /// let snapshot = prices.snapshot();
    /// let copy = snapshot.to_hash_map();
    /// assert_eq!(copy["cake"], 5);
    /// ```
    pub fn to_hash_map(&self) -> std::collections::HashMap<K, V, H>
    where
        H: BuildHasher,
    {
        let mut map =
            std::collections::HashMap::with_capacity_and_hasher(self.len(), self.hasher.clone());
        map.extend(self.iter().map(|(k, v)| (k.clone(), v.clone())));
        map
    }
}

impl<K, V, H: Clone> Clone for Snapshot<K, V, H> {
    fn clone(&self) -> Self {
        Snapshot {
            frozen: Arc::clone(&self.frozen),
            hasher: self.hasher.clone(),
        }
    }
}

impl<K: fmt::Debug, V: fmt::Debug, H> fmt::Debug for Snapshot<K, V, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<'a, K, V, H> IntoIterator for &'a Snapshot<K, V, H> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;
    fn into_iter(self) -> Iter<'a, K, V> {
        self.iter()
    }
}

/// Iterator over the entries of a [`Snapshot`].
pub struct Iter<'a, K, V> {
    leaves: Leaves<'a, K, V>,
    current: Option<hashbrown::hash_table::Iter<'a, Pair<K, V>>>,
    remaining: usize,
}

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(entry) = self.current.as_mut().and_then(Iterator::next) {
                self.remaining -= 1;
                return Some((&entry.key, &entry.value));
            }
            self.current = Some(self.leaves.next()?.table.iter());
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<K, V> ExactSizeIterator for Iter<'_, K, V> {}
impl<K, V> std::iter::FusedIterator for Iter<'_, K, V> {}
