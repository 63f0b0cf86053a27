//! End to end: a fixture of guarded maps performs a known set of operations, the Prometheus endpoint
//! is scraped over HTTP on loopback, and every metric must be there with the exact counts; the
//! scraped text must pass `promtool check metrics`. Bad configurations fail with clear errors.
//!
//! One test function: the exporter installs the process-wide `metrics` recorder.

use std::collections::HashMap;
use std::net::TcpListener;

use guarded_map::prometheus::{self, InstallError};
use guarded_map::{guarded_map, registry};
use guarded_map_tests::scrape::{self, Sample};

#[guarded_map]
struct Fixture {
    #[guarded(rcu, name = "e2e.routes")]
    routes: HashMap<String, u32>,
    #[guarded(sharded(shards = 4), name = "e2e.sessions", max_len = 3)]
    sessions: HashMap<u64, u64>,
    #[guarded(sharded, name = "e2e.quiet", stats = false)]
    quiet: HashMap<u8, u8>,
    #[guarded(adaptive(start = rcu), name = "e2e.adaptive")]
    adaptive: HashMap<u32, u32>,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            routes: Default::default(),
            sessions: Default::default(),
            quiet: Default::default(),
            adaptive: Default::default(),
        }
    }
}

/// The operations of one fixture; the test runs it on two instances, one dropped before scraping.
fn exercise(f: &Fixture) {
    for (i, route) in ["/a", "/b", "/c"].into_iter().enumerate() {
        f.routes.insert(route.to_owned(), i as u32); // 3 inserts
    }
    for route in ["/a", "/b", "/c", "/a", "/b", "/x", "/y"] {
        f.routes.get_cloned(route); // 7 gets, 2 misses
    }
    f.routes.update("/a", |port| *port += 1); // 1 update
    f.routes.remove("/c"); // 1 remove
    drop(f.routes.snapshot()); // 1 snapshot
    for id in 0..4 {
        let _ = f.sessions.try_insert(id, id); // 3 inserts, 1 rejected
    }
    f.sessions.upsert(0, || 0, |n| *n += 1); // 1 update
    f.sessions.retain(|id, _| *id != 1); // 1 retain
    f.sessions.clear(); // 1 clear
    f.quiet.insert(1, 1);
    f.adaptive.insert(1, 1);
    f.adaptive.insert(2, 2);
    f.adaptive
        .switch_backend(guarded_map::ActiveBackend::Sharded)
        .unwrap(); // 1 requested switch
}

fn adaptive(samples: &[Sample]) {
    let v = |name: &str, labels: &[(&str, &str)]| scrape::value(samples, name, labels);
    let map = ("map", "e2e.adaptive");
    // Both instances switched once; the live one is `Sharded` now.
    let switch = [
        map,
        ("from", "rcu"),
        ("to", "sharded"),
        ("reason", "requested"),
    ];
    assert_eq!(v("guarded_map_backend_switches_total", &switch), 2.0);
    assert_eq!(v("guarded_map_backend_switch_seconds_count", &[map]), 2.0);
    assert_eq!(
        v("guarded_map_backend", &[map, ("backend", "sharded")]),
        1.0
    );
    assert_eq!(v("guarded_map_backend", &[map, ("backend", "rcu")]), 0.0);
    assert_eq!(v("guarded_map_info", &[map, ("backend", "adaptive")]), 1.0);
    assert_eq!(v("guarded_map_entries", &[map]), 2.0);
}

fn routes_and_sessions(samples: &[Sample]) {
    let v = |name: &str, labels: &[(&str, &str)]| scrape::value(samples, name, labels);
    let routes = ("map", "e2e.routes");
    let sessions = ("map", "e2e.sessions");
    // Two instances ran `exercise`; the dropped one's counts are kept.
    for (op, each) in [
        ("get", 7.0),
        ("insert", 3.0),
        ("update", 1.0),
        ("remove", 1.0),
        ("snapshot", 1.0),
        ("retain", 0.0),
        ("clear", 0.0),
    ] {
        let got = v("guarded_map_operations_total", &[routes, ("op", op)]);
        assert_eq!(got, 2.0 * each, "routes {op}");
    }
    for (op, each) in [
        ("get", 0.0),
        ("insert", 3.0),
        ("update", 1.0),
        ("remove", 0.0),
        ("retain", 1.0),
        ("clear", 1.0),
        ("snapshot", 0.0),
    ] {
        let got = v("guarded_map_operations_total", &[sessions, ("op", op)]);
        assert_eq!(got, 2.0 * each, "sessions {op}");
    }
    assert_eq!(v("guarded_map_misses_total", &[routes]), 4.0);
    assert_eq!(v("guarded_map_rejected_total", &[sessions]), 2.0);
    // Gauges cover the live instance only: routes /a and /b, sessions cleared.
    assert_eq!(v("guarded_map_entries", &[routes]), 2.0);
    assert_eq!(v("guarded_map_entries", &[sessions]), 0.0);
    assert_eq!(v("guarded_map_instances", &[routes]), 1.0);
    let report = registry::report("e2e.routes").expect("registered");
    assert_eq!(
        v("guarded_map_capacity_entries", &[routes]),
        report.stats.capacity as f64
    );
    assert!(v("guarded_map_memory_bytes", &[routes]) >= report.stats.capacity as f64);
    assert_eq!(
        v("guarded_map_load_factor", &[routes]),
        2.0 / report.stats.capacity as f64
    );
    assert_eq!(
        v("guarded_map_slack_bytes", &[routes]),
        report.stats.slack_bytes() as f64
    );
    // Capacity: max_len times the live instances; the forecast has one sample so far.
    assert_eq!(v("guarded_map_max_len_entries", &[sessions]), 3.0);
    for window in ["1m", "15m"] {
        let w = ("window", window);
        assert_eq!(
            v("guarded_map_growth_entries_per_second", &[routes, w]),
            0.0
        );
        let eta = v("guarded_map_time_to_max_len_seconds", &[sessions, w]);
        assert_eq!(eta, f64::INFINITY, "not growing: never full");
    }
    assert!(
        !samples.iter().any(|s| s.name.contains("max_len")
            && s.labels.contains(&("map".into(), "e2e.routes".into()))),
        "a map without max_len has no limit to forecast"
    );
    assert_eq!(
        v(
            "guarded_map_info",
            &[
                routes,
                ("backend", "rcu"),
                ("key_type", "String"),
                ("value_type", "u32")
            ]
        ),
        1.0
    );
    assert_eq!(
        v("guarded_map_info", &[sessions, ("backend", "sharded")]),
        1.0
    );
    // Single-threaded: no lock ever waited, and the histogram says the same.
    assert_eq!(v("guarded_map_lock_contended_total", &[sessions]), 0.0);
    assert_eq!(v("guarded_map_lock_wait_seconds_count", &[sessions]), 0.0);
    // Every write of an rcu map publishes once; the histogram sees one publish in 16 of each
    // instance, its first included.
    let publishes = 2.0 * (3.0 + 1.0 + 1.0);
    let sampled = 2.0 * ((3.0 + 1.0 + 1.0) / 16.0_f64).ceil();
    assert_eq!(v("guarded_map_rcu_publishes_total", &[routes]), publishes);
    assert_eq!(
        v("guarded_map_rcu_publish_seconds_count", &[routes]),
        sampled
    );
    assert_eq!(
        v(
            "guarded_map_rcu_publish_seconds_bucket",
            &[routes, ("le", "+Inf")]
        ),
        sampled
    );
    assert_eq!(
        v("guarded_map_rcu_copied_entries_total", &[routes]),
        report.stats.rcu_copied_entries as f64
    );
    // Rcu metrics only for rcu maps; statistics-off maps publish their info and instances only.
    assert!(
        !samples.iter().any(|s| s.name.starts_with("guarded_map_rcu")
            && s.labels.contains(&("map".into(), "e2e.sessions".into())))
    );
    let mut quiet: Vec<&str> = samples
        .iter()
        .filter(|s| s.labels.contains(&("map".into(), "e2e.quiet".into())))
        .map(|s| s.name.as_str())
        .collect();
    quiet.sort_unstable(); // the exporter's order is a hash map's
    assert_eq!(quiet, ["guarded_map_info", "guarded_map_instances"]);
}

#[test]
fn scrape_shows_every_metric_with_exact_counts() {
    // Bad configurations first: nothing may be installed by a failed call.
    let err = prometheus::install("localhost").unwrap_err();
    assert!(matches!(err, InstallError::Address { .. }), "{err}");
    assert!(err.to_string().contains("expected IP:PORT"), "{err}");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let err = prometheus::install(&taken.local_addr().unwrap().to_string()).unwrap_err();
    assert!(matches!(err, InstallError::Bind { .. }), "{err}");
    assert!(
        err.to_string().starts_with("cannot listen on 127.0.0.1:"),
        "{err}"
    );

    let exporter = prometheus::install("127.0.0.1:0").expect("installs");
    assert!(exporter.local_addr().ip().is_loopback());
    let err = prometheus::install("127.0.0.1:0").unwrap_err();
    assert_eq!(err, InstallError::RecorderInstalled);

    let dropped = Fixture::new();
    exercise(&dropped);
    drop(dropped);
    let live = Fixture::new();
    exercise(&live);
    let (status, body) = scrape::get(exporter.local_addr(), "/metrics").expect("scrape");
    assert_eq!(status, 200, "{body}");
    let samples = scrape::parse(&body);
    routes_and_sessions(&samples);
    adaptive(&samples);

    // Every metric guarded-map documents is in the scrape.
    for metric in guarded_map::report::METRICS {
        let present = samples
            .iter()
            .any(|s| s.name == metric.name || s.name == format!("{}_count", metric.name));
        assert!(present, "{} missing from the scrape", metric.name);
        assert!(
            body.contains(&format!("# HELP {} ", metric.name)),
            "{} has no help text",
            metric.name
        );
    }

    // A second scrape sees later operations at once (statistics are refreshed per scrape).
    live.routes.get_cloned("/a");
    let (_, again) = scrape::get(exporter.local_addr(), "/metrics").expect("scrape");
    let gets = |text: &str| {
        scrape::value(
            &scrape::parse(text),
            "guarded_map_operations_total",
            &[("map", "e2e.routes"), ("op", "get")],
        )
    };
    assert_eq!(gets(&again), gets(&body) + 1.0);

    let (status, _) = scrape::get(exporter.local_addr(), "/nothing").expect("scrape");
    assert_eq!(status, 404);

    scrape::assert_promtool_accepts(&body);
    exporter.shutdown();
}
