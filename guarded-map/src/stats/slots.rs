//! A map's own counters: per-thread slots for what a thread may count often, one shared block for
//! the rest.
//!
//! A thread that counts a miss, a contended lock or an ordered map's read gets its own slot for that map ([`PerThread`],
//! which hands an exited thread's slot to the next thread, so counts are never dropped). Only the
//! owning thread writes a slot, with a relaxed load and store (no locked read-modify-write);
//! readers sum all slots. A slot holds only those five counters (40 bytes in the thread's arena),
//! so that a map costs little for every thread that touches it. Everything else counted here is
//! rare and costs far more than a locked add anyway (a snapshot, a `retain`, a refused insert):
//! it goes to one shared block of counters, as capacity changes go to one shared gauge.
//!
//! A backend that touches state of its own on every operation may count there instead, where
//! counting costs least, and attach those counts here (see [`kept`](super::kept) and
//! [`attach`](super::attach)).

use std::ops::Index;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use guarded_map_probe_common::{ActiveBackend, SwitchReason};
use parking_lot::Mutex;

use super::attach::{Attachment, AttachmentsLock};
use super::hot_keys::{self, HotKey, Sketch};
use super::sink;
use super::table::{COUNTERS, Counter};
use crate::descriptor::Descriptor;
use crate::per_thread::PerThread;

/// One thread's counters for one map: those a thread may count on every operation.
#[derive(Default)]
struct Slot([AtomicU64; PER_THREAD.len()]);

/// The counters kept per thread, in a [`Slot`]'s order: what a thread may count on many
/// operations (an ordered map's reads and range scans too, which no lock or reader of theirs
/// counts).
const PER_THREAD: [Counter; 5] = [
    Counter::Miss,
    Counter::Contended,
    Counter::WaitNanos,
    Counter::Get,
    Counter::Range,
];

/// Where `counter` is in a [`Slot`], if it is kept per thread (a constant where `counter` is).
#[inline(always)]
fn per_thread(counter: Counter) -> Option<usize> {
    PER_THREAD.iter().position(|&c| c == counter)
}

/// Adds `n` to a counter that only one thread at a time writes (its owner, or the holder of a lock
/// every writer holds): a relaxed load and store is exact and avoids a locked instruction.
#[inline(always)]
pub(super) fn bump(cell: &AtomicU64, n: u64) {
    cell.store(cell.load(Relaxed).wrapping_add(n), Relaxed);
}

/// Summed counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts([u64; COUNTERS]);

impl Counts {
    pub(crate) fn add(&mut self, other: &Counts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a = a.wrapping_add(b);
        }
    }

    /// Adds `n` to one counter.
    pub(crate) fn add_one(&mut self, counter: Counter, n: u64) {
        let sum = &mut self.0[counter as usize];
        *sum = sum.wrapping_add(n);
    }
}

impl Index<Counter> for Counts {
    type Output = u64;
    fn index(&self, counter: Counter) -> &u64 {
        &self.0[counter as usize]
    }
}

/// An adaptive map's last switch, as its statistics keep it (one word: when, from, to, why).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastSwitch {
    /// The form before.
    pub from: ActiveBackend,
    /// The form after.
    pub to: ActiveBackend,
    /// Why.
    pub reason: SwitchReason,
    /// When, in ms since the process's first switch-aware clock reading (see [`LastSwitch::ago`]).
    at_ms: u64,
}

/// The instant `at_ms` counts from.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl LastSwitch {
    /// `switch`, now, in one word: the time in ms above the low 24 bits of codes.
    fn pack(switch: sink::Switch) -> u64 {
        let at_ms = epoch().elapsed().as_millis() as u64;
        at_ms << 24
            | u64::from(switch.reason.code()) << 16
            | u64::from(switch.to.code()) << 8
            | u64::from(switch.from.code())
    }

    fn unpack(word: u64) -> Option<LastSwitch> {
        Some(LastSwitch {
            from: ActiveBackend::from_code(word as u8)?,
            to: ActiveBackend::from_code((word >> 8) as u8)?,
            reason: SwitchReason::from_code((word >> 16) as u8)?,
            at_ms: word >> 24,
        })
    }

    /// How long ago it happened.
    pub fn ago(&self) -> Duration {
        epoch()
            .elapsed()
            .saturating_sub(Duration::from_millis(self.at_ms))
    }

    /// Whether it happened after `other`.
    pub(crate) fn is_after(&self, other: &LastSwitch) -> bool {
        self.at_ms > other.at_ms
    }
}

/// The statistics of one live map instance, shared with the registry.
#[doc(hidden)]
pub struct MapStats {
    pub(crate) descriptor: &'static Descriptor,
    slots: PerThread<Slot>,
    /// The counters not kept per thread, added to with a locked add; boxed when first needed
    /// (128 bytes that most maps never count in).
    shared: OnceLock<Box<[AtomicU64; COUNTERS]>>,
    capacity: AtomicUsize,
    /// An adaptive map's form (its `ActiveBackend::code`); 0 for the other backends.
    form: AtomicU8,
    /// The form an adaptive map is pinned to (its `ActiveBackend::code`); 0 when not pinned.
    /// The adaptive store keeps its pin here, where reports read it too.
    pinned: AtomicU8,
    /// An adaptive map's last switch ([`LastSwitch::pack`]); 0 before the first.
    last_switch: AtomicU64,
    /// A pin request from outside not yet applied ([`MapStats::request_pin`]).
    pin_request: AtomicU8,
    /// The hot-key summary, made at the first sample (most maps of a program with many instances
    /// never get one).
    hot: OnceLock<Box<Mutex<Sketch>>>,
    attached: AttachmentsLock,
    /// This statistics' own `Arc`, for the attachments stores take.
    me: Weak<MapStats>,
    /// Bytes of table memory per entry of capacity (see [`Stats::memory_bytes`](crate::Stats)).
    entry_bytes: usize,
}

impl MapStats {
    /// New statistics, in an `Arc` (stores hold it through their [`Attachment`]).
    pub(crate) fn new(descriptor: &'static Descriptor, entry_bytes: usize) -> Arc<Self> {
        Arc::new_cyclic(|me| MapStats {
            descriptor,
            slots: PerThread::new(),
            shared: OnceLock::new(),
            capacity: AtomicUsize::new(0),
            form: AtomicU8::new(0),
            pinned: AtomicU8::new(0),
            last_switch: AtomicU64::new(0),
            pin_request: AtomicU8::new(0),
            hot: OnceLock::new(),
            attached: AttachmentsLock::default(),
            me: me.clone(),
            entry_bytes,
        })
    }

    /// Counts `n` events of `counter`.
    #[inline(always)]
    fn add(&self, counter: Counter, n: u64) {
        match per_thread(counter) {
            Some(at) => bump(&self.slots.get().0[at], n),
            None => {
                let shared = self.shared.get_or_init(Box::default);
                shared[counter as usize].fetch_add(n, Relaxed);
            }
        }
    }

    /// Counts one sampled keyed operation on the key of `fingerprint` in the hot-key summary. A
    /// sample that finds the summary busy (another thread's sample) is dropped: samples are a
    /// sample anyway, and a sampling thread must never wait.
    #[cold]
    pub(crate) fn sample_key(&self, fingerprint: u64) {
        let sketch = self.hot.get_or_init(|| {
            let capacity = hot_keys::capacity_for(self.descriptor.hot_key_ranks());
            Box::new(Mutex::new(Sketch::new(capacity)))
        });
        if let Some(mut sketch) = sketch.try_lock() {
            sketch.observe(fingerprint);
        }
    }

    /// The monitored keys, hottest first, and the samples they stand for; `None` before the
    /// first sample (most maps of a program with many instances: a report then skips them
    /// at the cost of one load).
    #[inline]
    pub(crate) fn hot_keys(&self) -> Option<(Vec<HotKey>, u64)> {
        let sketch = self.hot.get()?.lock();
        Some((sketch.ranked(), sketch.total()))
    }

    /// The counts stores attached.
    pub(super) fn attachments(&self) -> &AttachmentsLock {
        &self.attached
    }

    /// Marks the statistics of a map being dropped, once the registry has folded their final
    /// counts: the stores' attachments, dropped next, then fold nothing (no report reads these
    /// statistics any more).
    pub(crate) fn retire(&self) {
        self.attached.lock().retire();
    }

    /// A recorder for the calling thread; `enabled` is a compile-time constant of the map's spec.
    /// Making one costs nothing: the thread's slot is looked up when something is counted.
    #[inline(always)]
    pub(crate) fn recorder(&self, enabled: bool) -> Recorder<'_> {
        Recorder {
            stats: self,
            enabled,
        }
    }

    /// The sum of every thread's counters.
    pub(crate) fn counts(&self) -> Counts {
        let mut total = Counts::default();
        self.add_counts_to(&mut total);
        total
    }

    /// Adds the sum of every thread's counters to `total` (a report adds each instance's straight
    /// into its descriptor's sum: no copy of the counts per instance).
    pub(crate) fn add_counts_to(&self, total: &mut Counts) {
        if let Some(shared) = self.shared.get() {
            for (sum, cell) in total.0.iter_mut().zip(shared.iter()) {
                *sum = sum.wrapping_add(cell.load(Relaxed));
            }
        }
        self.slots.fold((), |(), slot| {
            for (&counter, cell) in PER_THREAD.iter().zip(&slot.0) {
                total.add_one(counter, cell.load(Relaxed));
            }
        });
        self.attached.lock().add_to(total);
    }

    /// An adaptive map's form (its `ActiveBackend::code`), 0 for another backend's map.
    pub(crate) fn form(&self) -> u8 {
        self.form.load(Relaxed)
    }

    /// The form an adaptive map is pinned to, if it is.
    pub(crate) fn pinned(&self) -> Option<ActiveBackend> {
        ActiveBackend::from_code(self.pinned.load(Relaxed))
    }

    /// Sets an adaptive map's pin (see [`pinned`](Self::pinned)).
    pub(crate) fn set_pinned(&self, pin: Option<ActiveBackend>) {
        self.pinned
            .store(pin.map_or(0, ActiveBackend::code), Relaxed);
    }

    /// Asks the map (if adaptive) to hold `to`, or with `None` to let its cost model decide.
    pub(crate) fn request_pin(&self, to: Option<ActiveBackend>) {
        self.pin_request
            .store(to.map_or(Self::UNPIN, ActiveBackend::code), Relaxed);
    }

    /// A pin request's code for "let the cost model decide".
    const UNPIN: u8 = u8::MAX;

    /// The pin request not yet applied, taken: `Some(None)` to unpin.
    pub(crate) fn take_pin_request(&self) -> Option<Option<ActiveBackend>> {
        if self.pin_request.load(Relaxed) == 0 {
            return None;
        }
        match self.pin_request.swap(0, Relaxed) {
            0 => None,
            Self::UNPIN => Some(None),
            code => Some(ActiveBackend::from_code(code)),
        }
    }

    /// An adaptive map's last switch, if it switched.
    pub(crate) fn last_switch(&self) -> Option<LastSwitch> {
        LastSwitch::unpack(self.last_switch.load(Relaxed))
    }

    /// The capacity gauge (entries the map can hold without allocating).
    pub(crate) fn capacity(&self) -> usize {
        self.capacity.load(Relaxed)
    }

    /// The estimated table memory of the map, in bytes.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.capacity().saturating_mul(self.entry_bytes)
    }
}

/// The calling thread's view of a map's statistics, for one operation.
///
/// Lazy: it looks the thread's slot up only when it counts, so that an operation which counts in
/// state of its own (a `Sharded` write) or only on a cold path pays no thread-local loads.
#[derive(Clone, Copy)]
#[doc(hidden)]
pub struct Recorder<'a> {
    stats: &'a MapStats,
    enabled: bool,
}

impl<'a> Recorder<'a> {
    /// Whether this map collects statistics.
    #[inline(always)]
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// A hold on the map's statistics for a store being built, through which it attaches the
    /// counts it keeps itself.
    pub(crate) fn attachment(&self) -> Attachment {
        let stats = self
            .stats
            .me
            .upgrade()
            .expect("a map's statistics live in an Arc");
        Attachment::new(stats, self.enabled)
    }

    /// Counts `n` events.
    #[inline(always)]
    pub(crate) fn count(&self, counter: Counter, n: u64) {
        if self.enabled {
            self.stats.add(counter, n);
        }
    }

    /// Counts one contended lock acquisition that waited `wait`.
    #[inline]
    pub(crate) fn contended(&self, wait: Duration) {
        let sink = sink::get();
        if let Some(sink) = sink {
            (sink.waited)(wait);
        }
        if self.enabled() {
            self.count(Counter::Contended, 1);
            self.count(Counter::WaitNanos, duration_nanos(wait));
            // A rare event, already slow: recorded straight into the facade's histogram.
            if let Some(sink) = sink {
                (sink.observe_wait)(self.stats.descriptor, wait);
            }
        }
    }

    /// Shows one RCU publish that took `took` to the histograms (the writer counts it itself, see
    /// `PublishCounts`, and shows it one publish in 16: see the `Rcu` store).
    #[inline]
    pub(crate) fn observe_publish(&self, took: Duration) {
        if self.enabled()
            && let Some(sink) = sink::get()
        {
            (sink.observe_publish)(self.stats.descriptor, took);
        }
    }

    /// An adaptive map switched: its form moves, the switch is counted and remembered, and goes
    /// to the sink.
    #[cold]
    pub(crate) fn switched(&self, switch: sink::Switch, took: Duration) {
        self.stats.form.store(switch.to.code(), Relaxed);
        self.stats
            .last_switch
            .store(LastSwitch::pack(switch), Relaxed);
        if self.enabled() {
            self.count(Counter::Switches, 1);
            if let Some(sink) = sink::get() {
                (sink.switched)(self.stats.descriptor, switch, took);
            }
        }
    }

    /// The statistics recorded into.
    pub(crate) fn stats(&self) -> &'a MapStats {
        self.stats
    }

    /// Sets an adaptive map's form (its `ActiveBackend::code`), when it is made.
    pub(crate) fn set_form(&self, form: u8) {
        self.stats.form.store(form, Relaxed);
    }

    /// Sets the capacity gauge (writers that know the whole map's capacity).
    #[inline]
    pub(crate) fn set_capacity(&self, capacity: usize) {
        self.stats.capacity.store(capacity, Relaxed);
    }

    /// Counts one shrink of a table from `before` to `after` entries of capacity (the capacity
    /// gauge is moved by the caller, as for any rebuild).
    #[cold]
    pub(crate) fn shrunk(&self, before: usize, after: usize) {
        let bytes = before
            .saturating_sub(after)
            .saturating_mul(self.stats.entry_bytes);
        self.count(Counter::Shrinks, 1);
        self.count(Counter::ShrunkBytes, bytes as u64);
    }

    /// Moves the capacity gauge by the change of one shard (writers that see only their shard).
    #[inline]
    pub(crate) fn capacity_changed(&self, before: usize, after: usize) {
        if after > before {
            self.stats.capacity.fetch_add(after - before, Relaxed);
        } else if before > after {
            self.stats.capacity.fetch_sub(before - after, Relaxed);
        }
    }
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
