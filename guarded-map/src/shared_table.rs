//! [`SharedTable`]: an immutable shard table shared between versions, readable without a pointer hop.
//!
//! `Rcu` versions and snapshots share their unchanged shards by reference count. Behind an
//! `Arc<HashTable>` a lookup follows the shard array to the `Arc`, then the `Arc` to the table's header
//! (control bytes pointer, bucket mask), then the header to the table's memory: one dependent load
//! more than a plain `hashbrown` table, on every read. A `SharedTable` keeps a copy of the header
//! inline, next to the `Arc` that owns the table, so the shard array leads straight to the header.
//! No crate offers a shareable `hashbrown` table with an inline header.

use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::ptr;
use std::sync::Arc;

use hashbrown::HashTable;

/// One shard of a frozen table of `T`s. Derefs to the (immutable) table.
pub(crate) struct SharedTable<T> {
    /// A bitwise copy of `*owner`: the same control bytes and buckets. Never dropped (the owner
    /// frees the memory) and never mutated (`owner` is shared and only ever read).
    view: ManuallyDrop<HashTable<T>>,
    /// Owns the table's memory; private, so nothing can reach it mutably (`Arc::get_mut`).
    owner: Arc<HashTable<T>>,
}

impl<T> SharedTable<T> {
    /// Freezes `table`.
    pub(crate) fn new(table: HashTable<T>) -> Self {
        Self::from_owner(Arc::new(table))
    }

    fn from_owner(owner: Arc<HashTable<T>>) -> Self {
        // SAFETY: `hashbrown::HashTable` is a header of plain pointers and counts (no `Box` or
        // reference whose uniqueness a copy would break; Miri runs the tests that read through
        // views). The copy reads the memory `owner` keeps alive for as long as `self` exists, and
        // nothing writes that memory: `owner` is shared and never handed out. `ManuallyDrop`
        // keeps the copy from freeing it.
        let view = ManuallyDrop::new(unsafe { ptr::read(&*owner) });
        SharedTable { view, owner }
    }
}

impl<T> Clone for SharedTable<T> {
    /// Shares the table (a reference count), never copies its entries.
    fn clone(&self) -> Self {
        Self::from_owner(Arc::clone(&self.owner))
    }
}

impl<T> Deref for SharedTable<T> {
    type Target = HashTable<T>;

    #[inline(always)]
    fn deref(&self) -> &HashTable<T> {
        &self.view
    }
}

#[cfg(test)]
mod tests {
    use hashbrown::HashTable;

    use super::SharedTable;

    fn hash(k: u64) -> u64 {
        k.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    fn table(keys: std::ops::Range<u64>) -> HashTable<(u64, String)> {
        let mut t = HashTable::new();
        for k in keys {
            t.insert_unique(hash(k), (k, k.to_string()), |p| hash(p.0));
        }
        t
    }

    #[test]
    fn clones_read_the_same_entries_and_free_them_once() {
        let a = SharedTable::new(table(0..100));
        let b = a.clone();
        drop(a);
        // `b` still reads the entries `a` was built with (Miri: no use after free, no leak).
        let found = b.find(hash(7), |e| e.0 == 7);
        assert_eq!(found.map(|e| e.1.as_str()), Some("7"));
        assert_eq!(b.len(), 100);
        let empty = SharedTable::new(table(0..0));
        assert!(empty.clone().is_empty());
    }
}
