//! The two storage strategies and the internal interface [`GuardedMap`](crate::GuardedMap) drives them
//! through. The backend is a type parameter of the map's spec, so the choice costs no dynamic dispatch.

use std::borrow::Borrow;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Since;
use crate::compute::{Compute, Outcome};
use crate::descriptor::{BackendKind, Descriptor};
use crate::stats::{MapStats, Recorder};
use crate::sync::{Mutex, MutexGuard};
use crate::table::{Entry, Pair};
use crate::trie::Frozen;

pub(crate) mod adaptive;
pub(crate) mod rcu;
pub(crate) mod sharded;

#[doc(hidden)]
pub use adaptive::AdaptiveStore;
#[doc(hidden)]
pub use rcu::RcuStore;
#[doc(hidden)]
pub use sharded::ShardedStore;

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Rcu {}
    impl Sealed for super::Sharded {}
    impl Sealed for super::Ordered {}
    impl Sealed for super::Adaptive {}
}

/// A backend: [`Rcu`] or [`Sharded`] for hash maps, [`Ordered`] for ordered ones. Sealed; named
/// in a [`MapSpec`](crate::MapSpec).
///
/// Every fact of a backend is on its type: its kind (which a descriptor takes from it), how many
/// shards a map of a descriptor gets, and the bytes one entry of its tables takes.
pub trait Backend: sealed::Sealed + 'static {
    /// The backend's kind, as reported in descriptors, metrics and the probe's records.
    const KIND: BackendKind;
    #[doc(hidden)]
    type Store<K, V>;
    /// The shards a map of `descriptor` starts with.
    #[doc(hidden)]
    fn shards(descriptor: &Descriptor) -> usize;
    /// The bytes one entry takes in this backend's tables (without hashbrown's control byte).
    #[doc(hidden)]
    fn entry_size<K, V>() -> usize;
    /// Whether a keyed read holds a lock while its closure runs (so that a read nested in a write
    /// of the same map would wait for itself: see `reentry`).
    #[doc(hidden)]
    const LOCKED_READS: bool;
}

/// Read-copy-update backend for read-mostly maps.
///
/// Readers never lock and never wait: a read marks itself on a word of its thread's own, loads the
/// current version's root and looks the key up in an immutable hash trie. Writers serialize on a
/// mutex, copy the one leaf they change (at most 512 entries) and the inner nodes above it (one per
/// level, three levels at a million entries), and publish a new root; every other node is shared
/// with the old version. So a write costs O(log n) and a bounded copy, never the whole map.
/// `snapshot()` is O(1) and exactly the state after some write. Requires `K: Clone` and `V: Clone`.
///
/// Memory: what a write replaces is freed once no read that could see it is still running (a grace
/// period, in batches of about a hundred nodes), so replaced values are dropped a little later
/// than with a `HashMap` (never after the map itself). A read that runs long (a closure) holds back
/// only the nodes of the version it read, not what writes replace meanwhile; an idle thread holds
/// nothing.
///
/// A map of keys or values that are not `Send + Sync` stays on its thread, like any other type
/// holding them:
///
/// ```compile_fail
/// use std::rc::Rc;
/// use guarded_map::{map_spec, GuardedMap};
/// map_spec!(Local: HashMap<Rc<str>, u8>, rcu);
///
/// let map: GuardedMap<Rc<str>, u8, Local> = GuardedMap::new();
/// std::thread::scope(|s| {
///     s.spawn(|| map.get_cloned("a")); // error: `Rc<str>` cannot be shared between threads
/// });
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Rcu;

/// Sharded-lock backend for write-heavy maps.
///
/// A power-of-two array of cache-padded reader-writer locks, each over its own `hashbrown` table; a
/// key's hash picks its shard. A lock is first tried without blocking; only a failed try is timed
/// and counted as contention. The locks are our own: they do not poison (a panic in a closure never
/// breaks later calls), a thread that cannot enter spins briefly and then parks (`parking_lot`), a
/// waiting writer holds back new readers, and the instruction that releases a read lock also
/// counts the read, so that the statistics cost a `Sharded` read nothing. Tables keep bare pairs
/// (16 bytes for `u64` to `u64`, as dashmap's): a shard that must grow hashes every key before any
/// entry moves, so a panicking `Hash` fails that insert and loses nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sharded;

/// The adaptive backend: `Rcu` or `Sharded` at a time, switched while the map runs.
///
/// The map starts as `Sharded` (`adaptive(start = rcu)` changes that; `adaptive(pin = rcu)` also
/// holds it there). A cost model over the map's own counts switches it when the other
/// form is estimated at least 1.25 times cheaper per operation in three windows of 100 ms in a
/// row, at most once a second ([`Estimate`](crate::Estimate), `backend/adaptive/decide.rs`);
/// [`GuardedMap::switch_backend`](crate::GuardedMap::switch_backend) and
/// [`pin_backend`](crate::GuardedMap::pin_backend) switch it on request. A switch runs while
/// readers and writers do: no write is lost or applied twice, a reader sees the map before or
/// after the switch and never a state between, readers never wait, writers wait while the entries
/// are copied. Statistics run on across a switch, and `max_len` holds. Requires `K: Clone` and
/// `V: Clone` (as `Rcu`). Its reads hold a shard lock in the `Sharded` form, so a write nested in
/// a read of the same map is refused in either form, as for `Sharded`.
///
/// ```
/// use guarded_map::{map_spec, ActiveBackend, GuardedMap};
/// map_spec!(Sessions: HashMap<u64, u32>, adaptive);
///
/// let sessions: GuardedMap<u64, u32, Sessions> = (0..1_000).map(|k| (k, 0)).collect();
/// assert_eq!(sessions.active_backend(), ActiveBackend::Sharded);
/// assert!(sessions.switch_backend(ActiveBackend::Rcu)?);
/// sessions.update(&7, |n| *n += 1);
/// assert_eq!((sessions.len(), sessions.get_cloned(&7)), (1_000, Some(1)));
/// # Ok::<(), guarded_map::SwitchError>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Adaptive;

/// The ordered backend, of [`OrderedMap`](crate::OrderedMap)s (`BTreeMap` fields).
///
/// A persistent B+ tree (leaves of at most 16 entries, inner nodes of at most 16 children, each
/// one allocation with its keys inline) behind
/// an atomically swapped pointer (`arc-swap`): a read loads the current tree and searches it,
/// never locking and never waiting for a writer; a write, serialized on a mutex, copies the leaf
/// it changes and one inner node per level (O(log n)), then publishes the new tree. A
/// [`snapshot`](crate::OrderedMap::snapshot) is O(1): it holds one tree, which no write changes.
/// Requires `K: Ord + Clone` and `V: Clone`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ordered;

impl Backend for Ordered {
    const KIND: BackendKind = BackendKind::Ordered;
    /// None that a [`GuardedMap`](crate::GuardedMap) could use: an ordered spec makes an
    /// [`OrderedMap`](crate::OrderedMap).
    type Store<K, V> = ();
    fn shards(_: &Descriptor) -> usize {
        1
    }
    fn entry_size<K, V>() -> usize {
        std::mem::size_of::<(K, V)>()
    }
    const LOCKED_READS: bool = false;
}

impl Backend for Adaptive {
    const KIND: BackendKind = BackendKind::Adaptive;
    type Store<K, V> = AdaptiveStore<K, V>;
    /// As `Sharded`'s: a read may hold a shard lock.
    const LOCKED_READS: bool = true;

    /// The shards its `Sharded` form has: as for [`Sharded`].
    fn shards(descriptor: &Descriptor) -> usize {
        descriptor.shards_or_default()
    }

    /// A bare key-value pair, in either form.
    fn entry_size<K, V>() -> usize {
        std::mem::size_of::<Pair<K, V>>()
    }
}

impl Backend for Rcu {
    const KIND: BackendKind = BackendKind::Rcu;
    type Store<K, V> = RcuStore<K, V>;
    const LOCKED_READS: bool = false;

    /// One to start with: the store re-shards itself as it grows.
    fn shards(_: &Descriptor) -> usize {
        1
    }

    /// A bare key-value pair: versions keep no hashes.
    fn entry_size<K, V>() -> usize {
        std::mem::size_of::<Pair<K, V>>()
    }
}

impl Backend for Sharded {
    const KIND: BackendKind = BackendKind::Sharded;
    type Store<K, V> = ShardedStore<K, V>;
    const LOCKED_READS: bool = true;

    /// The descriptor's `shards`, or four per core (see [`Descriptor::shards_or_default`]).
    fn shards(descriptor: &Descriptor) -> usize {
        descriptor.shards_or_default()
    }

    /// A bare key-value pair, as in `Rcu` (growing hashes the keys again, before anything moves).
    fn entry_size<K, V>() -> usize {
        std::mem::size_of::<Pair<K, V>>()
    }
}

/// How to build a store.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct StoreConfig {
    pub capacity: usize,
    pub shards: usize,
    pub max_len: Option<usize>,
    /// Whether tables shrink on their own (`Shrink::Auto`, see the `shrink` module).
    pub shrink: bool,
    /// An adaptive map's first form.
    pub start: guarded_map_probe_common::ActiveBackend,
    /// Whether an adaptive map is pinned to its first form.
    pub pinned: bool,
}

/// What `upsert` did.
#[doc(hidden)]
pub struct Upserted<R> {
    pub result: R,
    pub inserted: bool,
}

/// The operations every backend provides. Hashes are computed once by the map and passed in;
/// operations that may grow a table also get `rehash`, the map's hasher, for tables that keep no
/// hashes (see [`Pair`](crate::table::Pair)).
///
/// Keyed writes (`insert`, `remove`, `update`, `upsert`) count themselves (see
/// [`Wrote`](crate::stats::Wrote)) when they take effect, where the backend counts cheapest; the
/// map counts the rest.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot store these key and value types",
    note = "the rcu backend copies entries when it publishes: it needs `K: Clone` and `V: Clone`"
)]
#[allow(clippy::len_without_is_empty)]
pub trait Storage<K, V>: Sized {
    fn new(config: StoreConfig, rec: Recorder<'_>) -> Self;
    /// Builds a store from entries with distinct keys.
    fn from_entries(
        config: StoreConfig,
        entries: Vec<Entry<K, V>>,
        rec: Recorder<'_>,
        rehash: impl Fn(&K) -> u64,
    ) -> Self;
    /// Runs `f` on the value of `key` and counts the read (and the miss) when `counting`.
    ///
    /// `stats` comes as the map's `Arc`, not yet followed: a backend that needs the statistics
    /// only on a cold path (a `Sharded` miss) then loads nothing for them on the hot one.
    fn get<Q, R>(
        &self,
        hash: u64,
        key: &Q,
        stats: &Arc<MapStats>,
        counting: bool,
        f: impl FnOnce(&V) -> R,
    ) -> Option<R>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq;
    /// Inserts or replaces; `Err` gives the pair back when a new key would exceed `max_len`.
    fn insert(
        &self,
        hash: u64,
        key: K,
        value: V,
        rec: Recorder<'_>,
        rehash: impl Fn(&K) -> u64,
    ) -> Result<Option<V>, (K, V)>;
    /// Removes the entry of `key`; `rehash` for a table that shrinks (see the `shrink` module).
    fn remove<Q>(
        &self,
        hash: u64,
        key: &Q,
        rec: Recorder<'_>,
        rehash: impl Fn(&K) -> u64,
    ) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq;
    /// Runs `f` on the value of `key`; `rehash` for a table that shrinks (an `Rcu` write may).
    fn update<Q, R>(
        &self,
        hash: u64,
        key: &Q,
        rec: Recorder<'_>,
        rehash: impl Fn(&K) -> u64,
        f: impl FnOnce(&mut V) -> R,
    ) -> Option<R>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq;
    /// Updates the entry of `key`, creating it from `default` first if absent; `Err` gives the key
    /// back when a new key would exceed `max_len`.
    fn upsert<R>(
        &self,
        hash: u64,
        key: K,
        rec: Recorder<'_>,
        rehash: impl Fn(&K) -> u64,
        default: impl FnOnce() -> V,
        f: impl FnOnce(&mut V) -> R,
    ) -> Result<Upserted<R>, K>;
    /// Shows `f` the entry of `key` (or its absence) and carries out its decision, atomically;
    /// `owned` makes the key when a value is inserted. `Err` gives the value back when a new key
    /// would exceed `max_len`.
    #[allow(clippy::type_complexity)]
    fn compute<Q, R>(
        &self,
        hash: u64,
        key: &Q,
        rec: Recorder<'_>,
        rehash: impl Fn(&K) -> u64,
        owned: impl FnOnce(&Q) -> K,
        f: impl FnOnce(Option<(&K, &V)>) -> (Compute<V>, R),
    ) -> Result<(Outcome<K, V>, R), (V, R)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq;
    /// Keeps the entries `f` accepts and counts the ones removed as they go (a panic in `f` keeps
    /// what was decided before it, counted).
    fn retain(&self, rec: Recorder<'_>, f: impl FnMut(&K, &mut V) -> bool);
    /// Replaces the whole content with `entries` (distinct keys); returns how many it removed.
    fn replace_all(
        &self,
        entries: Vec<Entry<K, V>>,
        rec: Recorder<'_>,
        rehash: impl Fn(&K) -> u64,
    ) -> usize;
    /// Copies the entries of the part at `position` (start at 0) into `out`: one shard, or for
    /// `Rcu` one leaf of the version `pinned` holds, pinned on the first call. Returns the position
    /// of the next part, `None` when there is no part at or after `position`.
    fn copy_part(
        &self,
        position: usize,
        rec: Recorder<'_>,
        pinned: &mut Option<Frozen<K, V>>,
        out: &mut Vec<(K, V)>,
    ) -> Option<usize>
    where
        K: Clone,
        V: Clone;
    /// Whether a read of this store runs on the calling thread, as far as the store tracks it
    /// itself (the `Rcu` reader's mark); stores whose reads the map tracks say false.
    fn reading_here(&self) -> bool {
        false
    }
    /// At one of the map's sample points (one operation in a few hundred per thread): the
    /// adaptive store's cost model looks at its window there.
    #[inline(always)]
    fn sampled(&self, _stats: &MapStats) {}
    /// After a read, with the map's hasher: the adaptive store carries out a switch its cost model
    /// decided (its writes do so themselves).
    #[inline(always)]
    fn settle(&self, _rec: Recorder<'_>, _rehash: impl Fn(&K) -> u64) {}
    /// Removes everything; returns how many were removed.
    fn clear(&self, rec: Recorder<'_>) -> usize;
    fn for_each(&self, rec: Recorder<'_>, f: impl FnMut(&K, &V));
    fn len(&self) -> usize;
    fn capacity(&self) -> usize;
    fn shrink_to_fit(&self, rec: Recorder<'_>, rehash: impl Fn(&K) -> u64);
    /// An immutable copy of the map at one instant (`Sharded` clones every entry for it).
    fn snapshot(&self, rec: Recorder<'_>) -> Arc<Frozen<K, V>>
    where
        K: Clone,
        V: Clone;
    /// A new store holding this one's entries at one instant; `rec` is the new store's.
    fn duplicate(&self, config: StoreConfig, rec: Recorder<'_>) -> Self
    where
        K: Clone,
        V: Clone;
}

/// Locks `lock`, timing the wait only when the lock was not free.
pub(crate) fn lock_timed<'a, T>(lock: &'a Mutex<T>, rec: Recorder<'_>) -> MutexGuard<'a, T> {
    if let Some(guard) = lock.try_lock() {
        return guard;
    }
    let watch = Stopwatch::start(rec);
    let guard = crate::sync::lock_spinning(lock);
    rec.contended(watch.elapsed());
    guard
}

/// A stopwatch that only runs when statistics are on (reading a clock is not free; with
/// statistics off nobody reads the time).
pub(crate) struct Stopwatch(Option<Since>);

impl Stopwatch {
    #[inline]
    pub(crate) fn start(rec: Recorder<'_>) -> Self {
        Stopwatch(rec.enabled().then(Since::now))
    }
    pub(crate) fn elapsed(&self) -> Duration {
        self.0.map_or(Duration::ZERO, Since::elapsed)
    }
    /// Nanoseconds since the start (zero when not running).
    #[inline]
    pub(crate) fn nanos(&self) -> u64 {
        self.0.map_or(0, Since::nanos)
    }
}
