//! The `axum` example, a service with its own routes and server that serves guarded-map's metrics
//! beside them: its routes answer, its scrape passes `promtool check metrics`, and guarded-map's
//! histograms are rendered as histograms (our buckets), not summaries.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use guarded_map_tests::{scrape, target_dir};

/// The example, killed when dropped.
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start() -> (Service, SocketAddr) {
    let mut child = Command::new(target_dir().join("examples/axum"))
        .args(["--listen", "127.0.0.1:0", "--duration", "60"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawning the axum example (cargo build --workspace --bins --examples)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("the example's first line");
    let addr = line
        .trim()
        .strip_prefix("serving http://")
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("an address");
    (Service(child), addr)
}

#[test]
fn axum_example_serves_its_routes_and_our_metrics() {
    let (_service, addr) = start();
    let call = |method, path| scrape::request(addr, method, path).expect(path);
    assert_eq!(call("POST", "/items/tea/restock/2").0, 200);
    assert_eq!(call("POST", "/items/tea/buy").0, 200);
    assert_eq!(call("POST", "/items/coffee/buy").0, 404, "never stocked");
    let (status, body) = call("GET", "/items/tea");
    assert_eq!(
        (status, body.as_str()),
        (200, "tea: 1 in stock at 450 cents\n")
    );
    assert_eq!(call("GET", "/items/bread").0, 404);

    let (status, text) = call("GET", "/metrics");
    assert_eq!(status, 200);
    scrape::assert_promtool_accepts(&text);
    let samples = scrape::parse(&text);
    let stock = ("map", "axum::Shop.stock");
    let op = |op| {
        scrape::value(
            &samples,
            "guarded_map_operations_total",
            &[stock, ("op", op)],
        )
    };
    // restock: one upsert that inserted; buy: one update (tea; coffee's found nothing to
    // update); show: one get (tea's stock).
    assert_eq!(op("insert"), 1.0);
    assert_eq!(op("update"), 1.0);
    assert_eq!(op("get"), 1.0);
    assert_eq!(
        scrape::value(&samples, "guarded_map_entries", &[stock]),
        1.0
    );
    assert!(text.contains("# HELP guarded_map_operations_total "));
    // Histograms with our buckets, never summaries.
    assert!(!text.contains(" summary\n"), "{text}");
    assert!(
        text.contains("# TYPE guarded_map_rcu_publish_seconds histogram"),
        "{text}"
    );
    let buckets = samples
        .iter()
        .filter(|s| s.name == "guarded_map_rcu_publish_seconds_bucket")
        .filter(|s| {
            s.labels
                .contains(&("map".into(), "axum::Shop.prices".into()))
        })
        .count();
    assert_eq!(buckets, guarded_map::report::SECONDS_BUCKETS.len() + 1);
}
