//! Reporting: the registry's statistics published through the [`metrics`] facade.
//!
//! Maps count on their hot paths into per-thread slots and never call the facade. Publishing sums
//! those slots per map label and hands the totals to the installed recorder: counters as absolute
//! values (monotonic, nothing lost when an instance is dropped), gauges as current values. Two rare
//! events, a contended lock wait and an RCU publish, are recorded into histograms as they happen.
//!
//! - [`describe`]: registers every metric's help text and unit with the installed recorder.
//! - [`report_now`]: publishes once, now.
//! - [`Reporter`]: publishes on an interval from a background thread.
//!
//! The metrics (all labelled `map`):
//!
//! | name | kind | |
//! |---|---|---|
//! | `guarded_map_info{backend, key_type, value_type}` | gauge | always 1 |
//! | `guarded_map_operations_total{op}` | counter | `op`: get, insert, update, remove, retain, clear, snapshot, range |
//! | `guarded_map_misses_total` | counter | keyed reads that found nothing |
//! | `guarded_map_rejected_total` | counter | new keys refused at `max_len` |
//! | `guarded_map_entries` | gauge | |
//! | `guarded_map_capacity_entries` | gauge | |
//! | `guarded_map_memory_bytes` | gauge | estimate, see [`Stats::memory_bytes`](crate::Stats::memory_bytes) |
//! | `guarded_map_instances` | gauge | live instances of the field |
//! | `guarded_map_lock_contended_total` | counter | |
//! | `guarded_map_lock_wait_seconds` | histogram | |
//! | `guarded_map_rcu_publishes_total` | counter | `rcu` maps only |
//! | `guarded_map_rcu_publish_seconds` | histogram | `rcu` maps only |
//! | `guarded_map_rcu_copied_entries_total` | counter | `rcu` maps only |
//! | `guarded_map_load_factor` | gauge | entries over capacity, 0 to 1 |
//! | `guarded_map_slack_bytes` | gauge | capacity held but unused, estimate |
//! | `guarded_map_max_len_entries` | gauge | max_len times live instances; maps with a `max_len` only |
//! | `guarded_map_growth_entries_per_second{window}` | gauge | `window`: `1m`, `15m` ([`Forecast`]) |
//! | `guarded_map_time_to_max_len_seconds{window}` | gauge | `+Inf` while not growing; maps with a `max_len` only |
//! | `guarded_map_hot_key_share{rank}` | gauge | `rank`: 1 to the map's `hot_keys` (5 by default); never a key as a label |
//! | `guarded_map_backend{backend}` | gauge | adaptive maps: live instances in each form (`rcu`, `sharded`) |
//! | `guarded_map_backend_switches_total{from, to, reason}` | counter | adaptive maps: switches, by direction and `reason` (`cost_model`, `requested`) |
//! | `guarded_map_backend_switch_seconds` | histogram | adaptive maps: the time each switch took |
//!
//! Maps declared with `stats = false` publish only `guarded_map_info` and `guarded_map_instances`.
//! Histograms see the events that happen while a recorder is installed.

mod forecast;
pub(crate) mod names;
mod publish;
mod reporter;

pub use forecast::{Forecast, Window, forecast};
pub use names::{
    ALL as METRICS, Kind as MetricKind, MIRROR_METRICS, Metric, SECONDS_BUCKETS, label,
};
pub(crate) use publish::{observe_lock_wait, observe_publish, observe_switch};
pub use reporter::{Reporter, ReporterError};

/// Registers the help text and unit of every metric guarded-map publishes with the installed
/// recorder. Call it once after installing the recorder (the Prometheus helper does).
///
/// ```
/// // With a recorder installed (the `prometheus` feature's helpers call this themselves):
/// guarded_map::describe();
/// ```
pub fn describe() {
    for metric in names::ALL.iter().chain(&names::MIRROR_METRICS) {
        match metric.kind {
            MetricKind::Counter => {
                metrics::describe_counter!(metric.name, metric.unit, metric.help)
            }
            MetricKind::Gauge => metrics::describe_gauge!(metric.name, metric.unit, metric.help),
            MetricKind::Histogram => {
                metrics::describe_histogram!(metric.name, metric.unit, metric.help)
            }
        }
    }
}

/// Publishes every registered map's statistics to the recorder the calling thread sees, now.
///
/// ```
/// use guarded_map::{map_spec, report_now, GuardedMap};
/// use metrics_util::debugging::DebuggingRecorder;
///
/// map_spec!(Hits: HashMap<u32, u64>, sharded);
/// let hits: GuardedMap<u32, u64, Hits> = GuardedMap::new();
/// hits.insert(7, 1);
///
/// let recorder = DebuggingRecorder::new();
/// let snapshotter = recorder.snapshotter();
/// metrics::with_local_recorder(&recorder, report_now);
/// let published = snapshotter.snapshot().into_vec();
/// assert!(published.iter().any(|(key, ..)| key.key().name() == "guarded_map_entries"));
/// ```
pub fn report_now() {
    publish::publish_all();
}
