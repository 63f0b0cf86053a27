//! The hash-table layouts of the backends, sharded by hash bits: tables of bare key-value pairs,
//! locked per shard by the `Sharded` backend, and the leaves of the hash trie that RCU versions and
//! snapshots are made of (`trie/`); and [`make_room`], how a table grows without ever losing an
//! entry to a panicking `Hash`.

use std::borrow::Borrow;
use std::panic::{self, AssertUnwindSafe};

use hashbrown::HashTable;

/// One key-value pair with the hash of its key: how entries move into a new store (built from an
/// iterator, or converted from a `HashMap`), hashed once on the way in.
#[derive(Clone)]
#[doc(hidden)]
pub struct Entry<K, V> {
    pub(crate) hash: u64,
    pub(crate) key: K,
    pub(crate) value: V,
}

/// One key-value pair: an entry of every table.
///
/// Tables keep no hashes: a third less memory for small keys and values, and a third more of the
/// table in each cache line a lookup reads (hashbrown itself reads measurably slower with 24-byte
/// entries than with 16-byte ones). Growing a table hashes its keys again, which [`make_room`]
/// does before anything moves.
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

/// One shard's table: of the `Sharded` backend (under its lock), a trie's leaf, or the private
/// copy of a leaf an RCU write changes.
pub(crate) type Table<K, V> = HashTable<Pair<K, V>>;

/// Makes room in `table` for one more entry, so that hashbrown never grows it itself: hashbrown
/// may rehash a table with deleted slots in place, and drops entries if the hasher panics there.
/// When the table is full, every key is hashed first, while nothing has changed, and the entries
/// then move, with their hashes in hand, into a new table for twice as many (never below
/// `min_capacity`). A panicking `Hash` leaves the table as it was. O(1) amortized: a table is
/// rebuilt only after as many inserts as it holds, counting the slots of removed entries.
#[inline]
pub(crate) fn make_room<K, V>(
    table: &mut Table<K, V>,
    min_capacity: usize,
    rehash: impl Fn(&K) -> u64,
) {
    if table.len() == table.capacity() {
        rebuild(table, (table.len() * 2).max(min_capacity).max(1), rehash);
    }
}

/// Moves the entries of `table` into a new table with room for `capacity` (at least its length),
/// hashing every key before anything moves (see [`make_room`]).
#[cold]
#[inline(never)]
pub(crate) fn rebuild<K, V>(table: &mut Table<K, V>, capacity: usize, rehash: impl Fn(&K) -> u64) {
    let hashes: Vec<u64> = table
        .iter()
        .map(|pair| hash_again(&rehash, &pair.key))
        .collect();
    let mut rebuilt = Table::with_capacity(capacity.max(table.len()));
    // `drain` visits the entries in the order `iter` did: both walk the buckets of the same
    // unchanged table in order (`drain_visits_entries_in_iteration_order` holds hashbrown to it).
    for (pair, hash) in table.drain().zip(hashes) {
        rebuilt.insert_unique(hash, pair, |_| {
            unreachable!("a table with room for every entry does not grow")
        });
    }
    *table = rebuilt;
}

/// How many times [`hash_again`] calls `Hash` on one key before it lets the panic go.
const HASH_ATTEMPTS: u32 = 3;

/// The hash of a key already stored, computed again to move it (tables keep no hashes): a `Hash`
/// that panics is called again, up to [`HASH_ATTEMPTS`] times in all, before the panic goes on.
///
/// Moving a table hashes every key in it, so a `Hash` that panics once in a thousand calls would
/// otherwise almost surely fail any rebuild of a few thousand entries, every time: the table could
/// never grow again. The key hashed fine when it was inserted, so the panic was not about it.
pub(crate) fn hash_again<K>(rehash: impl Fn(&K) -> u64, key: &K) -> u64 {
    let mut attempt = 1;
    loop {
        match panic::catch_unwind(AssertUnwindSafe(|| rehash(key))) {
            Ok(hash) => return hash,
            Err(payload) if attempt == HASH_ATTEMPTS => panic::resume_unwind(payload),
            Err(_) => attempt += 1,
        }
    }
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

/// The shard of `hash` among a power-of-two `count` of shards.
///
/// Bits 25 and up (below the top 7, which hashbrown keeps as the in-table tag) are used, so the
/// entries of one shard still differ in the bits hashbrown looks at. The `Rcu` trie indexes by
/// the same bits (`trie/node.rs`), so a `Sharded` snapshot's tables become its leaves as they are.
#[inline]
pub(crate) fn shard_among(hash: u64, count: usize) -> usize {
    ((hash >> 25) as usize) & (count - 1)
}

#[cfg(test)]
mod tests {
    use super::{Pair, Table, make_room, rebuild};

    fn hash(key: &u64) -> u64 {
        key.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    fn table(keys: impl Iterator<Item = u64>) -> Table<u64, u64> {
        let mut table = Table::new();
        for key in keys {
            make_room(&mut table, 0, hash);
            table.insert_unique(hash(&key), Pair { key, value: key }, |_| unreachable!());
        }
        table
    }

    /// Entries per test table: fewer under Miri, which runs them a thousand times slower.
    const N: u64 = if cfg!(miri) { 200 } else { 10_000 };

    #[test]
    fn drain_visits_entries_in_iteration_order() {
        let mut t = table(0..N);
        // Deleted slots among the full ones, as churn leaves them.
        for key in (0..N).step_by(3) {
            t.find_entry(hash(&key), |p| p.key == key)
                .ok()
                .unwrap()
                .remove();
        }
        let iterated: Vec<u64> = t.iter().map(|p| p.key).collect();
        let drained: Vec<u64> = t.drain().map(|p| p.key).collect();
        assert_eq!(iterated, drained);
    }

    #[test]
    fn growing_keeps_every_entry_findable() {
        let mut t = table(0..N);
        for key in (0..N).filter(|k| k % 2 == 0) {
            t.find_entry(hash(&key), |p| p.key == key)
                .ok()
                .unwrap()
                .remove();
        }
        rebuild(&mut t, 0, hash);
        assert_eq!(t.len() as u64, N / 2);
        for key in 0..N {
            let found = t.find(hash(&key), |p| p.key == key).map(|p| p.value);
            assert_eq!(found, (key % 2 == 1).then_some(key));
        }
    }

    #[test]
    fn a_panicking_hash_leaves_the_table_as_it_was() {
        let mut t = table(0..100);
        while t.len() < t.capacity() {
            let key = t.len() as u64 + 1000;
            t.insert_unique(hash(&key), Pair { key, value: key }, |_| unreachable!());
        }
        let before: Vec<u64> = t.iter().map(|p| p.key).collect();
        let calls = std::cell::Cell::new(0);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            make_room(&mut t, 0, |key| {
                calls.set(calls.get() + 1);
                assert!(calls.get() < 50, "the user's Hash panics");
                hash(key)
            })
        }));
        assert!(panicked.is_err());
        assert_eq!(t.iter().map(|p| p.key).collect::<Vec<_>>(), before);
        for &key in &before {
            assert!(t.find(hash(&key), |p| p.key == key).is_some());
        }
    }
}
