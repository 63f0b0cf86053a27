//! Publishing the registry's aggregated statistics through the `metrics` facade.

use std::time::Duration;

use metrics::{Label, counter, gauge, histogram};

use super::names::{self, Metric, label};
use crate::descriptor::{BackendKind, Descriptor};
use crate::registry::{self, MapReport};

/// Publishes every registered map's statistics to the installed recorder: counters as absolute
/// values, gauges as current values. Descriptors sharing one label are summed into one series.
pub(crate) fn publish_all() {
    for report in registry::reports_by_label() {
        publish(&report);
    }
}

fn map_label(d: &'static Descriptor) -> Label {
    Label::from_static_parts(label::MAP, d.label())
}

fn publish(report: &MapReport) {
    let d = report.descriptor;
    let s = &report.stats;
    let map = map_label(d);
    gauge!(
        names::INFO.name,
        vec![
            map.clone(),
            Label::from_static_parts(label::BACKEND, d.backend().as_str()),
            Label::from_static_parts(label::KEY_TYPE, d.key_type()),
            Label::from_static_parts(label::VALUE_TYPE, d.value_type()),
        ]
    )
    .set(1.0);
    gauge!(names::INSTANCES.name, vec![map.clone()]).set(report.instances as f64);
    if !d.stats_enabled() {
        // Nothing was counted: publishing zeros would read as an idle map.
        return;
    }
    let ops = [
        ("get", s.gets),
        ("insert", s.inserts),
        ("update", s.updates),
        ("remove", s.removes),
        ("retain", s.retains),
        ("clear", s.clears),
        ("snapshot", s.snapshots),
    ];
    for (op, n) in ops {
        counter!(
            names::OPERATIONS.name,
            vec![map.clone(), Label::from_static_parts(label::OP, op)]
        )
        .absolute(n);
    }
    let counters: [(Metric, u64); 3] = [
        (names::MISSES, s.misses),
        (names::REJECTED, s.rejected),
        (names::LOCK_CONTENDED, s.lock_contended),
    ];
    for (metric, n) in counters {
        counter!(metric.name, vec![map.clone()]).absolute(n);
    }
    let gauges: [(Metric, u64); 3] = [
        (names::ENTRIES, s.len),
        (names::CAPACITY, s.capacity),
        (names::MEMORY, s.memory_bytes),
    ];
    for (metric, n) in gauges {
        gauge!(metric.name, vec![map.clone()]).set(n as f64);
    }
    // Registering a histogram (without an observation) makes it visible before its first event.
    let _registered = histogram!(names::LOCK_WAIT.name, vec![map.clone()]);
    if d.backend() == BackendKind::Rcu {
        counter!(names::RCU_PUBLISHES.name, vec![map.clone()]).absolute(s.rcu_publishes);
        counter!(names::RCU_COPIED.name, vec![map.clone()]).absolute(s.rcu_copied_entries);
        let _registered = histogram!(names::RCU_PUBLISH.name, vec![map]);
    }
}

/// Records one contended lock wait of a map of `d`.
pub(crate) fn observe_lock_wait(d: &'static Descriptor, wait: Duration) {
    histogram!(names::LOCK_WAIT.name, vec![map_label(d)]).record(wait.as_secs_f64());
}

/// Records the duration of one RCU publish of a map of `d`.
pub(crate) fn observe_publish(d: &'static Descriptor, took: Duration) {
    histogram!(names::RCU_PUBLISH.name, vec![map_label(d)]).record(took.as_secs_f64());
}
