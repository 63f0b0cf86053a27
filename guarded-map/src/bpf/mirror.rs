//! [`Mirror`]: a guarded map kept equal to a kernel BPF map, by periodic full listings or by change
//! records that a kernel program writes into a ring buffer (list-then-watch).
//!
//! # Incremental mode: why it is exact
//!
//! A kernel program that changes the map writes a record per change, numbered from one counter
//! (the protocol is in `guarded_map_probe_common::change`). The mirror
//!
//! 1. reads the counter, `S0`, with its ring already open, so no later change is missed;
//! 2. lists the map (not atomically: the kernel walks it bucket by bucket), keeping the records
//!    that arrive meanwhile without applying them;
//! 3. makes its map equal to the listing, then applies the records numbered after `S0`, in
//!    number order.
//!
//! A key that changed after `S0` has a record after `S0`, so its last record wins whatever the
//! listing read; a key that did not has the same value in the listing as in the kernel. From then
//! on, records are applied as they come, held back while an earlier number is missing.
//!
//! The mirror's own writes ([`MirrorWriter`]) change the kernel map and then read the counter, `S`;
//! the change is applied after the records up to `S`, before any later one. A write is in flight
//! between its system call and its arrival at the mirror, so each write holds a shared lock for
//! that time, and the mirror takes it exclusively while it collects what has arrived: it then
//! applies only records received by that moment (`horizon`), which every later write's `S`
//! follows.
//!
//! Reconciliation repeats the listing now and then (and at once when the kernel reports a lost
//! record): it compares the listing with the map, skipping keys changed during it, and corrects
//! and counts what differs (drift: an LRU map's evictions, writes from outside the protocol).

use std::collections::HashSet;
use std::hash::Hash;
use std::io;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use std::sync::Arc;

use guarded_map_probe_common::change::{self, LOST_SLOT, SEQ_SLOT};
use metrics::{Label, counter, histogram};
use parking_lot::RwLock;

use super::lag::LagHistogram;
use super::map::{BpfMap, Listing};
use super::options::{MirrorOptions, MirrorStats};
use super::order::Sequencer;
use super::plain::Plain;
use super::record::{Local, Pending, read_change};
use super::ring::ChangeRing;
use super::target::MirrorTarget;
use super::writer::MirrorWriter;
use crate::report::{label, names};

enum Mode {
    Full { last: Instant },
    Incremental(Box<Watch>),
}

/// The incremental mode's kernel side.
struct Watch {
    ring: ChangeRing,
    counters: BpfMap<u32, u64>,
    gap_since: Option<Instant>,
    lost_seen: u64,
    lost_checked: Instant,
    last_reconcile: Instant,
    reconcile_now: bool,
}

/// A guarded map (hash or ordered) kept equal to a kernel BPF map.
///
/// Two ways to follow the kernel map:
///
/// - [`full`](Self::full): list it every [`every`](MirrorOptions::every) and apply the
///   differences, deletions included. Works with any map and any kernel program; the mirror is
///   behind by up to the interval plus a listing.
/// - [`incremental`](Self::incremental): apply the change records a kernel program writes into a
///   ring buffer (protocol in `guarded_map_probe_common::change`), after one listing, and
///   reconcile now and then. Behind by microseconds; exact (see the module's notes).
///
/// Drive it from a thread of your own with [`poll`](Self::poll); write to the kernel map through a
/// [`MirrorWriter`] so that the mirror orders your writes with the kernel's.
///
/// ```no_run
/// use std::time::Duration;
/// use guarded_map::bpf::{BpfMap, Mirror};
/// use guarded_map::{map_spec, GuardedMap};
///
/// map_spec!(Flows: HashMap<u32, u64>, rcu);
/// let flows: GuardedMap<u32, u64, Flows> = GuardedMap::new();
///
/// let kernel: BpfMap<u32, u64> = BpfMap::open_by_name("flows")?; // needs CAP_BPF
/// let mut mirror = Mirror::full(kernel, &flows)?; // lists once, now
/// for _ in 0..10 {
///     mirror.poll(Duration::from_millis(100))?; // lists again when a second has passed
/// }
/// println!("{} flows, {:?}", flows.len(), mirror.stats());
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Mirror<'t, K, V, T: ?Sized> {
    kernel: BpfMap<K, V>,
    target: &'t T,
    mode: Mode,
    options: MirrorOptions,
    stats: MirrorStats,
    lag: LagHistogram,
    order: Sequencer<K, V>,
    local_tx: Sender<Local<K, V>>,
    local_rx: Receiver<Local<K, V>>,
    /// Keys changed since a reconciliation began (`None` outside one).
    touched: Option<HashSet<K>>,
    /// Held shared by each local write from its system call to its send; exclusively while the
    /// mirror collects (and closes the horizon).
    in_flight: Arc<RwLock<()>>,
    label: Label,
}

impl<K, V, T> Mirror<'_, K, V, T>
where
    T: ?Sized,
{
    /// What the mirror has done so far.
    pub fn stats(&self) -> MirrorStats {
        MirrorStats {
            pending: self.order.len(),
            lag: self.lag.summary(),
            ..self.stats.clone()
        }
    }

    /// The kernel map it follows.
    pub fn kernel(&self) -> &BpfMap<K, V> {
        &self.kernel
    }
}

impl<'t, K, V, T> Mirror<'t, K, V, T>
where
    K: Plain + Eq + Hash,
    V: Plain + PartialEq,
    T: MirrorTarget<K, V> + ?Sized,
{
    /// Follows `kernel` by full listings, with default [`MirrorOptions`]; lists it once before it
    /// returns.
    pub fn full(kernel: BpfMap<K, V>, target: &'t T) -> io::Result<Self> {
        Self::full_with(kernel, target, MirrorOptions::default())
    }

    /// [`full`](Self::full) with `options`.
    pub fn full_with(
        kernel: BpfMap<K, V>,
        target: &'t T,
        options: MirrorOptions,
    ) -> io::Result<Self> {
        let mut mirror = Self::new(
            kernel,
            target,
            options,
            Mode::Full {
                last: Instant::now(),
            },
        );
        mirror.full_sync()?;
        Ok(mirror)
    }

    /// Follows `kernel` by the change records a kernel program writes into `changes`, numbered
    /// from slot 0 of `counters` (the protocol in `guarded_map_probe_common::change`), with
    /// default [`MirrorOptions`]. Lists the map once before it returns.
    ///
    /// An error if `counters` is not an array of at least two `u64` slots.
    pub fn incremental(
        kernel: BpfMap<K, V>,
        changes: ChangeRing,
        counters: BpfMap<u32, u64>,
        target: &'t T,
    ) -> io::Result<Self> {
        Self::incremental_with(kernel, changes, counters, target, MirrorOptions::default())
    }

    /// [`incremental`](Self::incremental) with `options`.
    pub fn incremental_with(
        kernel: BpfMap<K, V>,
        changes: ChangeRing,
        counters: BpfMap<u32, u64>,
        target: &'t T,
        options: MirrorOptions,
    ) -> io::Result<Self> {
        if counters.info().max_entries < change::COUNTER_SLOTS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "BPF map {:?} has {} slots; a mirror's counters need {}",
                    counters.info().name,
                    counters.info().max_entries,
                    change::COUNTER_SLOTS
                ),
            ));
        }
        let now = Instant::now();
        // Records lost before this mirror began are the first listing's to cover.
        let lost_seen = counters.lookup(LOST_SLOT)?.unwrap_or(0);
        let watch = Watch {
            ring: changes,
            counters,
            gap_since: None,
            lost_seen,
            lost_checked: now,
            last_reconcile: now,
            reconcile_now: false,
        };
        let mut mirror = Self::new(kernel, target, options, Mode::Incremental(Box::new(watch)));
        mirror.start()?;
        Ok(mirror)
    }

    fn new(kernel: BpfMap<K, V>, target: &'t T, options: MirrorOptions, mode: Mode) -> Self {
        let (local_tx, local_rx) = mpsc::channel();
        let name = options
            .label
            .clone()
            .unwrap_or_else(|| kernel.info().name.clone());
        Mirror {
            kernel,
            target,
            mode,
            options,
            stats: MirrorStats::default(),
            lag: LagHistogram::default(),
            order: Sequencer::new(),
            local_tx,
            local_rx,
            touched: None,
            in_flight: Arc::new(RwLock::new(())),
            label: Label::new(label::BPF_MAP, name),
        }
    }

    /// A handle that writes to the kernel map and tells this mirror, which applies the write in
    /// its place among the kernel's changes. Cloneable, and `Send` for `Send` keys and values.
    pub fn writer(&self) -> io::Result<MirrorWriter<K, V>> {
        let counters = match &self.mode {
            Mode::Incremental(watch) => Some(watch.counters.try_clone()?),
            Mode::Full { .. } => None,
        };
        Ok(MirrorWriter {
            kernel: self.kernel.try_clone()?,
            counters,
            tx: self.local_tx.clone(),
            in_flight: Arc::clone(&self.in_flight),
        })
    }

    /// Does the mirror's work for up to `timeout`: applies the change records and local writes
    /// that have arrived (incremental), lists the map when its interval has passed (full), and
    /// reconciles when due. Returns the changes applied.
    pub fn poll(&mut self, timeout: Duration) -> io::Result<u64> {
        let before = self.stats.changes;
        match &self.mode {
            Mode::Full { last } => {
                let due = *last + self.options.every;
                let now = Instant::now();
                if now < due {
                    self.receive_locals();
                    self.apply_ready(false);
                    std::thread::sleep((due - now).min(timeout));
                }
                if Instant::now() >= due {
                    self.full_sync()?;
                }
            }
            Mode::Incremental(watch) => {
                watch.ring.wait(timeout)?;
                self.drain();
                self.apply_ready(true);
                self.check_lost()?;
                if self.reconcile_due() {
                    self.reconcile()?;
                }
            }
        }
        Ok(self.stats.changes - before)
    }

    /// Lists the kernel map now and applies what differs: a full sync, or a reconciliation in
    /// incremental mode.
    pub fn sync(&mut self) -> io::Result<()> {
        match self.mode {
            Mode::Full { .. } => self.full_sync(),
            Mode::Incremental(_) => self.reconcile(),
        }
    }

    fn full_sync(&mut self) -> io::Result<()> {
        let started = Instant::now();
        self.receive_locals();
        self.apply_ready(false);
        let listing = self.kernel.list(self.options.chunk)?;
        self.note_listing(listing.grown, listing.by_key);
        let differences = self.make_equal(&listing.entries, None);
        self.stats.changes += differences;
        counter!(names::MIRROR_CHANGES.name, vec![self.label.clone()]).increment(differences);
        self.synced(started, "full");
        if let Mode::Full { last } = &mut self.mode {
            *last = Instant::now();
        }
        Ok(())
    }

    /// The incremental mode's first listing (steps 1 to 3 of the module's notes).
    fn start(&mut self) -> io::Result<()> {
        let started = Instant::now();
        let s0 = self.sequence()?;
        self.order.skip_to(s0);
        let listing = self.list_watching()?;
        self.note_listing(listing.grown, listing.by_key);
        let differences = self.replace_with(listing.entries);
        self.stats.changes += differences;
        counter!(names::MIRROR_CHANGES.name, vec![self.label.clone()]).increment(differences);
        self.synced(started, "full");
        self.drain();
        self.apply_ready(true);
        Ok(())
    }

    /// Lists the kernel map, moving the change records that arrive meanwhile into the order
    /// after each batch (so a long listing does not let the ring fill); they are applied after it.
    fn list_watching(&mut self) -> io::Result<Listing<K, V>> {
        let Mirror {
            kernel,
            mode,
            order,
            options,
            ..
        } = self;
        let Mode::Incremental(watch) = mode else {
            unreachable!("only incremental mirrors watch a ring")
        };
        kernel.list_between(options.chunk, || receive_records(&mut watch.ring, order))
    }

    /// Compares the kernel map with the guarded map and corrects what differs, skipping keys
    /// changed while it looked.
    fn reconcile(&mut self) -> io::Result<()> {
        let started = Instant::now();
        let s0 = self.sequence()?;
        self.catch_up(s0);
        self.touched = Some(HashSet::new());
        let listing = self.list_watching()?;
        let s1 = self.sequence()?;
        self.catch_up(s1);
        // A change the listing saw whose record was not yet numbered when `s1` was read: its
        // program was between the two steps; it is numbered by now.
        self.drain();
        self.apply_ready(true);
        self.note_listing(listing.grown, listing.by_key);
        let touched = self.touched.take().unwrap_or_default();
        let drift = self.make_equal(&listing.entries, Some(&touched));
        self.stats.drift += drift;
        self.stats.changes += drift;
        self.stats.reconciliations += 1;
        counter!(names::MIRROR_DRIFT.name, vec![self.label.clone()]).increment(drift);
        counter!(names::MIRROR_CHANGES.name, vec![self.label.clone()]).increment(drift);
        self.synced(started, "reconcile");
        let watch = self.watch();
        watch.last_reconcile = Instant::now();
        watch.reconcile_now = false;
        Ok(())
    }

    /// Applies records until every one numbered up to `seq` is applied, waiting up to the gap
    /// timeout for them to arrive.
    fn catch_up(&mut self, seq: u64) {
        let deadline = Instant::now() + self.options.gap_timeout;
        loop {
            self.drain();
            self.apply_ready(true);
            if self.order.next() > seq {
                return;
            }
            if Instant::now() >= deadline {
                // Missing numbers: go on without them (a reconciliation corrects).
                self.stats.gaps += 1;
                self.order.skip_to(seq);
                self.watch().reconcile_now = true;
                self.apply_ready(true);
                return;
            }
            let _ = self.watch().ring.wait(Duration::from_millis(1));
        }
    }

    /// Makes the guarded map equal to `entries` (the first listing: nothing to skip) in one
    /// replacement where the map allows it, rather than a write per entry; returns the entries
    /// that differed. A map too small for the listing takes what fits, entry by entry.
    fn replace_with(&mut self, entries: Vec<(K, V)>) -> u64 {
        let listed: HashSet<K> = entries.iter().map(|(k, _)| *k).collect();
        let changed = entries
            .iter()
            .filter(|(k, v)| self.target.value(k).as_ref() != Some(v))
            .count();
        let removed = self
            .target
            .keys()
            .into_iter()
            .filter(|k| !listed.contains(k))
            .count();
        if (changed, removed) == (0, 0) {
            return 0;
        }
        match self.target.replace_all(entries) {
            Ok(()) => (changed + removed) as u64,
            Err(entries) => self.make_equal(&entries, None),
        }
    }

    /// Makes the guarded map equal to `entries`, except for `skip`'s keys; returns the entries
    /// set or removed.
    fn make_equal(&mut self, entries: &[(K, V)], skip: Option<&HashSet<K>>) -> u64 {
        let skipped = |key: &K| skip.is_some_and(|s| s.contains(key));
        let mut listed: HashSet<K> = HashSet::with_capacity(entries.len());
        let mut differences = 0;
        for (key, value) in entries {
            listed.insert(*key);
            if skipped(key) || self.target.value(key).as_ref() == Some(value) {
                continue;
            }
            differences += 1;
            if !self.target.set(*key, *value) {
                self.stats.refused += 1;
            }
        }
        for key in self.target.keys() {
            if !listed.contains(&key) && !skipped(&key) {
                self.target.delete(&key);
                differences += 1;
            }
        }
        differences
    }

    fn note_listing(&mut self, grown: u32, by_key: bool) {
        self.stats.syncs += 1;
        self.stats.grown += u64::from(grown);
        self.stats.by_key |= by_key;
    }

    fn synced(&mut self, started: Instant, kind: &'static str) {
        let took = started.elapsed();
        self.stats.last_sync = took;
        histogram!(
            names::MIRROR_SYNC.name,
            vec![
                self.label.clone(),
                Label::from_static_parts(label::KIND, kind)
            ]
        )
        .record(took.as_secs_f64());
    }

    fn watch(&mut self) -> &mut Watch {
        match &mut self.mode {
            Mode::Incremental(watch) => watch,
            Mode::Full { .. } => unreachable!("only incremental mirrors watch a ring"),
        }
    }

    /// The last change number the kernel side gave.
    fn sequence(&mut self) -> io::Result<u64> {
        Ok(self.watch().counters.lookup(SEQ_SLOT)?.unwrap_or(0))
    }

    /// Moves arrived local writes and change records into the order, with no local write in
    /// flight, and closes the horizon on the records received.
    fn drain(&mut self) {
        let in_flight = Arc::clone(&self.in_flight);
        let _none_in_flight = in_flight.write();
        self.receive_locals();
        if let Mode::Incremental(watch) = &mut self.mode {
            receive_records(&mut watch.ring, &mut self.order);
            self.order.close_horizon();
        }
    }

    fn receive_locals(&mut self) {
        while let Ok(local) = self.local_rx.try_recv() {
            // Full mode has no kernel records to order with (`after` is 0): arrival order.
            self.order.local(local.after, local.change);
        }
    }

    /// Applies pending changes whose turn has come.
    fn apply_ready(&mut self, ordered: bool) {
        let now_ns = if ordered { monotonic_ns() } else { 0 };
        let mut applied = 0u64;
        while let Some(change) = self.order.pop_ready(ordered) {
            if change.time_ns != 0 {
                let lag = now_ns.saturating_sub(change.time_ns);
                self.lag.record(lag);
                if self.lag.count() % 16 == 1 {
                    histogram!(names::MIRROR_LAG.name, vec![self.label.clone()])
                        .record(lag as f64 / 1e9);
                }
            }
            if let Some(touched) = &mut self.touched {
                touched.insert(change.key);
            }
            match change.kind {
                change::DELETE => self.target.delete(&change.key),
                _ => {
                    if !self.target.set(change.key, change.value) {
                        self.stats.refused += 1;
                    }
                }
            }
            applied += 1;
        }
        self.stats.changes += applied;
        if applied > 0 {
            counter!(names::MIRROR_CHANGES.name, vec![self.label.clone()]).increment(applied);
        }
        if ordered {
            self.watch_gap();
        }
    }

    /// Notes when the oldest pending change began to wait for a missing number, and gives up on
    /// the number after the gap timeout.
    fn watch_gap(&mut self) {
        let waiting = self.order.len() > 0;
        let timeout = self.options.gap_timeout;
        let watch = self.watch();
        match (waiting, watch.gap_since) {
            (false, _) => watch.gap_since = None,
            (true, None) => watch.gap_since = Some(Instant::now()),
            (true, Some(since)) if since.elapsed() >= timeout => {
                self.stats.gaps += 1;
                self.skip_gap();
                self.apply_ready(true);
            }
            (true, Some(_)) => {}
        }
    }

    /// Moves the next expected number to the oldest pending change's, and asks for a
    /// reconciliation: the skipped changes may be missing from the map.
    fn skip_gap(&mut self) {
        self.order.skip_gap();
        let watch = self.watch();
        watch.gap_since = None;
        watch.reconcile_now = true;
    }

    /// Reads the kernel's lost-record counter (at most every 100 ms); a new loss asks for a
    /// reconciliation.
    fn check_lost(&mut self) -> io::Result<()> {
        let watch = self.watch();
        if watch.lost_checked.elapsed() < Duration::from_millis(100) {
            return Ok(());
        }
        watch.lost_checked = Instant::now();
        let lost = watch.counters.lookup(LOST_SLOT)?.unwrap_or(0);
        if lost > watch.lost_seen {
            let new = lost - watch.lost_seen;
            watch.lost_seen = lost;
            watch.reconcile_now = true;
            self.stats.lost += new;
            counter!(names::MIRROR_LOST.name, vec![self.label.clone()]).increment(new);
        }
        Ok(())
    }

    fn reconcile_due(&mut self) -> bool {
        let every = self.options.reconcile_every;
        let watch = self.watch();
        watch.reconcile_now || (!every.is_zero() && watch.last_reconcile.elapsed() >= every)
    }
}

/// Records moved from the ring per read: a poll answers in bounded time however fast the kernel
/// writes.
const READ_SLICE: usize = 16_384;

/// Moves the records in the ring into the order.
fn receive_records<K: Plain, V: Plain>(ring: &mut ChangeRing, order: &mut Sequencer<K, V>) {
    ring.read_up_to(READ_SLICE, |bytes| {
        if let Some(record) = read_change::<K, V>(bytes) {
            let change = Pending {
                kind: record.header.kind,
                key: record.key,
                value: record.value,
                time_ns: record.header.time_ns.max(1),
            };
            order.record(record.header.seq, change);
        }
    });
}

/// `CLOCK_MONOTONIC` in ns: the clock of `bpf_ktime_get_ns`.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid `timespec` to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}
