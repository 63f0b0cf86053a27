//! A workload whose mix changes: pure-read phases and write-heavy phases in turn, for guarded-map's
//! `Rcu`, `Sharded` and `Adaptive` maps and dashmap (foldhash for all, statistics on). Every
//! contender runs the same phases on a fresh map of `--entries` u64 -> u64 entries, built by
//! `collect`; worker threads draw keys uniformly. Reported: each phase's and the whole run's
//! millions of operations per second, `Adaptive` against the better static backend over the whole
//! run, and, for `Adaptive`, the time from each phase change to its switch (the driver looks at
//! its form every millisecond). Prints a table and writes a JSON results file; asserts nothing.
//!
//! `cargo run --release -p guarded-map-bench --bin phases` (six phases of ten seconds: about four
//! minutes for the four contenders)

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use guarded_map::{ActiveBackend, GuardedMap, SpecFor, map_spec};
use serde::Serialize;

type Fast = foldhash::fast::RandomState;

map_spec!(RcuSpec: HashMap<u64, u64>, rcu, name = "bench.phases.rcu");
map_spec!(ShardedSpec: HashMap<u64, u64>, sharded, name = "bench.phases.sharded");
map_spec!(AdaptiveSpec: HashMap<u64, u64>, adaptive, name = "bench.phases.adaptive");

/// A workload of alternating phases.
#[derive(Parser, Debug)]
#[command(name = "phases")]
struct Args {
    /// Entries in the map (keys 0 to entries - 1, all present).
    #[arg(long, default_value_t = 100_000)]
    entries: u64,
    /// Phases, starting with a pure-read one.
    #[arg(long, default_value_t = 6)]
    phases: usize,
    /// Seconds per phase.
    #[arg(long, default_value_t = 10.0)]
    phase_seconds: f64,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Percent of writes (in-place increments) in a write-heavy phase; the rest are reads.
    #[arg(long, default_value_t = 50)]
    write_percent: u64,
    /// Results file.
    #[arg(long, default_value = "target/bench/phases.json")]
    out: PathBuf,
}

/// The mix of one phase.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
enum Mix {
    PureRead,
    WriteHeavy,
}

impl Mix {
    fn of(phase: usize) -> Mix {
        if phase.is_multiple_of(2) {
            Mix::PureRead
        } else {
            Mix::WriteHeavy
        }
    }
}

/// What the workload asks of a map.
trait Contender: Sync {
    fn get(&self, key: u64) -> Option<u64>;
    fn increment(&self, key: u64);
    /// The adaptive map's form now; `None` for the others.
    fn form(&self) -> Option<ActiveBackend> {
        None
    }
}

impl<S: SpecFor<u64, u64>> Contender for GuardedMap<u64, u64, S, Fast>
where
    Self: Sync,
{
    fn get(&self, key: u64) -> Option<u64> {
        self.get_cloned(&key)
    }
    fn increment(&self, key: u64) {
        self.update(&key, |v| *v += 1);
    }
}

struct Adaptive(GuardedMap<u64, u64, AdaptiveSpec, Fast>);

impl Contender for Adaptive {
    fn get(&self, key: u64) -> Option<u64> {
        self.0.get_cloned(&key)
    }
    fn increment(&self, key: u64) {
        self.0.update(&key, |v| *v += 1);
    }
    fn form(&self) -> Option<ActiveBackend> {
        Some(self.0.active_backend())
    }
}

impl Contender for dashmap::DashMap<u64, u64, Fast> {
    fn get(&self, key: u64) -> Option<u64> {
        dashmap::DashMap::get(self, &key).map(|v| *v)
    }
    fn increment(&self, key: u64) {
        if let Some(mut v) = self.get_mut(&key) {
            *v += 1;
        }
    }
}

#[derive(Serialize)]
struct Switch {
    phase: usize,
    to: &'static str,
    /// Milliseconds from the phase's start.
    after_ms: f64,
}

#[derive(Serialize)]
struct Run {
    contender: &'static str,
    /// Millions of operations per second in each phase.
    phase_mops: Vec<f64>,
    /// Over the whole run.
    mops: f64,
    switches: Vec<Switch>,
}

/// Runs every phase on `map`; returns the operations of each phase and, for an adaptive map, its
/// switches.
fn run(args: &Args, name: &'static str, map: &dyn Contender) -> Run {
    let phase = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let counts: Vec<AtomicU64> = (0..args.phases).map(|_| AtomicU64::new(0)).collect();
    let phase_time = Duration::from_secs_f64(args.phase_seconds);
    let mut switches = Vec::new();
    thread::scope(|s| {
        for t in 0..args.threads {
            let (phase, done, counts) = (&phase, &done, &counts);
            s.spawn(move || {
                let mut x = 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(t as u64 + 1);
                while !done.load(Ordering::Relaxed) {
                    let p = phase.load(Ordering::Relaxed);
                    let mix = Mix::of(p);
                    // A batch between looks at the phase: the count is per phase.
                    for _ in 0..256 {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let key = x % args.entries;
                        if mix == Mix::WriteHeavy && (x >> 40) % 100 < args.write_percent {
                            map.increment(key);
                        } else {
                            std::hint::black_box(map.get(key));
                        }
                    }
                    counts[p].fetch_add(256, Ordering::Relaxed);
                }
            });
        }
        let start = Instant::now();
        let mut form = map.form();
        for p in 0..args.phases {
            phase.store(p, Ordering::Relaxed);
            let phase_start = Instant::now();
            let end = start + phase_time * (p as u32 + 1);
            while Instant::now() < end {
                thread::sleep(Duration::from_millis(1));
                let now = map.form();
                if now != form {
                    switches.push(Switch {
                        phase: p,
                        to: now.map_or("-", ActiveBackend::as_str),
                        after_ms: phase_start.elapsed().as_secs_f64() * 1e3,
                    });
                    form = now;
                }
            }
        }
        done.store(true, Ordering::Relaxed);
    });
    let phase_mops: Vec<f64> = counts
        .iter()
        .map(|c| c.load(Ordering::Relaxed) as f64 / args.phase_seconds / 1e6)
        .collect();
    let mops = phase_mops.iter().sum::<f64>() / args.phases as f64;
    Run {
        contender: name,
        phase_mops,
        mops,
        switches,
    }
}

/// Times `n` switches back and forth of an adaptive map of `entries` entries, with no other
/// thread: µs per switch (the copy, then emptying the old form).
fn switch_cost(entries: u64, n: usize) -> Vec<f64> {
    let map: GuardedMap<u64, u64, AdaptiveSpec, Fast> = (0..entries).map(|k| (k, k)).collect();
    map.pin_backend(ActiveBackend::Rcu)
        .expect("not inside an operation");
    (0..n)
        .map(|_| {
            let start = Instant::now();
            map.switch_backend(map.active_backend().other())
                .expect("not inside an operation");
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect()
}

fn main() {
    let args = Args::parse();
    let entries = || (0..args.entries).map(|k| (k, k));
    let switches = switch_cost(args.entries, 10);
    let mut runs = Vec::new();
    {
        let map: GuardedMap<u64, u64, RcuSpec, Fast> = entries().collect();
        runs.push(run(&args, "guarded-map Rcu", &map));
    }
    {
        let map: GuardedMap<u64, u64, ShardedSpec, Fast> = entries().collect();
        runs.push(run(&args, "guarded-map Sharded", &map));
    }
    {
        let map = Adaptive(entries().collect());
        runs.push(run(&args, "guarded-map Adaptive", &map));
    }
    {
        let map: dashmap::DashMap<u64, u64, Fast> =
            dashmap::DashMap::with_capacity_and_hasher(args.entries as usize, Fast::default());
        for (k, v) in entries() {
            map.insert(k, v);
        }
        runs.push(run(&args, "dashmap", &map));
    }

    println!(
        "{} phases of {} s (pure read, then {} % writes, in turn), {} entries, {} threads; Mops/s",
        args.phases, args.phase_seconds, args.write_percent, args.entries, args.threads
    );
    print!("{:<22}", "contender");
    for p in 0..args.phases {
        print!(
            " {:>9}",
            format!("{:?}", Mix::of(p)).replace("WriteHeavy", "Writes")
        );
    }
    println!(" {:>9}", "whole run");
    for run in &runs {
        print!("{:<22}", run.contender);
        for m in &run.phase_mops {
            print!(" {m:>9.2}");
        }
        println!(" {:>9.2}", run.mops);
    }
    let best_static = runs
        .iter()
        .filter(|r| r.contender.ends_with("Rcu") || r.contender.ends_with("Sharded"))
        .map(|r| r.mops)
        .fold(0.0, f64::max);
    let adaptive = runs
        .iter()
        .find(|r| r.contender.ends_with("Adaptive"))
        .expect("the adaptive run");
    println!(
        "Adaptive / the better static backend over the whole run: {:.2}x (goal: >= 1.2x)",
        adaptive.mops / best_static.max(f64::MIN_POSITIVE)
    );
    let (to_sharded, to_rcu): (Vec<f64>, Vec<f64>) = (
        switches.iter().step_by(2).copied().collect(),
        switches.iter().skip(1).step_by(2).copied().collect(),
    );
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let per_100k = |us: f64| us * 100_000.0 / args.entries as f64;
    println!(
        "A switch of {} entries, alone (median of 5): rcu -> sharded {:.0} us ({:.0} us per 100 000 \
         entries), sharded -> rcu {:.0} us ({:.0} us per 100 000)",
        args.entries,
        median(&to_sharded),
        per_100k(median(&to_sharded)),
        median(&to_rcu),
        per_100k(median(&to_rcu)),
    );
    for s in &adaptive.switches {
        println!(
            "  phase {} ({:?}): switched to {} {:.0} ms after the phase began",
            s.phase,
            Mix::of(s.phase),
            s.to,
            s.after_ms
        );
    }
    let json = serde_json::json!({
        "bench": "phases",
        "entries": args.entries,
        "phases": args.phases,
        "phase_seconds": args.phase_seconds,
        "threads": args.threads,
        "write_percent": args.write_percent,
        "adaptive_over_best_static": adaptive.mops / best_static.max(f64::MIN_POSITIVE),
        "switch_us": { "to_sharded": to_sharded, "to_rcu": to_rcu },
        "runs": runs,
    });
    if let Some(dir) = args.out.parent() {
        fs::create_dir_all(dir).expect("creating the results directory");
    }
    fs::write(&args.out, serde_json::to_string_pretty(&json).unwrap()).expect("writing results");
    println!("results: {}", args.out.display());
}
