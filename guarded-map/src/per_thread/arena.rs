//! [`Arena`]: the memory one thread's per-thread values live in.
//!
//! Every value a thread holds for any object sits in its arena, beside that thread's values for
//! other objects and never beside another thread's. A value is written by its thread on every
//! operation that counts in it, so two threads' values on one cache line would make each of those
//! writes wait for the other core. The `thread_local` crate places one object's values for all
//! threads side by side instead, which needs a padded line (128 bytes on x86_64) per value and
//! made a map cost some 500 bytes for every thread that read it; here a value takes its own size
//! (an `Rcu` reader: 32 bytes).
//!
//! Written by hand because a general allocator promises nothing about whose allocations share a
//! line. Memory comes in chunks of [`CHUNK`] bytes, aligned to their size, each holding slots of
//! one size; a slot finds its chunk's header by masking its address. A freed slot goes back to its
//! chunk, and a chunk whose slots are all free is returned to the allocator (unless it is the
//! last one of its size with room, which the next value takes). All headers and free lists are
//! behind the arena's lock; the values themselves are not the arena's business.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::cell::UnsafeCell;
use std::ptr::{self, NonNull};

use crate::sync::Mutex;

/// Bytes in a chunk, and its alignment.
const CHUNK: usize = 4096;
/// Where a chunk's slots begin: its header has a line of its own (the arena's lock is taken to
/// change it, from any thread; the slots beside it are written by the arena's thread).
const HEADER: usize = 64;
/// The largest slot (and alignment) an arena serves.
const MAX_SLOT: usize = 1024;

/// The memory of the values of one thread number (see `home.rs`): used by one thread at a time,
/// and by any thread that frees a value of it.
pub(crate) struct Arena {
    state: Mutex<State>,
}

// The arena's lock guards every header and free slot; the raw pointers in them are its own.
struct State {
    /// For each slot size served: the chunks with a free slot, the newest last.
    sizes: Vec<Size>,
}

// SAFETY: the pointers in `State` point into chunks this arena owns; they are followed only under
// the arena's lock, from whichever thread holds it.
unsafe impl Send for State {}

struct Size {
    layout: Layout,
    /// Chunks of this size with at least one free slot.
    room: Vec<NonNull<Chunk>>,
}

/// A chunk's header, at its start; its slots follow from [`HEADER`].
struct Chunk {
    /// Read without the lock (to find the lock): never changed.
    arena: &'static Arena,
    /// Changed only under the arena's lock.
    slots: UnsafeCell<Slots>,
}

/// The slots of a chunk.
struct Slots {
    layout: Layout,
    /// Slots handed out and not freed.
    live: usize,
    /// Freed slots, each holding the next one's address.
    free: *mut u8,
    /// Offset of the first slot never handed out.
    fresh: usize,
}

impl Slots {
    fn has_room(&self) -> bool {
        !self.free.is_null() || self.fresh + self.layout.size() <= CHUNK
    }
}

impl Arena {
    /// A new, empty arena, which lives as long as the process (its thread number is reused).
    pub(crate) fn leak() -> &'static Arena {
        Box::leak(Box::new(Arena {
            state: Mutex::new(State { sizes: Vec::new() }),
        }))
    }

    /// Moves `value` into a slot of this arena. The caller frees it with [`free`].
    pub(crate) fn alloc<T>(&'static self, value: T) -> NonNull<T> {
        const {
            assert!(
                size_of::<Chunk>() <= HEADER
                    && size_of::<T>() <= MAX_SLOT
                    && align_of::<T>() <= HEADER
            )
        };
        // At least a word, aligned for one: a free slot holds the next one's address (and a
        // zero-sized value still gets a slot of its own).
        let align = align_of::<T>().max(align_of::<*mut u8>());
        let size = size_of::<T>()
            .max(size_of::<*mut u8>())
            .next_multiple_of(align);
        let layout = Layout::from_size_align(size, align).expect("a small layout");
        let mut state = self.state.lock();
        let at = match state.sizes.iter().position(|s| s.layout == layout) {
            Some(at) => at,
            None => {
                state.sizes.push(Size {
                    layout,
                    room: Vec::new(),
                });
                state.sizes.len() - 1
            }
        };
        let size = &mut state.sizes[at];
        let chunk = match size.room.last() {
            Some(&chunk) => chunk,
            None => {
                let chunk = new_chunk(self, layout);
                size.room.push(chunk);
                chunk
            }
        };
        // SAFETY: the chunk is this arena's and alive (it is in `room`), and its slots' state is
        // reached only under the lock we hold.
        let header = unsafe { &mut *(*chunk.as_ptr()).slots.get() };
        let slot = if header.free.is_null() {
            // SAFETY: `has_room` held (the chunk is in `room`), so the slot lies inside the chunk.
            let slot = unsafe { chunk.as_ptr().cast::<u8>().add(header.fresh) };
            header.fresh += layout.size();
            slot
        } else {
            let slot = header.free;
            // SAFETY: a free slot holds the next free slot's address, written by `free`.
            header.free = unsafe { slot.cast::<*mut u8>().read() };
            slot
        };
        header.live += 1;
        if !header.has_room() {
            size.room.pop();
        }
        drop(state);
        let slot = slot.cast::<T>();
        // SAFETY: the slot is inside a live chunk, aligned for `T` (chunk and offsets are multiples
        // of the layout's alignment), large enough, and handed out to no one else until freed.
        unsafe { slot.write(value) };
        // SAFETY: derived from the chunk's non-null pointer by an in-bounds offset.
        unsafe { NonNull::new_unchecked(slot) }
    }
}

/// Drops the value at `value` and returns its slot to the arena it came from.
///
/// # Safety
///
/// `value` came from [`Arena::alloc`], is freed once, and nothing uses it after this call.
pub(crate) unsafe fn free<T>(value: NonNull<T>) {
    // SAFETY: the caller's contract: the value is alive and no longer used.
    unsafe { ptr::drop_in_place(value.as_ptr()) };
    let slot = value.as_ptr().cast::<u8>();
    let chunk = slot.map_addr(|addr| addr & !(CHUNK - 1)).cast::<Chunk>();
    // SAFETY: chunks are aligned to `CHUNK` and the slot is inside one, so masking finds its header
    // (with the provenance of the chunk's allocation, which the slot's pointer carries). The
    // arena lives forever.
    let arena = unsafe { (*chunk).arena };
    let mut state = arena.state.lock();
    // SAFETY: the slots' state is reached only under this lock; the chunk is alive, since it
    // holds a live slot (this one).
    let header = unsafe { &mut *(*chunk).slots.get() };
    let had_room = header.has_room();
    // SAFETY: the slot is at least a word, aligned for one, and no longer in use.
    unsafe { slot.cast::<*mut u8>().write(header.free) };
    header.free = slot;
    header.live -= 1;
    let layout = header.layout;
    let size = state
        .sizes
        .iter_mut()
        .find(|s| s.layout == layout)
        .expect("a chunk's size is listed in its arena");
    // SAFETY: from a live chunk's header pointer.
    let chunk = unsafe { NonNull::new_unchecked(chunk) };
    if !had_room {
        size.room.push(chunk);
    }
    if header.live == 0 && size.room.len() > 1 {
        // Empty, and another chunk of this size has room: give the memory back.
        let at = size.room.iter().position(|&c| c == chunk);
        size.room.swap_remove(at.expect("an empty chunk has room"));
        // SAFETY: allocated by `new_chunk` with `chunk_layout()`; no slot of it is live and it
        // is in no list any more.
        unsafe { dealloc(chunk.as_ptr().cast(), chunk_layout()) };
    }
}

fn chunk_layout() -> Layout {
    Layout::from_size_align(CHUNK, CHUNK).expect("a power of two")
}

/// A new chunk of `arena` for slots of `layout`.
fn new_chunk(arena: &'static Arena, layout: Layout) -> NonNull<Chunk> {
    // SAFETY: the layout has a non-zero size.
    let memory = unsafe { alloc(chunk_layout()) };
    let Some(chunk) = NonNull::new(memory.cast::<Chunk>()) else {
        handle_alloc_error(chunk_layout())
    };
    // SAFETY: fresh memory, aligned for a header and large enough for one.
    unsafe {
        chunk.as_ptr().write(Chunk {
            arena,
            slots: UnsafeCell::new(Slots {
                layout,
                live: 0,
                free: ptr::null_mut(),
                fresh: HEADER.next_multiple_of(layout.align()),
            }),
        })
    };
    chunk
}

#[cfg(test)]
mod tests {
    use super::{Arena, CHUNK, HEADER, free};

    /// A new arena, kept reachable (as a thread's arena is, from the table of numbers) so that
    /// Miri's leak check does not report it.
    fn arena() -> &'static Arena {
        static KEPT: std::sync::Mutex<Vec<&'static Arena>> = std::sync::Mutex::new(Vec::new());
        let arena = Arena::leak();
        KEPT.lock().unwrap().push(arena);
        arena
    }

    #[test]
    fn slots_are_reused_and_empty_chunks_returned() {
        let arena = arena();
        let per_chunk = (CHUNK - HEADER) / 32;
        let many = if cfg!(miri) {
            per_chunk + 3
        } else {
            5 * per_chunk
        };
        let values: Vec<_> = (0..many as u64)
            .map(|i| arena.alloc([i, i + 1, i + 2, i + 3]))
            .collect();
        for (i, v) in values.iter().enumerate() {
            // SAFETY: allocated above and not freed yet.
            let first = unsafe { v.read() }[0];
            assert_eq!(first, i as u64, "no two values share a slot");
        }
        let chunks = |arena: &Arena| arena.state.lock().sizes[0].room.len();
        for v in values {
            // SAFETY: allocated above, freed once.
            unsafe { free(v) };
        }
        assert_eq!(chunks(arena), 1, "only one empty chunk is kept");
        let again = arena.alloc([7u64; 4]);
        // SAFETY: just allocated.
        assert_eq!(unsafe { again.read() }, [7; 4]);
        // SAFETY: allocated above, freed once.
        unsafe { free(again) };
    }

    #[test]
    fn sizes_get_chunks_of_their_own_and_values_are_dropped() {
        use std::sync::Arc;
        let arena = arena();
        let shared = Arc::new(());
        let a = arena.alloc(Arc::clone(&shared));
        let b = arena.alloc(7u8);
        let c = arena.alloc(());
        assert_eq!(Arc::strong_count(&shared), 2);
        // SAFETY: each allocated above, freed once.
        unsafe { free(a) };
        // SAFETY: as above.
        unsafe { free(b) };
        // SAFETY: as above.
        unsafe { free(c) };
        assert_eq!(Arc::strong_count(&shared), 1, "freeing drops the value");
    }
}
