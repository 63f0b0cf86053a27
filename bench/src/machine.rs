//! What the figures were measured on: they mean little without it.

use std::fs;

use serde::Serialize;

/// The machine, the compiler and the versions of the contenders.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// The CPU model, as the kernel names it.
    pub cpu: String,
    /// Cores available to this process.
    pub cores: usize,
    /// The kernel release.
    pub kernel: String,
    /// The compiler that built the benchmark.
    pub rustc: &'static str,
    /// The time of the run (UTC, RFC 3339).
    pub date: String,
    /// `crate=version` of each contender, as Cargo.lock resolved them.
    pub versions: Vec<&'static str>,
}

impl Machine {
    /// Reads this machine.
    pub fn current() -> Self {
        let cpu = fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, model)| model.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".into(), |r| r.trim().to_owned());
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel,
            rustc: env!("BENCH_RUSTC_VERSION"),
            date: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            versions: env!("BENCH_CRATE_VERSIONS").split(',').collect(),
        }
    }
}

/// Resident memory of this process, in bytes (`/proc/self/statm`, pages).
pub fn resident() -> u64 {
    let statm = fs::read_to_string("/proc/self/statm").expect("/proc/self/statm is readable");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .expect("statm's second field is the resident page count");
    pages * 4096
}
