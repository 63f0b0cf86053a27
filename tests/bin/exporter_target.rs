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
    let mut builder = Builder::new().listen("127.0.0.1:0");
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let Some(n) = args.next().and_then(|v| v.parse::<u64>().ok()) else {
            eprintln!("exporter-target: {flag} needs a number");
            return ExitCode::from(2);
        };
        builder = match flag.as_str() {
            "--max-connections" => builder.max_connections(n as usize),
            "--request-timeout-ms" => builder.request_timeout(Duration::from_millis(n)),
            "--idle-timeout-ms" => builder.idle_timeout(Duration::from_millis(n)),
            _ => {
                eprintln!("exporter-target: unknown flag {flag}");
                return ExitCode::from(2);
            }
        };
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
