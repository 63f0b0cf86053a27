//! `guarded-map-bench`: runs the comparison, prints the table and writes the results file.

use std::path::PathBuf;
use std::process::ExitCode;

use guarded_map_bench::contenders::Hashers;
use guarded_map_bench::machine::Machine;
use guarded_map_bench::results::Report;
use guarded_map_bench::run::{self, Plan};
use guarded_map_bench::table;
use guarded_map_bench::workload::Workload;

const USAGE: &str = "\
usage: guarded-map-bench [options]
  --capacity-log2 N   map capacity 2^N entries, 8..=28 (default 18); prefill and operation counts follow it
  --rounds N          runs per contender and job, the best counts (default 3)
  --threads LIST      thread counts, e.g. 1,2 (default: powers of two up to the core count, and the core count)
  --workloads LIST    of ReadHeavy, Exchange, RapidGrow, PureRead, HotKey (default: all)
  --hashers H         same | default | both (default both)
  --only LIST         only contenders whose name contains one of these, e.g. guarded-map,dashmap
  --quick             capacity 2^14 and one round: a check that everything runs, in seconds
  --out FILE          results file (default target/bench/compare.json; Markdown tables beside it, .md)";

struct Args {
    plan: Plan,
    out: PathBuf,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut plan = Plan {
        workloads: Workload::ALL.to_vec(),
        threads: Plan::default_threads(),
        hashers: vec![Hashers::Same, Hashers::Default],
        capacity_log2: 18,
        rounds: 3,
        only: Vec::new(),
    };
    let mut out = PathBuf::from("target/bench/compare.json");
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Ok(None);
        }
        if flag == "--quick" {
            plan.capacity_log2 = 14;
            plan.rounds = 1;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |what: &str, min: usize, max: usize| -> Result<usize, String> {
            value
                .parse::<usize>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| format!("{what}: `{value}` is not a whole number in {min}..={max}"))
        };
        match flag.as_str() {
            "--capacity-log2" => plan.capacity_log2 = number("--capacity-log2", 8, 28)? as u8,
            "--rounds" => plan.rounds = number("--rounds", 1, 100)?,
            "--threads" => {
                plan.threads = list(&value)
                    .map(|t| t.parse::<usize>().ok().filter(|&t| (1..=1024).contains(&t)))
                    .collect::<Option<_>>()
                    .ok_or_else(|| {
                        format!("--threads: `{value}` is not a list of counts in 1..=1024")
                    })?;
            }
            "--workloads" => {
                plan.workloads = list(&value).map(str::parse).collect::<Result<_, _>>()?
            }
            "--hashers" => {
                plan.hashers = match value.as_str() {
                    "same" => vec![Hashers::Same],
                    "default" => vec![Hashers::Default],
                    "both" => vec![Hashers::Same, Hashers::Default],
                    _ => {
                        return Err(format!(
                            "--hashers: `{value}` is not one of same, default, both"
                        ));
                    }
                }
            }
            "--only" => plan.only = list(&value).map(str::to_owned).collect(),
            "--out" => out = PathBuf::from(value),
            _ => return Err(format!("unknown option `{flag}`")),
        }
    }
    if plan.threads.is_empty() || plan.workloads.is_empty() {
        return Err("--threads and --workloads need at least one entry".into());
    }
    Ok(Some(Args { plan, out }))
}

fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("guarded-map-bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if cfg!(debug_assertions) {
        eprintln!(
            "guarded-map-bench: warning: an unoptimized build; run with --release for figures"
        );
    }
    let machine = Machine::current();
    let cells = run::execute(&args.plan, |step| eprintln!("  {step}"));
    let report = Report::new(machine, &args.plan, &cells);
    print!("{}", table::render(&report));
    let markdown = args.out.with_extension("md");
    match report
        .write(&args.out)
        .and_then(|()| std::fs::write(&markdown, table::markdown(&report)))
    {
        Ok(()) => {
            println!(
                "\nresults: {} (tables for BENCHMARKS.md: {})",
                args.out.display(),
                markdown.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "guarded-map-bench: cannot write {}: {e}",
                args.out.display()
            );
            ExitCode::FAILURE
        }
    }
}
