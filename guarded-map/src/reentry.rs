//! Which maps the calling thread is inside of, so that a call that would re-enter a map it holds
//! fails at once, with a message, instead of deadlocking by chance.
//!
//! An operation that runs the user's closure while it holds a map's lock pushes a [`Frame`] on the
//! thread's list around each call of the closure, once the lock is held: the map's address and
//! the operation ([`Op`]: its name, whether it holds a write lock). The frame lives on the
//! operation's stack; the list's head is one thread-local pointer, restored when the closure ends
//! (on unwind too). Every call first checks the head: null, the common case, is one load and a
//! branch; otherwise the list is walked (it is as long as the nesting is deep) for the same map.
//!
//! Only closures get frames. `Clone`, `Hash`, `Eq` and `Drop` of keys and values also run under
//! locks, but must not use the map they are in (documented on `GuardedMap`); a frame on every
//! `get_cloned` cost it 19 more instructions (89 against 70; BENCHMARKS.md, "Re-entrancy checks").
//!
//! Why not the locks themselves: a nested write to another shard of the same map would succeed,
//! one to the same shard deadlock, and which one happens depends on the hasher's seed. The list
//! makes the outcome depend on the map only.

use std::cell::Cell;
use std::ptr;

/// An operation that runs the user's closures while it holds a lock of its map.
pub(crate) struct Op {
    name: &'static str,
    /// Whether it holds a write lock (or the `Rcu` writer lock).
    writes: bool,
}

impl Op {
    const fn read(name: &'static str) -> Op {
        Op {
            name,
            writes: false,
        }
    }

    const fn write(name: &'static str) -> Op {
        Op { name, writes: true }
    }

    pub(crate) const WITH: &'static Op = &Op::read("with");
    pub(crate) const FOR_EACH: &'static Op = &Op::read("for_each");
    pub(crate) const UPDATE: &'static Op = &Op::write("update");
    pub(crate) const UPSERT: &'static Op = &Op::write("upsert");
    pub(crate) const COMPUTE: &'static Op = &Op::write("compute");
    pub(crate) const REMOVE_IF: &'static Op = &Op::write("remove_if");
    pub(crate) const RETAIN: &'static Op = &Op::write("retain");
    /// Its closure under the lock is the map's own; the loader runs outside.
    pub(crate) const GET_OR_INSERT: &'static Op = &Op::write("get_or_insert_with");

    pub(crate) fn name(&self) -> &'static str {
        self.name
    }
}

/// One running closure of one map's operation on this thread: three words on the operation's
/// stack. The map's label is not kept: a call that finds the frame is of the same map, and names it.
pub(crate) struct Frame {
    map: *const (),
    op: &'static Op,
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

/// The list as an operation found it when it was checked: where its closures' frames go.
///
/// Taken once per operation, so that pushing a frame (per call of the closure) reloads nothing:
/// anything that runs between the check and a push (`Hash`, an earlier call of the closure)
/// restores the list before it returns.
#[derive(Clone, Copy)]
pub(crate) struct Outer(*const Frame);

impl Outer {
    /// Runs `f`, the user's closure of operation `op` of the map at `map`, which holds the lock
    /// `op` says, so that calls nested in it can tell.
    #[inline(always)]
    pub(crate) fn enter<R>(self, map: *const (), op: &'static Op, f: impl FnOnce() -> R) -> R {
        struct Restore(*const Frame);
        impl Drop for Restore {
            #[inline(always)]
            fn drop(&mut self) {
                set_head(self.0);
            }
        }
        let frame = Frame {
            map,
            op,
            outer: self.0,
        };
        set_head(&frame);
        let _restore = Restore(self.0);
        f()
    }
}

/// Checks a write (`op`) to the map at `map`, labelled `label`: panics if a closure of that map
/// runs on this thread, since its operation may hold the lock this write needs.
#[inline(always)]
#[track_caller]
pub(crate) fn check_write(map: *const (), label: &'static str, op: &'static str) -> Outer {
    check(map, label, op, false)
}

/// Checks a read (`op`) of the map at `map`, whose backend's reads take a lock: panics if a
/// closure of a write of that map runs on this thread (it holds a lock the read may need). Reads
/// nested in reads are fine (see [`reading`]).
#[inline(always)]
#[track_caller]
pub(crate) fn check_locked_read(map: *const (), label: &'static str, op: &'static str) -> Outer {
    check(map, label, op, true)
}

/// Panics if a closure of the map at `map` runs on this thread (one of a write only, if
/// `writes_only`); the list as it is otherwise.
#[inline(always)]
#[track_caller]
fn check(map: *const (), label: &'static str, op: &'static str, writes_only: bool) -> Outer {
    let innermost = head();
    if !innermost.is_null() {
        check_slow(innermost, map, label, op, writes_only);
    }
    Outer(innermost)
}

/// The list as it is, for an operation that refuses nothing (a read of a map whose reads take no
/// lock) but may push frames.
#[inline(always)]
pub(crate) fn outer() -> Outer {
    Outer(head())
}

/// Whether this thread runs a closure of a read of the map at `map`, which holds a read lock of
/// it: a read lock taken now, nested in it, must not queue behind a waiting writer. A frame is
/// pushed only once its operation holds its lock, so an operation waiting for its own lock never
/// finds itself.
pub(crate) fn reading(map: *const ()) -> bool {
    frames(head()).any(|frame| frame.map == map && !frame.op.writes)
}

#[cold]
#[inline(never)]
#[track_caller]
fn check_slow(
    innermost: *const Frame,
    map: *const (),
    label: &'static str,
    op: &'static str,
    writes_only: bool,
) {
    let refuses = |frame: &&Frame| frame.map == map && (frame.op.writes || !writes_only);
    if let Some(outer) = frames(innermost).find(refuses) {
        reentered(outer, label, op);
    }
}

#[cold]
#[track_caller]
fn reentered(outer: &Frame, label: &'static str, op: &'static str) -> ! {
    panic!(
        "guarded-map: `{op}` on map `{label}` was called from inside `{}` on the same map, which \
         holds its {} lock; this would deadlock. Finish the outer call first (collect what to \
         change, then change it)",
        outer.op.name,
        if outer.op.writes { "write" } else { "read" },
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
        // SAFETY: every frame on the list lives on the stack of a running `Outer::enter` call of
        // this thread, which removes it (restoring its outer frame) before it returns or unwinds;
        // the frames are never written after they are pushed.
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
        let outer = check_locked_read(map(&a), "a", "with");
        outer.enter(map(&a), Op::WITH, || {
            assert!(reading(map(&a)));
            assert!(!reading(map(&b)));
            check_locked_read(map(&a), "a", "get");
            let inner = check_write(map(&b), "b", "update");
            inner.enter(map(&b), Op::UPDATE, || {
                assert!(!reading(map(&b)), "a write holds no read lock");
                check_locked_read(map(&a), "a", "get");
                check_write(map(&c), "c", "insert");
            });
        });
        assert!(!reading(map(&a)));
    }

    #[test]
    #[should_panic(expected = "`get` on map `a` was called from inside `retain`")]
    fn a_locked_read_nested_in_a_write_panics() {
        let a = 1u8;
        outer().enter(map(&a), Op::RETAIN, || {
            check_locked_read(map(&a), "a", "get");
        });
    }

    #[test]
    #[should_panic(expected = "`insert` on map `a` was called from inside `update`")]
    fn a_nested_write_panics_naming_the_outer_operation() {
        let a = 1u8;
        outer().enter(map(&a), Op::UPDATE, || {
            check_write(map(&a), "a", "insert");
        });
    }

    #[test]
    fn the_list_is_restored_when_the_operation_unwinds() {
        let a = 1u8;
        let caught = std::panic::catch_unwind(|| {
            outer().enter(map(&a), Op::WITH, || panic!("in the closure"));
        });
        assert!(caught.is_err());
        assert!(!reading(map(&a)));
        check_write(map(&a), "a", "insert");
    }
}
