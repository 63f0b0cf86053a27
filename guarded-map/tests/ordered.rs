//! Ordered maps: random operation sequences applied to an `OrderedMap` and to
//! `std::collections::BTreeMap` give the same results, contents, ranges, first and last, and the
//! statistics count exactly what the model saw; under concurrent writers the totals are exact, and
//! ranges over snapshots are consistent while writes go on.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use guarded_map::{OrderedMap, Stats, map_spec, registry};
use proptest::prelude::*;

map_spec!(Book: BTreeMap<u16, u32>, ordered, name = "ordered.model");
map_spec!(Bounded: BTreeMap<u16, u32>, ordered, max_len = 20);
map_spec!(Shared: BTreeMap<u64, u64>, ordered, name = "ordered.shared");

#[derive(Clone, Debug)]
enum Op {
    Insert(u16, u32),
    TryInsert(u16, u32),
    Remove(u16),
    Get(u16),
    Update(u16, u32),
    Upsert(u16, u32),
    Range(Bound<u16>, Bound<u16>),
    First,
    Last,
    Retain(u16),
    Clear,
    ReplaceAll(Vec<(u16, u32)>),
    Snapshot,
}

fn bound() -> impl Strategy<Value = Bound<u16>> {
    prop_oneof![
        (0..600u16).prop_map(Bound::Included),
        (0..600u16).prop_map(Bound::Excluded),
        Just(Bound::Unbounded),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..500u16, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        2 => (0..500u16, any::<u32>()).prop_map(|(k, v)| Op::TryInsert(k, v)),
        4 => (0..500u16).prop_map(Op::Remove),
        3 => (0..500u16).prop_map(Op::Get),
        2 => (0..500u16, any::<u32>()).prop_map(|(k, d)| Op::Update(k, d)),
        2 => (0..500u16, any::<u32>()).prop_map(|(k, d)| Op::Upsert(k, d)),
        3 => (bound(), bound()).prop_map(|(a, b)| Op::Range(a, b)),
        1 => Just(Op::First),
        1 => Just(Op::Last),
        1 => (2..5u16).prop_map(Op::Retain),
        1 => Just(Op::Clear).prop_filter("rare", |_| true),
        1 => Just(Op::Snapshot),
        1 => proptest::collection::vec((0..500u16, any::<u32>()), 0..30).prop_map(Op::ReplaceAll),
    ]
}

/// A range `BTreeMap::range` accepts (it panics on an empty or inverted one).
fn valid(lo: Bound<u16>, hi: Bound<u16>) -> bool {
    match (lo, hi) {
        (Bound::Included(a), Bound::Included(b)) => a <= b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b))
        | (Bound::Excluded(a), Bound::Included(b)) => a < b,
        _ => true,
    }
}

fn run<S: guarded_map::MapSpec<Backend = guarded_map::Ordered>>(
    ops: &[Op],
    max_len: Option<usize>,
) -> Result<(), TestCaseError> {
    let map: OrderedMap<u16, u32, S> = OrderedMap::new();
    let mut model: BTreeMap<u16, u32> = BTreeMap::new();
    let mut want = Stats::default();
    let mut snapshots = Vec::new();
    for op in ops {
        match op.clone() {
            Op::Insert(k, v) | Op::TryInsert(k, v) => {
                let full = max_len.is_some_and(|m| model.len() >= m) && !model.contains_key(&k);
                let got = map.try_insert(k, v);
                if full {
                    prop_assert!(got.is_err());
                    want.rejected += 1;
                } else {
                    let old = model.insert(k, v);
                    prop_assert_eq!(got.ok(), Some(old));
                    if old.is_some() {
                        want.updates += 1;
                    } else {
                        want.inserts += 1;
                        want.entries_added += 1;
                    }
                }
            }
            Op::Remove(k) => {
                prop_assert_eq!(map.remove(&k), model.remove(&k));
                want.removes += 1;
            }
            Op::Get(k) => {
                prop_assert_eq!(map.get_cloned(&k), model.get(&k).copied());
                want.gets += 1;
                if !model.contains_key(&k) {
                    want.misses += 1;
                }
            }
            Op::Update(k, d) => {
                let got = map.update(&k, |v| {
                    *v = v.wrapping_add(d);
                    *v
                });
                let expected = model.get_mut(&k).map(|v| {
                    *v = v.wrapping_add(d);
                    *v
                });
                prop_assert_eq!(got, expected);
                if expected.is_some() {
                    want.updates += 1;
                }
            }
            Op::Upsert(k, d) => {
                let present = model.contains_key(&k);
                if !present && max_len.is_some_and(|m| model.len() >= m) {
                    continue;
                }
                let got = map.upsert(
                    k,
                    || 7,
                    |v| {
                        *v = v.wrapping_add(d);
                        *v
                    },
                );
                let v = model.entry(k).or_insert(7);
                *v = v.wrapping_add(d);
                prop_assert_eq!(got, *v);
                if present {
                    want.updates += 1;
                } else {
                    want.inserts += 1;
                    want.entries_added += 1;
                }
            }
            Op::Range(lo, hi) => {
                if !valid(lo, hi) {
                    continue;
                }
                let mut got = Vec::new();
                map.range((lo, hi), |k, v| got.push((*k, *v)));
                let expected: Vec<(u16, u32)> =
                    model.range((lo, hi)).map(|(k, v)| (*k, *v)).collect();
                prop_assert_eq!(got, expected);
                want.ranges += 1;
            }
            Op::First => {
                prop_assert_eq!(map.first(), model.first_key_value().map(|(k, v)| (*k, *v)));
                want.ranges += 1;
            }
            Op::Last => {
                prop_assert_eq!(map.last(), model.last_key_value().map(|(k, v)| (*k, *v)));
                want.ranges += 1;
            }
            Op::Retain(m) => {
                map.retain(|k, v| {
                    *v = v.wrapping_add(1);
                    k % m != 0
                });
                let before = model.len();
                model.retain(|k, v| {
                    *v = v.wrapping_add(1);
                    k % m != 0
                });
                want.retains += 1;
                want.entries_removed += (before - model.len()) as u64;
            }
            Op::Clear => {
                want.entries_removed += model.len() as u64;
                map.clear();
                model.clear();
                want.clears += 1;
            }
            Op::ReplaceAll(entries) => {
                let next: BTreeMap<u16, u32> = entries.iter().copied().collect();
                if max_len.is_some_and(|m| next.len() > m) {
                    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        map.replace_all(entries.clone())
                    }));
                    prop_assert!(refused.is_err(), "more than max_len was taken");
                } else {
                    prop_assert_eq!(map.replace_all(entries), model.len());
                    want.entries_added += next.len() as u64;
                    model = next;
                }
            }
            Op::Snapshot => {
                snapshots.push((map.snapshot(), model.clone()));
                want.snapshots += 1;
            }
        }
        prop_assert_eq!(map.len(), model.len());
    }
    // Entries that went away (by remove, retain or clear): what was added and is no longer there.
    want.entries_removed = want.entries_added - model.len() as u64;
    // Snapshots never changed, whatever came after.
    for (snapshot, then) in snapshots {
        prop_assert_eq!(snapshot.to_btree_map(), then);
    }
    prop_assert_eq!(map.snapshot().to_btree_map(), model.clone());
    want.snapshots += 1;
    let stats = map.stats();
    want.len = model.len() as u64;
    want.capacity = stats.capacity;
    want.memory_bytes = stats.memory_bytes;
    prop_assert_eq!(stats, want);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 2 } else { 96 }))]

    #[test]
    fn an_ordered_map_behaves_as_a_btree_map(ops in prop::collection::vec(op(), 1..400)) {
        run::<Book>(&ops, None)?;
    }

    #[test]
    fn a_bounded_ordered_map_refuses_past_max_len(ops in prop::collection::vec(op(), 1..200)) {
        run::<Bounded>(&ops, Some(20))?;
    }
}

#[test]
fn concurrent_writers_lose_nothing_and_snapshots_stay_consistent() {
    let map: OrderedMap<u64, u64, Shared> = OrderedMap::new();
    let done = AtomicBool::new(false);
    const WRITERS: u64 = 3;
    const EACH: u64 = 2_000;
    thread::scope(|s| {
        // Readers: every snapshot is sorted, each value equals its key's count so far, and a
        // range of it is the same as the same range of its full iteration.
        for _ in 0..2 {
            s.spawn(|| {
                let mut checked = 0;
                while !done.load(Ordering::Relaxed) || checked == 0 {
                    let snap = map.snapshot();
                    let all: Vec<(u64, u64)> = snap.iter().map(|(k, v)| (*k, *v)).collect();
                    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "sorted");
                    assert_eq!(all.len(), snap.len());
                    let part: Vec<(u64, u64)> =
                        snap.range(100..200).map(|(k, v)| (*k, *v)).collect();
                    let expected: Vec<(u64, u64)> = all
                        .iter()
                        .copied()
                        .filter(|(k, _)| (100..200).contains(k))
                        .collect();
                    assert_eq!(part, expected);
                    checked += 1;
                }
            });
        }
        let writers: Vec<_> = (0..WRITERS)
            .map(|t| {
                let map = &map;
                s.spawn(move || {
                    for i in 0..EACH {
                        // Shared keys (contended) and keys of this thread's own.
                        map.upsert(i % 300, || 0, |n| *n += 1);
                        map.insert(1_000_000 + t * EACH + i, i);
                        if i % 2 == 0 {
                            map.remove(&(1_000_000 + t * EACH + i));
                        }
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
    });
    let total: u64 = map.snapshot().range(..300).map(|(_, v)| *v).sum();
    assert_eq!(total, WRITERS * EACH, "every increment counted once");
    assert_eq!(map.len() as u64, 300 + WRITERS * EACH / 2);
    let stats = map.stats();
    assert_eq!(
        stats.entries_added - stats.entries_removed,
        map.len() as u64
    );
    assert_eq!(stats.removes, WRITERS * EACH / 2);
    // The registry reports the map under its label, with its backend.
    let report = registry::report("ordered.shared").expect("registered");
    assert_eq!(report.stats.len, map.len() as u64);
    assert_eq!(report.descriptor.backend().as_str(), "ordered");
}

#[test]
#[should_panic(expected = "would deadlock")]
fn a_write_nested_in_an_update_panics_instead_of_deadlocking() {
    let map: OrderedMap<u16, u32, Book> = [(1, 1)].into_iter().collect();
    map.update(&1, |_| {
        map.insert(2, 2);
    });
}
