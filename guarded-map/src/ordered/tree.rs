//! A persistent B+ tree: a write returns a new tree that shares every node but the ones on the
//! path it changed, so a published tree never changes and a reader needs no lock.
//!
//! Entries sit in leaves of at most [`LEAF_MAX`] sorted pairs; an inner node holds at most
//! [`INNER_MAX`] children and, between each two, the separator key: every key of the right child
//! is at least the separator, every key of the left one below it. A write copies one leaf and one
//! inner node per level (five levels above the leaves at a million entries) and increments the
//! counts of the children those copies share. Small nodes, searched linearly: a point read
//! fetches about two cache lines a level, together, where nodes of 64 made it six and a binary
//! search fetched them one after the other (`BENCHMARKS.md`, "Ordered maps"). Nodes are `Arc`s: the last tree to let go of a node
//! frees it, so no grace period is needed, and no `unsafe` either.
//!
//! Written here rather than taken from a crate: the persistent ordered maps on crates.io (`im`'s
//! `OrdMap`, `rpds`) are not `Sync` to share behind an atomic pointer in the way this backend
//! needs, or copy more per write; this tree is the smallest thing that serves it.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use arrayvec::ArrayVec;

/// The most entries a leaf holds; a leaf that would hold more splits in two.
pub(crate) const LEAF_MAX: usize = 16;
/// The most children an inner node holds.
pub(crate) const INNER_MAX: usize = 16;
/// Below this, a node takes entries from or merges with a neighbour.
const LEAF_MIN: usize = LEAF_MAX / 4;
const INNER_MIN: usize = INNER_MAX / 4;

/// A leaf's entries, inline (one more than it keeps, for the entry that makes it split).
type Entries<K, V> = ArrayVec<(K, V), { LEAF_MAX + 1 }>;
/// An inner node's separators and children, inline.
type Keys<K> = ArrayVec<K, INNER_MAX>;
type Children<K, V> = ArrayVec<Arc<Node<K, V>>, { INNER_MAX + 1 }>;

/// A node: a leaf of sorted entries, or an inner node. Keys, values and children sit inline: one
/// allocation a node, so a search misses the cache about once a level.
#[derive(Debug)]
pub(crate) enum Node<K, V> {
    Leaf(Entries<K, V>),
    Inner(Inner<K, V>),
}

/// An inner node: `children.len() - 1` separators.
#[derive(Debug)]
pub(crate) struct Inner<K, V> {
    keys: Keys<K>,
    children: Children<K, V>,
}

impl<K, V> Inner<K, V> {
    /// The child that holds `key`, if anything does.
    fn child_for<Q>(&self, key: &Q) -> usize
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        // A linear scan, not a binary search: the loads of a node's keys do not wait on each
        // other's comparisons, so its cache lines are fetched together.
        self.keys
            .iter()
            .take_while(|k| (*k).borrow() <= key)
            .count()
    }
}

impl<K, V> Node<K, V> {
    /// Entries of a leaf, children of an inner node.
    #[cfg(test)]
    fn size(&self) -> usize {
        match self {
            Node::Leaf(entries) => entries.len(),
            Node::Inner(inner) => inner.children.len(),
        }
    }

    fn is_small(&self) -> bool {
        match self {
            Node::Leaf(entries) => entries.len() < LEAF_MIN,
            Node::Inner(inner) => inner.children.len() < INNER_MIN,
        }
    }
}

/// Where `key` is in a leaf's sorted entries (`Err`: where it would go).
fn position<K: Borrow<Q>, V, Q: Ord + ?Sized>(entries: &[(K, V)], key: &Q) -> Result<usize, usize> {
    // Linear, as `Inner::child_for`.
    for (at, (k, _)) in entries.iter().enumerate() {
        match k.borrow().cmp(key) {
            Ordering::Less => {}
            Ordering::Equal => return Ok(at),
            Ordering::Greater => return Err(at),
        }
    }
    Err(entries.len())
}

/// An immutable tree: a root and its number of entries.
#[derive(Debug)]
pub(crate) struct Tree<K, V> {
    root: Option<Arc<Node<K, V>>>,
    len: usize,
}

impl<K, V> Clone for Tree<K, V> {
    fn clone(&self) -> Self {
        Tree {
            root: self.root.clone(),
            len: self.len,
        }
    }
}

impl<K, V> Default for Tree<K, V> {
    fn default() -> Self {
        Tree { root: None, len: 0 }
    }
}

/// What inserting into a node left in its place: one node, or two and the separator between.
enum Inserted<K, V> {
    One(Arc<Node<K, V>>),
    Split(Arc<Node<K, V>>, K, Arc<Node<K, V>>),
}

impl<K: Ord + Clone, V: Clone> Tree<K, V> {
    /// A tree of `entries`, sorted by key with no key twice, built bottom-up with full nodes.
    pub(crate) fn from_sorted(entries: Vec<(K, V)>) -> Self {
        let len = entries.len();
        if len == 0 {
            return Tree::default();
        }
        // Leaves of up to 3/4 of the maximum, so the first writes do not split them.
        let per_leaf = LEAF_MAX * 3 / 4;
        let mut level: Vec<(K, Arc<Node<K, V>>)> = Vec::with_capacity(len / per_leaf + 1);
        let mut entries = entries.into_iter().peekable();
        while entries.peek().is_some() {
            let leaf: Entries<K, V> = entries.by_ref().take(per_leaf).collect();
            level.push((leaf[0].0.clone(), Arc::new(Node::Leaf(leaf))));
        }
        let per_inner = INNER_MAX * 3 / 4;
        while level.len() > 1 {
            let mut above = Vec::with_capacity(level.len() / per_inner + 1);
            let mut nodes = level.into_iter().peekable();
            while nodes.peek().is_some() {
                let group: Vec<(K, Arc<Node<K, V>>)> = nodes.by_ref().take(per_inner).collect();
                let first = group[0].0.clone();
                let mut keys = Keys::new();
                let mut children = Children::new();
                for (i, (key, child)) in group.into_iter().enumerate() {
                    if i > 0 {
                        keys.push(key);
                    }
                    children.push(child);
                }
                above.push((first, Arc::new(Node::Inner(Inner { keys, children }))));
            }
            level = above;
        }
        Tree {
            root: level.pop().map(|(_, root)| root),
            len,
        }
    }

    /// The tree with `key` set to `value`, and the value it replaced.
    pub(crate) fn insert(&self, key: K, value: V) -> (Tree<K, V>, Option<V>) {
        let Some(root) = &self.root else {
            let leaf = Arc::new(Node::Leaf([(key, value)].into_iter().collect()));
            return (
                Tree {
                    root: Some(leaf),
                    len: 1,
                },
                None,
            );
        };
        let (inserted, old) = insert_in(root, key, value);
        let root = match inserted {
            Inserted::One(node) => node,
            Inserted::Split(left, separator, right) => Arc::new(Node::Inner(Inner {
                keys: [separator].into_iter().collect(),
                children: [left, right].into_iter().collect(),
            })),
        };
        let len = self.len + usize::from(old.is_none());
        (
            Tree {
                root: Some(root),
                len,
            },
            old,
        )
    }

    /// The tree without `key`, and the entry removed; `None` when the key is absent.
    pub(crate) fn remove<Q>(&self, key: &Q) -> Option<(Tree<K, V>, (K, V))>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let (mut root, removed) = remove_in(self.root.as_ref()?, key)?;
        // A root with one child gives way to it; an empty leaf is an empty tree.
        loop {
            let only = match &*root {
                Node::Inner(inner) if inner.children.len() == 1 => inner.children[0].clone(),
                _ => break,
            };
            root = only;
        }
        let root = match &*root {
            Node::Leaf(entries) if entries.is_empty() => None,
            _ => Some(root),
        };
        Some((
            Tree {
                root,
                len: self.len - 1,
            },
            removed,
        ))
    }

    /// The tree with the value of `key` changed by `f`, and what `f` returned; `None` when the
    /// key is absent. A panicking `f` leaves this tree as it was (it changed a copy).
    pub(crate) fn update<Q, R>(
        &self,
        key: &Q,
        f: impl FnOnce(&mut V) -> R,
    ) -> Option<(Tree<K, V>, R)>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let (root, out) = update_in(self.root.as_ref()?, key, f)?;
        Some((
            Tree {
                root: Some(root),
                len: self.len,
            },
            out,
        ))
    }
}

fn insert_in<K: Ord + Clone, V: Clone>(
    node: &Node<K, V>,
    key: K,
    value: V,
) -> (Inserted<K, V>, Option<V>) {
    match node {
        Node::Leaf(entries) => {
            let mut entries = entries.clone();
            let old = match position(&entries, &key) {
                Ok(at) => Some(std::mem::replace(&mut entries[at].1, value)),
                Err(at) => {
                    entries.insert(at, (key, value));
                    None
                }
            };
            if entries.len() <= LEAF_MAX {
                return (Inserted::One(Arc::new(Node::Leaf(entries))), old);
            }
            let right: Entries<K, V> = entries.drain(entries.len() / 2..).collect();
            let separator = right[0].0.clone();
            let split = Inserted::Split(
                Arc::new(Node::Leaf(entries)),
                separator,
                Arc::new(Node::Leaf(right)),
            );
            (split, old)
        }
        Node::Inner(inner) => {
            let at = inner.child_for(&key);
            let (inserted, old) = insert_in(&inner.children[at], key, value);
            let (mut keys, mut children) = (inner.keys.clone(), inner.children.clone());
            match inserted {
                Inserted::One(child) => children[at] = child,
                Inserted::Split(left, separator, right) => {
                    children[at] = left;
                    children.insert(at + 1, right);
                    keys.insert(at, separator);
                }
            }
            if children.len() <= INNER_MAX {
                return (
                    Inserted::One(Arc::new(Node::Inner(Inner { keys, children }))),
                    old,
                );
            }
            let mid = children.len() / 2;
            let right_children: Children<K, V> = children.drain(mid..).collect();
            let mut right_keys: Keys<K> = keys.drain(mid - 1..).collect();
            let separator = right_keys.remove(0);
            let split = Inserted::Split(
                Arc::new(Node::Inner(Inner { keys, children })),
                separator,
                Arc::new(Node::Inner(Inner {
                    keys: right_keys,
                    children: right_children,
                })),
            );
            (split, old)
        }
    }
}

/// A node rebuilt by a write, and what the write took out or returned.
type Rebuilt<K, V, T> = (Arc<Node<K, V>>, T);

fn remove_in<K, V, Q>(node: &Node<K, V>, key: &Q) -> Option<Rebuilt<K, V, (K, V)>>
where
    K: Ord + Clone + Borrow<Q>,
    V: Clone,
    Q: Ord + ?Sized,
{
    match node {
        Node::Leaf(entries) => {
            let at = position(entries, key).ok()?;
            let mut entries = entries.clone();
            let removed = entries.remove(at);
            Some((Arc::new(Node::Leaf(entries)), removed))
        }
        Node::Inner(inner) => {
            let at = inner.child_for(key);
            let (child, removed) = remove_in(&inner.children[at], key)?;
            let (mut keys, mut children) = (inner.keys.clone(), inner.children.clone());
            let small = child.is_small();
            children[at] = child;
            if small && children.len() > 1 {
                rebalance(&mut keys, &mut children, at);
            }
            Some((Arc::new(Node::Inner(Inner { keys, children })), removed))
        }
    }
}

/// Gives the small child at `at` entries of a neighbour, or merges the two.
fn rebalance<K: Clone, V: Clone>(keys: &mut Keys<K>, children: &mut Children<K, V>, at: usize) {
    let left = if at > 0 { at - 1 } else { at };
    let right = left + 1;
    let separator = keys[left].clone();
    match (&*children[left], &*children[right]) {
        (Node::Leaf(a), Node::Leaf(b)) => {
            let mut all: Vec<(K, V)> = a.iter().chain(b).cloned().collect();
            if all.len() <= LEAF_MAX {
                children[left] = Arc::new(Node::Leaf(all.into_iter().collect()));
                children.remove(right);
                keys.remove(left);
            } else {
                let second = all.split_off(all.len() / 2);
                keys[left] = second[0].0.clone();
                children[left] = Arc::new(Node::Leaf(all.into_iter().collect()));
                children[right] = Arc::new(Node::Leaf(second.into_iter().collect()));
            }
        }
        (Node::Inner(a), Node::Inner(b)) => {
            let mut all_keys: Vec<K> = a.keys.to_vec();
            all_keys.push(separator);
            all_keys.extend(b.keys.iter().cloned());
            let mut all_children: Vec<Arc<Node<K, V>>> =
                a.children.iter().chain(&b.children).cloned().collect();
            let inner = |keys: Vec<K>, children: Vec<Arc<Node<K, V>>>| {
                Arc::new(Node::Inner(Inner {
                    keys: keys.into_iter().collect(),
                    children: children.into_iter().collect(),
                }))
            };
            if all_children.len() <= INNER_MAX {
                children[left] = inner(all_keys, all_children);
                children.remove(right);
                keys.remove(left);
            } else {
                let mid = all_children.len() / 2;
                let second_children = all_children.split_off(mid);
                let mut second_keys = all_keys.split_off(mid - 1);
                keys[left] = second_keys.remove(0);
                children[left] = inner(all_keys, all_children);
                children[right] = inner(second_keys, second_children);
            }
        }
        _ => unreachable!("siblings are at the same depth"),
    }
}

fn update_in<K, V, Q, R>(
    node: &Node<K, V>,
    key: &Q,
    f: impl FnOnce(&mut V) -> R,
) -> Option<Rebuilt<K, V, R>>
where
    K: Ord + Clone + Borrow<Q>,
    V: Clone,
    Q: Ord + ?Sized,
{
    match node {
        Node::Leaf(entries) => {
            let at = position(entries, key).ok()?;
            let mut entries = entries.clone();
            let out = f(&mut entries[at].1);
            Some((Arc::new(Node::Leaf(entries)), out))
        }
        Node::Inner(inner) => {
            let at = inner.child_for(key);
            let (child, out) = update_in(&inner.children[at], key, f)?;
            let mut children = inner.children.clone();
            children[at] = child;
            let keys = inner.keys.clone();
            Some((Arc::new(Node::Inner(Inner { keys, children })), out))
        }
    }
}

impl<K, V> Tree<K, V> {
    /// Entries.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The entry of `key`.
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let mut node = self.root.as_deref()?;
        loop {
            match node {
                Node::Inner(inner) => node = &inner.children[inner.child_for(key)],
                Node::Leaf(entries) => {
                    let at = position(entries, key).ok()?;
                    let (k, v) = &entries[at];
                    return Some((k, v));
                }
            }
        }
    }

    /// The entry with the smallest key.
    pub(crate) fn first(&self) -> Option<(&K, &V)> {
        let mut node = self.root.as_deref()?;
        loop {
            match node {
                Node::Inner(inner) => node = &inner.children[0],
                Node::Leaf(entries) => return entries.first().map(|(k, v)| (k, v)),
            }
        }
    }

    /// The entry with the largest key.
    pub(crate) fn last(&self) -> Option<(&K, &V)> {
        let mut node = self.root.as_deref()?;
        loop {
            match node {
                Node::Inner(inner) => {
                    node = inner.children.last().expect("an inner node has children")
                }
                Node::Leaf(entries) => return entries.last().map(|(k, v)| (k, v)),
            }
        }
    }

    /// The entries with keys in `range`, in order.
    pub(crate) fn range<Q, R>(&self, range: R) -> Range<'_, K, V, Q, R>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
        R: RangeBounds<Q>,
    {
        let mut iter = Range {
            stack: Vec::new(),
            leaf: &[],
            at: 0,
            range,
            done: false,
            key: std::marker::PhantomData,
        };
        let Some(mut node) = self.root.as_deref() else {
            iter.done = true;
            return iter;
        };
        loop {
            match node {
                Node::Inner(inner) => {
                    let at = match iter.range.start_bound() {
                        Bound::Included(start) | Bound::Excluded(start) => inner.child_for(start),
                        Bound::Unbounded => 0,
                    };
                    iter.stack.push((inner, at));
                    node = &inner.children[at];
                }
                Node::Leaf(entries) => {
                    iter.leaf = entries;
                    iter.at = match iter.range.start_bound() {
                        Bound::Included(start) => {
                            entries.partition_point(|(k, _)| k.borrow() < start)
                        }
                        Bound::Excluded(start) => {
                            entries.partition_point(|(k, _)| k.borrow() <= start)
                        }
                        Bound::Unbounded => 0,
                    };
                    return iter;
                }
            }
        }
    }
}

/// The entries of a tree with keys in a range, in order (see [`Tree::range`]).
pub(crate) struct Range<'a, K, V, Q: ?Sized, R> {
    /// The inner nodes above the current leaf, each with the child being walked.
    stack: Vec<(&'a Inner<K, V>, usize)>,
    leaf: &'a [(K, V)],
    at: usize,
    range: R,
    done: bool,
    key: std::marker::PhantomData<fn(&Q)>,
}

impl<'a, K, V, Q, R> Range<'a, K, V, Q, R>
where
    K: Borrow<Q>,
    Q: Ord + ?Sized,
    R: RangeBounds<Q>,
{
    fn past_end(&self, key: &K) -> bool {
        match self.range.end_bound() {
            Bound::Included(end) => key.borrow().cmp(end) == Ordering::Greater,
            Bound::Excluded(end) => key.borrow() >= end,
            Bound::Unbounded => false,
        }
    }

    /// Moves to the next leaf; false at the end of the tree.
    fn next_leaf(&mut self) -> bool {
        loop {
            let Some((inner, at)) = self.stack.last_mut() else {
                return false;
            };
            *at += 1;
            if *at < inner.children.len() {
                break;
            }
            self.stack.pop();
        }
        let (inner, at) = *self.stack.last().expect("just checked");
        let mut node = &*inner.children[at];
        loop {
            match node {
                Node::Inner(inner) => {
                    self.stack.push((inner, 0));
                    node = &inner.children[0];
                }
                Node::Leaf(entries) => {
                    self.leaf = entries;
                    self.at = 0;
                    return true;
                }
            }
        }
    }
}

impl<'a, K, V, Q, R> Iterator for Range<'a, K, V, Q, R>
where
    K: Borrow<Q>,
    Q: Ord + ?Sized,
    R: RangeBounds<Q>,
{
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<(&'a K, &'a V)> {
        if self.done {
            return None;
        }
        while self.at >= self.leaf.len() {
            if !self.next_leaf() {
                self.done = true;
                return None;
            }
        }
        let (key, value) = &self.leaf[self.at];
        if self.past_end(key) {
            self.done = true;
            return None;
        }
        self.at += 1;
        Some((key, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every node's invariants: sorted, separators bounding their children, sizes within limits
    /// (a root excepted), all leaves at one depth; returns the entries in order.
    fn check<K: Ord + Clone + std::fmt::Debug, V: Clone>(tree: &Tree<K, V>) -> Vec<K> {
        fn walk<K: Ord + Clone + std::fmt::Debug, V>(
            node: &Node<K, V>,
            lo: Option<&K>,
            hi: Option<&K>,
            root: bool,
            depth: usize,
            leaf_depth: &mut Option<usize>,
            out: &mut Vec<K>,
        ) {
            if !root {
                assert!(node.size() > 0, "an empty node below the root");
            }
            match node {
                Node::Leaf(entries) => {
                    assert!(entries.len() <= LEAF_MAX);
                    assert_eq!(
                        *leaf_depth.get_or_insert(depth),
                        depth,
                        "leaves at one depth"
                    );
                    for (k, _) in entries {
                        assert!(lo.is_none_or(|lo| k >= lo) && hi.is_none_or(|hi| k < hi));
                        out.push(k.clone());
                    }
                }
                Node::Inner(inner) => {
                    assert!(inner.children.len() <= INNER_MAX);
                    assert!(!root || inner.children.len() >= 2, "a root with one child");
                    assert_eq!(inner.keys.len() + 1, inner.children.len());
                    for (i, child) in inner.children.iter().enumerate() {
                        let lo = if i == 0 { lo } else { Some(&inner.keys[i - 1]) };
                        let hi = inner.keys.get(i).or(hi);
                        walk(child, lo, hi, false, depth + 1, leaf_depth, out);
                    }
                }
            }
        }
        let mut out = Vec::new();
        if let Some(root) = &tree.root {
            walk(root, None, None, true, 0, &mut None, &mut out);
        }
        assert!(out.windows(2).all(|w| w[0] < w[1]), "sorted, no key twice");
        assert_eq!(out.len(), tree.len());
        out
    }

    #[test]
    #[cfg_attr(miri, ignore = "safe code, and too long for Miri")]
    fn inserts_and_removes_keep_the_invariants_and_old_trees() {
        let mut tree: Tree<u32, u32> = Tree::default();
        let mut versions = Vec::new();
        // A scrambled order, so splits happen everywhere.
        for i in 0..5_000u32 {
            let k = i.wrapping_mul(2_654_435_761) % 10_007;
            tree = tree.insert(k, i).0;
            if i % 1_000 == 0 {
                versions.push((tree.clone(), check(&tree)));
            }
        }
        check(&tree);
        for i in 0..5_000u32 {
            let k = i.wrapping_mul(2_654_435_761) % 10_007;
            if i % 3 != 0 {
                tree = tree.remove(&k).expect("present").0;
            }
        }
        let left = check(&tree);
        assert_eq!(
            left.len(),
            5_000 - (0..5_000).filter(|i| i % 3 != 0).count()
        );
        // Old trees are untouched by later writes.
        for (old, keys) in versions {
            assert_eq!(check(&old), keys);
        }
        for k in left.clone() {
            tree = tree.remove(&k).unwrap().0;
        }
        assert!(tree.root.is_none() && tree.len() == 0);
    }

    #[test]
    fn ranges_follow_their_bounds() {
        let tree = Tree::from_sorted((0..1_000u32).map(|k| (k * 2, k)).collect());
        check(&tree);
        fn keys<'a>(r: impl Iterator<Item = (&'a u32, &'a u32)>) -> Vec<u32> {
            r.map(|(k, _)| *k).collect()
        }
        assert_eq!(keys(tree.range(10..16)), [10, 12, 14]);
        assert_eq!(keys(tree.range(11..=16)), [12, 14, 16]);
        assert_eq!(
            keys(tree.range((Bound::Excluded(10), Bound::Included(14)))),
            [12, 14]
        );
        assert_eq!(
            keys(tree.range(1_990..)),
            [1_990, 1_992, 1_994, 1_996, 1_998]
        );
        assert_eq!(tree.range(..).count(), 1_000);
        assert_eq!(tree.range(5_000..).count(), 0);
        assert_eq!(tree.first(), Some((&0, &0)));
        assert_eq!(tree.last(), Some((&1_998, &999)));
        assert_eq!(tree.get(&500), Some((&500, &250)));
        assert_eq!(tree.get(&501), None);
    }
}
