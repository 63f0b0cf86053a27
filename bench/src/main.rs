//! `guarded-map-bench`: runs the comparison, prints the table and writes the results file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

use guarded_map_bench::contenders::Hashers;
use guarded_map_bench::machine::Machine;
use guarded_map_bench::results::Report;
use guarded_map_bench::run::{self, Plan};
use guarded_map_bench::table;
use guarded_map_bench::workload::Workload;

/// guarded-map against dashmap, papaya, scc, arc-swap and `RwLock<HashMap>` on the
/// conc-map-bench workloads: prints the table and writes the results file.
#[derive(Parser, Debug)]
#[command(name = "guarded-map-bench")]
struct Cli {
    /// Map capacity 2^N entries; prefill and operation counts follow it.
    #[arg(long, value_name = "N", default_value_t = 18, value_parser = clap::value_parser!(u8).range(8..=28))]
    capacity_log2: u8,
    /// Runs per contender and job; the best counts.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=100))]
    rounds: u16,
    /// Thread counts, e.g. 1,2 [default: powers of two up to the core count, and the core count].
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Vec<u16>,
    /// Workloads, of ReadHeavy, Exchange, RapidGrow, PureRead, HotKey [default: all].
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    workloads: Vec<Workload>,
    /// Which hashers the contenders get.
    #[arg(long, value_enum, default_value_t = HasherChoice::Both)]
    hashers: HasherChoice,
    /// Only contenders whose name contains one of these, e.g. guarded-map,dashmap.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    only: Vec<String>,
    /// Capacity 2^14 and one round: a check that everything runs, in seconds.
    #[arg(long)]
    quick: bool,
    /// Results file (Markdown tables beside it, .md).
    #[arg(long, value_name = "FILE", default_value = "target/bench/compare.json")]
    out: PathBuf,
}

/// `--hashers`.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum HasherChoice {
    /// foldhash for all: the maps themselves are compared.
    Same,
    /// Each crate's default, as a user who changes nothing gets it.
    Default,
    /// Both settings, one after the other.
    Both,
}

impl Cli {
    fn plan(&self) -> Plan {
        let (capacity_log2, rounds) = if self.quick {
            (14, 1)
        } else {
            (self.capacity_log2, usize::from(self.rounds))
        };
        Plan {
            workloads: if self.workloads.is_empty() {
                Workload::ALL.to_vec()
            } else {
                self.workloads.clone()
            },
            threads: if self.threads.is_empty() {
                Plan::default_threads()
            } else {
                self.threads.iter().map(|&t| usize::from(t)).collect()
            },
            hashers: match self.hashers {
                HasherChoice::Same => vec![Hashers::Same],
                HasherChoice::Default => vec![Hashers::Default],
                HasherChoice::Both => vec![Hashers::Same, Hashers::Default],
            },
            capacity_log2,
            rounds,
            only: self.only.clone(),
        }
    }
}

struct Args {
    plan: Plan,
    out: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = Args {
        plan: cli.plan(),
        out: cli.out,
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
