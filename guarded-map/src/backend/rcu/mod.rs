//! The read-copy-update backend: immutable sharded versions behind an atomically swapped pointer.
//!
//! Every write, under one writer mutex: load the current version, copy the one shard the key lives in,
//! change the copy, and publish a new version that shares every other shard with the old one. Readers
//! holding the old version keep it alive until they finish. A panic in user code (`Clone`, `Eq`,
//! `Hash` when a copy grows, a closure) happens before the publish, so it leaves the map exactly as
//! it was; that is why versions can keep bare key-value pairs (see [`Pair`]).
//!
//! Shard count follows the size: `1 << bits` shards with `len <= 8 * shards^2`, so a write copies
//! about `sqrt(8 * len)` entries and as many shard pointers (100 000 entries: 128 shards of ~780).
//! Growing past the bound re-shards once, an O(len) copy every 4x growth, O(1) amortized.

use std::borrow::Borrow;
use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

mod published;
mod reader;

use published::Published;
use reader::Readers;

use super::{Stopwatch, Storage, StoreConfig, Upserted, lock_timed};
use crate::compute::{Compute, Outcome};
use crate::shared_table::SharedTable;
use crate::stats::{Attached, Counter, MapStats, PublishCounts, Recorder, Wrote};
use crate::sync::{AtomicUsize, Mutex, MutexGuard};
use crate::table::{Entry, Frozen, Pair, Shards, Table, find_in, hash_again, key_eq, shard_index};

/// The most shards an RCU version uses (65 536 entries per shard at 2^33 entries; far beyond memory).
const MAX_BITS: u32 = 14;

/// The shard bits for a map of `len` entries: the smallest `bits` with `len <= 8 << (2 * bits)`.
fn bits_for(len: usize) -> u32 {
    let mut bits = 0;
    while bits < MAX_BITS && len > 8usize << (2 * bits) {
        bits += 1;
    }
    bits
}

/// A version holding `entries` (distinct keys), sharded for at least `min_len` entries.
fn frozen_from<K, V>(
    entries: Vec<Entry<K, V>>,
    min_len: usize,
    rehash: impl Fn(&K) -> u64,
) -> Frozen<K, V> {
    let len = entries.len();
    let pairs = entries
        .into_iter()
        .map(|Entry { hash, key, value }| (hash, Pair { key, value }));
    Frozen::from_pairs(bits_for(len.max(min_len)), len, pairs, rehash)
}

/// The writer's counts, attached to the map's statistics through `rec`.
fn publish_counts(rec: Recorder<'_>) -> Attached<PublishCounts> {
    let mut counts = Attached::new(Box::new(PublishCounts::default()));
    counts.attach_to(rec.attachment(), |counts, keep| keep.keep(counts));
    counts
}

/// Storage of the [`Rcu`](crate::Rcu) backend.
pub struct RcuStore<K, V> {
    current: Published<K, V>,
    readers: Readers<K, V>,
    writer: Mutex<()>,
    /// Counted under `writer`, attached to the map's statistics.
    counts: Attached<PublishCounts>,
    max_len: Option<usize>,
    /// After a re-shard failed (a panicking `Hash`), the length below which none is tried again;
    /// written under the writer lock.
    reshard_deferred_below: AtomicUsize,
}

/// An open write: the writer lock, the publish stopwatch and the version being replaced. Consumed by
/// one of its `publish` methods; dropped without publishing (a panic in user code), it changes nothing.
struct Write<'a, K, V> {
    store: &'a RcuStore<K, V>,
    rec: Recorder<'a>,
    _writer: MutexGuard<'a, ()>,
    watch: Stopwatch,
    cur: Arc<Frozen<K, V>>,
}

impl<K: Clone, V: Clone> RcuStore<K, V> {
    /// Takes the writer lock and loads the version the write starts from.
    fn begin<'a>(&'a self, rec: Recorder<'a>) -> Write<'a, K, V> {
        let _writer = lock_timed(&self.writer, rec);
        Write {
            store: self,
            rec,
            _writer,
            watch: Stopwatch::start(rec),
            cur: self.current.load(),
        }
    }
}

impl<K: Clone, V: Clone> Write<'_, K, V> {
    /// The shard of `hash`, and whether it holds `key`.
    fn locate<Q>(&self, hash: u64, key: &Q) -> (usize, bool)
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let index = shard_index(hash, self.cur.bits);
        (
            index,
            self.cur.shards[index].find(hash, key_eq(key)).is_some(),
        )
    }

    /// The shard holding `key` and a private copy of it, or `None` when the key is absent.
    fn copy_holding<Q>(&self, hash: u64, key: &Q) -> Option<(usize, Table<K, V>)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let (index, exists) = self.locate(hash, key);
        exists.then(|| (index, self.copy(index)))
    }

    /// Whether adding a key would exceed `max_len`.
    fn is_full(&self) -> bool {
        self.store.max_len.is_some_and(|max| self.cur.len >= max)
    }

    /// A private copy of shard `index`, to change and publish.
    fn copy(&self, index: usize) -> Table<K, V> {
        Table::clone(&self.cur.shards[index])
    }

    /// Publishes the current version with shard `index` replaced by `table`, which holds no more
    /// entries than before.
    fn publish(self, index: usize, table: Table<K, V>, len: usize, wrote: Wrote) {
        let copied = table.len();
        let next = self.replaced(index, table, len);
        self.publish_all(next, copied, Some(wrote));
    }

    /// [`publish`](Self::publish) after a write that may have added an entry: re-shards if `len`
    /// outgrew the shards, hashing every key again with `rehash`.
    fn publish_grown(
        self,
        index: usize,
        table: Table<K, V>,
        len: usize,
        rehash: impl Fn(&K) -> u64,
        wrote: Wrote,
    ) {
        let mut copied = table.len();
        let mut next = self.replaced(index, table, len);
        let bits = bits_for(len);
        let deferred = &self.store.reshard_deferred_below;
        if bits > next.bits && len >= deferred.load(Relaxed) {
            // Re-sharding hashes every key. A `Hash` that panics now and then would, at a large
            // size, almost surely panic once among them: the write then goes ahead without
            // re-sharding (one shard copies more) and the next attempt waits for an eighth more
            // entries, so a map keeps growing and never re-hashes everything on every write.
            let pairs = next
                .iter()
                .map(|pair| (hash_again(&rehash, &pair.key), pair.clone()));
            let resharded = panic::catch_unwind(AssertUnwindSafe(|| {
                Frozen::from_pairs(bits, len, pairs, &rehash)
            }));
            match resharded {
                Ok(resharded) => {
                    next = resharded;
                    copied += len;
                }
                Err(_) => deferred.store(len + len / 8 + 1, Relaxed),
            }
        }
        self.publish_all(next, copied, Some(wrote));
    }

    /// The current version with shard `index` replaced by `table`, holding `len` entries in all.
    fn replaced(&self, index: usize, table: Table<K, V>, len: usize) -> Frozen<K, V> {
        let cur = &self.cur;
        let capacity = cur.capacity - cur.shards[index].capacity() + table.capacity();
        let mut shards = cur.shards.to_vec();
        shards[index] = SharedTable::new(table);
        Frozen {
            shards: shards.into(),
            bits: cur.bits,
            len,
            capacity,
        }
    }

    /// Publishes a whole new version, made by a write whose outcome is `wrote` (`None`: not a keyed
    /// write), and counts it before the writer lock is released.
    fn publish_all(self, next: Frozen<K, V>, copied: usize, wrote: Option<Wrote>) {
        self.rec.set_capacity(next.capacity);
        self.store.current.store(Arc::new(next));
        let nanos = self.rec.observe_publish(self.watch.elapsed());
        if self.rec.enabled() {
            self.store.counts.record(wrote, nanos, copied);
        }
    }

    /// Counts a keyed write that publishes nothing, before the writer lock is released.
    fn unpublished(self, wrote: Wrote) {
        if self.rec.enabled() {
            self.store.counts.record_unpublished(wrote);
        }
    }
}

impl<K: Clone + Eq, V: Clone> Storage<K, V> for RcuStore<K, V> {
    fn new(config: StoreConfig, rec: Recorder<'_>) -> Self {
        let frozen = Frozen::with_capacity(bits_for(config.capacity), config.capacity);
        rec.set_capacity(frozen.capacity);
        RcuStore {
            current: Published::new(Arc::new(frozen)),
            readers: Readers::new(rec.attachment()),
            writer: Mutex::new(()),
            counts: publish_counts(rec),
            max_len: config.max_len,
            reshard_deferred_below: AtomicUsize::new(0),
        }
    }

    fn from_entries(
        config: StoreConfig,
        entries: Vec<Entry<K, V>>,
        rec: Recorder<'_>,
        rehash: impl Fn(&K) -> u64,
    ) -> Self {
        let frozen = frozen_from(entries, config.capacity, rehash);
        Self::from_frozen(config, Arc::new(frozen), rec)
    }

    #[inline]
    fn get<Q, R>(
        &self,
        hash: u64,
        key: &Q,
        _stats: &Arc<MapStats>,
        counting: bool,
        f: impl FnOnce(&V) -> R,
    ) -> Option<R>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        self.readers.read(&self.current, counting, |shards, reads| {
            let out = find_in(shards, hash, key).map(|entry| f(&entry.value));
            if let (Some(reads), None) = (reads, &out) {
                reads.missed();
            }
            out
        })
    }

    fn insert(
        &self,
        hash: u64,
        key: K,
        value: V,
        rec: Recorder<'_>,
        rehash: impl Fn(&K) -> u64,
    ) -> Result<Option<V>, (K, V)> {
        let write = self.begin(rec);
        let (index, exists) = write.locate(hash, &key);
        if !exists && write.is_full() {
            return Err((key, value));
        }
        let mut table = write.copy(index);
        let old = match table.find_mut(hash, key_eq(&key)) {
            Some(entry) => Some(mem::replace(&mut entry.value, value)),
            None => {
                table.insert_unique(hash, Pair { key, value }, |pair| rehash(&pair.key));
                None
            }
        };
        let len = write.cur.len + usize::from(old.is_none());
        write.publish_grown(index, table, len, rehash, Wrote::insert(old.is_some()));
        Ok(old)
    }

    fn remove<Q>(&self, hash: u64, key: &Q, rec: Recorder<'_>) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let write = self.begin(rec);
        let found = write
            .copy_holding(hash, key)
            .and_then(|(index, mut table)| {
                let (pair, _) = table.find_entry(hash, key_eq(key)).ok()?.remove();
                Some((index, table, pair))
            });
        let Some((index, table, pair)) = found else {
            write.unpublished(Wrote::NotRemoved);
            return None;
        };
        let len = write.cur.len - 1;
        write.publish(index, table, len, Wrote::Removed);
        Some((pair.key, pair.value))
    }

    fn update<Q, R>(
        &self,
        hash: u64,
        key: &Q,
        rec: Recorder<'_>,
        f: impl FnOnce(&mut V) -> R,
    ) -> Option<R>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let write = self.begin(rec);
        let (index, mut table) = write.copy_holding(hash, key)?;
        let result = f(&mut table.find_mut(hash, key_eq(key))?.value);
        let len = write.cur.len;
        write.publish(index, table, len, Wrote::Updated);
        Some(result)
    }

    fn upsert<R>(
        &self,
        hash: u64,
        key: K,
        rec: Recorder<'_>,
        rehash: impl Fn(&K) -> u64,
        default: impl FnOnce() -> V,
        f: impl FnOnce(&mut V) -> R,
    ) -> Result<Upserted<R>, K> {
        let write = self.begin(rec);
        let (index, exists) = write.locate(hash, &key);
        if !exists && write.is_full() {
            return Err(key);
        }
        let mut table = write.copy(index);
        let result = match table.find_mut(hash, key_eq(&key)) {
            Some(entry) => f(&mut entry.value),
            None => {
                let value = default();
                let pair = table.insert_unique(hash, Pair { key, value }, |pair| rehash(&pair.key));
                f(&mut pair.into_mut().value)
            }
        };
        let len = write.cur.len + usize::from(!exists);
        let wrote = if exists { Wrote::Updated } else { Wrote::Added };
        write.publish_grown(index, table, len, rehash, wrote);
        Ok(Upserted {
            result,
            inserted: !exists,
        })
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
        let write = self.begin(rec);
        let index = shard_index(hash, write.cur.bits);
        // Shown the published entry: a decision to keep it copies and publishes nothing.
        let current = write.cur.shards[index].find(hash, key_eq(key));
        let present = current.is_some();
        let (decision, out) = f(current.map(|pair| (&pair.key, &pair.value)));
        let len = write.cur.len;
        match (decision, present) {
            (Compute::Keep, true) => Ok((Outcome::Kept, out)),
            (Compute::Keep | Compute::Remove, false) => Ok((Outcome::Absent, out)),
            (Compute::Set(value), true) => {
                let mut table = write.copy(index);
                let entry = table
                    .find_mut(hash, key_eq(key))
                    .expect("the copy holds the entry its original holds");
                let old = mem::replace(&mut entry.value, value);
                write.publish(index, table, len, Wrote::Replaced);
                Ok((Outcome::Replaced(old), out))
            }
            (Compute::Set(value), false) => {
                if write.is_full() {
                    return Err((value, out));
                }
                let mut table = write.copy(index);
                let pair = Pair {
                    key: owned(key),
                    value,
                };
                table.insert_unique(hash, pair, |pair| rehash(&pair.key));
                write.publish_grown(index, table, len + 1, rehash, Wrote::Added);
                Ok((Outcome::Inserted, out))
            }
            (Compute::Remove, true) => {
                let mut table = write.copy(index);
                let (pair, _) = table
                    .find_entry(hash, key_eq(key))
                    .ok()
                    .expect("the copy holds the entry its original holds")
                    .remove();
                write.publish(index, table, len - 1, Wrote::Removed);
                Ok((Outcome::Removed(pair.key, pair.value), out))
            }
        }
    }

    fn retain(&self, rec: Recorder<'_>, mut f: impl FnMut(&K, &mut V) -> bool) {
        let write = self.begin(rec);
        let cur = Arc::clone(&write.cur);
        let mut removed = 0;
        let mut capacity = 0;
        let shards: Shards<K, V> = cur
            .shards
            .iter()
            .map(|shard| {
                let mut table = Table::clone(shard);
                let before = table.len();
                table.retain(|entry| f(&entry.key, &mut entry.value));
                removed += before - table.len();
                capacity += table.capacity();
                SharedTable::new(table)
            })
            .collect();
        let next = Frozen {
            shards,
            bits: cur.bits,
            len: cur.len - removed,
            capacity,
        };
        write.publish_all(next, cur.len, None);
        // Counted once published: a panic in `f` publishes (and removes) nothing.
        rec.count(Counter::Removed, removed as u64);
    }

    fn replace_all(
        &self,
        entries: Vec<Entry<K, V>>,
        rec: Recorder<'_>,
        rehash: impl Fn(&K) -> u64,
    ) -> usize {
        // Built before the writer lock is taken; published in one step.
        let len = entries.len();
        let next = frozen_from(entries, 0, rehash);
        let write = self.begin(rec);
        let removed = write.cur.len;
        write.publish_all(next, len, None);
        removed
    }

    fn copy_part(
        &self,
        index: usize,
        _rec: Recorder<'_>,
        pinned: &mut Option<Arc<Frozen<K, V>>>,
        out: &mut Vec<(K, V)>,
    ) -> bool
    where
        K: Clone,
        V: Clone,
    {
        let version = pinned.get_or_insert_with(|| self.current.load());
        let Some(shard) = version.shards.get(index) else {
            return false;
        };
        out.extend(
            shard
                .iter()
                .map(|pair| (pair.key.clone(), pair.value.clone())),
        );
        true
    }

    fn reading_here(&self) -> bool {
        self.readers.reading_here()
    }

    fn clear(&self, rec: Recorder<'_>) -> usize {
        let write = self.begin(rec);
        let removed = write.cur.len;
        write.publish_all(Frozen::with_capacity(0, 0), 0, None);
        removed
    }

    fn for_each(&self, _rec: Recorder<'_>, mut f: impl FnMut(&K, &V)) {
        let version = self.current.load();
        version.iter().for_each(|entry| f(&entry.key, &entry.value));
    }

    fn len(&self) -> usize {
        self.current.peek(|version| version.len)
    }

    fn capacity(&self) -> usize {
        self.current.peek(|version| version.capacity)
    }

    fn shrink_to_fit(&self, rec: Recorder<'_>, rehash: impl Fn(&K) -> u64) {
        let write = self.begin(rec);
        let cur = &write.cur;
        let pairs = cur.iter().map(|pair| (rehash(&pair.key), pair.clone()));
        let next = Frozen::from_pairs(bits_for(cur.len), cur.len, pairs, &rehash);
        let copied = cur.len;
        write.publish_all(next, copied, None);
    }
    fn snapshot(&self, _rec: Recorder<'_>) -> Arc<Frozen<K, V>>
    where
        K: Clone,
        V: Clone,
    {
        self.current.load()
    }

    fn duplicate(&self, config: StoreConfig, rec: Recorder<'_>) -> Self
    where
        K: Clone,
        V: Clone,
    {
        // Versions are immutable, so the copy starts out sharing every shard of the original.
        Self::from_frozen(config, self.current.load(), rec)
    }
}

impl<K, V> RcuStore<K, V> {
    /// A store whose first version is `frozen`.
    fn from_frozen(config: StoreConfig, frozen: Arc<Frozen<K, V>>, rec: Recorder<'_>) -> Self {
        rec.set_capacity(frozen.capacity);
        RcuStore {
            current: Published::new(frozen),
            readers: Readers::new(rec.attachment()),
            writer: Mutex::new(()),
            counts: publish_counts(rec),
            max_len: config.max_len,
            reshard_deferred_below: AtomicUsize::new(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::bits_for;

    #[test]
    fn shard_bits_grow_with_the_square_root_of_len() {
        assert_eq!(bits_for(0), 0);
        assert_eq!(bits_for(8), 0);
        assert_eq!(bits_for(9), 1);
        assert_eq!(bits_for(1_000), 4);
        assert_eq!(bits_for(100_000), 7);
        for len in [10usize, 1_000, 100_000, 10_000_000] {
            let shards = 1usize << bits_for(len);
            // A write copies one shard: never more than about sqrt(8 * len) entries.
            assert!(len / shards <= 8 * shards, "len {len}: {shards} shards");
        }
    }
}
