//! The nodes of a hash trie, and the only code that handles their reference counts.
//!
//! A node is an [`Inner`] node (64 children, chosen by six bits of the hash) or a [`Leaf`] (a
//! hash table). A [`Node`] is a counted handle, like an `Arc`, whose pointer's low bit says which
//! kind it points to (set for a leaf, so that walking inner nodes needs no masking). Every holder
//! owns one count: the live map's root slot, an inner node for each of its children, a snapshot
//! for its root.
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
use std::ptr::{self, NonNull};
use std::sync::atomic::{
    AtomicU64, AtomicUsize, Ordering::Acquire, Ordering::Relaxed, Ordering::Release, fence,
};

use crate::table::Table;

/// The hash bits the root indexes by, and the bits of every deeper level: a wide root, and
/// narrower levels below, so that a split leaf's entries are shared out among 16 leaves, not 64
/// (fewer and fuller leaves: less of each cache line a lookup reads is empty; see
/// `BENCHMARKS.md`, "Rcu writes").
const ROOT_BITS: u32 = 6;
const LEVEL_BITS: u32 = 4;
/// The hash bit where the root's index starts: above the bits hashbrown indexes a leaf's table by
/// and below the seven it keeps as its in-table tag, like the `Sharded` shard index.
pub(crate) const FIRST_SHIFT: u32 = 25;
/// Inner levels at most (bits 25 to 55); a leaf this deep is never split.
pub(crate) const MAX_DEPTH: usize = 7;

/// The hash bits the index at `depth` takes.
pub(crate) const fn bits_at(depth: usize) -> u32 {
    if depth == 0 { ROOT_BITS } else { LEVEL_BITS }
}

/// The shift of the hash for the index at `depth`.
pub(crate) const fn shift_at(depth: usize) -> u32 {
    if depth == 0 {
        FIRST_SHIFT
    } else {
        FIRST_SHIFT + ROOT_BITS + LEVEL_BITS * (depth as u32 - 1)
    }
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

/// An inner node at `depth`, indexing its children by the hash bits `bits_at(depth)` from
/// `shift_at(depth)`: `N` slots, its level's fanout (64 at the root, 16 below), so that a write
/// copies no empty slots.
///
/// Only children up to `mask` are distinct; those above it repeat them (`i & mask`). A tree made
/// from a `Sharded` map's shards has such nodes when its shard count does not fill a level; the
/// trees an `Rcu` map writes have none. Lookups index the fanout alike; walks stop at `mask`.
#[repr(C)]
struct InnerOf<K, V, const N: usize> {
    head: InnerHead,
    children: [Node<K, V>; N],
}

/// What every inner node starts with, whatever its width.
#[repr(C)]
struct InnerHead {
    header: Header,
    depth: u32,
    mask: u32,
}

const ROOT_SLOTS: usize = 1 << ROOT_BITS;
const LEVEL_SLOTS: usize = 1 << LEVEL_BITS;

/// Where the children start: the same for both widths (`repr(C)`, the same head).
const CHILDREN: usize = mem::offset_of!(InnerOf<(), (), ROOT_SLOTS>, children);
const _: () = assert!(CHILDREN == mem::offset_of!(InnerOf<(), (), LEVEL_SLOTS>, children));

/// An inner node, borrowed: a pointer to its allocation (not a reference to one width's type, so
/// that its slots are reached with the whole allocation's provenance).
pub(crate) struct Inner<'a, K, V> {
    ptr: NonNull<InnerHead>,
    _tree: PhantomData<&'a Node<K, V>>,
}

impl<K, V> Clone for Inner<'_, K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, V> Copy for Inner<'_, K, V> {}

/// A leaf: one hash table of the entries whose hashes lead here.
#[repr(C)]
pub(crate) struct Leaf<K, V> {
    header: Header,
    /// The length above which a write splits this leaf (raised after a split failed).
    pub(crate) split_above: usize,
    pub(crate) table: Table<K, V>,
}

/// A counted handle on a node.
pub(crate) struct Node<K, V> {
    /// The node's address, plus [`LEAF_TAG`] for a leaf.
    ptr: NonNull<u8>,
    _owns: PhantomData<Owns<K, V>>,
}

/// What a [`Node`] owns, for the compiler's drop check and auto traits.
type Owns<K, V> = (Box<InnerOf<K, V, ROOT_SLOTS>>, Box<Leaf<K, V>>);

// SAFETY: a `Node` shares immutable nodes between threads like an `Arc` does (the count is atomic,
// and the node is freed by whichever holder releases it last or by the map's grace period), so it
// is `Send` and `Sync` exactly when `Arc<(K, V)>` would be: when `K` and `V` are both.
unsafe impl<K: Send + Sync, V: Send + Sync> Send for Node<K, V> {}
// SAFETY: as above.
unsafe impl<K: Send + Sync, V: Send + Sync> Sync for Node<K, V> {}

/// A node, borrowed.
pub(crate) enum NodeRef<'a, K, V> {
    Inner(Inner<'a, K, V>),
    Leaf(&'a Leaf<K, V>),
}

impl<'a, K, V> NodeRef<'a, K, V> {
    pub(crate) fn header(&self) -> &'a Header {
        match self {
            NodeRef::Inner(inner) => inner.header(),
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

const LEAF_TAG: usize = 1;

/// The node's header at a tagged address (both kinds start with it).
fn untag(ptr: NonNull<u8>) -> NonNull<Header> {
    // SAFETY: node addresses are aligned to at least 8 and not null, so clearing bit 0 of one
    // (tagged or not) leaves it non-null.
    unsafe { NonNull::new_unchecked(ptr.as_ptr().map_addr(|addr| addr & !LEAF_TAG).cast()) }
}

/// The leaf reached from the node at tagged address `node` down the path of `hash`.
///
/// # Safety
///
/// `node` must be a tagged node address whose tree stays alive for `'a`.
#[inline(always)]
pub(crate) unsafe fn leaf_of<'a, K, V>(node: NonNull<u8>, hash: u64) -> &'a Leaf<K, V> {
    let mut ptr = node.as_ptr();
    let (mut shift, mut mask) = (FIRST_SHIFT, (1usize << ROOT_BITS) - 1);
    while ptr.addr() & LEAF_TAG == 0 {
        // SAFETY: an untagged address is an inner node of the tree (the caller's contract), at
        // the depth this loop has reached, with one child per slot of its level's fanout
        // (`mask + 1`), reached with the allocation's provenance.
        let child = unsafe {
            let index = ((hash >> shift) as usize) & mask;
            &*ptr.add(CHILDREN).cast::<Node<K, V>>().add(index)
        };
        ptr = child.ptr.as_ptr();
        shift += if mask == (1 << ROOT_BITS) - 1 {
            ROOT_BITS
        } else {
            LEVEL_BITS
        };
        mask = (1 << LEVEL_BITS) - 1;
    }
    // SAFETY: a tagged address is a leaf's plus one, alive for `'a` (the caller's contract).
    unsafe { &*ptr.wrapping_byte_sub(LEAF_TAG).cast::<Leaf<K, V>>() }
}

impl<K, V> Node<K, V> {
    /// A new leaf holding `table`, with a count of one.
    pub(crate) fn leaf(table: Table<K, V>, split_above: usize) -> Self {
        let leaf = Box::new(Leaf {
            header: Header::new(table.len(), table.capacity()),
            split_above,
            table,
        });
        Node {
            ptr: NonNull::from(Box::leak(leaf))
                .cast::<u8>()
                .map_addr(|addr| addr | LEAF_TAG),
            _owns: PhantomData,
        }
    }

    /// A new inner node at `depth` over `children` (one per slot of its level's fanout), of
    /// which those up to `mask` are distinct and the others repeat them (see [`InnerOf`]), with a
    /// count of one.
    pub(crate) fn inner(depth: usize, mask: u32, children: Vec<Node<K, V>>) -> Self {
        let (len, capacity) =
            children[..=mask as usize]
                .iter()
                .fold((0, 0), |(len, cap), child| {
                    let header = child.header();
                    (len + header.len, cap + header.capacity)
                });
        let head = InnerHead {
            header: Header::new(len, capacity),
            depth: depth as u32,
            mask,
        };
        debug_assert!(mask < 1 << bits_at(depth) && (mask + 1).is_power_of_two());
        fn boxed<K, V, const N: usize>(head: InnerHead, children: Vec<Node<K, V>>) -> NonNull<u8> {
            let children: [Node<K, V>; N] = children
                .try_into()
                .unwrap_or_else(|_| panic!("one child per slot of the level"));
            NonNull::from(Box::leak(Box::new(InnerOf { head, children }))).cast()
        }
        let ptr = if depth == 0 {
            boxed::<K, V, ROOT_SLOTS>(head, children)
        } else {
            boxed::<K, V, LEVEL_SLOTS>(head, children)
        };
        Node {
            ptr,
            _owns: PhantomData,
        }
    }

    /// The node.
    #[inline(always)]
    pub(crate) fn get(&self) -> NodeRef<'_, K, V> {
        // SAFETY: a `Node` owns a count, so its node is alive for as long as it is borrowed.
        unsafe { Self::deref(self.ptr) }
    }

    /// The node's header.
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: as in `get`.
        unsafe { untag(self.ptr).as_ref() }
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

    /// Stamps this node and every node below it as first published by `version`.
    ///
    /// Only for nodes nobody else has seen yet: a tree just built (stamping an older, shared node
    /// younger would let a grace period free it while an old reader can reach it).
    pub(crate) fn stamp(&self, version: u64) {
        self.header().stamp_alone(version);
        if let NodeRef::Inner(inner) = self.get() {
            for child in inner.distinct() {
                child.stamp(version);
            }
        }
    }

    /// The tagged address, for a root slot (see [`Node::from_raw`]).
    pub(crate) fn into_raw(self) -> *mut u8 {
        ManuallyDrop::new(self).ptr.as_ptr()
    }

    /// The handle [`Node::into_raw`] gave up.
    ///
    /// # Safety
    ///
    /// `raw` must come from `into_raw`, and its count not have been taken back since.
    pub(crate) unsafe fn from_raw(raw: *mut u8) -> Self {
        Node {
            // SAFETY: the caller's contract: a node's non-null address.
            ptr: unsafe { NonNull::new_unchecked(raw) },
            _owns: PhantomData,
        }
    }

    /// The handle at tagged address `raw` (a child of a hollow parent, or the root slot's), taken
    /// back from the holder that forgets it, to be retired or released.
    ///
    /// # Safety
    ///
    /// `raw` must be a handle's address whose holder forgets it (a hollow parent, a root slot
    /// that is overwritten); at most once for each such holder.
    pub(crate) unsafe fn take_back(raw: NonNull<u8>) -> Self {
        Node {
            ptr: raw,
            _owns: PhantomData,
        }
    }

    /// The tagged address, to find this handle again with [`Node::take_back`].
    pub(crate) fn addr(&self) -> NonNull<u8> {
        self.ptr
    }

    /// The node at a tagged address.
    ///
    /// # Safety
    ///
    /// `ptr` must be the tagged address of a node that stays alive for `'a`.
    #[inline(always)]
    pub(crate) unsafe fn deref<'a>(ptr: NonNull<u8>) -> NodeRef<'a, K, V> {
        if ptr.addr().get() & LEAF_TAG == 0 {
            // The caller's contract: untagged, it is an inner node alive for `'a`.
            NodeRef::Inner(Inner {
                ptr: ptr.cast(),
                _tree: PhantomData,
            })
        } else {
            // SAFETY: the caller's contract; tagged, it is a `Leaf`'s address plus one.
            NodeRef::Leaf(unsafe { &*ptr.as_ptr().wrapping_byte_sub(LEAF_TAG).cast() })
        }
    }

    /// The header of the node at tagged address `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` must be a live node's tagged address, alive for `'a`.
    pub(crate) unsafe fn header_at<'a>(ptr: NonNull<u8>) -> &'a Header {
        // SAFETY: the caller's contract.
        unsafe { untag(ptr).as_ref() }
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
        debug_assert!(self.header().is_unique());
        Dead {
            ptr: ManuallyDrop::new(self).ptr,
            _owns: PhantomData,
        }
    }

    /// A write's copy of the inner node at tagged address `addr`, with child `index` replaced by
    /// `child`, holding `len` entries and `capacity` in all: one allocation and one copy of the
    /// node. If `unique`, the copy adopts the children (no count changes) and the original comes
    /// back [`Hollow`]; otherwise it shares them (one increment each) and the original is left
    /// to its other holders.
    ///
    /// # Safety
    ///
    /// `addr` must be an inner node of the live tree (all 64 children distinct), alive for this
    /// call. If `unique`, it must be the live tree's only handle on it (see
    /// [`Header::is_unique`]), whose holder (a hollow parent, or the root slot being overwritten)
    /// forgets it. In both cases the original's handle on child `index` is left for the caller:
    /// taken back, or kept by the original.
    pub(crate) unsafe fn copy_path(
        addr: NonNull<u8>,
        index: usize,
        child: Node<K, V>,
        len: usize,
        capacity: usize,
        unique: bool,
    ) -> (Node<K, V>, Option<Hollow<K, V>>) {
        // SAFETY: the caller's contract: a live inner node.
        let depth = unsafe { addr.cast::<InnerHead>().as_ref() }.depth as usize;
        let header = Header::new(len, capacity);
        // SAFETY: the caller's contract, passed on; the width is the node's level's.
        let ptr = unsafe {
            if depth == 0 {
                copy_as::<K, V, ROOT_SLOTS>(addr, index, child, header)
            } else {
                copy_as::<K, V, LEVEL_SLOTS>(addr, index, child, header)
            }
        };
        let copy = Node {
            ptr,
            _owns: PhantomData,
        };
        if !unique {
            let NodeRef::Inner(inner) = copy.get() else {
                unreachable!("a copy of an inner node")
            };
            for (i, shared) in inner.slots().iter().enumerate() {
                if i != index {
                    shared.header().refs.fetch_add(1, Relaxed);
                }
            }
        }
        // `then`, not `then_some`: a `Hollow` made and dropped would free the shared original.
        (copy, unique.then(|| Hollow(addr.cast(), PhantomData)))
    }
}

/// [`Node::copy_path`] for an inner node of `N` slots: one allocation and one bitwise copy, whose
/// duplicated child handles the caller adopts or counts.
///
/// # Safety
///
/// As for `copy_path`; `addr` must be an `InnerOf<K, V, N>`.
unsafe fn copy_as<K, V, const N: usize>(
    addr: NonNull<u8>,
    index: usize,
    child: Node<K, V>,
    header: Header,
) -> NonNull<u8> {
    let old = addr.cast::<InnerOf<K, V, N>>();
    let mut new = Box::<InnerOf<K, V, N>>::new_uninit();
    let copy = new.as_mut_ptr();
    // SAFETY: `old` is a live inner node of this width (the caller's contract); the copy is
    // bitwise, so each child handle is duplicated (see `copy_path`). The header and child `index`
    // are overwritten in place without dropping what the copy put there (bitwise duplicates of
    // live values).
    unsafe {
        debug_assert_eq!(old.as_ref().head.mask as usize, N - 1);
        ptr::copy_nonoverlapping(old.as_ptr(), copy, 1);
        ptr::addr_of_mut!((*copy).head.header).write(header);
        ptr::addr_of_mut!((*copy).children[index]).write(child);
    }
    // SAFETY: every field was written just above.
    NonNull::from(Box::leak(unsafe { new.assume_init() })).cast()
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

/// Frees the node at tagged address `ptr`, giving up its children's counts (for a leaf: dropping
/// its entries).
///
/// # Safety
///
/// The node's count must have reached zero (or been the last, see [`Node::into_dead`]), and no
/// reader can still see it.
unsafe fn free<K, V>(ptr: NonNull<u8>) {
    if ptr.addr().get() & LEAF_TAG == 0 {
        // The children are dropped as plain handles, freeing those this node held last: they
        // left the live tree when this node did (only this node held them, and it was
        // unreachable once retired), so the grace period that frees this node covers them.
        // SAFETY: the caller's contract; untagged, an inner node made by `Box` with its level's
        // width.
        unsafe {
            if ptr.cast::<InnerHead>().as_ref().depth == 0 {
                drop(Box::from_raw(
                    ptr.cast::<InnerOf<K, V, ROOT_SLOTS>>().as_ptr(),
                ));
            } else {
                drop(Box::from_raw(
                    ptr.cast::<InnerOf<K, V, LEVEL_SLOTS>>().as_ptr(),
                ));
            }
        }
    } else {
        // SAFETY: the caller's contract; a `Leaf` made by `Box`, its address plus one.
        drop(unsafe {
            Box::from_raw(
                ptr.as_ptr()
                    .wrapping_byte_sub(LEAF_TAG)
                    .cast::<Leaf<K, V>>(),
            )
        });
    }
}

/// A node nobody holds any more, freed (with its children's counts and entries) when dropped:
/// the map's grace period keeps it until no reader can see it.
pub(crate) struct Dead<K, V> {
    ptr: NonNull<u8>,
    _owns: PhantomData<Node<K, V>>,
}

// SAFETY: it owns the node as a last `Node` handle does.
unsafe impl<K: Send + Sync, V: Send + Sync> Send for Dead<K, V> {}

impl<K, V> Dead<K, V> {
    fn header(&self) -> &Header {
        // SAFETY: alive until dropped.
        unsafe { Node::<K, V>::header_at(self.ptr) }
    }

    /// The entries below it.
    pub(crate) fn entries(&self) -> usize {
        self.header().len
    }

    /// The version below which a reader cannot reach what freeing this frees: its own for a
    /// leaf; 0 for an inner node, which frees the children it held last, older nodes an old
    /// reader can reach through another (hollow) parent.
    pub(crate) fn reachable_from(&self) -> u64 {
        if self.ptr.addr().get() & LEAF_TAG == 0 {
            0
        } else {
            self.header().born()
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
pub(crate) struct Hollow<K, V>(NonNull<InnerHead>, PhantomData<Node<K, V>>);

// SAFETY: a `Hollow` owns an allocation whose values belong to its copy now; it is freed by
// whichever thread collects it.
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
        // SAFETY: made by `Node::copy_path`, from a `Box` of its level's width, and dropped
        // after the grace period. `ManuallyDrop` has the layout of what it wraps: the memory is
        // freed, and the children, which belong to the copy now, are left alone.
        unsafe {
            let ptr = self.0.as_ptr();
            if (*ptr).depth == 0 {
                drop(Box::from_raw(
                    ptr.cast::<ManuallyDrop<InnerOf<K, V, ROOT_SLOTS>>>(),
                ));
            } else {
                drop(Box::from_raw(
                    ptr.cast::<ManuallyDrop<InnerOf<K, V, LEVEL_SLOTS>>>(),
                ));
            }
        }
    }
}

impl Header {
    fn new(len: usize, capacity: usize) -> Self {
        Header {
            refs: AtomicUsize::new(1),
            born: AtomicU64::new(0),
            len,
            capacity,
        }
    }

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

impl<'a, K, V> Inner<'a, K, V> {
    fn head(&self) -> &'a InnerHead {
        // SAFETY: alive for `'a` (see `Node::deref`); the head is a prefix of both widths.
        unsafe { self.ptr.as_ref() }
    }

    pub(crate) fn header(&self) -> &'a Header {
        &self.head().header
    }

    /// All slots: one per child of its level's fanout.
    fn slots(&self) -> &'a [Node<K, V>] {
        let fanout = 1usize << bits_at(self.depth());
        // SAFETY: an inner node of this depth has `fanout` initialized children at `CHILDREN`,
        // reached from the allocation's own pointer; alive for `'a`.
        unsafe {
            std::slice::from_raw_parts(self.ptr.cast::<u8>().as_ptr().add(CHILDREN).cast(), fanout)
        }
    }

    /// The index of `hash`'s child.
    #[inline(always)]
    pub(crate) fn index(&self, hash: u64) -> usize {
        let depth = self.depth();
        ((hash >> shift_at(depth)) as usize) & ((1 << bits_at(depth)) - 1)
    }

    /// The handle on child `index` (below the level's fanout).
    pub(crate) fn child(&self, index: usize) -> &'a Node<K, V> {
        &self.slots()[index]
    }

    /// The distinct children, in index order (see [`InnerOf`]).
    pub(crate) fn distinct(&self) -> &'a [Node<K, V>] {
        &self.slots()[..=self.head().mask as usize]
    }

    pub(crate) fn depth(&self) -> usize {
        self.head().depth as usize
    }
}
