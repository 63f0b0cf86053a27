//! The capacity stress run: an `rcu` and a `sharded` map (`u64 -> u64`, `max_len` 1 500 000), on
//! a thread each, go through fill (to `--entries`), churn (95 % removed), settle (quiet, then light writes, until
//! the shrink policy has given the memory back) and refill (to half). A sampler records every
//! 100 ms each map's entries, capacity and table memory, in the probe's recording format, and the
//! run writes that history (`--history`), a report (`--out`, JSON, and a table on stdout) and a
//! picture of it (`--svg`: entries, capacity, `max_len` and forecast per map). Asserts nothing.
//!
//! `cargo run --release -p guarded-map-bench --bin capacity`

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use guarded_map::{GuardedMap, SpecFor, map_spec, registry};
use serde::Serialize;
use serde_json::json;

map_spec!(RcuMap: HashMap<u64, u64>, rcu, name = "capacity.rcu", max_len = 1_500_000);
map_spec!(ShardedMap: HashMap<u64, u64>, sharded, name = "capacity.sharded", max_len = 1_500_000);

/// The capacity stress run: fill, churn, shrink, refill.
#[derive(Parser, Debug)]
#[command(name = "capacity")]
struct Args {
    /// Entries at the peak.
    #[arg(long, default_value_t = 1_000_000)]
    entries: u64,
    /// The history (JSON lines, `guarded-map-probe plot` reads it).
    #[arg(long, default_value = "target/bench/capacity.jsonl")]
    history: PathBuf,
    /// The report.
    #[arg(long, default_value = "target/bench/capacity.json")]
    out: PathBuf,
    /// The picture.
    #[arg(long, default_value = "target/bench/capacity.svg")]
    svg: PathBuf,
    /// Pause between two of the fifty steps of a fill, in milliseconds.
    #[arg(long, default_value_t = 200)]
    step_ms: u64,
}

/// One map's figures.
#[derive(Serialize, Debug)]
struct Figures {
    map: &'static str,
    peak_entries: u64,
    peak_memory_bytes: u64,
    /// Right after removing 95 %: before the shrink policy acts.
    churned_memory_bytes: u64,
    /// After settling.
    settled_memory_bytes: u64,
    /// What a map built afresh from the live entries takes.
    fresh_memory_bytes: u64,
    settled_over_fresh: f64,
    shrinks: u64,
    shrunk_bytes: u64,
    /// Seconds from the end of the churn until the tables were back within twice the fresh size.
    settle_seconds: f64,
    fill_seconds: f64,
    churn_seconds: f64,
    refill_seconds: f64,
}

#[derive(Serialize)]
struct Results {
    command: String,
    entries: u64,
    maps: Vec<Figures>,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One history line: every map of this run, as `guarded-map-probe record` writes them.
fn sample() -> serde_json::Value {
    let maps: Vec<_> = ["capacity.rcu", "capacity.sharded"]
        .into_iter()
        .filter_map(registry::report)
        .filter(|r| r.instances > 0)
        .map(|r| {
            json!({
                "label": r.descriptor.label(),
                "len": r.stats.len,
                "capacity": r.stats.capacity,
                "memory_bytes": r.stats.memory_bytes,
                "max_len": r.descriptor.max_len_limit(),
                "shrinks": r.stats.shrinks,
            })
        })
        .collect();
    json!({ "unix_ms": unix_ms(), "maps": maps })
}

fn run<S: SpecFor<u64, u64>>(entries: u64, pause: Duration) -> Figures {
    let map: GuardedMap<u64, u64, S> = GuardedMap::new();
    let started = Instant::now();
    // Fill in fifty steps over about ten seconds, so the history shows the climb.
    let step = (entries / 50).max(1) as usize;
    for chunk in (0..entries).collect::<Vec<_>>().chunks(step) {
        for &k in chunk {
            map.insert(k, k);
        }
        thread::sleep(pause);
    }
    let fill_seconds = started.elapsed().as_secs_f64();
    let peak = map.stats();
    let started = Instant::now();
    for k in 0..entries {
        if k % 20 != 0 {
            map.remove(&k);
        }
    }
    let churn_seconds = started.elapsed().as_secs_f64();
    let churned = map.stats();
    let fresh: GuardedMap<u64, u64, S> = map.iter().collect();
    let fresh_memory = fresh.stats().memory_bytes;
    drop(fresh);
    // Settle: light writes (a remove and an insert of a live key every millisecond) until the
    // tables are back within twice the fresh size, at most 10 s.
    let started = Instant::now();
    let mut k = 0;
    while map.stats().memory_bytes > 2 * fresh_memory && started.elapsed() < Duration::from_secs(10)
    {
        for _ in 0..20 {
            if let Some(v) = map.remove(&k) {
                map.insert(k, v);
            }
            k = (k + 20) % entries;
        }
        thread::sleep(Duration::from_millis(1));
    }
    let settle_seconds = started.elapsed().as_secs_f64();
    thread::sleep(Duration::from_millis(500));
    let settled = map.stats();
    let started = Instant::now();
    for chunk in (0..entries / 2).collect::<Vec<_>>().chunks(step) {
        for &k in chunk {
            map.insert(k, k);
        }
        thread::sleep(pause);
    }
    let refill_seconds = started.elapsed().as_secs_f64();
    thread::sleep(Duration::from_millis(500));
    Figures {
        map: S::DESCRIPTOR.label(),
        peak_entries: peak.len,
        peak_memory_bytes: peak.memory_bytes,
        churned_memory_bytes: churned.memory_bytes,
        settled_memory_bytes: settled.memory_bytes,
        fresh_memory_bytes: fresh_memory,
        settled_over_fresh: settled.memory_bytes as f64 / fresh_memory as f64,
        shrinks: settled.shrinks,
        shrunk_bytes: settled.shrunk_bytes,
        settle_seconds,
        fill_seconds,
        churn_seconds,
        refill_seconds,
    }
}

fn main() {
    let args = Args::parse();
    let stop = AtomicBool::new(false);
    let mut history = String::new();
    let maps = thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut lines = String::new();
            while !stop.load(Ordering::Relaxed) {
                lines.push_str(&sample().to_string());
                lines.push('\n');
                thread::sleep(Duration::from_millis(100));
            }
            lines
        });
        // Both maps at once, on a thread each, so that their histories share one time axis.
        let (entries, pause) = (args.entries, Duration::from_millis(args.step_ms));
        let rcu = s.spawn(move || run::<RcuMap>(entries, pause));
        let sharded = s.spawn(move || run::<ShardedMap>(entries, pause));
        let maps = vec![
            rcu.join().expect("the rcu run"),
            sharded.join().expect("the sharded run"),
        ];
        stop.store(true, Ordering::Relaxed);
        history = sampler.join().expect("the sampler");
        maps
    });
    println!(
        "{:<18} {:>10} {:>12} {:>12} {:>12} {:>12} {:>7} {:>8} {:>9}",
        "map",
        "peak",
        "peak MB",
        "churned MB",
        "settled MB",
        "fresh MB",
        "ratio",
        "shrinks",
        "settle s"
    );
    let mb = |b: u64| format!("{:.1}", b as f64 / 1e6);
    for f in &maps {
        println!(
            "{:<18} {:>10} {:>12} {:>12} {:>12} {:>12} {:>7.2} {:>8} {:>9.2}",
            f.map,
            f.peak_entries,
            mb(f.peak_memory_bytes),
            mb(f.churned_memory_bytes),
            mb(f.settled_memory_bytes),
            mb(f.fresh_memory_bytes),
            f.settled_over_fresh,
            f.shrinks,
            f.settle_seconds
        );
    }
    for path in [&args.history, &args.out, &args.svg] {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).expect("the output directory can be made");
        }
    }
    fs::write(&args.history, &history).expect("the history can be written");
    let results = Results {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        entries: args.entries,
        maps,
    };
    let json = serde_json::to_string_pretty(&results).expect("results serialize");
    fs::write(&args.out, json).expect("the report can be written");
    let recorded = guarded_map_probe::plot::read(&history).expect("the history reads back");
    let svg = guarded_map_probe::plot::svg(&recorded).expect("the picture draws");
    fs::write(&args.svg, svg).expect("the picture can be written");
    println!(
        "wrote {}, {} and {}",
        args.history.display(),
        args.out.display(),
        args.svg.display()
    );
}
