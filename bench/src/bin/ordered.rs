//! Ordered maps: point gets and 100-entry range scans on `--entries` u64 -> u64 entries, for
//! guarded-map's `OrderedMap`, scc's `TreeIndex`, crossbeam's `SkipMap` and `RwLock<BTreeMap>`
//! (parking_lot), on 1 and 2 threads. Each cell runs `--seconds` per round; the median of
//! `--rounds` rounds is reported, in millions of operations per second, with the ratios the issue
//! names (gets against `TreeIndex`, scans against `SkipMap`). Prints a table and writes a JSON
//! results file; asserts nothing.
//!
//! `cargo run --release -p guarded-map-bench --bin ordered`

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use crossbeam_skiplist::SkipMap;
use guarded_map::{OrderedMap, map_spec};
use parking_lot::RwLock;
use serde::Serialize;

map_spec!(Book: BTreeMap<u64, u64>, ordered, name = "bench.ordered");

/// Ordered maps: point gets and range scans.
#[derive(Parser, Debug)]
#[command(name = "ordered")]
struct Args {
    /// Entries (keys 0, 2, 4, ...).
    #[arg(long, default_value_t = 1_000_000)]
    entries: u64,
    /// Seconds per cell and round.
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
    /// Rounds per cell (the median is reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Thread counts.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2])]
    threads: Vec<usize>,
    /// Results file.
    #[arg(long, default_value = "target/bench/ordered.json")]
    out: PathBuf,
}

/// What the benchmark asks of an ordered map.
trait Contender: Sync {
    fn name(&self) -> &'static str;
    fn get(&self, key: u64) -> Option<u64>;
    /// Sums the values of the `n` entries from `from` on.
    fn scan(&self, from: u64, n: usize) -> u64;
}

struct Guarded(OrderedMap<u64, u64, Book>);
impl Contender for Guarded {
    fn name(&self) -> &'static str {
        "guarded-map OrderedMap"
    }
    fn get(&self, key: u64) -> Option<u64> {
        self.0.get_cloned(&key)
    }
    fn scan(&self, from: u64, n: usize) -> u64 {
        // A snapshot's iterator, so the scan stops after `n` (the callback form visits the range).
        let snap = self.0.snapshot();
        snap.range(from..).take(n).map(|(_, v)| *v).sum()
    }
}

struct Scc(scc::TreeIndex<u64, u64>);
impl Contender for Scc {
    fn name(&self) -> &'static str {
        "scc TreeIndex"
    }
    fn get(&self, key: u64) -> Option<u64> {
        self.0.peek_with(&key, |_, v| *v)
    }
    fn scan(&self, from: u64, n: usize) -> u64 {
        let guard = scc::Guard::new();
        self.0.range(from.., &guard).take(n).map(|(_, v)| *v).sum()
    }
}

struct Skip(SkipMap<u64, u64>);
impl Contender for Skip {
    fn name(&self) -> &'static str {
        "crossbeam SkipMap"
    }
    fn get(&self, key: u64) -> Option<u64> {
        self.0.get(&key).map(|e| *e.value())
    }
    fn scan(&self, from: u64, n: usize) -> u64 {
        self.0.range(from..).take(n).map(|e| *e.value()).sum()
    }
}

struct Locked(RwLock<BTreeMap<u64, u64>>);
impl Contender for Locked {
    fn name(&self) -> &'static str {
        "RwLock<BTreeMap>"
    }
    fn get(&self, key: u64) -> Option<u64> {
        self.0.read().get(&key).copied()
    }
    fn scan(&self, from: u64, n: usize) -> u64 {
        self.0.read().range(from..).take(n).map(|(_, v)| *v).sum()
    }
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
enum Workload {
    Get,
    Scan100,
}

#[derive(Serialize)]
struct Cell {
    map: &'static str,
    workload: Workload,
    threads: usize,
    /// Million operations per second, median of the rounds (a scan is one operation).
    mops: f64,
    rounds: Vec<f64>,
}

#[derive(Serialize)]
struct Results {
    command: String,
    entries: u64,
    cells: Vec<Cell>,
}

/// Operations per second of `threads` threads running `workload` on `map` for `seconds`.
fn run(map: &dyn Contender, workload: Workload, threads: usize, entries: u64, seconds: f64) -> f64 {
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let ops: u64 = thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let stop = &stop;
                s.spawn(move || {
                    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (t as u64 + 1);
                    let mut ops = 0u64;
                    let mut sink = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..256 {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            let key = (x % entries) * 2;
                            sink = sink.wrapping_add(match workload {
                                Workload::Get => map.get(key).unwrap_or(0),
                                Workload::Scan100 => map.scan(key, 100),
                            });
                        }
                        ops += 256;
                    }
                    std::hint::black_box(sink);
                    ops
                })
            })
            .collect();
        thread::sleep(Duration::from_secs_f64(seconds));
        stop.store(true, Ordering::Relaxed);
        workers
            .into_iter()
            .map(|w| w.join().expect("a worker"))
            .sum()
    });
    ops as f64 / started.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args = Args::parse();
    let n = args.entries;
    let pairs = || (0..n).map(|i| (i * 2, i));
    let guarded = Guarded(pairs().collect());
    let scc = Scc(scc::TreeIndex::new());
    for (k, v) in pairs() {
        let _ = scc.0.insert_sync(k, v);
    }
    let skip = Skip(pairs().collect());
    let locked = Locked(RwLock::new(pairs().collect()));
    let maps: [&dyn Contender; 4] = [&guarded, &scc, &skip, &locked];
    let mut cells = Vec::new();
    for workload in [Workload::Get, Workload::Scan100] {
        for &threads in &args.threads {
            // Rounds alternate the contenders, so a noisy second hits them alike.
            let mut rounds = vec![Vec::new(); maps.len()];
            for _ in 0..args.rounds {
                for (i, map) in maps.iter().enumerate() {
                    rounds[i].push(run(*map, workload, threads, n, args.seconds) / 1e6);
                }
            }
            for (map, rounds) in maps.iter().zip(rounds) {
                cells.push(Cell {
                    map: map.name(),
                    workload,
                    threads,
                    mops: median(rounds.clone()),
                    rounds,
                });
            }
        }
    }
    println!(
        "{:<24} {:>9} {:>8} {:>12}",
        "map", "workload", "threads", "Mops/s"
    );
    for c in &cells {
        println!(
            "{:<24} {:>9} {:>8} {:>12.3}",
            c.map,
            format!("{:?}", c.workload),
            c.threads,
            c.mops
        );
    }
    let find = |map: &str, w: Workload, t: usize| {
        cells
            .iter()
            .find(|c| c.map == map && c.workload == w && c.threads == t)
            .map_or(f64::NAN, |c| c.mops)
    };
    for &t in &args.threads {
        println!(
            "{t} thread(s): gets {:.2}x TreeIndex, scans {:.2}x SkipMap",
            find(guarded.name(), Workload::Get, t) / find(scc.name(), Workload::Get, t),
            find(guarded.name(), Workload::Scan100, t) / find(skip.name(), Workload::Scan100, t),
        );
    }
    if let Some(dir) = args.out.parent() {
        fs::create_dir_all(dir).expect("the results directory can be made");
    }
    let results = Results {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        entries: n,
        cells,
    };
    fs::write(
        &args.out,
        serde_json::to_string_pretty(&results).expect("serializes"),
    )
    .expect("the results file can be written");
    println!("wrote {}", args.out.display());
}
