//! `guarded-map-probe advise`: what a running process's maps did over a watch, and what to change.
//!
//! For every map (adaptive or not), from the exact counters of two summaries some seconds apart:
//! the observed mix, the cost per operation under each hash backend (the cost model adaptive maps
//! decide by, [`guarded_map::Estimate`]), and advice on four choices, each with the numbers behind
//! it: the backend, pre-sizing with `with_capacity`, `max_len`, and the shard count.

use std::fmt;

use guarded_map::{ActiveBackend, Estimate, Stats};

use crate::intervals::MapRow;

/// How much cheaper one backend must be estimated before we advise a change: the margin adaptive
/// maps switch by (`backend/adaptive/decide.rs`), so both give the same answer.
const BACKEND_MARGIN: f64 = 1.25;
/// Above this share of operations that waited for a lock, more shards are advised.
const CONTENDED_SHARE: f64 = 0.01;
/// A sampled key with at least this share of the samples is hot: more shards will not spread it.
const HOT_KEY_SHARE: f64 = 0.2;
/// Below this many entries, pre-sizing saves too little to mention.
const PRESIZE_MIN: u64 = 1_024;
/// Growth of less than this fraction over the watch counts as steady.
const STEADY_GROWTH: f64 = 0.1;

/// What one map did during the watch, and the advice it leads to.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Advice {
    /// The map's label.
    pub label: String,
    /// Its backend (`rcu`, `sharded`, `adaptive`, `ordered`).
    pub backend: &'static str,
    /// Of an adaptive map: its form at the end of the watch.
    pub form: Option<&'static str>,
    /// Live instances at the end.
    pub instances: u64,
    /// Keyed reads per second.
    pub reads_per_second: f64,
    /// Writes per second (inserts, updates, removes, retains, clears).
    pub writes_per_second: f64,
    /// The cost model's estimate for this mix (`None` for an ordered map, or an idle one).
    pub estimate: Option<Estimate>,
    /// The advice, one line per topic: (`mix`, `cost`, `backend`, `capacity`, `max_len`,
    /// `shards`) and its text.
    pub lines: Vec<(&'static str, String)>,
}

/// Advice for every map of `last`, over the `seconds` since `first` (a map missing from `first`
/// was created during the watch and counts from zero).
pub fn advise(first: &[MapRow], last: &[MapRow], seconds: f64) -> Vec<Advice> {
    last.iter()
        .map(|now| {
            let before = first.iter().find(|m| m.label == now.label);
            advise_map(before, now, seconds)
        })
        .collect()
}

fn advise_map(before: Option<&MapRow>, now: &MapRow, seconds: f64) -> Advice {
    let after = Stats::from_values(&now.stats);
    let start = before.map_or_else(Stats::default, |b| Stats::from_values(&b.stats));
    let window = after.since(&start);
    let seconds = seconds.max(1e-3);
    let (reads, writes) = (window.gets, window.writes());
    let ops = reads + writes;
    let ordered = now.backend == "ordered";
    let measured = match (now.backend, now.form) {
        ("rcu", _) | ("adaptive", Some("rcu")) => ActiveBackend::Rcu,
        _ => ActiveBackend::Sharded,
    };
    let estimate =
        (!ordered && ops > 0).then(|| Estimate::between(&start, &after, seconds, measured));
    let mut lines = vec![("mix", mix(&window, seconds))];
    if let Some(e) = estimate {
        lines.push((
            "cost",
            format!(
                "rcu {}, sharded {} (per operation; {} measured, the other estimated)",
                nanos(e.rcu_nanos),
                nanos(e.sharded_nanos),
                measured.as_str()
            ),
        ));
    }
    lines.push(("backend", backend(now, estimate, ops)));
    lines.push(("capacity", capacity(&start, &after, seconds)));
    lines.push(("max_len", max_len(now, &start, &after, seconds)));
    lines.push(("shards", shards(now, &window, ops)));
    Advice {
        label: now.label.clone(),
        backend: now.backend,
        form: now.form,
        instances: now.instances,
        reads_per_second: reads as f64 / seconds,
        writes_per_second: writes as f64 / seconds,
        estimate,
        lines,
    }
}

fn mix(w: &Stats, seconds: f64) -> String {
    let ops = w.gets + w.writes();
    if ops + w.ranges + w.snapshots == 0 {
        return format!("idle: no read or write in {seconds:.1} s");
    }
    let mut text = format!(
        "{} reads/s, {} writes/s ({} writes: {} inserts, {} updates, {} removes)",
        rate(w.gets, seconds),
        rate(w.writes(), seconds),
        percent(w.writes(), ops),
        w.inserts,
        w.updates,
        w.removes,
    );
    if w.gets > 0 {
        text += &format!("; {} of reads missed", percent(w.misses, w.gets));
    }
    if w.ranges + w.snapshots > 0 {
        text += &format!(
            "; {} range scans/s, {} snapshots/s",
            rate(w.ranges, seconds),
            rate(w.snapshots, seconds)
        );
    }
    if w.lock_contended > 0 {
        text += &format!(
            "; {} of operations waited for a lock, {} a wait",
            percent(w.lock_contended, ops),
            nanos(w.lock_wait_nanos as f64 / w.lock_contended as f64)
        );
    }
    text
}

fn backend(now: &MapRow, estimate: Option<Estimate>, ops: u64) -> String {
    if now.backend == "ordered" {
        return "ordered: kept in key order, so no hash backend applies".into();
    }
    let Some(e) = estimate else {
        return format!("keep {}: no operations to judge by", now.backend);
    };
    let better = e.cheaper();
    let worse = better.other();
    let ratio = e.of(worse) / e.of(better).max(1e-9);
    let close = ratio < BACKEND_MARGIN;
    let numbers = format!(
        "{} {} against {} {}, {ratio:.1}x, over {ops} operations",
        better.as_str(),
        nanos(e.of(better)),
        worse.as_str(),
        nanos(e.of(worse)),
    );
    if let (Some(pin), Some(form)) = (now.pinned, now.form) {
        return if close || pin == better.as_str() {
            format!("keep the pin to {pin} (it is {form}): {numbers}")
        } else {
            format!(
                "pinned to {pin}, but {} is estimated cheaper: {numbers}; release the pin \
                 (`guarded-map-probe pin ... auto`) and it switches",
                better.as_str()
            )
        };
    }
    match now.backend {
        "adaptive" => match now.form {
            Some(form) if close || form == better.as_str() => {
                format!("keep adaptive: it is {form}, and {numbers}")
            }
            Some("mixed") | None => format!("keep adaptive: its instances differ; {numbers}"),
            Some(form) => format!(
                "keep adaptive: it is {form} and will switch to {} within a few windows unless \
                 pinned ({numbers}); if this mix never changes, `{}` saves the adaptive gate",
                better.as_str(),
                better.as_str()
            ),
        },
        current if close => format!(
            "keep {current}: the two are within {BACKEND_MARGIN}x ({numbers}); `adaptive` if \
             the mix swings over the day"
        ),
        current if current == better.as_str() => format!("keep {current}: {numbers}"),
        current => format!(
            "use `{}` (or `adaptive`) instead of {current}: {numbers}",
            better.as_str()
        ),
    }
}

fn capacity(start: &Stats, after: &Stats, seconds: f64) -> String {
    let (from, to) = (start.len, after.len);
    let load = percent(after.len, after.capacity);
    if to <= from || (to - from) as f64 <= STEADY_GROWTH * from as f64 {
        return format!(
            "no pre-sizing needed: {from} -> {to} entries in {seconds:.1} s (capacity {}, {load} full)",
            after.capacity
        );
    }
    if to < PRESIZE_MIN {
        return format!(
            "no pre-sizing needed: grew {from} -> {to} entries, too few for resizes to matter"
        );
    }
    // Each doubling of a table on the way from `from` to `to` is one resize.
    let doublings = ((to as f64) / (from.max(16) as f64)).log2().ceil().max(1.0);
    let presize = round_up(to + to / 4);
    format!(
        "pre-size: grew {from} -> {to} entries in {seconds:.1} s ({} entries/s), about {doublings:.0} \
         table doublings on the way; create it with `with_capacity({presize})`",
        rate(to - from, seconds)
    )
}

fn max_len(now: &MapRow, start: &Stats, after: &Stats, seconds: f64) -> String {
    let refused = after.since(start).rejected;
    let net = after.len as f64 - start.len as f64;
    match now.max_len {
        Some(limit) if refused > 0 => format!(
            "max_len {limit} refused {refused} inserts in {seconds:.1} s ({} of it in use): raise \
             it, or remove entries sooner",
            percent(after.len, limit)
        ),
        Some(limit) if after.len as f64 >= 0.9 * limit as f64 => format!(
            "max_len {limit} is {} used: inserts will soon be refused",
            percent(after.len, limit)
        ),
        Some(limit) => format!(
            "max_len {limit}: {} used, nothing refused",
            percent(after.len, limit)
        ),
        None if net > 0.0 => {
            let per_second = net / seconds;
            format!(
                "none, and it grows by {} entries/s ({} now): it would pass {} entries in {}; set \
                 `max_len` to bound it (e.g. {})",
                rate(net as u64, seconds),
                after.len,
                after.len.max(1) * 10,
                duration(after.len.max(1) as f64 * 9.0 / per_second),
                round_up(after.len.max(1_000) * 4)
            )
        }
        None => format!(
            "none; {} entries, not growing during the watch (`max_len` guards against a leak: \
             e.g. {})",
            after.len,
            round_up(after.len.max(1_000) * 4)
        ),
    }
}

fn shards(now: &MapRow, w: &Stats, ops: u64) -> String {
    let Some(shards) = now.shards else {
        return match now.backend {
            "rcu" => "not applicable: rcu writers take one lock, and its readers none".into(),
            _ => format!("not applicable to an {} map", now.backend),
        };
    };
    let share = if ops == 0 {
        0.0
    } else {
        w.lock_contended as f64 / ops as f64
    };
    let waited = percent(w.lock_contended, ops);
    if share <= CONTENDED_SHARE {
        return format!("{shards} are enough: {waited} of operations waited for a shard");
    }
    let samples: u64 = now
        .hot_keys
        .iter()
        .map(|&(_, n)| n)
        .sum::<u64>()
        .max(now.samples);
    if let Some(&(key, n)) = now.hot_keys.first()
        && samples > 0
        && n as f64 >= HOT_KEY_SHARE * samples as f64
    {
        return format!(
            "{shards}, and {waited} of operations waited, but key {key:016x} has {} of the \
             samples: more shards will not spread one key (split it, or batch its updates)",
            percent(n, samples)
        );
    }
    format!(
        "raise {shards} to {}: {waited} of operations waited for a shard",
        (shards as u64 * 2).min(guarded_map::Descriptor::MAX_SHARDS as u64)
    )
}

/// `n` per second, rounded for reading.
fn rate(n: u64, seconds: f64) -> String {
    let r = n as f64 / seconds;
    if r >= 100.0 {
        format!("{:.0}", r)
    } else {
        format!("{r:.1}")
    }
}

/// `part` of `whole`, as a percentage.
fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "0%".into();
    }
    let p = 100.0 * part as f64 / whole as f64;
    if p >= 10.0 || p == 0.0 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

fn nanos(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.1} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} us", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn duration(seconds: f64) -> String {
    match seconds {
        s if s < 120.0 => format!("{s:.0} s"),
        s if s < 7_200.0 => format!("{:.0} min", s / 60.0),
        s if s < 172_800.0 => format!("{:.0} h", s / 3_600.0),
        s => format!("{:.0} days", s / 86_400.0),
    }
}

/// `n` rounded up to two significant digits.
fn round_up(n: u64) -> u64 {
    let mut step = 1;
    while n / step >= 100 {
        step *= 10;
    }
    n.div_ceil(step) * step
}

impl fmt::Display for Advice {
    /// The map's heading, then one indented line per topic.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let form = self.form.map(|f| format!(":{f}")).unwrap_or_default();
        let plural = if self.instances == 1 { "" } else { "s" };
        writeln!(
            f,
            "{}  {}{form}  ({} instance{plural})",
            self.label, self.backend, self.instances
        )?;
        for (topic, text) in &self.lines {
            writeln!(f, "  {topic:<9} {text}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use guarded_map_probe_common::Stat;

    use super::*;

    fn row(backend: &'static str, values: &[(Stat, u64)]) -> MapRow {
        let mut row = MapRow {
            label: "app.map".into(),
            backend,
            instances: 1,
            ..MapRow::default()
        };
        for &(stat, value) in values {
            row.stats[stat as usize] = value;
        }
        row
    }

    fn line<'a>(advice: &'a Advice, topic: &str) -> &'a str {
        &advice.lines.iter().find(|(t, _)| *t == topic).unwrap().1
    }

    #[test]
    fn a_read_only_sharded_map_is_told_to_use_rcu() {
        let before = row("sharded", &[(Stat::Len, 10_000), (Stat::Capacity, 14_336)]);
        let mut after = row(
            "sharded",
            &[
                (Stat::Get, 2_000_000),
                (Stat::Len, 10_000),
                (Stat::Capacity, 14_336),
            ],
        );
        after.shards = Some(16);
        let advice = &advise(&[before], &[after], 2.0)[0];
        assert!(line(advice, "mix").starts_with("1000000 reads/s, 0.0 writes/s"));
        assert!(
            line(advice, "backend").starts_with("use `rcu` (or `adaptive`) instead of sharded")
        );
        assert!(line(advice, "capacity").starts_with("no pre-sizing needed"));
        assert!(line(advice, "max_len").starts_with("none; 10000 entries, not growing"));
        assert!(line(advice, "shards").starts_with("16 are enough: 0% of operations waited"));
        let e = advice.estimate.unwrap();
        assert!(e.rcu_nanos < e.sharded_nanos);
    }

    #[test]
    fn a_growing_contended_map_is_told_to_presize_bound_and_shard() {
        let before = row("sharded", &[(Stat::Len, 1_000)]);
        let mut after = row(
            "sharded",
            &[
                (Stat::Get, 100_000),
                (Stat::Insert, 99_000),
                (Stat::Len, 100_000),
                (Stat::Capacity, 114_688),
                (Stat::Contended, 5_000),
                (Stat::WaitNanos, 5_000 * 20_000),
            ],
        );
        after.shards = Some(8);
        let advice = &advise(&[before], &[after], 1.0)[0];
        let backend = line(advice, "backend");
        assert!(backend.starts_with("keep sharded: sharded"), "{backend}");
        assert!(
            line(advice, "capacity").ends_with("create it with `with_capacity(130000)`"),
            "{}",
            line(advice, "capacity")
        );
        assert!(line(advice, "max_len").contains("grows by 99000 entries/s"));
        assert!(line(advice, "shards").starts_with("raise 8 to 16: 2.5% of operations waited"));
        assert!(line(advice, "mix").contains("20.0 us a wait"));
    }

    #[test]
    fn a_hot_key_is_named_instead_of_more_shards() {
        let mut after = row(
            "sharded",
            &[(Stat::Update, 10_000), (Stat::Contended, 1_000)],
        );
        after.shards = Some(8);
        after.samples = 100;
        after.hot_keys = vec![(0xabc, 60), (0xdef, 5)];
        let advice = &advise(&[], &[after], 1.0)[0];
        assert!(line(advice, "shards").contains("key 0000000000000abc has 60% of the samples"));
    }

    #[test]
    fn max_len_refusals_and_ordered_maps() {
        let mut full = row(
            "rcu",
            &[
                (Stat::Insert, 500),
                (Stat::Rejected, 42),
                (Stat::Len, 1_000),
            ],
        );
        full.max_len = Some(1_000);
        let advice = &advise(&[], &[full], 1.0)[0];
        assert!(line(advice, "max_len").starts_with("max_len 1000 refused 42 inserts"));
        assert!(line(advice, "shards").starts_with("not applicable: rcu"));
        let ordered = row("ordered", &[(Stat::Get, 10)]);
        let advice = &advise(&[], &[ordered], 1.0)[0];
        assert!(advice.estimate.is_none());
        assert!(line(advice, "backend").starts_with("ordered"));
        let idle = row("rcu", &[]);
        assert!(line(&advise(&[], &[idle], 1.0)[0], "mix").starts_with("idle"));
    }

    #[test]
    fn an_adaptive_map_in_the_wrong_form_is_told_it_will_switch() {
        let mut after = row("adaptive", &[(Stat::Get, 1_000_000), (Stat::Len, 100)]);
        after.form = Some("sharded");
        after.shards = Some(4);
        let advice = &advise(&[], &[after], 1.0)[0];
        assert!(
            line(advice, "backend")
                .starts_with("keep adaptive: it is sharded and will switch to rcu")
        );
        assert!(
            advice
                .to_string()
                .starts_with("app.map  adaptive:sharded  (1 instance)\n")
        );
    }

    #[test]
    fn a_pinned_adaptive_map_is_told_what_its_pin_costs() {
        let mut after = row("adaptive", &[(Stat::Get, 1_000_000), (Stat::Len, 100)]);
        after.form = Some("sharded");
        after.pinned = Some("sharded");
        after.shards = Some(4);
        let advice = &advise(&[], &[after.clone()], 1.0)[0];
        let backend = line(advice, "backend");
        assert!(
            backend.starts_with("pinned to sharded, but rcu is estimated cheaper"),
            "{backend}"
        );
        after.form = Some("rcu");
        after.pinned = Some("rcu");
        let advice = &advise(&[], &[after], 1.0)[0];
        assert!(line(advice, "backend").starts_with("keep the pin to rcu (it is rcu)"));
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(round_up(123_456), 130_000);
        assert_eq!(round_up(99), 99);
        assert_eq!(nanos(1_500.0), "1.5 us");
        assert_eq!(percent(1, 3), "33%");
        assert_eq!(duration(90_000.0), "25 h");
    }
}
