//! What only an [`Adaptive`] map can do: tell which form it has now, and switch it.

use std::hash::{BuildHasher, Hash};

use super::GuardedMap;
use crate::backend::Adaptive;
use crate::backend::adaptive::gate::ActiveBackend;
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
    /// assert_eq!(prices.active_backend(), ActiveBackend::Rcu);
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
    /// assert_eq!(counters.switch_backend(ActiveBackend::Sharded), Ok(true));
    /// assert_eq!(counters.switch_backend(ActiveBackend::Sharded), Ok(false));
    /// let inside = counters.update(&1, |_| counters.switch_backend(ActiveBackend::Rcu));
    /// assert_eq!(inside, Some(Err(SwitchError::Inside)));
    /// assert_eq!((counters.len(), counters.active_backend()), (100, ActiveBackend::Sharded));
    /// ```
    pub fn switch_backend(&self, to: ActiveBackend) -> Result<bool, SwitchError> {
        self.store.switch_to(to, self.rec(), self.rehash())
    }
}
