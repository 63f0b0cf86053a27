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

use std::collections::{BTreeMap, HashSet};
use std::hash::Hash;
use std::io;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use guarded_map_probe_common::change::{self, Change, ChangeHeader, LOST_SLOT, SEQ_SLOT};
use metrics::{Label, counter, histogram};
use parking_lot::RwLock;
use std::sync::Arc;

use super::lag::{Lag, LagHistogram};
use super::map::BpfMap;
use super::ring::ChangeRing;
use super::target::MirrorTarget;
use super::{Plain, bytes_of_mut};
use crate::report::{label, names};

/// How a mirror lists, how often it syncs or reconciles, and what its metrics are labelled.
///
/// ```
/// use std::time::Duration;
/// use guarded_map::bpf::MirrorOptions;
///
/// let options = MirrorOptions::default()
///     .every(Duration::from_millis(500))
///     .reconcile_every(Duration::from_secs(30))
///     .chunk(1024);
/// assert_eq!(options.reconcile_interval(), Duration::from_secs(30));
/// ```
#[derive(Clone, Debug)]
pub struct MirrorOptions {
    chunk: u32,
    every: Duration,
    reconcile_every: Duration,
    gap_timeout: Duration,
    label: Option<String>,
}

impl Default for MirrorOptions {
    /// Batches of 256 entries; a full sync every second; reconciliation every 10 seconds; a
    /// missing change record waited for 1 second.
    fn default() -> Self {
        MirrorOptions {
            chunk: 256,
            every: Duration::from_secs(1),
            reconcile_every: Duration::from_secs(10),
            gap_timeout: Duration::from_secs(1),
            label: None,
        }
    }
}

impl MirrorOptions {
    /// Entries per batch lookup at the start of a listing (it doubles where a hash bucket needs
    /// more).
    #[must_use]
    pub fn chunk(mut self, entries: u32) -> Self {
        self.chunk = entries.max(1);
        self
    }

    /// How often a full-sync mirror lists its kernel map.
    #[must_use]
    pub fn every(mut self, interval: Duration) -> Self {
        self.every = interval;
        self
    }

    /// How often an incremental mirror reconciles (`Duration::ZERO`: only when the kernel reports
    /// a lost record, or when asked with [`Mirror::sync`]).
    #[must_use]
    pub fn reconcile_every(mut self, interval: Duration) -> Self {
        self.reconcile_every = interval;
        self
    }

    /// How long a missing change record is waited for before the mirror goes on without it (and
    /// reconciles).
    #[must_use]
    pub fn gap_timeout(mut self, timeout: Duration) -> Self {
        self.gap_timeout = timeout;
        self
    }

    /// The `bpf_map` label of the mirror's metrics (default: the kernel map's name).
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// The reconciliation interval set.
    pub fn reconcile_interval(&self) -> Duration {
        self.reconcile_every
    }
}

/// What a mirror has done ([`Mirror::stats`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MirrorStats {
    /// Changes applied to the guarded map: change records, the mirror's own writes, and the
    /// differences a full sync found.
    pub changes: u64,
    /// Listings of the whole kernel map: the first, full syncs and reconciliations.
    pub syncs: u64,
    /// Reconciliations (incremental mode).
    pub reconciliations: u64,
    /// Entries found different at reconciliation, and corrected (incremental mode).
    pub drift: u64,
    /// Change records the kernel program could not write (its ring was full).
    pub lost: u64,
    /// Missing change numbers given up on after the gap timeout.
    pub gaps: u64,
    /// Changes the guarded map refused (full at its `max_len`).
    pub refused: u64,
    /// Batches doubled because a hash bucket did not fit (`ENOSPC`), over all listings.
    pub grown: u64,
    /// `true` once a listing had to walk key by key (the map type has no batch lookup).
    pub by_key: bool,
    /// How long the last listing and its application took.
    pub last_sync: Duration,
    /// Change records received but waiting for an earlier number.
    pub pending: usize,
    /// From kernel change to application (incremental mode).
    pub lag: Lag,
}

/// A change waiting for its turn.
struct Pending<K, V> {
    kind: u32,
    key: K,
    value: V,
    /// The kernel's timestamp, or 0 for the mirror's own writes.
    time_ns: u64,
}

/// Where a pending change goes in the order: a kernel record by its number (`local` 0), a local
/// write after the record numbered `seq` (`local` its arrival count, from 1).
type Order = (u64, u64);

/// A local write, sent by a [`MirrorWriter`] to its mirror.
struct Local<K, V> {
    after: u64,
    change: Pending<K, V>,
}

enum Mode {
    Full { last: Instant },
    Incremental(Box<Watch>),
}

/// The incremental mode's kernel side.
struct Watch {
    ring: ChangeRing,
    counters: BpfMap<u32, u64>,
    /// The number of the next kernel record to apply.
    next: u64,
    /// The highest record number received.
    received: u64,
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
    pending: BTreeMap<Order, Pending<K, V>>,
    local_tx: Sender<Local<K, V>>,
    local_rx: Receiver<Local<K, V>>,
    /// Keys changed since a reconciliation began (`None` outside one).
    touched: Option<HashSet<K>>,
    /// Local writes received so far (their order among the writes after one record).
    locals: u64,
    /// Held shared by each local write from its system call to its send; exclusively while the
    /// mirror collects.
    in_flight: Arc<RwLock<()>>,
    /// The highest kernel record number received while no local write was in flight: records up
    /// to it may be applied.
    horizon: u64,
    label: Label,
}

impl<K, V, T> Mirror<'_, K, V, T>
where
    T: ?Sized,
{
    /// What the mirror has done so far.
    pub fn stats(&self) -> MirrorStats {
        MirrorStats {
            pending: self.pending.len(),
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
            next: 1,
            received: 0,
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
            pending: BTreeMap::new(),
            local_tx,
            local_rx,
            touched: None,
            locals: 0,
            in_flight: Arc::new(RwLock::new(())),
            horizon: 0,
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
        self.watch().next = s0 + 1;
        let listing = {
            let Mirror {
                kernel,
                mode,
                pending,
                options,
                ..
            } = self;
            let Mode::Incremental(watch) = mode else {
                unreachable!("start is for incremental mirrors")
            };
            kernel.list_between(options.chunk, || receive_records(watch, pending))?
        };
        self.note_listing(listing.grown, listing.by_key);
        let differences = self.make_equal(&listing.entries, None);
        self.stats.changes += differences;
        counter!(names::MIRROR_CHANGES.name, vec![self.label.clone()]).increment(differences);
        self.synced(started, "full");
        self.drain();
        self.apply_ready(true);
        Ok(())
    }

    /// Compares the kernel map with the guarded map and corrects what differs, skipping keys
    /// changed while it looked.
    fn reconcile(&mut self) -> io::Result<()> {
        let started = Instant::now();
        let s0 = self.sequence()?;
        self.catch_up(s0);
        self.touched = Some(HashSet::new());
        let listing = {
            let Mirror {
                kernel,
                mode,
                pending,
                options,
                ..
            } = self;
            let Mode::Incremental(watch) = mode else {
                unreachable!("reconcile is for incremental mirrors")
            };
            // Records are only collected during the listing; they are applied (and their keys
            // noted as touched) right after it.
            kernel.list_between(options.chunk, || receive_records(watch, pending))?
        };
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
            if self.watch().next > seq {
                return;
            }
            if Instant::now() >= deadline {
                // Missing numbers: go on without them (a reconciliation corrects).
                self.stats.gaps += 1;
                let watch = self.watch();
                watch.next = seq + 1;
                watch.reconcile_now = true;
                self.apply_ready(true);
                return;
            }
            let _ = self.watch().ring.wait(Duration::from_millis(1));
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

    /// Moves arrived change records and local writes into `pending`, with no local write in
    /// flight, and raises the horizon to the records received.
    fn drain(&mut self) {
        let in_flight = Arc::clone(&self.in_flight);
        let _none_in_flight = in_flight.write();
        self.receive_locals();
        let Mirror {
            mode,
            pending,
            horizon,
            ..
        } = self;
        if let Mode::Incremental(watch) = mode {
            receive_records(watch, pending);
            *horizon = watch.received;
        }
    }

    fn receive_locals(&mut self) {
        while let Ok(local) = self.local_rx.try_recv() {
            self.locals += 1;
            // Full mode has no kernel records to order with (`after` is 0): arrival order.
            self.pending
                .insert((local.after, self.locals), local.change);
        }
    }

    /// Applies pending changes whose turn has come.
    fn apply_ready(&mut self, ordered: bool) {
        let now_ns = if ordered { monotonic_ns() } else { 0 };
        let mut applied = 0u64;
        while let Some(entry) = self.pending.first_entry() {
            let (seq, local) = *entry.key();
            if ordered {
                let Mode::Incremental(watch) = &mut self.mode else {
                    unreachable!("ordered changes come from a ring")
                };
                if local == 0 && seq < watch.next {
                    // A record that came after its number was given up on: older than what was
                    // applied since, so dropped (the reconciliation that follows corrects).
                    entry.remove();
                    continue;
                }
                let ready = if local == 0 {
                    seq == watch.next && seq <= self.horizon
                } else {
                    seq < watch.next
                };
                if !ready {
                    break;
                }
                if local == 0 {
                    watch.next += 1;
                }
            }
            let change = entry.remove();
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
        let waiting = !self.pending.is_empty();
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
        let first = self.pending.keys().next().copied();
        let watch = self.watch();
        if let Some((seq, local)) = first {
            watch.next = if local == 0 { seq } else { seq + 1 };
        }
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

/// Moves the records in the ring into `pending` (those numbered before `watch.next` were applied
/// or listed already, and are dropped).
fn receive_records<K: Plain, V: Plain>(
    watch: &mut Watch,
    pending: &mut BTreeMap<Order, Pending<K, V>>,
) {
    let next = watch.next;
    watch.ring.read_up_to(READ_SLICE, |bytes| {
        let Some(record) = read_change::<K, V>(bytes) else {
            return;
        };
        watch.received = watch.received.max(record.header.seq);
        if record.header.seq >= next {
            pending.insert(
                (record.header.seq, 0),
                Pending {
                    kind: record.header.kind,
                    key: record.key,
                    value: record.value,
                    time_ns: record.header.time_ns.max(1),
                },
            );
        }
    });
}

/// The change record in `bytes`, if it is one of `K` keys and `V` values.
fn read_change<K: Plain, V: Plain>(bytes: &[u8]) -> Option<Change<K, V>> {
    if bytes.len() < size_of::<Change<K, V>>() {
        return None;
    }
    let u64_at = |at: usize| u64::from_ne_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let u16_at = |at: usize| u16::from_ne_bytes(bytes[at..at + 2].try_into().expect("2 bytes"));
    let header = ChangeHeader {
        seq: u64_at(std::mem::offset_of!(ChangeHeader, seq)),
        time_ns: u64_at(std::mem::offset_of!(ChangeHeader, time_ns)),
        kind: u32::from_ne_bytes(
            bytes[std::mem::offset_of!(ChangeHeader, kind)..][..4]
                .try_into()
                .expect("4 bytes"),
        ),
        key_size: u16_at(std::mem::offset_of!(ChangeHeader, key_size)),
        value_size: u16_at(std::mem::offset_of!(ChangeHeader, value_size)),
    };
    let expected = Change::<K, V>::header(0, 0, 0);
    if (header.key_size, header.value_size) != (expected.key_size, expected.value_size) {
        return None;
    }
    let mut key = K::default();
    let mut value = V::default();
    let key_at = std::mem::offset_of!(Change<K, V>, key);
    let value_at = std::mem::offset_of!(Change<K, V>, value);
    bytes_of_mut(&mut key).copy_from_slice(&bytes[key_at..key_at + size_of::<K>()]);
    bytes_of_mut(&mut value).copy_from_slice(&bytes[value_at..value_at + size_of::<V>()]);
    Some(Change { header, key, value })
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

/// Writes to a mirror's kernel map and hands each write to the mirror, which applies it in its
/// place among the kernel program's changes ([`Mirror::writer`]).
pub struct MirrorWriter<K, V> {
    kernel: BpfMap<K, V>,
    counters: Option<BpfMap<u32, u64>>,
    tx: Sender<Local<K, V>>,
    in_flight: Arc<RwLock<()>>,
}

impl<K: Plain, V: Plain> MirrorWriter<K, V> {
    /// Sets `key` to `value` in the kernel map; the mirror follows at its next poll.
    pub fn update(&self, key: K, value: V) -> io::Result<()> {
        let _in_flight = self.in_flight.read();
        self.kernel.update(key, value)?;
        self.tell(change::SET, key, value)
    }

    /// Removes `key` from the kernel map; `false` if it was absent. The mirror follows at its
    /// next poll.
    pub fn delete(&self, key: K) -> io::Result<bool> {
        let _in_flight = self.in_flight.read();
        let removed = self.kernel.delete(key)?;
        if removed {
            self.tell(change::DELETE, key, V::default())?;
        }
        Ok(removed)
    }

    fn tell(&self, kind: u32, key: K, value: V) -> io::Result<()> {
        let after = match &self.counters {
            Some(counters) => counters.lookup(SEQ_SLOT)?.unwrap_or(0),
            None => 0,
        };
        let change = Pending {
            kind,
            key,
            value,
            time_ns: 0,
        };
        // A dropped mirror has nothing left to follow: the kernel write stands.
        let _ = self.tx.send(Local { after, change });
        Ok(())
    }

    /// A second writer to the same mirror.
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(MirrorWriter {
            kernel: self.kernel.try_clone()?,
            counters: self.counters.as_ref().map(BpfMap::try_clone).transpose()?,
            tx: self.tx.clone(),
            in_flight: Arc::clone(&self.in_flight),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_record_reads_back_and_a_foreign_one_does_not() {
        let header = Change::<u32, u64>::header(7, 99, change::SET);
        let mut bytes = vec![0u8; size_of::<Change<u32, u64>>()];
        bytes[..8].copy_from_slice(&7u64.to_ne_bytes());
        bytes[8..16].copy_from_slice(&99u64.to_ne_bytes());
        bytes[16..20].copy_from_slice(&change::SET.to_ne_bytes());
        bytes[20..22].copy_from_slice(&4u16.to_ne_bytes());
        bytes[22..24].copy_from_slice(&8u16.to_ne_bytes());
        let key_at = std::mem::offset_of!(Change<u32, u64>, key);
        let value_at = std::mem::offset_of!(Change<u32, u64>, value);
        bytes[key_at..key_at + 4].copy_from_slice(&5u32.to_ne_bytes());
        bytes[value_at..value_at + 8].copy_from_slice(&500u64.to_ne_bytes());
        let back = read_change::<u32, u64>(&bytes).expect("a u32 -> u64 record");
        assert_eq!((back.header, back.key, back.value), (header, 5, 500));
        assert!(
            read_change::<u64, u64>(&bytes).is_none(),
            "key size differs"
        );
        assert!(read_change::<u32, u64>(&bytes[..10]).is_none(), "too short");
    }
}
