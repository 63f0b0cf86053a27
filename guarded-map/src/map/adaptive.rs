//! What only an [`Adaptive`] map can do: tell which form it has now, and switch it.

use std::hash::{BuildHasher, Hash};

use super::GuardedMap;
use crate::backend::Adaptive;
use crate::backend::adaptive::Switched;
use guarded_map_probe_common::ActiveBackend;

use crate::backend::adaptive::decide::Estimate;
use crate::error::SwitchError;
use crate::spec::{MapSpec, SpecFor};

impl<K, V, S, H> GuardedMap<K, V, S, H>
where
    K: Clone + Eq + Hash,
    V: Clone,
    S: SpecFor<K, V> + MapSpec<Backend = Adaptive>,
    H: BuildHasher,
{
    /// The form the map has now.
    ///
    /// ```
    /// use guarded_map::{map_spec, ActiveBackend, GuardedMap};
    /// map_spec!(Prices: HashMap<u32, u64>, adaptive);
    ///
    /// let prices: GuardedMap<u32, u64, Prices> = GuardedMap::new();
    /// assert_eq!(prices.active_backend(), ActiveBackend::Sharded);
    /// ```
    pub fn active_backend(&self) -> ActiveBackend {
        self.store.active()
    }

    /// Makes the map `to` while other threads read and write it; returns whether it switched
    /// (false: it was `to` already).
    ///
    /// The entries are copied (with `Clone`, and hashed again) into the new form while writers
    /// wait; readers never wait, and see the map before or after the switch. A panic in `Clone`
    /// or `Hash` leaves the map as it was and is passed on.
    ///
    /// # Errors
    ///
    /// [`SwitchError::Inside`] when called from a closure of this map's own operations.
    ///
    /// ```
    /// use guarded_map::{map_spec, ActiveBackend, GuardedMap, SwitchError};
    /// map_spec!(Counters: HashMap<u32, u64>, adaptive);
    ///
    /// let counters: GuardedMap<u32, u64, Counters> = (0..100).map(|k| (k, 0)).collect();
    /// assert_eq!(counters.switch_backend(ActiveBackend::Rcu), Ok(true));
    /// assert_eq!(counters.switch_backend(ActiveBackend::Rcu), Ok(false));
    /// let inside = counters.update(&1, |_| counters.switch_backend(ActiveBackend::Sharded));
    /// assert_eq!(inside, Some(Err(SwitchError::Inside)));
    /// assert_eq!((counters.len(), counters.active_backend()), (100, ActiveBackend::Rcu));
    /// ```
    pub fn switch_backend(&self, to: ActiveBackend) -> Result<bool, SwitchError> {
        // A pinned map's pin moves with it.
        self.store.switch_requested(to, self.rec(), self.rehash())
    }

    /// Switches the map to `to` and keeps it there: the cost model no longer switches it, until
    /// [`unpin_backend`](Self::unpin_backend). Returns whether it switched.
    ///
    /// # Errors
    ///
    /// As [`switch_backend`](Self::switch_backend).
    ///
    /// ```
    /// use guarded_map::{map_spec, ActiveBackend, GuardedMap};
    /// map_spec!(Routes: HashMap<u32, u32>, adaptive);
    ///
    /// let routes: GuardedMap<u32, u32, Routes> = GuardedMap::new();
    /// routes.pin_backend(ActiveBackend::Sharded)?;
    /// assert_eq!(routes.pinned_backend(), Some(ActiveBackend::Sharded));
    /// routes.unpin_backend();
    /// assert_eq!(routes.pinned_backend(), None);
    /// # Ok::<(), guarded_map::SwitchError>(())
    /// ```
    pub fn pin_backend(&self, to: ActiveBackend) -> Result<bool, SwitchError> {
        self.store.pin(Some(to), self.rec(), self.rehash())
    }

    /// Lets the cost model choose the form again (see [`Adaptive`]).
    pub fn unpin_backend(&self) {
        // Unpinning switches nothing and cannot fail.
        let _ = self.store.pin(None, self.rec(), self.rehash());
    }

    /// The form the map is pinned to, if it is.
    pub fn pinned_backend(&self) -> Option<ActiveBackend> {
        self.stats.pinned()
    }

    /// The map's last switch (from, to, why, when, how long), if it switched.
    ///
    /// ```
    /// use guarded_map::{map_spec, ActiveBackend, GuardedMap, SwitchReason};
    /// map_spec!(Jobs: HashMap<u32, u32>, adaptive);
    ///
    /// let jobs: GuardedMap<u32, u32, Jobs> = (0..10).map(|k| (k, k)).collect();
    /// assert!(jobs.last_switch().is_none());
    /// jobs.switch_backend(ActiveBackend::Rcu)?;
    /// let last = jobs.last_switch().unwrap();
    /// assert_eq!((last.from, last.to, last.reason), (ActiveBackend::Sharded, ActiveBackend::Rcu, SwitchReason::Requested));
    /// # Ok::<(), guarded_map::SwitchError>(())
    /// ```
    pub fn last_switch(&self) -> Option<Switched> {
        self.store.last_switch()
    }

    /// The cost model's estimate for the last window with enough operations: nanoseconds per
    /// operation under each form.
    pub fn backend_estimate(&self) -> Option<Estimate> {
        self.store.estimate()
    }
}
