//! [`OrderedMap`]: the public surface of an ordered map (a `BTreeMap` field).

use std::borrow::Borrow;
use std::fmt;
use std::marker::PhantomData;
use std::ops::RangeBounds;
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::{Mutex, MutexGuard};

use super::snapshot::OrderedSnapshot;
use super::tree::Tree;
use crate::backend::{Backend, Ordered};
use crate::descriptor::Descriptor;
use crate::error::CapacityError;
use crate::reentry;
use crate::registry;
use crate::spec::MapSpec;
use crate::stats::{Counter, MapStats, Recorder, Stats};

/// A concurrent ordered map shared by `&self`, with range queries: what `#[guarded_map]` makes of
/// a `BTreeMap<K, V>` field marked `#[guarded(ordered)]`, or what a spec declared with
/// [`map_spec!`](crate::map_spec)`(Spec: BTreeMap<K, V>, ordered)` names.
///
/// Reads never lock and never wait for a writer: they search the current version of a persistent
/// B+ tree. Writes serialize on a mutex, copy the leaf they change and one node per level above
/// it (O(log n)), and publish the new version (see [`Ordered`]).
/// [`snapshot`](Self::snapshot) is O(1) and never changes. Every operation counts itself as a
/// [`GuardedMap`](crate::GuardedMap)'s does (`gets`, `misses`, writes by kind, and `ranges`), and
/// the map reports through the registry and the metrics under its label.
///
/// ```
/// use guarded_map::{map_spec, OrderedMap};
/// map_spec!(Prices: BTreeMap<u32, u64>, ordered);
///
/// let prices: OrderedMap<u32, u64, Prices> = OrderedMap::new();
/// for (k, v) in [(30, 3), (10, 1), (20, 2)] {
///     prices.insert(k, v);
/// }
/// assert_eq!(prices.get_cloned(&20), Some(2));
/// let mut seen = Vec::new();
/// prices.range(15.., |k, v| seen.push((*k, *v)));
/// assert_eq!(seen, [(20, 2), (30, 3)]);
/// assert_eq!(prices.first(), Some((10, 1)));
/// assert_eq!(prices.stats().ranges, 2);
/// ```
///
/// Keys and values are cloned when a write copies the leaf they sit in; a closure of a write
/// ([`update`](Self::update), [`upsert`](Self::upsert), [`retain`](Self::retain)) that writes to
/// the same map panics, as on a `GuardedMap`, instead of deadlocking.
pub struct OrderedMap<K, V, S: MapSpec<Backend = Ordered>> {
    current: ArcSwap<Tree<K, V>>,
    writer: Mutex<()>,
    stats: Arc<MapStats>,
    seat: registry::Seat,
    spec: PhantomData<fn() -> S>,
}

impl<K, V, S: MapSpec<Backend = Ordered>> OrderedMap<K, V, S> {
    /// Whether the spec collects statistics (a constant: `stats = false` compiles counting out).
    const STATS: bool = S::DESCRIPTOR.stats_enabled();

    fn build(tree: Tree<K, V>) -> Self {
        const {
            S::DESCRIPTOR.assert_valid();
            assert!(
                S::DESCRIPTOR.backend() as u8 == Ordered::KIND as u8,
                "guarded-map: the spec's descriptor names a different backend than `Ordered`"
            );
        }
        let stats = MapStats::new(S::DESCRIPTOR, Ordered::entry_size::<K, V>());
        let rec = stats.recorder(Self::STATS);
        rec.count(Counter::Added, tree.len() as u64);
        rec.set_capacity(tree.len());
        let seat = registry::register(&stats);
        OrderedMap {
            current: ArcSwap::from_pointee(tree),
            writer: Mutex::new(()),
            stats,
            seat,
            spec: PhantomData,
        }
    }

    #[inline(always)]
    fn rec(&self) -> Recorder<'_> {
        self.stats.recorder(Self::STATS)
    }

    fn id(&self) -> *const () {
        std::ptr::from_ref(&self.current).cast()
    }

    /// The number of entries.
    ///
    /// ```
    /// use guarded_map::{map_spec, OrderedMap};
    /// map_spec!(Seen: BTreeMap<u32, ()>, ordered);
    ///
    /// let seen: OrderedMap<u32, (), Seen> = [(1, ()), (2, ())].into_iter().collect();
    /// assert_eq!(seen.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.current.load().len()
    }

    /// Whether the map is empty.
    ///
    /// ```
    /// use guarded_map::{map_spec, OrderedMap};
    /// map_spec!(Seen: BTreeMap<u32, ()>, ordered);
    ///
    /// assert!(OrderedMap::<u32, (), Seen>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// This instance's statistics (counts since it was created; `len` and `capacity` now).
    ///
    /// ```
    /// use guarded_map::{map_spec, OrderedMap};
    /// map_spec!(Users: BTreeMap<u32, String>, ordered);
    ///
    /// let users: OrderedMap<u32, String, Users> = OrderedMap::new();
    /// users.insert(1, "ada".into());
    /// users.get_cloned(&1);
    /// users.get_cloned(&2);
    /// let stats = users.stats();
    /// assert_eq!((stats.gets, stats.misses, stats.inserts, stats.len), (2, 1, 1, 1));
    /// ```
    pub fn stats(&self) -> Stats {
        let mut stats = Stats::from_counts(&self.stats.counts());
        stats.len = self.len() as u64;
        stats.capacity = self.stats.capacity() as u64;
        stats.memory_bytes = self.stats.memory_bytes() as u64;
        stats
    }

    /// The map's static descriptor.
    ///
    /// ```
    /// use guarded_map::{map_spec, BackendKind, OrderedMap};
    /// map_spec!(Book: BTreeMap<u64, u32>, ordered, name = "orders.book");
    ///
    /// let book: OrderedMap<u64, u32, Book> = OrderedMap::new();
    /// assert_eq!(book.descriptor().label(), "orders.book");
    /// assert_eq!(book.descriptor().backend(), BackendKind::Ordered);
    /// ```
    pub fn descriptor(&self) -> &'static Descriptor {
        S::DESCRIPTOR
    }
}

impl<K: Ord + Clone, V: Clone, S: MapSpec<Backend = Ordered>> OrderedMap<K, V, S> {
    /// An empty map.
    pub fn new() -> Self {
        Self::build(Tree::default())
    }

    /// Takes the writer lock for a write of `op`, checking it is not nested in a write closure of
    /// this map on this thread (see [`GuardedMap`](crate::GuardedMap#re-entrancy)).
    #[track_caller]
    fn write(&self, op: &'static str) -> (MutexGuard<'_, ()>, reentry::Outer) {
        let outer = reentry::check_write(self.id(), S::DESCRIPTOR.label(), op);
        (self.writer.lock(), outer)
    }

    /// Publishes `tree`; the caller holds the writer lock.
    fn publish(&self, tree: Tree<K, V>) {
        self.rec().set_capacity(tree.len());
        self.current.store(Arc::new(tree));
    }

    /// A tree of `pairs` (a repeated key keeps its last value), built from them sorted at once.
    ///
    /// # Panics
    ///
    /// If there are more distinct keys than the spec's `max_len`.
    #[track_caller]
    fn sorted_tree(pairs: impl IntoIterator<Item = (K, V)>) -> Tree<K, V>
    where
        K: Ord,
    {
        let sorted: std::collections::BTreeMap<K, V> = pairs.into_iter().collect();
        if let Some(max) = S::DESCRIPTOR.max_len_limit() {
            assert!(
                sorted.len() <= max,
                "guarded-map: map `{}` cannot take {} entries, more than its max_len of {max}",
                S::DESCRIPTOR.label(),
                sorted.len()
            );
        }
        Tree::from_sorted(sorted.into_iter().collect())
    }

    fn is_full(&self, tree: &Tree<K, V>) -> bool {
        S::DESCRIPTOR
            .max_len_limit()
            .is_some_and(|max| tree.len() >= max)
    }

    #[cold]
    fn full<T>(&self, item: T) -> CapacityError<T> {
        self.rec().count(Counter::Rejected, 1);
        let max = S::DESCRIPTOR.max_len_limit().unwrap_or(0);
        CapacityError::new(item, S::DESCRIPTOR.label(), max)
    }

    /// Runs `f` on the value of `key`, in the version current when the read began.
    ///
    /// ```
    /// use guarded_map::{map_spec, OrderedMap};
    /// map_spec!(Names: BTreeMap<u32, String>, ordered);
    ///
    /// let names: OrderedMap<u32, String, Names> = [(1, "ada".to_string())].into_iter().collect();
    /// assert_eq!(names.with(&1, |name| name.len()), Some(3));
    /// assert_eq!(names.with(&2, |name| name.len()), None);
    /// ```
    #[inline]
    pub fn with<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let tree = self.current.load();
        let rec = self.rec();
        rec.count(Counter::Get, 1);
        match tree.get(key) {
            Some((_, value)) => Some(f(value)),
            None => {
                rec.count(Counter::Miss, 1);
                None
            }
        }
    }

    /// A clone of the value of `key`.
    ///
    /// ```
    /// use guarded_map::{map_spec, OrderedMap};
    /// map_spec!(Ports: BTreeMap<String, u16>, ordered);
    ///
    /// let ports: OrderedMap<String, u16, Ports> = OrderedMap::new();
    /// ports.insert("http".to_string(), 80);
    /// assert_eq!(ports.get_cloned("http"), Some(80));
    /// ```
    #[inline]
    pub fn get_cloned<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.with(key, V::clone)
    }

    /// Whether `key` is present.
    ///
    /// ```
    /// use guarded_map::{map_spec, OrderedMap};
    /// map_spec!(Seen: BTreeMap<u64, ()>, ordered);
    ///
    /// let seen: OrderedMap<u64, (), Seen> = OrderedMap::new();
    /// seen.insert(7, ());
    /// assert!(seen.contains_key(&7) && !seen.contains_key(&8));
    /// ```
    #[inline]
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.with(key, |_| ()).is_some()
    }

    /// Calls `f` with every entry whose key is in `range`, in key order, all from one version of
    /// the map (writes that run meanwhile are not seen); counts one range scan.
    ///
    /// ```
    /// use guarded_map::{map_spec, OrderedMap};
    /// map_spec!(Events: BTreeMap<u64, &'static str>, ordered);
    ///
    /// let events: OrderedMap<u64, &str, Events> =
    ///     [(100, "start"), (150, "tick"), (200, "stop")].into_iter().collect();
    /// let mut between = Vec::new();
    /// events.range(100..200, |at, what| between.push((*at, *what)));
    /// assert_eq!(between, [(100, "start"), (150, "tick")]);
    /// ```
    pub fn range<Q, R>(&self, range: R, mut f: impl FnMut(&K, &V))
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
        R: RangeBounds<Q>,
    {
        let tree = self.current.load();
        self.rec().count(Counter::Range, 1);
        for (key, value) in tree.range(range) {
            f(key, value);
        }
    }

    /// A clone of the entry with the smallest key; counts one range scan.
    ///
    /// ```
    /// use guarded_map::{map_spec, OrderedMap};
    /// map_spec!(Queue: BTreeMap<u64, String>, ordered);
    ///
    /// let queue: OrderedMap<u64, String, Queue> = OrderedMap::new();
    /// assert_eq!(queue.first(), None);
    /// queue.insert(5, "later".into());
    /// queue.insert(1, "soon".into());
    /// assert_eq!(queue.first(), Some((1, "soon".to_string())));
    /// ```
    pub fn first(&self) -> Option<(K, V)> {
        let tree = self.current.load();
        self.rec().count(Counter::Range, 1);
        tree.first().map(|(k, v)| (k.clone(), v.clone()))
    }

    /// A clone of the entry with the largest key; counts one range scan.
    ///
    /// ```
    /// use guarded_map::{map_spec, OrderedMap};
    /// map_spec!(Queue: BTreeMap<u64, String>, ordered);
    ///
    /// let queue: OrderedMap<u64, String, Queue> = [(1, "a".to_string()), (9, "z".to_string())].into_iter().collect();
    /// assert_eq!(queue.last(), Some((9, "z".to_string())));
    /// ```
    pub fn last(&self) -> Option<(K, V)> {
        let tree = self.current.load();
        self.rec().count(Counter::Range, 1);
        tree.last().map(|(k, v)| (k.clone(), v.clone()))
    }

    /// The map as it is now, in O(1): a version no write changes, with ordered reads and ranges.
    ///
    /// ```
    /// use guarded_map::{map_spec, OrderedMap};
    /// map_spec!(Scores: BTreeMap<u32, u32>, ordered);
    ///
    /// let scores: OrderedMap<u32, u32, Scores> = (0..10).map(|k| (k, k * k)).collect();
    /// let before = scores.snapshot();
    /// scores.remove(&3);
    /// assert_eq!(before.get(&3), Some(&9));
    /// assert_eq!(before.range(2..5).map(|(k, _)| *k).collect::<Vec<_>>(), [2, 3, 4]);
    /// assert_eq!(scores.snapshot().len(), 9);
    /// ```
    pub fn snapshot(&self) -> OrderedSnapshot<K, V> {
        self.rec().count(Counter::Snapshot, 1);
        OrderedSnapshot::new(self.current.load_full())
    }

    /// Inserts or replaces; returns the value replaced.
    ///
    /// # Panics
    ///
    /// When the map holds its `max_len` entries and `key` is new (use
    /// [`try_insert`](Self::try_insert) to handle that), or when called from a closure of a write
    /// of this map.
    ///
    /// ```
    /// use guarded_map::{map_spec, OrderedMap};
    /// map_spec!(Ids: BTreeMap<u32, u32>, ordered);
    ///
    /// let ids: OrderedMap<u32, u32, Ids> = OrderedMap::new();
    /// assert_eq!(ids.insert(1, 10), None);
    /// assert_eq!(ids.insert(1, 11), Some(10));
    /// ```
    #[track_caller]
    pub fn insert(&self, key: K, value: V) -> Option<V> {
        match self.try_insert(key, value) {
            Ok(old) => old,
            Err(err) => panic!("guarded-map: {err}; use try_insert to handle a full map"),
        }
    }

    /// Inserts or replaces; `Err` gives the pair back when `key` is new and the map holds its
    /// `max_len` entries.
    ///
    /// ```
    /// use guarded_map::{map_spec, OrderedMap};
    /// map_spec!(Two: BTreeMap<u32, u32>, ordered, max_len = 2);
    ///
    /// let two: OrderedMap<u32, u32, Two> = OrderedMap::new();
    /// two.insert(1, 1);
    /// two.insert(2, 2);
    /// assert_eq!(two.try_insert(3, 3).unwrap_err().into_inner(), (3, 3));
    /// assert_eq!(two.try_insert(2, 20), Ok(Some(2)));
    /// ```
    #[track_caller]
    pub fn try_insert(&self, key: K, value: V) -> Result<Option<V>, CapacityError<(K, V)>> {
        let (_writer, _) = self.write("insert");
        let tree = self.current.load();
        // Only a full map searches first: it must refuse a new key before it copies anything.
        if self.is_full(&tree) && tree.get(&key).is_none() {
            return Err(self.full((key, value)));
        }
        let (next, old) = tree.insert(key, value);
        let rec = self.rec();
        match old {
            Some(_) => rec.count(Counter::Update, 1),
            None => {
                rec.count(Counter::Insert, 1);
                rec.count(Counter::Added, 1);
            }
        }
        self.publish(next);
        Ok(old)
    }

    /// Removes `key`; returns its value.
    ///
    /// ```
    /// use guarded_map::{map_spec, OrderedMap};
    /// map_spec!(Ids: BTreeMap<u32, u32>, ordered);
    ///
    /// let ids: OrderedMap<u32, u32, Ids> = [(1, 10)].into_iter().collect();
    /// assert_eq!(ids.remove(&1), Some(10));
    /// assert_eq!(ids.remove(&1), None);
    /// ```
    #[track_caller]
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let (_writer, _) = self.write("remove");
        let rec = self.rec();
        rec.count(Counter::Remove, 1);
        let (next, (_, value)) = self.current.load().remove(key)?;
        rec.count(Counter::Removed, 1);
        self.publish(next);
        Some(value)
    }

    /// Calls `f` with a mutable reference to the value of `key`; `None` if absent. `f` changes a
    /// copy, published when it returns: a panicking `f` changes nothing.
    ///
    /// ```
    /// use guarded_map::{map_spec, OrderedMap};
    /// map_spec!(Hits: BTreeMap<&'static str, u64>, ordered);
    ///
    /// let hits: OrderedMap<&str, u64, Hits> = [("/", 1)].into_iter().collect();
    /// assert_eq!(hits.update("/", |n| { *n += 1; *n }), Some(2));
    /// assert_eq!(hits.update("/x", |n| *n), None);
    /// ```
    #[track_caller]
    pub fn update<Q, R>(&self, key: &Q, f: impl FnOnce(&mut V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let (_writer, outer) = self.write("update");
        let id = self.id();
        let (next, out) = self.current.load().update(key, |value| {
            outer.enter(id, reentry::Op::UPDATE, || f(value))
        })?;
        self.rec().count(Counter::Update, 1);
        self.publish(next);
        Some(out)
    }

    /// Updates the value of `key` with `f`, inserting `default()` first if absent; returns what
    /// `f` returned.
    ///
    /// # Panics
    ///
    /// When `key` is new and the map holds its `max_len` entries.
    ///
    /// ```
    /// use guarded_map::{map_spec, OrderedMap};
    /// map_spec!(Counts: BTreeMap<String, u64>, ordered);
    ///
    /// let counts: OrderedMap<String, u64, Counts> = OrderedMap::new();
    /// for word in ["b", "a", "b"] {
    ///     counts.upsert(word.to_string(), || 0, |n| *n += 1);
    /// }
    /// assert_eq!(counts.snapshot().iter().map(|(k, v)| (k.as_str(), *v)).collect::<Vec<_>>(), [("a", 1), ("b", 2)]);
    /// ```
    #[track_caller]
    pub fn upsert<R>(&self, key: K, default: impl FnOnce() -> V, f: impl FnOnce(&mut V) -> R) -> R {
        let (_writer, outer) = self.write("upsert");
        let id = self.id();
        let tree = self.current.load();
        let rec = self.rec();
        let enter = |value: &mut V| outer.enter(id, reentry::Op::UPSERT, || f(value));
        if tree.get(&key).is_some() {
            let (next, out) = tree.update(&key, enter).expect("the key is present");
            rec.count(Counter::Update, 1);
            self.publish(next);
            return out;
        }
        if self.is_full(&tree) {
            let err = self.full(key);
            panic!("guarded-map: {err}");
        }
        let mut value = outer.enter(id, reentry::Op::UPSERT, default);
        let out = enter(&mut value);
        let (next, _) = tree.insert(key, value);
        rec.count(Counter::Insert, 1);
        rec.count(Counter::Added, 1);
        self.publish(next);
        out
    }

    /// Keeps the entries `f` accepts (it may change their values), in one publish.
    ///
    /// ```
    /// use guarded_map::{map_spec, OrderedMap};
    /// map_spec!(Ages: BTreeMap<u32, u32>, ordered);
    ///
    /// let ages: OrderedMap<u32, u32, Ages> = (0..10).map(|k| (k, k)).collect();
    /// ages.retain(|_, age| { *age += 1; *age % 2 == 0 });
    /// assert_eq!(ages.snapshot().iter().map(|(k, _)| *k).collect::<Vec<_>>(), [1, 3, 5, 7, 9]);
    /// ```
    #[track_caller]
    pub fn retain(&self, mut f: impl FnMut(&K, &mut V) -> bool) {
        let (_writer, outer) = self.write("retain");
        let id = self.id();
        let tree = self.current.load();
        let mut kept = Vec::with_capacity(tree.len());
        for (key, value) in tree.range::<K, _>(..) {
            let mut value = value.clone();
            if outer.enter(id, reentry::Op::RETAIN, || f(key, &mut value)) {
                kept.push((key.clone(), value));
            }
        }
        let removed = tree.len() - kept.len();
        let rec = self.rec();
        rec.count(Counter::Retain, 1);
        rec.count(Counter::Removed, removed as u64);
        self.publish(Tree::from_sorted(kept));
    }

    /// Replaces the whole content with `entries` (a repeated key keeps its last value) in one
    /// publish, and returns how many entries it replaced: every reader sees either the old content
    /// or the new one. The new tree is built from the sorted entries at once, without a path copy
    /// per entry.
    ///
    /// ```
    /// use guarded_map::{map_spec, OrderedMap};
    /// map_spec!(Config: BTreeMap<u32, &'static str>, ordered);
    ///
    /// let config: OrderedMap<u32, &str, Config> = [(1, "slow")].into_iter().collect();
    /// assert_eq!(config.replace_all([(2, "fast"), (3, "safe"), (2, "faster")]), 1);
    /// assert_eq!(config.first(), Some((2, "faster")));
    /// assert_eq!(config.len(), 2);
    /// ```
    ///
    /// # Panics
    ///
    /// If there are more distinct keys than the spec's `max_len` (the map is left as it was).
    #[track_caller]
    pub fn replace_all(&self, entries: impl IntoIterator<Item = (K, V)>) -> usize {
        let next = Self::sorted_tree(entries);
        let added = next.len();
        let (_writer, _) = self.write("replace_all");
        let removed = self.current.load().len();
        // Counted as `GuardedMap::replace_all` is: entries out and in, no operation kind.
        let rec = self.rec();
        rec.count(Counter::Removed, removed as u64);
        rec.count(Counter::Added, added as u64);
        self.publish(next);
        removed
    }

    /// Removes every entry.
    ///
    /// ```
    /// use guarded_map::{map_spec, OrderedMap};
    /// map_spec!(Ids: BTreeMap<u32, u32>, ordered);
    ///
    /// let ids: OrderedMap<u32, u32, Ids> = (0..5).map(|k| (k, k)).collect();
    /// ids.clear();
    /// assert!(ids.is_empty());
    /// ```
    #[track_caller]
    pub fn clear(&self) {
        let (_writer, _) = self.write("clear");
        let removed = self.current.load().len();
        let rec = self.rec();
        rec.count(Counter::Clear, 1);
        rec.count(Counter::Removed, removed as u64);
        self.publish(Tree::default());
    }
}

impl<K: Ord + Clone, V: Clone, S: MapSpec<Backend = Ordered>> Default for OrderedMap<K, V, S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Ord + Clone, V: Clone, S: MapSpec<Backend = Ordered>> FromIterator<(K, V)>
    for OrderedMap<K, V, S>
{
    /// A map of the pairs (a repeated key keeps its last value).
    ///
    /// # Panics
    ///
    /// When the pairs hold more distinct keys than the spec's `max_len`.
    #[track_caller]
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        Self::build(Self::sorted_tree(pairs))
    }
}

impl<K: fmt::Debug + Ord, V: fmt::Debug, S: MapSpec<Backend = Ordered>> fmt::Debug
    for OrderedMap<K, V, S>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tree = self.current.load();
        f.debug_map().entries(tree.range::<K, _>(..)).finish()
    }
}

impl<K, V, S: MapSpec<Backend = Ordered>> Drop for OrderedMap<K, V, S> {
    fn drop(&mut self) {
        registry::unregister(&self.seat);
        self.stats.retire();
    }
}
