//! The metric names, kinds, units and help texts that [`describe`](super::describe) and the
//! publisher share, so a metric cannot be published without being described: the metrics of single
//! statistics come from the table of statistics (`guarded_map_probe_common::statistics!`), the
//! others are written here.
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
    "Operations on the map by kind (get, insert, update, remove, retain, clear, snapshot, range).",
);
/// `guarded_map_instances{map}`.
pub const INSTANCES: Metric = metric(
    "guarded_map_instances",
    Kind::Gauge,
    Unit::Count,
    "Live instances of the map's field.",
);
/// `guarded_map_lock_wait_seconds{map}`.
pub const LOCK_WAIT: Metric = metric(
    "guarded_map_lock_wait_seconds",
    Kind::Histogram,
    Unit::Seconds,
    "Time spent waiting for a contended lock.",
);
/// `guarded_map_rcu_publish_seconds{map}`.
pub const RCU_PUBLISH: Metric = metric(
    "guarded_map_rcu_publish_seconds",
    Kind::Histogram,
    Unit::Seconds,
    "Time to build and publish one version of an rcu map (one publish in 16, sampled).",
);

/// `guarded_map_backend{map, backend}`: live instances of an adaptive map in each form.
pub const BACKEND: Metric = metric(
    "guarded_map_backend",
    Kind::Gauge,
    Unit::Count,
    "Live instances of an adaptive map in each form (backend rcu or sharded): 1 for the active \
     form of a single instance.",
);
/// `guarded_map_backend_switches_total{map, from, to, reason}`.
pub const BACKEND_SWITCHES: Metric = metric(
    "guarded_map_backend_switches_total",
    Kind::Counter,
    Unit::Count,
    "Switches of an adaptive map between its forms, by direction and reason (cost_model, \
     requested).",
);
/// `guarded_map_backend_switch_seconds{map}`.
pub const BACKEND_SWITCH: Metric = metric(
    "guarded_map_backend_switch_seconds",
    Kind::Histogram,
    Unit::Seconds,
    "Time an adaptive map's switch took, its copy (while writers wait) and the wait for readers \
     of the old form.",
);

/// `guarded_map_load_factor{map}`.
pub const LOAD_FACTOR: Metric = metric(
    "guarded_map_load_factor",
    Kind::Gauge,
    Unit::Count,
    "Entries over capacity (all live instances): how full the tables are, 0 to 1.",
);
/// `guarded_map_slack_bytes{map}`.
pub const SLACK: Metric = metric(
    "guarded_map_slack_bytes",
    Kind::Gauge,
    Unit::Bytes,
    "Estimated bytes of table capacity held but unused (all live instances).",
);
/// `guarded_map_max_len_entries{map}`.
pub const MAX_LEN: Metric = metric(
    "guarded_map_max_len_entries",
    Kind::Gauge,
    Unit::Count,
    "The entries the map may hold: its max_len times its live instances (maps with a max_len only).",
);
/// `guarded_map_growth_entries_per_second{map, window}`.
pub const GROWTH: Metric = metric(
    "guarded_map_growth_entries_per_second",
    Kind::Gauge,
    Unit::Count,
    "Change of the entry count, averaged over the window (1m or 15m); negative while shrinking.",
);
/// `guarded_map_time_to_max_len_seconds{map, window}`.
pub const TIME_TO_MAX_LEN: Metric = metric(
    "guarded_map_time_to_max_len_seconds",
    Kind::Gauge,
    Unit::Seconds,
    "Forecast time until the entries reach max_len at the window's growth rate; +Inf while not growing.",
);
/// `guarded_map_hot_key_share{map, rank}`.
pub const HOT_KEY_SHARE: Metric = metric(
    "guarded_map_hot_key_share",
    Kind::Gauge,
    Unit::Count,
    "Share of the map's sampled keyed operations that went to its rank-th hottest key, 0 to 1.",
);

/// `guarded_map_mirror_changes_total{bpf_map}`.
pub const MIRROR_CHANGES: Metric = metric(
    "guarded_map_mirror_changes_total",
    Kind::Counter,
    Unit::Count,
    "Changes a mirror applied to its guarded map: change records, its own writes and full-sync differences.",
);
/// `guarded_map_mirror_drift_total{bpf_map}`.
pub const MIRROR_DRIFT: Metric = metric(
    "guarded_map_mirror_drift_total",
    Kind::Counter,
    Unit::Count,
    "Entries an incremental mirror found different from its kernel map at reconciliation, and corrected.",
);
/// `guarded_map_mirror_lost_total{bpf_map}`.
pub const MIRROR_LOST: Metric = metric(
    "guarded_map_mirror_lost_total",
    Kind::Counter,
    Unit::Count,
    "Change records the kernel program could not write because the ring was full (each starts a reconciliation).",
);
/// `guarded_map_mirror_lag_seconds{bpf_map}`.
pub const MIRROR_LAG: Metric = metric(
    "guarded_map_mirror_lag_seconds",
    Kind::Histogram,
    Unit::Seconds,
    "Time from a kernel change to its application in the mirror (one change record in 16, sampled).",
);
/// `guarded_map_mirror_sync_seconds{bpf_map, kind}`.
pub const MIRROR_SYNC: Metric = metric(
    "guarded_map_mirror_sync_seconds",
    Kind::Histogram,
    Unit::Seconds,
    "Time a mirror took to list its kernel map and apply the differences (kind: full or reconcile).",
);

/// The metrics of kernel-map mirrors (`guarded_map::bpf::Mirror`, feature `bpf`): published by
/// each mirror as it works, not by reports.
pub const MIRROR_METRICS: [Metric; 5] = [
    MIRROR_CHANGES,
    MIRROR_DRIFT,
    MIRROR_LOST,
    MIRROR_LAG,
    MIRROR_SYNC,
];

/// The metrics of the table of statistics (`guarded_map_probe_common::statistics!`), collected
/// into [`ALL`] after the metrics that are not one statistic's.
macro_rules! define_all {
    (@acc [$($metric:expr,)*]) => {
        /// Every metric, in the order they are described.
        pub const ALL: [Metric; 14 + [$(stringify!($metric)),*].len()] = [
            INFO, OPERATIONS, INSTANCES, LOCK_WAIT, RCU_PUBLISH, $($metric,)*
            LOAD_FACTOR, SLACK, MAX_LEN, GROWTH, TIME_TO_MAX_LEN, HOT_KEY_SHARE,
            BACKEND, BACKEND_SWITCHES, BACKEND_SWITCH,
        ];
    };
    (@acc [$($metric:expr,)*] $(#[doc = $doc:literal])* $field:ident $name:ident : $kind:ident
        (counter $n:literal $help:literal); $($rest:tt)*) => {
        define_all!(@acc [$($metric,)* metric($n, Kind::Counter, Unit::Count, $help),] $($rest)*);
    };
    (@acc [$($metric:expr,)*] $(#[doc = $doc:literal])* $field:ident $name:ident : $kind:ident
        (rcu_counter $n:literal $help:literal); $($rest:tt)*) => {
        define_all!(@acc [$($metric,)* metric($n, Kind::Counter, Unit::Count, $help),] $($rest)*);
    };
    (@acc [$($metric:expr,)*] $(#[doc = $doc:literal])* $field:ident $name:ident : $kind:ident
        (gauge $n:literal $unit:ident $help:literal); $($rest:tt)*) => {
        define_all!(@acc [$($metric,)* metric($n, Kind::Gauge, Unit::$unit, $help),] $($rest)*);
    };
    (@acc [$($metric:expr,)*] $(#[doc = $doc:literal])* $field:ident $name:ident : $kind:ident
        $other:tt; $($rest:tt)*) => {
        define_all!(@acc [$($metric,)*] $($rest)*);
    };
    ($($rows:tt)*) => {
        define_all!(@acc [] $($rows)*);
    };
}

guarded_map_probe_common::statistics!(define_all);

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
    /// The backend, on `guarded_map_info`; the form, on `guarded_map_backend`.
    pub const BACKEND: &str = "backend";
    /// The forms a switch went from and to, on `guarded_map_backend_switches_total`.
    pub const FROM: &str = "from";
    /// See [`FROM`].
    pub const TO: &str = "to";
    /// Why a switch happened, on `guarded_map_backend_switches_total`.
    pub const REASON: &str = "reason";
    /// The key type, on `guarded_map_info`.
    pub const KEY_TYPE: &str = "key_type";
    /// The value type, on `guarded_map_info`.
    pub const VALUE_TYPE: &str = "value_type";
    /// The forecast's window (`1m`, `15m`), on the growth and time-to-max_len gauges.
    pub const WINDOW: &str = "window";
    /// The rank of a hot key (`1` is the hottest), on the hot-key share gauge.
    pub const RANK: &str = "rank";
    /// The kernel map's name, on the mirror metrics.
    pub const BPF_MAP: &str = "bpf_map";
    /// What a mirror's sync was (`full`, `reconcile`), on its duration histogram.
    pub const KIND: &str = "kind";
    /// Every label above.
    pub const ALL: [&str; 9] = [
        MAP, OP, BACKEND, KEY_TYPE, VALUE_TYPE, WINDOW, RANK, BPF_MAP, KIND,
    ];
}
