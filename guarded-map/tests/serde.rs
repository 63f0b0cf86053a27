//! serde (feature `serde`): maps and snapshots serialize as maps; maps deserialize from them, on
//! every backend, with `max_len` enforced as an error of the format.

use std::collections::BTreeMap;
use std::thread;

use guarded_map::{GuardedMap, SpecFor, map_spec};

map_spec!(RcuSpec: HashMap<String, u32>, rcu);
map_spec!(ShardedSpec: HashMap<String, u32>, sharded, shards = 4);
map_spec!(RcuBounded: HashMap<String, u32>, rcu, max_len = 2);
map_spec!(ShardedBounded: HashMap<String, u32>, sharded, max_len = 2);
map_spec!(RcuCounts: HashMap<u64, u64>, rcu);
map_spec!(ShardedCounts: HashMap<u64, u64>, sharded, shards = 8);

fn round_trip<S: SpecFor<String, u32>>() {
    let map: GuardedMap<String, u32, S> = (0..100).map(|i| (format!("k{i}"), i)).collect();
    let json = serde_json::to_string(&map).unwrap();
    // The same text as a `HashMap` of the same entries would give, up to order.
    let parsed: BTreeMap<String, u32> = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed, (0..100).map(|i| (format!("k{i}"), i)).collect());

    let back: GuardedMap<String, u32, S> = serde_json::from_str(&json).unwrap();
    assert_eq!(back.len(), 100);
    assert_eq!(back.get_cloned("k42"), Some(42));
    let stats = back.stats();
    assert_eq!(stats.entries_added - stats.entries_removed, 100);

    let snapshot = map.snapshot();
    map.insert("k0".into(), 1_000);
    let frozen: BTreeMap<String, u32> =
        serde_json::from_str(&serde_json::to_string(&snapshot).unwrap()).unwrap();
    assert_eq!(
        frozen["k0"], 0,
        "a snapshot serializes the state it was taken at"
    );
}

#[test]
fn rcu_round_trips() {
    round_trip::<RcuSpec>();
}

#[test]
fn sharded_round_trips() {
    round_trip::<ShardedSpec>();
}

fn input_errors<S: SpecFor<String, u32>, B: SpecFor<String, u32>>() {
    // A repeated key keeps its last value, as in a `HashMap`.
    let map: GuardedMap<String, u32, S> = serde_json::from_str(r#"{"a":1,"a":2}"#).unwrap();
    assert_eq!((map.len(), map.get_cloned("a")), (1, Some(2)));
    // Wrong shapes are errors that name what was expected.
    let err = serde_json::from_str::<GuardedMap<String, u32, S>>("[1, 2]").unwrap_err();
    assert!(err.to_string().contains("a map for"), "{err}");
    let err = serde_json::from_str::<GuardedMap<String, u32, S>>(r#"{"a":"x"}"#).unwrap_err();
    assert!(err.to_string().contains("invalid type"), "{err}");
    // Bounded: two entries fit, a third is an error, never a panic.
    let two: GuardedMap<String, u32, B> = serde_json::from_str(r#"{"a":1,"b":2,"a":3}"#).unwrap();
    assert_eq!(two.len(), 2);
    let err =
        serde_json::from_str::<GuardedMap<String, u32, B>>(r#"{"a":1,"b":2,"c":3}"#).unwrap_err();
    assert!(err.to_string().contains("at most 2 entries"), "{err}");
}

#[test]
fn rcu_input_errors_are_errors() {
    input_errors::<RcuSpec, RcuBounded>();
}

#[test]
fn sharded_input_errors_are_errors() {
    input_errors::<ShardedSpec, ShardedBounded>();
}

/// One writer inserts 0, 1, 2, ... in order; a serialization taken meanwhile is one state of the
/// map, so it holds exactly a prefix of that sequence.
fn consistent_under_writes<S: SpecFor<u64, u64>>()
where
    GuardedMap<u64, u64, S>: Sync,
{
    let map: GuardedMap<u64, u64, S> = GuardedMap::new();
    thread::scope(|s| {
        s.spawn(|| {
            for k in 0..5_000 {
                map.insert(k, k);
            }
        });
        for _ in 0..50 {
            let text = serde_json::to_string(&map).unwrap();
            let seen: BTreeMap<u64, u64> = serde_json::from_str(&text).unwrap();
            let n = seen.len() as u64;
            assert!(
                seen.keys().copied().eq(0..n),
                "a serialization of {n} entries is not the first {n} inserted"
            );
        }
    });
}

#[test]
fn rcu_serializes_one_state_under_writes() {
    consistent_under_writes::<RcuCounts>();
}

#[test]
fn sharded_serializes_one_state_under_writes() {
    consistent_under_writes::<ShardedCounts>();
}
