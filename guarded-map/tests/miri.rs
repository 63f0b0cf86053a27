//! A small tour of every operation of the three hash backends, sized for Miri: it runs the code paths that
//! reach `unsafe` under Miri's checks of aliasing, provenance and data races. Ours: the per-thread
//! fast path (`per_thread.rs`, both entries), shard tables shared between versions
//! (`shared_table.rs`), the `Rcu` readers (`backend/rcu/reader.rs`: cached shards replaced
//! under nested reads, from closures and from destructors, readers handed from exited threads to
//! new ones) and their attached read counters (`stats/slots.rs`), the `Sharded` shard locks
//! (`backend/sharded/lock.rs`, whose own unit tests run under Miri too) and their attached lock
//! words. Our dependencies': hashbrown's
//! tables, arc-swap's debt lists, thread_local's slots, parking_lot's locks. Runs in the
//! normal suite too.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
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

/// A read inside a read's closure, a write by another thread between them, and readers on threads
/// that come and go: the paths where a cached version could be replaced while still borrowed.
#[test]
fn rcu_reentrant_reads_and_thread_reuse() {
    let map: GuardedMap<String, Vec<u32>, RcuSpec> = GuardedMap::new();
    map.insert("a".into(), vec![1]);
    let seen = map.with("a", |outer| {
        thread::scope(|s| {
            s.spawn(|| map.insert("a".into(), vec![2]));
        });
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

/// Three maps read in turn, written while out of the fast path's two entries, and read from each
/// other's closures: every read must find its own map's current shards, never those kept for another
/// map or for an older version.
#[test]
fn rcu_fast_path_entries_follow_their_maps() {
    let maps: [GuardedMap<String, Vec<u32>, RcuSpec>; 3] = Default::default();
    for round in 0..4u32 {
        for (i, map) in maps.iter().enumerate() {
            map.insert("k".into(), vec![round, i as u32]);
        }
        for (i, map) in maps.iter().enumerate() {
            let next = &maps[(i + 1) % 3];
            let seen = map.with("k", |v| {
                // Another thread publishes to `map` while its read is open; then this one reads
                // `next` and `map` again.
                thread::scope(|s| {
                    s.spawn(|| map.insert("k".into(), vec![round, i as u32, 1]));
                });
                (v.clone(), next.get_cloned("k"), map.get_cloned("k"))
            });
            let (outer, other, inner) = seen.expect("present");
            assert_eq!(outer, vec![round, i as u32]);
            assert_eq!(
                other.map(|v| v[..2].to_vec()),
                Some(vec![round, ((i + 1) % 3) as u32])
            );
            assert_eq!(inner, Some(vec![round, i as u32, 1]));
        }
    }
    for map in &maps {
        assert_eq!(map.stats().gets, 4 * 3);
    }
}

/// A value whose destructor reads and writes the map it was stored in.
#[derive(Clone)]
struct Reentrant(u32);

map_spec!(DropSpec: HashMap<u32, Reentrant>, rcu);

static DROP_MAP: OnceLock<GuardedMap<u32, Reentrant, DropSpec>> = OnceLock::new();
/// Reads made by destructors.
static DROP_READS: AtomicU64 = AtomicU64::new(0);

impl Drop for Reentrant {
    fn drop(&mut self) {
        if let Some(map) = DROP_MAP.get()
            && self.0 == 1
        {
            // Publishes while this thread's reader may be reloading, then reads: a nested reload.
            map.insert(100 + self.0, Reentrant(0));
            assert!(map.contains_key(&0));
            DROP_READS.fetch_add(1, Relaxed);
        }
    }
}

/// Reloads that drop the last reference to a version run the user's destructors, which here read
/// and write the same map (after the read that reloaded has ended), and a nested read of a newer
/// version must keep the shards an outer read still uses.
#[test]
fn rcu_destructor_reads_during_reload() {
    let map = DROP_MAP.get_or_init(GuardedMap::new);
    map.insert(0, Reentrant(0));
    map.insert(1, Reentrant(1));
    // This thread's reader now caches the version holding `Reentrant(1)`.
    assert!(map.contains_key(&1));
    // Replacing it leaves the reader holding the last copy of the old shard.
    map.insert(1, Reentrant(2));
    // The reload drops the old shard: `Reentrant(1)`'s destructor reads and writes the map.
    let seen = map.with(&0, |_| {
        // Nested in a read: a publish by another thread, and a nested read of the new version,
        // which must leave the outer read's shards alone.
        thread::scope(|s| {
            s.spawn(|| map.insert(2, Reentrant(2)));
        });
        map.with(&2, |v| v.0)
    });
    assert_eq!(seen, Some(Some(2)));
    assert!(map.contains_key(&101));
    // Every read was counted once, nested ones included: 4 here, one per destructor that ran.
    assert_eq!(map.stats().gets, 4 + DROP_READS.load(Relaxed));
}

#[test]
fn rcu_tour() {
    tour!(RcuSpec);
}

#[test]
fn sharded_tour() {
    tour!(ShardedSpec);
}

map_spec!(AdaptiveSpec: HashMap<String, Vec<u32>>, adaptive, shards = 2);

#[test]
fn adaptive_tour() {
    tour!(AdaptiveSpec);
}

/// Keyed reads of an adaptive map while another thread switches it back and forth: reads that
/// find the map switched away let go of the form they entered (an `Rcu` mark abandoned, a shard's
/// read guard released uncounted) and read the other form.
#[test]
fn adaptive_reads_across_switches() {
    use guarded_map::ActiveBackend;
    let map: GuardedMap<String, Vec<u32>, AdaptiveSpec> =
        (0..8).map(|i| (format!("k{i}"), vec![i])).collect();
    thread::scope(|s| {
        s.spawn(|| {
            for i in 0..4 {
                let to = if i % 2 == 0 {
                    ActiveBackend::Rcu
                } else {
                    ActiveBackend::Sharded
                };
                map.switch_backend(to).unwrap();
            }
        });
        s.spawn(|| {
            for i in 0..40u32 {
                let key = format!("k{}", i % 8);
                assert_eq!(map.with(key.as_str(), |v| v[0]), Some(i % 8));
            }
        });
    });
    assert_eq!(map.stats().gets, 40);
}
