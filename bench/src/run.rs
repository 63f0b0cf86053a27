//! The run plan and its execution: every contender on every job, interleaved round by round so
//! that a slow patch of the shared machine hits all contenders of a job alike.

use serde::Serialize;

use crate::contenders::{self, Contender, Hashers, Kind};
use crate::workload::{Job, Workload};

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Workloads, in order.
    pub workloads: Vec<Workload>,
    /// Thread counts.
    pub threads: Vec<usize>,
    /// Hasher settings.
    pub hashers: Vec<Hashers>,
    /// Capacity of the maps, as a power of two.
    pub capacity_log2: u8,
    /// Runs per contender and job; the best counts (noise only ever slows a run down).
    pub rounds: usize,
    /// Only the contenders whose name contains one of these (all when empty).
    pub only: Vec<String>,
}

impl Plan {
    /// The thread counts for this machine: powers of two up to the core count, and the core count.
    pub fn default_threads() -> Vec<usize> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut threads: Vec<usize> =
            std::iter::successors(Some(1), |&t| (t * 2 <= cores).then_some(t * 2)).collect();
        if threads.last() != Some(&cores) {
            threads.push(cores);
        }
        threads
    }

    fn contenders(&self, hashers: Hashers) -> Vec<Contender> {
        contenders::all(hashers)
            .into_iter()
            .filter(|c| {
                self.only.is_empty() || self.only.iter().any(|o| c.name.contains(o.as_str()))
            })
            .collect()
    }
}

/// The outcome of one contender on one job.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// The workload.
    pub workload: Workload,
    /// The hasher setting.
    pub hashers: Hashers,
    /// Worker threads.
    pub threads: usize,
    /// The contender's name.
    pub contender: &'static str,
    /// The contender's hasher.
    pub hasher: &'static str,
    /// The contender's kind.
    pub kind: Kind,
    /// Mops/s of each round, or why it was not run or failed (written out by [`crate::results`]).
    #[serde(skip)]
    pub outcome: Result<Vec<f64>, String>,
    /// A result check that failed in some round, with the figures of that round.
    pub violation: Option<String>,
}

impl Cell {
    /// The best round's Mops/s, if it ran.
    pub fn best(&self) -> Option<f64> {
        self.outcome
            .as_ref()
            .ok()
            .map(|r| r.iter().copied().fold(f64::NAN, f64::max))
    }
}

/// Runs the plan, telling `progress` what starts; returns one cell per contender and job.
pub fn execute(plan: &Plan, mut progress: impl FnMut(&str)) -> Vec<Cell> {
    let mut cells = Vec::new();
    for &hashers in &plan.hashers {
        let contenders = plan.contenders(hashers);
        for &workload in &plan.workloads {
            for &threads in &plan.threads {
                let job = |round: usize| Job {
                    workload,
                    threads,
                    capacity_log2: plan.capacity_log2,
                    seed: 0x6A09_E667_F3BC_C908 ^ round as u64,
                };
                let start = cells.len();
                for c in &contenders {
                    cells.push(Cell {
                        workload,
                        hashers,
                        threads,
                        contender: c.name,
                        hasher: c.hasher,
                        kind: c.kind,
                        outcome: c.admits(&job(0)).map(|()| Vec::new()),
                        violation: None,
                    });
                }
                for round in 0..plan.rounds {
                    progress(&format!(
                        "{workload} · {} · {threads} thread(s) · round {}/{}",
                        hashers.name(),
                        round + 1,
                        plan.rounds
                    ));
                    for (c, cell) in contenders.iter().zip(&mut cells[start..]) {
                        let Ok(rounds) = &mut cell.outcome else {
                            continue;
                        };
                        match c.run(&job(round)) {
                            Ok(m) => {
                                rounds.push(m.mops());
                                if let Some(v) = m.violation {
                                    cell.violation
                                        .get_or_insert(format!("round {}: {v}", round + 1));
                                }
                            }
                            Err(e) => cell.outcome = Err(e),
                        }
                    }
                }
            }
        }
    }
    cells
}
