//! Times `bustle`'s mixed phase from inside the workers' handles.
//!
//! `bustle` starts its clock on the spawning thread after releasing the workers from a barrier.
//! With as many workers as cores, that thread may be scheduled again only once the workers are
//! done, and the run then "lasts" microseconds (seen here: thousands of Mops/s at 2 threads on
//! 2 cores). So each handle notes the time of its first operation and of its last (`bustle` gives
//! each mixed-phase worker exactly `operations / threads` of them), and the run lasts from the
//! earliest first to the latest last.
//!
//! `bustle` builds the map itself (`Collection::with_capacity`), so the clock of the current run
//! is handed over through a global; runs take a lock so that only one is timed at a time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// The clock of the run in progress, picked up by the map `bustle` builds.
static CURRENT: Mutex<Option<Arc<MixClock>>> = Mutex::new(None);
/// One timed `bustle` run at a time (tests run in parallel threads).
static ONE_RUN: Mutex<()> = Mutex::new(());

/// The clock of one `bustle` run.
#[derive(Debug)]
pub struct MixClock {
    threads: usize,
    per_thread: u64,
    pins: AtomicUsize,
    /// `(pin order, first operation, last operation)` of each handle that completed its share.
    marks: Mutex<Vec<(usize, Instant, Instant)>>,
}

impl MixClock {
    /// Runs `run` (a `bustle` run of `threads` workers doing `per_thread` operations each in the
    /// mixed phase) with a clock installed; returns what `run` returned and the mixed phase's
    /// duration, if every mixed-phase worker reported.
    pub fn time<R>(
        threads: usize,
        per_thread: u64,
        run: impl FnOnce() -> R,
    ) -> (R, Option<Duration>) {
        let _one = ONE_RUN.lock();
        let clock = Arc::new(MixClock {
            threads,
            per_thread,
            pins: AtomicUsize::new(0),
            marks: Mutex::new(Vec::new()),
        });
        *CURRENT.lock() = Some(Arc::clone(&clock));
        let out = run();
        *CURRENT.lock() = None;
        (out, clock.elapsed())
    }

    /// The clock of the run in progress, if any.
    pub fn current() -> Option<Arc<MixClock>> {
        CURRENT.lock().clone()
    }

    /// A stamp for a new handle: `bustle` pins one handle per prefill worker, then (after joining
    /// them all) one per mixed-phase worker, so the pin order tells the phases apart.
    pub fn stamp(self: &Arc<Self>) -> Stamp {
        Stamp {
            index: self.pins.fetch_add(1, Ordering::Relaxed),
            clock: Some(Arc::clone(self)),
            ops: 0,
            first: None,
            last: None,
        }
    }

    fn elapsed(&self) -> Option<Duration> {
        let marks = self.marks.lock();
        let mixed: Vec<_> = marks.iter().filter(|m| m.0 >= self.threads).collect();
        if mixed.len() != self.threads {
            return None;
        }
        let first = mixed.iter().map(|m| m.1).min()?;
        let last = mixed.iter().map(|m| m.2).max()?;
        Some(last - first)
    }
}

/// A handle's part of the clock: counts its operations and notes the first and the last.
#[derive(Debug)]
pub struct Stamp {
    index: usize,
    clock: Option<Arc<MixClock>>,
    ops: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Stamp {
    /// A stamp that times nothing (a map built outside a timed run).
    pub fn none() -> Self {
        Stamp {
            index: 0,
            clock: None,
            ops: 0,
            first: None,
            last: None,
        }
    }

    /// Call before each operation.
    #[inline(always)]
    pub fn before(&mut self) {
        if self.ops == 0 && self.clock.is_some() {
            self.first = Some(Instant::now());
        }
    }

    /// Call after each operation.
    #[inline(always)]
    pub fn after(&mut self) {
        self.ops += 1;
        if let Some(clock) = &self.clock
            && self.ops == clock.per_thread
        {
            self.last = Some(Instant::now());
        }
    }
}

impl Drop for Stamp {
    fn drop(&mut self) {
        if let (Some(clock), Some(first), Some(last)) = (&self.clock, self.first, self.last) {
            clock.marks.lock().push((self.index, first, last));
        }
    }
}
