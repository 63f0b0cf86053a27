//! The live table: one line per map each second, from the registry's statistics.

use std::time::Duration;

use guarded_map::{Stats, registry};

/// The maps the table shows, by label.
pub const MAPS: [&str; 3] = ["demo.routes", "demo.sessions", "demo.status_counts"];

/// Prints one line per map of what happened since the previous call.
pub struct Table {
    last: [Stats; MAPS.len()],
}

impl Table {
    pub fn new() -> Table {
        Table {
            last: [Stats::default(); MAPS.len()],
        }
    }

    pub fn header() -> String {
        format!(
            "{:<20} {:>8} {:>11} {:>11} {:>8} {:>10} {:>16}",
            "map", "form", "ops/s", "read:write", "entries", "contended", "wait/contended"
        )
    }

    /// The lines for the `elapsed` since the previous call.
    pub fn lines(&mut self, elapsed: Duration) -> Vec<String> {
        let secs = elapsed.as_secs_f64().max(1e-9);
        MAPS.iter()
            .zip(self.last.iter_mut())
            .map(|(label, last)| {
                let report = registry::report(label);
                let now = report.as_ref().map(|r| r.stats).unwrap_or_default();
                let delta = now.since(last);
                *last = now;
                let (reads, writes) = (delta.gets, delta.writes());
                format!(
                    "{:<20} {:>8} {:>11.0} {:>11} {:>8} {:>10} {:>16}",
                    label,
                    report.map_or("-", |r| form(&r)),
                    (reads + writes) as f64 / secs,
                    ratio(reads, writes),
                    delta.len,
                    delta.lock_contended,
                    wait_per(delta.lock_wait_nanos, delta.lock_contended),
                )
            })
            .collect()
    }
}

/// The form an adaptive map has now (`rcu`, `sharded`), or the backend of another.
fn form(report: &registry::MapReport) -> &'static str {
    match (report.forms.rcu, report.forms.sharded) {
        (0, 0) => report.descriptor.backend().as_str(),
        (_, 0) => "rcu",
        (0, _) => "sharded",
        _ => "both",
    }
}

fn ratio(reads: u64, writes: u64) -> String {
    match (reads, writes) {
        (0, 0) => "-".into(),
        (_, 0) => "reads only".into(),
        (0, _) => "writes only".into(),
        (r, w) if r >= w => format!("{:.0}:1", r as f64 / w as f64),
        (r, w) => format!("1:{:.0}", w as f64 / r as f64),
    }
}

/// The mean wait of a contended acquisition (an uncontended one does not wait and is not timed).
fn wait_per(nanos: u64, waits: u64) -> String {
    if waits == 0 {
        return "-".into();
    }
    format!("{:.1} us", nanos as f64 / waits as f64 / 1e3)
}
