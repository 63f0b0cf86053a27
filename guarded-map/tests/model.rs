//! Model-based property tests: random operation sequences applied to a `GuardedMap` and to
//! `std::collections::HashMap` must give the same results, the same contents and the same snapshots,
//! for every backend and with a bounded map; and the map's statistics must count exactly the
//! operations the model saw.

use std::collections::HashMap;

use guarded_map::{Compute, Computed, GuardedMap, Stats, map_spec};
use proptest::prelude::*;

map_spec!(RcuSpec: HashMap<u16, u32>, rcu);
map_spec!(ShardedSpec: HashMap<u16, u32>, sharded, shards = 4);
map_spec!(ShardedOneSpec: HashMap<u16, u32>, sharded, shards = 1);
map_spec!(RcuBoundedSpec: HashMap<u16, u32>, rcu, max_len = 20);
map_spec!(ShardedBoundedSpec: HashMap<u16, u32>, sharded, shards = 8, max_len = 20);
map_spec!(RcuFastSpec: HashMap<u16, u32>, rcu, stats = false);
map_spec!(AdaptiveSpec: HashMap<u16, u32>, adaptive, shards = 4);
map_spec!(AdaptiveBoundedSpec: HashMap<u16, u32>, adaptive, max_len = 20);

const MAX_LEN: usize = 20;

#[derive(Clone, Debug)]
enum Op {
    Insert(u16, u32),
    TryInsert(u16, u32),
    Remove(u16),
    Get(u16),
    Contains(u16),
    Update(u16, u32),
    Upsert(u16, u32),
    Retain(u16),
    Clear,
    Snapshot,
    ShrinkToFit,
    Len,
    GetOrInsert(u16, u32),
    /// Keep (0), set (1) or remove (2).
    Compute(u16, u32, u8),
    RemoveIf(u16, u32),
    ReplaceAll(Vec<(u16, u32)>),
    Iter,
    /// An adaptive map switches to its other form (a no-op for the other backends).
    Switch,
}

fn op(keys: u16) -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..keys, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        3 => (0..keys, any::<u32>()).prop_map(|(k, v)| Op::TryInsert(k, v)),
        3 => (0..keys).prop_map(Op::Remove),
        4 => (0..keys).prop_map(Op::Get),
        1 => (0..keys).prop_map(Op::Contains),
        2 => (0..keys, any::<u32>()).prop_map(|(k, d)| Op::Update(k, d)),
        2 => (0..keys, any::<u32>()).prop_map(|(k, d)| Op::Upsert(k, d)),
        1 => (2..5u16).prop_map(Op::Retain),
        1 => Just(Op::Clear).prop_filter("rare", |_| true),
        1 => Just(Op::Snapshot),
        1 => Just(Op::ShrinkToFit),
        1 => Just(Op::Len),
        2 => (0..keys, any::<u32>()).prop_map(|(k, v)| Op::GetOrInsert(k, v)),
        3 => (0..keys, any::<u32>(), 0..3u8).prop_map(|(k, v, c)| Op::Compute(k, v, c)),
        2 => (0..keys, 1..4u32).prop_map(|(k, m)| Op::RemoveIf(k, m)),
        1 => prop::collection::vec((0..keys, any::<u32>()), 0..24).prop_map(Op::ReplaceAll),
        1 => Just(Op::Iter),
        1 => Just(Op::Switch),
    ]
}

/// The checks after every operation.
macro_rules! continue_checks {
    ($map:ident, $model:ident, $bound:ident) => {
        prop_assert_eq!($map.len(), $model.len());
        prop_assert_eq!($map.is_empty(), $model.is_empty());
        if let Some(max) = $bound {
            prop_assert!($map.len() <= max);
        }
    };
}

/// Applies `ops` to a fresh map of spec `$spec` and to a std model; `$bound` is the spec's max_len.
macro_rules! check_against_model {
    ($spec:ty, $ops:expr, $bound:expr) => {
        check_against_model!($spec, $ops, $bound, |_: &GuardedMap<u16, u32, $spec>| {})
    };
    ($spec:ty, $ops:expr, $bound:expr, $switch:expr) => {{
        let map: GuardedMap<u16, u32, $spec> = GuardedMap::new();
        let mut model: HashMap<u16, u32> = HashMap::new();
        // The statistics the operations should produce, counted from the model's answers.
        let mut want = Stats::default();
        let bound: Option<usize> = $bound;
        let full = |model: &HashMap<u16, u32>, k: &u16| {
            bound.is_some_and(|max| model.len() >= max && !model.contains_key(k))
        };
        for op in $ops {
            match op {
                Op::Insert(k, v) | Op::TryInsert(k, v) => {
                    if full(&model, &k) {
                        let err = map.try_insert(k, v).unwrap_err();
                        prop_assert_eq!(err.into_inner(), (k, v));
                        want.rejected += 1;
                    } else {
                        let old = model.insert(k, v);
                        prop_assert_eq!(map.try_insert(k, v).unwrap(), old);
                        want.inserts += 1;
                        want.entries_added += u64::from(old.is_none());
                    }
                }
                Op::Remove(k) => {
                    let old = model.remove(&k);
                    prop_assert_eq!(map.remove(&k), old);
                    want.removes += 1;
                    want.entries_removed += u64::from(old.is_some());
                }
                Op::Get(k) | Op::Contains(k) => {
                    let found = model.get(&k).copied();
                    if matches!(op, Op::Get(_)) {
                        prop_assert_eq!(map.get_cloned(&k), found);
                    } else {
                        prop_assert_eq!(map.contains_key(&k), found.is_some());
                    }
                    want.gets += 1;
                    want.misses += u64::from(found.is_none());
                }
                Op::Update(k, d) => {
                    want.updates += u64::from(model.contains_key(&k));
                    let got = map.update(&k, |v| {
                        *v = v.wrapping_add(d);
                        *v
                    });
                    let want = model.get_mut(&k).map(|v| {
                        *v = v.wrapping_add(d);
                        *v
                    });
                    prop_assert_eq!(got, want);
                }
                Op::Upsert(k, d) => {
                    if full(&model, &k) {
                        prop_assert_eq!(
                            map.try_upsert(k, || d, |v| *v).unwrap_err().into_inner(),
                            k
                        );
                        want.rejected += 1;
                    } else {
                        let new = !model.contains_key(&k);
                        want.inserts += u64::from(new);
                        want.entries_added += u64::from(new);
                        want.updates += u64::from(!new);
                        let got = map.try_upsert(
                            k,
                            || d,
                            |v| {
                                *v = v.wrapping_mul(3);
                                *v
                            },
                        );
                        let v = model.entry(k).or_insert(d);
                        *v = v.wrapping_mul(3);
                        prop_assert_eq!(got.unwrap(), *v);
                    }
                }
                Op::Retain(m) => {
                    want.retains += 1;
                    want.entries_removed += model.keys().filter(|k| *k % m == 0).count() as u64;
                    map.retain(|k, v| {
                        *v = v.wrapping_add(1);
                        k % m != 0
                    });
                    model.retain(|k, v| {
                        *v = v.wrapping_add(1);
                        k % m != 0
                    });
                }
                Op::Clear => {
                    want.clears += 1;
                    want.entries_removed += model.len() as u64;
                    map.clear();
                    model.clear();
                }
                Op::Snapshot => {
                    want.snapshots += 1;
                    let snapshot = map.snapshot();
                    prop_assert_eq!(snapshot.len(), model.len());
                    prop_assert_eq!(snapshot.iter().count(), model.len());
                    prop_assert_eq!(&snapshot.to_hash_map(), &model);
                    for (k, v) in &model {
                        prop_assert_eq!(snapshot.get(k), Some(v));
                    }
                    prop_assert_eq!(snapshot.get(&u16::MAX), None);
                }
                Op::ShrinkToFit => map.shrink_to_fit(),
                Op::GetOrInsert(k, v) => {
                    want.gets += 1;
                    let present = model.get(&k).copied();
                    want.misses += u64::from(present.is_none());
                    let got = map.try_get_or_insert_with(&k, || v);
                    match present {
                        Some(old) => prop_assert_eq!(got.unwrap(), old),
                        None if full(&model, &k) => {
                            prop_assert_eq!(got.unwrap_err().into_inner(), v);
                            want.rejected += 1;
                        }
                        None => {
                            prop_assert_eq!(got.unwrap(), v);
                            model.insert(k, v);
                            want.inserts += 1;
                            want.entries_added += 1;
                        }
                    }
                }
                Op::Compute(k, v, choice) => {
                    let present = model.get(&k).copied();
                    let mut shown = None;
                    let got = map.try_compute(&k, |current| {
                        shown = Some(current.copied());
                        match choice {
                            0 => Compute::Keep,
                            1 => Compute::Set(v),
                            _ => Compute::Remove,
                        }
                    });
                    prop_assert_eq!(shown, Some(present));
                    let expected = match (choice, present) {
                        (0, Some(_)) => Computed::Kept,
                        (_, None) if choice != 1 => Computed::Absent,
                        (1, Some(old)) => {
                            model.insert(k, v);
                            want.inserts += 1;
                            Computed::Replaced(old)
                        }
                        (1, None) if full(&model, &k) => {
                            prop_assert_eq!(got.unwrap_err().into_inner(), v);
                            want.rejected += 1;
                            continue_checks!(map, model, bound);
                            continue;
                        }
                        (_, None) => {
                            model.insert(k, v);
                            want.inserts += 1;
                            want.entries_added += 1;
                            Computed::Inserted
                        }
                        (_, Some(old)) => {
                            model.remove(&k);
                            want.removes += 1;
                            want.entries_removed += 1;
                            Computed::Removed(old)
                        }
                    };
                    prop_assert_eq!(got.unwrap(), expected);
                }
                Op::RemoveIf(k, m) => {
                    let hit = model.get(&k).is_some_and(|v| v % m == 0);
                    let got = map.remove_if(&k, |_, v| v % m == 0);
                    if hit {
                        let v = model.remove(&k).unwrap();
                        prop_assert_eq!(got, Some((k, v)));
                        want.removes += 1;
                        want.entries_removed += 1;
                    } else {
                        prop_assert_eq!(got, None);
                    }
                }
                Op::ReplaceAll(pairs) => {
                    let new: HashMap<u16, u32> = pairs.iter().copied().collect();
                    if bound.is_some_and(|max| new.len() > max) {
                        let refused =
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                map.replace_all(pairs.clone());
                            }));
                        prop_assert!(refused.is_err());
                    } else {
                        prop_assert_eq!(map.replace_all(pairs), model.len());
                        want.entries_removed += model.len() as u64;
                        want.entries_added += new.len() as u64;
                        model = new;
                    }
                }
                Op::Iter => {
                    let seen: HashMap<u16, u32> = map.iter().collect();
                    prop_assert_eq!(map.iter().count(), model.len());
                    prop_assert_eq!(&seen, &model);
                }
                Op::Len => {
                    prop_assert_eq!(map.len(), model.len());
                    prop_assert!(map.capacity() >= map.len());
                }
                Op::Switch => ($switch)(&map),
            }
            continue_checks!(map, model, bound);
        }
        if map.descriptor().stats_enabled() {
            let stats = map.stats();
            want.len = stats.len;
            want.capacity = stats.capacity;
            want.memory_bytes = stats.memory_bytes;
            want.rcu_publishes = stats.rcu_publishes;
            want.rcu_publish_nanos = stats.rcu_publish_nanos;
            want.rcu_copied_entries = stats.rcu_copied_entries;
            // An adaptive map's cost model may switch too: switches are counted exactly in
            // tests/adaptive.rs, where the map is pinned.
            want.backend_switches = stats.backend_switches;
            // Shrinking depends on time (a table low for a second): checked in tests/shrink.rs.
            want.shrinks = stats.shrinks;
            want.shrunk_bytes = stats.shrunk_bytes;
            prop_assert_eq!(stats, want);
        }
        // Final contents through every read path.
        let mut seen = HashMap::new();
        map.for_each(|k, v| {
            seen.insert(*k, *v);
        });
        prop_assert_eq!(&seen, &model);
        prop_assert_eq!(&map.snapshot().to_hash_map(), &model);
        let clone = map.clone();
        prop_assert_eq!(&clone.snapshot().to_hash_map(), &model);
        let stats = map.stats();
        prop_assert_eq!(stats.len as usize, model.len());
        if map.descriptor().stats_enabled() {
            prop_assert_eq!(
                stats.entries_added - stats.entries_removed,
                model.len() as u64
            );
        } else {
            prop_assert_eq!(stats.entries_added + stats.gets + stats.inserts, 0);
        }
    }};
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn rcu_matches_std(ops in prop::collection::vec(op(64), 0..300)) {
        check_against_model!(RcuSpec, ops, None);
    }

    #[test]
    fn rcu_matches_std_while_resharding(ops in prop::collection::vec(op(2000), 0..600)) {
        check_against_model!(RcuSpec, ops, None);
    }

    #[test]
    fn rcu_without_stats_matches_std(ops in prop::collection::vec(op(64), 0..300)) {
        check_against_model!(RcuFastSpec, ops, None);
    }

    #[test]
    fn sharded_matches_std(ops in prop::collection::vec(op(64), 0..300)) {
        check_against_model!(ShardedSpec, ops, None);
    }

    #[test]
    fn sharded_with_one_shard_matches_std(ops in prop::collection::vec(op(2000), 0..600)) {
        check_against_model!(ShardedOneSpec, ops, None);
    }

    #[test]
    fn bounded_rcu_matches_std(ops in prop::collection::vec(op(64), 0..300)) {
        check_against_model!(RcuBoundedSpec, ops, Some(MAX_LEN));
    }

    #[test]
    fn bounded_sharded_matches_std(ops in prop::collection::vec(op(64), 0..300)) {
        check_against_model!(ShardedBoundedSpec, ops, Some(MAX_LEN));
    }

    #[test]
    fn adaptive_matches_std_across_switches(ops in prop::collection::vec(op(64), 0..300)) {
        check_against_model!(AdaptiveSpec, ops, None, switch::<AdaptiveSpec>);
    }

    #[test]
    fn adaptive_matches_std_across_switches_while_resharding(
        ops in prop::collection::vec(op(2000), 0..600)
    ) {
        check_against_model!(AdaptiveSpec, ops, None, switch::<AdaptiveSpec>);
    }

    #[test]
    fn bounded_adaptive_matches_std_across_switches(ops in prop::collection::vec(op(64), 0..300)) {
        check_against_model!(AdaptiveBoundedSpec, ops, Some(MAX_LEN), switch::<AdaptiveBoundedSpec>);
    }
}

/// Switches an adaptive map to its other form, and checks that it did.
fn switch<S>(map: &GuardedMap<u16, u32, S>)
where
    S: guarded_map::SpecFor<u16, u32> + guarded_map::MapSpec<Backend = guarded_map::Adaptive>,
{
    let to = map.active_backend().other();
    // `Ok(false)` only if its cost model switched it just now.
    assert!(map.switch_backend(to).is_ok());
    assert_eq!(map.active_backend(), to);
}

/// Construction paths keep every entry and the hasher.
#[test]
fn built_from_std_map_and_iterators() {
    let source: HashMap<u16, u32> = (0..500).map(|k| (k, u32::from(k) * 2)).collect();
    let from_std: GuardedMap<u16, u32, RcuSpec> = GuardedMap::from(source.clone());
    assert_eq!(from_std.snapshot().to_hash_map(), source);
    let collected: GuardedMap<u16, u32, ShardedSpec> = source.clone().into_iter().collect();
    assert_eq!(collected.snapshot().to_hash_map(), source);
    let mut extended: GuardedMap<u16, u32, RcuSpec> = GuardedMap::with_capacity(10);
    extended.extend(source.clone());
    assert_eq!(extended.snapshot().to_hash_map(), source);
    assert_eq!(extended.stats().entries_added, 500);
    // A repeated key keeps its last value, like HashMap.
    let dup: GuardedMap<u16, u32, RcuSpec> = [(1, 1), (1, 2)].into_iter().collect();
    assert_eq!(dup.get_cloned(&1), Some(2));
    assert_eq!(dup.len(), 1);
}

/// A custom hasher is used, and a snapshot looks keys up with the same one.
#[test]
fn custom_hasher() {
    type Fast = foldhash::fast::FixedState;
    let map: GuardedMap<String, u32, RcuSpec2, Fast> = GuardedMap::with_hasher(Fast::with_seed(7));
    map.insert("a".into(), 1);
    assert_eq!(map.get_cloned("a"), Some(1));
    assert_eq!(map.snapshot().get("a"), Some(&1));
    let sharded: GuardedMap<String, u32, ShardedSpec2, Fast> = GuardedMap::default();
    sharded.insert("b".into(), 2);
    assert_eq!(sharded.snapshot().get("b"), Some(&2));
}
map_spec!(RcuSpec2: HashMap<String, u32>, rcu);
map_spec!(ShardedSpec2: HashMap<String, u32>, sharded);

/// `Debug` prints entries like `HashMap`.
#[test]
fn debug_reads_like_a_hash_map() {
    let map: GuardedMap<u16, u32, ShardedSpec> = [(1, 10)].into_iter().collect();
    assert_eq!(format!("{map:?}"), "{1: 10}");
    let rcu: GuardedMap<u16, u32, RcuSpec> = [(2, 20)].into_iter().collect();
    assert_eq!(format!("{rcu:?}"), "{2: 20}");
    assert_eq!(format!("{:?}", rcu.snapshot()), "{2: 20}");
}

/// The RCU backend copies one shard per write, not the whole map.
#[test]
fn rcu_write_copies_a_bounded_part_of_a_large_map() {
    let map: GuardedMap<u32, u32, RcuU32> = (0..100_000).map(|k| (k, k)).collect();
    let before = map.stats();
    map.insert(7, 8);
    map.insert(100_001, 1);
    map.update(&9, |v| *v += 1);
    map.remove(&11);
    let after = map.stats();
    let copied = after.rcu_copied_entries - before.rcu_copied_entries;
    assert_eq!(after.rcu_publishes - before.rcu_publishes, 4);
    // 4 writes; each copies one shard of ~800 entries (sqrt(8 * 100_000) ~ 900) at most 2000.
    assert!(
        copied < 4 * 2_000,
        "4 writes copied {copied} entries of 100 000"
    );
    assert!(copied > 0);
}
map_spec!(RcuU32: HashMap<u32, u32>, rcu);
