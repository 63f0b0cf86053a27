//! Kernel BPF maps through `guarded_map::bpf` (feature `bpf`): create, update, look up, delete and
//! read back in batches. Needs `CAP_BPF` (root): outside CI the test says why it skipped; in CI
//! (`CI` set) it must run.
#![cfg(all(feature = "bpf", target_os = "linux"))]

use guarded_map::bpf::{self, BpfHashMap};

#[test]
fn a_kernel_hash_map_round_trips() {
    let map: BpfHashMap<u32, u64> = match BpfHashMap::create("gm_test_map", 64) {
        Ok(map) => map,
        Err(e)
            if e.kind() == std::io::ErrorKind::PermissionDenied
                && std::env::var_os("CI").is_none() =>
        {
            eprintln!("skipped: creating a BPF map needs CAP_BPF ({e})");
            return;
        }
        Err(e) => panic!("creating a BPF map: {e}"),
    };
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
    let bytes: BpfHashMap<[u8; 4], u32> = BpfHashMap::create("gm_test_bytes", 8).unwrap();
    bytes.update(*b"abcd", 1).unwrap();
    assert_eq!(bytes.lookup(*b"abcd").unwrap(), Some(1));
    assert_eq!(bytes.entries(1).unwrap(), vec![(*b"abcd", 1)]);
}
