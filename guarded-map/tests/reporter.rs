//! The reporter under `metrics_util`'s `DebuggingRecorder`: counters are monotonic across reports,
//! instances dropped between reports lose no counts, gauges follow `len()`, every metric is
//! described, and the interval thread reports on its own and once more when shut down.

use std::thread;
use std::time::{Duration, Instant};

use guarded_map::{GuardedMap, Reporter, ReporterError, describe, map_spec, report_now};
use metrics::Unit;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

map_spec!(Accounts: HashMap<u32, u64>, sharded, name = "reporter.accounts");
map_spec!(Prices: HashMap<u32, u64>, rcu, name = "reporter.prices");
map_spec!(Threaded: HashMap<u32, u64>, rcu, name = "reporter.threaded");
map_spec!(Growing: HashMap<u32, u64>, sharded, name = "reporter.growing", max_len = 100_000);
map_spec!(Described: HashMap<u32, u64>, rcu, name = "reporter.described", max_len = 1_000);
map_spec!(DescribedAdaptive: HashMap<u32, u64>, adaptive, name = "reporter.described_adaptive");

/// The value of the series `name` of map `map` (and `op`, if given) in one snapshot.
fn value(snapshot: &[Published], name: &str, map: &str, op: Option<&str>) -> Option<f64> {
    snapshot
        .iter()
        .find(|p| {
            p.name == name
                && p.labels.iter().any(|(k, v)| k == "map" && v == map)
                && op.is_none_or(|op| p.labels.iter().any(|(k, v)| k == "op" && v == op))
        })
        .map(|p| p.value)
}

struct Published {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
    unit: Option<Unit>,
    help: Option<String>,
}

fn take(snapshotter: &Snapshotter) -> Vec<Published> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, unit, help, value)| Published {
            name: key.key().name().to_owned(),
            labels: key
                .key()
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect(),
            value: match value {
                DebugValue::Counter(n) => n as f64,
                DebugValue::Gauge(g) => g.into_inner(),
                DebugValue::Histogram(h) => h.len() as f64,
            },
            unit,
            help: help.map(|h| h.to_string()),
        })
        .collect()
}

/// Reports into a fresh local recorder and returns what was published.
fn report_into(recorder: &DebuggingRecorder) -> Vec<Published> {
    metrics::with_local_recorder(recorder, report_now);
    take(&recorder.snapshotter())
}

#[test]
fn counters_are_monotonic_and_dropped_instances_lose_nothing() {
    let recorder = DebuggingRecorder::new();
    let op = |s: &[Published], op: &str| {
        value(
            s,
            "guarded_map_operations_total",
            "reporter.accounts",
            Some(op),
        )
    };
    let gauge = |s: &[Published], name: &str| value(s, name, "reporter.accounts", None);

    let kept: GuardedMap<u32, u64, Accounts> = GuardedMap::new();
    for id in 0..5 {
        kept.insert(id, 100);
    }
    let first = report_into(&recorder);
    assert_eq!(op(&first, "insert"), Some(5.0));
    assert_eq!(gauge(&first, "guarded_map_entries"), Some(5.0));
    assert_eq!(gauge(&first, "guarded_map_instances"), Some(1.0));

    // A second instance comes and goes between two reports.
    let passing: GuardedMap<u32, u64, Accounts> = GuardedMap::new();
    for id in 0..3 {
        passing.insert(id, 1);
    }
    passing.update(&0, |n| *n += 1);
    drop(passing);
    kept.remove(&4);
    kept.remove(&3);
    let second = report_into(&recorder);
    assert_eq!(op(&second, "insert"), Some(8.0));
    assert_eq!(op(&second, "update"), Some(1.0));
    assert_eq!(op(&second, "remove"), Some(2.0));
    assert_eq!(gauge(&second, "guarded_map_instances"), Some(1.0));
    assert_eq!(
        gauge(&second, "guarded_map_entries"),
        Some(kept.len() as f64)
    );
    for p in &first {
        if p.name.ends_with("_total") {
            let later = value(
                &second,
                &p.name,
                "reporter.accounts",
                p.labels
                    .iter()
                    .find(|(k, _)| k == "op")
                    .map(|(_, v)| v.as_str()),
            );
            if p.labels
                .contains(&("map".into(), "reporter.accounts".into()))
            {
                assert!(later >= Some(p.value), "{} went backwards", p.name);
            }
        }
    }

    kept.clear();
    let third = report_into(&recorder);
    assert_eq!(gauge(&third, "guarded_map_entries"), Some(0.0));
    assert_eq!(op(&third, "clear"), Some(1.0));
    assert_eq!(
        gauge(&third, "guarded_map_capacity_entries"),
        Some(kept.capacity() as f64)
    );
}

#[test]
fn rcu_publishes_feed_counters_and_the_histogram() {
    let recorder = DebuggingRecorder::new();
    let prices: GuardedMap<u32, u64, Prices> = GuardedMap::new();
    metrics::with_local_recorder(&recorder, || {
        for id in 0..20 {
            prices.insert(id, 10);
        }
    });
    let published = report_into(&recorder);
    let v = |name: &str| value(&published, name, "reporter.prices", None);
    assert_eq!(v("guarded_map_rcu_publishes_total"), Some(20.0));
    // One publish in 16 is observed (the 1st and the 17th), as it happens (under the local
    // recorder).
    assert_eq!(v("guarded_map_rcu_publish_seconds"), Some(2.0));
    assert_eq!(
        v("guarded_map_rcu_copied_entries_total"),
        Some(prices.stats().rcu_copied_entries as f64)
    );
}

#[test]
fn describe_registers_every_metric_with_help_and_unit() {
    let recorder = DebuggingRecorder::new();
    let _map: GuardedMap<u32, u64, Described> = GuardedMap::new();
    // The adaptive metrics are published for adaptive maps (before any switch: at 0).
    let _adaptive: GuardedMap<u32, u64, DescribedAdaptive> = GuardedMap::new();
    metrics::with_local_recorder(&recorder, || {
        describe();
        report_now();
    });
    let published = take(&recorder.snapshotter());
    for metric in guarded_map::report::METRICS {
        let p = published
            .iter()
            .find(|p| p.name == metric.name)
            .unwrap_or_else(|| panic!("{} not published", metric.name));
        assert_eq!(p.help.as_deref(), Some(metric.help), "{}", metric.name);
        assert_eq!(p.unit, Some(metric.unit), "{}", metric.name);
    }
}

#[test]
fn reporter_thread_reports_on_its_interval_and_when_shut_down() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only global recorder of this test binary");
    let map: GuardedMap<u32, u64, Threaded> = GuardedMap::new();
    map.insert(1, 1);
    let reporter = Reporter::start(Duration::from_millis(10)).expect("starts");
    assert_eq!(reporter.interval(), Duration::from_millis(10));
    let inserts = |s: &[Published]| {
        value(
            s,
            "guarded_map_operations_total",
            "reporter.threaded",
            Some("insert"),
        )
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while inserts(&take(&snapshotter)) != Some(1.0) {
        assert!(Instant::now() < deadline, "the reporter never reported");
        thread::sleep(Duration::from_millis(5));
    }
    map.insert(2, 2);
    map.insert(3, 3);
    reporter.shutdown();
    // The last report, made during shutdown, has every insert.
    assert_eq!(inserts(&take(&snapshotter)), Some(3.0));
}

#[test]
fn a_zero_interval_is_refused() {
    let err = Reporter::start(Duration::ZERO).unwrap_err();
    assert!(matches!(err, ReporterError::ZeroInterval));
    assert_eq!(err.to_string(), "the reporter interval must not be zero");
}

#[test]
fn reports_forecast_a_growing_map() {
    // 200 entries every 0.6 s (the forecast skips reports closer than 0.5 s): 333 a second.
    let map: GuardedMap<u32, u64, Growing> = GuardedMap::new();
    let recorder = DebuggingRecorder::new();
    let mut published = report_into(&recorder);
    for step in 0..4u32 {
        thread::sleep(Duration::from_millis(600));
        for k in step * 200..(step + 1) * 200 {
            map.insert(k, 0);
        }
        published = report_into(&recorder);
    }
    let window = |name: &str, w: &str| {
        published
            .iter()
            .find(|p| {
                p.name == name
                    && p.labels
                        .contains(&("map".into(), "reporter.growing".into()))
                    && p.labels.contains(&("window".into(), w.into()))
            })
            .map(|p| p.value)
            .unwrap_or_else(|| panic!("{name} {w} not published"))
    };
    for w in ["1m", "15m"] {
        let rate = window("guarded_map_growth_entries_per_second", w);
        // Sleeps overshoot (a loaded machine stretches them): at most the nominal rate.
        assert!(rate > 50.0 && rate <= 334.0, "{w}: {rate}");
        let eta = window("guarded_map_time_to_max_len_seconds", w);
        let expected = (100_000.0 - 800.0) / rate;
        assert!((eta - expected).abs() < 1.0, "{w}: {eta} vs {expected}");
    }
    let growth = guarded_map::report::forecast("reporter.growing").expect("reported");
    assert_eq!(growth.entries(), Some(800));
    let fill = value(
        &published,
        "guarded_map_load_factor",
        "reporter.growing",
        None,
    )
    .unwrap();
    assert!(fill > 0.0 && fill <= 1.0, "{fill}");
}
