//! The sharded-lock backend: a power-of-two array of cache-padded reader-writer locks over
//! `hashbrown` tables.
//!
//! The locks are our own [`ShardLock`]s, which count the keyed reads in the same instruction that
//! releases them (see the [`lock`] module for why). Keyed writes are counted beside the lock's word
//! too, under its write lock ([`WriteCounts`], one count per outcome). Both are attached to the
//! map's statistics when the store is built; only misses and contention are counted in the
//! per-thread slots, and the rare operations (`retain`, `clear`) in the map's shared block, so that
//! no keyed operation looks the thread's slot up on its way in.
//!
//! `insert`, `remove` and `update` take a plain write lock: the user code they run (`Hash` while a
//! full shard grows, `Eq` while looking, `update`'s closure, which cannot add or remove) either
//! runs before anything changes or cannot change the shard's length or capacity, so they step the
//! gauges themselves on success. Every other write goes through [`ShardWrite`], whose `Drop` (which
//! also runs when user code panics) publishes the shard's length and capacity and returns `max_len`
//! reservations, so the counters stay exact whatever the user's closures do.

use std::borrow::Borrow;
use std::mem;
use std::ops::{Deref, DerefMut};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use crossbeam_utils::CachePadded;
use hashbrown::hash_table;

use super::{Storage, StoreConfig, Upserted};
use crate::compute::{Compute, Outcome};
use crate::shrink::{self, LowSince};
use crate::stats::{Attached, Counter, MapStats, Recorder, WriteCounts, Wrote};
use crate::sync::AtomicUsize;
use lock::{ReadGuard, ShardLock, WriteGuard};
use timed::{read_timed, write_timed};

mod lock;
mod timed;
use crate::table::{Entry, Pair, Table, key_eq, make_room, rebuild, shard_among};
use crate::trie::Frozen;

/// One shard: its locked table (and the counts of the writes made under the lock), and gauges
/// readable without the lock.
///
/// `repr(C)`: the gauges first, then the lock's word and the table's header, all on the first cache
/// line, which a keyed write then shares with its lock (see [`ShardLock`]).
#[repr(C)]
struct Shard<K, V> {
    len: AtomicUsize,
    /// Since when the table has been at most 1/8 full, for the shrink policy (written under the
    /// write lock).
    low: LowSince,
    /// The entries the table holds without growing: its capacity when it was last allocated. Not
    /// hashbrown's `capacity()` of the moment, which leaves out the slots of removed entries and so
    /// moves with every removal and every insert that reuses such a slot; this one changes only
    /// when the table is rebuilt ([`ShardedStore::publish_capacity`]), and never drops below the
    /// length.
    capacity: AtomicUsize,
    table: ShardLock<Table<K, V>>,
}

impl<K, V> Shard<K, V> {
    /// Moves the length gauge up by `n`; the caller holds the write lock (the only writer).
    #[inline(always)]
    fn grew_by(&self, n: usize) {
        self.len.store(self.len.load(Relaxed) + n, Relaxed);
    }

    /// Moves the length gauge down by `n`; the caller holds the write lock.
    #[inline(always)]
    fn shrank_by(&self, n: usize) {
        self.len.store(self.len.load(Relaxed) - n, Relaxed);
    }

    /// A shard of `table`, which holds `capacity` entries without growing (see `capacity`).
    fn new(table: Table<K, V>, capacity: usize) -> Self {
        Shard {
            len: AtomicUsize::new(table.len()),
            low: LowSince::default(),
            capacity: AtomicUsize::new(capacity),
            table: ShardLock::new(table),
        }
    }
}

/// Storage of the [`Sharded`](crate::Sharded) backend.
pub struct ShardedStore<K, V> {
    /// The shards, whose read and write counts are attached to the map's statistics once built.
    shards: Attached<[CachePadded<Shard<K, V>>]>,
    max_len: Option<usize>,
    /// The capacity each shard was made with: growing and shrinking never go below it.
    min_shard_capacity: usize,
    /// Whether shards shrink on their own (`shrink = auto`).
    shrink: bool,
    /// Entries counted against `max_len`, maintained only when it is set: reserved before a new key
    /// is inserted (so concurrent inserts into different shards can never overshoot), released when
    /// entries go away.
    reserved: AtomicUsize,
}

/// A write-locked shard that refreshes the shard's gauges when it is released.
struct ShardWrite<'a, K, V> {
    guard: WriteGuard<'a, Table<K, V>>,
    shard: &'a Shard<K, V>,
    store: &'a ShardedStore<K, V>,
    rec: Recorder<'a>,
    /// The shard's length when locked, kept only for a map with `max_len` (whose reservations a
    /// write that removes entries returns).
    len_before: usize,
}

impl<K, V> Deref for ShardWrite<'_, K, V> {
    type Target = Table<K, V>;
    fn deref(&self) -> &Table<K, V> {
        &self.guard
    }
}

impl<K, V> DerefMut for ShardWrite<'_, K, V> {
    fn deref_mut(&mut self) -> &mut Table<K, V> {
        &mut self.guard
    }
}

impl<'a, K, V> ShardWrite<'a, K, V> {
    /// Where this write counts its keyed writes: the shard's lock, which it holds.
    #[inline(always)]
    fn tally(&self) -> Tally<'a> {
        Tally::of(&self.guard, self.rec)
    }
}

/// Counts keyed writes into the [`WriteCounts`] of a write-locked shard (nowhere when the map keeps
/// no statistics). Apart from the guard, so that a write can count while it holds an entry borrowed
/// from the table.
#[derive(Clone, Copy)]
struct Tally<'a>(Option<&'a WriteCounts>);

impl<'a> Tally<'a> {
    /// The write counts of the lock `guard` holds (none without statistics), through the guard's
    /// pointer, which a write keeps anyway for the unlock.
    #[inline(always)]
    fn of<T>(guard: &WriteGuard<'a, T>, rec: Recorder<'_>) -> Self {
        Tally(rec.enabled().then(|| guard.word().write_counts()))
    }

    /// The same counts through the lock's own address, for a write that keeps its shard's address
    /// through the lookup anyway (an insert, which moves the shard's gauges after): they are then
    /// at a constant offset from it, where the guard's pointer would take one more register
    /// through the lookup (measured: two spills in an insert of 126 instructions).
    #[inline(always)]
    fn beside<T>(lock: &'a ShardLock<T>, held: &WriteGuard<'a, T>, rec: Recorder<'_>) -> Self {
        debug_assert!(held.holds(lock), "the write counts of a lock not held");
        Tally(rec.enabled().then(|| lock.word().write_counts()))
    }

    #[inline(always)]
    fn wrote(self, wrote: Wrote) {
        if let Some(counts) = self.0 {
            counts.record(wrote);
        }
    }
}

impl<K, V> Drop for ShardWrite<'_, K, V> {
    fn drop(&mut self) {
        // Runs before the lock is released (the guard field drops after this), on unwind too.
        let len = self.guard.len();
        self.shard.len.store(len, Relaxed);
        if self.store.max_len.is_some() && len < self.len_before {
            self.store
                .reserved
                .fetch_sub(self.len_before - len, Relaxed);
        }
    }
}

impl<K, V> ShardedStore<K, V> {
    fn empty(config: StoreConfig) -> Self {
        assert!(
            config.shards.is_power_of_two(),
            "guarded-map: shard count must be a power of two greater than zero, got {}",
            config.shards
        );
        let per_shard = config.capacity.div_ceil(config.shards);
        let shards = (0..config.shards)
            .map(|_| {
                let table = Table::with_capacity(per_shard);
                let capacity = table.capacity();
                CachePadded::new(Shard::new(table, capacity))
            })
            .collect();
        ShardedStore {
            shards: Attached::new(shards),
            max_len: config.max_len,
            min_shard_capacity: per_shard,
            shrink: config.shrink,
            reserved: AtomicUsize::new(0),
        }
    }

    /// A keyed read if `valid()` once the shard is read-locked; otherwise the lock released, the
    /// read uncounted, and `f` handed back uncalled. An adaptive map validates its form so (see
    /// `backend/adaptive/gate.rs`): a switch away from `Sharded` changes the form before it takes
    /// each shard's write lock to empty it.
    #[inline(always)]
    pub(crate) fn get_if<Q, R, F>(
        &self,
        hash: u64,
        key: &Q,
        stats: &Arc<MapStats>,
        counting: bool,
        valid: impl FnOnce() -> bool,
        f: F,
    ) -> Result<Option<R>, F>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
        F: FnOnce(&V) -> R,
    {
        // The read is counted by the lock's release.
        let table = read_timed::<_, true>(&self.shard(hash).table, self.id(), || {
            stats.recorder(counting)
        });
        if !valid() {
            drop(table.uncounted());
            return Err(f);
        }
        // The miss is counted in the branch that tells a miss anyway (under the read lock: misses
        // are the rarer case), so that a hit runs no instruction for it.
        Ok(match table.find(hash, key_eq(key)) {
            Some(entry) => Some(f(&entry.value)),
            None => {
                if counting {
                    count_miss(stats);
                }
                None
            }
        })
    }

    /// Empties every shard, swapping in an empty table under its write lock and dropping the
    /// entries after the lock is released: a reader or writer waits for a swap, not for the drop.
    /// For an adaptive map's switch away from `Sharded`, which frees the form it left.
    pub(crate) fn empty_all(&self, rec: Recorder<'_>) {
        for shard in self.shards.iter() {
            let old = {
                let mut table = self.write(shard, rec);
                let old = std::mem::replace(&mut *table, Table::with_capacity(0));
                Self::publish_capacity(shard, &table, rec);
                old
            };
            drop(old);
        }
    }

    /// The map's address, as `reentry` knows it.
    #[inline(always)]
    fn id(&self) -> *const () {
        std::ptr::from_ref(self).cast()
    }

    #[inline]
    fn shard(&self, hash: u64) -> &Shard<K, V> {
        let index = shard_among(hash, self.shards.len());
        // SAFETY: the shard count is a power of two (checked in `empty`), so masking by `len - 1`
        // lands inside; indexing would add a check for the empty slice to every operation.
        unsafe { self.shards.get_unchecked(index) }
    }

    fn write<'a>(&'a self, shard: &'a Shard<K, V>, rec: Recorder<'a>) -> ShardWrite<'a, K, V> {
        let guard = write_timed(&shard.table, rec);
        ShardWrite {
            len_before: if self.max_len.is_some() {
                guard.len()
            } else {
                0
            },
            guard,
            shard,
            store: self,
            rec,
        }
    }

    /// Returns `n` entries' reservations (see [`reserve`](Self::reserve)).
    #[inline(always)]
    fn release(&self, n: usize) {
        if self.max_len.is_some() {
            self.reserved.fetch_sub(n, Relaxed);
        }
    }

    /// Grows a full, write-locked shard (see [`make_room`]) and publishes its new capacity. Apart
    /// from the keyed writes, which call it only when the shard is full.
    #[cold]
    #[inline(never)]
    fn grow(
        &self,
        shard: &Shard<K, V>,
        table: &mut Table<K, V>,
        rec: Recorder<'_>,
        rehash: impl Fn(&K) -> u64,
    ) {
        make_room(table, self.min_shard_capacity, rehash);
        Self::publish_capacity(shard, table, rec);
    }

    /// Notes a write to a shard for the shrink policy and shrinks the shard's table when it has
    /// been at most 1/8 full for long enough (see the `shrink` module). The caller holds the write
    /// lock. Inline, the check a write pays: two loads of the shard's line, a comparison.
    #[inline(always)]
    fn shrink_if_due(
        &self,
        shard: &Shard<K, V>,
        table: &mut Table<K, V>,
        rec: Recorder<'_>,
        rehash: impl Fn(&K) -> u64,
    ) {
        let (len, capacity) = (shard.len.load(Relaxed), shard.capacity.load(Relaxed));
        if len.saturating_mul(shrink::LOW) <= capacity || shard.low.is_low() {
            self.shrink_check(shard, (len, capacity), table, rec, rehash);
        }
    }

    /// The rest of [`shrink_if_due`](Self::shrink_if_due), for a shard that is or was low, with
    /// the length and capacity it read: shrinks it when it has been low long enough. A `Hash` that panics while the table is rebuilt leaves
    /// it as it was, unshrunk: the write that triggered it has taken effect and must not fail.
    #[cold]
    #[inline(never)]
    fn shrink_check(
        &self,
        shard: &Shard<K, V>,
        (len, before): (usize, usize),
        table: &mut Table<K, V>,
        rec: Recorder<'_>,
        rehash: impl Fn(&K) -> u64,
    ) {
        if !shard.low.shrink_due(len, before, self.min_shard_capacity) {
            return;
        }
        shard.low.reset();
        let target = shrink::target(table.len(), self.min_shard_capacity);
        let rebuilt = panic::catch_unwind(AssertUnwindSafe(|| rebuild(table, target, &rehash)));
        if rebuilt.is_ok() {
            Self::publish_capacity(shard, table, rec);
            rec.shrunk(before, shard.capacity.load(Relaxed));
        }
    }

    /// Publishes the capacity of a shard's table just rebuilt (no slots of removed entries in it,
    /// so hashbrown's `capacity()` is all it holds without growing); the caller holds its lock.
    fn publish_capacity(shard: &Shard<K, V>, table: &Table<K, V>, rec: Recorder<'_>) {
        let (before, after) = (shard.capacity.load(Relaxed), table.capacity());
        if after != before {
            shard.capacity.store(after, Relaxed);
            rec.capacity_changed(before, after);
        }
    }

    /// Reserves room for one new entry; false when the map is at `max_len`.
    fn reserve(&self) -> bool {
        match self.max_len {
            None => true,
            Some(max) => self
                .reserved
                .fetch_update(Relaxed, Relaxed, |n| (n < max).then_some(n + 1))
                .is_ok(),
        }
    }

    fn total_len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.len.load(Relaxed))
            .sum()
    }

    fn total_capacity(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.capacity.load(Relaxed))
            .sum()
    }

    /// Publishes the gauges of a store just built, and attaches its shards' read and write counts
    /// to the map's statistics. Called last: the shards stay where they are from here on.
    fn finish(mut self, rec: Recorder<'_>) -> Self {
        rec.set_capacity(self.total_capacity());
        if self.max_len.is_some() {
            self.reserved.store(self.total_len(), Relaxed);
        }
        self.shards.attach_to(rec.attachment(), |shards, keep| {
            keep.keep_each(shards, |shard| shard.table.word());
        });
        self
    }
}

impl<K, V> ShardedStore<K, V> {
    /// A copy of every shard at one instant (all read-locked together), as a tree.
    pub(crate) fn frozen(&self, rec: Recorder<'_>) -> Frozen<K, V>
    where
        K: Clone,
        V: Clone,
    {
        let tables: Vec<_> = self
            .copy_tables(|shard| read_timed::<_, false>(&shard.table, self.id(), || rec))
            .into_iter()
            .map(|(table, _)| table)
            .collect();
        Frozen::from_tables(self.shards.len().trailing_zeros(), tables)
    }
}

impl<K: Eq, V> Storage<K, V> for ShardedStore<K, V> {
    fn new(config: StoreConfig, rec: Recorder<'_>) -> Self {
        Self::empty(config).finish(rec)
    }

    fn from_entries(
        config: StoreConfig,
        entries: Vec<Entry<K, V>>,
        rec: Recorder<'_>,
        rehash: impl Fn(&K) -> u64,
    ) -> Self {
        let mut store = Self::empty(StoreConfig {
            capacity: config.capacity.max(entries.len()),
            ..config
        });
        let shards = store
            .shards
            .get_mut()
            .expect("a store just built is not attached yet");
        let count = shards.len();
        for entry in entries {
            let Entry { hash, key, value } = entry;
            let table = shards[shard_among(hash, count)].table.get_mut();
            make_room(table, 0, &rehash);
            table.insert_unique(hash, Pair { key, value }, |pair| rehash(&pair.key));
        }
        for shard in shards.iter_mut() {
            let table = shard.table.get_mut();
            let (len, capacity) = (table.len(), table.capacity());
            shard.len = AtomicUsize::new(len);
            shard.capacity = AtomicUsize::new(capacity);
        }
        store.finish(rec)
    }

    // Always inlined: with its miss path the function was past the inlining threshold, and a call
    // per read cost a large share of the stats-on throughput on ReadHeavy in the comparison bench.
    #[inline(always)]
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
        Q: ?Sized + Eq,
    {
        match self.get_if(hash, key, stats, counting, || true, f) {
            Ok(out) => out,
            Err(_) => unreachable!("a read that is always valid"),
        }
    }

    #[inline(always)]
    fn insert(
        &self,
        hash: u64,
        key: K,
        value: V,
        rec: Recorder<'_>,
        rehash: impl Fn(&K) -> u64,
    ) -> Result<Option<V>, (K, V)> {
        // A plain write lock, no `ShardWrite`: the user code here (`Hash` while growing, `Eq` while
        // looking) runs before anything changes, so an unwind has no gauge to put right.
        let shard = self.shard(hash);
        let mut table = write_timed(&shard.table, rec);
        if table.len() == table.capacity() {
            self.grow(shard, &mut table, rec, &rehash);
        }
        let tally = Tally::beside(&shard.table, &table, rec);
        // Counted in each arm, so that each counts its own constant outcome.
        Ok(
            match table.entry(hash, key_eq(&key), |pair| rehash(&pair.key)) {
                hash_table::Entry::Occupied(mut entry) => {
                    tally.wrote(Wrote::Replaced);
                    Some(mem::replace(&mut entry.get_mut().value, value))
                }
                hash_table::Entry::Vacant(slot) => {
                    if !self.reserve() {
                        return Err((key, value));
                    }
                    slot.insert(Pair { key, value });
                    tally.wrote(Wrote::Added);
                    shard.grew_by(1);
                    if shard.low.is_low() {
                        // Still low after this insert, for long enough: shrink now.
                        self.shrink_if_due(shard, &mut table, rec, &rehash);
                    }
                    None
                }
            },
        )
    }

    #[inline(always)]
    fn remove<Q>(
        &self,
        hash: u64,
        key: &Q,
        rec: Recorder<'_>,
        rehash: impl Fn(&K) -> u64,
    ) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        // A plain write lock, as in `insert`: `Eq` runs before anything changes.
        let shard = self.shard(hash);
        let mut table = write_timed(&shard.table, rec);
        let tally = Tally::of(&table, rec);
        match table.find_entry(hash, key_eq(key)) {
            Ok(entry) => {
                tally.wrote(Wrote::Removed);
                let Pair { key, value } = entry.remove().0;
                shard.shrank_by(1);
                self.release(1);
                if self.shrink {
                    self.shrink_if_due(shard, &mut table, rec, &rehash);
                }
                Some((key, value))
            }
            Err(_) => {
                tally.wrote(Wrote::NotRemoved);
                None
            }
        }
    }

    #[inline(always)]
    fn update<Q, R>(
        &self,
        hash: u64,
        key: &Q,
        rec: Recorder<'_>,
        _rehash: impl Fn(&K) -> u64,
        f: impl FnOnce(&mut V) -> R,
    ) -> Option<R>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        // A plain write lock: neither `Eq` nor `f` can change the shard's length or capacity.
        let shard = self.shard(hash);
        let mut table = write_timed(&shard.table, rec);
        let tally = Tally::of(&table, rec);
        let entry = table.find_mut(hash, key_eq(key))?;
        // Counted before `f` runs: a panicking `f` may have changed the value already.
        tally.wrote(Wrote::Updated);
        Some(f(&mut entry.value))
    }

    #[inline(always)]
    fn upsert<R>(
        &self,
        hash: u64,
        key: K,
        rec: Recorder<'_>,
        rehash: impl Fn(&K) -> u64,
        default: impl FnOnce() -> V,
        f: impl FnOnce(&mut V) -> R,
    ) -> Result<Upserted<R>, K> {
        let mut table = self.write(self.shard(hash), rec);
        if table.len() == table.capacity() {
            let (shard, rec) = (table.shard, table.rec);
            self.grow(shard, &mut table, rec, &rehash);
        }
        let tally = table.tally();
        // Counted before `f` runs, as in `update`.
        match table.entry(hash, key_eq(&key), |pair| rehash(&pair.key)) {
            hash_table::Entry::Occupied(mut entry) => {
                tally.wrote(Wrote::Updated);
                Ok(Upserted {
                    result: f(&mut entry.get_mut().value),
                    inserted: false,
                })
            }
            hash_table::Entry::Vacant(slot) => {
                // The default is made before reserving, so a panicking default reserves nothing.
                let value = default();
                if !self.reserve() {
                    return Err(key);
                }
                let mut entry = slot.insert(Pair { key, value });
                tally.wrote(Wrote::Added);
                Ok(Upserted {
                    result: f(&mut entry.get_mut().value),
                    inserted: true,
                })
            }
        }
    }

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
        Q: ?Sized + Eq,
    {
        // A `ShardWrite`: its `Drop` puts the length gauge and `max_len` reservations right.
        let mut table = self.write(self.shard(hash), rec);
        let tally = table.tally();
        if let Ok(mut entry) = table.find_entry(hash, key_eq(key)) {
            let pair = entry.get();
            return Ok(match f(Some((&pair.key, &pair.value))) {
                (Compute::Keep, out) => (Outcome::Kept, out),
                (Compute::Set(value), out) => {
                    tally.wrote(Wrote::Replaced);
                    let old = mem::replace(&mut entry.get_mut().value, value);
                    (Outcome::Replaced(old), out)
                }
                (Compute::Remove, out) => {
                    tally.wrote(Wrote::Removed);
                    let (Pair { key, value }, _) = entry.remove();
                    (Outcome::Removed(key, value), out)
                }
            });
        }
        let (value, out) = match f(None) {
            (Compute::Set(value), out) => (value, out),
            (_, out) => return Ok((Outcome::Absent, out)),
        };
        // User code (`Hash` while growing, making the key) first, then the reservation: a panic
        // leaves the shard and the reservations as they were.
        if table.len() == table.capacity() {
            let (shard, rec) = (table.shard, table.rec);
            self.grow(shard, &mut table, rec, &rehash);
        }
        let key = owned(key);
        if !self.reserve() {
            return Err((value, out));
        }
        table.insert_unique(hash, Pair { key, value }, |pair| rehash(&pair.key));
        tally.wrote(Wrote::Added);
        Ok((Outcome::Inserted, out))
    }

    fn retain(&self, rec: Recorder<'_>, mut f: impl FnMut(&K, &mut V) -> bool) {
        for shard in self.shards.iter() {
            let mut table = self.write(shard, rec);
            // Counts the removals in this shard when it is done, also when `f` panics.
            let counted = Removals {
                before: table.len(),
                table: &mut table,
                rec,
            };
            counted
                .table
                .retain(|entry| f(&entry.key, &mut entry.value));
        }
    }

    fn replace_all(
        &self,
        entries: Vec<Entry<K, V>>,
        rec: Recorder<'_>,
        rehash: impl Fn(&K) -> u64,
    ) -> usize {
        // The new tables are built before any lock is taken; then each shard's is swapped in under
        // its lock, and the old one dropped after the lock is released.
        let count = self.shards.len();
        let mut tables: Vec<Table<K, V>> = (0..count).map(|_| Table::new()).collect();
        for Entry { hash, key, value } in entries {
            let table = &mut tables[shard_among(hash, count)];
            make_room(table, self.min_shard_capacity, &rehash);
            table.insert_unique(hash, Pair { key, value }, |pair| rehash(&pair.key));
        }
        let mut removed = 0;
        for (shard, new) in self.shards.iter().zip(tables) {
            let old = {
                let mut table = write_timed(&shard.table, rec);
                let (before, after) = (table.len(), new.len());
                let old = mem::replace(&mut *table, new);
                shard.len.store(after, Relaxed);
                if self.max_len.is_some() {
                    // May pass `max_len` for a moment when concurrent inserts fill the shards the
                    // replacement has not reached yet; the map checked the new content against it.
                    self.reserved.fetch_add(after, Relaxed);
                    self.reserved.fetch_sub(before, Relaxed);
                }
                Self::publish_capacity(shard, &table, rec);
                old
            };
            removed += old.len();
        }
        removed
    }

    fn copy_part(
        &self,
        index: usize,
        rec: Recorder<'_>,
        _pinned: &mut Option<Frozen<K, V>>,
        out: &mut Vec<(K, V)>,
    ) -> Option<usize>
    where
        K: Clone,
        V: Clone,
    {
        let shard = self.shards.get(index)?;
        let table = read_timed::<_, false>(&shard.table, self.id(), || rec);
        out.extend(
            table
                .iter()
                .map(|pair| (pair.key.clone(), pair.value.clone())),
        );
        Some(index + 1)
    }

    fn clear(&self, rec: Recorder<'_>) -> usize {
        let mut removed = 0;
        for shard in self.shards.iter() {
            let mut table = self.write(shard, rec);
            removed += table.len();
            table.clear();
        }
        removed
    }

    fn for_each(&self, rec: Recorder<'_>, mut f: impl FnMut(&K, &V)) {
        for shard in self.shards.iter() {
            let table = read_timed::<_, false>(&shard.table, self.id(), || rec);
            table.iter().for_each(|entry| f(&entry.key, &entry.value));
        }
    }

    fn len(&self) -> usize {
        self.total_len()
    }

    fn capacity(&self) -> usize {
        self.total_capacity()
    }

    fn shrink_to_fit(&self, rec: Recorder<'_>, rehash: impl Fn(&K) -> u64) {
        for shard in self.shards.iter() {
            let mut table = self.write(shard, rec);
            let len = table.len();
            rebuild(&mut table, len, &rehash);
            Self::publish_capacity(shard, &table, rec);
        }
    }
    /// Read-locks every shard (in index order, so two snapshots cannot deadlock), then copies them:
    /// the copy is the map's exact state at one instant. Writers wait for the copy; readers do not.
    /// The copies become the snapshot's tables as they are (one layout serves both).
    fn snapshot(&self, rec: Recorder<'_>) -> Arc<Frozen<K, V>>
    where
        K: Clone,
        V: Clone,
    {
        Arc::new(self.frozen(rec))
    }

    fn duplicate(&self, config: StoreConfig, rec: Recorder<'_>) -> Self
    where
        K: Clone,
        V: Clone,
    {
        let tables = self.copy_tables(|shard| shard.table.read());
        let shards = tables
            .into_iter()
            .map(|(table, capacity)| CachePadded::new(Shard::new(table, capacity)))
            .collect();
        ShardedStore {
            shards: Attached::new(shards),
            max_len: config.max_len,
            min_shard_capacity: config.capacity.div_ceil(self.shards.len()),
            shrink: config.shrink,
            reserved: AtomicUsize::new(0),
        }
        .finish(rec)
    }
}

impl<K: Clone, V: Clone> ShardedStore<K, V> {
    /// Copies of every shard's table with its capacity gauge (a copy keeps the slots of removed
    /// entries, and so the capacity), all taken while every shard is read-locked by `lock` (in
    /// index order, so two copies cannot deadlock).
    fn copy_tables<'a>(
        &'a self,
        mut lock: impl FnMut(&'a Shard<K, V>) -> ReadGuard<'a, Table<K, V>, false>,
    ) -> Vec<(Table<K, V>, usize)> {
        let guards: Vec<_> = self
            .shards
            .iter()
            .map(|shard| (lock(shard), shard.capacity.load(Relaxed)))
            .collect();
        guards
            .iter()
            .map(|(table, capacity)| (Table::clone(table), *capacity))
            .collect()
    }
}

/// Counts the entries a `retain` removed from one write-locked shard when it is dropped (on
/// unwind too, so that a panicking closure's removals are counted).
struct Removals<'t, 'a, K, V> {
    table: &'t mut ShardWrite<'a, K, V>,
    before: usize,
    rec: Recorder<'a>,
}

impl<K, V> Drop for Removals<'_, '_, K, V> {
    fn drop(&mut self) {
        let removed = self.before - self.table.len();
        self.rec.count(Counter::Removed, removed as u64);
    }
}

/// Counts a keyed read that found nothing: out of line, so that the inlined read stays small.
#[cold]
#[inline(never)]
fn count_miss(stats: &MapStats) {
    stats.recorder(true).count(Counter::Miss, 1);
}
