//! The nodes of a hash trie, and the only code that handles their reference counts.
//!
//! A node is an [`Inner`] node (up to 64 children, chosen by six bits of the hash) or a [`Leaf`] (a
//! hash table). A [`Node`] is a counted handle, like an `Arc`, with a tag bit that says which
//! kind it points to. Every holder owns one count: the live map's root slot, an inner node for
//! each of its children, a snapshot for its root.
//!
//! Writes copy the path from the root to one leaf. A node on that path whose count is one is held
//! by the live tree alone (an ancestor with a count above one is shared with a snapshot, and so
//! is everything below it); its copy *adopts* its children (takes over their counts, no atomic
//! instruction) and the old node is retired *hollow*: once no reader can see it, its memory is
//! freed and its children are left alone. A shared node's copy shares its children instead (one
//! increment each), which happens once per node after a snapshot. This is why a write costs the
//! path and not the counts of every child, as a tree of `Arc`s would (see `BENCHMARKS.md`).
//!
//! No reader takes a count: readers are protected by the grace period of the map that retires a
//! node (see `grace.rs`), which is why nodes are retired, never freed, by the writer.

use std::marker::PhantomData;
use std::mem::{self, ManuallyDrop};
use std::ptr::NonNull;
use std::sync::atomic::{
    AtomicU64, AtomicUsize, Ordering::Acquire, Ordering::Relaxed, Ordering::Release, fence,
};

use crate::table::Table;

/// Children per inner node, and the hash bits each level uses.
pub(crate) const FANOUT_BITS: u32 = 6;
pub(crate) const FANOUT: usize = 1 << FANOUT_BITS;
/// The hash bit where the root's index starts: above the bits hashbrown indexes a leaf's table by
/// and below the seven it keeps as its in-table tag, like the `Sharded` shard index.
pub(crate) const FIRST_SHIFT: u32 = 25;
/// Inner levels at most (bits 25 to 55); a leaf this deep is never split.
pub(crate) const MAX_DEPTH: usize = 5;

/// The shift of the hash for the index at `depth`.
pub(crate) const fn shift_at(depth: usize) -> u32 {
    FIRST_SHIFT + FANOUT_BITS * depth as u32
}

/// What every node starts with.
#[repr(C)]
pub(crate) struct Header {
    refs: AtomicUsize,
    /// The version of the map that first published this node (0 for a tree built whole before
    /// it is published, until [`Node::stamp`]). A reader whose root is older cannot reach it
    /// (see `grace.rs`).
    born: AtomicU64,
    /// Entries below this node.
    pub(crate) len: usize,
    /// Table capacity below this node.
    pub(crate) capacity: usize,
}

/// An inner node. Children above `mask` are `None` (only a snapshot of a `Sharded` map with fewer
/// than 64 shards has such a node).
#[repr(C)]
pub(crate) struct Inner<K, V> {
    header: Header,
    shift: u32,
    mask: u32,
    children: [Option<Node<K, V>>; FANOUT],
}

/// A leaf: one hash table of the entries whose hashes lead here.
#[repr(C)]
pub(crate) struct Leaf<K, V> {
    header: Header,
    /// The length above which a write splits this leaf (raised after a split failed).
    pub(crate) split_above: usize,
    pub(crate) table: Table<K, V>,
}

/// A counted handle on a node (the low bit of the pointer: 1 for an inner node).
pub(crate) struct Node<K, V> {
    ptr: NonNull<Header>,
    _owns: PhantomData<(Box<Inner<K, V>>, Box<Leaf<K, V>>)>,
}

// SAFETY: a `Node` shares immutable nodes between threads like an `Arc` does (the count is atomic,
// and the node is freed by whichever holder releases it last or by the map's grace period), so it
// is `Send` and `Sync` exactly when `Arc<(K, V)>` would be: when `K` and `V` are both.
unsafe impl<K: Send + Sync, V: Send + Sync> Send for Node<K, V> {}
// SAFETY: as above.
unsafe impl<K: Send + Sync, V: Send + Sync> Sync for Node<K, V> {}

/// A node, borrowed.
pub(crate) enum NodeRef<'a, K, V> {
    Inner(&'a Inner<K, V>),
    Leaf(&'a Leaf<K, V>),
}

impl<'a, K, V> NodeRef<'a, K, V> {
    pub(crate) fn header(&self) -> &'a Header {
        match self {
            NodeRef::Inner(inner) => &inner.header,
            NodeRef::Leaf(leaf) => &leaf.header,
        }
    }
}

impl<K, V> Clone for NodeRef<'_, K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, V> Copy for NodeRef<'_, K, V> {}

const INNER_TAG: usize = 1;

impl<K, V> Node<K, V> {
    /// A new leaf holding `table`, with a count of one.
    pub(crate) fn leaf(table: Table<K, V>, split_above: usize) -> Self {
        let leaf = Box::new(Leaf {
            header: Header {
                refs: AtomicUsize::new(1),
                born: AtomicU64::new(0),
                len: table.len(),
                capacity: table.capacity(),
            },
            split_above,
            table,
        });
        Node {
            ptr: NonNull::from(Box::leak(leaf)).cast(),
            _owns: PhantomData,
        }
    }

    /// A new inner node indexing by `(hash >> shift) & mask`, with a count of one.
    pub(crate) fn inner(shift: u32, mask: u32, children: [Option<Node<K, V>>; FANOUT]) -> Self {
        let (len, capacity) = children.iter().flatten().fold((0, 0), |(len, cap), child| {
            let header = child.header();
            (len + header.len, cap + header.capacity)
        });
        Self::inner_sized(shift, mask, children, len, capacity)
    }

    /// [`Node::inner`] whose children hold `len` entries and `capacity` in all (a path copy knows
    /// them without reading every child).
    pub(crate) fn inner_sized(
        shift: u32,
        mask: u32,
        children: [Option<Node<K, V>>; FANOUT],
        len: usize,
        capacity: usize,
    ) -> Self {
        debug_assert!((mask as usize) < FANOUT && (mask + 1).is_power_of_two());
        debug_assert!(
            children
                .iter()
                .enumerate()
                .all(|(i, c)| c.is_some() == (i <= mask as usize))
        );
        let inner = Box::new(Inner {
            header: Header {
                refs: AtomicUsize::new(1),
                born: AtomicU64::new(0),
                len,
                capacity,
            },
            shift,
            mask,
            children,
        });
        let ptr = NonNull::from(Box::leak(inner)).cast::<Header>();
        Node {
            ptr: ptr.map_addr(|addr| addr | INNER_TAG),
            _owns: PhantomData,
        }
    }

    fn is_inner(&self) -> bool {
        self.ptr.addr().get() & INNER_TAG != 0
    }

    fn untagged(&self) -> NonNull<Header> {
        untag(self.ptr)
    }

    /// The node.
    #[inline(always)]
    pub(crate) fn get(&self) -> NodeRef<'_, K, V> {
        // SAFETY: a `Node` owns a count, so its node is alive for as long as it is borrowed.
        unsafe { Self::deref(self.ptr) }
    }

    /// The node's header.
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: as in `get`; both kinds start with the header (`repr(C)`).
        unsafe { self.untagged().as_ref() }
    }

    /// Another handle on the same node: one increment.
    pub(crate) fn share(&self) -> Self {
        // Relaxed, as `Arc::clone`: the new handle is made from one that keeps the node alive.
        self.header().refs.fetch_add(1, Relaxed);
        Node {
            ptr: self.ptr,
            _owns: PhantomData,
        }
    }

    fn is_unique(&self) -> bool {
        self.header().is_unique()
    }

    /// The header of the node at tagged address `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` must be a live node's tagged address, alive for `'a`.
    pub(crate) unsafe fn header_at<'a>(ptr: NonNull<Header>) -> &'a Header {
        let untagged = ptr.map_addr(|a| {
            std::num::NonZero::new(a.get() & !INNER_TAG).expect("a node address is not 0")
        });
        // SAFETY: the caller's contract; both kinds start with the header.
        unsafe { untagged.as_ref() }
    }

    /// Stamps this node and every node below it as first published by `version`.
    ///
    /// Only for nodes nobody else has seen yet: a tree just built (stamping an older, shared node
    /// younger would let a grace period free it while an old reader can reach it).
    pub(crate) fn stamp(&self, version: u64) {
        self.header().born.store(version, Relaxed);
        if let NodeRef::Inner(inner) = self.get() {
            for child in inner.children.iter().flatten() {
                child.stamp(version);
            }
        }
    }

    /// The tagged address, for a root slot (see [`Node::from_raw`]).
    pub(crate) fn into_raw(self) -> *mut u8 {
        let ptr = self.ptr.as_ptr().cast::<u8>();
        mem::forget(self);
        ptr
    }

    /// The handle [`Node::into_raw`] gave up.
    ///
    /// # Safety
    ///
    /// `raw` must come from `into_raw`, and its count not have been taken back since.
    pub(crate) unsafe fn from_raw(raw: *mut u8) -> Self {
        Node {
            // SAFETY: the caller's contract: a node's non-null address.
            ptr: unsafe { NonNull::new_unchecked(raw.cast()) },
            _owns: PhantomData,
        }
    }

    /// The node at a tagged address.
    ///
    /// # Safety
    ///
    /// `ptr` must be the tagged address of a node that stays alive for `'a`.
    #[inline(always)]
    pub(crate) unsafe fn deref<'a>(ptr: NonNull<Header>) -> NodeRef<'a, K, V> {
        let addr = ptr.addr().get();
        if addr & INNER_TAG != 0 {
            let inner = ptr.map_addr(|a| {
                std::num::NonZero::new(a.get() & !INNER_TAG).expect("a node address is not 0")
            });
            // SAFETY: the caller's contract; the tag says it is an `Inner`.
            NodeRef::Inner(unsafe { inner.cast::<Inner<K, V>>().as_ref() })
        } else {
            // SAFETY: the caller's contract; the tag says it is a `Leaf`.
            NodeRef::Leaf(unsafe { ptr.cast::<Leaf<K, V>>().as_ref() })
        }
    }

    /// Gives up this handle's count. The last one returns the node, [`Dead`]: nobody holds it, but
    /// a reader may still see it, so it is freed only once the map's grace period has passed.
    #[must_use]
    pub(crate) fn release(self) -> Option<Dead<K, V>> {
        let this = ManuallyDrop::new(self);
        if this.header().refs.fetch_sub(1, Release) != 1 {
            return None;
        }
        // Every other holder's uses happen before the node is freed (as in `Arc`'s drop).
        fence(Acquire);
        Some(Dead {
            ptr: this.ptr,
            _owns: PhantomData,
        })
    }

    /// Takes this handle as the node's last one without a decrement (it must be unique, see
    /// [`Header::is_unique`], and stay so: its holder is the live tree, and it leaves it).
    pub(crate) fn into_dead(self) -> Dead<K, V> {
        debug_assert!(self.is_unique());
        let this = ManuallyDrop::new(self);
        Dead {
            ptr: this.ptr,
            _owns: PhantomData,
        }
    }
}

/// Frees the node at tagged address `ptr`, giving up its children's counts (for a leaf: dropping
/// its entries).
///
/// # Safety
///
/// The node's count must have reached zero (or been the last, see [`Node::into_dead`]), and no
/// reader can still see it.
unsafe fn free<K, V>(ptr: NonNull<Header>) {
    if ptr.addr().get() & INNER_TAG != 0 {
        // SAFETY: the caller's contract; the tag says it is an `Inner` made by `Box`.
        let inner = unsafe { Box::from_raw(untag(ptr).cast::<Inner<K, V>>().as_ptr()) };
        // The children are dropped as plain handles, freeing those this node held last: they
        // left the live tree when this node did (only this node held them, and it was
        // unreachable once retired), so the grace period that frees this node covers them.
        drop(inner);
    } else {
        // SAFETY: the caller's contract; a `Leaf` made by `Box`.
        drop(unsafe { Box::from_raw(ptr.cast::<Leaf<K, V>>().as_ptr()) });
    }
}

/// The address without its tag bit.
fn untag(ptr: NonNull<Header>) -> NonNull<Header> {
    ptr.map_addr(|addr| {
        // The tag is the low bit of an address aligned to at least 8.
        std::num::NonZero::new(addr.get() & !INNER_TAG).expect("a node address is not 0")
    })
}

impl<K, V> Drop for Node<K, V> {
    /// A handle dropped outside the trie's protocol frees its node at once if it was the last:
    /// only handles no reader can reach end this way (a tree being built, a failed write's copy,
    /// the children of a node being freed, the trees of a map being dropped, of snapshots of no
    /// live map).
    fn drop(&mut self) {
        if self.header().refs.fetch_sub(1, Release) == 1 {
            fence(Acquire);
            // SAFETY: the count reached zero; no reader can reach the node (see above).
            unsafe { free::<K, V>(self.ptr) };
        }
    }
}

/// A node nobody holds any more, freed (with its children's counts and entries) when dropped:
/// the map's grace period keeps it until no reader can see it.
pub(crate) struct Dead<K, V> {
    ptr: NonNull<Header>,
    _owns: PhantomData<Node<K, V>>,
}

// SAFETY: it owns the node as a last `Node` handle does.
unsafe impl<K: Send + Sync, V: Send + Sync> Send for Dead<K, V> {}

impl<K, V> Dead<K, V> {
    /// The entries below it.
    pub(crate) fn entries(&self) -> usize {
        // SAFETY: alive until dropped; every node starts with its header.
        unsafe { untag(self.ptr).as_ref() }.len
    }

    /// The version below which a reader may reach what freeing this frees: its own for a leaf;
    /// 0 for an inner node, which frees the children it held last, older nodes an old reader can
    /// reach through another (hollow) parent.
    pub(crate) fn reachable_from(&self) -> u64 {
        if self.ptr.addr().get() & INNER_TAG != 0 {
            0
        } else {
            // SAFETY: alive until dropped; a leaf's header.
            unsafe { self.ptr.as_ref() }.born()
        }
    }
}

impl<K, V> Drop for Dead<K, V> {
    fn drop(&mut self) {
        // SAFETY: a `Dead` is made only from a count that reached zero (`release`) or a unique
        // handle leaving the live tree (`into_dead`), and is dropped only after the grace period
        // of the map it was retired in (or where no reader exists).
        unsafe { free::<K, V>(self.ptr) };
    }
}

/// An inner node whose children were adopted by its copy: freeing it frees its memory only.
pub(crate) struct Hollow<K, V>(NonNull<Inner<K, V>>);

// SAFETY: a `Hollow` owns an allocation that holds no values of `K` or `V` any more (its children
// belong to its copy); it is freed by whichever thread collects it.
unsafe impl<K, V> Send for Hollow<K, V> {}

impl<K, V> Hollow<K, V> {
    /// Its own version: freeing it frees nothing else.
    pub(crate) fn reachable_from(&self) -> u64 {
        // SAFETY: alive until dropped.
        unsafe { self.0.as_ref() }.header.born()
    }
}

impl<K, V> Drop for Hollow<K, V> {
    fn drop(&mut self) {
        // SAFETY: made by `Inner::adopt`, from a `Box`, and dropped after the grace period.
        let inner = unsafe { Box::from_raw(self.0.as_ptr()) };
        // The children now belong to the copy.
        inner.children.into_iter().flatten().for_each(mem::forget);
    }
}

impl Header {
    /// Stamps this node alone (a path copy, whose children are older).
    pub(crate) fn stamp_alone(&self, version: u64) {
        self.born.store(version, Relaxed);
    }

    /// See [`Header::born`](Header).
    #[inline(always)]
    pub(crate) fn born(&self) -> u64 {
        self.born.load(Relaxed)
    }

    /// Whether the node has one holder. Stable while it is true for a holder that keeps its handle:
    /// only a holder can make another (`share`).
    pub(crate) fn is_unique(&self) -> bool {
        self.refs.load(Acquire) == 1
    }
}

impl<K, V> Inner<K, V> {
    pub(crate) fn header(&self) -> &Header {
        &self.header
    }

    /// The index of `hash`'s child.
    #[inline(always)]
    pub(crate) fn index(&self, hash: u64) -> usize {
        ((hash >> self.shift) as usize) & self.mask as usize
    }

    /// The child `hash` leads to.
    #[inline(always)]
    pub(crate) fn child(&self, hash: u64) -> NodeRef<'_, K, V> {
        let index = self.index(hash);
        // SAFETY: `index <= mask`, and the children up to `mask` are `Some` (`Node::inner`).
        let child = unsafe { self.children.get_unchecked(index).as_ref().unwrap_unchecked() };
        child.get()
    }

    /// The children, in index order (`None` above `mask`).
    pub(crate) fn children(&self) -> &[Option<Node<K, V>>; FANOUT] {
        &self.children
    }

    pub(crate) fn shift(&self) -> u32 {
        self.shift
    }

    pub(crate) fn mask(&self) -> u32 {
        self.mask
    }

    /// A copy's children that share this node's, but for `except`: one increment each (this node
    /// stays alive in a snapshot, holding them too).
    pub(crate) fn shared_children_except(&self, except: usize) -> [Option<Node<K, V>>; FANOUT] {
        std::array::from_fn(|i| {
            (i != except)
                .then(|| self.children[i].as_ref().map(Node::share))
                .flatten()
        })
    }
}

impl<K, V> Node<K, V> {
    /// A copy's children taken over from this inner node, which is unique (see
    /// [`Node::is_unique`]) and leaves the live tree now: no count changes. The node comes back
    /// [`Hollow`], to be freed after the grace period without touching its children.
    ///
    /// # Safety
    ///
    /// `self` must be the live tree's unique handle on an inner node, whose holder (the parent or
    /// the root slot) forgets it: the parent is hollow too, or the root slot is overwritten.
    pub(crate) unsafe fn adopt(self) -> ([Option<Node<K, V>>; FANOUT], Hollow<K, V>) {
        debug_assert!(self.is_inner() && self.is_unique());
        let ptr = self.untagged().cast::<Inner<K, V>>();
        mem::forget(self);
        // SAFETY: the node is alive (the live tree held it) and its children are copied bit for
        // bit: from now on the copies own the counts, and `Hollow` never drops the originals.
        let children = unsafe { std::ptr::read(&ptr.as_ref().children) };
        (children, Hollow(ptr))
    }

    /// The live tree's handle on the node at tagged address `raw` (a child of a hollow parent, or
    /// the root slot's), taken back to be retired or released.
    ///
    /// # Safety
    ///
    /// `raw` must be a handle's address whose holder forgets it (a hollow parent, a root slot
    /// that is overwritten); at most once for each such holder.
    pub(crate) unsafe fn take_back(raw: NonNull<Header>) -> Self {
        Node {
            ptr: raw,
            _owns: PhantomData,
        }
    }

    /// The tagged address, to find this handle again with [`Node::take_back`].
    pub(crate) fn addr(&self) -> NonNull<Header> {
        self.ptr
    }
}
