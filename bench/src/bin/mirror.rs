//! The kernel map mirror (`guarded_map::bpf::Mirror`): at `--entries` sizes, how many changes per
//! second an incremental mirror sustains and with what lag, against a full-sync mirror's listing
//! time and lag. Needs root and the eBPF programs (`--features guarded-map-probe/programs`).
//!
//! `--target` picks the guarded map the mirror writes into: `ordered` (the default) or `sharded`.
//! Per size: the kernel map `MIRRORED` is filled, then
//!
//! - **incremental, flat out**: one thread changes 64 random consecutive keys per call of
//!   `guarded_map_mirror_op` (the kernel program adds to each and writes its change record) as
//!   fast as it can, while the mirror applies them into the guarded map: changes made and
//!   applied per second, records lost (ring full), lag p50/p99, mirror CPU per change;
//! - **incremental, paced** at `--rate` changes per second: the lag when the mirror keeps up;
//! - **full sync**, continuously listing while the paced load runs: listing time, and the lag of
//!   a probe key set to the time of its change every millisecond, sampled when each listing ends.
//!
//! Prints a table and writes a JSON results file; asserts nothing.
//!
//! `cargo run --release -p guarded-map-bench --bin mirror --features guarded-map-probe/programs`
//! (as root)

use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use guarded_map::bpf::MirrorTarget;
use guarded_map::bpf::{Mirror, MirrorOptions, MirrorStats};
use guarded_map::{GuardedMap, OrderedMap, map_spec};
use guarded_map_probe::mirror_programs::{MirrorPrograms, guarded_map_mirror_op};
use guarded_map_probe_common::change::mirror_op;
use serde::Serialize;

map_spec!(Mirrored: BTreeMap<u32, u64>, ordered, name = "bench.mirror");
map_spec!(MirroredHash: HashMap<u32, u64>, sharded, name = "bench.mirror_hash");

/// The guarded map a mirror writes into.
#[derive(Clone, Copy, Debug, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum Target {
    /// An `OrderedMap` (`BTreeMap` field).
    Ordered,
    /// A `GuardedMap` on the `sharded` backend.
    Sharded,
}

/// The kernel map mirror: incremental against full sync.
#[derive(Parser, Debug)]
#[command(name = "mirror")]
struct Args {
    /// Kernel map sizes.
    #[arg(long, value_delimiter = ',', default_values_t = [10_000, 1_000_000])]
    entries: Vec<u32>,
    /// Seconds per phase.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Changes per second of the paced phases.
    #[arg(long, default_value_t = 100_000)]
    rate: u64,
    /// The guarded map the mirror writes into.
    #[arg(long, value_enum, default_value_t = Target::Ordered)]
    target: Target,
    /// Results file.
    #[arg(long, default_value = "target/bench/mirror.json")]
    out: PathBuf,
}

#[derive(Serialize, Debug, Default)]
struct Phase {
    entries: u32,
    phase: &'static str,
    made_per_second: f64,
    applied_per_second: f64,
    lost: u64,
    lag_p50_us: f64,
    lag_p99_us: f64,
    lag_max_us: f64,
    lag_samples: u64,
    cpu_ns_per_change: f64,
    listing_ms_median: f64,
    listing_ms_max: f64,
    listings: u64,
}

#[derive(Serialize)]
struct Results {
    target: Target,
    seconds: f64,
    rate: u64,
    phases: Vec<Phase>,
}

/// The key the full-sync phase stamps with the time of each of its changes.
const PROBE_KEY: u32 = u32::MAX - 1;

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mirror: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let seconds = Duration::from_secs_f64(args.seconds);
    let mut phases = Vec::new();
    for &entries in &args.entries {
        let entries = entries.max(64);
        let mut programs = MirrorPrograms::load()?;
        programs.attach_mirror_op()?;
        for first in (0..entries).step_by(64) {
            guarded_map_mirror_op(mirror_op::SET, first, 1, (entries - first).min(64));
        }
        match args.target {
            Target::Ordered => phases.extend(run_phases(
                &programs,
                entries,
                seconds,
                args.rate,
                OrderedMap::<u32, u64, Mirrored>::new,
            )?),
            Target::Sharded => phases.extend(run_phases(
                &programs,
                entries,
                seconds,
                args.rate,
                GuardedMap::<u32, u64, MirroredHash>::new,
            )?),
        }
    }
    print_table(&phases);
    let results = Results {
        target: args.target,
        seconds: args.seconds,
        rate: args.rate,
        phases,
    };
    if let Some(dir) = args.out.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(&args.out, serde_json::to_string_pretty(&results)?)?;
    println!("results: {}", args.out.display());
    Ok(())
}

/// Changes 64 consecutive keys from a random one per call, `rate` changes per second (`None`: as
/// fast as it can), until `stop`; returns the changes made.
fn generate(entries: u32, rate: Option<u64>, stop: &AtomicBool, stamp: bool) -> u64 {
    let started = Instant::now();
    let mut x = 0x9e37_79b9_u32;
    let mut made = 0u64;
    let mut last_stamp = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if let Some(rate) = rate {
            let due = started + Duration::from_secs_f64(made as f64 / rate as f64);
            while Instant::now() < due && !stop.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        }
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let first = x % (entries - 63);
        guarded_map_mirror_op(mirror_op::ADD, first, 1, 64);
        made += 64;
        if stamp && last_stamp.elapsed() >= Duration::from_millis(1) {
            guarded_map_mirror_op(mirror_op::SET, PROBE_KEY, monotonic_ns(), 1);
            last_stamp = Instant::now();
        }
    }
    made
}

/// The three phases, each with a new, empty guarded map from `make`.
fn run_phases<T: MirrorTarget<u32, u64> + Sync>(
    programs: &MirrorPrograms,
    entries: u32,
    seconds: Duration,
    rate: u64,
    make: fn() -> T,
) -> Result<Vec<Phase>, Box<dyn std::error::Error>> {
    Ok(vec![
        incremental(programs, &make(), entries, seconds, None)?,
        incremental(programs, &make(), entries, seconds, Some(rate))?,
        full_sync(programs, &make(), entries, seconds, rate)?,
    ])
}

fn incremental<T: MirrorTarget<u32, u64> + Sync>(
    programs: &MirrorPrograms,
    map: &T,
    entries: u32,
    seconds: Duration,
    rate: Option<u64>,
) -> Result<Phase, Box<dyn std::error::Error>> {
    let kernel = programs.mirrored()?;
    let options = MirrorOptions::default().reconcile_every(Duration::ZERO);
    let mut mirror =
        Mirror::incremental_with(kernel.map, kernel.changes, kernel.counters, map, options)?;
    let before = mirror.stats();
    let stop = AtomicBool::new(false);
    let made = AtomicU64::new(0);
    let cpu_before = thread_cpu_ns();
    let started = Instant::now();
    thread::scope(|s| -> Result<(), std::io::Error> {
        s.spawn(|| made.store(generate(entries, rate, &stop, false), Ordering::Relaxed));
        while started.elapsed() < seconds {
            mirror.poll(Duration::from_millis(1))?;
        }
        stop.store(true, Ordering::Relaxed);
        Ok(())
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    let applied_in_time = mirror.stats().changes - before.changes;
    let cpu = thread_cpu_ns() - cpu_before;
    // Apply what is still queued, so the lag figures include the tail.
    let mut quiet = 0;
    while quiet < 2 {
        quiet = if mirror.poll(Duration::from_millis(5))? == 0 {
            quiet + 1
        } else {
            0
        };
    }
    let after = mirror.stats();
    Ok(Phase {
        entries,
        phase: if rate.is_some() {
            "incremental, paced"
        } else {
            "incremental, flat out"
        },
        made_per_second: made.load(Ordering::Relaxed) as f64 / elapsed,
        applied_per_second: applied_in_time as f64 / elapsed,
        lost: after.lost,
        lag_p50_us: micros(after.lag.p50),
        lag_p99_us: micros(after.lag.p99),
        lag_max_us: micros(after.lag.max),
        lag_samples: after.lag.count,
        cpu_ns_per_change: cpu as f64 / applied_in_time.max(1) as f64,
        listing_ms_median: millis(before.last_sync),
        listing_ms_max: millis(before.last_sync),
        listings: 1,
    })
}

fn full_sync<T: MirrorTarget<u32, u64> + Sync>(
    programs: &MirrorPrograms,
    map: &T,
    entries: u32,
    seconds: Duration,
    rate: u64,
) -> Result<Phase, Box<dyn std::error::Error>> {
    let kernel = programs.mirrored()?.map;
    // Listing continuously: each poll is one listing.
    let options = MirrorOptions::default().every(Duration::ZERO).chunk(1024);
    let mut mirror = Mirror::full_with(kernel, map, options)?;
    let stop = AtomicBool::new(false);
    let made = AtomicU64::new(0);
    let mut listings = Vec::new();
    let mut lags = Vec::new();
    let mut seen_stamp = map.value(&PROBE_KEY);
    let before: MirrorStats = mirror.stats();
    let cpu_before = thread_cpu_ns();
    let started = Instant::now();
    thread::scope(|s| -> Result<(), std::io::Error> {
        s.spawn(|| {
            made.store(
                generate(entries, Some(rate), &stop, true),
                Ordering::Relaxed,
            )
        });
        while started.elapsed() < seconds {
            mirror.poll(Duration::from_millis(1))?;
            let now = monotonic_ns();
            listings.push(mirror.stats().last_sync);
            let stamp = map.value(&PROBE_KEY);
            if let Some(t) = stamp.filter(|_| stamp != seen_stamp) {
                lags.push(Duration::from_nanos(now.saturating_sub(t)));
            }
            seen_stamp = stamp;
        }
        stop.store(true, Ordering::Relaxed);
        Ok(())
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    let applied = mirror.stats().changes - before.changes;
    let cpu = thread_cpu_ns() - cpu_before;
    listings.sort_unstable();
    lags.sort_unstable();
    let at = |v: &[Duration], q: f64| {
        v.get(((v.len() as f64 * q) as usize).min(v.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Ok(Phase {
        entries,
        phase: "full sync, paced",
        made_per_second: made.load(Ordering::Relaxed) as f64 / elapsed,
        applied_per_second: applied as f64 / elapsed,
        lost: 0,
        lag_p50_us: micros(at(&lags, 0.5)),
        lag_p99_us: micros(at(&lags, 0.99)),
        lag_max_us: micros(lags.last().copied().unwrap_or_default()),
        lag_samples: lags.len() as u64,
        cpu_ns_per_change: cpu as f64 / applied.max(1) as f64,
        listing_ms_median: millis(at(&listings, 0.5)),
        listing_ms_max: millis(listings.last().copied().unwrap_or_default()),
        listings: listings.len() as u64,
    })
}

fn print_table(phases: &[Phase]) {
    println!(
        "{:>9}  {:<22} {:>10} {:>10} {:>8} {:>10} {:>10} {:>10} {:>9} {:>11} {:>9}",
        "entries",
        "mode",
        "made/s",
        "applied/s",
        "lost",
        "lag p50",
        "lag p99",
        "lag max",
        "samples",
        "listing ms",
        "cpu ns/ch"
    );
    for p in phases {
        println!(
            "{:>9}  {:<22} {:>10.0} {:>10.0} {:>8} {:>8.1}us {:>8.1}us {:>8.1}us {:>9} {:>11.2} {:>9.0}",
            p.entries,
            p.phase,
            p.made_per_second,
            p.applied_per_second,
            p.lost,
            p.lag_p50_us,
            p.lag_p99_us,
            p.lag_max_us,
            p.lag_samples,
            p.listing_ms_median,
            p.cpu_ns_per_change
        );
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `CLOCK_MONOTONIC` in ns: the clock of the kernel's timestamps.
fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// CPU time of the calling thread, in ns.
fn thread_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid `timespec` to fill.
    unsafe { libc::clock_gettime(clock, &raw mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
