//! The hash-table layout both backends share: entries that carry their hash, sharded by hash bits, and
//! the immutable [`Frozen`] form that RCU versions and snapshots are made of.

use std::borrow::Borrow;
use std::sync::Arc;

use hashbrown::HashTable;

use crate::shared_table::SharedTable;

/// One key-value pair with the hash of its key.
///
/// Keeping the hash means a table never calls the user's `Hash` again: growing, rehashing and
/// shrinking cannot panic half-way through (hashbrown drops entries if the hasher panics during an
/// in-place rehash), and they are cheaper for keys that are slow to hash.
#[derive(Clone)]
#[doc(hidden)]
pub struct Entry<K, V> {
    pub(crate) hash: u64,
    pub(crate) key: K,
    pub(crate) value: V,
}

/// One shard's table.
pub(crate) type Table<K, V> = HashTable<Entry<K, V>>;

/// The hasher hashbrown uses when a table grows: the stored hash, no user code.
pub(crate) fn stored_hash<K, V>(entry: &Entry<K, V>) -> u64 {
    entry.hash
}

/// The equality closure for a lookup of `key` (the user's `Eq`, which may panic; tables stay valid).
pub(crate) fn key_eq<'q, K, V, Q>(key: &'q Q) -> impl Fn(&Entry<K, V>) -> bool + 'q
where
    K: Borrow<Q>,
    Q: ?Sized + Eq,
{
    move |entry| entry.key.borrow() == key
}

/// The shard of `hash` among `1 << bits` shards.
///
/// Bits 25 and up (below the top 7, which hashbrown keeps as the in-table tag) are used, so the
/// entries of one shard still differ in the bits hashbrown looks at.
#[inline]
pub(crate) fn shard_index(hash: u64, bits: u32) -> usize {
    shard_among(hash, 1 << bits)
}

/// [`shard_index`] for a power-of-two `count` of shards.
#[inline]
pub(crate) fn shard_among(hash: u64, count: usize) -> usize {
    ((hash >> 25) as usize) & (count - 1)
}

/// The shards of a [`Frozen`] table: shared by `Arc` so that `Rcu` readers can keep them without
/// the rest of the version (one pointer less between a reader and a shard).
pub(crate) type Shards<K, V> = Arc<[SharedTable<K, V>]>;

/// The entry for `key`, whose hash is `hash`, among `shards` (a power-of-two count).
#[inline]
pub(crate) fn find_in<'a, K, V, Q>(
    shards: &'a [SharedTable<K, V>],
    hash: u64,
    key: &Q,
) -> Option<&'a Entry<K, V>>
where
    K: Borrow<Q>,
    Q: ?Sized + Eq,
{
    debug_assert!(shards.len().is_power_of_two());
    let index = shard_among(hash, shards.len());
    // SAFETY: every `Shards` holds `1 << bits` tables (`Frozen`'s constructors; an RCU write
    // replaces one shard of a copy of the current slice; a snapshot copies the sharded backend's
    // power-of-two shards), so masking by `len - 1` lands inside. Indexing would add a check for
    // the empty slice to every read.
    unsafe { shards.get_unchecked(index) }.find(hash, key_eq(key))
}

/// An immutable sharded table: one published RCU version, or one snapshot.
#[doc(hidden)]
pub struct Frozen<K, V> {
    pub(crate) shards: Shards<K, V>,
    pub(crate) bits: u32,
    pub(crate) len: usize,
    pub(crate) capacity: usize,
}

impl<K, V> Frozen<K, V> {
    /// An empty table of `1 << bits` shards, room for `capacity` entries in all.
    pub(crate) fn with_capacity(bits: u32, capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(1 << bits);
        let shards: Shards<K, V> = (0..1usize << bits)
            .map(|_| SharedTable::new(Table::with_capacity(per_shard)))
            .collect();
        let capacity = shards.iter().map(|t| t.capacity()).sum();
        Frozen {
            shards,
            bits,
            len: 0,
            capacity,
        }
    }

    /// Builds a table of `1 << bits` shards holding `entries` (whose keys must be distinct).
    pub(crate) fn from_entries(
        bits: u32,
        len: usize,
        entries: impl Iterator<Item = Entry<K, V>>,
    ) -> Self {
        let mut tables: Vec<Table<K, V>> = (0..1usize << bits)
            .map(|_| Table::with_capacity(len.div_ceil(1 << bits)))
            .collect();
        let mut count = 0;
        for entry in entries {
            let shard = &mut tables[shard_index(entry.hash, bits)];
            shard.insert_unique(entry.hash, entry, stored_hash);
            count += 1;
        }
        let capacity = tables.iter().map(|t| t.capacity()).sum();
        Frozen {
            shards: tables.into_iter().map(SharedTable::new).collect(),
            bits,
            len: count,
            capacity,
        }
    }

    /// The entry for `key`, whose hash is `hash`.
    #[inline]
    pub(crate) fn find<Q>(&self, hash: u64, key: &Q) -> Option<&Entry<K, V>>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        find_in(&self.shards, hash, key)
    }

    /// Every entry, shard by shard.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Entry<K, V>> + '_ {
        self.shards.iter().flat_map(|table| table.iter())
    }
}
