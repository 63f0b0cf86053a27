//! When a table gives memory back: the shrink policy of `shrink = auto`.
//!
//! A table (a `Sharded` shard, or an `Rcu` map's whole tree) shrinks when it has been at most
//! 1/8 full at every write for [`SUSTAIN`]: it is rebuilt for its entries plus an eighth (never
//! below the capacity the map was made with). Growing doubles a full table, so after a shrink the
//! entries must fall by seven eighths again, for a second, before the next one: a map that
//! refills does not thrash. The check runs on writes only (an `Rcu` write copies
//! anyway, a `Sharded` one holds its shard's lock): a map no longer written keeps its tables
//! until its next write, or until `shrink_to_fit`.
//!
//! The clock is read only by writes that find a table low, one in [`CLOCK_EVERY`].

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use std::sync::atomic::Ordering::Relaxed;

use crate::sync::AtomicU64;

/// How long a table stays at most 1/8 full before it shrinks.
pub(crate) const SUSTAIN: Duration = Duration::from_secs(1);

/// The fill at or below which a table counts as low: one entry in this many slots.
pub(crate) const LOW: usize = 8;

/// Writes that find a table low between two looks at the clock.
const CLOCK_EVERY: u64 = 16;

/// Whether, and since when, a table has been low: 0 when it was not low at the last write;
/// otherwise the milliseconds from the process's clock origin plus one when it was first seen
/// low, shifted up 16 bits, and in the low 16 bits the writes since the clock was last read (so
/// a run of writes to a low table reads it once in [`CLOCK_EVERY`]). Written under the table's
/// write lock only.
#[derive(Debug, Default)]
pub(crate) struct LowSince(AtomicU64);

impl LowSince {
    /// Whether the table was low at the last write (a write that cannot make it low checks this
    /// first, to skip the rest).
    #[inline(always)]
    pub(crate) fn is_low(&self) -> bool {
        self.0.load(Relaxed) != 0
    }

    /// Notes a write that left the table with `len` entries and room for `capacity`; true when
    /// the table has been low for [`SUSTAIN`] and should shrink now. `floor` is the capacity it
    /// may never shrink below.
    #[inline]
    pub(crate) fn shrink_due(&self, len: usize, capacity: usize, floor: usize) -> bool {
        if len.saturating_mul(LOW) > capacity || capacity <= floor {
            if self.is_low() {
                self.0.store(0, Relaxed);
            }
            return false;
        }
        self.low_now()
    }

    #[cold]
    fn low_now(&self) -> bool {
        let word = self.0.load(Relaxed);
        if word == 0 {
            self.0.store((now_ms() + 1) << 16, Relaxed);
            return false;
        }
        let writes = (word & 0xffff) + 1;
        if writes < CLOCK_EVERY {
            self.0.store(word + 1, Relaxed);
            return false;
        }
        self.0.store(word & !0xffff, Relaxed);
        let since = word >> 16;
        (now_ms() + 1).saturating_sub(since) >= SUSTAIN.as_millis() as u64
    }

    /// Forgets the low state (after a shrink).
    pub(crate) fn reset(&self) {
        self.0.store(0, Relaxed);
    }
}

/// The capacity a shrinking table is rebuilt with: its entries plus an eighth. hashbrown rounds
/// a table up to a power of two of buckets, so the rebuilt table holds at most twice what a table
/// built for the entries alone would.
pub(crate) fn target(len: usize, floor: usize) -> usize {
    (len + len / 8).max(floor).max(1)
}

/// Milliseconds since the first call.
fn now_ms() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore = "safe code that sleeps a second")]
    fn a_table_shrinks_only_after_staying_low() {
        let low = LowSince::default();
        // More than 1/8 full: never.
        assert!(!low.shrink_due(200, 1000, 0));
        assert!(!low.is_low());
        // Low: not yet.
        assert!(!low.shrink_due(100, 1000, 0));
        assert!(low.is_low());
        // Back above: the period starts again.
        assert!(!low.shrink_due(300, 1000, 0));
        assert!(!low.is_low());
        assert!(!low.shrink_due(10, 1000, 0));
        std::thread::sleep(SUSTAIN + Duration::from_millis(50));
        // The clock is read once in `CLOCK_EVERY` writes to a low table.
        let due = (0..CLOCK_EVERY)
            .filter(|_| low.shrink_due(10, 1000, 0))
            .count();
        assert_eq!(due, 1);
        // At its floor a table never shrinks.
        let floor = LowSince::default();
        assert!(!floor.shrink_due(0, 1000, 1000));
        assert!(!floor.is_low());
    }

    #[test]
    fn targets_leave_room_and_respect_the_floor() {
        assert_eq!(target(1000, 0), 1125);
        assert_eq!(target(10, 64), 64);
        assert_eq!(target(0, 0), 1);
    }
}
