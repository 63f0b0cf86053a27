//! The benchmark commands of this crate run to the end on a small input and write what they say
//! (smoke tests: the figures themselves are not checked, they are measurements).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("guarded-map-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Runs `exe` with `args`, then `--out` and `out`.
fn run(exe: &str, args: &[&str], out: &Path) -> Output {
    Command::new(exe)
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

fn assert_succeeded(run: &Output) {
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn ordered_runs_and_writes_its_results() {
    let out = scratch("ordered.json");
    let args = ["--entries", "2000", "--seconds", "0.02", "--rounds", "1"];
    assert_succeeded(&run(env!("CARGO_BIN_EXE_ordered"), &args, &out));
    let results = json(&out);
    // Four maps, two workloads, two thread counts.
    assert_eq!(results["cells"].as_array().unwrap().len(), 16);
}

#[test]
fn phases_runs_and_writes_its_results() {
    let out = scratch("phases.json");
    let args = [
        "--entries",
        "2000",
        "--phases",
        "2",
        "--phase-seconds",
        "0.05",
    ];
    assert_succeeded(&run(env!("CARGO_BIN_EXE_phases"), &args, &out));
    let results = json(&out);
    let runs = results["runs"].as_array().unwrap();
    // Rcu, Sharded, Adaptive and dashmap, each with a figure per phase.
    assert_eq!(runs.len(), 4);
    assert!(
        runs.iter()
            .all(|r| r["phase_mops"].as_array().unwrap().len() == 2)
    );
    assert!(results["adaptive_over_best_static"].as_f64().unwrap() > 0.0);
}

#[test]
fn capacity_runs_and_writes_history_report_and_picture() {
    let (history, out, svg) = (scratch("c.jsonl"), scratch("c.json"), scratch("c.svg"));
    let (history_arg, svg_arg) = (history.to_str().unwrap(), svg.to_str().unwrap());
    let args = [
        "--entries",
        "20000",
        "--step-ms",
        "2",
        "--history",
        history_arg,
        "--svg",
        svg_arg,
    ];
    assert_succeeded(&run(env!("CARGO_BIN_EXE_capacity"), &args, &out));
    let report = json(&out);
    for map in report["maps"].as_array().unwrap() {
        assert_eq!(map["peak_entries"], 20000);
        assert!(map["shrinks"].as_u64().unwrap() >= 1, "{map}");
    }
    assert!(std::fs::read_to_string(&history).unwrap().lines().count() > 1);
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
}

#[test]
fn mirror_runs_and_writes_its_results() {
    let out = scratch("mirror.json");
    let args = ["--entries", "1000", "--seconds", "0.2", "--rate", "20000"];
    let run = run(env!("CARGO_BIN_EXE_mirror"), &args, &out);
    let stderr = String::from_utf8_lossy(&run.stderr);
    // It needs root and the eBPF programs, which the README's test command provides (and CI must).
    if !run.status.success() && std::env::var_os("CI").is_none() {
        // SAFETY: `geteuid` has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        if !root || stderr.contains("without its eBPF programs") {
            eprintln!("skipped: the mirror benchmark needs root and the eBPF programs ({stderr})");
            return;
        }
    }
    assert_succeeded(&run);
    let results = json(&out);
    // Three phases for the one size.
    let phases = results["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 3);
    assert!(phases.iter().all(|p| p["entries"] == 1000), "{results}");
}
