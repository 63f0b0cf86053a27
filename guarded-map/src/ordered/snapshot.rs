//! [`OrderedSnapshot`]: one version of an ordered map, which no write changes.

use std::borrow::Borrow;
use std::fmt;
use std::ops::RangeBounds;
use std::sync::Arc;

use super::tree::Tree;

/// One version of an [`OrderedMap`](crate::OrderedMap), taken in O(1) by
/// [`snapshot`](crate::OrderedMap::snapshot): ordered reads and ranges over it never see a later
/// write, and never hold up one. Cheap to clone.
///
/// ```
/// use guarded_map::{map_spec, OrderedMap};
/// map_spec!(Temps: BTreeMap<u32, i32>, ordered);
///
/// let temps: OrderedMap<u32, i32, Temps> = [(1, 10), (2, 12), (3, 9)].into_iter().collect();
/// let day = temps.snapshot();
/// temps.insert(4, 15);
/// assert_eq!(day.len(), 3);
/// assert_eq!(day.first(), Some((&1, &10)));
/// assert_eq!(day.last(), Some((&3, &9)));
/// assert_eq!(day.range(2..).map(|(_, t)| *t).max(), Some(12));
/// ```
pub struct OrderedSnapshot<K, V> {
    tree: Arc<Tree<K, V>>,
}

impl<K, V> Clone for OrderedSnapshot<K, V> {
    fn clone(&self) -> Self {
        OrderedSnapshot {
            tree: Arc::clone(&self.tree),
        }
    }
}

impl<K, V> OrderedSnapshot<K, V> {
    pub(super) fn new(tree: Arc<Tree<K, V>>) -> Self {
        OrderedSnapshot { tree }
    }

    /// Entries.
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.tree.get(key).map(|(_, v)| v)
    }

    /// Whether `key` is present.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.tree.get(key).is_some()
    }

    /// The entry with the smallest key.
    pub fn first(&self) -> Option<(&K, &V)> {
        self.tree.first()
    }

    /// The entry with the largest key.
    pub fn last(&self) -> Option<(&K, &V)> {
        self.tree.last()
    }

    /// The entries with keys in `range`, in key order.
    pub fn range<Q, R>(&self, range: R) -> impl Iterator<Item = (&K, &V)>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
        R: RangeBounds<Q>,
    {
        self.tree.range(range)
    }

    /// Every entry, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)>
    where
        K: Ord,
    {
        self.tree.range::<K, _>(..)
    }

    /// The entries as a `BTreeMap`.
    ///
    /// ```
    /// use guarded_map::{map_spec, OrderedMap};
    /// map_spec!(Ids: BTreeMap<u32, u32>, ordered);
    ///
    /// let ids: OrderedMap<u32, u32, Ids> = [(2, 20), (1, 10)].into_iter().collect();
    /// assert_eq!(ids.snapshot().to_btree_map(), [(1, 10), (2, 20)].into());
    /// ```
    pub fn to_btree_map(&self) -> std::collections::BTreeMap<K, V>
    where
        K: Ord + Clone,
        V: Clone,
    {
        self.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

impl<K: fmt::Debug + Ord, V: fmt::Debug> fmt::Debug for OrderedSnapshot<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}
