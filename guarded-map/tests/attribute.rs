//! `#[guarded_map]` on real structs: what compiles, how the fields behave, what gets registered.

use std::collections::HashMap;
use std::sync::Arc;

use guarded_map::{BackendKind, Descriptor, GuardedMap, guarded_map, registry};

/// Shared state of a small service.
#[guarded_map]
#[derive(Debug, Default)]
pub struct AppState {
    /// Upstream port by path prefix.
    #[guarded(rcu)]
    pub routes: HashMap<String, u16>,
    #[guarded(sharded(shards = 8), max_len = 3, name = "attribute_sessions")]
    pub(crate) sessions: std::collections::HashMap<u64, Vec<Option<u8>>>,
    /// Untouched.
    pub title: String,
}

/// A second annotated struct in the same module, with a field of the same name.
#[guarded_map(all)]
#[derive(Default, Clone)]
struct Other {
    routes: HashMap<u8, u8>,
    #[guarded(rcu, stats = false)]
    flags: HashMap<&'static str, bool>,
    count: usize,
}

#[guarded_map]
struct Generic<K, V: Clone>
where
    K: std::hash::Hash + Eq + Clone,
{
    #[guarded]
    by_key: HashMap<K, V, foldhash::fast::FixedState>,
    #[guarded(rcu)]
    hb: hashbrown::HashMap<u32, V>,
}

mod nested {
    use std::collections::HashMap;

    #[guarded_map::guarded_map]
    pub struct Inner {
        #[guarded(rcu, bpf_map = "flows", help = "Mirrors the kernel map.")]
        pub flows: HashMap<u32, u64>,
        #[cfg(any())]
        #[guarded]
        pub compiled_out: HashMap<u8, u8>,
    }
}

/// The same struct name in another module, and a borrowed key type.
mod twin {
    use std::collections::HashMap;

    #[guarded_map::guarded_map]
    #[derive(Default)]
    pub struct AppState<'a> {
        #[guarded(rcu)]
        pub routes: HashMap<&'a str, u16>,
    }
}

mod by_import {
    use hashbrown::HashMap;

    /// A bare `HashMap` that is hashbrown's by import keeps hashbrown's hasher.
    #[guarded_map::guarded_map]
    pub struct Imported {
        #[guarded]
        pub map: HashMap<u8, u8>,
    }
}

/// The descriptor of `label`, asserting it is registered exactly once.
fn descriptor(label: &str) -> &'static Descriptor {
    let found: Vec<_> = registry::descriptors()
        .filter(|d| d.label() == label)
        .collect();
    assert_eq!(found.len(), 1, "{label} registered {} times", found.len());
    found[0]
}

/// The line of this file containing `needle`.
fn line_of(needle: &str) -> u32 {
    let index = include_str!("attribute.rs")
        .lines()
        .position(|l| l.contains(needle))
        .expect("needle in source");
    index as u32 + 1
}

#[test]
fn fields_behave_as_guarded_maps() {
    let state = AppState {
        title: "svc".into(),
        ..Default::default()
    };
    state.routes.insert("/api".into(), 8080);
    assert_eq!(state.routes.get_cloned("/api"), Some(8080));
    for id in 0..3 {
        state.sessions.insert(id, vec![Some(id as u8), None]);
    }
    let refused = state.sessions.try_insert(9, vec![]).unwrap_err();
    assert_eq!(refused.max_len(), 3);
    assert_eq!(state.sessions.with(&1, |v| v.len()), Some(2));
    assert_eq!(state.title, "svc");
    assert!(format!("{state:?}").contains("\"/api\": 8080"));

    let other = Other::default();
    other.routes.insert(1, 2);
    other.flags.insert("on", true);
    assert_eq!(other.count, 0);
    assert_eq!(other.flags.stats().gets, 0, "stats = false counts nothing");
    other.flags.get_cloned("on");
    assert_eq!(other.flags.stats().gets, 0);
    assert_eq!(other.routes.get_cloned(&1), Some(2));
}

#[test]
fn clone_lifetimes_and_twins() {
    let other = Other::default();
    other.routes.insert(1, 1);
    let copy = other.clone();
    copy.routes.insert(1, 2);
    assert_eq!(
        other.routes.get_cloned(&1),
        Some(1),
        "a clone is independent"
    );

    let path = String::from("/borrowed");
    let twin = twin::AppState::default();
    twin.routes.insert(&path, 7);
    assert_eq!(twin.routes.get_cloned("/borrowed"), Some(7));
    let module = module_path!();
    assert_eq!(
        descriptor(&format!("{module}::twin::AppState.routes")).key_type(),
        "&'a str"
    );
    assert_eq!(
        descriptor(&format!("{module}::AppState.routes")).key_type(),
        "String"
    );
}

#[test]
fn shared_across_threads() {
    let state = Arc::new(AppState::default());
    std::thread::scope(|s| {
        for t in 0..2u16 {
            let state = &state;
            s.spawn(move || {
                for i in 0..100u16 {
                    state.routes.insert(format!("/{t}/{i}"), i);
                }
            });
        }
    });
    assert_eq!(state.routes.len(), 200);
}

#[test]
fn generic_structs_keep_their_hasher() {
    let g: Generic<String, u8> = Generic {
        by_key: GuardedMap::with_hasher(foldhash::fast::FixedState::with_seed(7)),
        hb: GuardedMap::default(),
    };
    g.by_key.insert("a".into(), 1);
    g.hb.insert(5, 6);
    // The hasher type is the one written on the field.
    let _: &foldhash::fast::FixedState = g.by_key.hasher();
    let _: &hashbrown::DefaultHashBuilder = g.hb.hasher();
    assert_eq!(
        (g.by_key.get_cloned("a"), g.hb.get_cloned(&5)),
        (Some(1), Some(6))
    );
    let imported = by_import::Imported {
        map: GuardedMap::default(),
    };
    let _: &hashbrown::DefaultHashBuilder = imported.map.hasher();
}

#[test]
fn every_field_is_registered_once_with_its_options() {
    let module = module_path!();
    let routes = descriptor(&format!("{module}::AppState.routes"));
    assert_eq!(routes.backend(), BackendKind::Rcu);
    assert_eq!(routes.help_text(), Some("Upstream port by path prefix."));
    assert_eq!((routes.key_type(), routes.value_type()), ("String", "u16"));
    assert!(routes.file().ends_with("attribute.rs"));
    assert_eq!(routes.line(), line_of("pub routes: HashMap<String, u16>"));
    assert_eq!(routes.module_path(), module);

    let sessions = descriptor("attribute_sessions");
    assert_eq!(sessions.backend(), BackendKind::Sharded);
    assert_eq!(sessions.shard_count(), Some(8));
    assert_eq!(sessions.max_len_limit(), Some(3));
    assert_eq!(sessions.value_type(), "Vec<Option<u8>>");

    let other = descriptor(&format!("{module}::Other.routes"));
    assert_eq!(other.backend(), BackendKind::Sharded, "the default backend");
    assert!(!descriptor(&format!("{module}::Other.flags")).stats_enabled());
    assert_eq!(
        descriptor(&format!("{module}::Generic.by_key")).key_type(),
        "K"
    );

    let flows = descriptor(&format!("{module}::nested::Inner.flows"));
    assert_eq!(flows.bpf_map_name(), Some("flows"));
    assert_eq!(flows.module_path(), format!("{module}::nested"));
    assert!(
        registry::descriptors().all(|d| !d.label().ends_with("compiled_out")),
        "a field removed by #[cfg] registers nothing"
    );
    let inner = nested::Inner {
        flows: GuardedMap::new(),
    };
    inner.flows.insert(1, 2);
    assert_eq!(inner.flows.len(), 1);
}

#[test]
fn maps_report_under_their_label() {
    let state = AppState::default();
    state.routes.insert("/".into(), 1);
    state.routes.get_cloned("/");
    let report = registry::report(&format!("{}::AppState.routes", module_path!())).unwrap();
    assert!(report.instances >= 1);
    assert!(report.stats.gets >= 1);
}

/// `adaptive` fields: an `Adaptive` map, with the shard count of its `Sharded` form.
#[test]
fn adaptive_fields_switch_forms() {
    use guarded_map::ActiveBackend;

    #[guarded_map]
    #[derive(Default)]
    struct Tenant {
        #[guarded(adaptive)]
        sessions: HashMap<u64, u32>,
        #[guarded(adaptive(shards = 8), name = "tenant_counts")]
        counts: HashMap<String, u64>,
    }

    let tenant = Tenant::default();
    assert_eq!(
        tenant.sessions.descriptor().backend(),
        BackendKind::Adaptive
    );
    assert_eq!(tenant.counts.descriptor().shard_count(), Some(8));
    tenant.sessions.insert(1, 10);
    tenant.counts.upsert("a".into(), || 0, |n| *n += 1);
    // Adaptive maps start `Sharded` unless told otherwise.
    assert_eq!(tenant.sessions.active_backend(), ActiveBackend::Sharded);
    assert_eq!(tenant.sessions.switch_backend(ActiveBackend::Rcu), Ok(true));
    assert_eq!(tenant.counts.switch_backend(ActiveBackend::Rcu), Ok(true));
    tenant.counts.upsert("a".into(), || 0, |n| *n += 1);
    assert_eq!(tenant.sessions.get_cloned(&1), Some(10));
    // `start` picks the first form.
    #[guarded_map]
    #[derive(Default)]
    struct Counters {
        #[guarded(adaptive(start = rcu, shards = 4))]
        hits: HashMap<u32, u64>,
    }
    let counters = Counters::default();
    assert_eq!(counters.hits.active_backend(), ActiveBackend::Rcu);
    assert_eq!(counters.hits.descriptor().start_form(), ActiveBackend::Rcu);
    assert_eq!(counters.hits.pinned_backend(), None);
    let filled: Counters = Counters {
        hits: (0..100).map(|k| (k, 1)).collect(),
    };
    assert_eq!(
        (filled.hits.active_backend(), filled.hits.len()),
        (ActiveBackend::Rcu, 100)
    );
    assert_eq!(filled.hits.switch_backend(ActiveBackend::Sharded), Ok(true));
    assert_eq!(filled.hits.get_cloned(&7), Some(1));
    assert_eq!(tenant.counts.get_cloned("a"), Some(2));
    assert_eq!(tenant.counts.active_backend(), ActiveBackend::Rcu);
}

/// `adaptive(pin = …)`: the map starts in its pin and stays there until unpinned.
#[test]
fn adaptive_pin_option_holds_the_form() {
    use guarded_map::ActiveBackend;

    #[guarded_map]
    #[derive(Default)]
    struct Routes {
        #[guarded(adaptive(pin = rcu))]
        by_prefix: HashMap<u32, u32>,
        #[guarded(adaptive(pin = sharded, start = sharded))]
        by_id: HashMap<u32, u32>,
    }
    let routes = Routes::default();
    let map = &routes.by_prefix;
    assert_eq!(map.descriptor().pinned_form(), Some(ActiveBackend::Rcu));
    assert_eq!(map.active_backend(), ActiveBackend::Rcu);
    assert_eq!(map.pinned_backend(), Some(ActiveBackend::Rcu));
    assert_eq!(
        (routes.by_id.active_backend(), routes.by_id.pinned_backend()),
        (ActiveBackend::Sharded, Some(ActiveBackend::Sharded))
    );
    // A write-only load that would move an unpinned map to `Sharded` leaves it in `Rcu`.
    let until = std::time::Instant::now() + std::time::Duration::from_millis(1_500);
    let mut key = 0;
    while std::time::Instant::now() < until {
        map.insert(key % 512, key);
        key += 1;
    }
    assert_eq!(map.active_backend(), ActiveBackend::Rcu);
    assert_eq!(map.last_switch(), None);
    // A clone keeps the descriptor's pin.
    let copy = map.clone();
    assert_eq!(copy.pinned_backend(), Some(ActiveBackend::Rcu));
    assert_eq!(copy.len(), map.len());
    // Reports count the pinned instances.
    let forms = || {
        guarded_map::registry::report(map.descriptor().label())
            .unwrap()
            .forms
    };
    assert_eq!((forms().pinned_rcu, forms().pinned_sharded), (2, 0));
    // Unpinned, the cost model may move it; a requested switch still works.
    map.unpin_backend();
    assert_eq!(map.pinned_backend(), None);
    assert_eq!(forms().pinned_rcu, 1);
    assert_eq!(map.switch_backend(ActiveBackend::Sharded), Ok(true));
}
