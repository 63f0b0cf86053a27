//! The operator files in `deploy/` against the real programs, on 127.0.0.1:
//! - Alertmanager with `deploy/alertmanager/alertmanager.yml` inhibits a warning while the critical
//!   of the same alert and map fires, and lets it through once the critical is resolved;
//! - Prometheus scraping the demo answers every query of the Grafana dashboard with data;
//! - every metric the dashboard names is one guarded-map publishes.
//!
//! Needs Debian's `prometheus` and `prometheus-alertmanager` (the suite's `scripts/test` installs
//! them); without them the live tests say so and pass, except under `CI`, where they fail.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use guarded_map_tests::scrape;
use serde_json::{Value, json};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Whether `program` is on the PATH; under `CI` a missing program fails the test.
fn have(program: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{program} is missing (scripts/test installs it)"
        );
        eprintln!("skipped: {program} is not installed (scripts/test installs it)");
    }
    found
}

/// A free port on 127.0.0.1 (released for the server to take).
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// A fresh directory under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("guarded-map-{what}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `program` with `args` and waits (at most 30 s) until `addr` answers `GET /-/ready`.
fn start_server(program: &str, args: &[String], addr: SocketAddr) -> Running {
    let child = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let mut running = Running(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok((200, _)) = scrape::get(addr, "/-/ready") {
            return running;
        }
        if let Ok(Some(status)) = running.0.try_wait() {
            panic!("{program} exited early: {status}");
        }
        assert!(Instant::now() < deadline, "{program} was not ready in 30 s");
        thread::sleep(Duration::from_millis(100));
    }
}

/// Polls `check` every 200 ms for at most `secs` seconds; returns its last answer.
fn poll<T>(secs: u64, mut check: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match check() {
            Ok(done) => return Ok(done),
            Err(why) if Instant::now() >= deadline => return Err(why),
            Err(_) => thread::sleep(Duration::from_millis(200)),
        }
    }
}

// ---- Alertmanager ----

fn alert(severity: &str, resolved: bool) -> Value {
    let mut alert = json!({
        "labels": {
            "alertname": "GuardedMapFillingUp",
            "severity": severity,
            "map": "app.sessions",
        },
        "annotations": { "summary": "a test alert" },
    });
    if resolved {
        // Started and ended in the past: a resolved alert.
        alert["startsAt"] = json!("2001-01-01T00:00:00Z");
        alert["endsAt"] = json!("2001-01-01T00:01:00Z");
    }
    alert
}

fn post_alerts(addr: SocketAddr, alerts: &[Value]) {
    let body = serde_json::to_string(alerts).unwrap();
    let (status, reply) = scrape::send(addr, "POST", "/api/v2/alerts", &body).expect("posting");
    assert_eq!(status, 200, "{reply}");
}

/// The state (`active`, `suppressed`) and `inhibitedBy` of each current alert, by severity.
fn alert_states(addr: SocketAddr) -> Result<Vec<(String, String, usize)>, String> {
    let (status, body) = scrape::get(addr, "/api/v2/alerts").map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("{status}: {body}"));
    }
    let alerts: Vec<Value> = serde_json::from_str(&body).map_err(|e| e.to_string())?;
    let mut states: Vec<(String, String, usize)> = alerts
        .iter()
        .map(|a| {
            (
                a["labels"]["severity"].as_str().unwrap_or("").to_owned(),
                a["status"]["state"].as_str().unwrap_or("").to_owned(),
                a["status"]["inhibitedBy"].as_array().map_or(0, Vec::len),
            )
        })
        .collect();
    states.sort();
    Ok(states)
}

#[test]
fn alertmanager_inhibits_the_warning_while_the_critical_fires() {
    if !have("prometheus-alertmanager") {
        return;
    }
    let dir = TempDir::new("alertmanager");
    let addr = free_addr();
    let config = repo().join("deploy/alertmanager/alertmanager.yml");
    let _alertmanager = start_server(
        "prometheus-alertmanager",
        &[
            format!("--config.file={}", config.display()),
            format!("--storage.path={}", dir.0.display()),
            format!("--web.listen-address={addr}"),
            // No cluster: it would listen on every interface.
            "--cluster.listen-address=".into(),
        ],
        addr,
    );

    post_alerts(addr, &[alert("critical", false), alert("warning", false)]);
    let both = poll(20, || {
        let states = alert_states(addr)?;
        let want = [
            ("critical".to_owned(), "active".to_owned(), 0),
            ("warning".to_owned(), "suppressed".to_owned(), 1),
        ];
        if states == want {
            Ok(states)
        } else {
            Err(format!("{states:?}"))
        }
    });
    both.expect("the warning inhibited by the critical of the same alert and map");

    // A warning of another map is not inhibited.
    let mut other = alert("warning", false);
    other["labels"]["map"] = json!("app.routes");
    post_alerts(addr, &[other]);
    let states = poll(20, || {
        let states = alert_states(addr)?;
        if states.len() == 3 {
            Ok(states)
        } else {
            Err(format!("{states:?}"))
        }
    })
    .expect("three alerts");
    assert!(
        states.contains(&("warning".into(), "active".into(), 0)),
        "{states:?}"
    );

    // The critical resolved: its warning comes back.
    post_alerts(addr, &[alert("critical", true)]);
    poll(20, || {
        let states = alert_states(addr)?;
        let warnings_active = states
            .iter()
            .filter(|(sev, state, by)| sev == "warning" && state == "active" && *by == 0)
            .count();
        let criticals = states.iter().filter(|(sev, ..)| sev == "critical").count();
        if warnings_active == 2 && criticals == 0 {
            Ok(())
        } else {
            Err(format!("{states:?}"))
        }
    })
    .expect("the warning active again once the critical is resolved");
}

// ---- The dashboard ----

/// Every query of the dashboard's panels (rows hold none of their own when expanded).
fn dashboard_queries() -> Vec<(String, String)> {
    let path = repo().join("deploy/grafana/guarded-map.json");
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("the dashboard")).unwrap();
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or("").to_owned();
            let expr = target["expr"].as_str().expect("a PromQL expr").to_owned();
            queries.push((title, expr));
        }
    }
    assert!(queries.len() >= 10, "{queries:?}");
    queries
}

/// The `guarded_map_*` metric names in a query, histogram suffixes removed.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("guarded_map_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        names.push(base.to_owned());
        rest = &tail[end..];
    }
    names
}

#[test]
fn every_metric_the_dashboard_names_is_published() {
    let published: Vec<&str> = guarded_map::report::METRICS
        .iter()
        .map(|m| m.name)
        .collect();
    let mut named = 0;
    for (title, expr) in dashboard_queries() {
        for name in metric_names(&expr) {
            assert!(
                published.contains(&name.as_str()),
                "panel {title:?} names {name}, which guarded-map does not publish"
            );
            named += 1;
        }
    }
    assert!(named >= 10);
    // Each panel's metric covers a part of the table: every published metric has a panel.
    let all: Vec<String> = dashboard_queries()
        .iter()
        .flat_map(|(_, e)| metric_names(e))
        .collect();
    for metric in published {
        assert!(
            all.iter().any(|n| n == metric),
            "{metric} has no panel on the dashboard"
        );
    }
}

/// The demo, serving `/metrics` on a free loopback port; returns it and its address.
fn start_demo() -> (Running, SocketAddr) {
    let demo = guarded_map_tests::target_dir().join("examples/demo");
    assert!(
        demo.exists(),
        "{} is missing: build it first (cargo build --examples)",
        demo.display()
    );
    let mut child = Command::new(&demo)
        .args([
            "--duration",
            "0",
            "--threads",
            "2",
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the demo");
    let stdout = child.stdout.take().expect("the demo's stdout");
    let running = Running(child);
    let mut lines = BufReader::new(stdout);
    let mut first = String::new();
    lines.read_line(&mut first).expect("the demo's first line");
    // It prints a table every second: keep reading, or its prints would fail once the pipe
    // closes (and stop it).
    thread::spawn(move || std::io::copy(&mut lines, &mut std::io::sink()));
    let addr = first
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http://"))
        .and_then(|w| w.strip_suffix("/metrics;").or(w.strip_suffix("/metrics")))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {first:?}"));
    (running, addr)
}

#[test]
fn prometheus_answers_every_dashboard_query_from_the_demo() {
    if !have("prometheus") {
        return;
    }
    let (_demo, demo_addr) = start_demo();
    let dir = TempDir::new("prometheus");
    let config = dir.0.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files: ['{}']\n\
             scrape_configs:\n  - job_name: demo\n    static_configs:\n      - targets: ['{demo_addr}']\n",
            repo().join("deploy/prometheus/guarded-map.rules.yml").display()
        ),
    )
    .unwrap();
    let addr = free_addr();
    let _prometheus = start_server(
        "prometheus",
        &[
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", dir.0.join("data").display()),
            format!("--web.listen-address={addr}"),
        ],
        addr,
    );
    let query = |expr: &str| -> Result<usize, String> {
        // Grafana's variables: every map, and a rate window that spans several 1 s scrapes.
        let expr = expr
            .replace("$map", ".+")
            .replace("$__rate_interval", "15s");
        let path = format!("/api/v1/query?query={}", encode(&expr));
        let (status, body) = scrape::get(addr, &path).map_err(|e| e.to_string())?;
        let reply: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        if status != 200 || reply["status"] != "success" {
            return Err(format!("{status}: {body}"));
        }
        Ok(reply["data"]["result"].as_array().map_or(0, Vec::len))
    };
    let queries = dashboard_queries();
    let outcome = poll(60, || {
        let empty: Vec<String> = queries
            .iter()
            .filter(|(_, expr)| query(expr).map_or(true, |n| n == 0))
            .map(|(title, expr)| format!("{title}: {expr} -> {:?}", query(expr)))
            .collect();
        if empty.is_empty() {
            Ok(())
        } else {
            Err(empty.join("\n"))
        }
    });
    if let Err(empty) = outcome {
        panic!("dashboard queries that fail or return nothing after 60 s:\n{empty}");
    }
    // The rules loaded into a real Prometheus, healthy.
    let (_, rules) = scrape::get(addr, "/api/v1/rules").expect("rules");
    let rules: Value = serde_json::from_str(&rules).unwrap();
    let loaded: Vec<&Value> = rules["data"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .collect();
    assert_eq!(loaded.len(), 10, "{rules}");
    assert!(loaded.iter().all(|r| r["health"] != "err"), "{rules}");
}

/// Percent-encodes a query string value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
