//! Watch a running process's guarded maps, and its kernel BPF maps, from outside.
//!
//! A process built with guarded-map carries hooks (always compiled, one relaxed load per map
//! operation while nobody watches). [`Probe::attach`] loads the eBPF programs of
//! `guarded-map-ebpf`, attaches uprobes to those hooks (which raises the target's semaphore through
//! the kernel's uprobe reference counter), and traces the target's `bpf()` map commands through the
//! `syscalls:sys_enter_bpf` / `sys_exit_bpf` tracepoints. Each [`Probe::next_interval`] then returns
//! one [`Interval`]: per guarded map its exact totals, rates, entries, contention and what the
//! sampled operations say (wait p99, hot key fingerprints); per kernel map its lookups, updates,
//! deletes and batch commands with their latency; and which guarded map mirrors which kernel map
//! (`#[guarded(bpf_map = "...")]`).
//!
//! Needs `CAP_BPF`, `CAP_PERFMON` and `CAP_SYS_PTRACE` (or root); [`check`] says what is missing.
//! The `guarded-map-probe` command (`top`, `record`, `plot`, `check`, `pin`, `advise`) is built on
//! this crate. The kernel
//! programs are embedded when the crate is built with the feature `programs` (nightly with
//! `rust-src`, and `bpf-linker`); without it, [`Probe::attach`] returns [`ProbeError::NoPrograms`].
//!
//! ```no_run
//! use guarded_map_probe::{Options, Probe};
//!
//! let mut probe = Probe::attach(4242, Options::default())?;
//! for _ in 0..5 {
//!     let interval = probe.next_interval()?;
//!     for map in &interval.maps {
//!         println!("{}: {} gets", map.label, map.totals[0]);
//!     }
//! }
//! # Ok::<(), guarded_map_probe::ProbeError>(())
//! ```

pub mod advise;
mod error;
mod intervals;
mod kernel_maps;
pub mod mirror_programs;
mod object;
mod perf;
pub mod plot;
mod privileges;
pub mod render;
mod session;
mod target;

pub use error::ProbeError;
pub use guarded_map_probe_common::{ActiveBackend, OPS, Op, STATS, Stat, SwitchReason};
pub use intervals::{CommandCounts, Interval, KernelMapRow, MapRow, SwitchSeen};
pub use kernel_maps::KernelMap;
pub use privileges::Privileges;
pub use session::{Options, Probe};

/// What [`check`] found out about a process and about this one.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Check {
    /// The process.
    pub pid: u32,
    /// Its executable.
    pub exe: String,
    /// Its semaphore now: 0 while no probe is attached.
    pub semaphore: Option<u16>,
    /// This process's privileges.
    pub privileges: Privileges,
}

impl Check {
    /// What keeps this process from attaching, if anything.
    pub fn missing(&self) -> Option<String> {
        self.privileges.missing()
    }
}

/// Checks that process `pid` exists and has the hooks, and which privileges this process has.
///
/// # Errors
///
/// [`ProbeError::NoSuchProcess`] and [`ProbeError::NoHooks`]; missing privileges are reported in
/// the [`Check`], not as an error.
pub fn check(pid: u32) -> Result<Check, ProbeError> {
    let target = target::Target::open(pid)?;
    Ok(Check {
        pid,
        semaphore: target.semaphore().ok(),
        exe: target.exe,
        privileges: Privileges::current(),
    })
}

/// Asks process `pid` to hold its adaptive maps labelled `label` in the form `to`, or with `None`
/// to let their cost model decide again (`guarded-map-probe pin`). The request goes through the
/// target's memory, as the probe's configuration does, and needs the same privileges as
/// attaching; each map applies it at its next sample point (its next few hundred operations).
/// Returns the request's number.
///
/// # Errors
///
/// [`ProbeError::NoSuchProcess`], [`ProbeError::NoHooks`], [`ProbeError::Privileges`] (or
/// [`ProbeError::Io`] when the target's memory cannot be written), and
/// [`ProbeError::Unsupported`] for a target built before `pin` existed.
pub fn pin(pid: u32, label: &str, to: Option<ActiveBackend>) -> Result<u32, ProbeError> {
    target::Target::open(pid)?.write_pin(label, to)
}
