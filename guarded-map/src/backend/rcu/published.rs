//! The published version of an `Rcu` map, with a tag that lets readers keep their own copy of it.
//!
//! `arc-swap` makes loading and replacing the version safe; a load through it costs two locked
//! instructions. Readers instead keep the version they last loaded and compare its tag with the
//! published one, a plain load on x86, and go through `arc-swap` only when it changed. Every version
//! gets a tag no other version of any map ever has (see [`fresh_tag`]), so that the reader's
//! fast-path entry, found by the tag, is this map's and holds this very version: one comparison.
//! The tag is ours because `arc-swap` does not let one peek at the published pointer.

use std::sync::Arc;
use std::sync::atomic::Ordering::{Acquire, Release};

use crate::per_thread::fresh_tag;
use crate::sync::{ArcCell, AtomicU64};
use crate::table::Frozen;

/// The current version of one `Rcu` map.
pub(crate) struct Published<K, V> {
    version: ArcCell<Frozen<K, V>>,
    /// The current version's tag, stored after the version. Release/Acquire: a reader that sees a
    /// new tag then loads that version or a later one, never the one it replaced.
    tag: AtomicU64,
}

impl<K, V> Published<K, V> {
    pub(crate) fn new(version: Arc<Frozen<K, V>>) -> Self {
        Published {
            version: ArcCell::from(version),
            tag: AtomicU64::new(fresh_tag()),
        }
    }

    /// The current version.
    pub(crate) fn load(&self) -> Arc<Frozen<K, V>> {
        self.version.load_full()
    }

    /// Runs `f` on the current version without taking a reference count.
    pub(crate) fn peek<R>(&self, f: impl FnOnce(&Frozen<K, V>) -> R) -> R {
        f(&self.version.load())
    }

    /// The current version's tag. Load it before the version it labels: if a publish falls in
    /// between, the version is newer than its label, which only costs one extra reload.
    #[inline(always)]
    pub(crate) fn tag(&self) -> u64 {
        self.tag.load(Acquire)
    }

    /// Publishes `next`. Callers hold the map's writer lock, so tags are stored in order.
    pub(crate) fn store(&self, next: Arc<Frozen<K, V>>) {
        self.version.store(next);
        self.tag.store(fresh_tag(), Release);
    }
}
