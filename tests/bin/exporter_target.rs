//! A process that serves guarded-map's Prometheus endpoint, for the exporter's attack tests: they
//! read its threads, file descriptors and memory from `/proc` while they attack it.
//!
//! `exporter-target [--max-connections N] [--request-timeout-ms N] [--idle-timeout-ms N]`
//!
//! Prints `listening IP:PORT`, then reads commands on standard input: `shutdown` stops the
//! exporter and prints `stopped in N us`; the end of input exits. The exporter's log goes to
//! standard error.

use std::collections::HashMap;
use std::io::BufRead;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use guarded_map::guarded_map;
use guarded_map::prometheus::Builder;

#[guarded_map]
#[derive(Default)]
struct Target {
    #[guarded(rcu, name = "target.routes")]
    routes: HashMap<u32, u32>,
    #[guarded(sharded, name = "target.sessions")]
    sessions: HashMap<u64, u64>,
}

/// Serves guarded-map's Prometheus endpoint on a free loopback port, for the attack tests.
#[derive(Parser, Debug)]
#[command(name = "exporter-target")]
struct Args {
    /// The exporter's connection cap (default: the Builder's).
    #[arg(long)]
    max_connections: Option<usize>,
    /// The exporter's request timeout, in milliseconds.
    #[arg(long)]
    request_timeout_ms: Option<u64>,
    /// The exporter's idle timeout, in milliseconds.
    #[arg(long)]
    idle_timeout_ms: Option<u64>,
}

/// Prints the exporter's log lines on standard error, where the tests read them.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        eprintln!("{} {}", record.level(), record.args());
    }

    fn flush(&self) {}
}

fn main() -> ExitCode {
    log::set_logger(&StderrLog).expect("the only logger");
    log::set_max_level(log::LevelFilter::Info);
    let args = Args::parse();
    let mut builder = Builder::new().listen("127.0.0.1:0");
    if let Some(max) = args.max_connections {
        builder = builder.max_connections(max);
    }
    if let Some(ms) = args.request_timeout_ms {
        builder = builder.request_timeout(Duration::from_millis(ms));
    }
    if let Some(ms) = args.idle_timeout_ms {
        builder = builder.idle_timeout(Duration::from_millis(ms));
    }
    let exporter = match builder.install() {
        Ok(exporter) => exporter,
        Err(e) => {
            eprintln!("exporter-target: {e}");
            return ExitCode::from(2);
        }
    };
    let state = Target::default();
    for i in 0..100 {
        state.routes.insert(i, i);
        state.sessions.insert(u64::from(i), 0);
        state.sessions.get_cloned(&u64::from(i));
    }
    println!("listening {}", exporter.local_addr());
    for line in std::io::stdin().lock().lines() {
        match line.as_deref().map(str::trim) {
            Ok("shutdown") => {
                let start = Instant::now();
                exporter.shutdown();
                println!("stopped in {} us", start.elapsed().as_micros());
                return ExitCode::SUCCESS;
            }
            Ok(other) => eprintln!("exporter-target: unknown command {other:?}"),
            Err(_) => break,
        }
    }
    ExitCode::SUCCESS
}
