//! The hash trie both backends' frozen states are made of: `Rcu` versions and every snapshot.
//!
//! A tree of [`node`]s: inner nodes index 64 children by six bits of the hash (bits 25 and up,
//! as the `Sharded` shard index), leaves are hashbrown tables of at most [`build::LEAF_MAX`]
//! entries. A write copies one leaf and the inner nodes above it, so it costs O(log n) and at
//! most a leaf's entries; unchanged nodes are shared between versions and snapshots.
//!
//! - [`node`]: the nodes and their reference counts (the unsafe code);
//! - [`grace`]: when an unlinked node can be freed;
//! - [`root`]: the live root of an `Rcu` map, its writer and its readers' entry point;
//! - [`build`], [`iter`]: making and walking trees;
//! - [`Frozen`] (here): a counted hold on one tree, what a snapshot is.

pub(crate) mod build;
pub(crate) mod grace;
pub(crate) mod iter;
pub(crate) mod node;
pub(crate) mod root;

use std::borrow::Borrow;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::sync::Arc;

use grace::Grace;
use node::{Leaf, Node, NodeRef};

use crate::table::{Pair, Table, key_eq};

/// The entry for `key`, whose hash is `hash`, in the tree at tagged address `root`.
///
/// # Safety
///
/// The tree must stay alive for `'a`.
#[inline(always)]
pub(crate) unsafe fn find<'a, K, V, Q>(
    root: NonNull<u8>,
    hash: u64,
    key: &Q,
) -> Option<&'a Pair<K, V>>
where
    K: Borrow<Q>,
    Q: ?Sized + Eq,
{
    // SAFETY: the caller's contract.
    unsafe { node::leaf_of::<K, V>(root, hash) }
        .table
        .find(hash, key_eq(key))
}

/// One immutable tree, held: a snapshot's state, or an `Rcu` version pinned by an iterator.
#[doc(hidden)]
pub struct Frozen<K, V> {
    root: ManuallyDrop<Node<K, V>>,
    /// The grace period of the `Rcu` map whose version this is (its readers may still see nodes
    /// this hold is the last of); `None` for a tree no reader sees.
    grace: Option<Arc<Grace<K, V>>>,
}

impl<K, V> Frozen<K, V> {
    /// A hold on `root`, which readers of the map behind `grace` may see.
    pub(crate) fn new(root: Node<K, V>, grace: Option<Arc<Grace<K, V>>>) -> Self {
        Frozen {
            root: ManuallyDrop::new(root),
            grace,
        }
    }

    /// A tree of `pairs` (distinct keys, with their hashes).
    #[cfg(feature = "serde")]
    pub(crate) fn from_pairs(
        pairs: impl Iterator<Item = (u64, Pair<K, V>)>,
        rehash: impl Fn(&K) -> u64,
    ) -> Self {
        Self::new(build::tree(pairs.collect(), 0, &rehash), None)
    }

    /// The tree of a `Sharded` map's `1 << bits` shard tables.
    pub(crate) fn from_tables(bits: u32, tables: Vec<Table<K, V>>) -> Self {
        Self::new(build::from_tables(bits, tables), None)
    }

    pub(crate) fn root(&self) -> NodeRef<'_, K, V> {
        self.root.get()
    }

    /// The number of entries.
    pub(crate) fn len(&self) -> usize {
        self.root.header().len
    }

    /// The pair for `key`, whose hash is `hash`.
    #[inline]
    pub(crate) fn find<Q>(&self, hash: u64, key: &Q) -> Option<&Pair<K, V>>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        // SAFETY: the tree is held by `self`.
        unsafe { find(self.root.addr(), hash, key) }
    }

    /// Every leaf, in index order.
    pub(crate) fn leaves(&self) -> iter::Leaves<'_, K, V> {
        iter::Leaves::new(self.root())
    }

    /// Every pair, leaf by leaf.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Pair<K, V>> + '_ {
        self.leaves()
            .flat_map(|leaf: &Leaf<K, V>| leaf.table.iter())
    }
}

impl<K, V> Drop for Frozen<K, V> {
    fn drop(&mut self) {
        // SAFETY: taken once, here.
        let root = unsafe { ManuallyDrop::take(&mut self.root) };
        match &self.grace {
            Some(grace) => grace.release(root),
            None => drop(root),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Frozen;
    use super::build::{self, LEAF_MAX};
    use super::root::Root;
    use crate::table::{Pair, Table};

    fn hash(key: &u64) -> u64 {
        key.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    /// Entries per test: fewer under Miri, which runs them a thousand times slower.
    const N: u64 = if cfg!(miri) {
        3 * LEAF_MAX as u64
    } else {
        20_000
    };

    /// Inserts `key` through the root's writer, as the `Rcu` store does.
    fn insert(root: &Root<u64, u64>, key: u64) {
        // SAFETY: one writer: the tests write from one thread.
        let writer = unsafe { root.writer() };
        let path = writer.path(hash(&key));
        let mut table: Table<u64, u64> = path.leaf.table.clone();
        table.insert_unique(hash(&key), Pair { key, value: key }, |p| hash(&p.key));
        let node = build::settle(table, path.depth(), path.leaf.split_above, &hash);
        // Alternately as in a map that has readers and in one that has none.
        writer.replace_leaf(&path, node, || key.is_multiple_of(2));
        // SAFETY: no reader has a mark in these tests.
        drop(unsafe { writer.collect(|_| {}) });
    }

    fn keys(frozen: &Frozen<u64, u64>) -> Vec<u64> {
        let mut keys: Vec<u64> = frozen.iter().map(|p| p.key).collect();
        keys.sort_unstable();
        keys
    }

    #[test]
    fn snapshots_keep_their_state_while_writes_split_and_copy() {
        let root: Root<u64, u64> = Root::new(build::with_capacity(0));
        let mut snapshots = Vec::new();
        for key in 0..N {
            insert(&root, key);
            if key % (N / 7) == 0 {
                snapshots.push((key + 1, root.pin()));
            }
        }
        assert_eq!(root.len(), N as usize);
        for (len, snapshot) in &snapshots {
            assert_eq!(snapshot.len(), *len as usize);
            assert_eq!(keys(snapshot), (0..*len).collect::<Vec<_>>());
            assert!(snapshot.find(hash(&0), &0).is_some());
            assert!(snapshot.find(hash(len), len).is_none());
        }
        // Dropped in another order than taken, some after the map.
        snapshots.swap(0, 3);
        let last = snapshots.pop();
        drop(snapshots);
        let all = root.pin();
        drop(root);
        assert_eq!(keys(&all), (0..N).collect::<Vec<_>>());
        drop(last);
    }

    #[test]
    fn a_sharded_maps_tables_become_leaves_walked_once() {
        const KEYS: u64 = if cfg!(miri) { 300 } else { 1_000 };
        let bits: &[u32] = if cfg!(miri) {
            &[0, 3, 8]
        } else {
            &[0, 3, 6, 8, 11]
        };
        for &bits in bits {
            let mut tables: Vec<Table<u64, u64>> = (0..1 << bits).map(|_| Table::new()).collect();
            for key in 0..KEYS {
                let h = hash(&key);
                let shard = crate::table::shard_among(h, 1 << bits);
                tables[shard].insert_unique(h, Pair { key, value: key }, |p| hash(&p.key));
            }
            let frozen = Frozen::from_tables(bits, tables);
            assert_eq!(frozen.len(), KEYS as usize);
            assert_eq!(keys(&frozen), (0..KEYS).collect::<Vec<_>>());
            for key in 0..KEYS {
                assert_eq!(frozen.find(hash(&key), &key).map(|p| p.value), Some(key));
            }
            let mut position = 0;
            let mut walked = 0;
            while let Some((leaf, next)) = super::iter::leaf_from(frozen.root(), position) {
                walked += leaf.table.len();
                position = next;
            }
            assert_eq!(walked, KEYS as usize, "{bits} bits");
        }
    }
}
