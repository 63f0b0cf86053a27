//! A small tour of every operation of both backends, sized for Miri: it runs the code paths that
//! reach `unsafe` under Miri's checks of aliasing, provenance and data races. Ours: the per-thread
//! fast path (`per_thread.rs`) and the `Rcu` reader slots (`backend/rcu/reader.rs`), including
//! re-entrant reads and slots handed from exited threads to new ones. Our dependencies': hashbrown's
//! tables, arc-swap's caches and debt lists, thread_local's slots, parking_lot's locks. Runs in the
//! normal suite too.

use std::thread;

use guarded_map::{GuardedMap, map_spec};

map_spec!(RcuSpec: HashMap<String, Vec<u32>>, rcu);
map_spec!(ShardedSpec: HashMap<String, Vec<u32>>, sharded, shards = 2, max_len = 64);

macro_rules! tour {
    ($spec:ty) => {{
        let map: GuardedMap<String, Vec<u32>, $spec> = GuardedMap::new();
        thread::scope(|s| {
            for t in 0..2u32 {
                let map = &map;
                s.spawn(move || {
                    for i in 0..12u32 {
                        let key = format!("k{}", i % 6);
                        map.upsert(key.clone(), Vec::new, |v| v.push(t));
                        map.with(key.as_str(), |v| v.len());
                        if i % 4 == 0 {
                            let _ = map.snapshot();
                        }
                    }
                });
            }
        });
        assert_eq!(map.snapshot().values().map(Vec::len).sum::<usize>(), 24);
        for i in 0..20 {
            map.insert(format!("n{i}"), vec![i]);
        }
        map.update("n3", |v| v.push(1));
        assert_eq!(map.remove("n4"), Some(vec![4]));
        map.retain(|k, _| !k.ends_with('7'));
        let clone = map.clone();
        map.shrink_to_fit();
        assert_eq!(clone.len(), map.len());
        let snapshot = map.snapshot();
        map.clear();
        assert!(map.is_empty());
        assert_eq!(snapshot.get("n3"), Some(&vec![3, 1]));
        assert!(format!("{clone:?}").contains("n3"));
        let stats = map.stats();
        assert_eq!(stats.clears, 1);
        drop(clone);
        guarded_map::registry::reports();
    }};
}

/// A read inside a read's closure, a write between them, and readers on threads that come and go:
/// the paths where a cached version could be replaced while still borrowed.
#[test]
fn rcu_reentrant_reads_and_thread_reuse() {
    let map: GuardedMap<String, Vec<u32>, RcuSpec> = GuardedMap::new();
    map.insert("a".into(), vec![1]);
    let seen = map.with("a", |outer| {
        map.insert("a".into(), vec![2]);
        let inner = map.get_cloned("a");
        (outer.clone(), inner)
    });
    assert_eq!(seen, Some((vec![1], Some(vec![2]))));
    for round in 0..3u32 {
        thread::scope(|s| {
            s.spawn(|| {
                assert!(map.with("a", |v| v[0] >= 2).unwrap());
                map.insert("a".into(), vec![3 + round]);
            });
        });
        assert_eq!(map.get_cloned("a"), Some(vec![3 + round]));
    }
    // A second map between reads of the first moves this thread's fast path back and forth.
    let other: GuardedMap<String, Vec<u32>, RcuSpec> = GuardedMap::new();
    other.insert("b".into(), vec![9]);
    assert_eq!(map.get_cloned("b"), None);
    assert_eq!(other.get_cloned("b"), Some(vec![9]));
    assert_eq!(map.get_cloned("a"), Some(vec![5]));
    assert_eq!(map.stats().gets, 10);
}

#[test]
fn rcu_tour() {
    tour!(RcuSpec);
}

#[test]
fn sharded_tour() {
    tour!(ShardedSpec);
}
