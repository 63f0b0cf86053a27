//! The project's main job, in its first form: a small service state with a read-mostly routing table
//! (`Rcu`) and a write-heavy session map (`Sharded`), declared with `#[guarded_map]`, driven by a few
//! threads, printing what each map did every second. (The full demo, with a Prometheus endpoint,
//! comes with the metrics pipeline.)
//!
//! `cargo run --release --example demo -- --duration 3 --threads 2`

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use guarded_map::{GuardedMap, Stats, guarded_map, registry};

#[guarded_map]
struct State {
    /// Upstream port by path prefix: read on every request, changed by deploys.
    #[guarded(rcu, name = "demo.routes")]
    routes: HashMap<String, u16>,
    /// Live sessions by id: created, touched and expired all the time.
    #[guarded(sharded(shards = 16), name = "demo.sessions", max_len = 50_000)]
    sessions: HashMap<u64, u32>,
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        None => default,
        Some(i) => match args.get(i + 1).map(|v| v.parse()) {
            Some(Ok(v)) => v,
            _ => {
                eprintln!("demo: {name} needs a whole number");
                std::process::exit(2);
            }
        },
    }
}

fn main() {
    let duration = arg("--duration", 3);
    let threads = arg("--threads", 2).max(1);
    let state = State {
        routes: (0..200)
            .map(|i| (format!("/svc/{i}"), 8000 + i as u16))
            .collect(),
        sessions: GuardedMap::new(),
    };
    let stop = AtomicBool::new(false);
    println!(
        "{:<14} {:>10} {:>10} {:>8} {:>9} {:>11}",
        "map", "reads/s", "writes/s", "entries", "contended", "rcu copies"
    );
    thread::scope(|s| {
        for t in 0..threads {
            let (state, stop) = (&state, &stop);
            s.spawn(move || {
                let mut x = 0x2545_F491_4F6C_DD1Du64 ^ t;
                while !stop.load(Ordering::Relaxed) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let route = format!("/svc/{}", x % 200);
                    let port = state.routes.get_cloned(route.as_str()).unwrap_or(0);
                    let session = x % 60_000;
                    if state
                        .sessions
                        .try_upsert(session, || u32::from(port), |hits| *hits += 1)
                        .is_err()
                    {
                        state.sessions.retain(|id, _| id.is_multiple_of(2)); // expire half when full
                    }
                    if x.is_multiple_of(1_000) {
                        state.routes.insert(route, 9000); // a deploy
                    }
                }
            });
        }
        let start = Instant::now();
        let mut last = [Stats::default(); 2];
        while start.elapsed() < Duration::from_secs(duration) {
            thread::sleep(Duration::from_secs(1));
            for (i, (label, now)) in [
                ("routes", state.routes.stats()),
                ("sessions", state.sessions.stats()),
            ]
            .into_iter()
            .enumerate()
            {
                let before = last[i];
                println!(
                    "{:<14} {:>10} {:>10} {:>8} {:>9} {:>11}",
                    label,
                    now.gets - before.gets,
                    now.writes() - before.writes(),
                    now.len,
                    now.lock_contended - before.lock_contended,
                    now.rcu_copied_entries - before.rcu_copied_entries,
                );
                last[i] = now;
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    println!("\nregistered maps:");
    for report in registry::reports()
        .iter()
        .filter(|r| r.descriptor.label().starts_with("demo."))
    {
        let d = report.descriptor;
        println!(
            "  {} ({}, {}:{}): {} writes, {} entries",
            d.label(),
            d.backend(),
            d.file(),
            d.line(),
            report.stats.writes(),
            report.stats.len
        );
    }
}
