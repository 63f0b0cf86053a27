//! The registry: inventory-collected descriptors, live instances aggregated per descriptor, and no
//! count lost when instances are dropped.

use std::thread;

use guarded_map::{BackendKind, GuardedMap, registry};

mod routing {
    guarded_map::map_spec!(
        /// Declared in a nested module.
        pub Routes: HashMap<String, u16>, rcu, name = "registry_test.routes", bpf_map = "flows", help = "Routes."
    );
}

guarded_map::map_spec!(Tenants: HashMap<u32, u64>, sharded, shards = 8, name = "registry_test.tenants", max_len = 50);

#[test]
fn descriptors_are_collected_before_any_instance_exists() {
    let routes = registry::descriptors()
        .find(|d| d.label() == "registry_test.routes")
        .expect("nested-module spec registered");
    assert_eq!(routes.backend(), BackendKind::Rcu);
    assert_eq!(routes.key_type(), "String");
    assert_eq!(routes.value_type(), "u16");
    assert_eq!(routes.bpf_map_name(), Some("flows"));
    assert_eq!(routes.help_text(), Some("Routes."));
    assert!(routes.module_path().ends_with("routing"));
    assert!(routes.file().ends_with("registry.rs"));
    assert_eq!(routes.line(), 9, "the line of the map_spec! invocation");

    let tenants = registry::descriptors()
        .find(|d| d.label() == "registry_test.tenants")
        .unwrap();
    assert_eq!(tenants.shard_count(), Some(8));
    assert_eq!(tenants.max_len_limit(), Some(50));
    // Each descriptor is listed once.
    assert_eq!(
        registry::descriptors()
            .filter(|d| d.label() == "registry_test.tenants")
            .count(),
        1
    );
}

#[test]
fn instances_aggregate_and_dropped_instances_keep_their_counts() {
    let report = registry::report("registry_test.tenants").unwrap();
    assert_eq!(report.instances, 0);

    let keep: GuardedMap<u32, u64, Tenants> = GuardedMap::new();
    thread::scope(|s| {
        for t in 0..3u32 {
            s.spawn(move || {
                // Per-tenant instances created and dropped on other threads.
                let map: GuardedMap<u32, u64, Tenants> = GuardedMap::new();
                for k in 0..10 {
                    map.insert(t * 100 + k, 1);
                    map.get_cloned(&(t * 100 + k));
                }
            });
        }
        s.spawn(|| {
            keep.insert(1, 1);
            keep.get_cloned(&2);
        });
    });
    let report = registry::report("registry_test.tenants").unwrap();
    assert_eq!(report.instances, 1);
    assert_eq!(report.stats.inserts, 31);
    assert_eq!(report.stats.gets, 31);
    assert_eq!(report.stats.misses, 1);
    assert_eq!(report.stats.len, 1, "only the live instance's entries");
    assert!(report.stats.capacity >= 1);
    drop(keep);
    let report = registry::report("registry_test.tenants").unwrap();
    assert_eq!(report.instances, 0);
    assert_eq!(report.stats.inserts, 31);
    assert_eq!(report.stats.len, 0);
}
