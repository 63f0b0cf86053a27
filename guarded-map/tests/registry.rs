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

mod churn {
    use std::collections::HashMap;

    #[guarded_map::guarded_map]
    #[derive(Default)]
    pub struct Tenant {
        #[guarded(rcu, name = "registry_test.churn_config")]
        pub config: HashMap<u32, u32>,
        #[guarded(sharded, name = "registry_test.churn_sessions")]
        pub sessions: HashMap<u32, u32>,
    }
}

/// 4 threads create and drop 100 000 structs of two maps in all, with operations on each, while a
/// reporter publishes and another thread reads reports: afterwards every statistic equals the
/// operations made, and no instance is left in the registry.
#[test]
fn instances_created_and_dropped_on_many_threads_are_counted_exactly() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    const THREADS: u32 = 4;
    const PER_THREAD: u32 = 25_000;
    let reporter = guarded_map::Reporter::start(Duration::from_millis(2)).unwrap();
    let done = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            let mut reports = 0u32;
            while !done.load(Ordering::Relaxed) || reports == 0 {
                let now = registry::report("registry_test.churn_sessions").unwrap();
                // Never more removed than added, whatever comes and goes meanwhile.
                assert!(now.stats.entries_removed <= now.stats.entries_added);
                reports += 1;
            }
        });
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                s.spawn(move || {
                    // Kept a while, so that instances also die on another thread than their own
                    // and in another order than they were made.
                    let mut kept = Vec::new();
                    for i in 0..PER_THREAD {
                        let tenant = churn::Tenant::default();
                        let key = t * PER_THREAD + i;
                        tenant.config.insert(key, 1);
                        tenant.sessions.insert(key, 1);
                        tenant.sessions.update(&key, |n| *n += 1);
                        assert_eq!(tenant.config.get_cloned(&key), Some(1));
                        if i % 2 == 0 {
                            tenant.sessions.remove(&key);
                        }
                        kept.push(tenant);
                        if kept.len() == 64 {
                            kept.drain(..32);
                        }
                    }
                    kept
                })
            })
            .collect();
        let leftovers: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        // The last ones die on this thread.
        drop(leftovers);
        done.store(true, Ordering::Relaxed);
    });
    reporter.shutdown();

    let total = u64::from(THREADS * PER_THREAD);
    let config = registry::report("registry_test.churn_config").unwrap();
    let sessions = registry::report("registry_test.churn_sessions").unwrap();
    assert_eq!(
        (config.instances, sessions.instances),
        (0, 0),
        "dead entries left"
    );
    assert_eq!((config.stats.len, sessions.stats.len), (0, 0));
    assert_eq!(config.stats.inserts, total);
    assert_eq!((config.stats.gets, config.stats.misses), (total, 0));
    assert_eq!(config.stats.entries_added, total);
    assert_eq!(sessions.stats.inserts, total);
    assert_eq!(sessions.stats.updates, total);
    assert_eq!(sessions.stats.removes, total / 2);
    assert_eq!(
        (sessions.stats.entries_added, sessions.stats.entries_removed),
        (total, total / 2)
    );
}

mod crowd {
    use std::collections::HashMap;

    #[guarded_map::guarded_map]
    #[derive(Default)]
    pub struct Session {
        #[guarded(sharded, name = "registry_test.crowd")]
        pub seen: HashMap<u32, u32>,
    }
}

/// Thousands of live instances in one thread's part of the registry (a report sums them a chunk
/// at a time), dropped and made while reports run: no report counts an insert twice or goes back,
/// and the last one counts every insert.
#[test]
fn reports_over_many_live_instances_never_go_back_while_they_churn() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    const LIVE: usize = 5_000;
    const ROUNDS: u32 = 40;
    let made = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            let mut last = 0;
            let mut reports = 0u32;
            while !done.load(Ordering::Acquire) || reports == 0 {
                let inserts = registry::report("registry_test.crowd")
                    .unwrap()
                    .stats
                    .inserts;
                let made = made.load(Ordering::Acquire);
                assert!(inserts >= last, "went back from {last} to {inserts}");
                assert!(inserts <= made, "{inserts} inserts counted, {made} made");
                last = inserts;
                reports += 1;
            }
        });
        let mut live: Vec<crowd::Session> = Vec::with_capacity(LIVE);
        let mut key = 0u32;
        for round in 0..ROUNDS {
            // Drop a spread of them (front, middle, back), then make as many again.
            let n = live.len();
            for at in [n.saturating_sub(50), n / 2, 0] {
                let end = (at + 50).min(live.len());
                if at < end {
                    live.drain(at..end);
                }
            }
            while live.len() < LIVE {
                let session = crowd::Session::default();
                session.seen.insert(key, round);
                key += 1;
                made.fetch_add(1, Ordering::Release);
                live.push(session);
            }
        }
        drop(live);
        done.store(true, Ordering::Release);
    });
    let report = registry::report("registry_test.crowd").unwrap();
    assert_eq!(report.instances, 0);
    assert_eq!(report.stats.inserts, made.into_inner());
}
