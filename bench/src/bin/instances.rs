//! Map instances by the hundred thousand: a struct of two maps (one read-mostly, one written;
//! `u32 -> u32`, one entry each), built, measured and dropped `--counts` times over, for
//! guarded-map (`rcu` and `sharded` fields), dashmap and papaya. For each count: the time to build
//! them, the resident memory per struct, the time of `report_now` (guarded-map; the median of three
//! calls), the time to drop
//! them; then the memory per (struct, thread) after `--threads` threads each read and write every
//! one of `--touched` structs. Each measurement runs in a child process of its own, so that one's
//! freed memory does not serve the next. Prints a table and writes a JSON results file; asserts
//! nothing.

use std::collections::HashMap;
use std::fs;
use std::hint::black_box;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use dashmap::DashMap;
use guarded_map::guarded_map;
use guarded_map_bench::machine::resident;
use serde::{Deserialize, Serialize};

/// Instances by the hundred thousand: build, memory, report, drop.
#[derive(Parser, Debug)]
#[command(name = "instances")]
struct Args {
    /// Struct counts to measure.
    #[arg(long, value_delimiter = ',', default_values_t = [1_000, 10_000, 100_000])]
    counts: Vec<usize>,
    /// Threads that touch every struct, for the memory per (struct, thread).
    #[arg(long, default_value_t = 64)]
    threads: usize,
    /// Structs those threads touch.
    #[arg(long, default_value_t = 10_000)]
    touched: usize,
    /// Measure one contender in this process (what the parent runs in each child).
    #[arg(long, value_enum)]
    contender: Option<Contender>,
    /// In a child: the measurement (`build` of `--count` structs, or `touch`).
    #[arg(long)]
    count: Option<usize>,
    /// In a child: measure the memory per (struct, thread) instead.
    #[arg(long)]
    touch: bool,
    /// Results file.
    #[arg(long, default_value = "target/bench/instances.json")]
    out: PathBuf,
}

#[derive(Clone, Copy, Debug, ValueEnum, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
enum Contender {
    GuardedMap,
    Dashmap,
    Papaya,
}

const ALL: [Contender; 3] = [Contender::GuardedMap, Contender::Dashmap, Contender::Papaya];

#[guarded_map]
#[derive(Default)]
struct Guarded {
    #[guarded(rcu, name = "instances.config")]
    config: HashMap<u32, u32>,
    #[guarded(sharded, name = "instances.sessions")]
    sessions: HashMap<u32, u32>,
}

#[derive(Default)]
struct Dash {
    config: DashMap<u32, u32>,
    sessions: DashMap<u32, u32>,
}

#[derive(Default)]
struct Papaya {
    config: papaya::HashMap<u32, u32>,
    sessions: papaya::HashMap<u32, u32>,
}

/// The struct's uses the benchmark makes, the same for each contender.
trait Tenant: Default + Send + Sync {
    fn fill(&self, key: u32);
    fn touch(&self, key: u32) -> u32;
}

impl Tenant for Guarded {
    fn fill(&self, key: u32) {
        self.config.insert(key, key);
        self.sessions.insert(key, key);
    }
    fn touch(&self, key: u32) -> u32 {
        self.sessions.update(&key, |n| *n += 1);
        self.config.get_cloned(&key).unwrap_or(0)
    }
}

impl Tenant for Dash {
    fn fill(&self, key: u32) {
        self.config.insert(key, key);
        self.sessions.insert(key, key);
    }
    fn touch(&self, key: u32) -> u32 {
        if let Some(mut n) = self.sessions.get_mut(&key) {
            *n += 1;
        }
        self.config.get(&key).map_or(0, |v| *v)
    }
}

impl Tenant for Papaya {
    fn fill(&self, key: u32) {
        self.config.pin().insert(key, key);
        self.sessions.pin().insert(key, key);
    }
    fn touch(&self, key: u32) -> u32 {
        self.sessions.pin().update(key, |n| n + 1);
        self.config.pin().get(&key).copied().unwrap_or(0)
    }
}

/// One count's measurement, from a child.
#[derive(Serialize, Deserialize)]
struct Built {
    contender: Contender,
    count: usize,
    build_s: f64,
    bytes_per_struct: f64,
    /// `report_now` over every live instance (guarded-map only).
    report_s: Option<f64>,
    /// The longest one struct's creation took on the thread that made every instance (so in the
    /// same part of the registry) while another thread ran `report_now` (guarded-map only).
    create_wait_s: Option<f64>,
    drop_s: f64,
}

/// The memory per (struct, thread) after threads touch every struct, from a child.
#[derive(Serialize, Deserialize)]
struct Touched {
    contender: Contender,
    threads: usize,
    structs: usize,
    bytes_per_struct_thread: f64,
}

/// `count` structs, each with one entry in each map.
fn filled<T: Tenant>(count: usize) -> Vec<T> {
    (0..count)
        .map(|i| {
            let tenant = T::default();
            tenant.fill(i as u32);
            tenant
        })
        .collect()
}

fn build<T: Tenant>(contender: Contender, count: usize) -> Built {
    let before = resident();
    let start = Instant::now();
    let all: Vec<T> = filled(count);
    let build_s = start.elapsed().as_secs_f64();
    let bytes_per_struct = (resident() - before) as f64 / count as f64;
    // The median of three calls, made here: a `Reporter` would run a report of its own on its
    // thread as it starts, over the same stripes at the same time.
    let report_s = (contender == Contender::GuardedMap).then(|| {
        let mut times: Vec<f64> = (0..3)
            .map(|_| {
                let start = Instant::now();
                guarded_map::report_now();
                start.elapsed().as_secs_f64()
            })
            .collect();
        times.sort_by(f64::total_cmp);
        times[1]
    });
    let create_wait_s = (contender == Contender::GuardedMap).then(create_wait_during_report);
    let start = Instant::now();
    drop(black_box(all));
    Built {
        contender,
        count,
        build_s,
        bytes_per_struct,
        report_s,
        create_wait_s,
        drop_s: start.elapsed().as_secs_f64(),
    }
}

/// The longest a struct's creation waits on this thread while another runs `report_now` over
/// every instance this thread made.
fn create_wait_during_report() -> f64 {
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            guarded_map::report_now();
            done.store(true, Ordering::Release);
        });
        let mut made = Vec::new();
        let mut longest = Duration::ZERO;
        while !done.load(Ordering::Acquire) {
            let start = Instant::now();
            made.push(Guarded::default());
            longest = longest.max(start.elapsed());
        }
        black_box(made);
        longest.as_secs_f64()
    })
}

fn touch<T: Tenant>(contender: Contender, threads: usize, structs: usize) -> Touched {
    let all: Vec<T> = filled(structs);
    let before = resident();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for (i, tenant) in all.iter().enumerate() {
                    black_box(tenant.touch(i as u32));
                }
            });
        }
    });
    let grown = resident().saturating_sub(before);
    black_box(&all);
    Touched {
        contender,
        threads,
        structs,
        bytes_per_struct_thread: grown as f64 / (structs * threads) as f64,
    }
}

fn child(args: &Args, contender: Contender) -> String {
    let json = if args.touch {
        serde_json::to_string(&match contender {
            Contender::GuardedMap => touch::<Guarded>(contender, args.threads, args.touched),
            Contender::Dashmap => touch::<Dash>(contender, args.threads, args.touched),
            Contender::Papaya => touch::<Papaya>(contender, args.threads, args.touched),
        })
    } else {
        let count = args.count.expect("a child measures one count");
        serde_json::to_string(&match contender {
            Contender::GuardedMap => build::<Guarded>(contender, count),
            Contender::Dashmap => build::<Dash>(contender, count),
            Contender::Papaya => build::<Papaya>(contender, count),
        })
    };
    json.expect("results serialize")
}

/// Runs this binary as a child with `extra` arguments and returns what it printed.
fn run_child(contender: Contender, extra: &[String]) -> String {
    let me = std::env::current_exe().expect("the running binary's path");
    let name = contender.to_possible_value().expect("no skipped variants");
    let output = Command::new(me)
        .args(["--contender", name.get_name()])
        .args(extra)
        .output()
        .expect("the child runs");
    assert!(output.status.success(), "{name:?} failed: {output:?}");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[derive(Serialize)]
struct Results {
    machine: guarded_map_bench::machine::Machine,
    built: Vec<Built>,
    touched: Vec<Touched>,
}

fn main() {
    let args = Args::parse();
    if let Some(contender) = args.contender {
        println!("{}", child(&args, contender));
        return;
    }
    println!(
        "{:<12} {:>8} {:>10} {:>14} {:>11} {:>14} {:>10}",
        "map", "structs", "build s", "bytes/struct", "report ms", "create wait ms", "drop s"
    );
    let mut built = Vec::new();
    for &count in &args.counts {
        for contender in ALL {
            let row: Built = serde_json::from_str(&run_child(
                contender,
                &["--count".into(), count.to_string()],
            ))
            .expect("the child prints its row");
            println!(
                "{:<12} {:>8} {:>10.3} {:>14.0} {:>11} {:>14} {:>10.3}",
                row.contender.to_possible_value().unwrap().get_name(),
                row.count,
                row.build_s,
                row.bytes_per_struct,
                row.report_s
                    .map_or_else(|| "-".into(), |s| format!("{:.1}", s * 1e3)),
                row.create_wait_s
                    .map_or_else(|| "-".into(), |s| format!("{:.2}", s * 1e3)),
                row.drop_s
            );
            built.push(row);
        }
    }
    println!(
        "\nmemory per (struct, thread) after {} threads touch {} structs:",
        args.threads, args.touched
    );
    let mut touched = Vec::new();
    for contender in ALL {
        let row: Touched = serde_json::from_str(&run_child(
            contender,
            &[
                "--touch".into(),
                "--threads".into(),
                args.threads.to_string(),
                "--touched".into(),
                args.touched.to_string(),
            ],
        ))
        .expect("the child prints its row");
        println!(
            "{:<12} {:>10.1} B",
            row.contender.to_possible_value().unwrap().get_name(),
            row.bytes_per_struct_thread
        );
        touched.push(row);
    }
    if let Some(dir) = args.out.parent() {
        fs::create_dir_all(dir).expect("the results directory can be made");
    }
    let results = Results {
        machine: guarded_map_bench::machine::Machine::current(),
        built,
        touched,
    };
    let json = serde_json::to_string_pretty(&results).expect("results serialize");
    fs::write(&args.out, json).expect("the results file can be written");
    println!("written: {}", args.out.display());
}
