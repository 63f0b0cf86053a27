//! Kernel BPF maps through `guarded_map::bpf` (feature `bpf`): create, open by name and id,
//! update, look up, delete, and list (in batches that grow where a hash bucket does not fit, or key
//! by key where the map type has no batches). Needs `CAP_BPF` (root): outside CI the test says why it skipped; in CI
//! (`CI` set) it must run.
#![cfg(all(feature = "bpf", target_os = "linux"))]

use guarded_map::bpf::{self, BpfMap};

/// Whether this process may create BPF maps; panics under CI when it cannot.
fn privileged() -> bool {
    match BpfMap::<u32, u32>::create("gm_test_probe", 1) {
        Ok(_) => true,
        Err(e)
            if e.kind() == std::io::ErrorKind::PermissionDenied
                && std::env::var_os("CI").is_none() =>
        {
            eprintln!("skipped: creating a BPF map needs CAP_BPF ({e})");
            false
        }
        Err(e) => panic!("creating a BPF map: {e}"),
    }
}

#[test]
fn a_kernel_hash_map_round_trips() {
    if !privileged() {
        return;
    }
    let map: BpfMap<u32, u64> = BpfMap::create("gm_test_map", 64).unwrap();
    let before = bpf::calls();
    for key in 0..40u32 {
        map.update(key, u64::from(key) * 10).unwrap();
    }
    assert_eq!(map.lookup(7).unwrap(), Some(70));
    assert_eq!(map.lookup(1000).unwrap(), None);
    assert!(map.delete(7).unwrap());
    assert!(!map.delete(7).unwrap());
    // Batches smaller than the map: the walk goes on until the kernel says it is done.
    let mut entries = map.entries(8).unwrap();
    entries.sort_unstable();
    let expected: Vec<(u32, u64)> = (0..40u32)
        .filter(|&k| k != 7)
        .map(|k| (k, u64::from(k) * 10))
        .collect();
    assert_eq!(entries, expected);
    // 40 updates, 2 lookups, 2 deletes, and at least 5 batch calls.
    assert!(bpf::calls() - before >= 49, "{}", bpf::calls() - before);
    // An array key type of the same size works the same way.
    let bytes: BpfMap<[u8; 4], u32> = BpfMap::create("gm_test_bytes", 8).unwrap();
    bytes.update(*b"abcd", 1).unwrap();
    assert_eq!(bytes.lookup(*b"abcd").unwrap(), Some(1));
    assert_eq!(bytes.entries(1).unwrap(), vec![(*b"abcd", 1)]);
}

#[test]
fn maps_open_by_id_and_by_name_with_their_sizes_checked() {
    if !privileged() {
        return;
    }
    let made: BpfMap<u32, u64> = BpfMap::create("gm_test_named", 16).unwrap();
    let info = made.info().clone();
    assert_eq!(
        (info.name.as_str(), info.type_name().as_str()),
        ("gm_test_named", "hash")
    );
    assert_eq!(
        (info.key_size, info.value_size, info.max_entries),
        (4, 8, 16)
    );
    made.update(3, 30).unwrap();
    let by_id: BpfMap<u32, u64> = BpfMap::open_by_id(info.id).unwrap();
    assert_eq!(by_id.lookup(3).unwrap(), Some(30));
    let by_name: BpfMap<u32, u64> = BpfMap::open_by_name("gm_test_named").unwrap();
    assert_eq!(by_name.info().id, info.id);
    // Wrong sizes, missing and ambiguous names: errors that say so.
    let wrong = BpfMap::<u64, u64>::open_by_id(info.id).unwrap_err();
    assert!(wrong.to_string().contains("4-byte keys"), "{wrong}");
    let missing = BpfMap::<u32, u64>::open_by_name("gm_no_such_map").unwrap_err();
    assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
    let _twin: BpfMap<u32, u64> = BpfMap::create("gm_test_named", 16).unwrap();
    let twice = BpfMap::<u32, u64>::open_by_name("gm_test_named").unwrap_err();
    assert!(twice.to_string().contains("open one by id"), "{twice}");
    let gone = BpfMap::<u32, u64>::open_by_id(u32::MAX).unwrap_err();
    assert_eq!(gone.kind(), std::io::ErrorKind::NotFound);
}

#[test]
fn a_listing_grows_its_batch_for_a_crowded_bucket() {
    if !privileged() {
        return;
    }
    // 3 000 entries in 4 096 buckets: many buckets hold two or more.
    let map: BpfMap<u32, u32> = BpfMap::create("gm_test_enospc", 4096).unwrap();
    for key in 0..3000 {
        map.update(key, key * 2).unwrap();
    }
    let listing = map.list(1).unwrap();
    assert!(
        listing.grown > 0 && listing.chunk > 1,
        "{:?}",
        (listing.grown, listing.chunk)
    );
    assert!(!listing.by_key);
    let mut entries = listing.entries;
    entries.sort_unstable();
    assert_eq!(entries, (0..3000).map(|k| (k, k * 2)).collect::<Vec<_>>());
}

#[test]
fn a_map_batched_by_key_lists_whole() {
    if !privileged() {
        return;
    }
    // BPF_MAP_TYPE_LPM_TRIE (11), which needs BPF_F_NO_PREALLOC (1): its batches are positioned by
    // a key (8 bytes here), not by a bucket number.
    let trie: BpfMap<[u32; 2], u64> = BpfMap::create_typed(11, "gm_test_trie", 256, 1).unwrap();
    let keys: Vec<[u32; 2]> = (0..100u32).map(|i| [32, i.to_be()]).collect();
    for (i, key) in keys.iter().enumerate() {
        trie.update(*key, i as u64).unwrap();
    }
    let listing = trie.list(16).unwrap();
    assert!(listing.calls > 1);
    let mut entries = listing.entries;
    entries.sort_unstable();
    let mut expected: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (*k, i as u64))
        .collect();
    expected.sort_unstable();
    assert_eq!(entries, expected);
}

#[test]
fn a_map_type_without_batches_is_listed_key_by_key() {
    if !privileged() {
        return;
    }
    // BPF_MAP_TYPE_DEVMAP (14): slot -> interface index (1, the loopback), no batch lookup.
    let ports: BpfMap<u32, u32> = BpfMap::create_typed(14, "gm_test_devmap", 32, 0).unwrap();
    for slot in [0, 5, 6, 31] {
        ports.update(slot, 1).unwrap();
    }
    let listing = ports.list(8).unwrap();
    assert!(listing.by_key);
    assert_eq!(listing.entries, vec![(0, 1), (5, 1), (6, 1), (31, 1)]);
}
