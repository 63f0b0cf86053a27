//! Attaching the counts a backend keeps ([`Kept`]) to its map's statistics, and detaching them.
//!
//! A store holds an [`Attachment`], which owns a reference to the map's statistics. Counts
//! attached through it are summed with the map's own until the attachment is dropped; its `Drop`
//! folds their last values into the statistics and detaches them, under the same lock every sum
//! reads them under. So a store that declares its attachment before the data it attached (fields
//! drop in declaration order) keeps that data alive for as long as anything can read it: the whole
//! argument is in this module and in the one struct of each store. A store that changes its
//! representation detaches the old counts the same way, by dropping the old attachment.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use parking_lot::Mutex;

use super::kept::Kept;
use super::slots::{Counts, MapStats};

/// The counts attached to one map's statistics, and the final counts of those detached.
#[derive(Default)]
pub(super) struct Attachments {
    live: Vec<Attached>,
    detached: Counts,
}

impl Attachments {
    /// Adds every attached count, live and detached, to `total`.
    pub(super) fn add_to(&self, total: &mut Counts) {
        total.add(&self.detached);
        for attached in &self.live {
            // SAFETY: a live entry's counts are alive: its attachment removes it (under the lock
            // the caller holds) before the data it points to can be dropped (see `attach`).
            unsafe { &*attached.kept }.add_to(total);
        }
    }
}

/// A pointer to attached counts, and the attachment it came through.
struct Attached {
    owner: u64,
    kept: *const dyn Kept,
}

// SAFETY: the pointee is `Sync` (a `Kept` bound) and alive while the entry exists (see `attach`);
// sending or sharing the pointer is like sending or sharing a shared reference to it.
unsafe impl Send for Attached {}
// SAFETY: as for `Send`.
unsafe impl Sync for Attached {}

/// Tells one attachment's entries from another's (a map may briefly hold two while it switches
/// representation).
static NEXT_OWNER: AtomicU64 = AtomicU64::new(1);

/// A store's hold on its map's statistics (see the module documentation).
pub(crate) struct Attachment {
    stats: Arc<MapStats>,
    owner: u64,
    enabled: bool,
}

impl Attachment {
    pub(super) fn new(stats: Arc<MapStats>, enabled: bool) -> Self {
        Attachment {
            stats,
            owner: NEXT_OWNER.fetch_add(1, Relaxed),
            enabled,
        }
    }

    /// Sums `kept` into the map's counts until this attachment is dropped (nothing, for a map
    /// without statistics).
    ///
    /// # Safety
    ///
    /// `kept` must stay where it is and alive until this attachment is dropped: the store
    /// declares the attachment before the field that holds `kept`.
    pub(crate) unsafe fn attach(&self, kept: &(dyn Kept + 'static)) {
        if self.enabled {
            self.stats.attachments().lock().live.push(Attached {
                owner: self.owner,
                kept,
            });
        }
    }
}

impl Drop for Attachment {
    /// Folds the last values of this attachment's counts into the statistics and detaches them.
    fn drop(&mut self) {
        let mut attachments = self.stats.attachments().lock();
        let Attachments { live, detached } = &mut *attachments;
        live.retain(|attached| {
            if attached.owner != self.owner {
                return true;
            }
            // SAFETY: this attachment's counts are alive until it is dropped, which is now.
            unsafe { &*attached.kept }.add_to(detached);
            false
        });
    }
}

/// The lock an attachment list lives under.
pub(super) type AttachmentsLock = Mutex<Attachments>;

#[cfg(test)]
mod tests {
    use crate::descriptor::{BackendKind, Descriptor};
    use crate::stats::{Counter, MapStats, WriteCounts, Wrote};

    static DESCRIPTOR: Descriptor = Descriptor::new("attach::tests", BackendKind::Sharded);

    #[test]
    fn dropping_an_attachment_keeps_its_counts_and_detaches_only_its_own() {
        let stats = MapStats::new(&DESCRIPTOR, 16);
        let rec = stats.recorder(true);
        // Two attachments at once, as while a map switches representation.
        let (old, new) = (
            Box::new(WriteCounts::default()),
            Box::new(WriteCounts::default()),
        );
        let (first, second) = (rec.attachment(), rec.attachment());
        // SAFETY: both counts outlive their attachments (dropped explicitly below, first).
        unsafe {
            first.attach(&*old);
            second.attach(&*new);
        }
        old.record(Wrote::insert(false));
        old.record(Wrote::insert(false));
        new.record(Wrote::remove(true));
        assert_eq!(stats.counts()[Counter::Insert], 2);
        drop(first);
        drop(old);
        // The detached counts stay; the other attachment's are still read live.
        new.record(Wrote::remove(true));
        let counts = stats.counts();
        assert_eq!(counts[Counter::Insert], 2);
        assert_eq!(counts[Counter::Added], 2);
        assert_eq!(counts[Counter::Remove], 2);
        drop(second);
        drop(new);
        assert_eq!(stats.counts()[Counter::Remove], 2);
    }

    #[test]
    fn a_map_without_statistics_attaches_nothing() {
        let stats = MapStats::new(&DESCRIPTOR, 16);
        let kept = WriteCounts::default();
        let attachment = stats.recorder(false).attachment();
        // SAFETY: `kept` outlives `attachment`.
        unsafe { attachment.attach(&kept) };
        kept.record(Wrote::insert(false));
        assert_eq!(stats.counts()[Counter::Insert], 0);
    }
}
