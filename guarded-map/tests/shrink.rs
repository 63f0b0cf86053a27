//! The shrink policy (`shrink = auto`, the default): after a churn a map's tables come back
//! within twice what its live entries need, once they have stayed at most 1/8 full for a second
//! and the map is written again; a map that refills does not thrash; `shrink = never` keeps its
//! tables; shrinks and the bytes they returned are counted.

use std::thread;
use std::time::Duration;

use guarded_map::{GuardedMap, Shrink, SpecFor, map_spec};

map_spec!(RcuAuto: HashMap<u64, u64>, rcu, name = "shrink.rcu");
map_spec!(ShardedAuto: HashMap<u64, u64>, sharded, name = "shrink.sharded", shards = 8);
map_spec!(Kept: HashMap<u64, u64>, sharded, name = "shrink.never", shards = 8, shrink = Shrink::Never);

/// Past the policy's one second of staying low.
const SETTLE: Duration = Duration::from_millis(1200);

/// Fills `n` keys, removes all but one in twenty, lets the map settle, and writes to it again
/// (removing one key in five of those left). Returns the map.
fn churn<S: SpecFor<u64, u64>>(n: u64) -> GuardedMap<u64, u64, S> {
    let map: GuardedMap<u64, u64, S> = GuardedMap::new();
    for k in 0..n {
        map.insert(k, k);
    }
    for k in 0..n {
        if k % 20 != 0 {
            map.remove(&k);
        }
    }
    thread::sleep(SETTLE);
    for k in (0..n).step_by(100) {
        map.remove(&k);
    }
    map
}

/// The memory a freshly built map of the same entries takes.
fn fresh_memory<S: SpecFor<u64, u64>>(map: &GuardedMap<u64, u64, S>) -> u64 {
    let fresh: GuardedMap<u64, u64, S> = map.iter().collect();
    assert_eq!(fresh.len(), map.len());
    fresh.stats().memory_bytes
}

fn check_churn<S: SpecFor<u64, u64>>(n: u64) {
    let map = churn::<S>(n);
    let stats = map.stats();
    let need = fresh_memory(&map);
    assert!(stats.shrinks > 0, "{stats}");
    assert!(
        stats.memory_bytes <= 2 * need,
        "{}: {} bytes for entries a fresh map holds in {need}",
        map.descriptor().label(),
        stats.memory_bytes
    );
    assert!(stats.shrunk_bytes > 0);
    assert_eq!(stats.len, map.len() as u64);
    // Nothing lost.
    for k in (0..n).step_by(20) {
        let kept = k % 100 != 0;
        assert_eq!(map.get_cloned(&k), kept.then_some(k), "key {k}");
    }
}

#[test]
fn a_churned_rcu_map_comes_back_within_twice_its_needs() {
    check_churn::<RcuAuto>(100_000);
}

#[test]
fn a_churned_sharded_map_comes_back_within_twice_its_needs() {
    check_churn::<ShardedAuto>(100_000);
}

#[test]
fn shrink_never_keeps_the_tables() {
    let map = churn::<Kept>(50_000);
    let stats = map.stats();
    assert_eq!((stats.shrinks, stats.shrunk_bytes), (0, 0));
    assert!(stats.memory_bytes > 8 * fresh_memory(&map));
}

#[test]
fn a_map_that_refills_does_not_thrash() {
    let map: GuardedMap<u64, u64, ShardedAuto> = GuardedMap::new();
    // Fast fill and drain cycles: never low for a whole second, never shrunk.
    for round in 0..5 {
        for k in 0..20_000 {
            map.insert(k, round);
        }
        for k in 1_000..20_000 {
            map.remove(&k);
        }
    }
    assert_eq!(map.stats().shrinks, 0);
    // Low for a second, then a steady insert-and-remove: each shard shrinks once, and the
    // rebuilt tables have room for the steady state, so nothing more happens.
    thread::sleep(SETTLE);
    let settle = |map: &GuardedMap<u64, u64, ShardedAuto>| {
        for k in 0..1_000 {
            map.remove(&k);
            map.insert(k, 0);
        }
    };
    settle(&map);
    let once = map.stats();
    assert!(once.shrinks >= 1 && once.shrinks <= 8, "{once}");
    for _ in 0..3 {
        thread::sleep(Duration::from_millis(400));
        settle(&map);
    }
    let after = map.stats();
    assert_eq!(after.shrinks, once.shrinks, "a steady map shrank again");
    assert_eq!(
        after.capacity, once.capacity,
        "a steady map changed its tables"
    );
    assert_eq!(map.len(), 1_000);
}
