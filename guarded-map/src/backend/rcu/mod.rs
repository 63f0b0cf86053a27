//! The read-copy-update backend: an immutable hash trie behind an atomically replaced root.
//!
//! Every write, under one writer mutex: find the leaf the key lives in, copy it, change the copy,
//! and publish a new root whose path to the copy is copied too; every other node is shared with
//! the old tree (see `trie/`). So a write copies at most one leaf (up to `LEAF_MAX` entries) and
//! one inner node per level (64 pointers, about three levels at a million entries), whatever the
//! size of the map. Readers never wait: they mark their reads, and what a write unlinked is freed
//! once no read that could see it is still running (`trie/grace.rs`). A panic in user code
//! (`Clone`, `Eq`, `Hash`, a closure) happens before the publish, so it leaves the map exactly as
//! it was; that is why trees can keep bare key-value pairs (see [`Pair`]).

use std::borrow::Borrow;
use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

mod reader;

// The adaptive gate's loom models wait on `Rcu` read marks as a switch does.
#[cfg(all(guarded_map_loom, test))]
pub(crate) use reader::wait_for_marks;

use reader::Readers;

use super::{Stopwatch, Storage, StoreConfig, Upserted, lock_timed};
use crate::compute::{Compute, Outcome};
use crate::shrink::LowSince;
use crate::stats::{Attached, Counter, MapStats, PublishCounts, Recorder, Wrote};
use crate::sync::{Mutex, MutexGuard};
use crate::table::{Entry, Pair, Table, key_eq};
use crate::trie::node::Node;
use crate::trie::root::{Path, Root, Writer};
use crate::trie::{Frozen, build, grace::Garbage};

/// One publish in this many is recorded into the publish-time histogram.
pub(crate) const PUBLISH_SAMPLE: u64 = 16;

/// The writer's counts, attached to the map's statistics through `rec`.
fn publish_counts(rec: Recorder<'_>) -> Attached<PublishCounts> {
    let mut counts = Attached::new(Box::new(PublishCounts::default()));
    counts.attach_to(rec.attachment(), |counts, keep| keep.keep(counts));
    counts
}

/// A tree holding `entries` (distinct keys), or an empty one with room for `capacity`.
fn tree_from<K, V>(
    entries: Vec<Entry<K, V>>,
    capacity: usize,
    rehash: impl Fn(&K) -> u64,
) -> Node<K, V> {
    if entries.is_empty() {
        return build::with_capacity(capacity);
    }
    let pairs = entries
        .into_iter()
        .map(|Entry { hash, key, value }| (hash, Pair { key, value }))
        .collect();
    build::tree(pairs, 0, &rehash)
}

/// A copy of `table` without the entry of `key` (which it holds), and that entry.
fn copy_without<K, V, Q>(table: &Table<K, V>, hash: u64, key: &Q) -> (Table<K, V>, Pair<K, V>)
where
    K: Clone + Borrow<Q>,
    V: Clone,
    Q: ?Sized + Eq,
{
    let mut copy = table.clone();
    let (pair, _) = copy
        .find_entry(hash, key_eq(key))
        .ok()
        .expect("the copy holds the entry its original holds")
        .remove();
    (copy, pair)
}

/// Storage of the [`Rcu`](crate::Rcu) backend.
pub struct RcuStore<K, V> {
    /// Declared first, so dropped before the readers whose marks its grace periods watch.
    root: Root<K, V>,
    readers: Readers,
    writer: Mutex<()>,
    /// Counted under `writer`, attached to the map's statistics.
    counts: Attached<PublishCounts>,
    max_len: Option<usize>,
    /// The shrink policy's state (under the writer lock): whether the tree shrinks on its own,
    /// since when it has been at most 1/8 full, and the capacity it never shrinks below.
    shrink: bool,
    low: LowSince,
    min_capacity: usize,
}

/// An open write: the writer lock, the publish stopwatch and the tree's writer. Consumed by one of
/// its `publish` methods; dropped without publishing (a panic in user code), it changes nothing.
struct Write<'a, K, V> {
    store: &'a RcuStore<K, V>,
    rec: Recorder<'a>,
    tree: Writer<'a, K, V>,
    watch: Stopwatch,
    _writer: MutexGuard<'a, ()>,
}

impl<K, V> RcuStore<K, V> {
    /// Takes the writer lock.
    fn begin<'a>(&'a self, rec: Recorder<'a>) -> Write<'a, K, V> {
        let _writer = lock_timed(&self.writer, rec);
        Write {
            store: self,
            rec,
            // SAFETY: the writer lock is held for the `Write`'s life (its last field).
            tree: unsafe { self.root.writer() },
            watch: Stopwatch::start(rec),
            _writer,
        }
    }

    /// A hold on the current version: O(1).
    /// A keyed read if `valid()` once the read is marked (see `Readers::read_if`); otherwise `f`
    /// back, uncalled and the read uncounted.
    #[inline(always)]
    pub(crate) fn get_if<Q, R, F>(
        &self,
        hash: u64,
        key: &Q,
        _stats: &Arc<MapStats>,
        counting: bool,
        valid: impl FnOnce() -> bool,
        f: F,
    ) -> Result<Option<R>, F>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
        F: FnOnce(&V) -> R,
    {
        self.readers
            .read_if(&self.root, counting, valid, f, |tree, reads, f| {
                let out = tree.find(hash, key).map(|entry| f(&entry.value));
                if let (Some(reads), None) = (reads, &out) {
                    reads.missed();
                }
                out
            })
    }

    /// Waits until every read of this map that is marked now has ended.
    pub(crate) fn wait_for_reads(&self) {
        self.readers.wait_for_reads();
    }

    pub(crate) fn pin(&self) -> Frozen<K, V> {
        self.root.pin()
    }

    fn from_tree(config: StoreConfig, tree: Node<K, V>, rec: Recorder<'_>) -> Self {
        if rec.enabled() {
            // Every publish is timed: not the first one pays for the clock's calibration.
            crate::clock::calibrate();
        }
        rec.set_capacity(tree.header().capacity);
        RcuStore {
            root: Root::new(tree),
            readers: Readers::new(rec.attachment()),
            writer: Mutex::new(()),
            counts: publish_counts(rec),
            max_len: config.max_len,
            shrink: config.shrink,
            low: LowSince::default(),
            min_capacity: config.capacity,
        }
    }
}

impl<'a, K, V> Write<'a, K, V> {
    /// Whether adding a key would exceed `max_len`.
    fn is_full(&self) -> bool {
        self.store.max_len.is_some_and(|max| self.tree.len() >= max)
    }

    /// Publishes the current tree with `path`'s leaf replaced by `table` (split if it outgrew its
    /// leaf, hashing its keys again with `rehash`).
    fn publish(
        self,
        path: &Path<'a, K, V>,
        table: Table<K, V>,
        rehash: impl Fn(&K) -> u64,
        wrote: Wrote,
    ) where
        K: Clone,
        V: Clone,
    {
        let copied = table.len();
        let node = build::settle(table, path.depth(), path.leaf.split_above, &rehash);
        let readers = &self.store.readers;
        self.tree.replace_leaf(path, node, || readers.any());
        let store = self.store;
        let shrunk = if store.shrink
            && store
                .low
                .shrink_due(self.tree.len(), self.tree.capacity(), store.min_capacity)
        {
            self.shrink_now(&rehash)
        } else {
            0
        };
        self.finish(copied + shrunk, Some(wrote));
    }

    /// Publishes the whole tree rebuilt for its entries, after it stayed at most 1/8 full (see
    /// the `shrink` module); returns the entries copied. A `Hash` or `Clone` that panics while
    /// the copy is built leaves the tree as it was, unshrunk: the write that triggered it has been
    /// published and must not fail.
    #[cold]
    #[inline(never)]
    fn shrink_now(&self, rehash: impl Fn(&K) -> u64) -> usize
    where
        K: Clone,
        V: Clone,
    {
        self.store.low.reset();
        let before = self.tree.capacity();
        let current = self.tree.current();
        let rebuilt = panic::catch_unwind(AssertUnwindSafe(|| {
            let pairs = crate::trie::iter::Leaves::new(current)
                .flat_map(|leaf| leaf.table.iter())
                .map(|pair| (rehash(&pair.key), pair.clone()))
                .collect();
            build::tree(pairs, 0, &rehash)
        }));
        let Ok(tree) = rebuilt else {
            return 0;
        };
        let len = self.tree.len();
        let readers = &self.store.readers;
        self.tree.replace_all(tree, || readers.any());
        self.rec.shrunk(before, self.tree.capacity());
        len
    }

    /// Publishes a whole new tree, made by a write that is not a keyed one.
    fn publish_all(self, tree: Node<K, V>, copied: usize) {
        let readers = &self.store.readers;
        self.tree.replace_all(tree, || readers.any());
        self.finish(copied, None);
    }

    /// Counts the publish of a write whose outcome is `wrote` (`None`: not a keyed write) before
    /// the writer lock is released, collects what readers can no longer see, and frees it after.
    fn finish(self, copied: usize, wrote: Option<Wrote>) {
        self.rec.set_capacity(self.tree.capacity());
        if self.rec.enabled() {
            let took = self.watch.nanos();
            let before = self.store.counts.record(wrote, took, copied);
            // The facade's histogram costs a tenth of a write that copies a leaf: it sees a
            // sample; the counts and the total time stay exact.
            if before.is_multiple_of(PUBLISH_SAMPLE) {
                self.rec.observe_publish(Duration::from_nanos(took));
            }
        }
        let readers = &self.store.readers;
        // SAFETY: the marks of this map's readers, which live as long as the store, whose root
        // (dropped first) closes the grace periods.
        let garbage: Vec<Garbage<K, V>> =
            unsafe { self.tree.collect(|visit| readers.marks(visit)) };
        // Freeing runs the user's destructors: outside the writer lock.
        drop(self);
        drop(garbage);
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
        Self::from_tree(config, build::with_capacity(config.capacity), rec)
    }

    fn from_entries(
        config: StoreConfig,
        entries: Vec<Entry<K, V>>,
        rec: Recorder<'_>,
        rehash: impl Fn(&K) -> u64,
    ) -> Self {
        Self::from_tree(config, tree_from(entries, config.capacity, rehash), rec)
    }

    #[inline(always)]
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
        match self.get_if(hash, key, _stats, counting, || true, f) {
            Ok(out) => out,
            Err(_) => unreachable!("a read that is always valid"),
        }
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
        let path = write.tree.path(hash);
        let mut table = path.leaf.table.clone();
        let old = match table.find_mut(hash, key_eq(&key)) {
            Some(entry) => Some(mem::replace(&mut entry.value, value)),
            None if write.is_full() => return Err((key, value)),
            None => {
                table.insert_unique(hash, Pair { key, value }, |pair| rehash(&pair.key));
                None
            }
        };
        write.publish(&path, table, rehash, Wrote::insert(old.is_some()));
        Ok(old)
    }

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
        let write = self.begin(rec);
        let path = write.tree.path(hash);
        if path.leaf.table.find(hash, key_eq(key)).is_none() {
            write.unpublished(Wrote::NotRemoved);
            return None;
        }
        let (table, pair) = copy_without(&path.leaf.table, hash, key);
        // `rehash` for the shrink policy: a leaf that lost an entry is never split.
        write.publish(&path, table, rehash, Wrote::Removed);
        Some((pair.key, pair.value))
    }

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
        Q: ?Sized + Eq,
    {
        let write = self.begin(rec);
        let path = write.tree.path(hash);
        path.leaf.table.find(hash, key_eq(key))?;
        let mut table = path.leaf.table.clone();
        let result = f(&mut table.find_mut(hash, key_eq(key))?.value);
        // `rehash` for the shrink policy: an update adds nothing, its leaf never splits.
        write.publish(&path, table, rehash, Wrote::Updated);
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
        let path = write.tree.path(hash);
        let mut table = path.leaf.table.clone();
        let (result, inserted) = match table.find_mut(hash, key_eq(&key)) {
            Some(entry) => (f(&mut entry.value), false),
            None if write.is_full() => return Err(key),
            None => {
                let value = default();
                let pair = table.insert_unique(hash, Pair { key, value }, |pair| rehash(&pair.key));
                (f(&mut pair.into_mut().value), true)
            }
        };
        let wrote = if inserted {
            Wrote::Added
        } else {
            Wrote::Updated
        };
        write.publish(&path, table, rehash, wrote);
        Ok(Upserted { result, inserted })
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
        let path = write.tree.path(hash);
        // Shown the published entry: a decision to keep it copies and publishes nothing.
        let current = path.leaf.table.find(hash, key_eq(key));
        let present = current.is_some();
        let (decision, out) = f(current.map(|pair| (&pair.key, &pair.value)));
        match (decision, present) {
            (Compute::Keep, true) => Ok((Outcome::Kept, out)),
            (Compute::Keep | Compute::Remove, false) => Ok((Outcome::Absent, out)),
            (Compute::Set(value), true) => {
                let mut table = path.leaf.table.clone();
                let entry = table
                    .find_mut(hash, key_eq(key))
                    .expect("the copy holds the entry its original holds");
                let old = mem::replace(&mut entry.value, value);
                write.publish(&path, table, rehash, Wrote::Replaced);
                Ok((Outcome::Replaced(old), out))
            }
            (Compute::Set(value), false) => {
                if write.is_full() {
                    return Err((value, out));
                }
                let mut table = path.leaf.table.clone();
                let pair = Pair {
                    key: owned(key),
                    value,
                };
                table.insert_unique(hash, pair, |pair| rehash(&pair.key));
                write.publish(&path, table, rehash, Wrote::Added);
                Ok((Outcome::Inserted, out))
            }
            (Compute::Remove, true) => {
                let (table, pair) = copy_without(&path.leaf.table, hash, key);
                write.publish(&path, table, rehash, Wrote::Removed);
                Ok((Outcome::Removed(pair.key, pair.value), out))
            }
        }
    }

    fn retain(&self, rec: Recorder<'_>, mut f: impl FnMut(&K, &mut V) -> bool) {
        let write = self.begin(rec);
        let len = write.tree.len();
        let tree = build::map_leaves(write.tree.current(), &mut |table| {
            let mut table = table.clone();
            table.retain(|entry| f(&entry.key, &mut entry.value));
            table
        });
        let removed = len - tree.header().len;
        write.publish_all(tree, len);
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
        let tree = tree_from(entries, 0, rehash);
        let write = self.begin(rec);
        let removed = write.tree.len();
        write.publish_all(tree, len);
        removed
    }

    fn copy_part(
        &self,
        position: usize,
        _rec: Recorder<'_>,
        pinned: &mut Option<Frozen<K, V>>,
        out: &mut Vec<(K, V)>,
    ) -> Option<usize>
    where
        K: Clone,
        V: Clone,
    {
        let version = pinned.get_or_insert_with(|| self.root.pin());
        let (leaf, next) = crate::trie::iter::leaf_from(version.root(), position)?;
        out.extend(
            leaf.table
                .iter()
                .map(|pair| (pair.key.clone(), pair.value.clone())),
        );
        Some(next)
    }

    fn reading_here(&self) -> bool {
        self.readers.reading_here()
    }

    fn clear(&self, rec: Recorder<'_>) -> usize {
        let write = self.begin(rec);
        let removed = write.tree.len();
        write.publish_all(build::with_capacity(0), 0);
        removed
    }

    fn for_each(&self, _rec: Recorder<'_>, mut f: impl FnMut(&K, &V)) {
        // A held version, not a read: `f` may write the map.
        let version = self.root.pin();
        version.iter().for_each(|entry| f(&entry.key, &entry.value));
    }

    fn len(&self) -> usize {
        self.root.len()
    }

    fn capacity(&self) -> usize {
        self.root.capacity()
    }

    fn shrink_to_fit(&self, rec: Recorder<'_>, rehash: impl Fn(&K) -> u64) {
        let write = self.begin(rec);
        let current = write.tree.current();
        let len = write.tree.len();
        let pairs = crate::trie::iter::Leaves::new(current)
            .flat_map(|leaf| leaf.table.iter())
            .map(|pair| (rehash(&pair.key), pair.clone()))
            .collect();
        let tree = build::tree(pairs, 0, &rehash);
        write.publish_all(tree, len);
    }

    fn snapshot(&self, _rec: Recorder<'_>) -> Arc<Frozen<K, V>>
    where
        K: Clone,
        V: Clone,
    {
        Arc::new(self.root.pin())
    }

    fn duplicate(&self, config: StoreConfig, rec: Recorder<'_>) -> Self
    where
        K: Clone,
        V: Clone,
    {
        // A copy of its own: nodes shared between two maps would be freed by one map's grace
        // period while the other's readers may still see them.
        let version = self.root.pin();
        let tree = build::map_leaves(version.root(), &mut |table| table.clone());
        Self::from_tree(config, tree, rec)
    }
}
