//! The metric names, kinds, units and help texts: one table that [`describe`](super::describe) and
//! the publisher share, so a metric cannot be published without being described.
//!
//! Prometheus conventions: base units, `_total` on counters, the unit as a suffix,
//! one `map` label whose values come only from static descriptors.

use metrics::Unit;

/// What kind of metric a name is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A monotonic counter, published as an absolute value.
    Counter,
    /// A gauge, published as its current value.
    Gauge,
    /// A histogram, fed one observation per rare event.
    Histogram,
}

/// One metric guarded-map publishes.
#[derive(Clone, Copy, Debug)]
pub struct Metric {
    /// The full name, suffixes included.
    pub name: &'static str,
    /// Its kind.
    pub kind: Kind,
    /// Its unit.
    pub unit: Unit,
    /// Its help text.
    pub help: &'static str,
}

const fn metric(name: &'static str, kind: Kind, unit: Unit, help: &'static str) -> Metric {
    Metric {
        name,
        kind,
        unit,
        help,
    }
}

/// `guarded_map_info{map, backend, key_type, value_type} 1`.
pub const INFO: Metric = metric(
    "guarded_map_info",
    Kind::Gauge,
    Unit::Count,
    "A registered guarded map: its backend and key and value types, always 1.",
);
/// `guarded_map_operations_total{map, op}`.
pub const OPERATIONS: Metric = metric(
    "guarded_map_operations_total",
    Kind::Counter,
    Unit::Count,
    "Operations on the map by kind (get, insert, update, remove, retain, clear, snapshot).",
);
/// `guarded_map_misses_total{map}`.
pub const MISSES: Metric = metric(
    "guarded_map_misses_total",
    Kind::Counter,
    Unit::Count,
    "Keyed reads that found no entry.",
);
/// `guarded_map_rejected_total{map}`.
pub const REJECTED: Metric = metric(
    "guarded_map_rejected_total",
    Kind::Counter,
    Unit::Count,
    "New keys refused because the map held its max_len entries.",
);
/// `guarded_map_entries{map}`.
pub const ENTRIES: Metric = metric(
    "guarded_map_entries",
    Kind::Gauge,
    Unit::Count,
    "Entries in the map (all live instances).",
);
/// `guarded_map_capacity_entries{map}`.
pub const CAPACITY: Metric = metric(
    "guarded_map_capacity_entries",
    Kind::Gauge,
    Unit::Count,
    "Entries the map can hold without allocating (all live instances).",
);
/// `guarded_map_memory_bytes{map}`.
pub const MEMORY: Metric = metric(
    "guarded_map_memory_bytes",
    Kind::Gauge,
    Unit::Bytes,
    "Estimated bytes of the map's tables: capacity times the bytes per entry slot; heap memory owned by keys and values is not included.",
);
/// `guarded_map_instances{map}`.
pub const INSTANCES: Metric = metric(
    "guarded_map_instances",
    Kind::Gauge,
    Unit::Count,
    "Live instances of the map's field.",
);
/// `guarded_map_lock_contended_total{map}`.
pub const LOCK_CONTENDED: Metric = metric(
    "guarded_map_lock_contended_total",
    Kind::Counter,
    Unit::Count,
    "Lock acquisitions that had to wait (shard locks; the writer lock of rcu maps).",
);
/// `guarded_map_lock_wait_seconds{map}`.
pub const LOCK_WAIT: Metric = metric(
    "guarded_map_lock_wait_seconds",
    Kind::Histogram,
    Unit::Seconds,
    "Time spent waiting for a contended lock.",
);
/// `guarded_map_rcu_publishes_total{map}`.
pub const RCU_PUBLISHES: Metric = metric(
    "guarded_map_rcu_publishes_total",
    Kind::Counter,
    Unit::Count,
    "New versions published by an rcu map (one per write).",
);
/// `guarded_map_rcu_publish_seconds{map}`.
pub const RCU_PUBLISH: Metric = metric(
    "guarded_map_rcu_publish_seconds",
    Kind::Histogram,
    Unit::Seconds,
    "Time to build and publish one version of an rcu map.",
);
/// `guarded_map_rcu_copied_entries_total{map}`.
pub const RCU_COPIED: Metric = metric(
    "guarded_map_rcu_copied_entries_total",
    Kind::Counter,
    Unit::Count,
    "Entries copied into new versions of an rcu map (its write amplification).",
);

/// Every metric, in the order they are described.
pub const ALL: [Metric; 13] = [
    INFO,
    OPERATIONS,
    MISSES,
    REJECTED,
    ENTRIES,
    CAPACITY,
    MEMORY,
    INSTANCES,
    LOCK_CONTENDED,
    LOCK_WAIT,
    RCU_PUBLISHES,
    RCU_PUBLISH,
    RCU_COPIED,
];

/// Histogram buckets, in seconds: 1 µs to 1 s, three per decade.
pub const SECONDS_BUCKETS: [f64; 19] = [
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2,
    5e-2, 0.1, 0.25, 0.5, 1.0,
];

/// The label names guarded-map's metrics carry (a global label of the exporter must not reuse one).
pub mod label {
    /// The map's label, from its descriptor: on every metric.
    pub const MAP: &str = "map";
    /// The operation kind, on `guarded_map_operations_total`.
    pub const OP: &str = "op";
    /// The backend, on `guarded_map_info`.
    pub const BACKEND: &str = "backend";
    /// The key type, on `guarded_map_info`.
    pub const KEY_TYPE: &str = "key_type";
    /// The value type, on `guarded_map_info`.
    pub const VALUE_TYPE: &str = "value_type";
    /// Every label above.
    pub const ALL: [&str; 5] = [MAP, OP, BACKEND, KEY_TYPE, VALUE_TYPE];
}
