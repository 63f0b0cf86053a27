//! Core figures of the runtime, measured in one run as ratios (the machine is shared and noisy):
//!
//! - read throughput of `Rcu` and `Sharded`, 1 and 2 threads, against an unsynchronized
//!   `hashbrown::HashMap` lookup (the limit), all with the same fast hasher, on a map that fits in
//!   the cache (10 000 entries), one at the L2/L3 boundary (100 000) and one far beyond (1 000 000);
//! - the cost of the statistics: the same maps with `stats = false`, on reads and on `Sharded`
//!   writes (an upsert that updates; an insert of a new key and its removal);
//! - write latency of `Rcu` at 1 000 and 100 000 entries.
//!
//! `cargo bench -p guarded-map --bench core` prints a table and writes `target/bench/core.json`
//! (override with `GUARDED_MAP_BENCH_OUT`). `GUARDED_MAP_BENCH_QUICK=1` shortens every run;
//! `GUARDED_MAP_BENCH_SIZES=10000,100000` and `GUARDED_MAP_BENCH_ROUNDS=20` pick the read figures'
//! map sizes and rounds.
//! A benchmark, not a test: it asserts nothing about timings.

use std::hint::black_box;
use std::time::{Duration, Instant};
use std::{env, fs, thread};

use guarded_map::{GuardedMap, map_spec};

type Hasher = foldhash::fast::FixedState;

map_spec!(RcuOn: HashMap<u64, u64>, rcu);
map_spec!(RcuOff: HashMap<u64, u64>, rcu, stats = false);
map_spec!(ShardedOn: HashMap<u64, u64>, sharded);
map_spec!(ShardedOff: HashMap<u64, u64>, sharded, stats = false);

/// Map sizes for the read figures: one that fits in the L1/L2 caches, one at the L2/L3 boundary,
/// one far beyond the caches (memory-bound). Their lookup times are in BENCHMARKS.md.
const SIZES: [u64; 3] = [10_000, 100_000, 1_000_000];
/// Keys of the write-cost figures.
const PROBES: usize = 4096;

/// Pseudo-random keys below 10 000, for the write figures.
fn probes() -> Vec<u64> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..PROBES)
        .map(|_| {
            x = xorshift(x);
            x % 10_000
        })
        .collect()
}

#[inline(always)]
fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// Runs `read(key)` for `ops` keys drawn uniformly below `size` on each of `threads` threads;
/// returns Mops/s. Generic, so each contender's lookup is inlined into its own loop.
fn throughput<F: Fn(u64) -> u64 + Sync>(threads: usize, ops: usize, size: u64, read: &F) -> f64 {
    let start = Instant::now();
    thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                let mut x = 0x2545_F491_4F6C_DD1Du64 ^ (t as u64 + 1);
                let mut sum = 0u64;
                for _ in 0..ops {
                    x = xorshift(x);
                    // Multiply-shift maps `x` onto `0..size` without a division.
                    let key = ((u128::from(x) * u128::from(size)) >> 64) as u64;
                    sum = sum.wrapping_add(read(key));
                }
                black_box(sum);
            });
        }
    });
    (threads * ops) as f64 / start.elapsed().as_secs_f64() / 1e6
}

/// The best of the rounds: on a shared machine noise only ever slows a round down, so the fastest
/// round is the closest to what the code costs (throughputs: the largest; latencies: the smallest).
fn best(v: &[f64], larger_is_better: bool) -> f64 {
    let pick = if larger_is_better { f64::max } else { f64::min };
    v.iter().copied().reduce(pick).unwrap_or(f64::NAN)
}

/// The median of `v` (NaN when empty).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The median over rounds of `a / b`, each round's two figures taken side by side: noise that
/// slows a whole round (another tenant, a frequency drop) then cancels out of the ratio, where
/// comparing each contender's best round would compare different moments.
fn paired(a: &[f64], b: &[f64]) -> f64 {
    median(a.iter().zip(b).map(|(x, y)| x / y).collect())
}

/// One contender's read figures: Mops/s of every round.
struct Row {
    name: &'static str,
    entries: u64,
    threads: usize,
    rounds: Vec<f64>,
}

impl Row {
    fn best(&self) -> f64 {
        best(&self.rounds, true)
    }
}

/// The read contenders, in table order; the first is the limit.
const CONTENDERS: [&str; 5] = [
    "hashbrown (unsynchronized)",
    "Rcu",
    "Rcu, stats off",
    "Sharded",
    "Sharded, stats off",
];

/// The maps of one round, built in a rotated order: where a large map lands in memory (huge pages or
/// not) changes its lookups by tens of percent, so every round places them afresh and in turn.
struct Maps {
    limit: hashbrown::HashMap<u64, u64, Hasher>,
    rcu_on: GuardedMap<u64, u64, RcuOn, Hasher>,
    rcu_off: GuardedMap<u64, u64, RcuOff, Hasher>,
    sh_on: GuardedMap<u64, u64, ShardedOn, Hasher>,
    sh_off: GuardedMap<u64, u64, ShardedOff, Hasher>,
}

impl Maps {
    fn build(size: u64, round: usize) -> Maps {
        let entries = || (0..size).map(|k| (k, k));
        let mut limit = None;
        let mut rcu_on = None;
        let mut rcu_off = None;
        let mut sh_on = None;
        let mut sh_off = None;
        for i in 0..CONTENDERS.len() {
            match (i + round) % CONTENDERS.len() {
                0 => limit = Some(entries().collect()),
                1 => rcu_on = Some(entries().collect()),
                2 => rcu_off = Some(entries().collect()),
                3 => sh_on = Some(entries().collect()),
                _ => sh_off = Some(entries().collect()),
            }
        }
        let all = "every contender is built";
        Maps {
            limit: limit.expect(all),
            rcu_on: rcu_on.expect(all),
            rcu_off: rcu_off.expect(all),
            sh_on: sh_on.expect(all),
            sh_off: sh_off.expect(all),
        }
    }
}

/// Read throughput of every contender on a map of `size` entries, at 1 and 2 threads.
fn read_rows(size: u64, ops: usize, rounds: usize) -> Vec<Row> {
    const THREADS: [usize; 2] = [1, 2];
    let mut samples = vec![vec![Vec::new(); CONTENDERS.len()]; THREADS.len()];
    for round in 0..rounds {
        let m = Maps::build(size, round);
        for (t, &threads) in THREADS.iter().enumerate() {
            // Contenders alternate within the round so that noise hits all of them alike.
            let s = &mut samples[t];
            s[0].push(throughput(threads, ops, size, &|k| {
                *m.limit.get(&k).unwrap()
            }));
            s[1].push(throughput(threads, ops, size, &|k| {
                m.rcu_on.with(&k, |v| *v).unwrap()
            }));
            s[2].push(throughput(threads, ops, size, &|k| {
                m.rcu_off.with(&k, |v| *v).unwrap()
            }));
            s[3].push(throughput(threads, ops, size, &|k| {
                m.sh_on.with(&k, |v| *v).unwrap()
            }));
            s[4].push(throughput(threads, ops, size, &|k| {
                m.sh_off.with(&k, |v| *v).unwrap()
            }));
        }
    }
    let mut rows = Vec::new();
    for (t, &threads) in THREADS.iter().enumerate() {
        for (name, s) in CONTENDERS.into_iter().zip(samples[t].drain(..)) {
            rows.push(Row {
                name,
                entries: size,
                threads,
                rounds: s,
            });
        }
    }
    rows
}

fn main() {
    if env::args().any(|a| a == "--list") {
        return;
    }
    // `cargo test --all-targets` runs this unoptimized as a smoke test: keep that short.
    let quick = env::var_os("GUARDED_MAP_BENCH_QUICK").is_some() || cfg!(debug_assertions);
    let (ops, rounds) = if quick { (100_000, 3) } else { (2_000_000, 10) };
    let rounds = env_number("GUARDED_MAP_BENCH_ROUNDS").map_or(rounds, |n| n.max(1) as usize);
    let sizes: Vec<u64> = match env::var("GUARDED_MAP_BENCH_SIZES") {
        Ok(list) => list
            .split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .expect("GUARDED_MAP_BENCH_SIZES: a comma-separated list of entry counts")
            })
            .collect(),
        Err(_) if cfg!(debug_assertions) => SIZES[..1].to_vec(),
        Err(_) => SIZES.to_vec(),
    };
    let sizes = &sizes[..];

    let rows: Vec<Row> = sizes
        .iter()
        .flat_map(|&size| read_rows(size, ops, rounds))
        .collect();

    println!(
        "\nread throughput, u64 keys drawn uniformly, foldhash for all, {rounds} interleaved rounds"
    );
    println!("(best: each contender's fastest round; paired: the median of its per-round ratio)");
    println!(
        "{:<28} {:>9} {:>7} {:>10} {:>10} {:>10}",
        "map", "entries", "threads", "best Mops", "best vs", "paired vs"
    );
    let mut json_reads = Vec::new();
    let get = |name: &str, entries: u64, threads: usize| {
        rows.iter()
            .find(|r| r.name == name && r.entries == entries && r.threads == threads)
            .expect("every contender ran at every size and thread count")
    };
    for row in &rows {
        let base = get(CONTENDERS[0], row.entries, row.threads);
        let (best_ratio, paired_ratio) =
            (row.best() / base.best(), paired(&row.rounds, &base.rounds));
        println!(
            "{:<28} {:>9} {:>7} {:>10.1} {:>9.2}x {:>9.2}x",
            row.name,
            row.entries,
            row.threads,
            row.best(),
            best_ratio,
            paired_ratio,
        );
        json_reads.push(format!(
            "    {{\"map\": \"{}\", \"entries\": {}, \"threads\": {}, \"mops\": {:.2}, \"ratio_to_limit\": {best_ratio:.3}, \"paired_ratio_to_limit\": {paired_ratio:.3}}}",
            row.name,
            row.entries,
            row.threads,
            row.best(),
        ));
    }

    println!("\nstatistics cost on reads (1 - throughput with stats / without; best, paired)");
    let mut json_cost = Vec::new();
    for &entries in sizes {
        for threads in [1, 2] {
            for (on, off) in [("Rcu", "Rcu, stats off"), ("Sharded", "Sharded, stats off")] {
                let (on_row, off_row) = (get(on, entries, threads), get(off, entries, threads));
                let ratio = on_row.best() / off_row.best();
                let paired_ratio = paired(&on_row.rounds, &off_row.rounds);
                println!(
                    "{on:<28} {entries:>9} {threads:>7} {:>+9.1}% {:>+9.1}% cost",
                    (1.0 - ratio) * 100.0,
                    (1.0 - paired_ratio) * 100.0
                );
                json_cost.push(format!(
                    "    {{\"map\": \"{on}\", \"entries\": {entries}, \"threads\": {threads}, \"with_over_without\": {ratio:.4}, \"paired_with_over_without\": {paired_ratio:.4}}}"
                ));
            }
        }
    }

    // Write costs: Sharded writes with and without statistics, single thread. Each round measures
    // both maps side by side (in alternating order) so that the per-round ratio can be paired.
    let write_ops = if quick { 100_000 } else { 2_000_000 };
    let keys = probes();
    let mut json_write_cost = Vec::new();
    for (kind, op) in [
        ("upsert", Write::Upsert),
        ("insert+remove", Write::InsertRemove),
    ] {
        let (mut on, mut off) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let on_map: GuardedMap<u64, u64, ShardedOn, Hasher> = GuardedMap::default();
            let off_map: GuardedMap<u64, u64, ShardedOff, Hasher> = GuardedMap::default();
            // Warm both before either is timed: the first timed run of a round would otherwise
            // also grow its tables from empty, and fault in the pages they get.
            writes(&on_map, &keys, PROBES, op);
            writes(&off_map, &keys, PROBES, op);
            if round % 2 == 0 {
                on.push(writes(&on_map, &keys, write_ops, op));
                off.push(writes(&off_map, &keys, write_ops, op));
            } else {
                off.push(writes(&off_map, &keys, write_ops, op));
                on.push(writes(&on_map, &keys, write_ops, op));
            }
        }
        let (won, woff) = (best(&on, false), best(&off, false));
        let (cost_best, cost_paired) = (
            (won / woff - 1.0) * 100.0,
            (paired(&on, &off) - 1.0) * 100.0,
        );
        println!(
            "{:<28} {:>7} {cost_best:>+9.1}% {cost_paired:>+9.1}% cost  ({won:.1} vs {woff:.1} ns per write)",
            format!("Sharded {kind}"),
            1,
        );
        json_write_cost.push(format!(
            "    {{\"write\": \"{kind}\", \"ns_stats_on\": {won:.2}, \"ns_stats_off\": {woff:.2}, \"cost_percent_best\": {cost_best:.2}, \"cost_percent_paired\": {cost_paired:.2}, \"rounds_ns_stats_on\": {on:.2?}, \"rounds_ns_stats_off\": {off:.2?}}}"
        ));
    }

    // Rcu write latency by size.
    println!("\nRcu write latency (update of an existing key, one thread)");
    let mut json_writes = Vec::new();
    for size in [1_000u64, 100_000] {
        let map: GuardedMap<u64, u64, RcuOn, Hasher> = (0..size).map(|k| (k, k)).collect();
        let writes = if quick {
            200
        } else if size > 10_000 {
            2_000
        } else {
            20_000
        };
        let before = map.stats();
        let start = Instant::now();
        for i in 0..writes {
            map.update(&(i % size), |v| *v += 1);
        }
        let per = start.elapsed() / writes as u32;
        let after = map.stats();
        let copied = (after.rcu_copied_entries - before.rcu_copied_entries) as f64 / writes as f64;
        println!(
            "{size:>9} entries: {:>9.2} us per write, {copied:>7.0} entries copied per write",
            us(per)
        );
        json_writes.push(format!(
            "    {{\"entries\": {size}, \"micros_per_write\": {:.3}, \"copied_per_write\": {copied:.1}}}",
            us(per)
        ));
    }

    // Cargo runs benches in the package's directory; the results go to the workspace's target.
    let tmp = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let default_out = tmp.parent().unwrap_or(tmp).join("bench").join("core.json");
    let out = env::var("GUARDED_MAP_BENCH_OUT")
        .map_or(default_out, std::path::PathBuf::from)
        .display()
        .to_string();
    let json = format!(
        "{{\n  \"bench\": \"core\",\n  \"unix_time\": {},\n  \"cores\": {},\n  \"rounds\": {rounds},\n  \"reads\": [\n{}\n  ],\n  \"stats_cost_reads\": [\n{}\n  ],\n  \"stats_cost_sharded_writes\": [\n{}\n  ],\n  \"rcu_writes\": [\n{}\n  ]\n}}\n",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        thread::available_parallelism().map_or(0, |n| n.get()),
        json_reads.join(",\n"),
        json_cost.join(",\n"),
        json_write_cost.join(",\n"),
        json_writes.join(",\n"),
    );
    if let Some(dir) = std::path::Path::new(&out).parent() {
        let _ = fs::create_dir_all(dir);
    }
    match fs::write(&out, json) {
        Ok(()) => println!("\nresults written to {out}"),
        Err(e) => eprintln!("could not write {out}: {e}"),
    }
}

/// A number from the environment variable `name`, if set.
fn env_number(name: &str) -> Option<u64> {
    let value = env::var(name).ok()?;
    Some(
        value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}: not a number: {value:?}")),
    )
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// A kind of write for the write-cost figures.
#[derive(Clone, Copy)]
enum Write {
    /// `upsert(+1)` of keys already present after the first pass: an update, counted once.
    Upsert,
    /// `insert` of a new key then its `remove`: each adds an entry count to its operation count.
    InsertRemove,
}

/// Nanoseconds per write of kind `op` over `keys`, cycled `ops` times; generic so that each spec's
/// loop is compiled on its own, and never inlined so that a profiler (callgrind: see BENCHMARKS.md)
/// can count each spec's instructions apart.
#[inline(never)]
fn writes<S: guarded_map::SpecFor<u64, u64>>(
    map: &GuardedMap<u64, u64, S, Hasher>,
    keys: &[u64],
    ops: usize,
    op: Write,
) -> f64 {
    let start = Instant::now();
    match op {
        Write::Upsert => {
            for i in 0..ops {
                map.upsert(keys[i & (PROBES - 1)], || 0, |v| *v += 1);
            }
        }
        Write::InsertRemove => {
            for i in 0..ops / 2 {
                let key = keys[i & (PROBES - 1)];
                map.insert(key, 1);
                black_box(map.remove(&key));
            }
        }
    }
    start.elapsed().as_nanos() as f64 / ops as f64
}
