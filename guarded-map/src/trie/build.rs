//! Building trees: from pairs with their hashes, from a `Sharded` map's shard tables, empty with
//! room reserved, and a leaf that outgrew its size split into an inner node.

use std::panic::{self, AssertUnwindSafe};

use super::node::{MAX_DEPTH, Node, NodeRef, bits_at, shift_at};
use crate::table::{Pair, Table, hash_again};

/// The most entries a leaf holds before a write splits it: a write copies one leaf, so this bounds
/// its cost (measured in `BENCHMARKS.md`, "Rcu writes"). Small under Miri, so that its tests reach
/// several levels in a few hundred writes.
pub(crate) const LEAF_MAX: usize = if cfg!(miri) { 16 } else { 512 };

/// The leaf for `table` at `depth`, or, when it holds more than `split_above` entries, an inner
/// node whose leaves share them out. Splitting hashes every key again; if `rehash` panics (three
/// times on one key), the table stays one leaf and the next try waits for an eighth more entries.
pub(crate) fn settle<K, V>(
    table: Table<K, V>,
    depth: usize,
    split_above: usize,
    rehash: &impl Fn(&K) -> u64,
) -> Node<K, V> {
    if table.len() <= split_above || depth >= MAX_DEPTH {
        return Node::leaf(table, split_above);
    }
    let hashes = panic::catch_unwind(AssertUnwindSafe(|| {
        table
            .iter()
            .map(|pair| hash_again(rehash, &pair.key))
            .collect::<Vec<u64>>()
    }));
    match hashes {
        Ok(hashes) => {
            let hashed = table
                .into_iter()
                .zip(hashes)
                .map(|(pair, hash)| (hash, pair));
            split(hashed.collect(), depth, rehash)
        }
        Err(_) => {
            let len = table.len();
            Node::leaf(table, len + len / 8 + 1)
        }
    }
}

/// A tree at `depth` holding `pairs` (distinct keys, with their hashes): one leaf when they fit,
/// otherwise an inner node over 64 such trees.
pub(crate) fn tree<K, V>(
    pairs: Vec<(u64, Pair<K, V>)>,
    depth: usize,
    rehash: &impl Fn(&K) -> u64,
) -> Node<K, V> {
    if pairs.len() <= LEAF_MAX || depth >= MAX_DEPTH {
        let mut table = Table::with_capacity(pairs.len());
        for (hash, pair) in pairs {
            table.insert_unique(hash, pair, |pair| rehash(&pair.key));
        }
        return Node::leaf(table, LEAF_MAX);
    }
    split(pairs, depth, rehash)
}

/// An inner node at `depth` over the trees of `pairs` shared out by their hashes.
fn split<K, V>(
    pairs: Vec<(u64, Pair<K, V>)>,
    depth: usize,
    rehash: &impl Fn(&K) -> u64,
) -> Node<K, V> {
    let (shift, fanout) = (shift_at(depth), 1usize << bits_at(depth));
    let mut parts: Vec<Vec<(u64, Pair<K, V>)>> = (0..fanout).map(|_| Vec::new()).collect();
    for (hash, pair) in pairs {
        parts[((hash >> shift) as usize) & (fanout - 1)].push((hash, pair));
    }
    let children = parts
        .into_iter()
        .map(|part| tree(part, depth + 1, rehash))
        .collect();
    Node::inner(depth, (fanout - 1) as u32, children)
}

/// An empty tree with room for `capacity` entries: as many leaves, each with its share reserved,
/// as keep every leaf at most [`LEAF_MAX`] full.
pub(crate) fn with_capacity<K, V>(capacity: usize) -> Node<K, V> {
    fn empty<K, V>(depth: usize, levels: usize, per_leaf: usize) -> Node<K, V> {
        if depth == levels {
            return Node::leaf(Table::with_capacity(per_leaf), LEAF_MAX);
        }
        let fanout = 1usize << bits_at(depth);
        let children = (0..fanout)
            .map(|_| empty(depth + 1, levels, per_leaf))
            .collect();
        Node::inner(depth, (fanout - 1) as u32, children)
    }
    // The leaves of `levels` full levels: `1 << (bits_at(0) + ... + bits_at(levels - 1))`.
    let leaves = |levels: usize| 1usize << (0..levels).map(bits_at).sum::<u32>();
    let mut levels = 0;
    while levels < MAX_DEPTH && capacity > LEAF_MAX * leaves(levels) {
        levels += 1;
    }
    empty(0, levels, capacity.div_ceil(leaves(levels)))
}

/// A tree of `tables`, the `1 << bits` shards of a map that picks a shard by the same hash bits
/// as the trie (`table::shard_among`): each table becomes a leaf as it is. Where a level gets
/// fewer bits than its fanout, its nodes repeat their children (see `Inner`).
pub(crate) fn from_tables<K, V>(bits: u32, tables: Vec<Table<K, V>>) -> Node<K, V> {
    debug_assert_eq!(tables.len(), 1 << bits);
    let mut nodes: Vec<Node<K, V>> = tables
        .into_iter()
        .map(|table| Node::leaf(table, LEAF_MAX))
        .collect();
    // The bits each level takes of the shard index, the root's first.
    let mut takes = Vec::new();
    let mut left = bits;
    while left > 0 {
        let take = left.min(bits_at(takes.len()));
        takes.push(take);
        left -= take;
    }
    // Shard `s`'s index at a level is its next bits: group the deepest level first (shards that
    // agree on the bits above it), then the nodes that made.
    for (depth, &take) in takes.iter().enumerate().rev() {
        let stride = nodes.len() >> take;
        let mut slots: Vec<Option<Node<K, V>>> = nodes.into_iter().map(Some).collect();
        nodes = (0..stride)
            .map(|low| {
                let distinct: Vec<Node<K, V>> = (0..1usize << take)
                    .map(|i| slots[low + i * stride].take().expect("each once"))
                    .collect();
                let children = (0..1usize << bits_at(depth))
                    .map(|i| distinct[i & ((1 << take) - 1)].share())
                    .collect();
                Node::inner(depth, (1 << take) - 1, children)
            })
            .collect();
    }
    nodes.pop().expect("one root")
}

/// A tree of the same shape as `node`'s, each leaf's table made by `f` from the original's (a
/// panic in `f` drops what was built; the original is untouched).
pub(crate) fn map_leaves<K, V>(
    node: NodeRef<'_, K, V>,
    f: &mut impl FnMut(&Table<K, V>) -> Table<K, V>,
) -> Node<K, V> {
    match node {
        NodeRef::Leaf(leaf) => Node::leaf(f(&leaf.table), leaf.split_above),
        NodeRef::Inner(inner) => {
            let distinct: Vec<Node<K, V>> = inner
                .distinct()
                .iter()
                .map(|child| map_leaves(child.get(), f))
                .collect();
            let mask = distinct.len() - 1;
            let children = (0..1usize << bits_at(inner.depth()))
                .map(|i| distinct[i & mask].share())
                .collect();
            Node::inner(inner.depth(), mask as u32, children)
        }
    }
}
