//! Concurrency: no lost update, consistent snapshots under writes, exact statistics and exact
//! `max_len` enforcement, for both backends.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;

use guarded_map::{Backend, GuardedMap, SpecFor, map_spec};

/// The bounds these tests need: the spec's backend stores `u64 -> u64`, and its maps can be shared
/// between threads.
trait Spec: SpecFor<u64, u64, Backend: Backend<Store<u64, u64>: Sync>> {}
impl<S: SpecFor<u64, u64, Backend: Backend<Store<u64, u64>: Sync>>> Spec for S {}

map_spec!(RcuSpec: HashMap<u64, u64>, rcu);
map_spec!(ShardedSpec: HashMap<u64, u64>, sharded, shards = 4);
map_spec!(RcuBounded: HashMap<u64, u64>, rcu, max_len = 1000);
map_spec!(ShardedBounded: HashMap<u64, u64>, sharded, shards = 16, max_len = 1000);

const THREADS: u64 = 4;
const KEYS: u64 = 64;

/// Several threads `upsert(+1)` and `update(+1)` overlapping keys; every increment must survive,
/// and the statistics must count every operation exactly.
fn no_lost_update<S: Spec>(map: &GuardedMap<u64, u64, S>, rounds: u64) {
    thread::scope(|s| {
        for t in 0..THREADS {
            s.spawn(move || {
                for i in 0..rounds {
                    let key = (i + t) % KEYS;
                    map.upsert(key, || 0, |v| *v += 1);
                    map.update(&key, |v| *v += 1);
                    assert!(map.get_cloned(&key).is_some());
                }
            });
        }
    });
    let total: u64 = map.snapshot().values().sum();
    assert_eq!(total, 2 * THREADS * rounds, "lost updates");
    for key in 0..KEYS {
        // Key k is touched by thread t in rounds i with (i + t) % KEYS == k.
        let want: u64 = (0..THREADS)
            .map(|t| (0..rounds).filter(|i| (i + t) % KEYS == key).count() as u64)
            .sum();
        assert_eq!(map.get_cloned(&key), Some(2 * want), "key {key}");
    }
    let stats = map.stats();
    let ops = THREADS * rounds;
    assert_eq!(stats.inserts, KEYS, "one insert per key");
    assert_eq!(stats.updates, 2 * ops - KEYS);
    assert_eq!(stats.gets, ops + KEYS);
    assert_eq!(stats.misses, 0);
    assert_eq!(stats.entries_added, KEYS);
    assert_eq!(stats.len, KEYS);
}

#[test]
fn rcu_loses_no_update() {
    let map = GuardedMap::<u64, u64, RcuSpec>::new();
    no_lost_update(&map, 3_000);
    let stats = map.stats();
    assert_eq!(stats.rcu_publishes, stats.inserts + stats.updates);
}

#[test]
fn sharded_loses_no_update() {
    let map = GuardedMap::<u64, u64, ShardedSpec>::new();
    no_lost_update(&map, 20_000);
}

/// One writer inserts 0, 1, 2, ... in order while others snapshot: every snapshot taken at one
/// instant holds exactly a prefix of that sequence. A snapshot copied shard by shard without a common
/// instant would sooner or later hold a key without its predecessor.
fn snapshots_are_consistent<S: Spec>(map: &GuardedMap<u64, u64, S>, count: u64) {
    let done = AtomicBool::new(false);
    let checked = AtomicUsize::new(0);
    thread::scope(|s| {
        s.spawn(|| {
            for k in 0..count {
                map.insert(k, k * 10);
                // Halfway, wait for a snapshot: the two threads then surely overlap.
                while k == count / 2 && checked.load(Ordering::Relaxed) == 0 {
                    thread::yield_now();
                }
            }
            done.store(true, Ordering::Release);
        });
        s.spawn(|| {
            while !done.load(Ordering::Acquire) {
                let snapshot = map.snapshot();
                let n = snapshot.len() as u64;
                assert_eq!(snapshot.iter().count() as u64, n);
                for k in 0..n {
                    assert_eq!(
                        snapshot.get(&k),
                        Some(&(k * 10)),
                        "snapshot of {n} lacks {k}"
                    );
                }
                assert_eq!(snapshot.get(&n), None);
                checked.fetch_add(1, Ordering::Relaxed);
            }
        });
    });
    assert!(checked.load(Ordering::Relaxed) > 0);
    assert_eq!(map.snapshot().len() as u64, count);
}

#[test]
fn rcu_snapshot_during_writes_is_consistent() {
    snapshots_are_consistent(&GuardedMap::<u64, u64, RcuSpec>::new(), 5_000);
}

#[test]
fn sharded_snapshot_during_writes_is_consistent() {
    snapshots_are_consistent(&GuardedMap::<u64, u64, ShardedSpec>::new(), 20_000);
}

/// RCU readers see values only move forward while writers publish.
#[test]
fn rcu_readers_see_monotonic_versions() {
    let map: GuardedMap<u64, u64, RcuSpec> = (0..KEYS).map(|k| (k, 0)).collect();
    let done = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            for round in 1..=2_000 {
                map.update(&(round % KEYS), |v| *v = round);
            }
            done.store(true, Ordering::Release);
        });
        s.spawn(|| {
            let mut last = vec![0; KEYS as usize];
            while !done.load(Ordering::Acquire) {
                for k in 0..KEYS {
                    let v = map.get_cloned(&k).expect("never removed");
                    assert!(
                        v >= last[k as usize],
                        "key {k} went back from {} to {v}",
                        last[k as usize]
                    );
                    last[k as usize] = v;
                }
            }
        });
    });
}

/// Concurrent inserts of distinct keys stop at exactly `max_len`, never above.
fn max_len_is_exact<S: Spec>(map: &GuardedMap<u64, u64, S>) {
    let accepted = AtomicUsize::new(0);
    thread::scope(|s| {
        for t in 0..THREADS {
            let accepted = &accepted;
            s.spawn(move || {
                for i in 0..600 {
                    if map.try_insert(t * 1_000 + i, i).is_ok() {
                        accepted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(accepted.load(Ordering::Relaxed), 1000);
    assert_eq!(map.len(), 1000);
    let stats = map.stats();
    assert_eq!(stats.rejected, THREADS * 600 - 1000);
    // Removing makes room again, exactly as much as was removed.
    map.retain(|k, _| k % 2 == 0);
    let room = 1000 - map.len();
    let mut added = 0;
    for k in 100_000..100_000 + 2 * room as u64 {
        added += usize::from(map.try_insert(k, 0).is_ok());
    }
    assert_eq!(added, room);
    assert_eq!(map.len(), 1000);
}

#[test]
fn rcu_max_len_is_exact_under_concurrency() {
    max_len_is_exact(&GuardedMap::<u64, u64, RcuBounded>::new());
}

#[test]
fn sharded_max_len_is_exact_under_concurrency() {
    max_len_is_exact(&GuardedMap::<u64, u64, ShardedBounded>::new());
}

/// Contention is measured: two threads hammering one shard's write lock must wait at least once,
/// and the wait is timed.
#[test]
fn sharded_contention_is_counted() {
    map_spec!(OneShard: HashMap<u64, u64>, sharded, shards = 1);
    let map = GuardedMap::<u64, u64, OneShard>::new();
    let mut tries = 0;
    while map.stats().lock_contended == 0 && tries < 50 {
        thread::scope(|s| {
            for t in 0..THREADS {
                let map = &map;
                s.spawn(move || {
                    for i in 0..20_000 {
                        map.upsert(i % 8, || t, |v| *v = v.wrapping_add(1));
                    }
                });
            }
        });
        tries += 1;
    }
    let stats = map.stats();
    assert!(
        stats.lock_contended > 0,
        "no contention seen in {tries} rounds"
    );
    assert!(stats.lock_wait_nanos > 0);
}

/// Reads and misses counted by threads that come and go, several at a time: an exited thread's
/// per-thread counts stay (the next thread takes its number over and counts on), so the totals
/// are exact.
fn counts_outlive_their_threads<S: Spec>(map: &GuardedMap<u64, u64, S>) {
    map.insert(1, 1);
    let (rounds, threads, reads) = (40u64, 4u64, 30u64);
    for _ in 0..rounds {
        thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    for i in 0..reads {
                        // Two reads in three hit.
                        let key = if i % 3 == 2 { 2 } else { 1 };
                        std::hint::black_box(map.get_cloned(&key));
                    }
                });
            }
        });
    }
    let stats = map.stats();
    let all = rounds * threads * reads;
    assert_eq!((stats.gets, stats.misses), (all, all / 3));
}

#[test]
fn rcu_counts_outlive_their_threads() {
    counts_outlive_their_threads(&GuardedMap::<u64, u64, RcuSpec>::new());
}

#[test]
fn sharded_counts_outlive_their_threads() {
    counts_outlive_their_threads(&GuardedMap::<u64, u64, ShardedSpec>::new());
}
