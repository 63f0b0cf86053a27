//! [`GuardedMap`]: the one public map type.

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;
use std::sync::Arc;

use crate::backend::{Backend, SnapshotStorage, Storage, StoreConfig};
use crate::error::CapacityError;
use crate::hooks::{self, Op};
use crate::snapshot::Snapshot;
use crate::spec::MapSpec;
use crate::stats::sink::{self, Sink};
use crate::stats::{Counter, MapStats, Recorder, Stats};
use crate::table::Entry;
use crate::{registry, report};

/// The storage type a spec's backend uses for `K` and `V`.
type StoreOf<S, K, V> = <<S as MapSpec>::Backend as Backend>::Store<K, V>;

/// A concurrent, instrumented hash map whose backend and descriptor come from the spec `S`.
///
/// All methods take `&self`; share the map by reference or `Arc`. The API is closure based: no lock
/// guard is ever handed out, so a reference cannot outlive the lock that protects it.
///
/// ```
/// use guarded_map::{map_spec, GuardedMap};
///
/// map_spec!(Hits: HashMap<String, u64>, sharded, shards = 8);
///
/// let hits: GuardedMap<String, u64, Hits> = GuardedMap::new();
/// std::thread::scope(|s| {
///     for _ in 0..2 {
///         s.spawn(|| {
///             for _ in 0..1000 {
///                 hits.upsert("/".to_string(), || 0, |n| *n += 1);
///             }
///         });
///     }
/// });
/// assert_eq!(hits.get_cloned("/"), Some(2000));
/// assert_eq!(hits.with("/", |n| n * 2), Some(4000));
/// assert_eq!(hits.stats().inserts + hits.stats().updates, 2000);
/// ```
///
/// # Closures and locks
///
/// Closures passed to [`with`](Self::with), [`update`](Self::update), [`upsert`](Self::upsert),
/// [`retain`](Self::retain) and [`for_each`](Self::for_each) run while the map is locked: the entry's
/// shard with `Sharded`, the writer lock with `Rcu` (its reads take no lock). Do not touch the same map
/// from inside them; that would deadlock. Keep them short.
///
/// # Panics in user code
///
/// A panic in `Hash`, `Eq`, `Clone` or a closure unwinds out of the call and leaves the map usable,
/// with no lock poisoned and no other entry lost:
/// - `Rcu`: nothing of the failed call is published; the map is exactly as before it. (Versions
///   keep no hashes: a write that grows a table or re-shards calls `Hash` on the keys it moves,
///   and a panic there drops the unpublished copy.)
/// - `Sharded`: an `update`/`upsert` closure that panics leaves the entry with whatever it had
///   written so far (an `upsert` that created the entry keeps it); `retain` keeps the decisions it
///   made before the panic. Tables keep no hashes either: a shard that must grow hashes every key
///   before any entry moves, so a panicking `Hash` fails the insert and leaves the shard as it was.
///
/// Statistics count what took effect: with `Rcu` a failed call counts nothing (except the
/// contention it met); with `Sharded` an `update`/`upsert` whose closure panicked counts as an
/// update (or an insert, if it created the entry), since its changes stay.
pub struct GuardedMap<K, V, S: MapSpec, H = RandomState> {
    store: StoreOf<S, K, V>,
    hasher: H,
    stats: Arc<MapStats>,
    spec: PhantomData<fn() -> S>,
}

impl<K, V, S: MapSpec, H> GuardedMap<K, V, S, H>
where
    StoreOf<S, K, V>: Storage<K, V>,
{
    /// Whether the spec collects statistics: a constant, so a spec with `stats = false` compiles the
    /// counting out of every operation.
    const STATS: bool = S::DESCRIPTOR.stats_enabled();

    #[inline(always)]
    fn rec(&self) -> Recorder<'_> {
        self.stats.recorder(Self::STATS)
    }

    /// Tells an attached probe about an operation (see [`hooks`]): one relaxed load while none is.
    #[inline(always)]
    fn probe(&self, op: Op, hash: u64) {
        if hooks::armed() {
            hooks::after_op(S::DESCRIPTOR.label(), op, hash);
        }
    }

    fn config(capacity: usize) -> StoreConfig {
        const {
            S::DESCRIPTOR.assert_valid();
            assert!(
                S::DESCRIPTOR.backend() as u8 == <S::Backend as Backend>::KIND as u8,
                "guarded-map: the spec's descriptor names a different backend than its `Backend` type"
            );
        }
        StoreConfig {
            capacity,
            shards: <S::Backend as Backend>::shards(S::DESCRIPTOR),
            max_len: S::DESCRIPTOR.max_len_limit(),
        }
    }

    /// Builds and registers an instance around the store `make` returns.
    fn build(hasher: H, make: impl FnOnce(Recorder<'_>) -> StoreOf<S, K, V>) -> Self {
        // hashbrown keeps one control byte per bucket and fills at most 7/8 of its buckets.
        let entry_bytes = (<S::Backend as Backend>::entry_size::<K, V>() + 1) * 8 / 7;
        // Rare events go on to the probe's hooks and the metrics histograms.
        sink::install(|| Sink {
            waited: hooks::waited,
            observe_wait: report::observe_lock_wait,
            observe_publish: report::observe_publish,
        });
        let stats = MapStats::new(S::DESCRIPTOR, entry_bytes);
        let store = make(stats.recorder(Self::STATS));
        registry::register(&stats);
        GuardedMap {
            store,
            hasher,
            stats,
            spec: PhantomData,
        }
    }

    #[track_caller]
    fn from_entries(hasher: H, entries: Vec<Entry<K, V>>, rehash: impl Fn(&K) -> u64) -> Self {
        let count = entries.len();
        if let Some(max) = S::DESCRIPTOR.max_len_limit() {
            assert!(
                count <= max,
                "guarded-map: map `{}` built from {count} entries, more than its max_len of {max}",
                S::DESCRIPTOR.label()
            );
        }
        Self::build(hasher, |rec| {
            rec.count(Counter::Added, count as u64);
            Storage::from_entries(Self::config(0), entries, rec, rehash)
        })
    }

    /// An empty map that will use `hasher`.
    pub fn with_hasher(hasher: H) -> Self {
        Self::with_capacity_and_hasher(0, hasher)
    }

    /// An empty map with room for `capacity` entries, using `hasher`.
    pub fn with_capacity_and_hasher(capacity: usize, hasher: H) -> Self {
        Self::build(hasher, |rec| Storage::new(Self::config(capacity), rec))
    }

    /// The number of entries.
    ///
    /// Exact when no write is in flight; under concurrent writes it is a value the map had recently.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of entries the map can hold without allocating.
    pub fn capacity(&self) -> usize {
        self.store.capacity()
    }

    /// Removes every entry. `Rcu`: one O(1) publish; `Sharded`: shard by shard, so a concurrent
    /// reader may see some shards cleared before others.
    pub fn clear(&self) {
        let rec = self.rec();
        let removed = self.store.clear(rec);
        rec.count(Counter::Clear, 1);
        rec.count(Counter::Removed, removed as u64);
        self.probe(Op::Clear, 0);
    }

    /// Keeps only the entries for which `keep` returns true; `keep` may change the values it keeps.
    ///
    /// `Rcu`: all-or-nothing, one publish. `Sharded`: shard by shard.
    pub fn retain(&self, keep: impl FnMut(&K, &mut V) -> bool) {
        let rec = self.rec();
        let removed = self.store.retain(rec, keep);
        rec.count(Counter::Retain, 1);
        rec.count(Counter::Removed, removed as u64);
        self.probe(Op::Retain, 0);
    }

    /// Calls `f` on every entry, without copying. `Rcu`: over one consistent version. `Sharded`:
    /// shard by shard, each shard read-locked while `f` runs on its entries.
    pub fn for_each(&self, f: impl FnMut(&K, &V)) {
        self.store.for_each(self.rec(), f);
    }

    /// This instance's statistics (counts since it was created; `len` and `capacity` now).
    pub fn stats(&self) -> Stats {
        let mut stats = Stats::from_counts(&self.stats.counts());
        stats.len = self.len() as u64;
        stats.capacity = self.capacity() as u64;
        stats.memory_bytes = self.stats.memory_bytes() as u64;
        stats
    }

    /// The map's static descriptor (label, backend, options, source location).
    pub fn descriptor(&self) -> &'static crate::Descriptor {
        S::DESCRIPTOR
    }

    /// The map's hasher.
    pub fn hasher(&self) -> &H {
        &self.hasher
    }
}

impl<K, V, S: MapSpec, H: Default> GuardedMap<K, V, S, H>
where
    StoreOf<S, K, V>: Storage<K, V>,
{
    /// An empty map.
    pub fn new() -> Self {
        Self::with_hasher(H::default())
    }

    /// An empty map with room for `capacity` entries.
    pub fn with_capacity(capacity: usize) -> Self {
        Self::with_capacity_and_hasher(capacity, H::default())
    }
}

impl<K, V, S, H> GuardedMap<K, V, S, H>
where
    K: Eq + Hash,
    S: MapSpec,
    H: BuildHasher,
    StoreOf<S, K, V>: Storage<K, V>,
{
    #[inline(always)]
    fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The hasher as a function of keys, for tables that keep no hashes and grow.
    fn rehash(&self) -> impl Fn(&K) -> u64 + '_ {
        |key| self.hash(key)
    }

    /// Shrinks every table to fit its entries (and, for `Rcu`, re-picks the shard count).
    pub fn shrink_to_fit(&self) {
        self.store.shrink_to_fit(self.rec(), self.rehash());
    }

    /// Calls `f` with a reference to the value of `key` and returns its result, or `None` if absent.
    ///
    /// `Rcu`: no lock is taken. `Sharded`: the key's shard is read-locked while `f` runs.
    #[inline]
    pub fn with<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        let hash = self.hash(key);
        let out = self.store.get(hash, key, &self.stats, Self::STATS, f);
        self.probe(Op::Get, hash);
        out
    }

    /// A clone of the value of `key`.
    #[inline]
    pub fn get_cloned<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
        V: Clone,
    {
        self.with(key, V::clone)
    }

    /// Whether `key` is present.
    #[inline]
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        self.with(key, |_| ()).is_some()
    }

    /// Inserts `value` under `key`, returning the value it replaces.
    ///
    /// # Panics
    ///
    /// If the spec sets `max_len`, the map is full and `key` is new. Use
    /// [`try_insert`](Self::try_insert) where that can happen.
    #[track_caller]
    pub fn insert(&self, key: K, value: V) -> Option<V> {
        match self.try_insert(key, value) {
            Ok(old) => old,
            Err(err) => panic!("guarded-map: {err}; use try_insert to handle a full map"),
        }
    }

    /// Inserts `value` under `key`, returning the value it replaces, or an error giving both back if
    /// `key` is new and the map already holds its `max_len` entries.
    pub fn try_insert(&self, key: K, value: V) -> Result<Option<V>, CapacityError<(K, V)>> {
        let rec = self.rec();
        let hash = self.hash(&key);
        match self.store.insert(hash, key, value, rec, self.rehash()) {
            Ok(old) => {
                self.probe(Op::Insert, hash);
                Ok(old)
            }
            Err(pair) => Err(self.full(rec, pair)),
        }
    }

    #[cold]
    fn full<T>(&self, rec: Recorder<'_>, item: T) -> CapacityError<T> {
        rec.count(Counter::Rejected, 1);
        let max = S::DESCRIPTOR.max_len_limit().unwrap_or(0);
        CapacityError::new(item, S::DESCRIPTOR.label(), max)
    }

    /// Removes `key`, returning its value.
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        self.remove_entry(key).map(|(_, v)| v)
    }

    /// Removes `key`, returning the stored key and its value.
    pub fn remove_entry<Q>(&self, key: &Q) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        let rec = self.rec();
        let hash = self.hash(key);
        let out = self.store.remove(hash, key, rec);
        self.probe(Op::Remove, hash);
        out
    }

    /// Calls `f` with a mutable reference to the value of `key`; `None` if absent.
    pub fn update<Q, R>(&self, key: &Q, f: impl FnOnce(&mut V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        let rec = self.rec();
        let hash = self.hash(key);
        let out = self.store.update(hash, key, rec, f);
        self.probe(Op::Update, hash);
        out
    }

    /// Calls `f` on the value of `key`, inserting `default()` first if the key is absent, atomically.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Words: HashMap<String, usize>, rcu);
    ///
    /// let counts: GuardedMap<String, usize, Words> = GuardedMap::new();
    /// for word in "a b a".split(' ') {
    ///     counts.upsert(word.to_string(), || 0, |n| *n += 1);
    /// }
    /// assert_eq!(counts.get_cloned("a"), Some(2));
    /// ```
    ///
    /// # Panics
    ///
    /// Like [`insert`](Self::insert), when a new key would exceed `max_len`.
    #[track_caller]
    pub fn upsert<R>(&self, key: K, default: impl FnOnce() -> V, f: impl FnOnce(&mut V) -> R) -> R {
        match self.try_upsert(key, default, f) {
            Ok(result) => result,
            Err(err) => panic!("guarded-map: {err}; use try_upsert to handle a full map"),
        }
    }

    /// Like [`upsert`](Self::upsert), but gives the key back instead of growing past `max_len`.
    pub fn try_upsert<R>(
        &self,
        key: K,
        default: impl FnOnce() -> V,
        f: impl FnOnce(&mut V) -> R,
    ) -> Result<R, CapacityError<K>> {
        let rec = self.rec();
        let hash = self.hash(&key);
        match self.store.upsert(hash, key, rec, self.rehash(), default, f) {
            Ok(done) => {
                let op = if done.inserted {
                    Op::Insert
                } else {
                    Op::Update
                };
                self.probe(op, hash);
                Ok(done.result)
            }
            Err(key) => Err(self.full(rec, key)),
        }
    }
}

impl<K, V, S, H> GuardedMap<K, V, S, H>
where
    S: MapSpec,
    H: Clone,
    StoreOf<S, K, V>: SnapshotStorage<K, V>,
{
    /// An immutable, consistent view of the whole map; see [`Snapshot`].
    ///
    /// `Rcu`: O(1), no copy. `Sharded`: copies every entry while all shards are read-locked (writers
    /// wait for the copy, readers do not), giving the exact state at one instant.
    pub fn snapshot(&self) -> Snapshot<K, V, H> {
        let rec = self.rec();
        let frozen = self.store.snapshot(rec);
        rec.count(Counter::Snapshot, 1);
        self.probe(Op::Snapshot, 0);
        Snapshot::new(frozen, self.hasher.clone())
    }
}

impl<K, V, S: MapSpec, H> Drop for GuardedMap<K, V, S, H> {
    fn drop(&mut self) {
        registry::unregister(&self.stats);
    }
}

impl<K, V, S: MapSpec, H: Default> Default for GuardedMap<K, V, S, H>
where
    StoreOf<S, K, V>: Storage<K, V>,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V, S, H> Clone for GuardedMap<K, V, S, H>
where
    S: MapSpec,
    H: Clone,
    StoreOf<S, K, V>: SnapshotStorage<K, V>,
{
    /// A new, separately counted instance with the same entries (`Rcu`: shares the current version,
    /// O(1)).
    fn clone(&self) -> Self {
        let source = self.rec();
        source.count(Counter::Snapshot, 1);
        self.probe(Op::Snapshot, 0);
        Self::build(self.hasher.clone(), |rec| {
            let store = self.store.duplicate(Self::config(0), rec);
            rec.count(Counter::Added, store.len() as u64);
            store
        })
    }
}

impl<K: fmt::Debug, V: fmt::Debug, S: MapSpec, H> fmt::Debug for GuardedMap<K, V, S, H>
where
    StoreOf<S, K, V>: Storage<K, V>,
{
    /// Prints the entries like `HashMap` does, so a `#[derive(Debug)]` struct reads the same after
    /// its field is guarded.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_map();
        self.for_each(|k, v| {
            out.entry(k, v);
        });
        out.finish()
    }
}

impl<K, V, S, H> From<std::collections::HashMap<K, V, H>> for GuardedMap<K, V, S, H>
where
    K: Eq + Hash,
    S: MapSpec,
    H: BuildHasher + Clone,
    StoreOf<S, K, V>: Storage<K, V>,
{
    /// Takes over the entries and the hasher of a `HashMap`.
    ///
    /// # Panics
    ///
    /// If the map has more entries than the spec's `max_len`.
    #[track_caller]
    fn from(map: std::collections::HashMap<K, V, H>) -> Self {
        let hasher = map.hasher().clone();
        let entries = map
            .into_iter()
            .map(|(key, value)| Entry {
                hash: hasher.hash_one(&key),
                key,
                value,
            })
            .collect();
        let rehash = |key: &K| hasher.hash_one(key);
        Self::from_entries(hasher.clone(), entries, rehash)
    }
}

impl<K, V, S, H> FromIterator<(K, V)> for GuardedMap<K, V, S, H>
where
    K: Eq + Hash,
    S: MapSpec,
    H: BuildHasher + Clone + Default,
    StoreOf<S, K, V>: Storage<K, V>,
{
    /// Builds the map in one pass (one publish for `Rcu`); a repeated key keeps its last value.
    ///
    /// # Panics
    ///
    /// If there are more distinct keys than the spec's `max_len`.
    #[track_caller]
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let map: std::collections::HashMap<K, V, H> = iter.into_iter().collect();
        Self::from(map)
    }
}

impl<K, V, S, H> Extend<(K, V)> for GuardedMap<K, V, S, H>
where
    K: Eq + Hash,
    S: MapSpec,
    H: BuildHasher,
    StoreOf<S, K, V>: Storage<K, V>,
{
    /// Inserts every pair, in order.
    ///
    /// # Panics
    ///
    /// Like [`insert`](GuardedMap::insert), when a new key would exceed `max_len`.
    #[track_caller]
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        let mut shared = &*self;
        shared.extend(iter);
    }
}

impl<K, V, S, H> Extend<(K, V)> for &GuardedMap<K, V, S, H>
where
    K: Eq + Hash,
    S: MapSpec,
    H: BuildHasher,
    StoreOf<S, K, V>: Storage<K, V>,
{
    /// Inserts every pair, in order, through a shared reference.
    #[track_caller]
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (key, value) in iter {
            self.insert(key, value);
        }
    }
}
