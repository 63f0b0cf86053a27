//! Turns the stream of records into one [`Interval`] at a time: per guarded map, the latest
//! summary and the rates since the previous interval, with what the samples of the interval say;
//! per kernel BPF map, the commands of the interval; and the pairing of the two.

use std::collections::HashMap;

use guarded_map_probe_common::{
    ActiveBackend, BackendKind, OPS, Op, OpSample, STATS, Stat, Summary, SwitchReason, Syscall,
    cmd, name_bytes,
};

use super::kernel_maps::{KernelMap, KernelMaps};

/// How many hot keys a map row lists.
const HOT_KEYS: usize = 3;

/// What the probe saw during one interval.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Interval {
    /// Its length, in seconds.
    pub seconds: f64,
    /// One row per guarded map that sent a summary, in label order.
    pub maps: Vec<MapRow>,
    /// One row per kernel BPF map the target touched during the interval, busiest first.
    pub kernel_maps: Vec<KernelMapRow>,
}

/// One guarded map (every instance of its label) in an [`Interval`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct MapRow {
    /// The map's label.
    pub label: String,
    /// `rcu` or `sharded`.
    pub backend: &'static str,
    /// Of an adaptive map: the form of its live instances (`"rcu"`, `"sharded"`, or `"mixed"`
    /// when instances differ).
    pub form: Option<&'static str>,
    /// Of an adaptive map: the form its pinned instances are held in (`"rcu"`, `"sharded"`, or
    /// `"mixed"` when they differ); `None` when no instance is pinned.
    pub pinned: Option<&'static str>,
    /// Of an adaptive map: its switches since the target started.
    pub switches: u64,
    /// Of an adaptive map: the latest switch of a live instance.
    pub last_switch: Option<SwitchSeen>,
    /// The kernel map it mirrors, if its descriptor names one.
    pub bpf_map: Option<String>,
    /// Live instances.
    pub instances: u64,
    /// The shard count of a `Sharded` or adaptive map (`None` for other backends).
    pub shards: Option<u32>,
    /// The map's `max_len`, if it has one.
    pub max_len: Option<u64>,
    /// Every statistic of the latest summary, by [`Stat`] index: counters since the target
    /// started (exact), gauges now. The fields below name the ones the table shows.
    pub stats: [u64; STATS],
    /// Operations since the target started, by [`Op`] index (from the latest summary: exact).
    pub totals: [u64; OPS],
    /// Operations per second during the interval, by [`Op`] index (0 until two summaries arrived:
    /// see [`rated`](Self::rated)).
    pub rates: [f64; OPS],
    /// Whether two summaries of the map have arrived, so that the rates are known (the first
    /// summary is the baseline; the target sends two per interval, so this holds from the first
    /// interval on unless the map was idle until then).
    pub rated: bool,
    /// Reads that found nothing, since the target started.
    pub misses: u64,
    /// Entries now.
    pub len: u64,
    /// Capacity now.
    pub capacity: u64,
    /// Contended lock acquisitions since the target started.
    pub lock_contended: u64,
    /// Contended acquisitions per second during the interval.
    pub contended_rate: f64,
    /// Total lock wait since the target started, in ns.
    pub lock_wait_nanos: u64,
    /// `Rcu` publishes since the target started.
    pub rcu_publishes: u64,
    /// Entries those publishes copied.
    pub rcu_copied_entries: u64,
    /// Operations sampled during the interval.
    pub samples: u64,
    /// The 99th percentile of the sampled operations' lock wait, in ns (`None` without samples).
    /// Most operations do not wait at all, so this is mostly 0: the figures of contended waits
    /// are below.
    pub wait_p99_nanos: Option<u64>,
    /// Sampled operations during the interval that waited for a lock (a contended acquisition).
    pub contended_samples: u64,
    /// The median of those waits, in ns (`None` when none waited).
    pub contended_wait_p50_nanos: Option<u64>,
    /// The 99th percentile of those waits, in ns (`None` when none waited).
    pub contended_wait_p99_nanos: Option<u64>,
    /// The mean wait of a contended acquisition during the interval, in ns, from the exact
    /// counters (`None` when none was contended, or before two summaries arrived).
    pub wait_per_contended_nanos: Option<f64>,
    /// The most frequent key fingerprints among the samples, with their sample counts.
    pub hot_keys: Vec<(u64, u64)>,
}

impl MapRow {
    /// Reads per write during the interval (`None` when it did not write).
    pub fn read_write_ratio(&self) -> Option<f64> {
        let writes: f64 = Op::ALL
            .iter()
            .filter(|op| op.is_write())
            .map(|&op| self.rates[op as usize])
            .sum();
        (writes > 0.0).then(|| self.rates[Op::Get as usize] / writes)
    }
}

/// An adaptive map's last switch, as a summary reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwitchSeen {
    /// The form before.
    pub from: ActiveBackend,
    /// The form after.
    pub to: ActiveBackend,
    /// Why.
    pub reason: SwitchReason,
    /// How long before the summary it happened, in ms.
    pub age_ms: u64,
}

/// Counts of `bpf()` map commands, by what they do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommandCounts {
    /// `lookup` and `lookup_and_delete` of one element.
    pub lookups: u64,
    /// `update` of one element.
    pub updates: u64,
    /// `delete` of one element.
    pub deletes: u64,
    /// Batch commands (`*_batch`).
    pub batches: u64,
    /// Elements those batches processed.
    pub batch_elements: u64,
    /// `create`, `get_next_key`, `freeze`.
    pub other: u64,
    /// Commands that failed, other than with `ENOENT` (a missing key, or the end of a batch walk).
    pub errors: u64,
}

impl CommandCounts {
    /// Every command counted.
    pub fn commands(&self) -> u64 {
        self.lookups + self.updates + self.deletes + self.batches + self.other
    }

    fn count(&mut self, call: &Syscall) {
        match call.cmd {
            cmd::MAP_LOOKUP_ELEM | cmd::MAP_LOOKUP_AND_DELETE_ELEM => self.lookups += 1,
            cmd::MAP_UPDATE_ELEM => self.updates += 1,
            cmd::MAP_DELETE_ELEM => self.deletes += 1,
            c if cmd::batch_count_offset(c).is_some() => {
                self.batches += 1;
                self.batch_elements += u64::from(call.count);
            }
            _ => self.other += 1,
        }
        if call.result < 0 && call.result != -i64::from(libc::ENOENT) {
            self.errors += 1;
        }
    }
}

/// One kernel BPF map of the target in an [`Interval`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct KernelMapRow {
    /// The map.
    pub map: KernelMap,
    /// The fd the target used for it (the last one seen).
    pub fd: i32,
    /// Commands during the interval.
    pub interval: CommandCounts,
    /// Commands since the probe attached.
    pub total: CommandCounts,
    /// Mean latency of the interval's commands, in ns.
    pub latency_mean_nanos: u64,
    /// 99th percentile of their latency, in ns.
    pub latency_p99_nanos: u64,
    /// The label of the guarded map that names this map as its `bpf_map`, if any.
    pub mirrored_by: Option<String>,
}

#[derive(Default)]
struct KernelState {
    fd: i32,
    map: Option<KernelMap>,
    interval: CommandCounts,
    total: CommandCounts,
    latencies: Vec<u64>,
}

/// Accumulates records between intervals.
pub(crate) struct Intervals {
    kernel_maps: KernelMaps,
    /// Latest summary per map id, and the one the previous interval ended with.
    latest: HashMap<u64, Summary>,
    previous: HashMap<u64, Summary>,
    samples: HashMap<u64, Vec<OpSample>>,
    /// By map id, or by `-fd` while unresolved.
    kernel: HashMap<i64, KernelState>,
}

impl Intervals {
    pub fn new(pid: u32) -> Self {
        Intervals {
            kernel_maps: KernelMaps::new(pid),
            latest: HashMap::new(),
            previous: HashMap::new(),
            samples: HashMap::new(),
            kernel: HashMap::new(),
        }
    }

    pub fn summary(&mut self, summary: Summary) {
        // A map's first summary is the baseline its first rates are taken from.
        self.previous.entry(summary.map_id).or_insert(summary);
        self.latest.insert(summary.map_id, summary);
    }

    pub fn sample(&mut self, sample: OpSample) {
        self.samples.entry(sample.map_id).or_default().push(sample);
    }

    pub fn syscall(&mut self, call: Syscall) {
        if call.cmd == cmd::MAP_CREATE {
            if call.map_fd < 0 {
                return;
            }
            self.kernel_maps.created(call.map_fd);
        }
        let map = if call.map_fd >= 0 {
            Some(self.kernel_maps.get(call.map_fd).clone())
        } else {
            None
        };
        let key = match &map {
            Some(m) if m.id != 0 => i64::from(m.id),
            _ => -i64::from(call.map_fd),
        };
        let state = self.kernel.entry(key).or_default();
        state.fd = call.map_fd;
        if map.is_some() {
            state.map = map;
        }
        state.interval.count(&call);
        state.total.count(&call);
        state.latencies.push(call.latency_ns);
    }

    /// Ends the interval of length `seconds`.
    pub fn finish(&mut self, seconds: f64) -> Interval {
        let mut maps: Vec<MapRow> = self
            .latest
            .values()
            .map(|s| map_row(s, self.previous.get(&s.map_id), self.samples.get(&s.map_id)))
            .collect();
        maps.sort_by(|a, b| a.label.cmp(&b.label));
        let mut kernel_maps: Vec<KernelMapRow> = self
            .kernel
            .values_mut()
            .filter(|state| state.interval.commands() > 0)
            .map(|state| {
                let (mean, p99) = latency(&mut state.latencies);
                let map = state.map.clone().unwrap_or_else(|| KernelMap {
                    id: 0,
                    name: format!("fd {}", state.fd),
                    map_type: "?".into(),
                });
                KernelMapRow {
                    mirrored_by: maps
                        .iter()
                        .find(|m| m.bpf_map.as_deref() == Some(map.name.as_str()))
                        .map(|m| m.label.clone()),
                    map,
                    fd: state.fd,
                    interval: state.interval,
                    total: state.total,
                    latency_mean_nanos: mean,
                    latency_p99_nanos: p99,
                }
            })
            .collect();
        kernel_maps.sort_by_key(|row| std::cmp::Reverse(row.interval.commands()));
        for state in self.kernel.values_mut() {
            state.interval = CommandCounts::default();
            state.latencies.clear();
        }
        self.previous.clone_from(&self.latest);
        self.samples.clear();
        Interval {
            seconds,
            maps,
            kernel_maps,
        }
    }
}

fn map_row(s: &Summary, prev: Option<&Summary>, samples: Option<&Vec<OpSample>>) -> MapRow {
    let elapsed = prev
        .map(|p| s.time_ns.saturating_sub(p.time_ns) as f64 / 1e9)
        .filter(|&secs| secs > 0.0);
    let rate = |now: u64, before: Option<u64>| match (elapsed, before) {
        (Some(secs), Some(before)) => now.saturating_sub(before) as f64 / secs,
        _ => 0.0,
    };
    let mut rates = [0.0; OPS];
    for (i, r) in rates.iter_mut().enumerate() {
        let stat = Op::ALL[i].stat();
        *r = rate(s.get(stat), prev.map(|p| p.get(stat)));
    }
    let samples = samples.map_or(&[][..], Vec::as_slice);
    let mut waits: Vec<u64> = samples.iter().map(|s| s.lock_wait_nanos).collect();
    let mut contended: Vec<u64> = waits.iter().copied().filter(|&w| w > 0).collect();
    let contended_wait_p50_nanos = (!contended.is_empty()).then(|| percentile(&mut contended, 0.5));
    let contended_wait_p99_nanos =
        (!contended.is_empty()).then(|| percentile(&mut contended, 0.99));
    let delta = |stat: Stat| {
        elapsed
            .and(prev)
            .map(|p| s.get(stat).saturating_sub(p.get(stat)))
    };
    let wait_per_contended_nanos = match (delta(Stat::WaitNanos), delta(Stat::Contended)) {
        (Some(wait), Some(acquisitions)) if acquisitions > 0 => {
            Some(wait as f64 / acquisitions as f64)
        }
        _ => None,
    };
    let mut by_key: HashMap<u64, u64> = HashMap::new();
    for sample in samples {
        *by_key.entry(sample.fingerprint).or_default() += 1;
    }
    let mut hot_keys: Vec<(u64, u64)> = by_key.into_iter().collect();
    hot_keys.sort_by_key(|&(key, n)| (std::cmp::Reverse(n), key));
    hot_keys.truncate(HOT_KEYS);
    let bpf_map = String::from_utf8_lossy(name_bytes(&s.bpf_map)).into_owned();
    MapRow {
        label: String::from_utf8_lossy(name_bytes(&s.label)).into_owned(),
        backend: BackendKind::from_code(s.backend).map_or("unknown", BackendKind::as_str),
        form: (BackendKind::from_code(s.backend) == Some(BackendKind::Adaptive)).then(|| {
            match s.forms {
                [_, 0] => ActiveBackend::Rcu.as_str(),
                [0, _] => ActiveBackend::Sharded.as_str(),
                _ => "mixed",
            }
        }),
        pinned: match s.pinned {
            [0, 0] => None,
            [_, 0] => Some(ActiveBackend::Rcu.as_str()),
            [0, _] => Some(ActiveBackend::Sharded.as_str()),
            _ => Some("mixed"),
        },
        switches: s.get(Stat::Switches),
        last_switch: last_switch(s),
        bpf_map: (!bpf_map.is_empty()).then_some(bpf_map),
        instances: s.instances,
        shards: (s.shards > 0).then_some(s.shards),
        max_len: (s.max_len > 0).then_some(s.max_len),
        stats: s.stats,
        totals: Op::ALL.map(|op| s.get(op.stat())),
        rates,
        rated: elapsed.is_some() && prev.is_some(),
        misses: s.get(Stat::Miss),
        len: s.get(Stat::Len),
        capacity: s.get(Stat::Capacity),
        lock_contended: s.get(Stat::Contended),
        contended_rate: rate(s.get(Stat::Contended), prev.map(|p| p.get(Stat::Contended))),
        lock_wait_nanos: s.get(Stat::WaitNanos),
        rcu_publishes: s.get(Stat::Publishes),
        rcu_copied_entries: s.get(Stat::Copied),
        samples: samples.len() as u64,
        wait_p99_nanos: (!waits.is_empty()).then(|| percentile(&mut waits, 0.99)),
        contended_samples: contended.len() as u64,
        contended_wait_p50_nanos,
        contended_wait_p99_nanos,
        wait_per_contended_nanos,
        hot_keys,
    }
}

/// The last switch a summary reports, if any.
fn last_switch(s: &Summary) -> Option<SwitchSeen> {
    let [from, to, reason] = s.last_switch;
    Some(SwitchSeen {
        from: ActiveBackend::from_code(from)?,
        to: ActiveBackend::from_code(to)?,
        reason: SwitchReason::from_code(reason)?,
        age_ms: s.last_switch_age_ms,
    })
}

/// Mean and 99th percentile (0, 0 when empty).
fn latency(values: &mut [u64]) -> (u64, u64) {
    if values.is_empty() {
        return (0, 0);
    }
    let mean = values.iter().sum::<u64>() / values.len() as u64;
    (mean, percentile(values, 0.99))
}

/// The `q` quantile of a non-empty slice (nearest rank).
fn percentile(values: &mut [u64], q: f64) -> u64 {
    values.sort_unstable();
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

#[cfg(test)]
mod tests {
    use guarded_map_probe_common::RecordKind;

    use super::*;

    fn summary(gets: u64, time_ns: u64) -> Summary {
        let mut s = Summary::EMPTY;
        s.map_id = 7;
        s.stats[Stat::Get as usize] = gets;
        s.stats[Stat::Update as usize] = gets / 10;
        s.time_ns = time_ns;
        s.label[..3].copy_from_slice(b"app");
        s.bpf_map[..5].copy_from_slice(b"flows");
        s
    }

    #[test]
    fn rates_come_from_consecutive_summaries() {
        let mut intervals = Intervals::new(std::process::id());
        intervals.summary(summary(1_000, 1_000_000_000));
        let first = intervals.finish(1.0);
        assert_eq!(first.maps[0].totals[Op::Get as usize], 1_000);
        assert_eq!(first.maps[0].rates[Op::Get as usize], 0.0);
        intervals.summary(summary(3_000, 3_000_000_000));
        for (i, key) in [1u64, 1, 2].into_iter().enumerate() {
            intervals.sample(OpSample {
                kind: RecordKind::Op as u32,
                op: 0,
                map_id: 7,
                fingerprint: key,
                lock_wait_nanos: i as u64 * 100,
                time_ns: 0,
                tid: 1,
                reserved: 0,
            });
        }
        let second = intervals.finish(2.0);
        let row = &second.maps[0];
        assert_eq!(row.label, "app");
        assert_eq!(row.bpf_map.as_deref(), Some("flows"));
        assert_eq!(row.rates[Op::Get as usize], 1_000.0);
        assert_eq!(row.read_write_ratio(), Some(10.0));
        assert_eq!(row.hot_keys, vec![(1, 2), (2, 1)]);
        assert_eq!(row.wait_p99_nanos, Some(200));
        assert_eq!(row.samples, 3);
    }

    fn sample(wait: u64) -> OpSample {
        OpSample {
            kind: RecordKind::Op as u32,
            op: 0,
            map_id: 7,
            fingerprint: 1,
            lock_wait_nanos: wait,
            time_ns: 0,
            tid: 1,
            reserved: 0,
        }
    }

    #[test]
    fn the_first_interval_has_rates_once_two_summaries_arrived() {
        let mut intervals = Intervals::new(std::process::id());
        intervals.summary(summary(1_000, 1_000_000_000));
        intervals.summary(summary(1_500, 1_500_000_000));
        let first = intervals.finish(1.0);
        assert!(first.maps[0].rated);
        assert_eq!(first.maps[0].rates[Op::Get as usize], 1_000.0);
        // An interval with no new summary has no rates.
        let idle = intervals.finish(1.0);
        assert!(!idle.maps[0].rated);
        // One summary alone is a baseline, not a rate of 0.
        let mut fresh = Intervals::new(std::process::id());
        fresh.summary(summary(1_000, 1_000_000_000));
        assert!(!fresh.finish(1.0).maps[0].rated);
    }

    #[test]
    fn contended_waits_are_reported_apart_from_the_operations_that_did_not_wait() {
        let mut intervals = Intervals::new(std::process::id());
        let mut first = summary(1_000, 1_000_000_000);
        first.stats[Stat::Contended as usize] = 10;
        first.stats[Stat::WaitNanos as usize] = 1_000;
        intervals.summary(first);
        let mut second = summary(2_000, 2_000_000_000);
        second.stats[Stat::Contended as usize] = 14;
        second.stats[Stat::WaitNanos as usize] = 513_000;
        intervals.summary(second);
        // 1 000 sampled operations, 4 of which waited: p99 over all of them is 0.
        for i in 0..1_000 {
            let wait = match i {
                10 => 100_000,
                20 => 120_000,
                30 => 130_000,
                40 => 160_000,
                _ => 0,
            };
            intervals.sample(sample(wait));
        }
        let row = &intervals.finish(1.0).maps[0];
        assert_eq!(row.wait_p99_nanos, Some(0));
        assert_eq!(row.contended_samples, 4);
        assert_eq!(row.contended_wait_p50_nanos, Some(120_000));
        assert_eq!(row.contended_wait_p99_nanos, Some(160_000));
        assert_eq!(row.wait_per_contended_nanos, Some(128_000.0));
    }

    #[test]
    fn kernel_commands_are_counted_per_interval_and_in_total() {
        let mut intervals = Intervals::new(std::process::id());
        let call = |cmd, count, result| Syscall {
            kind: RecordKind::Syscall as u32,
            cmd,
            tid: 1,
            map_fd: 1_000_000, // not an fd of this process: stays unresolved
            result,
            count,
            reserved: 0,
            start_ns: 0,
            latency_ns: 50,
        };
        intervals.syscall(call(cmd::MAP_LOOKUP_ELEM, 1, 0));
        intervals.syscall(call(cmd::MAP_UPDATE_ELEM, 1, -i64::from(libc::E2BIG)));
        intervals.syscall(call(cmd::MAP_LOOKUP_ELEM, 1, -i64::from(libc::ENOENT)));
        intervals.syscall(call(cmd::MAP_LOOKUP_BATCH, 40, 0));
        let first = intervals.finish(1.0);
        let row = &first.kernel_maps[0];
        assert_eq!(row.map.name, "fd 1000000");
        assert_eq!(
            (
                row.interval.lookups,
                row.interval.updates,
                row.interval.batches
            ),
            (2, 1, 1)
        );
        assert_eq!((row.interval.batch_elements, row.interval.errors), (40, 1));
        assert_eq!(row.latency_p99_nanos, 50);
        intervals.syscall(call(cmd::MAP_DELETE_ELEM, 1, 0));
        let second = intervals.finish(1.0);
        assert_eq!(second.kernel_maps[0].interval.commands(), 1);
        assert_eq!(second.kernel_maps[0].total.commands(), 5);
        assert!(intervals.finish(1.0).kernel_maps.is_empty());
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&mut v, 0.99), 99);
        assert_eq!(percentile(&mut [5], 0.99), 5);
    }
}
