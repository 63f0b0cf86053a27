//! A small tour of every operation of both backends, sized for Miri: it runs the code paths that
//! reach `unsafe` in our dependencies (hashbrown's tables, arc-swap's debt lists, thread_local's
//! slots, parking_lot's locks) under Miri's checks of aliasing, provenance and data races.
//! guarded-map itself has no `unsafe` code. Runs in the normal suite too.

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

#[test]
fn rcu_tour() {
    tour!(RcuSpec);
}

#[test]
fn sharded_tour() {
    tour!(ShardedSpec);
}
