//! Publishing the registry's aggregated statistics through the `metrics` facade.

use std::time::Duration;

use metrics::{Label, counter, gauge, histogram};

use guarded_map_probe_common::{ActiveBackend, Op, SwitchReason};

use super::forecast::{self, Window};
use super::names::{self, label};
use crate::descriptor::{BackendKind, Descriptor};
use crate::registry::{self, MapReport};
use crate::stats::sink::Switch;
use crate::stats::{HotKey, Stats};

/// Publishes every registered map's statistics to the installed recorder: counters as absolute
/// values, gauges as current values. Descriptors sharing one label are summed into one series.
pub(crate) fn publish_all() {
    for (report, hot) in registry::labelled() {
        publish(&report, &hot);
    }
}

fn map_label(d: &'static Descriptor) -> Label {
    Label::from_static_parts(label::MAP, d.label())
}

fn publish(report: &MapReport, hot: &[HotKey]) {
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
    // An adaptive map publishes versions while it is in its `Rcu` form.
    let rcu = matches!(d.backend(), BackendKind::Rcu | BackendKind::Adaptive);
    publish_stats(s, &map, rcu);
    if d.backend() == BackendKind::Adaptive {
        publish_forms(report, &map);
    }
    publish_capacity(report, &map);
    publish_hot_keys(d, hot, &map);
    // Registering a histogram (without an observation) makes it visible before its first event.
    let _registered = histogram!(names::LOCK_WAIT.name, vec![map.clone()]);
    if rcu {
        let _registered = histogram!(names::RCU_PUBLISH.name, vec![map]);
    }
}

/// The gauges derived from the entry count: load, slack, and the growth forecast.
/// How many live instances of an adaptive map are in each form; the switch metrics are
/// registered, so that they show before the first switch.
fn publish_forms(report: &MapReport, map: &Label) {
    for (form, instances) in [
        (ActiveBackend::Rcu, report.forms.rcu),
        (ActiveBackend::Sharded, report.forms.sharded),
    ] {
        let labels = vec![
            map.clone(),
            Label::from_static_parts(label::BACKEND, form.as_str()),
        ];
        gauge!(names::BACKEND.name, labels).set(instances as f64);
    }
    let _registered = histogram!(names::BACKEND_SWITCH.name, vec![map.clone()]);
    // Every direction and reason at 0 until it happens, so that rates and alerts see a series.
    for (from, to) in [
        (ActiveBackend::Rcu, ActiveBackend::Sharded),
        (ActiveBackend::Sharded, ActiveBackend::Rcu),
    ] {
        for reason in SwitchReason::ALL {
            let labels = vec![
                map.clone(),
                Label::from_static_parts(label::FROM, from.as_str()),
                Label::from_static_parts(label::TO, to.as_str()),
                Label::from_static_parts(label::REASON, reason.as_str()),
            ];
            counter!(names::BACKEND_SWITCHES.name, labels).increment(0);
        }
    }
}

fn publish_capacity(report: &MapReport, map: &Label) {
    let s = &report.stats;
    gauge!(names::LOAD_FACTOR.name, vec![map.clone()]).set(s.load_factor());
    gauge!(names::SLACK.name, vec![map.clone()]).set(s.slack_bytes() as f64);
    let growth = forecast::observe(report.descriptor.label(), s.len);
    let limit = report
        .descriptor
        .max_len_limit()
        .map(|max| (max as u64).saturating_mul(report.instances as u64));
    if let Some(limit) = limit {
        gauge!(names::MAX_LEN.name, vec![map.clone()]).set(limit as f64);
    }
    for window in Window::ALL {
        let labels = || {
            vec![
                map.clone(),
                Label::from_static_parts(label::WINDOW, window.as_str()),
            ]
        };
        let rate = growth.entries_per_second(window).unwrap_or(0.0);
        gauge!(names::GROWTH.name, labels()).set(rate);
        if let Some(limit) = limit {
            let eta = growth
                .time_to(limit, window)
                .map_or(f64::INFINITY, |eta| eta.as_secs_f64());
            gauge!(names::TIME_TO_MAX_LEN.name, labels()).set(eta);
        }
    }
}

/// `guarded_map_hot_key_share{rank}` for ranks 1..=k: a rank no key holds reads 0, so a key
/// that cooled down does not leave its last share behind.
fn publish_hot_keys(d: &'static Descriptor, hot: &[HotKey], map: &Label) {
    for rank in 0..d.hot_key_ranks() {
        let share = hot.get(rank).map_or(0.0, |h| h.share);
        let labels = vec![map.clone(), Label::new(label::RANK, (rank + 1).to_string())];
        gauge!(names::HOT_KEY_SHARE.name, labels).set(share);
    }
}

/// `publish_stats`: each row of the table of statistics published as its row says (counters as
/// absolute values, gauges as current values; `rcu_counter` rows for `rcu` maps only).
macro_rules! define_publish {
    ($( $(#[doc = $doc:literal])* $field:ident $name:ident : $kind:ident $metric:tt ; )*) => {
        fn publish_stats(s: &Stats, map: &Label, rcu: bool) {
            $( define_publish!(@one s map rcu $field $metric); )*
        }
    };
    (@one $s:ident $map:ident $rcu:ident $field:ident (op $op:ident)) => {
        counter!(
            names::OPERATIONS.name,
            vec![$map.clone(), Label::from_static_parts(label::OP, Op::$op.name())]
        )
        .absolute($s.$field);
    };
    (@one $s:ident $map:ident $rcu:ident $field:ident (counter $n:literal $help:literal)) => {
        counter!($n, vec![$map.clone()]).absolute($s.$field);
    };
    (@one $s:ident $map:ident $rcu:ident $field:ident (rcu_counter $n:literal $help:literal)) => {
        if $rcu {
            counter!($n, vec![$map.clone()]).absolute($s.$field);
        }
    };
    (@one $s:ident $map:ident $rcu:ident $field:ident (gauge $n:literal $unit:ident $help:literal)) => {
        gauge!($n, vec![$map.clone()]).set($s.$field as f64);
    };
    (@one $s:ident $map:ident $rcu:ident $field:ident ()) => {};
}

guarded_map_probe_common::statistics!(define_publish);

/// Records one contended lock wait of a map of `d`.
pub(crate) fn observe_lock_wait(d: &'static Descriptor, wait: Duration) {
    histogram!(names::LOCK_WAIT.name, vec![map_label(d)]).record(wait.as_secs_f64());
}

/// Records the duration of one RCU publish of a map of `d`.
pub(crate) fn observe_publish(d: &'static Descriptor, took: Duration) {
    histogram!(names::RCU_PUBLISH.name, vec![map_label(d)]).record(took.as_secs_f64());
}

/// Counts one switch of an adaptive map of `d`, and records how long it took.
pub(crate) fn observe_switch(d: &'static Descriptor, switch: Switch, took: Duration) {
    let labels = vec![
        map_label(d),
        Label::from_static_parts(label::FROM, switch.from.as_str()),
        Label::from_static_parts(label::TO, switch.to.as_str()),
        Label::from_static_parts(label::REASON, switch.reason.as_str()),
    ];
    counter!(names::BACKEND_SWITCHES.name, labels).increment(1);
    histogram!(names::BACKEND_SWITCH.name, vec![map_label(d)]).record(took.as_secs_f64());
}
