//! The live root of an `Rcu` map: where readers enter, and how its writer replaces a path.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, OnceLock};

use super::Frozen;
use super::grace::{Garbage, Grace};
use super::node::{Inner, Leaf, MAX_DEPTH, Node, NodeRef};
use crate::sync::{AtomicPtr, Mutex, fence};
use crate::table::Pair;

/// The current tree of one `Rcu` map. The slot owns one count of the root.
pub(crate) struct Root<K, V> {
    slot: AtomicPtr<u8>,
    /// Taken by a writer from the moment it decides which nodes are unique until it has published,
    /// and by [`Root::pin`]: a node a snapshot shares is never taken for unique.
    pin: Mutex<()>,
    /// Made when first needed: by a write of a map that has readers, or a snapshot.
    grace: OnceLock<Arc<Grace<K, V>>>,
    /// The current tree's entries and capacity, stored with each publish, so that asking for them
    /// needs no read.
    len: AtomicUsize,
    capacity: AtomicUsize,
    /// Publishes so far: the version every node a publish adds is stamped with.
    version: AtomicU64,
}

// SAFETY: the slot holds a `Node` (see `into_raw`), which is `Send + Sync` under these bounds.
unsafe impl<K: Send + Sync, V: Send + Sync> Send for Root<K, V> {}
// SAFETY: as above.
unsafe impl<K: Send + Sync, V: Send + Sync> Sync for Root<K, V> {}

impl<K, V> Root<K, V> {
    pub(crate) fn new(root: Node<K, V>) -> Self {
        crate::fence::register();
        let header = root.header();
        Root {
            len: AtomicUsize::new(header.len),
            capacity: AtomicUsize::new(header.capacity),
            slot: AtomicPtr::new(root.into_raw()),
            version: AtomicU64::new(0),
            pin: Mutex::new(()),
            grace: OnceLock::new(),
        }
    }

    fn raw(&self) -> NonNull<u8> {
        // SAFETY: the slot always holds a node's address (`into_raw` of a handle).
        unsafe { NonNull::new_unchecked(self.slot.load(Acquire)) }
    }

    /// The current tree, for a reader.
    ///
    /// # Safety
    ///
    /// Only inside a read that stored its mark and then ran `fence::reader_fence` (see
    /// `grace.rs`), and for no longer than that read: the nodes stay alive until its mark changes.
    #[inline(always)]
    pub(crate) unsafe fn read(&self) -> Current<'_, K, V> {
        Current {
            ptr: self.raw(),
            _tree: PhantomData,
        }
    }

    /// The number of entries, as of the last publish.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Relaxed)
    }

    /// Table capacity in all, as of the last publish.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity.load(Relaxed)
    }

    /// The version the next publish stamps its new nodes with.
    fn next_version(&self) -> u64 {
        self.version.load(Relaxed) + 1
    }

    /// Publishes `new` (its new nodes stamped with [`Root::next_version`]), returning the slot's
    /// old address.
    fn publish(&self, new: Node<K, V>) -> *mut u8 {
        self.version.store(self.next_version(), Relaxed);
        let header = new.header();
        self.len.store(header.len, Relaxed);
        self.capacity.store(header.capacity, Relaxed);
        self.slot.swap(new.into_raw(), Release)
    }

    /// The map's grace periods.
    fn grace(&self) -> &Arc<Grace<K, V>> {
        self.grace.get_or_init(|| Arc::new(Grace::new()))
    }

    /// A hold on the current tree: O(1), one increment.
    pub(crate) fn pin(&self) -> Frozen<K, V> {
        let _pin = self.pin.lock();
        // SAFETY: the slot's handle, borrowed (never dropped): the writer replaces it only under
        // `pin`, so it is alive while it is shared here.
        let current = ManuallyDrop::new(unsafe { Node::take_back(self.raw()) });
        Frozen::new(current.share(), Some(Arc::clone(self.grace())))
    }

    /// The map's writer, for as long as the caller holds the map's writer lock.
    ///
    /// # Safety
    ///
    /// The caller holds the map's writer lock until the `Writer` is dropped: one writer at a time.
    pub(crate) unsafe fn writer(&self) -> Writer<'_, K, V> {
        Writer {
            root: self,
            unseen: RefCell::new(Vec::new()),
        }
    }
}

impl<K, V> Drop for Root<K, V> {
    fn drop(&mut self) {
        // No reader is left (the map is being dropped), so the retired nodes go at once, and the
        // tree with them where no snapshot shares it.
        if let Some(grace) = self.grace.get() {
            drop(grace.close());
        }
        // SAFETY: the slot's handle, taken back once, as the slot goes.
        drop(unsafe { Node::<K, V>::take_back(self.raw()) });
    }
}

/// The tree a read loaded, for as long as the read runs.
pub(crate) struct Current<'a, K, V> {
    ptr: NonNull<u8>,
    _tree: PhantomData<&'a Node<K, V>>,
}

impl<'a, K, V> Current<'a, K, V> {
    /// The version that published this tree's root.
    #[inline(always)]
    pub(crate) fn born(&self) -> u64 {
        // SAFETY: alive for `'a` (see `Root::read`).
        unsafe { Node::<K, V>::header_at(self.ptr) }.born()
    }

    /// The entry for `key`, whose hash is `hash`.
    #[inline(always)]
    pub(crate) fn find<Q>(&self, hash: u64, key: &Q) -> Option<&'a Pair<K, V>>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        // SAFETY: alive for `'a` (see `Root::read`).
        unsafe { super::find(self.ptr, hash, key) }
    }
}

/// The path from the root to one leaf, in the current tree.
pub(crate) struct Path<'a, K, V> {
    /// The inner nodes above the leaf and the index taken in each.
    steps: [Option<(Inner<'a, K, V>, usize)>; MAX_DEPTH],
    depth: usize,
    pub(crate) leaf: &'a Leaf<K, V>,
}

impl<K, V> Path<'_, K, V> {
    /// How many inner nodes are above the leaf.
    pub(crate) fn depth(&self) -> usize {
        self.depth
    }
}

/// The map's one writer: reads the current tree and replaces parts of it.
pub(crate) struct Writer<'a, K, V> {
    root: &'a Root<K, V>,
    /// What this write unlinked in a map no thread has read: freed by `collect`, no grace period.
    unseen: RefCell<Vec<Garbage<K, V>>>,
}

impl<'a, K, V> Writer<'a, K, V> {
    /// The current tree: alive as long as the writer is, since only it unlinks nodes.
    pub(crate) fn current(&self) -> NodeRef<'a, K, V> {
        // SAFETY: the live tree holds it, and only this writer replaces it.
        unsafe { Node::deref(self.root.raw()) }
    }

    /// The number of entries.
    pub(crate) fn len(&self) -> usize {
        self.current().header().len
    }

    /// Table capacity in all.
    pub(crate) fn capacity(&self) -> usize {
        self.current().header().capacity
    }

    /// The path to the leaf of `hash`.
    pub(crate) fn path(&self, hash: u64) -> Path<'a, K, V> {
        let mut steps = [None; MAX_DEPTH];
        let mut depth = 0;
        let mut node = self.current();
        loop {
            match node {
                NodeRef::Leaf(leaf) => return Path { steps, depth, leaf },
                NodeRef::Inner(inner) => {
                    let index = inner.index(hash);
                    steps[depth] = Some((inner, index));
                    depth += 1;
                    node = inner.child(index).get();
                }
            }
        }
    }

    /// Publishes the current tree with `path`'s leaf replaced by `new` (a leaf, or the inner node
    /// of a split). Copies the inner nodes above it: unique ones hand their children over, shared
    /// ones share them. What the new tree no longer holds is retired.
    pub(crate) fn replace_leaf(
        &self,
        path: &Path<'_, K, V>,
        new: Node<K, V>,
        read: impl Fn() -> bool,
    ) {
        let _pin = self.root.pin.lock();
        // The handles along the path: the slot's, then each parent's for the next node.
        let mut handles = [self.root.raw(); MAX_DEPTH + 1];
        for (i, step) in path.steps[..path.depth].iter().enumerate() {
            let (inner, index) = step.expect("steps up to depth");
            handles[i + 1] = inner.child(index).addr();
        }
        // SAFETY: nodes of the live tree, alive while the writer is.
        let header = |i: usize| unsafe { Node::<K, V>::header_at(handles[i]) };
        // Unique from the root down to the first node a snapshot shares; everything below that
        // one is shared through it.
        let shared_from = (0..=path.depth)
            .find(|&i| !header(i).is_unique())
            .unwrap_or(path.depth + 1);

        // At most one hollow node per level, and one dead or released node.
        let mut garbage: [Option<Garbage<K, V>>; MAX_DEPTH + 1] = Default::default();
        let version = self.root.next_version();
        new.stamp(version);
        let mut child = new;
        for i in (0..path.depth).rev() {
            let (inner, index) = path.steps[i].expect("steps up to depth");
            let (old, new) = (header(i + 1), child.header());
            let len = inner.header().len - old.len + new.len;
            let capacity = inner.header().capacity - old.capacity + new.capacity;
            // SAFETY: a live inner node; when unique, its holder (the slot, or a parent copied
            // the same way) is replaced by this publish and forgets it. Its handle on the old
            // child is taken back below, or stays with it when shared.
            let (copy, hollow) = unsafe {
                Node::copy_path(handles[i], index, child, len, capacity, i < shared_from)
            };
            garbage[i] = hollow.map(Garbage::Hollow);
            copy.header().stamp_alone(version);
            child = copy;
        }
        let old = self.root.publish(child);
        debug_assert_eq!(old.cast(), handles[0].as_ptr());
        garbage[path.depth] = if shared_from > path.depth {
            // SAFETY: the unique leaf's handle, held by its (hollow) parent or the slot.
            let leaf = unsafe { Node::take_back(handles[path.depth]) };
            Some(Garbage::Dead(leaf.into_dead()))
        } else {
            // SAFETY: the first shared node's handle, held by its hollow parent or the slot; the
            // live tree lets go of it.
            let shared = unsafe { Node::take_back(handles[shared_from]) };
            shared.release().map(Garbage::Dead)
        };
        self.retire(garbage.into_iter().flatten(), read);
    }

    /// Publishes `new` as the whole tree, retiring the old one.
    pub(crate) fn replace_all(&self, new: Node<K, V>, read: impl Fn() -> bool) {
        let _pin = self.root.pin.lock();
        new.stamp(self.root.next_version());
        let old = self.root.publish(new);
        // SAFETY: the slot's old handle, which it no longer holds.
        let old = unsafe { Node::from_raw(old) };
        if let Some(dead) = old.release() {
            self.retire([Garbage::Dead(dead)], read);
        }
    }

    /// Retires what a publish unlinked: to the grace periods, or, when `read` (asked after the
    /// publish) says no thread has ever read the map, to be freed by `collect` at once: a reader
    /// fences after it registers and before its first load of the root, and this side fences
    /// between the publish and the answer it relies on, so a reader that registers later loads
    /// the new root. A map that has readers (the answer never goes back) skips the fence.
    fn retire(&self, garbage: impl IntoIterator<Item = Garbage<K, V>>, read: impl Fn() -> bool) {
        if read() || {
            fence(SeqCst);
            read()
        } {
            drop(self.root.grace().retire(garbage));
        } else {
            self.unseen.borrow_mut().extend(garbage);
        }
    }

    /// Frees what no reader can see, and starts grace periods (see [`Grace::collect`]). Returns
    /// the garbage to drop after the writer lock is released.
    ///
    /// # Safety
    ///
    /// As [`Grace::collect`]: `marks` visits every reader's mark of this map.
    pub(crate) unsafe fn collect(
        &self,
        marks: impl FnOnce(&mut dyn FnMut(super::grace::Marks<'_>)),
    ) -> Vec<Garbage<K, V>> {
        let mut free = self.unseen.take();
        if let Some(grace) = self.root.grace.get() {
            // SAFETY: the caller's contract.
            free.extend(unsafe { grace.collect(marks) });
        }
        free
    }
}
