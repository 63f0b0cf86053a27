//! Memory per entry: the resident-memory growth of a process that inserts `--entries` u64 -> u64
//! pairs into an empty map of each contender (grown by inserts, foldhash for all), divided by the
//! entries. Each contender runs in a child process of its own, so that one's freed memory does
//! not serve the next. Prints a table and writes a JSON results file; asserts nothing.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use clap::{Parser, ValueEnum};
use guarded_map_bench::adapter::{Concurrent, Write};
use guarded_map_bench::contenders::{Dash, Fast, Guarded, Papaya, RcuStats, SccMap, ShardedStats};
use guarded_map_bench::machine::resident;
use serde::Serialize;

/// Memory per entry of each contender, measured as resident-memory growth.
#[derive(Parser, Debug)]
#[command(name = "entry-bytes")]
struct Args {
    /// Entries inserted.
    #[arg(long, default_value_t = 1_000_000)]
    entries: u64,
    /// Measure one contender in this process (what the parent runs in each child).
    #[arg(long, value_enum)]
    map: Option<Contender>,
    /// Results file.
    #[arg(long, default_value = "target/bench/entry-bytes.json")]
    out: PathBuf,
}

#[derive(Clone, Copy, Debug, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Contender {
    Sharded,
    Rcu,
    Dashmap,
    Scc,
    Papaya,
}

const ALL: [Contender; 5] = [
    Contender::Sharded,
    Contender::Rcu,
    Contender::Dashmap,
    Contender::Scc,
    Contender::Papaya,
];

fn grow<M: Concurrent>(entries: u64) -> u64 {
    let before = resident();
    let map = M::with_capacity(0);
    let mut handle = map.handle();
    for i in 0..entries {
        handle.insert(i.wrapping_mul(0x9E37_79B9_7F4A_7C15), i);
    }
    let grown = resident() - before;
    drop(handle);
    std::hint::black_box(&map);
    grown
}

#[derive(Serialize)]
struct Row {
    map: Contender,
    entries: u64,
    resident_bytes: u64,
    bytes_per_entry: f64,
}

fn main() {
    let args = Args::parse();
    if let Some(map) = args.map {
        let grown = match map {
            Contender::Sharded => grow::<Guarded<ShardedStats, Fast>>(args.entries),
            Contender::Rcu => grow::<Guarded<RcuStats, Fast>>(args.entries),
            Contender::Dashmap => grow::<Dash<Fast>>(args.entries),
            Contender::Scc => grow::<SccMap<Fast>>(args.entries),
            Contender::Papaya => grow::<Papaya<Fast>>(args.entries),
        };
        println!("{grown}");
        return;
    }
    let me = std::env::current_exe().expect("the running binary's path");
    println!("{:<10} {:>12} {:>14}", "map", "entries", "bytes/entry");
    let mut rows = Vec::new();
    for map in ALL {
        let name = map.to_possible_value().expect("no skipped variants");
        let output = Command::new(&me)
            .args(["--map", name.get_name(), "--entries"])
            .arg(args.entries.to_string())
            .output()
            .expect("the child runs");
        assert!(output.status.success(), "{name:?} failed: {output:?}");
        let grown: u64 = String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .expect("the child prints the bytes it grew by");
        let per = grown as f64 / args.entries as f64;
        println!("{:<10} {:>12} {:>14.1}", name.get_name(), args.entries, per);
        rows.push(Row {
            map,
            entries: args.entries,
            resident_bytes: grown,
            bytes_per_entry: per,
        });
    }
    if let Some(dir) = args.out.parent() {
        fs::create_dir_all(dir).expect("the results directory can be made");
    }
    let json = serde_json::to_string_pretty(&rows).expect("rows serialize");
    fs::write(&args.out, json).expect("the results file can be written");
    println!("written: {}", args.out.display());
}
