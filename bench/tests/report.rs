//! The arithmetic of the results: ratios to dashmap and to the limit, the cost of the statistics
//! and the verdict on each goal, from cells with known figures.

use guarded_map_bench::contenders::{
    DASHMAP, Hashers, Kind, LIMIT, RCU, RCU_BARE, SHARDED, SHARDED_BARE,
};
use guarded_map_bench::machine::Machine;
use guarded_map_bench::results::Report;
use guarded_map_bench::run::{Cell, Plan};
use guarded_map_bench::table;
use guarded_map_bench::workload::Workload;

fn cell(workload: Workload, contender: &'static str, rounds: &[f64]) -> Cell {
    Cell {
        workload,
        hashers: Hashers::Same,
        threads: 2,
        contender,
        hasher: "foldhash",
        kind: if contender == LIMIT {
            Kind::Unsynchronized
        } else {
            Kind::Concurrent
        },
        outcome: Ok(rounds.to_vec()),
        violation: None,
    }
}

fn plan() -> Plan {
    Plan {
        workloads: vec![Workload::PureRead, Workload::Exchange],
        threads: vec![2],
        hashers: vec![Hashers::Same],
        capacity_log2: 10,
        rounds: 2,
        only: Vec::new(),
    }
}

#[test]
fn ratios_costs_and_goals_follow_from_the_rounds() {
    use Workload::{Exchange, PureRead};
    let cells = vec![
        cell(PureRead, RCU, &[90.0, 100.0]),
        cell(PureRead, RCU_BARE, &[104.0, 98.0]),
        cell(PureRead, SHARDED, &[40.0, 39.0]),
        cell(PureRead, SHARDED_BARE, &[40.0, 40.0]),
        cell(PureRead, DASHMAP, &[25.0, 20.0]),
        cell(PureRead, LIMIT, &[160.0, 150.0]),
        cell(Exchange, SHARDED, &[10.0, 11.0]),
        cell(Exchange, SHARDED_BARE, &[11.0, 11.0]),
        cell(Exchange, DASHMAP, &[10.0, 10.0]),
        Cell {
            outcome: Err("each write copies the whole map".into()),
            ..cell(Exchange, "arc-swap copy-on-write", &[])
        },
    ];
    let report = Report::new(Machine::current(), &plan(), &cells);
    let row = |w: Workload, c: &str| {
        report
            .rows
            .iter()
            .find(|r| r.workload == w && r.contender == c)
            .unwrap()
    };

    let rcu = row(PureRead, RCU);
    assert_eq!(rcu.mops, Some(100.0), "the best round counts");
    assert_eq!(rcu.vs_dashmap, Some(4.0));
    assert_eq!(rcu.vs_limit, Some(100.0 / 160.0));
    assert_eq!(
        row(Exchange, SHARDED).vs_limit,
        None,
        "no limit on a workload that writes"
    );
    let cow = row(Exchange, "arc-swap copy-on-write");
    assert_eq!(
        (cow.mops, cow.not_run.as_deref()),
        (None, Some("each write copies the whole map"))
    );

    let cost = |w: Workload, backend: &str| {
        let c = report
            .stats_cost
            .iter()
            .find(|c| c.workload == w && c.backend == backend)
            .unwrap();
        (c.percent, c.paired_percent)
    };
    let near =
        |(a, b): (f64, f64), (x, y): (f64, f64)| (a - x).abs() < 1e-9 && (b - y).abs() < 1e-9;
    // Best rounds against each other; paired: the median of each round's cost.
    let rcu_rounds = ((1.0 - 90.0 / 104.0) + (1.0 - 100.0 / 98.0)) * 50.0;
    assert!(near(
        cost(PureRead, "Rcu"),
        ((1.0 - 100.0 / 104.0) * 100.0, rcu_rounds)
    ));
    assert!(near(cost(PureRead, "Sharded"), (0.0, 1.25)));
    assert!(near(
        cost(Exchange, "Sharded"),
        (0.0, (1.0 - 10.0 / 11.0) * 50.0)
    ));

    let goal = |prefix: &str| {
        report
            .goals
            .iter()
            .find(|g| g.goal.starts_with(prefix))
            .unwrap()
    };
    assert!(goal("Rcu >= 3x dashmap").met, "4.0x");
    assert!(goal("Rcu >= 0.6x").met, "0.625x");
    assert!(goal("Sharded >= dashmap").met, "Exchange 1.1x");
    assert!(
        !goal("statistics cost").met,
        "Rcu pure read costs 5.7 % paired"
    );
    assert_eq!(
        goal("statistics cost").measured,
        "worst 5.7 % (Rcu PureRead 2T; best rounds 3.8 %); 1 of 3 jobs within 3 %"
    );

    let text = table::render(&report);
    assert!(text.contains("arc-swap copy-on-write: not run (each write copies the whole map)"));
    assert!(text.contains("NOT met  statistics cost"));
}

#[test]
fn a_goal_without_figures_is_not_met() {
    let cells = vec![cell(Workload::Exchange, DASHMAP, &[10.0])];
    let report = Report::new(Machine::current(), &plan(), &cells);
    assert!(report.goals.iter().all(|g| !g.met));
    assert!(
        report
            .goals
            .iter()
            .all(|g| g.measured == "not measured in this run")
    );
}
