//! Building trees: from pairs with their hashes, from a `Sharded` map's shard tables, empty with
//! room reserved, and a leaf that outgrew its size split into an inner node.

use std::panic::{self, AssertUnwindSafe};

use super::node::{FANOUT, FANOUT_BITS, MAX_DEPTH, Node, NodeRef, shift_at};
use crate::table::{Pair, Table, hash_again};

/// The most entries a leaf holds before a write splits it: a write copies one leaf, so this bounds
/// its cost (measured in `BENCHMARKS.md`, "Rcu writes").
pub(crate) const LEAF_MAX: usize = 512;

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
            let hashed = table.into_iter().zip(hashes).map(|(pair, hash)| (hash, pair));
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
fn split<K, V>(pairs: Vec<(u64, Pair<K, V>)>, depth: usize, rehash: &impl Fn(&K) -> u64) -> Node<K, V> {
    let shift = shift_at(depth);
    let mut parts: [Vec<(u64, Pair<K, V>)>; FANOUT] = std::array::from_fn(|_| Vec::new());
    for (hash, pair) in pairs {
        parts[((hash >> shift) as usize) & (FANOUT - 1)].push((hash, pair));
    }
    let children = parts.map(|part| Some(tree(part, depth + 1, rehash)));
    Node::inner(shift, (FANOUT - 1) as u32, children)
}

/// An empty tree with room for `capacity` entries: as many leaves, each with its share reserved,
/// as keep every leaf at most [`LEAF_MAX`] full.
pub(crate) fn with_capacity<K, V>(capacity: usize) -> Node<K, V> {
    fn empty<K, V>(depth: usize, levels: usize, per_leaf: usize) -> Node<K, V> {
        if depth == levels {
            return Node::leaf(Table::with_capacity(per_leaf), LEAF_MAX);
        }
        let children = std::array::from_fn(|_| Some(empty(depth + 1, levels, per_leaf)));
        Node::inner(shift_at(depth), (FANOUT - 1) as u32, children)
    }
    let mut levels = 0;
    while levels < MAX_DEPTH && capacity > LEAF_MAX << (FANOUT_BITS as usize * levels) {
        levels += 1;
    }
    let per_leaf = capacity.div_ceil(1 << (FANOUT_BITS as usize * levels));
    empty(0, levels, per_leaf)
}

/// A tree of `tables`, the `1 << bits` shards of a map that picks a shard by the same hash bits
/// as the trie (`table::shard_index`): each table becomes a leaf as it is.
pub(crate) fn from_tables<K, V>(bits: u32, tables: Vec<Table<K, V>>) -> Node<K, V> {
    debug_assert_eq!(tables.len(), 1 << bits);
    let mut nodes: Vec<Node<K, V>> = tables
        .into_iter()
        .map(|table| Node::leaf(table, LEAF_MAX))
        .collect();
    // Group the deepest level first: shard `s`'s index at depth `d` is its bits `6d..6d + 6`.
    let mut levels = bits.div_ceil(FANOUT_BITS).max(1) as usize;
    if bits == 0 {
        return nodes.pop().expect("one table");
    }
    let mut remaining = bits;
    let mut level_bits = Vec::new();
    while remaining > 0 {
        let take = remaining.min(FANOUT_BITS);
        level_bits.push(take);
        remaining -= take;
    }
    // Build bottom-up: at the deepest level, nodes sharing their low bits are grouped by the
    // highest bits they have left.
    while levels > 0 {
        levels -= 1;
        let depth = levels;
        let take = level_bits[depth];
        let stride = nodes.len() >> take;
        let mut grouped: Vec<Node<K, V>> = Vec::with_capacity(stride);
        let mut slots: Vec<Option<Node<K, V>>> = nodes.into_iter().map(Some).collect();
        for low in 0..stride {
            let children = std::array::from_fn(|i| {
                (i < 1 << take).then(|| slots[low + i * stride].take().expect("each once"))
            });
            grouped.push(Node::inner(shift_at(depth), (1 << take) - 1, children));
        }
        nodes = grouped;
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
            let mut children: [Option<Node<K, V>>; FANOUT] = std::array::from_fn(|_| None);
            for (slot, child) in children.iter_mut().zip(inner.children()) {
                *slot = child.as_ref().map(|child| map_leaves(child.get(), f));
            }
            Node::inner(inner.shift(), inner.mask(), children)
        }
    }
}
