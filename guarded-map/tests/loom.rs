//! loom models of the RCU publish path and the sharded lock path: every interleaving of a few
//! threads is explored. Run with
//! `RUSTFLAGS="--cfg guarded_map_loom" cargo test -p guarded-map --test loom --release`.
//! (The shard lock's own protocol has a model beside it, in `backend/sharded/lock.rs`.)
//! (Hashers are fixed, see `GuardedMap` below. Statistics are off in these specs: the registry's
//! locks are not loom's.)
#![cfg(guarded_map_loom)]

use std::collections::hash_map::DefaultHasher;
use std::hash::BuildHasherDefault;

use guarded_map::{GuardedMap as Map, map_spec};

/// Models must be deterministic: a `RandomState` would move keys between shards (and so change which
/// locks are taken) from one explored execution to the next.
type GuardedMap<K, V, S> = Map<K, V, S, BuildHasherDefault<DefaultHasher>>;
use loom::sync::Arc;
use loom::thread;

map_spec!(RcuSpec: HashMap<u8, u32>, rcu, stats = false);
map_spec!(ShardedSpec: HashMap<u8, u32>, sharded, shards = 2, stats = false);
map_spec!(ShardedBounded: HashMap<u8, u32>, sharded, shards = 2, max_len = 1, stats = false);
map_spec!(RcuBounded: HashMap<u8, u32>, rcu, max_len = 1, stats = false);

/// Two writers increment one key: the writer lock serializes load-copy-publish, so neither
/// increment is lost; a concurrent reader sees 0, 1 or 2 and never anything else.
#[test]
fn rcu_concurrent_upserts_lose_nothing() {
    loom::model(|| {
        let map = Arc::new(GuardedMap::<u8, u32, RcuSpec>::new());
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let map = map.clone();
                thread::spawn(move || map.upsert(1, || 0, |v| *v += 1))
            })
            .collect();
        let seen = map.get_cloned(&1).unwrap_or(0);
        assert!(seen <= 2);
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(map.get_cloned(&1), Some(2));
    });
}

/// Writers of different keys (which may share a shard) both survive, and a snapshot taken meanwhile
/// holds the first key whenever it holds the second, which is inserted after it.
#[test]
fn rcu_snapshot_is_a_published_state() {
    loom::model(|| {
        let map = Arc::new(GuardedMap::<u8, u32, RcuSpec>::new());
        let writer = {
            let map = map.clone();
            thread::spawn(move || {
                map.insert(1, 10);
                map.insert(2, 20);
            })
        };
        let other = {
            let map = map.clone();
            thread::spawn(move || {
                map.insert(3, 30);
            })
        };
        let snapshot = map.snapshot();
        if snapshot.contains_key(&2) {
            assert_eq!(snapshot.get(&1), Some(&10));
        }
        assert_eq!(snapshot.len(), snapshot.iter().count());
        writer.join().unwrap();
        other.join().unwrap();
        assert_eq!(map.len(), 3);
    });
}

#[test]
fn sharded_concurrent_upserts_lose_nothing() {
    loom::model(|| {
        let map = Arc::new(GuardedMap::<u8, u32, ShardedSpec>::new());
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let map = map.clone();
                thread::spawn(move || map.upsert(1, || 0, |v| *v += 1))
            })
            .collect();
        assert!(map.with(&1, |v| *v).unwrap_or(0) <= 2);
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(map.get_cloned(&1), Some(2));
        assert_eq!(map.len(), 1);
    });
}

/// The all-shards read lock of a sharded snapshot gives one instant: never key 2 without key 1.
#[test]
fn sharded_snapshot_is_one_instant() {
    loom::model(|| {
        let map = Arc::new(GuardedMap::<u8, u32, ShardedSpec>::new());
        let writer = {
            let map = map.clone();
            thread::spawn(move || {
                for k in 0..4 {
                    map.insert(k, u32::from(k));
                }
            })
        };
        let snapshot = map.snapshot();
        let n = snapshot.len() as u8;
        for k in 0..n {
            assert!(
                snapshot.contains_key(&k),
                "snapshot of {n} entries lacks {k}"
            );
        }
        writer.join().unwrap();
    });
}

/// Two keys the 2-shard maps put in different shards (shard = bit 25 of the hash), so that only the
/// `max_len` reservation, not a shard lock, stands between the racers.
fn keys_in_different_shards() -> [u8; 2] {
    use std::hash::BuildHasher;
    let shard = |k: u8| (BuildHasherDefault::<DefaultHasher>::default().hash_one(k) >> 25) & 1;
    let other = (1..=u8::MAX)
        .find(|k| shard(*k) != shard(0))
        .expect("some key in the other shard");
    [0, other]
}

/// Two inserts of new keys into different shards race for the last free place: exactly one wins,
/// for both backends.
fn race<S: guarded_map::SpecFor<u8, u32>>(map: GuardedMap<u8, u32, S>)
where
    GuardedMap<u8, u32, S>: Send + Sync,
{
    let map = Arc::new(map);
    let racers: Vec<_> = keys_in_different_shards()
        .into_iter()
        .map(|k| {
            let map = map.clone();
            thread::spawn(move || map.try_insert(k, 0).is_ok())
        })
        .collect();
    let won: usize = racers
        .into_iter()
        .map(|r| usize::from(r.join().unwrap()))
        .sum();
    assert_eq!(won, 1);
    assert_eq!(map.len(), 1);
}

#[test]
fn sharded_max_len_admits_exactly_one() {
    loom::model(|| race(GuardedMap::<u8, u32, ShardedBounded>::new()));
}

#[test]
fn rcu_max_len_admits_exactly_one() {
    loom::model(|| race(GuardedMap::<u8, u32, RcuBounded>::new()));
}

/// A value that says whether it has been dropped, in memory the model tracks (each clone, made
/// when a write copies its leaf, has a flag of its own).
struct Tracked(Arc<loom::sync::atomic::AtomicBool>);

impl Clone for Tracked {
    fn clone(&self) -> Self {
        Tracked::new().0
    }
}

impl Tracked {
    fn new() -> (Self, Arc<loom::sync::atomic::AtomicBool>) {
        let freed = Arc::new(loom::sync::atomic::AtomicBool::new(false));
        (Tracked(freed.clone()), freed)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.store(true, loom::sync::atomic::Ordering::Relaxed);
    }
}

map_spec!(RcuTracked: HashMap<u8, Tracked>, rcu, stats = false);

/// The grace period: a reader inside a read keeps the leaf it looks at alive while a writer
/// replaces the key (retiring the leaf) and collects what it retired, twice over; once the
/// reader is done, a later write frees it. Each write starts a grace period (loom's batch is one
/// node), so the writer scans the reader's mark at every point the model chooses.
#[test]
fn rcu_grace_period_waits_for_the_reader_inside() {
    loom::model(|| {
        let map = Arc::new(GuardedMap::<u8, Tracked, RcuTracked>::new());
        let (first, first_freed) = Tracked::new();
        map.insert(1, first);
        let writer = {
            let map = map.clone();
            thread::spawn(move || {
                for _ in 0..2 {
                    map.insert(1, Tracked::new().0);
                }
            })
        };
        map.with(&1, |value| {
            // Whatever version this read found, it is not freed while the read runs.
            assert!(!value.0.load(loom::sync::atomic::Ordering::Relaxed));
            thread::yield_now();
            assert!(!value.0.load(loom::sync::atomic::Ordering::Relaxed));
        });
        writer.join().unwrap();
        // The map's clone of the first value is replaced; after two more writes with no reader
        // inside, everything retired is freed.
        for _ in 0..2 {
            map.insert(1, Tracked::new().0);
        }
        drop(map);
        assert!(first_freed.load(loom::sync::atomic::Ordering::Relaxed));
    });
}

/// Per-thread readers are made while a writer runs grace periods (the first read of each thread
/// publishes its reader, and the first of all the map's table of readers, racing the writer's scan
/// of them and its question whether anyone has read the map): no read sees its value freed. (Under
/// loom every thread takes a new number: the hand-over of an exited thread's number, one lock's
/// release and acquire, is not modelled.)
#[test]
fn rcu_readers_are_made_while_writes_retire() {
    fn read(map: &GuardedMap<u8, Tracked, RcuTracked>) {
        map.with(&1, |value| {
            assert!(!value.0.load(loom::sync::atomic::Ordering::Relaxed));
        });
    }
    loom::model(|| {
        let map = Arc::new(GuardedMap::<u8, Tracked, RcuTracked>::new());
        map.insert(1, Tracked::new().0);
        let first = {
            let map = map.clone();
            thread::spawn(move || read(&map))
        };
        let writer = {
            let map = map.clone();
            thread::spawn(move || {
                for _ in 0..2 {
                    map.insert(1, Tracked::new().0);
                }
            })
        };
        read(&map);
        first.join().unwrap();
        writer.join().unwrap();
    });
}
