//! A map's compile-time specification: [`MapSpec`] and the [`map_spec!`](crate::map_spec) macro.
//!
//! A spec is a zero-sized type that names, at compile time, one map's [`Descriptor`] and its backend.
//! The `#[guarded_map]` attribute generates one per field; [`map_spec!`](crate::map_spec) writes one
//! by hand.

use crate::backend::{Backend, Storage};
use crate::descriptor::Descriptor;

/// A map's compile-time specification: its static [`Descriptor`] and its backend.
///
/// Implemented by the zero-sized types that `#[guarded_map]` and [`map_spec!`](crate::map_spec)
/// generate, with [`SpecFor`], the bound that code generic over specs uses. Use those macros
/// rather than implementing it by hand.
pub trait MapSpec: 'static {
    /// The backend: [`Rcu`](crate::Rcu), [`Sharded`](crate::Sharded) or
    /// [`Ordered`](crate::Ordered).
    type Backend: Backend;
    /// The descriptor, the same `static` that is registered with `inventory`.
    const DESCRIPTOR: &'static Descriptor;
}

/// The storage type a spec's backend uses for `K` and `V`.
pub(crate) type StoreOf<S, K, V> = <<S as MapSpec>::Backend as Backend>::Store<K, V>;

/// A spec whose backend can store keys `K` and values `V`: the one bound code generic over specs
/// needs.
///
/// Every [`MapSpec`] implements it for the key and value types its backend takes (`Sharded`: any
/// `K: Eq`; `Rcu`, which copies entries when it publishes: `K: Clone + Eq` and `V: Clone`). The
/// macros that declare specs implement it. Code that shares a map between threads adds
/// `GuardedMap<K, V, S>: Sync` where it needs it.
///
/// ```
/// use std::hash::Hash;
///
/// use guarded_map::{map_spec, GuardedMap, SpecFor};
///
/// /// Counts `key` in any map of counters, whatever its backend.
/// fn bump<K: Hash + Eq, S: SpecFor<K, u64>>(counts: &GuardedMap<K, u64, S>, key: K) -> u64 {
///     counts.upsert(key, || 0, |n| {
///         *n += 1;
///         *n
///     })
/// }
///
/// map_spec!(Hits: HashMap<&'static str, u64>, sharded);
/// map_spec!(Misses: HashMap<&'static str, u64>, rcu);
///
/// let hits: GuardedMap<&str, u64, Hits> = GuardedMap::new();
/// let misses: GuardedMap<&str, u64, Misses> = GuardedMap::new();
/// bump(&hits, "/");
/// assert_eq!(bump(&hits, "/"), 2);
/// assert_eq!(bump(&misses, "/"), 1);
/// ```
pub trait SpecFor<K, V>: MapSpec<Backend: Backend<Store<K, V>: Storage<K, V>>> {}

// Implemented per spec, not for every `MapSpec` at once: then a generic `S: MapSpec` that lacks it
// is reported as missing `SpecFor`, instead of as missing the hidden storage bound it stands for.
/// Implements [`SpecFor`] for a spec type (used by the macros that declare specs).
#[doc(hidden)]
#[macro_export]
macro_rules! __spec_for {
    ($spec:ty, $backend:ty) => {
        impl<K, V> $crate::SpecFor<K, V> for $spec where
            <$backend as $crate::Backend>::Store<K, V>: $crate::__private::Storage<K, V>
        {
        }
    };
}

/// Declares a [`MapSpec`] type by hand and registers its descriptor.
///
/// ```
/// use guarded_map::{map_spec, GuardedMap};
///
/// map_spec! {
///     /// Sessions by id.
///     pub SessionsSpec: HashMap<u64, String>, sharded, shards = 16, max_len = 100_000
/// }
/// map_spec!(RoutesSpec: HashMap<String, u32>, rcu, name = "routes", help = "Routing table.");
///
/// let sessions: GuardedMap<u64, String, SessionsSpec> = GuardedMap::new();
/// sessions.insert(7, "alice".to_string());
/// assert_eq!(sessions.get_cloned(&7).as_deref(), Some("alice"));
/// ```
///
/// The backend is `rcu`, `sharded` or `adaptive` for a `HashMap` (a [`GuardedMap`](crate::GuardedMap)), or
/// `ordered` for a `BTreeMap` (an [`OrderedMap`](crate::OrderedMap)); options follow as
/// `key = value`: `name` (metric label, default `module_path::Spec`), `shards`, `max_len`, `stats`
/// (`false` compiles statistics out), `hot_keys`, `shrink` (`Shrink::Never`), `bpf_map`, `help`,
/// and for `adaptive` `start` and `pin` (`ActiveBackend::Rcu`), each a [`Descriptor`](crate::Descriptor)
/// builder call:
///
/// ```
/// use guarded_map::{map_spec, ActiveBackend, GuardedMap};
///
/// map_spec!(Routes: HashMap<String, u32>, adaptive, pin = ActiveBackend::Rcu);
/// let routes: GuardedMap<String, u32, Routes> = GuardedMap::new();
/// assert_eq!(routes.pinned_backend(), Some(ActiveBackend::Rcu));
/// ```
/// An invalid option fails to compile, as does an option that does not apply to the backend
/// (`shards`, `hot_keys` or `shrink` on an ordered map):
///
/// ```compile_fail
/// guarded_map::map_spec!(Bad: HashMap<u8, u8>, sharded, shards = 3);
/// ```
///
/// ```compile_fail
/// guarded_map::map_spec!(Bad: BTreeMap<u8, u8>, ordered, shards = 4);
/// ```
#[macro_export]
macro_rules! map_spec {
    (@type rcu) => { $crate::Rcu };
    (@type sharded) => { $crate::Sharded };
    (@type adaptive) => { $crate::Adaptive };
    // The spec type, its registered descriptor and its `MapSpec` impl, for either kind of map.
    (@spec [$(#[$meta:meta])*] $vis:vis $spec:ident, $key:ty, $value:ty, $backend:ty,
        [$($option:ident = $option_value:expr),*]) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default)]
        $vis struct $spec;

        const _: () = {
            static DESCRIPTOR: $crate::Descriptor = $crate::Descriptor::new(
                ::core::concat!(::core::module_path!(), "::", ::core::stringify!($spec)),
                <$backend as $crate::Backend>::KIND,
            )
            .types(::core::stringify!($key), ::core::stringify!($value))
            .location(::core::module_path!(), ::core::file!(), ::core::line!())
            $(.$option($option_value))*;

            const _: () = DESCRIPTOR.assert_valid();

            $crate::__private::inventory::submit! {
                $crate::registry::Registration(&DESCRIPTOR)
            }

            impl $crate::MapSpec for $spec {
                type Backend = $backend;
                const DESCRIPTOR: &'static $crate::Descriptor = &DESCRIPTOR;
            }
        };
    };
    (
        $(#[$meta:meta])*
        $vis:vis $spec:ident : HashMap<$key:ty, $value:ty>, $backend:ident
        $(, $option:ident = $option_value:expr)* $(,)?
    ) => {
        $crate::map_spec!(@spec [$(#[$meta])*] $vis $spec, $key, $value,
            $crate::map_spec!(@type $backend), [$($option = $option_value),*]);
        $crate::__spec_for!($spec, $crate::map_spec!(@type $backend));
    };
    (
        $(#[$meta:meta])*
        $vis:vis $spec:ident : BTreeMap<$key:ty, $value:ty>, ordered
        $(, $option:ident = $option_value:expr)* $(,)?
    ) => {
        $crate::map_spec!(@spec [$(#[$meta])*] $vis $spec, $key, $value, $crate::Ordered,
            [$($option = $option_value),*]);
    };
}
