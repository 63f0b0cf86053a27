//! Attaching the counts a backend keeps ([`Kept`]) to its map's statistics, and detaching them.
//!
//! A store keeps the data that holds its counts in an [`Attached`], which owns that data and an
//! [`Attachment`] (a reference to the map's statistics). Counts attached through it are summed with
//! the map's own until the `Attached` is dropped; its `Drop` first folds their last values into the
//! statistics and detaches them, under the same lock every sum reads them under, and only then
//! frees the data. (A map being dropped retires its statistics first, once the registry holds its
//! final counts: the retirement forgets every attached pointer, and the drops fold nothing.) The
//! data never moves and is never reachable mutably while anything is attached, so a count found
//! through a shared reference to it stays valid until the detach: the whole argument is in this
//! module. A store that changes its representation detaches the old counts the same way, by
//! dropping the old `Attached`.
//!
//! An attachment is a run: one value, or a value at the same place in each item of a slice (a
//! `Sharded` store's shard lock words), read through one pointer with the slice's provenance and
//! summed by one call made for the values' type.

use std::ops::Deref;
use std::ptr;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use parking_lot::Mutex;
use smallvec::SmallVec;

use super::kept::Kept;
use super::slots::{Counts, MapStats};

/// The counts attached to one map's statistics, and the final counts of those detached.
#[derive(Default)]
pub(super) struct Attachments {
    /// Inline: a report reads every map's list, and a store attaches one or two runs, so a
    /// separate allocation would be one more cache miss per map per report (measured: the most
    /// expensive load of a report over 100 000 maps).
    live: SmallVec<[Pointer; 2]>,
    /// Boxed when first needed: most maps never detach (a store detaches when it changes
    /// representation), and every map holds an `Attachments`.
    detached: Option<Box<Counts>>,
    /// Set when the map is dropped, after the registry folded its final counts: nothing reads
    /// these counts any more, so the attachments dropped after it fold nothing.
    retired: bool,
}

impl Attachments {
    /// Forgets every attached count (see [`retired`](Self::retired)): no pointer into data that
    /// is about to be freed is left behind.
    pub(super) fn retire(&mut self) {
        self.live.clear();
        self.retired = true;
    }

    /// Adds every attached count, live and detached, to `total`.
    pub(super) fn add_to(&self, total: &mut Counts) {
        if let Some(detached) = &self.detached {
            total.add(detached);
        }
        for attached in &self.live {
            // SAFETY: a live entry's counts are alive: the `Attached` that pushed it removes it
            // (under the lock the caller holds) before it frees the data they are in.
            unsafe { attached.add_to(total) };
        }
    }
}

/// A pointer to attached counts: a run of `count` values of one [`Kept`] type, `stride` bytes
/// apart (one value, or one per shard of a store), and the attachment it came through. A run is
/// summed by one call, `add`, made for its type: the values' `add_to` inlined in a loop, not one
/// dynamic call each.
struct Pointer {
    owner: u64,
    /// The first value, with the provenance of everything the run covers (the slice it came from).
    first: *const u8,
    count: u32,
    stride: u32,
    /// [`add_run`] for the values' type.
    add: unsafe fn(*const u8, usize, usize, &mut Counts),
}

impl Pointer {
    /// Adds the run's counts to `total`.
    ///
    /// # Safety
    ///
    /// The run must be alive: the entry is live (see [`Attachments`]) and the caller holds the
    /// lock the entries live under.
    unsafe fn add_to(&self, total: &mut Counts) {
        // SAFETY: `Keep` made the run from values of the type `add` was made for, at these
        // addresses, reachable through `first`; the caller vouches for their being alive.
        unsafe { (self.add)(self.first, self.count as usize, self.stride as usize, total) }
    }
}

/// Adds the counts of the `count` values of type `U` that start at `first`, `stride` bytes apart.
///
/// # Safety
///
/// Each of those addresses holds a live `U`, reachable through `first`'s provenance.
unsafe fn add_run<U: Kept>(first: *const u8, count: usize, stride: usize, total: &mut Counts) {
    for i in 0..count {
        // SAFETY: the caller's promise, for the `i`-th value.
        unsafe { &*first.add(i * stride).cast::<U>() }.add_to(total);
    }
}

// SAFETY: the pointees are `Sync` (a `Kept` bound) and alive while the entry exists (see
// `Attached`); sending or sharing the pointer is like sending or sharing shared references to them.
unsafe impl Send for Pointer {}
// SAFETY: as for `Send`.
unsafe impl Sync for Pointer {}

/// Tells one attachment's entries from another's (a map may briefly hold two while it switches
/// representation).
static NEXT_OWNER: AtomicU64 = AtomicU64::new(1);

/// A hold on one map's statistics, for counts to be attached through (see [`Attached`]).
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
}

impl Drop for Attachment {
    /// Folds the last values of this attachment's counts into the statistics and detaches them.
    fn drop(&mut self) {
        let mut attachments = self.stats.attachments().lock();
        let Attachments {
            live,
            detached,
            retired,
        } = &mut *attachments;
        if *retired || !live.iter().any(|attached| attached.owner == self.owner) {
            return;
        }
        let detached = detached.get_or_insert_with(Box::default);
        live.retain(|attached| {
            if attached.owner != self.owner {
                return true;
            }
            // SAFETY: the counts are alive until the `Attached` holding this attachment frees
            // its data, which it does after dropping the attachment (now), and the lock is held.
            unsafe { attached.add_to(detached) };
            false
        });
    }
}

/// A store's data (`T`) together with the attachment of the counts kept in it. Derefs to the data,
/// never mutably once anything can be attached.
pub(crate) struct Attached<T: ?Sized> {
    /// `None` until [`attach_to`](Self::attach_to): nothing is attached meanwhile.
    attachment: Option<Attachment>,
    /// From `Box::into_raw`, freed in `Drop` after the attachment is dropped. A raw pointer, not a
    /// `Box`: moving a `Box` asserts unique access to what it holds (Stacked Borrows), which would
    /// invalidate the attached pointers into it.
    data: NonNull<T>,
}

// SAFETY: `Attached<T>` owns its `T` as a `Box<T>` would; the attachment is `Send + Sync`.
unsafe impl<T: ?Sized + Send> Send for Attached<T> {}
// SAFETY: as for `Send`: shared access gives only `&T`.
unsafe impl<T: ?Sized + Sync> Sync for Attached<T> {}

/// Collects the counts an [`Attached::attach_to`] call picks out of its data (borrowed for `'a`).
pub(crate) struct Keep<'a> {
    attachment: &'a Attachment,
    /// Inline, as in [`Attachments`]: building a map allocates nothing for it.
    live: SmallVec<[Pointer; 2]>,
}

impl<'a> Keep<'a> {
    /// Attaches `kept`, which lives in the data (or longer).
    pub(crate) fn keep<U: Kept + 'static>(&mut self, kept: &'a U) {
        self.keep_each(std::slice::from_ref(kept), |kept| kept);
    }

    /// Attaches the counts `kept` finds in each of `items` (at the same place in each), as one
    /// run: a report reads them in one call.
    pub(crate) fn keep_each<T, U: Kept + 'static>(
        &mut self,
        items: &'a [T],
        kept: impl Fn(&'a T) -> &'a U,
    ) {
        let Some(item) = items.first() else {
            return;
        };
        let stride = size_of::<T>();
        let base = items.as_ptr().cast::<u8>();
        // Inside each item, at one offset: so the run reads only memory the slice covers.
        let offset = ptr::from_ref(kept(item))
            .addr()
            .checked_sub(base.addr())
            .filter(|offset| offset + size_of::<U>() <= stride)
            .expect("attached counts lie inside their item");
        for (i, item) in items.iter().enumerate() {
            assert_eq!(
                ptr::from_ref(kept(item)).addr(),
                base.addr() + i * stride + offset,
                "attached counts sit at the same place in each item"
            );
        }
        self.live.push(Pointer {
            owner: self.attachment.owner,
            // Derived from the whole slice: reading the i-th value stays within its provenance.
            first: base.wrapping_add(offset),
            count: u32::try_from(items.len()).expect("fewer than 2^32 values in a run"),
            stride: u32::try_from(stride).expect("items smaller than 4 GiB"),
            add: add_run::<U>,
        });
    }
}

impl<T: ?Sized> Attached<T> {
    /// Owns `data`; nothing is attached yet.
    pub(crate) fn new(data: Box<T>) -> Self {
        Attached {
            attachment: None,
            data: NonNull::from(Box::leak(data)),
        }
    }

    /// The data, mutably, while nothing can be attached yet (before [`attach_to`](Self::attach_to)).
    pub(crate) fn get_mut(&mut self) -> Option<&mut T> {
        if self.attachment.is_some() {
            // Counts in the data are read through pointers: no `&mut` may be made.
            return None;
        }
        // SAFETY: the data is alive (freed only in `Drop`) and `&mut self` is the only access;
        // with no attachment, no pointer into it exists.
        Some(unsafe { self.data.as_mut() })
    }

    /// Attaches, through `attachment`, the counts `pick` passes to its [`Keep`] (nothing for a
    /// map without statistics). Once only: a second attachment would count the same cells twice.
    ///
    /// `pick` may attach only what it reaches through the data's shared reference (or what lives
    /// forever): such a reference stays valid for as long as the data is shared, which is until
    /// `Drop` detaches it, since the data is never moved or reached mutably meanwhile.
    pub(crate) fn attach_to(
        &mut self,
        attachment: Attachment,
        pick: impl for<'a> FnOnce(&'a T, &mut Keep<'a>),
    ) {
        assert!(self.attachment.is_none(), "counts are attached once");
        let attachment = &*self.attachment.insert(attachment);
        if !attachment.enabled {
            return;
        }
        let mut keep = Keep {
            attachment,
            live: SmallVec::new(),
        };
        // SAFETY: alive until `Drop`; from here on only shared references to it are made.
        pick(unsafe { self.data.as_ref() }, &mut keep);
        attachment.stats.attachments().lock().live.extend(keep.live);
    }
}

impl<T: ?Sized> Deref for Attached<T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        // SAFETY: alive until `Drop`; only shared references are handed out once anything can be
        // attached (`get_mut` needs no attachment).
        unsafe { self.data.as_ref() }
    }
}

impl<T: ?Sized> Drop for Attached<T> {
    fn drop(&mut self) {
        // Detach first: after this, nothing points into the data.
        drop(self.attachment.take());
        // SAFETY: from `Box::leak` in `new`, freed once, here.
        drop(unsafe { Box::from_raw(self.data.as_ptr()) });
    }
}

/// The lock an attachment list lives under.
pub(super) type AttachmentsLock = Mutex<Attachments>;

#[cfg(test)]
mod tests {
    use super::Attached;
    use crate::descriptor::{BackendKind, Descriptor};
    use crate::stats::{Counter, MapStats, WriteCounts, Wrote};

    static DESCRIPTOR: Descriptor = Descriptor::new("attach::tests", BackendKind::Sharded);

    fn counts() -> Attached<WriteCounts> {
        Attached::new(Box::default())
    }

    #[test]
    fn dropping_an_attachment_keeps_its_counts_and_detaches_only_its_own() {
        let stats = MapStats::new(&DESCRIPTOR, 16);
        let rec = stats.recorder(true);
        // Two attachments at once, as while a map switches representation.
        let (mut old, mut new) = (counts(), counts());
        old.attach_to(rec.attachment(), |counts, keep| keep.keep(counts));
        new.attach_to(rec.attachment(), |counts, keep| keep.keep(counts));
        old.record(Wrote::insert(false));
        old.record(Wrote::insert(false));
        new.record(Wrote::Removed);
        assert_eq!(stats.counts()[Counter::Insert], 2);
        drop(old);
        // The detached counts stay; the other attachment's are still read live.
        new.record(Wrote::Removed);
        let counts = stats.counts();
        assert_eq!(counts[Counter::Insert], 2);
        assert_eq!(counts[Counter::Added], 2);
        assert_eq!(counts[Counter::Remove], 2);
        drop(new);
        assert_eq!(stats.counts()[Counter::Remove], 2);
    }

    #[test]
    fn a_run_of_counts_is_summed_and_folded_once_each() {
        // Counts inside larger items, as a store's shards hold their lock words.
        #[derive(Default)]
        struct Item {
            _before: [u64; 3],
            writes: WriteCounts,
            _after: u8,
        }
        let stats = MapStats::new(&DESCRIPTOR, 16);
        let mut items: Attached<[Item]> =
            Attached::new((0..5).map(|_| Item::default()).collect::<Box<[Item]>>());
        items.attach_to(stats.recorder(true).attachment(), |items, keep| {
            keep.keep_each(items, |item| &item.writes);
        });
        for (i, item) in items.iter().enumerate() {
            for _ in 0..=i {
                item.writes.record(Wrote::insert(false));
            }
        }
        assert_eq!(stats.counts()[Counter::Insert], 1 + 2 + 3 + 4 + 5);
        drop(items);
        assert_eq!(stats.counts()[Counter::Insert], 15, "folded once on detach");
    }

    #[test]
    fn the_data_is_mutable_only_until_it_is_attached() {
        let stats = MapStats::new(&DESCRIPTOR, 16);
        let mut kept = counts();
        kept.get_mut()
            .expect("mutable until attached")
            .record(Wrote::insert(false));
        kept.attach_to(stats.recorder(true).attachment(), |counts, keep| {
            keep.keep(counts)
        });
        assert!(kept.get_mut().is_none(), "never mutable once attached");
        assert_eq!(stats.counts()[Counter::Insert], 1);
        drop(kept);
        assert_eq!(stats.counts()[Counter::Insert], 1);
    }

    #[test]
    fn a_map_without_statistics_attaches_nothing() {
        let stats = MapStats::new(&DESCRIPTOR, 16);
        let mut kept = counts();
        kept.attach_to(stats.recorder(false).attachment(), |counts, keep| {
            keep.keep(counts)
        });
        kept.record(Wrote::insert(false));
        assert_eq!(stats.counts()[Counter::Insert], 0);
        drop(kept);
        assert_eq!(stats.counts()[Counter::Insert], 0);
    }
}
