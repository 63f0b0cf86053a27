//! The adaptive backend: one map that is an `Rcu` store or a `Sharded` store at a time, and
//! switches between them while readers and writers run (`gate.rs` has the protocol).
//!
//! Both stores live in the map for its whole life; the inactive one is empty. Their counts are
//! attached to the map's one statistics, so the statistics run on across a switch exactly. A
//! switch copies the active store's entries into the other with `Clone` (and `Hash`, for the
//! hashes the tables need); a panic there leaves the map as it was.

pub(crate) mod decide;
pub(crate) mod gate;

use std::borrow::Borrow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::time::Instant;

use decide::{Decider, Estimate};
use gate::Gate;
use guarded_map_probe_common::{ActiveBackend, SwitchReason};

use crate::error::SwitchError;

use super::{RcuStore, ShardedStore, Storage, StoreConfig, Upserted};
use crate::compute::{Compute, Outcome};
use crate::stats::sink::Switch;
use crate::stats::{MapStats, Recorder, Stats};
use crate::sync::Mutex;
use crate::table::Entry;
use crate::trie::Frozen;

/// Storage of the [`Adaptive`](crate::Adaptive) backend.
///
/// `repr(C)` with the `Sharded` form first: it then has the map's own address, under which the
/// map's closures record themselves (`reentry`), so that a read nested in a read of this map
/// finds the frame of the outer one and enters its shard past a waiting writer (see
/// `sharded/lock.rs`).
#[repr(C)]
pub struct AdaptiveStore<K, V> {
    sharded: ShardedStore<K, V>,
    gate: Gate,
    rcu: RcuStore<K, V>,
    /// The cost model's state; tried, never waited for.
    decider: Mutex<Decider>,
    /// A switch the cost model decided, carried out by the next operation that can hash keys.
    /// (The form the map is pinned to, if any, is kept in its `MapStats`, where reports read it.)
    due: AtomicU8,
    /// The last switch: from, to, why, when.
    last_switch: Mutex<Option<Switched>>,
}

/// One switch of an adaptive map.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Switched {
    /// The form before.
    pub from: ActiveBackend,
    /// The form after.
    pub to: ActiveBackend,
    /// Why.
    pub reason: SwitchReason,
    /// When it ended.
    pub at: Instant,
    /// How long writers waited for the copy and readers' leaving, in all.
    pub took: std::time::Duration,
    /// The estimate it followed (the last window's, for a requested switch).
    pub estimate: Option<Estimate>,
}

/// The config of the form not in use: no capacity reserved.
fn empty(config: StoreConfig) -> StoreConfig {
    StoreConfig {
        capacity: 0,
        ..config
    }
}

/// `due` holds a form's code ([`ActiveBackend::code`]), or this.
const NONE: u8 = 0;

/// Runs `$body` with `$store` bound to the store `$active` names, both typed alike.
macro_rules! on {
    ($self:ident, $active:expr, |$store:ident| $body:expr) => {
        match $active {
            ActiveBackend::Rcu => {
                let $store = &$self.rcu;
                $body
            }
            ActiveBackend::Sharded => {
                let $store = &$self.sharded;
                $body
            }
        }
    };
}

impl<K: Clone + Eq, V: Clone> AdaptiveStore<K, V> {
    /// A store of `rcu` and `sharded`, `active` in use (and pinned there if `pinned`).
    fn with_stores(
        active: ActiveBackend,
        pinned: bool,
        rec: Recorder<'_>,
        rcu: RcuStore<K, V>,
        sharded: ShardedStore<K, V>,
    ) -> Self {
        rec.set_form(active.code());
        rec.stats().set_pinned(pinned.then_some(active));
        AdaptiveStore {
            gate: Gate::new(active),
            rcu,
            sharded,
            decider: Mutex::new(Decider::default()),
            due: AtomicU8::new(NONE),
            last_switch: Mutex::new(None),
        }
    }

    /// Pins the map to `to` (switching to it now), or with `None` lets the cost model decide again.
    pub(crate) fn pin(
        &self,
        to: Option<ActiveBackend>,
        rec: Recorder<'_>,
        rehash: impl Fn(&K) -> u64,
    ) -> Result<bool, SwitchError> {
        let Some(to) = to else {
            rec.stats().set_pinned(None);
            return Ok(false);
        };
        let switched = self.switch_to(to, SwitchReason::Requested, rec, rehash)?;
        rec.stats().set_pinned(Some(to));
        Ok(switched)
    }

    /// Switches to `to` on request; a pinned map's pin moves with it.
    pub(crate) fn switch_requested(
        &self,
        to: ActiveBackend,
        rec: Recorder<'_>,
        rehash: impl Fn(&K) -> u64,
    ) -> Result<bool, SwitchError> {
        let switched = self.switch_to(to, SwitchReason::Requested, rec, rehash)?;
        if rec.stats().pinned().is_some() {
            rec.stats().set_pinned(Some(to));
        }
        Ok(switched)
    }

    /// The last switch, if any.
    pub(crate) fn last_switch(&self) -> Option<Switched> {
        *self.last_switch.lock()
    }

    /// The cost model's last estimate, if a window with enough operations ended.
    pub(crate) fn estimate(&self) -> Option<Estimate> {
        self.decider.lock().last
    }

    /// At a sample point: ends the cost model's window when one has passed, and marks a switch
    /// due when the model decides one (the next operation that can hash keys carries it out).
    fn sample_window(&self, stats: &MapStats) {
        if let Some(request) = stats.take_pin_request() {
            // From outside (`guarded-map-probe pin`): held from now on, switched by the next
            // operation that can hash keys.
            stats.set_pinned(request);
            if let Some(to) = request {
                self.due.store(to.code(), Relaxed);
            }
        }
        if stats.pinned().is_some() {
            return;
        }
        let Some(mut decider) = self.decider.try_lock() else {
            return;
        };
        let now = Instant::now();
        if !decider.due(now) {
            return;
        }
        let counts = Stats::from_counts(&stats.counts());
        if let Some(to) = decider.observe(now, counts, self.gate.active()) {
            self.due.store(to.code(), Relaxed);
        }
    }

    /// Carries out a switch the cost model marked due (one relaxed load when none is).
    #[inline]
    fn switch_if_due(&self, rec: Recorder<'_>, rehash: impl Fn(&K) -> u64) {
        if self.due.load(Relaxed) != NONE {
            self.switch_now(rec, rehash);
        }
    }

    /// Runs a keyed write `f` on the form in use (handing it the hasher), then carries out a
    /// switch the cost model marked due.
    #[inline(always)]
    fn keyed_write<F: Fn(&K) -> u64, R>(
        &self,
        rec: Recorder<'_>,
        rehash: F,
        f: impl FnOnce(ActiveBackend, &F) -> R,
    ) -> R {
        let out = self.gate.write(|active| f(active, &rehash));
        self.switch_if_due(rec, rehash);
        out
    }

    #[cold]
    #[inline(never)]
    fn switch_now(&self, rec: Recorder<'_>, rehash: impl Fn(&K) -> u64) {
        let Some(to) = ActiveBackend::from_code(self.due.swap(NONE, Relaxed)) else {
            return;
        };
        // A pinned map moves only to its pin (asked from outside); an unpinned one where its
        // cost model sends it.
        let reason = match rec.stats().pinned() {
            Some(pin) if pin == to => SwitchReason::Requested,
            Some(_) => return,
            None => SwitchReason::CostModel,
        };
        // Inside an operation of this map (a closure that reads it): the next one will.
        if self.switch_to(to, reason, rec, rehash).is_err() {
            self.due.store(to.code(), Relaxed);
        }
    }

    /// [`Storage::get`] after its first try met a switch: tries the form in use until a try
    /// holds (a switch is at most one at a time, so this ends once it does).
    #[cold]
    #[inline(never)]
    fn get_during_switch<Q, R>(
        &self,
        hash: u64,
        key: &Q,
        stats: &Arc<MapStats>,
        counting: bool,
        mut f: impl FnOnce(&V) -> R,
    ) -> Option<R>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        loop {
            match self.try_get(hash, key, stats, counting, f) {
                Ok(out) => return out,
                Err(back) => f = back,
            }
            std::hint::spin_loop();
        }
    }

    /// One try of a keyed read on the form in use (see [`Storage::get`]): `f` back, uncalled, if
    /// a switch moved the map meanwhile.
    #[inline(always)]
    fn try_get<Q, R, F>(
        &self,
        hash: u64,
        key: &Q,
        stats: &Arc<MapStats>,
        counting: bool,
        f: F,
    ) -> Result<Option<R>, F>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
        F: FnOnce(&V) -> R,
    {
        let form = self.gate.active();
        let valid = || self.gate.holds(form);
        on!(self, form, |store| store
            .get_if(hash, key, stats, counting, valid, f))
    }

    /// The representation in use now.
    #[inline]
    pub(crate) fn active(&self) -> ActiveBackend {
        self.gate.active()
    }

    /// Makes `to` the representation in use (see `gate.rs`). Returns whether it switched.
    pub(crate) fn switch_to(
        &self,
        to: ActiveBackend,
        reason: SwitchReason,
        rec: Recorder<'_>,
        rehash: impl Fn(&K) -> u64,
    ) -> Result<bool, SwitchError> {
        // Inside a keyed read's closure (`with`) the read's own protection is held, which the
        // switch would wait for: refuse, as the gate refuses inside its own marks.
        if crate::reentry::reading(std::ptr::from_ref(self).cast()) || self.rcu.reading_here() {
            return Err(SwitchError::Inside);
        }
        let from = self.gate.active();
        let start = Instant::now();
        let switched = self.gate.switch(
            to,
            |from, to| {
                let mut entries = Vec::with_capacity(on!(self, from, |store| store.len()));
                on!(self, from, |store| store.for_each(rec, |key, value| {
                    entries.push(Entry {
                        hash: rehash(key),
                        key: key.clone(),
                        value: value.clone(),
                    });
                }));
                on!(self, to, |store| store.replace_all(entries, rec, &rehash));
            },
            |from| match from {
                // Keyed reads check the form inside the form's own protection, not on the gate:
                // wait for the `Rcu` reads marked now, or let each shard's write lock wait for
                // the reads holding it (see `get`).
                ActiveBackend::Rcu => {
                    self.rcu.wait_for_reads();
                    self.rcu.clear(rec);
                }
                ActiveBackend::Sharded => self.sharded.empty_all(rec),
            },
        )?;
        // Each store moved the capacity gauge its own way: set it to the one in use.
        rec.set_capacity(self.capacity());
        if switched {
            let at = Instant::now();
            let took = at.duration_since(start);
            rec.switched(Switch { from, to, reason }, took);
            let mut decider = self.decider.lock();
            decider.switched(at);
            *self.last_switch.lock() = Some(Switched {
                from,
                to,
                reason,
                at,
                took,
                estimate: decider.last,
            });
        }
        Ok(switched)
    }
}

// The keyed operations are inlined (`inline(always)`): they hold both stores' paths, which made
// them too large for the compiler to inline, and the call cost a keyed read 30 instructions of
// saved registers on top of the gate's few (`./scripts/op-instructions adaptive-rcu`).
impl<K: Clone + Eq, V: Clone> Storage<K, V> for AdaptiveStore<K, V> {
    fn new(config: StoreConfig, rec: Recorder<'_>) -> Self {
        Self::from_entries(config, Vec::new(), rec, |_: &K| 0)
    }

    fn from_entries(
        config: StoreConfig,
        entries: Vec<Entry<K, V>>,
        rec: Recorder<'_>,
        rehash: impl Fn(&K) -> u64,
    ) -> Self {
        // The form it starts in holds the entries; the other is made first, empty, so that the
        // first form sets the capacity gauge last.
        match config.start {
            ActiveBackend::Rcu => {
                let sharded = ShardedStore::new(empty(config), rec);
                let rcu = RcuStore::from_entries(config, entries, rec, rehash);
                Self::with_stores(ActiveBackend::Rcu, config.pinned, rec, rcu, sharded)
            }
            ActiveBackend::Sharded => {
                let rcu = RcuStore::new(empty(config), rec);
                let sharded = ShardedStore::from_entries(config, entries, rec, rehash);
                Self::with_stores(ActiveBackend::Sharded, config.pinned, rec, rcu, sharded)
            }
        }
    }

    #[inline(always)]
    fn get<Q, R>(
        &self,
        hash: u64,
        key: &Q,
        stats: &Arc<MapStats>,
        counting: bool,
        f: impl FnOnce(&V) -> R,
    ) -> Option<R>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        // No mark of the gate's: the form's own read protection (the `Rcu` reader's mark, the
        // shard's read lock) is entered first, and the gate's state checked inside it. A switch
        // away from a form changes the state first and then waits for that protection to be let
        // go before it empties the form (see `gate.rs`). The check fails only while a switch
        // runs; the read then goes on out of line, uncounted where it failed.
        match self.try_get(hash, key, stats, counting, f) {
            Ok(out) => out,
            Err(f) => self.get_during_switch(hash, key, stats, counting, f),
        }
    }

    #[inline(always)]
    fn insert(
        &self,
        hash: u64,
        key: K,
        value: V,
        rec: Recorder<'_>,
        rehash: impl Fn(&K) -> u64,
    ) -> Result<Option<V>, (K, V)> {
        self.keyed_write(rec, rehash, |active, rehash| {
            on!(self, active, |store| store
                .insert(hash, key, value, rec, rehash))
        })
    }

    #[inline(always)]
    fn remove<Q>(
        &self,
        hash: u64,
        key: &Q,
        rec: Recorder<'_>,
        rehash: impl Fn(&K) -> u64,
    ) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        self.keyed_write(rec, rehash, |active, rehash| {
            on!(self, active, |store| store.remove(hash, key, rec, rehash))
        })
    }

    #[inline(always)]
    fn update<Q, R>(
        &self,
        hash: u64,
        key: &Q,
        rec: Recorder<'_>,
        rehash: impl Fn(&K) -> u64,
        f: impl FnOnce(&mut V) -> R,
    ) -> Option<R>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        self.keyed_write(rec, rehash, |active, rehash| {
            on!(self, active, |store| store
                .update(hash, key, rec, rehash, f))
        })
    }

    #[inline(always)]
    fn upsert<R>(
        &self,
        hash: u64,
        key: K,
        rec: Recorder<'_>,
        rehash: impl Fn(&K) -> u64,
        default: impl FnOnce() -> V,
        f: impl FnOnce(&mut V) -> R,
    ) -> Result<Upserted<R>, K> {
        self.keyed_write(rec, rehash, |active, rehash| {
            on!(self, active, |store| store
                .upsert(hash, key, rec, rehash, default, f))
        })
    }

    #[inline(always)]
    fn compute<Q, R>(
        &self,
        hash: u64,
        key: &Q,
        rec: Recorder<'_>,
        rehash: impl Fn(&K) -> u64,
        owned: impl FnOnce(&Q) -> K,
        f: impl FnOnce(Option<(&K, &V)>) -> (Compute<V>, R),
    ) -> Result<(Outcome<K, V>, R), (V, R)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        self.keyed_write(rec, rehash, |active, rehash| {
            on!(self, active, |store| store
                .compute(hash, key, rec, rehash, owned, f))
        })
    }

    fn retain(&self, rec: Recorder<'_>, f: impl FnMut(&K, &mut V) -> bool) {
        self.gate
            .write(|active| on!(self, active, |store| store.retain(rec, f)))
    }

    fn replace_all(
        &self,
        entries: Vec<Entry<K, V>>,
        rec: Recorder<'_>,
        rehash: impl Fn(&K) -> u64,
    ) -> usize {
        self.gate.write(|active| {
            on!(self, active, |store| store
                .replace_all(entries, rec, rehash))
        })
    }

    fn copy_part(
        &self,
        position: usize,
        rec: Recorder<'_>,
        pinned: &mut Option<Frozen<K, V>>,
        out: &mut Vec<(K, V)>,
    ) -> Option<usize>
    where
        K: Clone,
        V: Clone,
    {
        // A live iteration walks the state it began on: positions are the representation's own.
        let frozen = pinned.get_or_insert_with(|| {
            self.gate.read(|active| match active {
                ActiveBackend::Rcu => self.rcu.pin(),
                ActiveBackend::Sharded => self.sharded.frozen(rec),
            })
        });
        let (leaf, next) = crate::trie::iter::leaf_from(frozen.root(), position)?;
        out.extend(
            leaf.table
                .iter()
                .map(|pair| (pair.key.clone(), pair.value.clone())),
        );
        Some(next)
    }

    fn clear(&self, rec: Recorder<'_>) -> usize {
        self.gate
            .write(|active| on!(self, active, |store| store.clear(rec)))
    }

    fn for_each(&self, rec: Recorder<'_>, f: impl FnMut(&K, &V)) {
        self.gate
            .read(|active| on!(self, active, |store| store.for_each(rec, f)))
    }

    fn len(&self) -> usize {
        on!(self, self.gate.active(), |store| store.len())
    }

    fn sampled(&self, stats: &MapStats) {
        self.sample_window(stats);
    }

    fn settle(&self, rec: Recorder<'_>, rehash: impl Fn(&K) -> u64) {
        self.switch_if_due(rec, rehash);
    }

    fn capacity(&self) -> usize {
        on!(self, self.gate.active(), |store| store.capacity())
    }

    fn shrink_to_fit(&self, rec: Recorder<'_>, rehash: impl Fn(&K) -> u64) {
        self.gate
            .write(|active| on!(self, active, |store| store.shrink_to_fit(rec, rehash)))
    }

    fn snapshot(&self, rec: Recorder<'_>) -> Arc<Frozen<K, V>>
    where
        K: Clone,
        V: Clone,
    {
        self.gate
            .read(|active| on!(self, active, |store| store.snapshot(rec)))
    }

    fn duplicate(&self, config: StoreConfig, rec: Recorder<'_>) -> Self
    where
        K: Clone,
        V: Clone,
    {
        // As `from_entries`: the form not in use first, empty.
        self.gate.read(|active| match active {
            ActiveBackend::Rcu => {
                let sharded = ShardedStore::new(empty(config), rec);
                let rcu = self.rcu.duplicate(config, rec);
                Self::with_stores(active, config.pinned, rec, rcu, sharded)
            }
            ActiveBackend::Sharded => {
                let rcu = RcuStore::new(empty(config), rec);
                let sharded = self.sharded.duplicate(config, rec);
                Self::with_stores(active, config.pinned, rec, rcu, sharded)
            }
        })
    }
}
