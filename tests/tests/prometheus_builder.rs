//! The exporter's `Builder`: bad settings install nothing; global labels, histogram buckets and a
//! reporting interval show in the scrape. (Its own process: the exporter installs the global
//! recorder.)

use std::collections::HashMap;
use std::time::{Duration, Instant};

use guarded_map::guarded_map;
use guarded_map::prometheus::{Builder, InstallError};
use guarded_map_tests::scrape;

#[guarded_map]
#[derive(Default)]
struct State {
    #[guarded(rcu, name = "builder.routes")]
    routes: HashMap<u32, u32>,
}

#[test]
fn builder_settings_reach_the_scrape() {
    // Refused settings leave nothing installed: the next install succeeds.
    let err = Builder::new()
        .listen("127.0.0.1:0")
        .buckets(&[0.1, 0.01])
        .install()
        .unwrap_err();
    assert!(
        matches!(
            err,
            InstallError::Setting {
                setting: "buckets",
                ..
            }
        ),
        "{err}"
    );
    let err = Builder::new()
        .global_label("map", "x")
        .install()
        .unwrap_err();
    assert!(err.to_string().starts_with("invalid global_label"), "{err}");
    let err = Builder::new().listen("nowhere").install().unwrap_err();
    assert!(matches!(err, InstallError::Address { .. }), "{err}");

    let exporter = Builder::new()
        .listen("127.0.0.1:0")
        .global_label("service", "billing")
        .global_label("instance", "a-1")
        .buckets(&[0.001, 0.01])
        .report_every(Duration::from_millis(50))
        .install()
        .expect("installs");
    let state = State::default();
    for i in 0..5 {
        state.routes.insert(i, i);
    }
    let (status, body) = scrape::get(exporter.local_addr(), "/metrics").expect("scrape");
    assert_eq!(status, 200);
    let samples = scrape::parse(&body);
    assert!(!samples.is_empty());
    for sample in &samples {
        for label in [("service", "billing"), ("instance", "a-1")] {
            let label = (label.0.to_owned(), label.1.to_owned());
            assert!(sample.labels.contains(&label), "{sample:?} lacks {label:?}");
        }
    }
    assert!(
        body.contains("# TYPE guarded_map_rcu_publish_seconds histogram"),
        "{body}"
    );
    let mut bounds: Vec<&str> = samples
        .iter()
        .filter(|s| s.name == "guarded_map_rcu_publish_seconds_bucket")
        .filter(|s| s.labels.contains(&("map".into(), "builder.routes".into())))
        .filter_map(|s| s.labels.iter().find(|(k, _)| k == "le"))
        .map(|(_, v)| v.as_str())
        .collect();
    bounds.sort_unstable();
    assert_eq!(bounds, ["+Inf", "0.001", "0.01"]);

    // The interval publishes without a scrape: the raw handle (which does not publish) sees the
    // new count within a few intervals.
    state.routes.get_cloned(&1);
    let gets = || {
        let samples = scrape::parse(&exporter.handle().render());
        scrape::value(
            &samples,
            "guarded_map_operations_total",
            &[("map", "builder.routes"), ("op", "get")],
        )
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while gets() != 1.0 {
        assert!(Instant::now() < deadline, "{}", exporter.handle().render());
        std::thread::sleep(Duration::from_millis(20));
    }
    exporter.shutdown();
}
