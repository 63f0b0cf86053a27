//! One kind of operation on one contender, for counting its instructions with callgrind
//! (`scripts/op-instructions` runs every pair and prints instructions per operation).
//!
//! The map is prefilled with `--entries` keys (75 % of a 2^17-slot table by default, as the mixed
//! workloads), then `--ops` operations of one kind run inside [`measured`], the one function
//! callgrind collects in (`--toggle-collect`). The other phases run outside it: inserts of new
//! keys, in-place increments and lookups of present keys, removals of the inserted keys. A `noop`
//! contender measures the loop itself (key generation), which the script subtracts.

use std::hint::black_box;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use guarded_map_bench::adapter::{Concurrent, Read, Write};
use guarded_map_bench::contenders::{
    AdaptiveRcu, AdaptiveSharded, AdaptiveStats, Dash, Fast, Guarded, Papaya, RcuBare, RcuStats,
    SccMap, ShardedBare, ShardedStats,
};

/// One kind of operation on one contender, for callgrind.
#[derive(Parser, Debug)]
#[command(name = "op-instructions")]
struct Args {
    /// The map.
    #[arg(long, value_enum)]
    map: Contender,
    /// The operation counted.
    #[arg(long, value_enum)]
    op: Op,
    /// Entries before the operations.
    #[arg(long, default_value_t = 98_304)]
    entries: u64,
    /// Operations counted (per thread).
    #[arg(long, default_value_t = 100_000)]
    ops: u64,
    /// Threads running the operations at once (`churn` only), each on keys of its own.
    #[arg(long, default_value_t = 1)]
    threads: u64,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Contender {
    Noop,
    Sharded,
    ShardedBare,
    Rcu,
    RcuBare,
    Adaptive,
    /// `Adaptive` pinned in its `Rcu` form.
    AdaptiveRcu,
    /// `Adaptive` pinned in its `Sharded` form.
    AdaptiveSharded,
    Dashmap,
    Scc,
    Papaya,
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
enum Op {
    /// Inserting a key not present.
    Insert,
    /// Incrementing the value of a present key in place.
    Update,
    /// Looking a present key up.
    Get,
    /// Removing a present key.
    Remove,
    /// Inserting a new key and removing it again, in turn (an operation is one of the two).
    Churn,
}

/// The keys: a fixed odd multiplier spreads consecutive numbers over the whole range.
fn key(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// What callgrind counts (its name is the script's `--toggle-collect`). The constants keep the
/// two functions apart (identical ones are folded into one symbol) and the calls out of tail
/// position (a tail jump leaves the function before its callee runs).
#[inline(never)]
fn measured(f: &mut dyn FnMut()) {
    f();
    black_box(1);
}

/// [`measured`], timed (outside what callgrind counts): the time per operation goes to stderr, a
/// quick look natively (`--ops` in the millions), not a benchmark.
fn timed(ops: u64, f: &mut dyn FnMut()) {
    let start = Instant::now();
    measured(f);
    let ns = start.elapsed().as_secs_f64() * 1e9 / ops as f64;
    eprintln!("{ns:.1} ns per operation");
}

#[inline(never)]
fn skipped(f: &mut dyn FnMut()) {
    f();
    black_box(2);
}

/// Runs phase `op`: timed and counted when it is the one asked for; otherwise only if a later
/// phase needs it (removals remove the keys the inserts added).
fn phase(op: Op, args: &Args, f: &mut dyn FnMut()) {
    if op == args.op {
        timed(args.ops, f)
    } else if op == Op::Insert && args.op == Op::Remove {
        skipped(f)
    }
}

fn run<M: Concurrent>(args: &Args)
where
    M::Handle: Write,
{
    let map = M::with_capacity(1 << 17);
    let mut h = map.handle();
    let (n, ops) = (args.entries, args.ops);
    for i in 0..n {
        h.insert(key(i), i);
    }
    let fresh = n..n + ops;
    phase(Op::Insert, args, &mut || {
        for i in fresh.clone() {
            black_box(h.insert(key(i), i));
        }
    });
    phase(Op::Update, args, &mut || {
        for i in 0..ops {
            black_box(h.increment(key(i % n)));
        }
    });
    phase(Op::Get, args, &mut || {
        for i in 0..ops {
            black_box(h.get(key(i % n)));
        }
    });
    phase(Op::Remove, args, &mut || {
        for i in fresh.clone() {
            black_box(h.remove(key(i)));
        }
    });
    if args.op == Op::Churn {
        let map = &map;
        timed(ops, &mut || {
            std::thread::scope(|s| {
                for t in 0..args.threads {
                    s.spawn(move || {
                        let mut h = map.handle();
                        let base = n + (t + 1) * (1 << 40);
                        for i in 0..ops / 2 {
                            black_box(h.insert(key(base + i), i));
                            black_box(h.remove(key(base + i)));
                        }
                    });
                }
            })
        });
    }
}

fn noop(args: &Args) {
    let ops = args.ops;
    timed(ops, &mut || {
        for i in 0..ops {
            black_box(key(i % args.entries.max(1)));
        }
    });
}

fn main() {
    let args = Args::parse();
    match args.map {
        Contender::Noop => noop(&args),
        Contender::Sharded => run::<Guarded<ShardedStats, Fast>>(&args),
        Contender::ShardedBare => run::<Guarded<ShardedBare, Fast>>(&args),
        Contender::Rcu => run::<Guarded<RcuStats, Fast>>(&args),
        Contender::RcuBare => run::<Guarded<RcuBare, Fast>>(&args),
        Contender::Adaptive => run::<Guarded<AdaptiveStats, Fast>>(&args),
        Contender::AdaptiveRcu => run::<Guarded<AdaptiveRcu, Fast>>(&args),
        Contender::AdaptiveSharded => run::<Guarded<AdaptiveSharded, Fast>>(&args),
        Contender::Dashmap => run::<Dash<Fast>>(&args),
        Contender::Scc => run::<SccMap<Fast>>(&args),
        Contender::Papaya => run::<Papaya<Fast>>(&args),
    }
}
