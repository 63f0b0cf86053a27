//! The project's main job: a small gateway's state (a routing table on `rcu`, sessions and
//! response counters on `sharded`) declared with `#[guarded_map]`, driven by a built-in load
//! generator whose read/write mix changes every two seconds, serving Prometheus metrics on
//! `/metrics`, and printing one line per map every second.
//!
//! `cargo run --release --example demo -- --duration 3 --threads 2`
//! (`--duration 0` runs until Ctrl-C; `--listen IP:PORT` moves the endpoint, default
//! `127.0.0.1:9898`.)

mod args;
mod load;
mod state;
mod table;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use args::Args;
use clap::Parser;
use load::{Load, phase_at};
use state::State;
use table::Table;

fn main() -> ExitCode {
    let args = Args::parse();
    let exporter = match guarded_map::prometheus::install(&args.listen) {
        Ok(exporter) => exporter,
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::from(2);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    if let Err(e) = ctrlc::set_handler({
        let stop = Arc::clone(&stop);
        move || stop.store(true, Ordering::Relaxed)
    }) {
        eprintln!("demo: cannot handle Ctrl-C: {e}");
        return ExitCode::from(2);
    }
    println!(
        "serving http://{}/metrics; {} load threads, {}",
        exporter.local_addr(),
        args.threads(),
        match args.duration() {
            Some(d) => format!("for {} s", d.as_secs()),
            None => "until Ctrl-C".into(),
        }
    );
    let state = State::new();
    let start = Instant::now();
    thread::scope(|s| {
        for t in 0..args.threads() {
            let (state, stop) = (&state, &stop);
            s.spawn(move || {
                let mut load = Load::new(t as u64);
                while !stop.load(Ordering::Relaxed) {
                    let phase = phase_at(start.elapsed().as_secs());
                    // Draw a batch per clock read: the clock costs more than a request.
                    for _ in 0..256 {
                        state.handle(&load.request(phase));
                    }
                }
            });
        }
        let mut table = Table::new();
        let mut last = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            sleep_until(last + Duration::from_secs(1), &stop);
            let now = Instant::now();
            let elapsed = now - start;
            println!(
                "\n[{:>4.1} s] phase: {}",
                elapsed.as_secs_f64(),
                phase_at(elapsed.as_secs().saturating_sub(1)).name
            );
            println!("{}", Table::header());
            for line in table.lines(now - last) {
                println!("{line}");
            }
            last = now;
            if args.duration().is_some_and(|d| elapsed >= d) {
                stop.store(true, Ordering::Relaxed);
            }
        }
    });
    let served: u64 = state.statuses.snapshot().iter().map(|(_, n)| n).sum();
    println!("\nserved {served} requests");
    for (label, last) in [
        ("demo.sessions", state.sessions.last_switch()),
        ("demo.status_counts", state.statuses.last_switch()),
    ] {
        match last {
            Some(s) => println!(
                "{label}: last switch {} -> {} at {:.1} s ({}, took {:?}){}",
                s.from.as_str(),
                s.to.as_str(),
                s.at.saturating_duration_since(start).as_secs_f64(),
                s.reason.as_str(),
                s.took,
                s.estimate.map_or_else(String::new, |e| format!(
                    "; estimated {:.0} ns per operation as rcu, {:.0} as sharded",
                    e.rcu_nanos, e.sharded_nanos
                )),
            ),
            None => println!("{label}: no switch"),
        }
    }
    println!("from a scrape of /metrics now:");
    let shown = [
        "guarded_map_operations_total{map=\"demo.routes\",op=\"get\"}",
        "guarded_map_operations_total{map=\"demo.routes\",op=\"insert\"}",
        "guarded_map_rcu_copied_entries_total{map=\"demo.routes\"}",
        "guarded_map_entries{map=\"demo.sessions\"}",
        "guarded_map_rejected_total{map=\"demo.sessions\"}",
        "guarded_map_lock_contended_total{map=\"demo.status_counts\"}",
        "guarded_map_backend{map=\"demo.sessions\"",
        "guarded_map_backend{map=\"demo.status_counts\"",
    ];
    for line in exporter
        .render()
        .lines()
        .filter(|l| shown.iter().any(|s| l.starts_with(s)))
    {
        println!("  {line}");
    }
    exporter.shutdown();
    ExitCode::SUCCESS
}

/// Sleeps until `deadline`, waking early when `stop` is raised (Ctrl-C).
fn sleep_until(deadline: Instant, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        thread::sleep(left.min(Duration::from_millis(50)));
    }
}
