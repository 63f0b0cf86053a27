//! The results: rows with their ratios, the cost of the statistics, the goals of the suite, and the
//! file they are written to.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::path::Path;
use std::{fs, io};

use serde::Serialize;

use crate::contenders::{DASHMAP, Hashers, LIMIT, RCU, RCU_BARE, SHARDED, SHARDED_BARE};
use crate::machine::Machine;
use crate::run::{Cell, Plan};
use crate::workload::Workload;

/// One contender on one job: the cell of the run with its figures and ratios.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// What ran, and any wrong results it gave.
    #[serde(flatten)]
    pub cell: Cell,
    /// Best Mops/s over the rounds (absent when not run).
    pub mops: Option<f64>,
    /// Mops/s of every round.
    pub rounds: Vec<f64>,
    /// `mops` over dashmap's on the same job.
    pub vs_dashmap: Option<f64>,
    /// `mops` over the unsynchronized limit's on the same job (read-only workloads).
    pub vs_limit: Option<f64>,
    /// Why it was not run, or how it failed.
    pub not_run: Option<String>,
}

impl Deref for Row {
    type Target = Cell;

    fn deref(&self) -> &Cell {
        &self.cell
    }
}

/// What the statistics cost one of guarded-map's backends on one job.
#[derive(Debug, Clone, Serialize)]
pub struct StatsCost {
    /// The workload.
    pub workload: Workload,
    /// The hasher setting.
    pub hashers: Hashers,
    /// Worker threads.
    pub threads: usize,
    /// `Rcu` or `Sharded`.
    pub backend: &'static str,
    /// `1 - on / off` of the two maps' best rounds, in percent (negative: the instrumented map
    /// was the faster).
    pub percent: f64,
    /// The median over rounds of each round's `1 - on / off`, in percent. The two maps of a round
    /// run one after the other on maps built for that round, so a slow patch of the machine or a
    /// lucky placement of one map in memory weighs on one round's ratio, not on the figure; the
    /// goal is judged on this one.
    pub paired_percent: f64,
}

/// One goal of the suite and how far this run is from it.
#[derive(Debug, Clone, Serialize)]
pub struct Goal {
    /// The goal, in words.
    pub goal: String,
    /// The figures that decide it.
    pub measured: String,
    /// Whether every figure met it.
    pub met: bool,
}

/// The whole results file.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Where and when.
    pub machine: Machine,
    /// The parameters of the run.
    pub capacity_log2: u8,
    /// Rounds per contender and job.
    pub rounds: usize,
    /// Every contender on every job.
    pub rows: Vec<Row>,
    /// The statistics cost of each backend on each job.
    pub stats_cost: Vec<StatsCost>,
    /// The suite's goals.
    pub goals: Vec<Goal>,
}

type JobKey = (Workload, Hashers, usize);

impl Report {
    /// Computes ratios, statistics cost and goals from the cells of a run.
    pub fn new(machine: Machine, plan: &Plan, cells: &[Cell]) -> Self {
        let mut by_job: BTreeMap<JobKey, BTreeMap<&str, f64>> = BTreeMap::new();
        let index = |c: &Cell| (c.workload, c.hashers, c.threads);
        for cell in cells {
            if let Some(best) = cell.best() {
                by_job
                    .entry(index(cell))
                    .or_default()
                    .insert(cell.contender, best);
            }
        }
        let rows = cells
            .iter()
            .map(|cell| {
                let job = &by_job.get(&index(cell));
                let ratio = |to: &str| Some(cell.best()? / *job.as_ref()?.get(to)?);
                Row {
                    cell: cell.clone(),
                    mops: cell.best(),
                    rounds: cell.outcome.clone().unwrap_or_default(),
                    vs_dashmap: ratio(DASHMAP),
                    vs_limit: ratio(LIMIT),
                    not_run: cell.outcome.clone().err(),
                }
            })
            .collect::<Vec<_>>();
        let stats_cost = stats_cost(&rows);
        let goals = goals(&rows, &stats_cost);
        Report {
            machine,
            capacity_log2: plan.capacity_log2,
            rounds: plan.rounds,
            rows,
            stats_cost,
            goals,
        }
    }

    /// Writes the report as pretty JSON, creating the directory.
    pub fn write(&self, path: &Path) -> io::Result<()> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let json = serde_json::to_string_pretty(self).map_err(io::Error::other)?;
        fs::write(path, json + "\n")
    }
}

fn row_of<'a>(rows: &'a [Row], key: JobKey, contender: &str) -> Option<&'a Row> {
    rows.iter()
        .find(|r| (r.workload, r.hashers, r.threads) == key && r.contender == contender)
}

/// The median of `1 - on / off` over the rounds both ran, in percent (NaN when none).
fn paired_cost(on: &[f64], off: &[f64]) -> f64 {
    median(
        on.iter()
            .zip(off)
            .map(|(on, off)| (1.0 - on / off) * 100.0)
            .collect(),
    )
}

/// The median of `v` (NaN when empty).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn stats_cost(rows: &[Row]) -> Vec<StatsCost> {
    let mut out = Vec::new();
    for row in rows
        .iter()
        .filter(|r| r.contender == RCU || r.contender == SHARDED)
    {
        let key = (row.workload, row.hashers, row.threads);
        let (backend, bare) = if row.contender == RCU {
            ("Rcu", RCU_BARE)
        } else {
            ("Sharded", SHARDED_BARE)
        };
        let Some(bare) = row_of(rows, key, bare) else {
            continue;
        };
        if let (Some(on), Some(off)) = (row.mops, bare.mops) {
            out.push(StatsCost {
                workload: row.workload,
                hashers: row.hashers,
                threads: row.threads,
                backend,
                percent: (1.0 - on / off) * 100.0,
                paired_percent: paired_cost(&row.rounds, &bare.rounds),
            });
        }
    }
    out
}

/// The goals of the suite, judged on the same-hasher runs (the maps compared, not their hashers).
fn goals(rows: &[Row], costs: &[StatsCost]) -> Vec<Goal> {
    let same = |r: &&Row| r.hashers == Hashers::Same;
    let ratios = |contender: &str, workloads: &[Workload], pick: fn(&Row) -> Option<f64>| {
        rows.iter()
            .filter(same)
            .filter(|r| r.contender == contender && workloads.contains(&r.workload))
            .filter_map(|r| Some((r.workload, r.threads, pick(r)?)))
            .collect::<Vec<_>>()
    };
    let judge = |goal: &str, figures: Vec<(Workload, usize, f64)>, min: f64| {
        let measured = figures
            .iter()
            .map(|(w, t, x)| format!("{w} {t}T {x:.2}x"))
            .collect::<Vec<_>>()
            .join(", ");
        Goal {
            goal: goal.into(),
            met: !figures.is_empty() && figures.iter().all(|&(_, _, x)| x >= min),
            measured: if measured.is_empty() {
                "not measured in this run".into()
            } else {
                measured
            },
        }
    };
    let mut goals = vec![
        judge(
            "Rcu >= 3x dashmap on pure read",
            ratios(RCU, &[Workload::PureRead], |r| r.vs_dashmap),
            3.0,
        ),
        judge(
            "Rcu >= 0.6x the unsynchronized limit on pure read",
            ratios(RCU, &[Workload::PureRead], |r| r.vs_limit),
            0.6,
        ),
        judge(
            "Sharded >= dashmap on Exchange and RapidGrow",
            ratios(SHARDED, &[Workload::Exchange, Workload::RapidGrow], |r| {
                r.vs_dashmap
            }),
            1.0,
        ),
    ];
    let same_costs: Vec<_> = costs
        .iter()
        .filter(|c| c.hashers == Hashers::Same)
        .collect();
    let worst = same_costs
        .iter()
        .max_by(|a, b| a.paired_percent.total_cmp(&b.paired_percent));
    let within = |c: &&&StatsCost| c.paired_percent <= 3.0;
    goals.push(Goal {
        goal: "statistics cost <= 3 % on every workload (paired)".into(),
        met: !same_costs.is_empty() && same_costs.iter().all(|c| within(&c)),
        measured: match worst {
            Some(w) => format!(
                "worst {:.1} % ({} {} {}T; best rounds {:.1} %); {} of {} jobs within 3 %",
                w.paired_percent,
                w.backend,
                w.workload,
                w.threads,
                w.percent,
                same_costs.iter().filter(within).count(),
                same_costs.len()
            ),
            None => "not measured in this run".into(),
        },
    });
    goals
}
