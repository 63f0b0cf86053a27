//! The terminal table of a report: one block per hasher setting and workload, contenders down,
//! thread counts across; then the cost of the statistics and the goals.

use std::fmt::Write as _;

use crate::results::{Report, Row};

/// Renders the report as text.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let m = &report.machine;
    let _ = writeln!(
        out,
        "{} · {} cores · Linux {} · {}",
        m.cpu, m.cores, m.kernel, m.rustc
    );
    let _ = writeln!(
        out,
        "{} · capacity 2^{} · best of {} round(s) · {}",
        m.date,
        report.capacity_log2,
        report.rounds,
        m.versions.join(" ")
    );

    let mut blocks: Vec<_> = report
        .rows
        .iter()
        .map(|r| (r.hashers, r.workload))
        .collect();
    blocks.dedup();
    for (hashers, workload) in blocks {
        let rows: Vec<&Row> = report
            .rows
            .iter()
            .filter(|r| r.hashers == hashers && r.workload == workload)
            .collect();
        let mut threads: Vec<usize> = rows.iter().map(|r| r.threads).collect();
        threads.sort_unstable();
        threads.dedup();
        let _ = writeln!(out, "\n{workload} · {}", hashers.name());
        let _ = write!(out, "{:<34}", "Mops/s (x dashmap, x limit)");
        for t in &threads {
            let _ = write!(
                out,
                "{:>24}",
                format!("{t} thread{}", if *t == 1 { "" } else { "s" })
            );
        }
        out.push('\n');
        let mut names: Vec<&str> = Vec::new();
        for row in &rows {
            if !names.contains(&row.contender) {
                names.push(row.contender);
            }
        }
        let mut reasons = Vec::new();
        for name in names {
            let _ = write!(out, "{name:<34}");
            for t in &threads {
                let row = rows.iter().find(|r| r.contender == name && r.threads == *t);
                let _ = write!(out, "{:>24}", row.map_or_else(String::new, |r| cell(r)));
                let notes = row.into_iter().flat_map(|r| {
                    let not_run = r.not_run.as_ref().map(|w| format!("not run ({w})"));
                    let wrong = r
                        .violation
                        .as_ref()
                        .map(|v| format!("{t}T, WRONG RESULTS: {v}"));
                    not_run.into_iter().chain(wrong)
                });
                for note in notes {
                    if !reasons.iter().any(|(n, r)| *n == name && *r == note) {
                        reasons.push((name, note));
                    }
                }
            }
            out.push('\n');
        }
        for (name, reason) in reasons {
            let _ = writeln!(out, "  {name}: {reason}");
        }
    }

    if !report.stats_cost.is_empty() {
        let _ = writeln!(
            out,
            "\nCost of the statistics (1 - on/off: best rounds, paired median of the rounds; negative: within noise)"
        );
        for c in &report.stats_cost {
            let _ = writeln!(
                out,
                "  {:<10} {:<8} {}T  {:<22} {:>6.1} % {:>6.1} %",
                c.workload.name(),
                c.backend,
                c.threads,
                c.hashers.name(),
                c.percent,
                c.paired_percent
            );
        }
    }
    let _ = writeln!(out, "\nGoals (foldhash for all)");
    for g in &report.goals {
        let verdict = if g.met { "met" } else { "NOT met" };
        let _ = writeln!(out, "  {verdict:<8} {}: {}", g.goal, g.measured);
    }
    out
}

fn cell(row: &Row) -> String {
    let Some(mops) = row.mops else {
        return "not run".into();
    };
    let ratio = |x: Option<f64>| x.map_or_else(|| "-".into(), |x| format!("{x:.2}"));
    let flag = if row.violation.is_some() { "!" } else { "" };
    format!(
        "{flag}{mops:8.2} ({}, {})",
        ratio(row.vs_dashmap),
        ratio(row.vs_limit)
    )
}

/// Renders the figures as Markdown tables (one per hasher setting: workloads and threads down,
/// contenders across would be too wide, so contenders down and one column per workload and thread
/// count), for BENCHMARKS.md.
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let mut settings: Vec<_> = report.rows.iter().map(|r| r.hashers).collect();
    settings.dedup();
    for hashers in settings {
        let rows: Vec<&Row> = report
            .rows
            .iter()
            .filter(|r| r.hashers == hashers)
            .collect();
        let mut columns: Vec<(crate::workload::Workload, usize)> = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        for r in &rows {
            if !columns.contains(&(r.workload, r.threads)) {
                columns.push((r.workload, r.threads));
            }
            if !names.contains(&r.contender) {
                names.push(r.contender);
            }
        }
        let _ = writeln!(out, "\n**{}** — Mops/s (× dashmap)\n", hashers.name());
        out.push_str("| contender |");
        for (w, t) in &columns {
            let _ = write!(out, " {w} {t}T |");
        }
        out.push_str("\n|---|");
        out.push_str(&"---:|".repeat(columns.len()));
        out.push('\n');
        for name in names {
            // `<` would open an HTML tag in Markdown (`RwLock<hashbrown>`).
            let _ = write!(out, "| {} |", name.replace('<', "\\<"));
            for (w, t) in &columns {
                let row = rows
                    .iter()
                    .find(|r| r.contender == name && r.workload == *w && r.threads == *t);
                let text = match row {
                    Some(r) => match (r.mops, r.vs_dashmap) {
                        (Some(m), Some(x)) => {
                            let flag = if r.violation.is_some() { " ⚠" } else { "" };
                            format!("{m:.1} ({x:.2}){flag}")
                        }
                        (Some(m), None) => format!("{m:.1}"),
                        _ => "–".into(),
                    },
                    None => String::new(),
                };
                let _ = write!(out, " {text} |");
            }
            out.push('\n');
        }
    }
    out
}
