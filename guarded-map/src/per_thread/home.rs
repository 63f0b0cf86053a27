//! A thread's [`Home`]: its number among the threads alive now, and the [`Arena`] its values live
//! in; plus the thread's two fast-path entries (see the module above).
//!
//! Numbers are the smallest free ones, and a thread's number goes back when it exits, with its
//! arena: the next thread to take the number takes over the values the last one left in every
//! object, so counts carry on exactly and an object's table of values is as long as the most
//! threads that ran at once, not as all threads that ever touched it. The number is handed over
//! under one lock, so whatever the old thread wrote happens before the new one's first use.

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ptr;

use super::arena::Arena;
use crate::sync::Mutex;

/// A thread's number and arena.
#[derive(Clone, Copy)]
pub(crate) struct Home {
    /// Its index in every object's table of values.
    pub(crate) number: usize,
    pub(crate) arena: &'static Arena,
}

/// The numbers taken so far, and their arenas.
struct Homes {
    /// Numbers of exited threads, smallest first.
    free: BinaryHeap<Reverse<usize>>,
    /// The arena of each number ever issued; numbers below its length have been.
    arenas: Vec<&'static Arena>,
}

impl Homes {
    fn take(&mut self) -> Home {
        let number = match self.free.pop() {
            Some(Reverse(number)) => number,
            None => {
                self.arenas.push(Arena::leak());
                self.arenas.len() - 1
            }
        };
        Home {
            number,
            arena: self.arenas[number],
        }
    }
}

#[cfg(not(guarded_map_loom))]
static HOMES: Mutex<Homes> = Mutex::new(Homes {
    free: BinaryHeap::new(),
    arenas: Vec::new(),
});

#[cfg(guarded_map_loom)]
loom::lazy_static! {
    static ref HOMES: Mutex<Homes> = Mutex::new(Homes {
        free: BinaryHeap::new(),
        arenas: Vec::new(),
    });
}

/// A fast-path entry: an object this thread looked its value up in.
#[derive(Clone, Copy)]
pub(super) struct Last {
    /// The object's id; 0 is never issued, so the initial entry matches nothing.
    pub(super) id: u64,
    /// Its value for this thread.
    pub(super) value: *const (),
}

const NONE: Last = Last {
    id: 0,
    value: ptr::null(),
};

/// Holds the thread's home, and gives its number back when the thread exits.
///
/// Not under loom, which drops its statics before the model's main thread's locals: there every
/// modelled thread takes a new number. The hand-over is one lock's release and acquire.
struct Guard(Cell<Option<Home>>);

#[cfg(not(guarded_map_loom))]
impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(home) = self.0.take() {
            // The entries point at values the number's next thread will write: forget them first.
            // They are never destroyed (no `Drop`), so a later lookup on this exiting thread
            // misses them and takes a number of its own (see `current`).
            store(&LAST, NONE);
            store(&PREV, NONE);
            HOMES.lock().free.push(Reverse(home.number));
        }
    }
}

#[cfg(not(guarded_map_loom))]
std::thread_local! {
    /// The last object this thread looked a value up in.
    pub(super) static LAST: Cell<Last> = const { Cell::new(NONE) };
    /// The one looked up before it.
    pub(super) static PREV: Cell<Last> = const { Cell::new(NONE) };
    static HOME: Guard = const { Guard(Cell::new(None)) };
}

// Loom runs its modelled threads on one OS thread: there these are loom's thread locals.
#[cfg(guarded_map_loom)]
loom::thread_local! {
    pub(super) static LAST: Cell<Last> = Cell::new(NONE);
    pub(super) static PREV: Cell<Last> = Cell::new(NONE);
    static HOME: Guard = Guard(Cell::new(None));
}

#[cfg(guarded_map_loom)]
use loom::thread::LocalKey;
#[cfg(not(guarded_map_loom))]
use std::thread::LocalKey;

/// Reads one of this thread's fast-path entries.
#[inline(always)]
pub(super) fn load(entry: &'static LocalKey<Cell<Last>>) -> Last {
    entry.with(Cell::get)
}

/// Writes one of this thread's fast-path entries.
#[inline(always)]
pub(super) fn store(entry: &'static LocalKey<Cell<Last>>, value: Last) {
    entry.with(|cell| cell.set(value));
}

/// The calling thread's home, taken on its first call.
pub(super) fn current() -> Home {
    let taken = HOME.try_with(|guard| match guard.0.get() {
        Some(home) => home,
        None => {
            let home = HOMES.lock().take();
            guard.0.set(Some(home));
            home
        }
    });
    // The thread is exiting and its guard is gone: a number of its own, which it keeps.
    taken.unwrap_or_else(|_| HOMES.lock().take())
}

/// The arena of every number issued so far, in order.
#[cfg(test)]
pub(super) fn numbers_issued() -> usize {
    HOMES.lock().arenas.len()
}
