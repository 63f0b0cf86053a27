//! Which maps the calling thread is inside of, so that a call that would re-enter a map it holds
//! fails at once, with a message, instead of deadlocking by chance.
//!
//! An operation that runs user code (a closure, or `Clone` in a snapshot) while it holds a map's
//! lock first pushes a [`Frame`] on the thread's list: the map's address, the operation's name,
//! whether it holds a write lock. The frame lives on the operation's stack; the list's head is one
//! thread-local pointer, restored when the operation ends (on unwind too). Any later call checks
//! the head: null, the common case, is one load and a branch; otherwise the list is walked (it is
//! as long as the nesting is deep) for the same map.
//!
//! Why not the locks themselves: a nested write to another shard of the same map would succeed,
//! one to the same shard deadlock, and which one happens depends on the hasher's seed. The list
//! makes the outcome depend on the map only.

use std::cell::Cell;
use std::ptr;

/// One running operation of one map on this thread.
pub(crate) struct Frame {
    map: *const (),
    label: &'static str,
    op: &'static str,
    /// Whether the operation holds a write lock (or the `Rcu` writer lock).
    writes: bool,
    outer: *const Frame,
}

#[cfg(not(guarded_map_loom))]
std::thread_local! {
    /// The innermost running operation of this thread (null: none).
    static INNERMOST: Cell<*const Frame> = const { Cell::new(ptr::null()) };
}

// Loom runs its modelled threads on one OS thread, so the list must be one of loom's thread
// locals there, or one modelled thread would see another's frames.
#[cfg(guarded_map_loom)]
loom::thread_local! {
    static INNERMOST: Cell<*const Frame> = Cell::new(ptr::null());
}

/// This thread's innermost frame.
#[inline(always)]
fn head() -> *const Frame {
    INNERMOST.with(Cell::get)
}

/// Makes `frame` this thread's innermost frame.
#[inline(always)]
fn set_head(frame: *const Frame) {
    INNERMOST.with(|head| head.set(frame));
}

/// Runs `f` as operation `op` of the map at `map`, labelled `label`, so that calls nested in it
/// can tell.
#[inline(always)]
pub(crate) fn inside<R>(
    map: *const (),
    label: &'static str,
    op: &'static str,
    writes: bool,
    f: impl FnOnce() -> R,
) -> R {
    struct Restore(*const Frame);
    impl Drop for Restore {
        #[inline(always)]
        fn drop(&mut self) {
            set_head(self.0);
        }
    }
    let outer = head();
    let frame = Frame {
        map,
        label,
        op,
        writes,
        outer,
    };
    set_head(&frame);
    let _restore = Restore(outer);
    f()
}

/// Checks a write (`op`) to the map at `map`: panics if any operation of that map runs on this
/// thread, since it may hold the lock this write needs.
#[inline(always)]
#[track_caller]
pub(crate) fn check_write(map: *const (), op: &'static str) {
    let innermost = head();
    if !innermost.is_null() {
        check_write_slow(innermost, map, op);
    }
}

/// Checks a read (`op`) of the map at `map`, whose backend's reads take a lock: panics if a write
/// of that map runs on this thread (it holds a lock the read may need). Reads nested in reads are
/// fine (see [`reading`]).
#[inline(always)]
#[track_caller]
pub(crate) fn check_locked_read(map: *const (), op: &'static str) {
    let innermost = head();
    if !innermost.is_null() {
        check_read_slow(innermost, map, op);
    }
}

/// Whether a read of the map at `map` runs on this thread outside the one asking (which may hold
/// a read lock). Every read that takes a lock pushes its own frame before it locks, so the asking
/// read is one frame of the map: it is nested when there is another.
pub(crate) fn reading(map: *const ()) -> bool {
    frames(head())
        .filter(|frame| frame.map == map && !frame.writes)
        .nth(1)
        .is_some()
}

#[cold]
#[inline(never)]
#[track_caller]
fn check_write_slow(innermost: *const Frame, map: *const (), op: &'static str) {
    if let Some(outer) = frames(innermost).find(|frame| frame.map == map) {
        reentered(outer, op);
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn check_read_slow(innermost: *const Frame, map: *const (), op: &'static str) {
    if let Some(outer) = frames(innermost).find(|frame| frame.map == map && frame.writes) {
        reentered(outer, op);
    }
}

#[cold]
#[track_caller]
fn reentered(outer: &Frame, op: &'static str) -> ! {
    panic!(
        "guarded-map: `{op}` on map `{}` was called from inside `{}` on the same map, which holds \
         its {} lock; this would deadlock. Finish the outer call first (collect what to change, \
         then change it)",
        outer.label,
        outer.op,
        if outer.writes { "write" } else { "read" },
    )
}

/// Panics for a write (`op`) to the map labelled `label` nested in a keyed read of it that the
/// backend tracks itself (the `Rcu` reader's mark), not with a frame.
#[cold]
#[track_caller]
pub(crate) fn reentered_read(label: &'static str, op: &'static str) -> ! {
    panic!(
        "guarded-map: `{op}` on map `{label}` was called from inside `with` (a keyed read) on the \
         same map; writes nested in reads of the same map are refused on every backend (one that \
         holds a read lock would deadlock). Finish the read first"
    )
}

/// The frames from `innermost` outwards.
fn frames<'a>(innermost: *const Frame) -> impl Iterator<Item = &'a Frame> {
    let mut next = innermost;
    std::iter::from_fn(move || {
        // SAFETY: every frame on the list lives on the stack of a running `inside` call of this
        // thread, which removes it (restoring its outer frame) before it returns or unwinds; the
        // frames are never written after they are pushed.
        let frame = unsafe { next.as_ref()? };
        next = frame.outer;
        Some(frame)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(n: &u8) -> *const () {
        ptr::from_ref(n).cast()
    }

    #[test]
    fn nested_calls_see_the_operations_around_them() {
        let (a, b, c) = (1u8, 2u8, 3u8);
        assert!(!reading(map(&a)));
        inside(map(&a), "a", "with", false, || {
            assert!(!reading(map(&a)), "the asking read's own frame");
            inside(map(&a), "a", "get_cloned", false, || {
                assert!(reading(map(&a)))
            });
            check_locked_read(map(&a), "get");
            inside(map(&b), "b", "update", true, || {
                assert!(!reading(map(&b)));
                check_locked_read(map(&a), "get");
                check_write(map(&c), "insert");
            });
        });
        assert!(!reading(map(&a)));
    }

    #[test]
    #[should_panic(expected = "`get` on map `a` was called from inside `retain`")]
    fn a_locked_read_nested_in_a_write_panics() {
        let a = 1u8;
        inside(map(&a), "a", "retain", true, || {
            check_locked_read(map(&a), "get")
        });
    }

    #[test]
    #[should_panic(expected = "`insert` on map `a` was called from inside `update`")]
    fn a_nested_write_panics_naming_the_outer_operation() {
        let a = 1u8;
        inside(map(&a), "a", "update", true, || {
            check_write(map(&a), "insert")
        });
    }

    #[test]
    fn the_list_is_restored_when_the_operation_unwinds() {
        let a = 1u8;
        let caught = std::panic::catch_unwind(|| {
            inside(map(&a), "a", "with", false, || panic!("in the closure"));
        });
        assert!(caught.is_err());
        assert!(!reading(map(&a)));
        check_write(map(&a), "insert");
    }
}
