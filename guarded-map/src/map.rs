//! [`GuardedMap`]: the one public map type.

mod adaptive;

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::Arc;

use crate::backend::{Backend, Storage, StoreConfig};
use crate::compute::{Compute, Computed, Outcome};
use crate::descriptor::Shrink;
use crate::error::CapacityError;
use crate::hooks::{self, Op};
use crate::live_iter::LiveIter;
use crate::reentry::{self, Outer};
use crate::snapshot::Snapshot;
use crate::spec::{MapSpec, SpecFor, StoreOf};
use crate::stats::hot_keys::{self, HotKey, fingerprint};
use crate::stats::sink::{self, Sink};
use crate::stats::{Counter, MapStats, Recorder, Stats};
use crate::table::Entry;
use crate::{registry, report};

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
/// [`compute`](Self::compute), [`remove_if`](Self::remove_if), [`retain`](Self::retain) and
/// [`for_each`](Self::for_each) run while the map is locked: the entry's shard with `Sharded`, the
/// writer lock with `Rcu` (its reads take no lock). Keep them short.
/// [`get_or_insert_with`](Self::get_or_insert_with)'s loader runs outside any lock.
///
/// # Re-entrancy
///
/// Calling the same map from inside one of its closures never deadlocks; what is allowed depends
/// only on the operations, never on which shards the keys fall in or what other threads do:
///
/// - a **read nested in a read** (`with`, `get_cloned`, `iter`, `snapshot`, ... inside `with` or
///   `for_each`) works on every backend, also while another thread waits to write that shard;
/// - a **write nested in any operation** of the same map panics at once, naming the map and the
///   outer operation;
/// - a **read nested in a write** (inside `update`, `upsert`, `compute`, `remove_if`, `retain`)
///   works on `Rcu` (it sees the map as it was before the outer write) and panics on `Sharded`,
///   whose write holds a lock the read may need. `len` and `is_empty` take no lock and always work.
///
/// Other maps, including other instances of the same spec, can be used freely. `Hash`, `Eq`,
/// `Clone` and `Drop` of keys and values must not call the map they are stored in.
///
/// ```
/// use guarded_map::{map_spec, GuardedMap};
/// map_spec!(Graph: HashMap<u32, u32>, sharded);
///
/// let next: GuardedMap<u32, u32, Graph> = [(1, 2), (2, 3)].into_iter().collect();
/// // A read inside a read: fine.
/// assert_eq!(next.with(&1, |n| next.get_cloned(n)), Some(Some(3)));
/// // A write inside a read: refused with a message, not a deadlock.
/// let refused = std::panic::catch_unwind(|| next.with(&1, |_| next.insert(9, 9)));
/// assert!(refused.is_err());
/// assert_eq!(next.len(), 2);
/// ```
///
/// Its cost: every write, and every `Sharded` read, checks a thread-local list's head (a load and
/// a branch; `Rcu` writes also check their reader's mark); a closure that runs under a lock pushes
/// a frame of three words on that list. See `BENCHMARKS.md`.
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
    /// Its place in the registry, which it leaves when dropped.
    seat: registry::Seat,
    spec: PhantomData<fn() -> S>,
}

impl<K, V, S: SpecFor<K, V>, H> GuardedMap<K, V, S, H> {
    /// Whether the spec collects statistics: a constant, so a spec with `stats = false` compiles the
    /// counting out of every operation.
    const STATS: bool = S::DESCRIPTOR.stats_enabled();

    #[inline(always)]
    fn rec(&self) -> Recorder<'_> {
        self.stats.recorder(Self::STATS)
    }

    /// This map's address, by which `reentry` knows it.
    #[inline(always)]
    fn id(&self) -> *const () {
        std::ptr::from_ref(&self.store).cast()
    }

    /// Refuses a write nested in any running operation of this map on this thread (see
    /// [re-entrancy](Self#re-entrancy)).
    #[inline(always)]
    #[track_caller]
    fn check_write(&self, op: &'static str) -> Outer {
        let outer = reentry::check_write(self.id(), S::DESCRIPTOR.label(), op);
        if !<S::Backend as Backend>::LOCKED_READS && self.store.reading_here() {
            reentry::reentered_read(S::DESCRIPTOR.label(), op);
        }
        outer
    }

    /// Refuses a read nested in a write of this map on this thread when the backend's reads take
    /// a lock (`Sharded`): the write holds one the read may need.
    #[inline(always)]
    #[track_caller]
    fn check_read(&self, op: &'static str) -> Outer {
        if <S::Backend as Backend>::LOCKED_READS {
            reentry::check_locked_read(self.id(), S::DESCRIPTOR.label(), op)
        } else {
            reentry::outer()
        }
    }

    /// Whether the spec tracks hot keys: a constant, so a spec with `hot_keys = 0` or
    /// `stats = false` feeds no summary.
    const HOT_KEYS: bool = S::DESCRIPTOR.hot_key_ranks() > 0;

    /// Counts the operation toward the thread's next sample point (see [`hooks`]): a thread-local
    /// decrement, and at a sample point the probe's sample and the hot-key summary.
    #[inline(always)]
    fn probe(&self, op: Op, hash: u64) {
        if hooks::tick() {
            self.sample_point(op, hash);
        }
    }

    #[cold]
    #[inline(never)]
    fn sample_point(&self, op: Op, hash: u64) {
        hooks::sample_point(S::DESCRIPTOR.label(), op, hash);
        self.store.sampled(&self.stats);
        if Self::HOT_KEYS && !matches!(op, Op::Clear | Op::Retain | Op::Snapshot) {
            self.stats.sample_key(fingerprint(hash));
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
            shrink: matches!(S::DESCRIPTOR.shrink_policy(), Shrink::Auto),
            start: S::DESCRIPTOR.start_form(),
            pinned: S::DESCRIPTOR.pinned_form().is_some(),
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
            switched: report::observe_switch,
        });
        let stats = MapStats::new(S::DESCRIPTOR, entry_bytes);
        let store = make(stats.recorder(Self::STATS));
        let seat = registry::register(&stats);
        GuardedMap {
            store,
            hasher,
            stats,
            seat,
            spec: PhantomData,
        }
    }

    /// Panics, at the caller's line, if `count` distinct entries exceed the spec's `max_len`.
    #[track_caller]
    fn assert_fits(count: usize) {
        if let Some(max) = S::DESCRIPTOR.max_len_limit() {
            assert!(
                count <= max,
                "guarded-map: map `{}` cannot take {count} entries, more than its max_len of {max}",
                S::DESCRIPTOR.label()
            );
        }
    }

    #[track_caller]
    fn from_entries(hasher: H, entries: Vec<Entry<K, V>>, rehash: impl Fn(&K) -> u64) -> Self {
        let count = entries.len();
        Self::assert_fits(count);
        Self::build(hasher, |rec| {
            rec.count(Counter::Added, count as u64);
            Storage::from_entries(Self::config(0), entries, rec, rehash)
        })
    }

    /// An empty map that will use `hasher`.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Ids: HashMap<u64, u64>, sharded);
    ///
    /// let ids: GuardedMap<u64, u64, Ids, foldhash::fast::RandomState> =
    ///     GuardedMap::with_hasher(foldhash::fast::RandomState::default());
    /// ids.insert(1, 2);
    /// assert_eq!(ids.get_cloned(&1), Some(2));
    /// ```
    pub fn with_hasher(hasher: H) -> Self {
        Self::with_capacity_and_hasher(0, hasher)
    }

    /// An empty map with room for `capacity` entries, using `hasher`.
    ///
    /// ```
    /// use std::collections::hash_map::RandomState;
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Ids: HashMap<u64, u64>, sharded);
    ///
    /// let ids: GuardedMap<u64, u64, Ids> = GuardedMap::with_capacity_and_hasher(1_000, RandomState::new());
    /// assert!(ids.capacity() >= 1_000);
    /// ```
    pub fn with_capacity_and_hasher(capacity: usize, hasher: H) -> Self {
        Self::build(hasher, |rec| Storage::new(Self::config(capacity), rec))
    }

    /// The number of entries.
    ///
    /// Exact when no write is in flight; under concurrent writes it is a value the map had recently.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Seen: HashMap<u32, ()>, rcu);
    ///
    /// let seen: GuardedMap<u32, (), Seen> = GuardedMap::new();
    /// seen.insert(1, ());
    /// seen.insert(1, ());
    /// assert_eq!(seen.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Whether the map is empty.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Jobs: HashMap<u32, String>, sharded);
    ///
    /// let jobs: GuardedMap<u32, String, Jobs> = GuardedMap::new();
    /// assert!(jobs.is_empty());
    /// jobs.insert(1, "build".into());
    /// assert!(!jobs.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of entries the map can hold without allocating.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Slots: HashMap<u32, u32>, sharded);
    ///
    /// let slots: GuardedMap<u32, u32, Slots> = GuardedMap::with_capacity(100);
    /// assert!(slots.capacity() >= 100);
    /// ```
    pub fn capacity(&self) -> usize {
        self.store.capacity()
    }

    /// Removes every entry. `Rcu`: one O(1) publish; `Sharded`: shard by shard, so a concurrent
    /// reader may see some shards cleared before others.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Cache: HashMap<u32, String>, rcu);
    ///
    /// let cache: GuardedMap<u32, String, Cache> = [(1, "a".to_string())].into_iter().collect();
    /// cache.clear();
    /// assert!(cache.is_empty());
    /// assert_eq!(cache.stats().clears, 1);
    /// ```
    pub fn clear(&self) {
        self.check_write("clear");
        let rec = self.rec();
        let removed = self.store.clear(rec);
        rec.count(Counter::Clear, 1);
        rec.count(Counter::Removed, removed as u64);
        self.probe(Op::Clear, 0);
    }

    /// Keeps only the entries for which `keep` returns true; `keep` may change the values it keeps.
    ///
    /// `Rcu`: all-or-nothing, one publish. `Sharded`: shard by shard.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Sessions: HashMap<u64, u32>, sharded);
    ///
    /// // Session id -> seconds left.
    /// let sessions: GuardedMap<u64, u32, Sessions> = [(1, 0), (2, 30), (3, 5)].into_iter().collect();
    /// sessions.retain(|_, left| {
    ///     *left = left.saturating_sub(5);
    ///     *left > 0
    /// });
    /// assert_eq!(sessions.len(), 1);
    /// assert_eq!(sessions.get_cloned(&2), Some(25));
    /// ```
    pub fn retain(&self, keep: impl FnMut(&K, &mut V) -> bool) {
        let outer = self.check_write("retain");
        let rec = self.rec();
        // Counted first: a retain whose closure panics still ran (and, with `Sharded`, removed
        // what it decided before the panic, which the store counts).
        rec.count(Counter::Retain, 1);
        let mut keep = keep;
        let id = self.id();
        self.store.retain(rec, |key: &K, value: &mut V| {
            outer.enter(id, reentry::Op::RETAIN, || keep(key, value))
        });
        self.probe(Op::Retain, 0);
    }

    /// Calls `f` on every entry, without copying. `Rcu`: over one consistent version. `Sharded`:
    /// shard by shard, each shard read-locked while `f` runs on its entries.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Sizes: HashMap<String, u64>, rcu);
    ///
    /// let sizes: GuardedMap<String, u64, Sizes> =
    ///     [("a".to_string(), 10), ("b".to_string(), 32)].into_iter().collect();
    /// let mut total = 0;
    /// sizes.for_each(|_, size| total += size);
    /// assert_eq!(total, 42);
    /// ```
    pub fn for_each(&self, f: impl FnMut(&K, &V)) {
        let outer = self.check_read("for_each");
        let (mut f, id) = (f, self.id());
        self.store.for_each(self.rec(), |key: &K, value: &V| {
            outer.enter(id, reentry::Op::FOR_EACH, || f(key, value))
        });
    }

    /// Clones of every entry of the live map, copied one shard at a time, never holding a lock
    /// between two items or across more than one shard (see [`LiveIter`] for what it sees under
    /// concurrent writes). For one consistent view with no copy on `Rcu`, use
    /// [`snapshot`](Self::snapshot).
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Scores: HashMap<&'static str, u32>, sharded);
    ///
    /// let scores: GuardedMap<&str, u32, Scores> = [("a", 1), ("b", 2)].into_iter().collect();
    /// let mut all: Vec<_> = scores.iter().collect();
    /// all.sort();
    /// assert_eq!(all, [("a", 1), ("b", 2)]);
    /// // Holding no lock between items, the loop may write the map.
    /// for (key, score) in scores.iter() {
    ///     scores.insert(key, score * 10);
    /// }
    /// assert_eq!(scores.get_cloned("b"), Some(20));
    /// ```
    pub fn iter(&self) -> LiveIter<'_, K, V, S>
    where
        K: Clone,
        V: Clone,
    {
        let locked_reads = <S::Backend as Backend>::LOCKED_READS.then(|| S::DESCRIPTOR.label());
        LiveIter::new(&self.store, locked_reads, self.rec())
    }

    /// This instance's statistics (counts since it was created; `len` and `capacity` now).
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Users: HashMap<u32, String>, sharded);
    ///
    /// let users: GuardedMap<u32, String, Users> = GuardedMap::new();
    /// users.insert(1, "ada".into());
    /// users.get_cloned(&1);
    /// users.get_cloned(&2);
    /// let stats = users.stats();
    /// assert_eq!((stats.gets, stats.misses, stats.inserts, stats.len), (2, 1, 1, 1));
    /// println!("{stats}"); // a table: one line per counter
    /// ```
    pub fn stats(&self) -> Stats {
        let mut stats = Stats::from_counts(&self.stats.counts());
        stats.len = self.len() as u64;
        stats.capacity = self.capacity() as u64;
        stats.memory_bytes = self.stats.memory_bytes() as u64;
        stats
    }

    /// The keys that carry the most of this map's keyed operations, hottest first: its top
    /// [`hot_keys`](crate::Descriptor::hot_keys) ranks (5 unless the spec says otherwise), and
    /// any other key with at least [`HotKey::HOT_SHARE`] of the operations.
    ///
    /// Learned from sampled operations (about one in 128 per thread; see [`HotKey`]), so a map
    /// shows hot keys after a few thousand operations. Keys are given as fingerprints;
    /// [`hot_keys_resolved`](Self::hot_keys_resolved) finds the keys themselves. Empty for a spec
    /// with `hot_keys = 0` or `stats = false`.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Prices: HashMap<u32, u64>, rcu);
    ///
    /// let prices: GuardedMap<u32, u64, Prices> = (0..100).map(|k| (k, 0)).collect();
    /// for i in 0..200_000u32 {
    ///     // Key 7 takes a third of the reads; the others share the rest.
    ///     let key = if i % 3 == 0 { 7 } else { i % 100 };
    ///     prices.get_cloned(&key);
    /// }
    /// let hot = prices.hot_keys();
    /// assert_eq!(hot[0].fingerprint, prices.fingerprint(&7));
    /// // About a third, estimated from one read in 256 or so.
    /// assert!((hot[0].share - 0.34).abs() < 0.12);
    /// ```
    pub fn hot_keys(&self) -> Vec<HotKey> {
        let (ranked, _) = self.stats.hot_keys().unwrap_or_default();
        hot_keys::hottest(ranked, S::DESCRIPTOR.hot_key_ranks())
    }

    /// The map's static descriptor (label, backend, options, source location).
    ///
    /// ```
    /// use guarded_map::{map_spec, BackendKind, GuardedMap};
    /// map_spec!(Routes: HashMap<String, u16>, rcu, name = "routes", max_len = 1_000);
    ///
    /// let routes: GuardedMap<String, u16, Routes> = GuardedMap::new();
    /// let descriptor = routes.descriptor();
    /// assert_eq!(descriptor.label(), "routes");
    /// assert_eq!(descriptor.backend(), BackendKind::Rcu);
    /// assert_eq!(descriptor.max_len_limit(), Some(1_000));
    /// ```
    pub fn descriptor(&self) -> &'static crate::Descriptor {
        S::DESCRIPTOR
    }

    /// The map's hasher.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Ids: HashMap<u64, u64>, sharded);
    ///
    /// let ids: GuardedMap<u64, u64, Ids> = GuardedMap::new();
    /// let same = std::hash::BuildHasher::hash_one(ids.hasher(), 7u64);
    /// assert_eq!(same, std::hash::BuildHasher::hash_one(ids.hasher(), 7u64));
    /// ```
    pub fn hasher(&self) -> &H {
        &self.hasher
    }
}

impl<K, V, S: SpecFor<K, V>, H: Default> GuardedMap<K, V, S, H> {
    /// An empty map.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Names: HashMap<u32, String>, sharded);
    ///
    /// let names: GuardedMap<u32, String, Names> = GuardedMap::new();
    /// assert!(names.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::with_hasher(H::default())
    }

    /// An empty map with room for `capacity` entries.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Names: HashMap<u32, String>, rcu);
    ///
    /// let names: GuardedMap<u32, String, Names> = GuardedMap::with_capacity(64);
    /// assert!(names.capacity() >= 64);
    /// ```
    pub fn with_capacity(capacity: usize) -> Self {
        Self::with_capacity_and_hasher(capacity, H::default())
    }
}

impl<K, V, S, H> GuardedMap<K, V, S, H>
where
    K: Eq + Hash,
    S: SpecFor<K, V>,
    H: BuildHasher,
{
    #[inline(always)]
    fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The hasher as a function of keys, for tables that keep no hashes and grow.
    fn rehash(&self) -> impl Fn(&K) -> u64 + '_ {
        |key| self.hash(key)
    }

    /// The fingerprint of `key` in this map, as [`hot_keys`](Self::hot_keys) and the probe's
    /// samples show it.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Prices: HashMap<u32, u64>, rcu);
    ///
    /// let prices: GuardedMap<u32, u64, Prices> = GuardedMap::new();
    /// assert_eq!(prices.fingerprint(&7), prices.fingerprint(&7));
    /// assert_ne!(prices.fingerprint(&7), prices.fingerprint(&8));
    /// ```
    pub fn fingerprint<Q: Hash + ?Sized>(&self, key: &Q) -> u64
    where
        K: Borrow<Q>,
    {
        fingerprint(self.hash(key))
    }

    /// [`hot_keys`](Self::hot_keys) with the keys themselves, for use inside the process (never
    /// publish them: keys may be personal data): each hot fingerprint with a clone of the live key
    /// it belongs to. Finds them with one pass over the live entries ([`iter`](Self::iter));
    /// a hot key no longer in the map is left out.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Pages: HashMap<String, u64>, sharded);
    ///
    /// let pages: GuardedMap<String, u64, Pages> = GuardedMap::new();
    /// for page in ["/", "/about", "/blog"] {
    ///     pages.insert(page.to_string(), 0);
    /// }
    /// for i in 0..100_000 {
    ///     let page = if i % 2 == 0 { "/" } else { ["/about", "/blog"][i % 4 / 2] };
    ///     pages.update(page, |n| *n += 1);
    /// }
    /// let hot = pages.hot_keys_resolved();
    /// assert_eq!(hot[0].1, "/"); // half of the traffic
    /// assert!(hot[0].0.share > 0.3); // about one half, from sampled updates
    /// ```
    pub fn hot_keys_resolved(&self) -> Vec<(HotKey, K)>
    where
        K: Clone,
        V: Clone,
    {
        let hot = self.hot_keys();
        let mut found: Vec<Option<K>> = vec![None; hot.len()];
        let mut missing = hot.len();
        for (key, _) in self.iter() {
            if missing == 0 {
                break;
            }
            let print = self.fingerprint(&key);
            if let Some(at) = hot.iter().position(|h| h.fingerprint == print)
                && found[at].is_none()
            {
                found[at] = Some(key);
                missing -= 1;
            }
        }
        hot.into_iter()
            .zip(found)
            .filter_map(|(h, key)| Some((h, key?)))
            .collect()
    }

    /// Shrinks every table to fit its entries (and, for `Rcu`, re-picks the shard count).
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Batch: HashMap<u32, u32>, sharded, shards = 4);
    ///
    /// let batch: GuardedMap<u32, u32, Batch> = (0..10_000).map(|i| (i, i)).collect();
    /// batch.retain(|k, _| *k < 10);
    /// let before = batch.capacity();
    /// batch.shrink_to_fit();
    /// assert!(batch.capacity() < before);
    /// assert_eq!(batch.len(), 10);
    /// ```
    pub fn shrink_to_fit(&self) {
        self.check_write("shrink_to_fit");
        self.store.shrink_to_fit(self.rec(), self.rehash());
    }

    /// Calls `f` with a reference to the value of `key` and returns its result, or `None` if absent.
    ///
    /// `Rcu`: no lock is taken. `Sharded`: the key's shard is read-locked while `f` runs. `f` may
    /// read this map again, but not write it (see [re-entrancy](Self#re-entrancy)).
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Names: HashMap<u32, String>, sharded);
    ///
    /// let names: GuardedMap<u32, String, Names> = [(1, "ada".to_string())].into_iter().collect();
    /// assert_eq!(names.with(&1, |name| name.len()), Some(3));
    /// assert_eq!(names.with(&2, |name| name.len()), None);
    /// ```
    #[inline]
    pub fn with<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        let hash = self.hash(key);
        // `Rcu` readers mark their reads themselves, and a read takes no lock: no frame there.
        let out = if <S::Backend as Backend>::LOCKED_READS {
            let (outer, id) = (self.check_read("with"), self.id());
            self.store
                .get(hash, key, &self.stats, Self::STATS, |value: &V| {
                    outer.enter(id, reentry::Op::WITH, || f(value))
                })
        } else {
            self.store.get(hash, key, &self.stats, Self::STATS, f)
        };
        self.probe(Op::Get, hash);
        self.store.settle(self.rec(), self.rehash());
        out
    }

    /// A keyed read with no closure of the user's (only `Clone`, or nothing, runs under the lock).
    #[inline(always)]
    fn read<Q, R>(&self, key: &Q, op: &'static str, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        self.check_read(op);
        let hash = self.hash(key);
        // No frame: nothing of the user's but `Clone` and `Eq` runs under the lock.
        let out = self.store.get(hash, key, &self.stats, Self::STATS, f);
        self.probe(Op::Get, hash);
        self.store.settle(self.rec(), self.rehash());
        out
    }

    /// A clone of the value of `key`.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Ports: HashMap<String, u16>, rcu);
    ///
    /// let ports: GuardedMap<String, u16, Ports> = GuardedMap::new();
    /// ports.insert("http".to_string(), 80);
    /// assert_eq!(ports.get_cloned("http"), Some(80));
    /// assert_eq!(ports.get_cloned("ftp"), None);
    /// ```
    #[inline]
    pub fn get_cloned<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
        V: Clone,
    {
        self.read(key, "get_cloned", V::clone)
    }

    /// Whether `key` is present.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Seen: HashMap<u64, ()>, sharded);
    ///
    /// let seen: GuardedMap<u64, (), Seen> = GuardedMap::new();
    /// seen.insert(7, ());
    /// assert!(seen.contains_key(&7));
    /// assert!(!seen.contains_key(&8));
    /// ```
    #[inline]
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        self.read(key, "contains_key", |_| ()).is_some()
    }

    /// The value of `key`, cloned; if absent, `load()` makes it first and it is inserted.
    ///
    /// A hit takes the read path and counts as a read (no lock with `Rcu`, a read lock with
    /// `Sharded`) and does not allocate a key. On a miss, `load` runs outside any lock, so it may
    /// be slow or read this map; two threads that miss the same key at once may both run it: the
    /// first to insert wins, and both get the value that was stored.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Profiles: HashMap<String, String>, rcu);
    ///
    /// let cache: GuardedMap<String, String, Profiles> = GuardedMap::new();
    /// let mut loads = 0;
    /// for _ in 0..3 {
    ///     let profile = cache.get_or_insert_with("ada", || {
    ///         loads += 1;
    ///         "Ada Lovelace".to_string()
    ///     });
    ///     assert_eq!(profile, "Ada Lovelace");
    /// }
    /// assert_eq!(loads, 1);
    /// assert_eq!(cache.stats().gets, 3); // one miss, two hits
    /// assert_eq!(cache.stats().inserts, 1);
    /// ```
    ///
    /// # Panics
    ///
    /// Like [`insert`](Self::insert), when the key is new and the map holds its `max_len`
    /// entries; [`try_get_or_insert_with`](Self::try_get_or_insert_with) returns an error instead.
    #[track_caller]
    pub fn get_or_insert_with<Q>(&self, key: &Q, load: impl FnOnce() -> V) -> V
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K>,
        V: Clone,
    {
        match self.try_get_or_insert_with(key, load) {
            Ok(value) => value,
            Err(err) => {
                panic!("guarded-map: {err}; use try_get_or_insert_with to handle a full map")
            }
        }
    }

    /// Like [`get_or_insert_with`](Self::get_or_insert_with), but gives the loaded value back
    /// instead of growing past `max_len`.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Small: HashMap<String, u32>, sharded, max_len = 1);
    ///
    /// let small: GuardedMap<String, u32, Small> = GuardedMap::new();
    /// assert_eq!(small.try_get_or_insert_with("a", || 1), Ok(1));
    /// assert_eq!(small.try_get_or_insert_with("a", || 2), Ok(1)); // a hit: the loader's value is unused
    /// let full = small.try_get_or_insert_with("b", || 3).unwrap_err();
    /// assert_eq!(full.into_inner(), 3); // the loaded value comes back
    /// ```
    pub fn try_get_or_insert_with<Q>(
        &self,
        key: &Q,
        load: impl FnOnce() -> V,
    ) -> Result<V, CapacityError<V>>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K>,
        V: Clone,
    {
        if let Some(value) = self.read(key, "get_or_insert_with", V::clone) {
            return Ok(value);
        }
        let value = load();
        self.keyed_compute(key, reentry::Op::GET_OR_INSERT, |current| match current {
            Some((_, stored)) => (Compute::Keep, stored.clone()),
            None => {
                let stored = value.clone();
                (Compute::Set(value), stored)
            }
        })
        .map(|(_, value)| value)
        .map_err(|(value, _)| value)
    }

    /// Shows `f` the value of `key` (or `None`) and does what it returns, atomically: keep the
    /// entry, set a value (insert or replace), or remove the entry.
    ///
    /// `f` runs under the key's shard write lock (`Sharded`) or the writer lock (`Rcu`, where a
    /// decision to keep publishes nothing). It must not call this map (see
    /// [re-entrancy](Self#re-entrancy)).
    ///
    /// ```
    /// use guarded_map::{map_spec, Compute, Computed, GuardedMap};
    /// map_spec!(Stock: HashMap<String, u32>, sharded);
    ///
    /// let stock: GuardedMap<String, u32, Stock> = [("tea".to_string(), 1)].into_iter().collect();
    /// // Take one; the last one taken removes the entry.
    /// let take = |n: Option<&u32>| match n {
    ///     Some(1) => Compute::Remove,
    ///     Some(n) => Compute::Set(n - 1),
    ///     None => Compute::Keep,
    /// };
    /// assert_eq!(stock.compute("tea", take), Computed::Removed(1));
    /// assert_eq!(stock.compute("tea", take), Computed::Absent);
    /// assert_eq!(stock.compute("cake", |_| Compute::Set(3)), Computed::Inserted);
    /// assert_eq!(stock.compute("cake", take), Computed::Replaced(3));
    /// assert_eq!(stock.get_cloned("cake"), Some(2));
    /// ```
    ///
    /// # Panics
    ///
    /// Like [`insert`](Self::insert), when `f` sets a value for a new key and the map holds its
    /// `max_len` entries; [`try_compute`](Self::try_compute) returns an error instead.
    #[track_caller]
    pub fn compute<Q>(&self, key: &Q, f: impl FnOnce(Option<&V>) -> Compute<V>) -> Computed<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K>,
    {
        match self.try_compute(key, f) {
            Ok(done) => done,
            Err(err) => panic!("guarded-map: {err}; use try_compute to handle a full map"),
        }
    }

    /// Like [`compute`](Self::compute), but gives the value back instead of growing past
    /// `max_len`.
    ///
    /// ```
    /// use guarded_map::{map_spec, Compute, Computed, GuardedMap};
    /// map_spec!(Small: HashMap<String, u32>, rcu, max_len = 1);
    ///
    /// let small: GuardedMap<String, u32, Small> = GuardedMap::new();
    /// assert_eq!(small.try_compute("a", |_| Compute::Set(1)), Ok(Computed::Inserted));
    /// let full = small.try_compute("b", |_| Compute::Set(2)).unwrap_err();
    /// assert_eq!(full.into_inner(), 2);
    /// assert_eq!(small.try_compute("a", |_| Compute::Remove), Ok(Computed::Removed(1)));
    /// ```
    pub fn try_compute<Q>(
        &self,
        key: &Q,
        f: impl FnOnce(Option<&V>) -> Compute<V>,
    ) -> Result<Computed<V>, CapacityError<V>>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K>,
    {
        self.keyed_compute(key, reentry::Op::COMPUTE, |current| {
            (f(current.map(|(_, v)| v)), ())
        })
        .map(|(done, ())| done.computed())
        .map_err(|(value, ())| value)
    }

    /// Removes `key` if `remove(key, value)` returns true, atomically; returns the removed entry.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Leases: HashMap<u32, u64>, rcu);
    ///
    /// let leases: GuardedMap<u32, u64, Leases> = [(1, 100), (2, 300)].into_iter().collect();
    /// let now = 200;
    /// assert_eq!(leases.remove_if(&1, |_, expiry| *expiry < now), Some((1, 100)));
    /// assert_eq!(leases.remove_if(&2, |_, expiry| *expiry < now), None);
    /// assert_eq!(leases.len(), 1);
    /// ```
    pub fn remove_if<Q>(&self, key: &Q, remove: impl FnOnce(&K, &V) -> bool) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K>,
    {
        let decide = |current: Option<(&K, &V)>| match current {
            Some((k, v)) if remove(k, v) => (Compute::Remove, ()),
            _ => (Compute::Keep, ()),
        };
        match self.keyed_compute(key, reentry::Op::REMOVE_IF, decide) {
            Ok((Outcome::Removed(key, value), ())) => Some((key, value)),
            _ => None,
        }
    }

    /// The keyed compute every decide-then-write operation is made of, run as operation `op`.
    #[allow(clippy::type_complexity)]
    fn keyed_compute<Q, R>(
        &self,
        key: &Q,
        op: &'static reentry::Op,
        f: impl FnOnce(Option<(&K, &V)>) -> (Compute<V>, R),
    ) -> Result<(Outcome<K, V>, R), (CapacityError<V>, R)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K>,
    {
        let outer = self.check_write(op.name());
        let rec = self.rec();
        let (hash, id) = (self.hash(key), self.id());
        let f = |current: Option<(&K, &V)>| outer.enter(id, op, || f(current));
        let done = self
            .store
            .compute(hash, key, rec, self.rehash(), Q::to_owned, f);
        match done {
            Ok((outcome, out)) => {
                let op = match outcome {
                    Outcome::Absent | Outcome::Kept => Op::Get,
                    Outcome::Inserted | Outcome::Replaced(_) => Op::Insert,
                    Outcome::Removed(..) => Op::Remove,
                };
                self.probe(op, hash);
                Ok((outcome, out))
            }
            Err((value, out)) => Err((self.full(rec, value), out)),
        }
    }

    /// Replaces the whole content with `entries` (a repeated key keeps its last value) and returns
    /// how many entries it replaced.
    ///
    /// The new content is built before any lock is taken. `Rcu`: one publish, so every reader sees
    /// either the old content or the new one, never a mix (a configuration's hot reload). `Sharded`:
    /// shard by shard, each under its own lock, so a reader may find some shards replaced before
    /// others; a write made meanwhile lands before or after its shard's replacement.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Config: HashMap<String, String>, rcu);
    ///
    /// let config: GuardedMap<String, String, Config> = GuardedMap::new();
    /// config.insert("mode".into(), "slow".into());
    /// let reload = [("mode".to_string(), "fast".to_string()), ("level".into(), "3".into())];
    /// assert_eq!(config.replace_all(reload), 1);
    /// assert_eq!(config.get_cloned("mode").as_deref(), Some("fast"));
    /// assert_eq!(config.len(), 2);
    /// ```
    ///
    /// # Panics
    ///
    /// If there are more distinct keys than the spec's `max_len` (the map is left as it was).
    #[track_caller]
    pub fn replace_all(&self, entries: impl IntoIterator<Item = (K, V)>) -> usize {
        self.check_write("replace_all");
        let mut distinct = hashbrown::HashTable::<Entry<K, V>>::new();
        for (key, value) in entries {
            let hash = self.hash(&key);
            match distinct.entry(hash, |e| e.key == key, |e| e.hash) {
                hashbrown::hash_table::Entry::Occupied(mut e) => e.get_mut().value = value,
                hashbrown::hash_table::Entry::Vacant(e) => {
                    e.insert(Entry { hash, key, value });
                }
            }
        }
        let added = distinct.len();
        Self::assert_fits(added);
        let rec = self.rec();
        let entries: Vec<_> = distinct.into_iter().collect();
        let removed = self.store.replace_all(entries, rec, self.rehash());
        rec.count(Counter::Removed, removed as u64);
        rec.count(Counter::Added, added as u64);
        self.probe(Op::Clear, 0);
        removed
    }

    /// Inserts `value` under `key`, returning the value it replaces.
    ///
    /// # Panics
    ///
    /// If the spec sets `max_len`, the map is full and `key` is new. Use
    /// [`try_insert`](Self::try_insert) where that can happen.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Ports: HashMap<String, u16>, sharded);
    ///
    /// let ports: GuardedMap<String, u16, Ports> = GuardedMap::new();
    /// assert_eq!(ports.insert("http".into(), 80), None);
    /// assert_eq!(ports.insert("http".into(), 8080), Some(80));
    /// ```
    #[track_caller]
    pub fn insert(&self, key: K, value: V) -> Option<V> {
        match self.try_insert(key, value) {
            Ok(old) => old,
            Err(err) => panic!("guarded-map: {err}; use try_insert to handle a full map"),
        }
    }

    /// Inserts `value` under `key`, returning the value it replaces, or an error giving both back if
    /// `key` is new and the map already holds its `max_len` entries.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Small: HashMap<u32, &'static str>, sharded, max_len = 1);
    ///
    /// let small: GuardedMap<u32, &str, Small> = GuardedMap::new();
    /// assert_eq!(small.try_insert(1, "one"), Ok(None));
    /// assert_eq!(small.try_insert(1, "uno"), Ok(Some("one"))); // replacing always fits
    /// let full = small.try_insert(2, "two").unwrap_err();
    /// assert_eq!(full.max_len(), 1);
    /// assert_eq!(full.into_inner(), (2, "two"));
    /// ```
    pub fn try_insert(&self, key: K, value: V) -> Result<Option<V>, CapacityError<(K, V)>> {
        self.check_write("insert");
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
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Tokens: HashMap<String, u64>, rcu);
    ///
    /// let tokens: GuardedMap<String, u64, Tokens> = GuardedMap::new();
    /// tokens.insert("abc".into(), 7);
    /// assert_eq!(tokens.remove("abc"), Some(7));
    /// assert_eq!(tokens.remove("abc"), None);
    /// ```
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        self.remove_entry(key).map(|(_, v)| v)
    }

    /// Removes `key`, returning the stored key and its value.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Tokens: HashMap<String, u64>, sharded);
    ///
    /// let tokens: GuardedMap<String, u64, Tokens> = GuardedMap::new();
    /// tokens.insert("abc".into(), 7);
    /// assert_eq!(tokens.remove_entry("abc"), Some(("abc".to_string(), 7)));
    /// ```
    pub fn remove_entry<Q>(&self, key: &Q) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        self.check_write("remove");
        let rec = self.rec();
        let hash = self.hash(key);
        let out = self.store.remove(hash, key, rec, self.rehash());
        self.probe(Op::Remove, hash);
        out
    }

    /// Calls `f` with a mutable reference to the value of `key`; `None` if absent.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Balances: HashMap<u32, i64>, sharded);
    ///
    /// let balances: GuardedMap<u32, i64, Balances> = [(1, 100)].into_iter().collect();
    /// let after = balances.update(&1, |balance| {
    ///     *balance -= 30;
    ///     *balance
    /// });
    /// assert_eq!(after, Some(70));
    /// assert_eq!(balances.update(&2, |balance| *balance += 1), None); // absent: nothing inserted
    /// ```
    pub fn update<Q, R>(&self, key: &Q, f: impl FnOnce(&mut V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        let outer = self.check_write("update");
        let rec = self.rec();
        let (hash, id) = (self.hash(key), self.id());
        let f = |value: &mut V| outer.enter(id, reentry::Op::UPDATE, || f(value));
        let out = self.store.update(hash, key, rec, self.rehash(), f);
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
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Small: HashMap<String, u32>, sharded, max_len = 1);
    ///
    /// let small: GuardedMap<String, u32, Small> = GuardedMap::new();
    /// assert_eq!(small.try_upsert("a".into(), || 0, |n| { *n += 1; *n }), Ok(1));
    /// let full = small.try_upsert("b".into(), || 0, |n| *n += 1).unwrap_err();
    /// assert_eq!(full.into_inner(), "b"); // the key comes back
    /// ```
    pub fn try_upsert<R>(
        &self,
        key: K,
        default: impl FnOnce() -> V,
        f: impl FnOnce(&mut V) -> R,
    ) -> Result<R, CapacityError<K>> {
        let outer = self.check_write("upsert");
        let rec = self.rec();
        let (hash, id) = (self.hash(&key), self.id());
        let default = || outer.enter(id, reentry::Op::UPSERT, default);
        let f = |value: &mut V| outer.enter(id, reentry::Op::UPSERT, || f(value));
        let done = self.store.upsert(hash, key, rec, self.rehash(), default, f);
        match done {
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
    K: Clone,
    V: Clone,
    S: SpecFor<K, V>,
    H: Clone,
{
    /// An immutable, consistent view of the whole map; see [`Snapshot`].
    ///
    /// `Rcu`: O(1), no copy. `Sharded`: copies every entry while all shards are read-locked (writers
    /// wait for the copy, readers do not), giving the exact state at one instant.
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Routes: HashMap<String, u16>, sharded);
    ///
    /// let routes: GuardedMap<String, u16, Routes> = GuardedMap::new();
    /// routes.insert("/a".into(), 1);
    /// let snapshot = routes.snapshot();
    /// routes.insert("/b".into(), 2);
    /// assert_eq!(snapshot.len(), 1); // the state at the snapshot's instant
    /// assert_eq!(snapshot.get("/a"), Some(&1));
    /// ```
    pub fn snapshot(&self) -> Snapshot<K, V, H> {
        self.check_read("snapshot");
        let rec = self.rec();
        let frozen = self.store.snapshot(rec);
        rec.count(Counter::Snapshot, 1);
        self.probe(Op::Snapshot, 0);
        Snapshot::new(frozen, self.hasher.clone())
    }
}

// A panic in user code leaves the map consistent and usable (see "Panics in user code"), as with
// std's `Mutex` and `RwLock`, which are unwind-safe too.
impl<K, V, S: MapSpec, H: RefUnwindSafe> RefUnwindSafe for GuardedMap<K, V, S, H> {}
impl<K, V, S: MapSpec, H: UnwindSafe> UnwindSafe for GuardedMap<K, V, S, H> {}

impl<K, V, S: MapSpec, H> Drop for GuardedMap<K, V, S, H> {
    fn drop(&mut self) {
        registry::unregister(&self.seat);
        // The registry holds the final counts now; the store's attachments need not fold theirs.
        self.stats.retire();
    }
}

impl<K, V, S: SpecFor<K, V>, H: Default> Default for GuardedMap<K, V, S, H> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V, S, H> Clone for GuardedMap<K, V, S, H>
where
    K: Clone,
    V: Clone,
    S: SpecFor<K, V>,
    H: Clone,
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

impl<K: fmt::Debug, V: fmt::Debug, S: SpecFor<K, V>, H> fmt::Debug for GuardedMap<K, V, S, H> {
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
    S: SpecFor<K, V>,
    H: BuildHasher + Clone,
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
    S: SpecFor<K, V>,
    H: BuildHasher + Clone + Default,
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
    S: SpecFor<K, V>,
    H: BuildHasher,
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
    S: SpecFor<K, V>,
    H: BuildHasher,
{
    /// Inserts every pair, in order, through a shared reference.
    #[track_caller]
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (key, value) in iter {
            self.insert(key, value);
        }
    }
}
