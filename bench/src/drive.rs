//! Runs one job against one contender and measures it.
//!
//! The conc-map-bench workloads go through `bustle` (which checks every result against the
//! sequence of keys it inserted and removed). The pure-read and hot-key workloads are driven here,
//! with the same shape (keys made before the clock starts, all threads released by one barrier,
//! the clock stopped when the last thread is done) and their own checks: every lookup must hit,
//! and the values must sum to exactly the increments performed. `bustle` panics when a check
//! fails; these two report the violation beside the figure, so that a map that answers wrongly
//! under concurrency is named, with how often, instead of aborting the whole suite.

use std::hint::black_box;
use std::sync::Barrier;

use std::thread;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};

use crate::adapter::{Bustled, Concurrent, Map, Read, Write};
use crate::clock::MixClock;
use crate::workload::{Job, Workload};

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Operations performed by all threads.
    pub operations: u64,
    /// Wall time from the release of the threads to the end of the last.
    pub elapsed: Duration,
    /// A result check that failed: the map answered wrongly (the figure is then suspect).
    pub violation: Option<String>,
}

impl Measurement {
    /// Millions of operations per second.
    pub fn mops(&self) -> f64 {
        self.operations as f64 / self.elapsed.as_secs_f64() / 1e6
    }
}

/// Runs any workload on a concurrent map.
pub fn concurrent<M: Concurrent>(job: &Job) -> Measurement {
    match job.workload.bustle_mix() {
        Some(mix) => {
            let mut workload = bustle::Workload::new(job.threads, mix);
            workload
                .initial_capacity_log2(job.capacity_log2)
                .prefill_fraction(job.workload.prefill())
                .operations(job.workload.operations())
                .seed(seed_bytes(job.seed));
            let per_thread = (job.operations() / job.threads) as u64;
            let (m, mixed) = MixClock::time(job.threads, per_thread, || {
                workload.run_silently::<Bustled<M>>()
            });
            Measurement {
                operations: m.total_ops,
                elapsed: mixed.expect("every mixed-phase worker of bustle completed its share"),
                violation: None,
            }
        }
        None if job.workload == Workload::HotKey => hot_key::<M>(job),
        None => pure_read::<M>(job),
    }
}

/// The keys of the pure-read and hot-key workloads: `key(i)` for `i` in `0..n`, distinct (an odd
/// multiplier is a bijection on `u64`) and scattered, computed rather than stored so that drawing
/// a key costs no memory access of its own.
#[inline(always)]
pub fn key(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5851_F42D_4C95_7F2D
}

fn keys(n: usize) -> Vec<u64> {
    (0..n as u64).map(key).collect()
}

/// Lookups only, of present keys drawn uniformly; every lookup must hit.
pub fn pure_read<M: Map>(job: &Job) -> Measurement {
    let n = job.prefilled() as u64;
    let map = M::load(&keys(n as usize));
    let per_thread = job.operations() / job.threads;
    let (elapsed, hits) = timed(job.threads, |t, release| {
        let mut handle = map.handle();
        let mut x = job.seed ^ (t as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03) | 1;
        let mut hits = 0u64;
        release();
        for _ in 0..per_thread {
            x = xorshift(x);
            // Multiply-shift onto 0..n: no division in the loop.
            let i = ((u128::from(x) * u128::from(n)) >> 64) as u64;
            hits += u64::from(handle.get(key(i)).is_some());
        }
        black_box(hits)
    });
    let operations = (per_thread * job.threads) as u64;
    Measurement {
        operations,
        elapsed,
        violation: (hits != operations).then(|| {
            format!(
                "{} of {operations} lookups of present keys missed",
                operations - hits
            )
        }),
    }
}

/// Operation codes of the hot-key workload: the key's rank in the low 31 bits, and the top bit
/// set for an increment.
const WRITE: u32 = 1 << 31;

/// 90 % lookups and 10 % increments of Zipf-ranked keys (rank 1 is the hottest). The draws are
/// made before the clock starts (a Zipf draw costs more than a lookup). Afterwards every value must
/// exceed its key by exactly the increments it received: a lost update fails the run.
pub fn hot_key<M: Map<Handle: Write>>(job: &Job) -> Measurement {
    let n = job.prefilled();
    assert!(
        n < WRITE as usize,
        "hot key: too many keys for the operation encoding"
    );
    let map = M::load(&keys(n));
    let per_thread = job.operations() / job.threads;
    let plans: Vec<Vec<u32>> = (0..job.threads)
        .map(|t| {
            let mut rng = SmallRng::seed_from_u64(job.seed ^ t as u64);
            let zipf = Zipf::new(n as u64, 1.0).expect("n > 0 and exponent 1 are valid");
            (0..per_thread)
                .map(|_| {
                    let rank = zipf.sample(&mut rng) as u32 - 1;
                    if rng.gen_ratio(1, 10) {
                        rank | WRITE
                    } else {
                        rank
                    }
                })
                .collect()
        })
        .collect();
    let (elapsed, misses) = timed(job.threads, |t, release| {
        let mut handle = map.handle();
        let plan = &plans[t];
        let mut misses = 0u64;
        release();
        for &op in plan {
            let k = key(u64::from(op & !WRITE));
            let found = if op & WRITE == 0 {
                handle.get(k).is_some()
            } else {
                handle.increment(k)
            };
            misses += u64::from(!found);
        }
        misses
    });
    let operations = (per_thread * job.threads) as u64;
    let increments: u64 = plans
        .iter()
        .flatten()
        .map(|&op| u64::from(op & WRITE != 0))
        .sum();
    let mut handle = map.handle();
    let (mut added, mut vanished) = (0u64, 0u64);
    for i in 0..n as u64 {
        match handle.get(key(i)) {
            Some(value) => added += value.wrapping_sub(key(i)),
            None => vanished += 1,
        }
    }
    let mut violations = Vec::new();
    if misses > 0 {
        violations.push(format!(
            "{misses} of {operations} operations on present keys missed them"
        ));
    }
    if vanished > 0 {
        violations.push(format!("{vanished} keys missing afterwards"));
    }
    if added != increments {
        violations.push(format!(
            "values grew by {added}, increments performed {increments}"
        ));
    }
    Measurement {
        operations,
        elapsed,
        violation: (!violations.is_empty()).then(|| violations.join("; ")),
    }
}

/// Runs `work(thread, release)` on `threads` threads; each calls `release` when ready. Each
/// worker notes when the barrier released it and when it finished, and the run lasts from the first
/// release to the last finish: a clock on the spawning thread would also count the time it waits to
/// be scheduled again after the barrier, when the workers already occupy every core.
/// Returns the elapsed time and the sum of what the threads returned.
fn timed<F>(threads: usize, work: F) -> (Duration, u64)
where
    F: Fn(usize, &dyn Fn()) -> u64 + Sync,
{
    let barrier = Barrier::new(threads);
    thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (work, barrier) = (&work, &barrier);
                s.spawn(move || {
                    let start = std::cell::Cell::new(None);
                    let release = || {
                        barrier.wait();
                        start.set(Some(Instant::now()));
                    };
                    let total = work(t, &release);
                    (
                        start.get().expect("the worker passed the barrier"),
                        Instant::now(),
                        total,
                    )
                })
            })
            .collect();
        let runs: Vec<_> = workers
            .into_iter()
            .map(|w| w.join().expect("a worker thread panicked"))
            .collect();
        let first = runs.iter().map(|r| r.0).min().expect("at least one thread");
        let last = runs.iter().map(|r| r.1).max().expect("at least one thread");
        (last - first, runs.iter().map(|r| r.2).sum())
    })
}

#[inline(always)]
fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(
            &(seed ^ i as u64)
                .wrapping_mul(0x2545_F491_4F6C_DD1D)
                .to_le_bytes(),
        );
    }
    bytes
}
