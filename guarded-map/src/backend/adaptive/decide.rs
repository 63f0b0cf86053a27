//! When an adaptive map switches: an explicit cost model over the map's own counts, window by
//! window, with hysteresis.
//!
//! Every [`WINDOW`] (looked at from the operations' sample points, so nothing runs on the hot
//! path), the counts the map keeps anyway give the window's reads and writes, and, for the form
//! in use, what its writes really cost: an `Rcu` map times every publish. Contended lock waits
//! are timed too, and charged to both forms alike (see [`estimate`]). The model estimates the
//! nanoseconds per operation under each form; the form in use is measured where it can be, the
//! other one estimated from the constants below. A switch needs the other form to be
//! estimated at least [`MARGIN`] times cheaper in [`CONSECUTIVE`] windows in a row, and
//! [`DWELL`] since the last switch: a stationary workload does not flap.
//!
//! The constants were measured on the project's 2-core machines (`BENCHMARKS.md`, "Write paths:
//! the closing measurements", 2026-11-30); they only need to be right within a factor that the
//! margin covers, since the costs they separate differ by 10 to 100 times.

use std::time::{Duration, Instant};

use crate::stats::Stats;
use guarded_map_probe_common::ActiveBackend;

/// How often a map looks at its counts.
pub(crate) const WINDOW: Duration = Duration::from_millis(100);
/// A window with fewer operations says too little to act on.
pub(crate) const MIN_OPS: u64 = 1_000;
/// How much cheaper the other form must be estimated.
pub(crate) const MARGIN: f64 = 1.25;
/// In how many windows in a row.
pub(crate) const CONSECUTIVE: u32 = 3;
/// The least time between two switches.
pub(crate) const DWELL: Duration = Duration::from_secs(1);

/// ns per read of an `Rcu` map: the core bench read 48.5 Mops/s at 100 000 entries on one
/// thread (21 ns), 84 Mops/s on two.
const RCU_READ_NS: f64 = 20.0;
/// ns per read of a `Sharded` map: 57.7 Mops/s on one thread (17 ns), but 49.8 on two, where
/// `Rcu` read 1.7 times as fast (a `Sharded` read writes its shard's lock word).
const SHARDED_READ_NS: f64 = 30.0;
/// ns per write of a `Sharded` map without contention: the core bench's upsert 12.5 ns, insert
/// and remove 36 ns; `./scripts/bench` Exchange at 12 Mops/s (82 ns with the harness's own).
const SHARDED_WRITE_NS: f64 = 50.0;
/// ns per single-key write of an `Rcu` map by its entries, for when it is not measured: 0.4–0.8 µs
/// at 1 000 entries, 0.6–0.8 at 100 000, 1.3–2.2 at 1 000 000 (`op-instructions --op update`).
const RCU_WRITE_NS: [(f64, f64); 3] = [(1e3, 500.0), (1e5, 700.0), (1e6, 1_600.0)];
/// An `Rcu` map's writes are serialized: at a writer lock busy a fraction `u` of the time, a write
/// costs `1 / (1 - u)` times its own time (waiting included); past this the lock is saturated.
const MAX_UTILIZATION: f64 = 0.95;

/// What one window of a map's operations showed.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Window {
    pub(crate) reads: u64,
    pub(crate) writes: u64,
    /// Entries at the window's end.
    pub(crate) len: u64,
    pub(crate) contended: u64,
    pub(crate) wait_nanos: u64,
    pub(crate) publishes: u64,
    pub(crate) publish_nanos: u64,
    pub(crate) seconds: f64,
}

impl Window {
    /// The window between two readings of a map's statistics `seconds` apart.
    pub(crate) fn between(before: &Stats, after: &Stats, seconds: f64) -> Window {
        let d = after.since(before);
        Window {
            reads: d.gets,
            writes: d.writes(),
            len: after.len,
            contended: d.lock_contended,
            wait_nanos: d.lock_wait_nanos,
            publishes: d.rcu_publishes,
            publish_nanos: d.rcu_publish_nanos,
            seconds,
        }
    }

    fn ops(&self) -> u64 {
        self.reads + self.writes
    }
}

/// Estimated nanoseconds per operation under each form.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    /// Under `Rcu`.
    pub rcu_nanos: f64,
    /// Under `Sharded`.
    pub sharded_nanos: f64,
}

impl Estimate {
    /// The form estimated cheaper.
    pub fn cheaper(&self) -> ActiveBackend {
        if self.rcu_nanos <= self.sharded_nanos {
            ActiveBackend::Rcu
        } else {
            ActiveBackend::Sharded
        }
    }

    /// The cost model's estimate for what a map did between two readings of its statistics
    /// `seconds` apart, on a map in the form `measured` (whose writes the counts timed): the same
    /// model an adaptive map decides by, for any `Rcu`, `Sharded` or adaptive map. The probe's
    /// `advise` uses it on a running process's counts.
    ///
    /// ```
    /// use guarded_map::{map_spec, ActiveBackend, Estimate, GuardedMap};
    /// map_spec!(Hits: HashMap<u32, u32>, sharded);
    ///
    /// let map: GuardedMap<u32, u32, Hits> = (0..1_000).map(|k| (k, k)).collect();
    /// let before = map.stats();
    /// for k in 0..10_000 {
    ///     map.get_cloned(&(k % 1_000));
    /// }
    /// let estimate = Estimate::between(&before, &map.stats(), 0.01, ActiveBackend::Sharded);
    /// // Reads only: `Rcu`'s lock-free reads are estimated cheaper.
    /// assert_eq!(estimate.cheaper(), ActiveBackend::Rcu);
    /// ```
    pub fn between(before: &Stats, after: &Stats, seconds: f64, measured: ActiveBackend) -> Self {
        estimate(&Window::between(before, after, seconds), measured)
    }

    /// The estimate under `form`, in ns per operation.
    pub fn of(&self, form: ActiveBackend) -> f64 {
        match form {
            ActiveBackend::Rcu => self.rcu_nanos,
            ActiveBackend::Sharded => self.sharded_nanos,
        }
    }
}

/// The `Rcu` write time estimated for a map of `len` entries (interpolated in `log10(len)`).
fn rcu_write_estimate(len: u64) -> f64 {
    let x = (len.max(1) as f64).log10();
    let points = RCU_WRITE_NS.map(|(n, ns)| (n.log10(), ns));
    let (first, last) = (points[0], points[points.len() - 1]);
    if x <= first.0 {
        return first.1;
    }
    if x >= last.0 {
        // Beyond the measurements, as the last segment rises.
        let (a, b) = (points[points.len() - 2], last);
        return b.1 + (x - b.0) * (b.1 - a.1) / (b.0 - a.0);
    }
    let i = points.iter().rposition(|p| p.0 <= x).unwrap_or(0);
    let (a, b) = (points[i], points[i + 1]);
    a.1 + (x - a.0) * (b.1 - a.1) / (b.0 - a.0)
}

/// Nanoseconds per operation under each form, for the operations of `window`, measured on the
/// form `active`.
pub(crate) fn estimate(window: &Window, active: ActiveBackend) -> Estimate {
    let (reads, writes) = (window.reads as f64, window.writes as f64);
    let ops = (reads + writes).max(1.0);
    let wait_per_write = if window.writes > 0 {
        window.wait_nanos as f64 / writes
    } else {
        0.0
    };
    // A write under each form: measured on the active form where it can be (its publishes are
    // timed), estimated for the other.
    let rcu_write = match active {
        ActiveBackend::Rcu if window.publishes > 0 => {
            window.publish_nanos as f64 / window.publishes as f64
        }
        _ => {
            // `Rcu` writes take turns at one lock: the busier it would be, the longer each
            // waits (a single writer never waits, but the estimate cannot tell it apart).
            let own = rcu_write_estimate(window.len);
            let utilization = if window.seconds > 0.0 {
                writes / window.seconds * own * 1e-9
            } else {
                0.0
            };
            own / (1.0 - utilization.min(MAX_UTILIZATION))
        }
    };
    // The measured lock waits go to both forms. On a busy machine most of the wait time is a lock
    // holder preempted by the scheduler (a few waits of milliseconds), which either form would
    // meet: charged to one form only, they decide by the machine's load, not the map's. The
    // writers' contention that does differ, one `Rcu` writer lock against many shards, is in
    // the utilization above.
    let (rcu_write, sharded_write) = (
        rcu_write + wait_per_write,
        SHARDED_WRITE_NS + wait_per_write,
    );
    Estimate {
        rcu_nanos: (reads * RCU_READ_NS + writes * rcu_write) / ops,
        sharded_nanos: (reads * SHARDED_READ_NS + writes * sharded_write) / ops,
    }
}

/// One map's decisions: the window being counted, and how the last ones leaned.
#[derive(Default)]
pub(crate) struct Decider {
    /// When the window began, and the statistics then.
    window: Option<(Instant, Stats)>,
    /// The form the last windows leaned to, and in how many windows in a row.
    leaning: Option<(ActiveBackend, u32)>,
    last_switch: Option<Instant>,
    /// The last complete window's estimate.
    pub(crate) last: Option<Estimate>,
}

impl Decider {
    /// Whether a window has passed since the current one began (or none began).
    pub(crate) fn due(&self, now: Instant) -> bool {
        self.window
            .is_none_or(|(start, _)| now.duration_since(start) >= WINDOW)
    }

    /// Ends the current window at `now` with the map's statistics `stats`, and starts the next.
    /// Returns the form to switch to when the hysteresis is satisfied.
    pub(crate) fn observe(
        &mut self,
        now: Instant,
        stats: Stats,
        active: ActiveBackend,
    ) -> Option<ActiveBackend> {
        // The first observation only starts a window.
        let (start, before) = self.window.replace((now, stats))?;
        let window = Window::between(&before, &stats, now.duration_since(start).as_secs_f64());
        if window.ops() < MIN_OPS {
            return None;
        }
        let estimate = estimate(&window, active);
        self.last = Some(estimate);
        let other = active.other();
        if estimate.of(other) * MARGIN >= estimate.of(active) {
            self.leaning = None;
            return None;
        }
        let count = match self.leaning {
            Some((form, n)) if form == other => n + 1,
            _ => 1,
        };
        self.leaning = Some((other, count));
        let dwelt = self
            .last_switch
            .is_none_or(|at| now.duration_since(at) >= DWELL);
        (count >= CONSECUTIVE && dwelt).then_some(other)
    }

    /// A switch happened at `now` (for whatever reason): the next one waits [`DWELL`], and the
    /// leaning starts again.
    pub(crate) fn switched(&mut self, now: Instant) {
        self.last_switch = Some(now);
        self.leaning = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(reads: u64, writes: u64, len: u64) -> Window {
        Window {
            reads,
            writes,
            len,
            seconds: 0.1,
            ..Window::default()
        }
    }

    #[test]
    fn reads_favour_rcu_and_writes_favour_sharded() {
        let reads = estimate(&window(1_000_000, 0, 100_000), ActiveBackend::Sharded);
        assert_eq!(reads.cheaper(), ActiveBackend::Rcu);
        let writes = estimate(&window(10_000, 100_000, 100_000), ActiveBackend::Rcu);
        assert_eq!(writes.cheaper(), ActiveBackend::Sharded);
        assert!(writes.rcu_nanos > 10.0 * writes.sharded_nanos, "{writes:?}");
        // 2 % writes on a large map: an `Rcu` write costs some 50 reads.
        let mixed = estimate(&window(98_000, 2_000, 1_000_000), ActiveBackend::Sharded);
        assert_eq!(mixed.cheaper(), ActiveBackend::Sharded, "{mixed:?}");
        let rare = estimate(&window(99_900, 100, 1_000), ActiveBackend::Sharded);
        assert_eq!(rare.cheaper(), ActiveBackend::Rcu, "{rare:?}");
    }

    #[test]
    fn waits_measured_on_the_rcu_writer_lock_count_against_sharded_too() {
        // A read-mostly map whose few writers waited milliseconds (a preempted lock holder): the
        // waits do not make `Sharded` look cheaper.
        let mut w = window(1_000_000, 200, 10_000);
        w.publishes = 200;
        w.publish_nanos = 200 * 2_000;
        w.contended = 10;
        w.wait_nanos = 10 * 4_000_000;
        let e = estimate(&w, ActiveBackend::Rcu);
        assert_eq!(e.cheaper(), ActiveBackend::Rcu, "{e:?}");
    }

    #[test]
    fn waits_measured_on_shards_count_against_rcu_too() {
        // Half writes, and a writer in 40 waits 20 us for its shard: one lock would not do better.
        let mut w = window(100_000, 100_000, 100_000);
        w.contended = 2_500;
        w.wait_nanos = 2_500 * 20_000;
        let e = estimate(&w, ActiveBackend::Sharded);
        assert_eq!(e.cheaper(), ActiveBackend::Sharded, "{e:?}");
    }

    #[test]
    fn measured_publishes_replace_the_estimate() {
        let mut w = window(90_000, 10_000, 1_000);
        w.publishes = 10_000;
        w.publish_nanos = 10_000 * 100; // 100 ns a publish: a tiny map
        let measured = estimate(&w, ActiveBackend::Rcu);
        let estimated = estimate(&w, ActiveBackend::Sharded);
        assert!(measured.rcu_nanos < estimated.rcu_nanos);
    }

    #[test]
    fn the_rcu_write_estimate_follows_the_measurements() {
        assert_eq!(rcu_write_estimate(10), 500.0);
        assert!((rcu_write_estimate(10_000) - 600.0).abs() < 1e-9);
        assert!((rcu_write_estimate(1_000_000) - 1_600.0).abs() < 1e-9);
        assert!(rcu_write_estimate(10_000_000) > 2_000.0);
    }

    fn stats(gets: u64, updates: u64) -> Stats {
        Stats {
            gets,
            updates,
            len: 100_000,
            ..Stats::default()
        }
    }

    #[test]
    fn a_switch_needs_consecutive_windows_and_a_dwell() {
        let mut decider = Decider::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let (mut gets, mut updates) = (0, 0);
        let mut step = |decider: &mut Decider, ms, g, u, active| {
            gets += g;
            updates += u;
            decider.observe(at(ms), stats(gets, updates), active)
        };
        // The first observation only starts a window.
        assert_eq!(step(&mut decider, 0, 0, 0, ActiveBackend::Rcu), None);
        // Write-heavy windows: the third in a row decides.
        assert_eq!(
            step(&mut decider, 100, 1_000, 50_000, ActiveBackend::Rcu),
            None
        );
        assert_eq!(
            step(&mut decider, 200, 1_000, 50_000, ActiveBackend::Rcu),
            None
        );
        assert_eq!(
            step(&mut decider, 300, 1_000, 50_000, ActiveBackend::Rcu),
            Some(ActiveBackend::Sharded)
        );
        decider.switched(at(300));
        // Read-only now, but within the dwell: no switch back yet.
        for ms in [400, 500, 600, 700] {
            assert_eq!(
                step(&mut decider, ms, 500_000, 0, ActiveBackend::Sharded),
                None
            );
        }
        // A quiet window neither leans nor breaks the lean.
        assert_eq!(step(&mut decider, 800, 10, 0, ActiveBackend::Sharded), None);
        assert_eq!(
            step(&mut decider, 1_300, 500_000, 0, ActiveBackend::Sharded),
            Some(ActiveBackend::Rcu)
        );
    }

    #[test]
    fn a_stationary_mixed_workload_does_not_flap() {
        let mut decider = Decider::default();
        let t0 = Instant::now();
        let mut active = ActiveBackend::Rcu;
        let mut switches = 0;
        let (mut gets, mut updates) = (0, 0);
        for i in 0..600u64 {
            // Between the two forms' costs, with noise of ±10 %.
            let noise = if i % 2 == 0 { 1_100 } else { 900 };
            gets += 98 * noise;
            updates += 2 * noise;
            let now = t0 + Duration::from_millis(100 * i);
            if let Some(to) = decider.observe(now, stats(gets, updates), active) {
                active = to;
                decider.switched(now);
                switches += 1;
            }
        }
        assert!(switches <= 1, "{switches} switches");
    }
}
