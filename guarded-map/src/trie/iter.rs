//! Walking a tree: every leaf in index order, and the leaf at a position (resumable walks that
//! hold nothing between steps).

use super::node::{Inner, Leaf, MAX_DEPTH, NodeRef};

/// Bits of one digit of a position: enough for the widest level.
const DIGIT_BITS: usize = 6;

/// The leaves under a node, depth first, in index order.
pub(crate) struct Leaves<'a, K, V> {
    /// The inner nodes above the next leaf, each with the index of its next child.
    stack: Vec<(Inner<'a, K, V>, usize)>,
    /// The root, when it is a leaf not yet returned.
    root_leaf: Option<&'a Leaf<K, V>>,
}

impl<'a, K, V> Leaves<'a, K, V> {
    pub(crate) fn new(root: NodeRef<'a, K, V>) -> Self {
        match root {
            NodeRef::Leaf(leaf) => Leaves {
                stack: Vec::new(),
                root_leaf: Some(leaf),
            },
            NodeRef::Inner(inner) => Leaves {
                stack: vec![(inner, 0)],
                root_leaf: None,
            },
        }
    }
}

impl<'a, K, V> Iterator for Leaves<'a, K, V> {
    type Item = &'a Leaf<K, V>;

    fn next(&mut self) -> Option<&'a Leaf<K, V>> {
        if let Some(leaf) = self.root_leaf.take() {
            return Some(leaf);
        }
        loop {
            let (inner, next) = self.stack.last_mut()?;
            let inner = *inner;
            let Some(child) = inner.distinct().get(*next) else {
                self.stack.pop();
                continue;
            };
            *next += 1;
            match child.get() {
                NodeRef::Leaf(leaf) => return Some(leaf),
                NodeRef::Inner(below) => self.stack.push((below, 0)),
            }
        }
    }
}

/// Positions of leaves for [`leaf_from`]: one digit of [`DIGIT_BITS`] per level, the root's the
/// highest. Past the last leaf.
pub(crate) const END: usize = 1 << (DIGIT_BITS * MAX_DEPTH);

/// The first leaf at or after `position` (start from 0), and the position after it; `None` past
/// the last leaf. Each step descends from the root, so it holds nothing in between.
pub(crate) fn leaf_from<'a, K, V>(
    root: NodeRef<'a, K, V>,
    mut position: usize,
) -> Option<(&'a Leaf<K, V>, usize)> {
    let digit_shift = |depth: usize| DIGIT_BITS * (MAX_DEPTH - 1 - depth);
    // The position just past everything under the node reached through `depth` digits.
    let after = |position: usize, depth: usize| {
        if depth == 0 {
            END
        } else {
            let unit = 1 << digit_shift(depth - 1);
            (position / unit + 1) * unit
        }
    };
    'restart: while position < END {
        let mut node = root;
        let mut depth = 0;
        loop {
            match node {
                NodeRef::Leaf(leaf) => return Some((leaf, after(position, depth))),
                NodeRef::Inner(inner) => {
                    let digit = (position >> digit_shift(depth)) & ((1 << DIGIT_BITS) - 1);
                    let Some(child) = inner.distinct().get(digit) else {
                        position = after(position, depth);
                        continue 'restart;
                    };
                    node = child.get();
                    depth += 1;
                }
            }
        }
    }
    None
}
