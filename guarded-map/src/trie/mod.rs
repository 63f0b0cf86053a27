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
use std::sync::Arc;

use grace::Grace;
use node::{Leaf, Node, NodeRef};

use crate::table::{Pair, Table, key_eq};

/// The entry for `key`, whose hash is `hash`, in the tree under `node`.
#[inline]
pub(crate) fn find<'a, K, V, Q>(mut node: NodeRef<'a, K, V>, hash: u64, key: &Q) -> Option<&'a Pair<K, V>>
where
    K: Borrow<Q>,
    Q: ?Sized + Eq,
{
    loop {
        match node {
            NodeRef::Inner(inner) => node = inner.child(hash),
            NodeRef::Leaf(leaf) => return leaf.table.find(hash, key_eq(key)),
        }
    }
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
        find(self.root(), hash, key)
    }

    /// Every leaf, in index order.
    pub(crate) fn leaves(&self) -> iter::Leaves<'_, K, V> {
        iter::Leaves::new(self.root())
    }

    /// Every pair, leaf by leaf.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Pair<K, V>> + '_ {
        self.leaves().flat_map(|leaf: &Leaf<K, V>| leaf.table.iter())
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
