//! [`SharedTable`]: an immutable shard table shared between versions by reference count.
//!
//! `Rcu` versions and snapshots share their unchanged shards. A lookup follows the shard array to
//! the `Arc`, the `Arc` to the table's header (control bytes pointer, bucket mask), and the header
//! to the table's memory. An earlier version kept a bitwise copy of the header inline to save the
//! middle load; that relied on `hashbrown`'s private layout, and the load it saved is an L1 hit
//! for any shard read often (the figures are in `BENCHMARKS.md`, "Shared shard tables").

use std::ops::Deref;
use std::sync::Arc;

use hashbrown::HashTable;

/// One shard of a frozen table of `T`s. Derefs to the (immutable) table.
pub(crate) struct SharedTable<T> {
    /// Shared, and never handed out, so nothing can reach the table mutably.
    owner: Arc<HashTable<T>>,
}

impl<T> SharedTable<T> {
    /// Freezes `table`.
    pub(crate) fn new(table: HashTable<T>) -> Self {
        SharedTable {
            owner: Arc::new(table),
        }
    }
}

impl<T> Clone for SharedTable<T> {
    /// Shares the table (a reference count), never copies its entries.
    fn clone(&self) -> Self {
        SharedTable {
            owner: Arc::clone(&self.owner),
        }
    }
}

impl<T> Deref for SharedTable<T> {
    type Target = HashTable<T>;

    #[inline(always)]
    fn deref(&self) -> &HashTable<T> {
        &self.owner
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
