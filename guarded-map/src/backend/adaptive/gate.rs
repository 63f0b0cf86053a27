//! The switch gate of an adaptive map: which representation is active, and the protocol that
//! changes it while readers and writers run.
//!
//! Every thread that uses the map has two marks of its own (no line shared with other threads):
//! `writing`, set while it writes, and `reading`, odd while an outermost read runs (and counting
//! reads, so that a change of the word means the read ended). An operation stores its mark, fences
//! (the asymmetric fence of `fence.rs`: a compiler fence where `membarrier` is available) and then
//! loads the state; a switch stores the state, fences the other way and then reads every mark. So
//! either the switch sees an operation's mark, or the operation sees the switch's state.
//!
//! A switch from `A` to `B`:
//!
//! 1. sets `SWITCHING` (writers that see it step back and wait for the switch; readers go on
//!    reading `A`, which no write changes any more), and waits for the writers inside to leave;
//! 2. copies `A` into `B` (user code: `Clone`, `Hash`; if it panics, the state goes back to `A`,
//!    as if the switch had not begun);
//! 3. makes `B` active and lets the writers in: from here on `B` is the map;
//! 4. waits for the reads that may still be reading `A` (those running at step 3) to end, and only
//!    then empties `A`, so that no read ever sees `A` emptied.
//!
//! Keyed reads (`get`, behind `get_cloned`, `with`, `contains_key`: the hot path) do not mark
//! the gate: they enter the form's own protection, the `Rcu` reader's mark (stored and fenced as
//! the gate's marks are) or the shard's read lock, and then check the state ([`Gate::holds`]).
//! Step 4 therefore also waits for the `Rcu` reads marked when it begins, and empties a `Sharded`
//! form shard by shard under each shard's write lock, after any read that holds it. A read that
//! finds the state changed lets go of that form, uncounted, and reads the other one. A keyed read
//! pays one load for the gate, and no store.
//!
//! Readers never wait for the copy (a keyed read may wait for one shard's table to be swapped
//! for an empty one in step 4, as for any write). Writers wait only during step 2 (a copy of the map; `BENCHMARKS.md` has its
//! cost per entry). Step 4 waits without holding the lock writers wait on, so a read that writes
//! the map from its closure (allowed) cannot deadlock with a switch. One switch at a time.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};

use crate::error::SwitchError;
use crate::fence::{reader_fence, writer_fence};
use crate::per_thread::PerThread;
use crate::sync::{AtomicU64, Mutex, wait_while};

use guarded_map_probe_common::ActiveBackend;

/// The state's bits of `form`.
fn bits(form: ActiveBackend) -> u64 {
    match form {
        ActiveBackend::Rcu => 0,
        ActiveBackend::Sharded => ACTIVE,
    }
}

/// The form a state names.
fn form_of(state: u64) -> ActiveBackend {
    if state & ACTIVE == 0 {
        ActiveBackend::Rcu
    } else {
        ActiveBackend::Sharded
    }
}

/// The state's bit of the active representation.
const ACTIVE: u64 = 1;
/// Set while a switch copies: writers wait.
const SWITCHING: u64 = 2;

/// One thread's marks on one map.
#[derive(Default)]
struct Marks {
    /// 1 while the thread writes the map.
    writing: AtomicU64,
    /// Twice the outermost reads begun, plus one while one runs: a read that finds it odd is
    /// nested and leaves it alone (two stores per outermost read, none per nested one: a read's
    /// stores are what limits how many lookups a core keeps in flight).
    reading: AtomicU64,
}

/// The gate of one adaptive map.
pub(crate) struct Gate {
    state: AtomicU64,
    marks: PerThread<Marks>,
    /// Held by a switch through its steps 1 to 3; writers that saw `SWITCHING` wait on it.
    switching: Mutex<()>,
    /// Held by a switch through all its steps: one switch at a time, and the next one begins only
    /// once the last one has emptied what it left.
    one_at_a_time: Mutex<()>,
}

impl Gate {
    pub(crate) fn new(active: ActiveBackend) -> Self {
        crate::fence::register();
        Gate {
            state: AtomicU64::new(bits(active)),
            marks: PerThread::new(),
            switching: Mutex::new(()),
            one_at_a_time: Mutex::new(()),
        }
    }

    /// The active representation now (for gauges: it may change at once).
    #[inline(always)]
    pub(crate) fn active(&self) -> ActiveBackend {
        form_of(self.state.load(Relaxed))
    }

    /// Whether `form` is the active representation, for a read that has entered `form`'s own
    /// protection (see `AdaptiveStore::get`): if it is, `form` stays whole until that protection
    /// is let go, since a switch away from it changes the state, fences, and then waits for that
    /// protection before it empties `form`. A switch that is copying out of `form` still leaves
    /// it whole.
    #[inline(always)]
    pub(crate) fn holds(&self, form: ActiveBackend) -> bool {
        form_of(self.state.load(Acquire)) == form
    }

    /// Runs `f` on the active representation, as a read: the representation stays whole while
    /// `f` runs, even if a switch makes the other one active meanwhile.
    #[inline]
    pub(crate) fn read<R>(&self, f: impl FnOnce(ActiveBackend) -> R) -> R {
        let marks = self.marks.get();
        let word = marks.reading.load(Relaxed);
        let outermost = word & 1 == 0;
        if outermost {
            marks.reading.store(word + 1, Relaxed);
        }
        let _leave = LeaveRead {
            marks,
            outermost: outermost.then_some(word + 2),
        };
        reader_fence();
        f(form_of(self.state.load(Acquire)))
    }

    /// Runs `f` on the active representation, as a write: no switch copies while `f` runs.
    #[inline(always)]
    pub(crate) fn write<R>(&self, f: impl FnOnce(ActiveBackend) -> R) -> R {
        let marks = self.marks.get();
        loop {
            marks.writing.store(1, Relaxed);
            reader_fence();
            let state = self.state.load(Acquire);
            if state & SWITCHING == 0 {
                let _leave = LeaveWrite(marks);
                return f(form_of(state));
            }
            marks.writing.store(0, Release);
            self.wait_for_switch();
        }
    }

    #[cold]
    #[inline(never)]
    fn wait_for_switch(&self) {
        drop(crate::sync::lock_spinning(&self.switching));
    }

    /// Makes `to` active: copies the active representation into it with `copy`, then empties the
    /// old one with `empty` once no read can see it. Returns whether it switched (false: `to` was
    /// active already). A panic in `copy` leaves the old representation active and unchanged, and
    /// is passed on.
    pub(crate) fn switch(
        &self,
        to: ActiveBackend,
        copy: impl FnOnce(ActiveBackend, ActiveBackend),
        empty: impl FnOnce(ActiveBackend),
    ) -> Result<bool, SwitchError> {
        if let Some(marks) = self.marks.existing()
            && (marks.writing.load(Relaxed) != 0 || marks.reading.load(Relaxed) & 1 != 0)
        {
            return Err(SwitchError::Inside);
        }
        let _one = self.one_at_a_time.lock();
        let from = self.active();
        if from == to {
            return Ok(false);
        }
        {
            let _switching = self.switching.lock();
            // 1. Writers out.
            self.state.store(bits(from) | SWITCHING, SeqCst);
            writer_fence();
            self.marks.fold((), |(), marks| {
                wait_while(|| marks.writing.load(Acquire) != 0);
            });
            // 2. The copy.
            if let Err(panic) = panic::catch_unwind(AssertUnwindSafe(|| copy(from, to))) {
                self.state.store(bits(from), Release);
                panic::resume_unwind(panic);
            }
            // 3. `to` is the map.
            self.state.store(bits(to), SeqCst);
        }
        // 4. The reads that may still see `from`, then `from` emptied.
        writer_fence();
        let inside: Vec<(&AtomicU64, u64)> = self.marks.fold(Vec::new(), |mut inside, marks| {
            let word = marks.reading.load(Acquire);
            if word & 1 != 0 {
                inside.push((&marks.reading, word));
            }
            inside
        });
        for (reading, word) in inside {
            wait_while(|| reading.load(Acquire) == word);
        }
        empty(from);
        Ok(true)
    }
}

/// Ends a read, also when its closure panics.
struct LeaveRead<'a> {
    marks: &'a Marks,
    /// The reading word after an outermost read (`None` for a nested one).
    outermost: Option<u64>,
}

impl Drop for LeaveRead<'_> {
    #[inline]
    fn drop(&mut self) {
        if let Some(word) = self.outermost {
            self.marks.reading.store(word, Release);
        }
    }
}

/// Ends a write, also when its closure panics.
struct LeaveWrite<'a>(&'a Marks);

impl Drop for LeaveWrite<'_> {
    #[inline]
    fn drop(&mut self) {
        self.0.writing.store(0, Release);
    }
}

#[cfg(all(test, not(guarded_map_loom)))]
mod tests {
    use super::{ActiveBackend, Gate};
    use crate::error::SwitchError;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    #[test]
    fn a_switch_copies_then_empties_the_old_side() {
        let gate = Gate::new(ActiveBackend::Rcu);
        let steps = std::cell::RefCell::new(Vec::new());
        let switched = gate.switch(
            ActiveBackend::Sharded,
            |from, to| steps.borrow_mut().push(format!("copy {from:?} to {to:?}")),
            |old| steps.borrow_mut().push(format!("empty {old:?}")),
        );
        assert_eq!(switched, Ok(true));
        assert_eq!(gate.active(), ActiveBackend::Sharded);
        assert_eq!(
            steps.into_inner(),
            ["copy Rcu to Sharded", "empty Rcu"].map(String::from)
        );
        assert_eq!(
            gate.switch(ActiveBackend::Sharded, |_, _| {}, |_| {}),
            Ok(false)
        );
        assert_eq!(gate.read(|active| active), ActiveBackend::Sharded);
        assert_eq!(gate.write(|active| active), ActiveBackend::Sharded);
    }

    #[test]
    fn a_switch_from_inside_an_operation_is_refused() {
        let gate = Gate::new(ActiveBackend::Rcu);
        let refused = gate.read(|_| gate.switch(ActiveBackend::Sharded, |_, _| {}, |_| {}));
        assert_eq!(refused, Err(SwitchError::Inside));
        let refused = gate.write(|_| gate.switch(ActiveBackend::Sharded, |_, _| {}, |_| {}));
        assert_eq!(refused, Err(SwitchError::Inside));
        assert_eq!(gate.active(), ActiveBackend::Rcu);
    }

    #[test]
    fn a_panicking_copy_leaves_the_old_side_active() {
        let gate = Gate::new(ActiveBackend::Rcu);
        let emptied = AtomicUsize::new(0);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            gate.switch(
                ActiveBackend::Sharded,
                |_, _| panic!("Clone panicked"),
                |_| {
                    emptied.fetch_add(1, SeqCst);
                },
            )
        }));
        assert!(result.is_err());
        assert_eq!(gate.active(), ActiveBackend::Rcu);
        assert_eq!(emptied.load(SeqCst), 0);
        // Writers are let in again.
        assert_eq!(gate.write(|active| active), ActiveBackend::Rcu);
    }
}

#[cfg(all(test, guarded_map_loom))]
mod loom_tests {
    use super::{ActiveBackend, Gate};
    use loom::sync::Arc;
    use loom::sync::atomic::AtomicU64;
    use std::sync::atomic::Ordering::SeqCst;

    /// What a representation holds in the model: one counter, `EMPTIED` once emptied.
    const EMPTIED: u64 = u64::MAX;

    struct Model {
        gate: Gate,
        rcu: AtomicU64,
        sharded: AtomicU64,
    }

    impl Model {
        fn side(&self, active: ActiveBackend) -> &AtomicU64 {
            match active {
                ActiveBackend::Rcu => &self.rcu,
                ActiveBackend::Sharded => &self.sharded,
            }
        }
    }

    /// A writer increments the counter, a reader reads it, and a switch copies it from one side to
    /// the other, concurrently: the increment is never lost, the reader never sees a side emptied
    /// or a value that never was.
    #[test]
    fn loom_adaptive_switch_loses_no_write_and_shows_no_emptied_side() {
        loom::model(|| {
            let model = Arc::new(Model {
                gate: Gate::new(ActiveBackend::Rcu),
                rcu: AtomicU64::new(0),
                sharded: AtomicU64::new(0),
            });
            let writer = {
                let model = Arc::clone(&model);
                loom::thread::spawn(move || {
                    model.gate.write(|active| {
                        let side = model.side(active);
                        // A write of the side's own (the store's lock serializes it there).
                        let value = side.load(SeqCst);
                        assert_ne!(value, EMPTIED, "a write reached an emptied side");
                        side.store(value + 1, SeqCst);
                    });
                })
            };
            let reader = {
                let model = Arc::clone(&model);
                loom::thread::spawn(move || {
                    let seen = model.gate.read(|active| model.side(active).load(SeqCst));
                    assert!(seen <= 1, "the reader saw {seen}");
                })
            };
            let switched = model.gate.switch(
                ActiveBackend::Sharded,
                |from, to| {
                    let value = model.side(from).load(SeqCst);
                    model.side(to).store(value, SeqCst);
                },
                |from| model.side(from).store(EMPTIED, SeqCst),
            );
            assert_eq!(switched, Ok(true));
            writer.join().unwrap();
            reader.join().unwrap();
            assert_eq!(model.sharded.load(SeqCst), 1, "the write was lost");
            assert_eq!(model.rcu.load(SeqCst), EMPTIED);
        });
    }

    /// A keyed read validates instead of marking the gate: it enters the form's own protection
    /// (an `Rcu` read mark, fenced; a shard's read lock), then checks the gate's state, and goes
    /// to the other form if the check fails. A switch changes the state, fences, then waits for
    /// that protection before it empties the form. The reader must see the value, never an
    /// emptied form, and the switch must end.
    #[test]
    fn loom_adaptive_validated_reads_never_see_an_emptied_form() {
        use crate::backend::rcu::wait_for_marks;
        use crate::fence::reader_fence;
        use crate::stats::ReadCounters;
        use loom::sync::RwLock;

        struct Forms {
            gate: Gate,
            rcu: AtomicU64,
            marks: ReadCounters,
            /// The `Sharded` form: its value behind its one shard's lock.
            sharded: RwLock<u64>,
        }

        /// One keyed read, as `AdaptiveStore::get` makes it.
        fn read(forms: &Forms) -> u64 {
            loop {
                match forms.gate.active() {
                    ActiveBackend::Rcu => {
                        let entered = forms.marks.enter();
                        reader_fence();
                        if forms.gate.holds(ActiveBackend::Rcu) {
                            let value = forms.rcu.load(SeqCst);
                            forms.marks.leave(entered);
                            return value;
                        }
                        forms.marks.abandon(entered);
                    }
                    ActiveBackend::Sharded => {
                        let shard = forms.sharded.read().unwrap();
                        if forms.gate.holds(ActiveBackend::Sharded) {
                            return *shard;
                        }
                    }
                }
            }
        }

        for start in [ActiveBackend::Rcu, ActiveBackend::Sharded] {
            loom::model(move || {
                let forms = Arc::new(Forms {
                    gate: Gate::new(start),
                    rcu: AtomicU64::new(if start == ActiveBackend::Rcu { 7 } else { 0 }),
                    marks: ReadCounters::default(),
                    sharded: RwLock::new(if start == ActiveBackend::Sharded {
                        7
                    } else {
                        0
                    }),
                });
                let reader = {
                    let forms = Arc::clone(&forms);
                    loom::thread::spawn(move || {
                        let seen = read(&forms);
                        assert_eq!(seen, 7, "a read saw an emptied or unfilled form");
                    })
                };
                let switched = forms.gate.switch(
                    start.other(),
                    |from, _| match from {
                        ActiveBackend::Rcu => {
                            *forms.sharded.write().unwrap() = forms.rcu.load(SeqCst)
                        }
                        ActiveBackend::Sharded => {
                            forms.rcu.store(*forms.sharded.read().unwrap(), SeqCst)
                        }
                    },
                    |from| match from {
                        ActiveBackend::Rcu => {
                            wait_for_marks([forms.marks.mark(), forms.marks.nested_mark()]);
                            forms.rcu.store(EMPTIED, SeqCst);
                        }
                        ActiveBackend::Sharded => *forms.sharded.write().unwrap() = EMPTIED,
                    },
                );
                assert_eq!(switched, Ok(true));
                reader.join().unwrap();
            });
        }
    }
}
