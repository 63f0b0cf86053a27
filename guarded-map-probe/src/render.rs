//! How an [`Interval`] is shown: the live table of `guarded-map-probe top` and the JSON lines of
//! `guarded-map-probe record`.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use super::intervals::{CommandCounts, Interval, KernelMapRow, MapRow};
use super::{OPS, Op, STATS, Stat};

/// The `top` table of one interval.
pub fn table(interval: &Interval, pid: u32, exe: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "guarded-map-probe: pid {pid} ({exe}), interval {:.2} s",
        interval.seconds
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<32} {:<16} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>9} {:>9} {:>7} {:>9} {:>9}  HOT KEYS",
        "GUARDED MAP",
        "BACKEND",
        "GET/s",
        "INS/s",
        "UPD/s",
        "REM/s",
        "OTHER/s",
        "R:W",
        "ENTRIES",
        "CAPACITY",
        "CONT/s",
        "WAIT/CONT",
        "CWAIT p99",
    );
    if interval.maps.is_empty() {
        let _ = writeln!(
            out,
            "(no summary yet: the target sends them once it performs a map operation)"
        );
    }
    for map in &interval.maps {
        // Until two summaries arrived the rates are unknown, not zero.
        let rate = |r: f64| if map.rated { si(r) } else { "-".into() };
        let other: f64 = [Op::Retain, Op::Clear, Op::Snapshot]
            .iter()
            .map(|&op| map.rates[op as usize])
            .sum();
        let _ = writeln!(
            out,
            "{:<32} {:<16} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>9} {:>9} {:>7} {:>9} {:>9}  {}",
            cut(&map.label, 32),
            map.form
                .map_or_else(|| map.backend.to_owned(), |form| format!("adaptive:{form}")),
            rate(map.rates[Op::Get as usize]),
            rate(map.rates[Op::Insert as usize]),
            rate(map.rates[Op::Update as usize]),
            rate(map.rates[Op::Remove as usize]),
            rate(other),
            map.read_write_ratio()
                .map_or_else(|| "-".into(), |r| format!("{r:.0}:1")),
            count(map.len),
            count(map.capacity),
            rate(map.contended_rate),
            map.wait_per_contended_nanos
                .map_or_else(|| "-".into(), |w| nanos(w as u64)),
            map.contended_wait_p99_nanos
                .map_or_else(|| "-".into(), nanos),
            hot_keys(map),
        );
        if let Some(pin) = map.pinned {
            let _ = writeln!(
                out,
                "  pinned to {pin}: its cost model does not switch it (`guarded-map-probe pin ... auto` releases it)"
            );
        }
        if let Some(last) = &map.last_switch {
            let _ = writeln!(
                out,
                "  switched {} -> {} {:.1} s ago ({}); {} switches in all",
                last.from.as_str(),
                last.to.as_str(),
                last.age_ms as f64 / 1e3,
                last.reason.as_str(),
                map.switches,
            );
        }
        if let Some(name) = &map.bpf_map {
            match interval.kernel_maps.iter().find(|k| &k.map.name == name) {
                Some(kernel) => {
                    let _ = writeln!(out, "  <-> kernel map {}", kernel_summary(kernel, interval));
                }
                None => {
                    let _ = writeln!(
                        out,
                        "  <-> kernel map {name}: no bpf() commands this interval"
                    );
                }
            }
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<16} {:<12} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>6}  MIRRORED BY",
        "KERNEL BPF MAP",
        "TYPE",
        "ID",
        "LOOKUP/s",
        "UPDATE/s",
        "DELETE/s",
        "BATCH/s",
        "ELEMS/s",
        "LAT mean",
        "LAT p99",
        "ERRORS",
    );
    if interval.kernel_maps.is_empty() {
        let _ = writeln!(out, "(no bpf() map commands this interval)");
    }
    for kernel in &interval.kernel_maps {
        let [lookups, updates, deletes, batches, elements] = kernel_rates(kernel, interval);
        let _ = writeln!(
            out,
            "{:<16} {:<12} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>6}  {}",
            cut(&kernel.map.name, 16),
            cut(&kernel.map.map_type, 12),
            kernel.map.id,
            lookups,
            updates,
            deletes,
            batches,
            elements,
            nanos(kernel.latency_mean_nanos),
            nanos(kernel.latency_p99_nanos),
            kernel.interval.errors,
            kernel.mirrored_by.as_deref().unwrap_or("-"),
        );
    }
    out
}

/// Lookups, updates, deletes, batches and batch elements per second during the interval.
fn kernel_rates(kernel: &KernelMapRow, interval: &Interval) -> [String; 5] {
    let c = &kernel.interval;
    [c.lookups, c.updates, c.deletes, c.batches, c.batch_elements]
        .map(|n| si(n as f64 / interval.seconds.max(1e-9)))
}

fn kernel_summary(kernel: &KernelMapRow, interval: &Interval) -> String {
    let [lookups, updates, deletes, batches, elements] = kernel_rates(kernel, interval);
    format!(
        "{} ({}, id {}): {lookups} lookups/s, {updates} updates/s, {deletes} deletes/s, \
         {batches} batches/s ({elements} elements/s), latency p99 {}",
        kernel.map.name,
        kernel.map.map_type,
        kernel.map.id,
        nanos(kernel.latency_p99_nanos),
    )
}

fn hot_keys(map: &MapRow) -> String {
    if map.hot_keys.is_empty() {
        return "-".into();
    }
    map.hot_keys
        .iter()
        .map(|(key, n)| format!("{:08x}({n})", key >> 32))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A count or rate with an SI suffix: `950`, `12.3k`, `4.5M`.
fn si(x: f64) -> String {
    match x {
        x if x >= 1e9 => format!("{:.1}G", x / 1e9),
        x if x >= 1e6 => format!("{:.1}M", x / 1e6),
        x if x >= 1e4 => format!("{:.1}k", x / 1e3),
        x if x >= 10.0 || x == 0.0 => format!("{x:.0}"),
        x => format!("{x:.1}"),
    }
}

/// A count: exact below 10 000, then as [`si`].
fn count(n: u64) -> String {
    if n < 10_000 {
        n.to_string()
    } else {
        si(n as f64)
    }
}

/// A duration in ns, in the unit that reads best.
fn nanos(ns: u64) -> String {
    match ns {
        n if n >= 1_000_000_000 => format!("{:.2}s", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1}ms", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1}us", n as f64 / 1e3),
        n => format!("{n}ns"),
    }
}

fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(width - 1).collect();
        out.push('~');
        out
    }
}

/// One interval as one JSON object (a line of `record`'s output).
pub fn json(interval: &Interval, pid: u32, unix_ms: u128) -> Value {
    json!({
        "unix_ms": unix_ms as u64,
        "pid": pid,
        "interval_s": interval.seconds,
        "maps": interval.maps.iter().map(map_json).collect::<Vec<_>>(),
        "kernel_maps": interval.kernel_maps.iter().map(kernel_json).collect::<Vec<_>>(),
    })
}

fn by_op<T: Into<Value> + Copy>(values: &[T; OPS]) -> Value {
    let mut out = Map::new();
    for op in Op::ALL {
        out.insert(op.name().into(), values[op as usize].into());
    }
    Value::Object(out)
}

/// Every statistic under its `Stats` field name: a statistic added to the table appears here.
fn by_stat(values: &[u64; STATS]) -> Value {
    let mut out = Map::new();
    for stat in Stat::ALL {
        out.insert(stat.field().into(), values[stat as usize].into());
    }
    Value::Object(out)
}

fn map_json(map: &MapRow) -> Value {
    json!({
        "label": map.label,
        "backend": map.backend,
        "form": map.form,
        "pinned": map.pinned,
        "switches": map.switches,
        "last_switch": map.last_switch.map(|s| serde_json::json!({
            "from": s.from.as_str(),
            "to": s.to.as_str(),
            "reason": s.reason.as_str(),
            "age_ms": s.age_ms,
        })),
        "bpf_map": map.bpf_map,
        "instances": map.instances,
        "totals": by_op(&map.totals),
        "per_second": by_op(&map.rates),
        "read_write_ratio": map.read_write_ratio(),
        "misses": map.misses,
        "len": map.len,
        "capacity": map.capacity,
        "lock_contended": map.lock_contended,
        "lock_contended_per_second": map.contended_rate,
        "lock_wait_nanos": map.lock_wait_nanos,
        "rcu_publishes": map.rcu_publishes,
        "rcu_copied_entries": map.rcu_copied_entries,
        "samples": map.samples,
        "wait_p99_nanos": map.wait_p99_nanos,
        "rated": map.rated,
        "contended_samples": map.contended_samples,
        "contended_wait_p50_nanos": map.contended_wait_p50_nanos,
        "contended_wait_p99_nanos": map.contended_wait_p99_nanos,
        "wait_per_contended_nanos": map.wait_per_contended_nanos,
        "stats": by_stat(&map.stats),
        "hot_keys": map.hot_keys.iter().map(|(key, n)| json!({
            "fingerprint": format!("{key:016x}"),
            "samples": n,
        })).collect::<Vec<_>>(),
    })
}

fn counts_json(c: &CommandCounts) -> Value {
    json!({
        "lookups": c.lookups,
        "updates": c.updates,
        "deletes": c.deletes,
        "batches": c.batches,
        "batch_elements": c.batch_elements,
        "other": c.other,
        "errors": c.errors,
    })
}

fn kernel_json(kernel: &KernelMapRow) -> Value {
    json!({
        "name": kernel.map.name,
        "id": kernel.map.id,
        "type": kernel.map.map_type,
        "fd": kernel.fd,
        "interval": counts_json(&kernel.interval),
        "total": counts_json(&kernel.total),
        "latency_mean_nanos": kernel.latency_mean_nanos,
        "latency_p99_nanos": kernel.latency_p99_nanos,
        "mirrored_by": kernel.mirrored_by,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(si(0.0), "0");
        assert_eq!(si(2.5), "2.5");
        assert_eq!(si(950.0), "950");
        assert_eq!(si(12_345.0), "12.3k");
        assert_eq!(si(4_500_000.0), "4.5M");
        assert_eq!(
            (count(3), count(25_000)),
            ("3".to_owned(), "25.0k".to_owned())
        );
        assert_eq!(nanos(850), "850ns");
        assert_eq!(nanos(12_500), "12.5us");
        assert_eq!(cut("abcdef", 4), "abc~");
    }

    #[test]
    fn every_statistic_is_in_the_json_under_its_field_name() {
        let mut row = MapRow::default();
        for stat in Stat::ALL {
            row.stats[stat as usize] = stat as u64 + 100;
        }
        let value = map_json(&row);
        let stats = value["stats"].as_object().expect("a stats object");
        assert_eq!(stats.len(), STATS);
        assert_eq!(stats["gets"], 100);
        assert_eq!(stats["rcu_copied_entries"], Stat::Copied as u64 + 100);
    }

    #[test]
    fn an_empty_interval_says_so() {
        let interval = Interval {
            seconds: 1.0,
            ..Interval::default()
        };
        let text = table(&interval, 1, "/bin/x");
        assert!(text.contains("no summary yet") && text.contains("no bpf() map commands"));
        let value = json(&interval, 1, 0);
        assert_eq!(value["maps"], json!([]));
        assert_eq!(value["pid"], 1);
    }
}
