//! An eBPF agent's shape, for `guarded-map-probe` to watch: a kernel BPF hash map `flows` (packets
//! per flow) written through `bpf()`, mirrored every 100 ms by batch lookups into a guarded map that
//! names it (`#[guarded(rcu, bpf_map = "flows")]`), which query threads read. `guarded-map-probe top`
//! then shows the guarded map beside the kernel map it mirrors.
//!
//! The kernel map is created and written from user space, as an agent's control plane does; a
//! kernel program filling it would change nothing the probe shows. Needs `CAP_BPF` (root).
//!
//! ```text
//! cargo run --release --example flows -- --duration 30 &
//! sudo target/debug/guarded-map-probe top --pid $!
//! ```
//!
//! With `--script` it instead reads commands from stdin (used by the probe's tests): `maps N`
//! (N inserts, N reads and N upserts, answers `ok`), `bpf N` (N updates, N lookups, one batch read,
//! one delete, answers `ok CALLS` with the number of `bpf()` calls it made), `quit`.

use std::collections::HashMap;
use std::io::{self, BufRead, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use guarded_map::bpf::{self, BpfHashMap};
use guarded_map::guarded_map;

#[guarded_map]
#[derive(Default)]
struct Agent {
    /// Packets per flow, mirrored from the kernel map `flows`.
    #[guarded(rcu, bpf_map = "flows")]
    flows: HashMap<u32, u64>,
    /// Queries answered per flow.
    #[guarded(sharded(shards = 16))]
    queries: HashMap<u32, u64>,
}

/// Flows the simulated traffic spreads over.
const FLOWS: u32 = 256;

/// An eBPF agent's shape for `guarded-map-probe` to watch: a kernel BPF map mirrored into a guarded
/// map, which query threads read (needs CAP_BPF or root).
#[derive(Parser, Debug)]
#[command(name = "flows")]
struct Args {
    /// Seconds to run.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = positive_seconds)]
    duration: f64,
    /// Read commands from standard input instead of running the traffic (the probe's tests).
    #[arg(long)]
    script: bool,
}

fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs.is_finite() => Ok(secs),
        _ => Err("needs a positive number of seconds".into()),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let (script, duration) = (args.script, Duration::from_secs_f64(args.duration));
    let kernel = match BpfHashMap::create("flows", FLOWS * 4) {
        Ok(map) => map,
        Err(err) => {
            eprintln!("flows: cannot create the kernel BPF map (needs CAP_BPF or root): {err}");
            return ExitCode::FAILURE;
        }
    };
    let agent = Agent::default();
    let result = if script {
        run_script(&agent, &kernel)
    } else {
        run(&agent, &kernel, duration)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("flows: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Traffic into the kernel map, the mirror, and queries, for `duration`.
fn run(agent: &Agent, kernel: &BpfHashMap<u32, u64>, duration: Duration) -> io::Result<()> {
    let stop = AtomicBool::new(false);
    let deadline = Instant::now() + duration;
    thread::scope(|s| {
        // The "kernel side": packets counted per flow, in bursts.
        s.spawn(|| -> io::Result<()> {
            let mut x = 0x2545_f491u32;
            while !stop.load(Relaxed) {
                for _ in 0..16 {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    let flow = x % FLOWS;
                    let packets = kernel.lookup(flow)?.unwrap_or(0);
                    kernel.update(flow, packets + 1)?;
                }
                thread::sleep(Duration::from_millis(1));
            }
            Ok(())
        });
        for t in 0..2u32 {
            let stop = &stop;
            s.spawn(move || {
                let mut n = t;
                while !stop.load(Relaxed) {
                    n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    let flow = (n >> 8) % FLOWS;
                    if agent.flows.with(&flow, |p| *p).is_some() {
                        agent.queries.upsert(flow, || 0, |q| *q += 1);
                    }
                }
            });
        }
        let mut mirrored = 0u64;
        while Instant::now() < deadline {
            mirror(agent, kernel)?;
            mirrored += 1;
            thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Relaxed);
        println!(
            "mirrored {mirrored} times; {} flows, {} bpf() calls",
            agent.flows.len(),
            bpf::calls()
        );
        Ok(())
    })
}

/// Copies the kernel map into the guarded map (changed entries only, so the `Rcu` map publishes
/// little).
fn mirror(agent: &Agent, kernel: &BpfHashMap<u32, u64>) -> io::Result<()> {
    for (flow, packets) in kernel.entries(64)? {
        if agent.flows.with(&flow, |p| *p) != Some(packets) {
            agent.flows.insert(flow, packets);
        }
    }
    Ok(())
}

fn run_script(agent: &Agent, kernel: &BpfHashMap<u32, u64>) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    for line in io::stdin().lock().lines() {
        let line = line?;
        let mut words = line.split_whitespace();
        let (command, n) = (
            words.next(),
            words.next().and_then(|n| n.parse::<u32>().ok()),
        );
        match (command, n) {
            (Some("maps"), Some(n)) => {
                for i in 0..n {
                    agent.flows.insert(i % FLOWS, u64::from(i));
                    agent.flows.with(&(i % FLOWS), |p| *p);
                    agent.queries.upsert(i % 7, || 0, |q| *q += 1);
                }
                writeln!(out, "ok")?;
            }
            (Some("bpf"), Some(n)) => {
                let before = bpf::calls();
                for i in 0..n {
                    kernel.update(i % FLOWS, u64::from(i))?;
                }
                for i in 0..n {
                    kernel.lookup(i % FLOWS)?;
                }
                kernel.entries(16)?;
                kernel.delete(0)?;
                writeln!(out, "ok {}", bpf::calls() - before)?;
            }
            (Some("quit"), _) => return Ok(()),
            _ => writeln!(out, "error: unknown command `{line}`")?,
        }
        out.flush()?;
    }
    Ok(())
}
