//! A process for the probe's tests to watch (`guarded-map-probe/tests/probe.rs`): two guarded maps,
//! one of which names the kernel BPF map `flows` that this process creates and writes through
//! `bpf()`. It reads commands from stdin and answers on stdout:
//!
//! - `maps N`: N inserts and N reads of `flows`, N upserts of `queries`; answers `ok`;
//! - `bpf N`: N updates and N lookups of the kernel map, one batch read, one delete; answers
//!   `ok CALLS` with the number of `bpf()` calls made;
//! - `switch`: switches the adaptive map `sessions` to its other form; answers `ok FORM`;
//! - `form N`: N reads of `sessions` (so that its sample points come), then answers `ok FORM
//!   PINNED` with its form and the form it is pinned to (`-` if none);
//! - `quit`.
//!
//! Needs `CAP_BPF` (root). Prints `ready` once the kernel map exists.

use std::collections::HashMap;
use std::io::{self, BufRead, Write};
use std::process::ExitCode;

use guarded_map::bpf::{self, BpfMap};
use guarded_map::guarded_map;

#[guarded_map]
#[derive(Default)]
struct Agent {
    /// Packets per flow, named after the kernel map `flows`.
    #[guarded(rcu, bpf_map = "flows")]
    flows: HashMap<u32, u64>,
    /// Queries answered per flow.
    #[guarded(sharded(shards = 16))]
    queries: HashMap<u32, u64>,
    /// An adaptive map, switched on command (it starts `Rcu`, as the probe's tests expect).
    #[guarded(adaptive(start = rcu))]
    sessions: HashMap<u32, u64>,
}

/// Flows the commands spread over.
const FLOWS: u32 = 256;

fn main() -> ExitCode {
    let kernel = match BpfMap::create("flows", FLOWS * 4) {
        Ok(map) => map,
        Err(err) => {
            eprintln!(
                "probe-target: cannot create the kernel BPF map (needs CAP_BPF or root): {err}"
            );
            return ExitCode::FAILURE;
        }
    };
    match run(&Agent::default(), &kernel) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("probe-target: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(agent: &Agent, kernel: &BpfMap<u32, u64>) -> io::Result<()> {
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
            (Some("switch"), _) => {
                agent.sessions.insert(1, 1);
                let to = agent.sessions.active_backend().other();
                agent
                    .sessions
                    .switch_backend(to)
                    .map_err(io::Error::other)?;
                writeln!(out, "ok {}", to.as_str())?;
            }
            (Some("form"), Some(n)) => {
                for i in 0..n {
                    agent.sessions.get_cloned(&(i % 7));
                }
                let pinned = agent.sessions.pinned_backend();
                writeln!(
                    out,
                    "ok {} {}",
                    agent.sessions.active_backend().as_str(),
                    pinned.map_or("-", |p| p.as_str())
                )?;
            }
            (Some("quit"), _) => return Ok(()),
            _ => writeln!(out, "error: unknown command `{line}`")?,
        }
        out.flush()?;
    }
    Ok(())
}
