//! [`ThreadReads`]: per-thread read counts kept by a store itself, one pointer closer to the read
//! than the map's shared [`MapStats`] (which sits behind an `Arc`, shared with the registry).

use std::cell::Cell;

use crossbeam_utils::CachePadded;

use super::{MapStats, ReadCounters};
use crate::per_thread::PerThread;

/// Each thread's keyed-read counts for one map, attached to the map's statistics on first use.
pub(crate) struct ThreadReads {
    /// Padded: neighbouring threads' slots are allocated side by side and written on every read.
    slots: PerThread<CachePadded<Slot>>,
}

#[derive(Default)]
struct Slot {
    reads: ReadCounters,
    /// Whether `reads` is attached to the map's statistics (only this thread touches it).
    attached: Cell<bool>,
}

impl ThreadReads {
    pub(crate) fn new() -> Self {
        ThreadReads {
            slots: PerThread::new(),
        }
    }

    /// The calling thread's counters.
    ///
    /// # Safety
    ///
    /// `self` must live in the store of the map whose statistics `stats` are, and stay there until
    /// that map is dropped (the contract of [`MapStats::attach_reads`]).
    #[inline(always)]
    pub(crate) unsafe fn get(&self, stats: &MapStats) -> &ReadCounters {
        let (slot, _) = self.slots.get_or_missed(CachePadded::default, |slot| {
            if !slot.attached.replace(true) {
                // SAFETY: the caller's contract; `ThreadLocal` never moves a slot.
                unsafe { stats.attach_reads(&slot.reads) };
            }
            (std::ptr::null(), 0)
        });
        &slot.reads
    }
}
