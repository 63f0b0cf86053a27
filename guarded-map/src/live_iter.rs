//! [`LiveIter`]: the entries of a live map, copied one shard at a time.

use std::ptr;
use std::vec;

use crate::backend::Storage;
use crate::reentry;
use crate::spec::{MapSpec, SpecFor, StoreOf};
use crate::stats::Recorder;
use crate::trie::Frozen;

/// An iterator over clones of a live map's entries, from
/// [`GuardedMap::iter`](crate::GuardedMap::iter).
///
/// It copies one shard at a time and holds no lock between two calls of `next`:
/// - `Rcu`: every entry of the version current at the first call (consistent, like a
///   [`Snapshot`](crate::Snapshot), whose copy it makes shard by shard);
/// - `Sharded`: each shard as it is when the iterator reaches it, under that shard's read lock
///   only. Entries written meanwhile may or may not be seen; an entry present throughout is seen
///   exactly once.
pub struct LiveIter<'a, K, V, S: MapSpec> {
    store: &'a StoreOf<S, K, V>,
    /// The map's label when its reads take a lock: each step is then checked as a read of it
    /// (the iterator may be advanced inside one of the map's writes).
    locked_reads: Option<&'static str>,
    rec: Recorder<'a>,
    /// The position of the next part to copy; `None` once all are.
    next_part: Option<usize>,
    pinned: Option<Frozen<K, V>>,
    buffer: vec::IntoIter<(K, V)>,
}

impl<'a, K, V, S: MapSpec> LiveIter<'a, K, V, S> {
    pub(crate) fn new(
        store: &'a StoreOf<S, K, V>,
        locked_reads: Option<&'static str>,
        rec: Recorder<'a>,
    ) -> Self {
        LiveIter {
            store,
            locked_reads,
            rec,
            next_part: Some(0),
            pinned: None,
            buffer: Vec::new().into_iter(),
        }
    }
}

impl<K: Clone, V: Clone, S: SpecFor<K, V>> Iterator for LiveIter<'_, K, V, S> {
    type Item = (K, V);

    fn next(&mut self) -> Option<(K, V)> {
        loop {
            if let Some(entry) = self.buffer.next() {
                return Some(entry);
            }
            if let Some(label) = self.locked_reads {
                reentry::check_locked_read(ptr::from_ref(self.store).cast(), label, "iter");
            }
            // The buffer's allocation is reused for the next shard.
            let mut buffer = std::mem::take(&mut self.buffer).collect::<Vec<_>>();
            buffer.clear();
            let part = self.next_part?;
            self.next_part = self
                .store
                .copy_part(part, self.rec, &mut self.pinned, &mut buffer);
            if self.next_part.is_none() {
                // Nothing is left to copy: let go of the pinned version now.
                self.pinned = None;
            }
            self.buffer = buffer.into_iter();
        }
    }
}
