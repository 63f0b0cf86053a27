//! An eBPF agent's shape: a kernel program counts every process's system calls into the BPF map
//! `SYSCALLS` and writes a change record per count; a [`Mirror`] keeps an ordered guarded map equal
//! to it (list, then watch the records, reconciling every few seconds); query threads answer top-N
//! and range queries from the guarded map without a single `bpf()` call.
//!
//! Needs the eBPF programs (the feature `guarded-map-probe/programs`: nightly with `rust-src` and
//! `bpf-linker`, which `./scripts/test` installs) and root:
//!
//! ```text
//! cargo build --release --example flows --features guarded-map-probe/programs
//! sudo target/release/examples/flows --duration 30 &
//! sudo target/release/guarded-map-probe top --pid $!
//! ```
//!
//! `guarded-map-probe top` then shows `Agent.syscalls` beside the kernel map `SYSCALLS` it mirrors
//! (the mirror's listings and counter reads are its `bpf()` commands).

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use guarded_map::bpf::{Mirror, MirrorOptions};
use guarded_map::guarded_map;
use guarded_map_probe::ProbeError;
use guarded_map_probe::mirror_programs::MirrorPrograms;

#[guarded_map]
#[derive(Default)]
struct Agent {
    /// System calls per process id, mirrored from the kernel map `SYSCALLS`.
    #[guarded(ordered, bpf_map = "SYSCALLS")]
    syscalls: BTreeMap<u32, u64>,
    /// Queries answered per kind.
    #[guarded(sharded(shards = 4))]
    queries: HashMap<&'static str, u64>,
}

/// An eBPF agent: system calls per process counted in the kernel, mirrored into an ordered
/// guarded map, queried from user space (needs root and the eBPF programs).
#[derive(Parser, Debug)]
#[command(name = "flows")]
struct Args {
    /// Seconds to run.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = positive_seconds)]
    duration: f64,
    /// Processes in the top list.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Seconds between reports.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0, value_parser = positive_seconds)]
    every: f64,
}

fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs.is_finite() => Ok(secs),
        _ => Err("needs a positive number of seconds".into()),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("flows: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut programs = MirrorPrograms::load().map_err(|err| match err {
        ProbeError::NoPrograms => "built without the eBPF programs: build with \
             `--features guarded-map-probe/programs` (nightly with rust-src, and bpf-linker)"
            .to_string(),
        other => other.to_string(),
    })?;
    programs.attach_count_syscalls()?;
    let kernel = programs.syscalls()?;
    let agent = Agent::default();
    let options = MirrorOptions::default().reconcile_every(Duration::from_secs(5));
    let mut mirror = Mirror::incremental_with(
        kernel.map,
        kernel.changes,
        kernel.counters,
        &agent.syscalls,
        options,
    )?;
    println!(
        "mirroring SYSCALLS: {} processes listed",
        agent.syscalls.len()
    );

    let stop = AtomicBool::new(false);
    let deadline = Instant::now() + Duration::from_secs_f64(args.duration);
    let every = Duration::from_secs_f64(args.every);
    thread::scope(
        |s| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            // Queries: range scans of the ordered map, as a service answering them would run.
            for _ in 0..2 {
                s.spawn(|| {
                    while !stop.load(Relaxed) {
                        let mut below_1000 = 0u64;
                        agent.syscalls.range(..1000, |_, calls| below_1000 += calls);
                        agent.queries.upsert("range", || 0, |n| *n += 1);
                        std::hint::black_box(below_1000);
                        thread::sleep(Duration::from_millis(1));
                    }
                });
            }
            let mut next_report = Instant::now() + every;
            while Instant::now() < deadline {
                mirror.poll(Duration::from_millis(10))?;
                if Instant::now() >= next_report {
                    report(&agent, &mirror.stats(), args.top);
                    next_report += every;
                }
            }
            stop.store(true, Relaxed);
            Ok(())
        },
    )
    .map_err(|err| err.to_string())?;
    let stats = mirror.stats();
    println!(
        "done: {} changes applied, lag p99 {:?}, {} reconciliations, drift {} (evictions and races \
         the records did not carry), {} records lost",
        stats.changes, stats.lag.p99, stats.reconciliations, stats.drift, stats.lost
    );
    Ok(())
}

/// Prints the top processes by system calls and a range query, from the guarded map alone.
fn report(agent: &Agent, stats: &guarded_map::bpf::MirrorStats, top: usize) {
    let mut all: Vec<(u32, u64)> = Vec::with_capacity(agent.syscalls.len());
    agent
        .syscalls
        .range(.., |pid: &u32, calls| all.push((*pid, *calls)));
    all.sort_unstable_by_key(|&(_, calls)| std::cmp::Reverse(calls));
    agent.queries.upsert("top", || 0, |n| *n += 1);
    let (mut low, mut low_calls) = (0usize, 0u64);
    agent.syscalls.range(..1000, |_, calls| {
        low += 1;
        low_calls += calls;
    });
    println!(
        "{} processes; pids below 1000: {low} with {low_calls} calls; mirror: {} changes, lag p50 \
         {:?} p99 {:?}, drift {}",
        all.len(),
        stats.changes,
        stats.lag.p50,
        stats.lag.p99,
        stats.drift
    );
    for (pid, calls) in all.iter().take(top) {
        let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        println!("  {pid:>8} {calls:>12}  {}", name.trim());
    }
}
