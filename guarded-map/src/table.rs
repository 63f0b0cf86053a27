//! The hash-table layouts of the backends, sharded by hash bits: the `Sharded` backend's tables of
//! entries that carry their hash, and the immutable [`Frozen`] form, of bare key-value pairs, that
//! RCU versions and snapshots are made of.

use std::borrow::Borrow;
use std::sync::Arc;

use hashbrown::HashTable;

use crate::shared_table::SharedTable;

/// One key-value pair with the hash of its key: an entry of a `Sharded` table.
///
/// Keeping the hash means a table that grows in place never calls the user's `Hash`: growing,
/// rehashing and shrinking cannot panic half-way through (hashbrown drops entries if the hasher
/// panics during an in-place rehash), and they are cheaper for keys that are slow to hash.
#[derive(Clone)]
#[doc(hidden)]
pub struct Entry<K, V> {
    pub(crate) hash: u64,
    pub(crate) key: K,
    pub(crate) value: V,
}

/// One key-value pair: an entry of a [`Frozen`] table.
///
/// Frozen tables never change; a write changes a private copy, which a panicking `Hash` leaves
/// unpublished. So they keep no hash: a third less memory for small keys and values, and a third
/// more of the table in each cache line a lookup reads (hashbrown itself reads measurably slower
/// with 24-byte entries than with 16-byte ones).
#[derive(Clone)]
#[doc(hidden)]
pub struct Pair<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
}

/// The key of a table entry, for [`key_eq`].
pub(crate) trait Keyed<K> {
    fn key(&self) -> &K;
}

impl<K, V> Keyed<K> for Entry<K, V> {
    #[inline(always)]
    fn key(&self) -> &K {
        &self.key
    }
}

impl<K, V> Keyed<K> for Pair<K, V> {
    #[inline(always)]
    fn key(&self) -> &K {
        &self.key
    }
}

/// One shard's table of the `Sharded` backend.
pub(crate) type Table<K, V> = HashTable<Entry<K, V>>;

/// One shard's table of a [`Frozen`] table (and the private copy an RCU write changes).
pub(crate) type FrozenTable<K, V> = HashTable<Pair<K, V>>;

/// The hasher hashbrown uses when a `Sharded` table grows: the stored hash, no user code.
pub(crate) fn stored_hash<K, V>(entry: &Entry<K, V>) -> u64 {
    entry.hash
}

/// The equality closure for a lookup of `key` (the user's `Eq`, which may panic; tables stay valid).
pub(crate) fn key_eq<'q, K, E, Q>(key: &'q Q) -> impl Fn(&E) -> bool + 'q
where
    E: Keyed<K>,
    K: Borrow<Q>,
    Q: ?Sized + Eq,
{
    move |entry| entry.key().borrow() == key
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
pub(crate) type Shards<K, V> = Arc<[SharedTable<Pair<K, V>>]>;

/// The entry for `key`, whose hash is `hash`, among `shards` (a power-of-two count).
#[inline]
pub(crate) fn find_in<'a, K, V, Q>(
    shards: &'a [SharedTable<Pair<K, V>>],
    hash: u64,
    key: &Q,
) -> Option<&'a Pair<K, V>>
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
            .map(|_| SharedTable::new(FrozenTable::with_capacity(per_shard)))
            .collect();
        let capacity = shards.iter().map(|t| t.capacity()).sum();
        Frozen {
            shards,
            bits,
            len: 0,
            capacity,
        }
    }

    /// Builds a table of `1 << bits` shards holding `pairs`, each with the hash of its key (the
    /// keys must be distinct); `rehash` hashes a key again when a shard outgrows its share.
    pub(crate) fn from_pairs(
        bits: u32,
        len: usize,
        pairs: impl Iterator<Item = (u64, Pair<K, V>)>,
        rehash: impl Fn(&K) -> u64,
    ) -> Self {
        let mut tables: Vec<FrozenTable<K, V>> = (0..1usize << bits)
            .map(|_| FrozenTable::with_capacity(len.div_ceil(1 << bits)))
            .collect();
        let mut count = 0;
        for (hash, pair) in pairs {
            let shard = &mut tables[shard_index(hash, bits)];
            shard.insert_unique(hash, pair, |pair| rehash(&pair.key));
            count += 1;
        }
        Self::from_tables(bits, count, tables)
    }

    /// A frozen table of `tables`, which hold `len` pairs in all, each in the shard its hash
    /// selects among `1 << bits`.
    pub(crate) fn from_tables(bits: u32, len: usize, tables: Vec<FrozenTable<K, V>>) -> Self {
        debug_assert_eq!(tables.len(), 1 << bits);
        let capacity = tables.iter().map(|t| t.capacity()).sum();
        Frozen {
            shards: tables.into_iter().map(SharedTable::new).collect(),
            bits,
            len,
            capacity,
        }
    }

    /// The pair for `key`, whose hash is `hash`.
    #[inline]
    pub(crate) fn find<Q>(&self, hash: u64, key: &Q) -> Option<&Pair<K, V>>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        find_in(&self.shards, hash, key)
    }

    /// Every pair, shard by shard.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Pair<K, V>> + '_ {
        self.shards.iter().flat_map(|table| table.iter())
    }
}
