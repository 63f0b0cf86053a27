//! A map's compile-time specification: [`MapSpec`] and the [`map_spec!`](crate::map_spec) macro.
//!
//! A spec is a zero-sized type that names, at compile time, one map's [`Descriptor`] and its backend.
//! The `#[guarded_map]` attribute generates one per field; [`map_spec!`](crate::map_spec) writes one
//! by hand.

use crate::backend::Backend;
use crate::descriptor::Descriptor;

/// A map's compile-time specification: its static [`Descriptor`] and its backend.
///
/// Implemented by the zero-sized types that `#[guarded_map]` and [`map_spec!`](crate::map_spec)
/// generate; implement it by hand only if neither fits.
pub trait MapSpec: 'static {
    /// The backend: [`Rcu`](crate::Rcu) or [`Sharded`](crate::Sharded).
    type Backend: Backend;
    /// The descriptor, the same `static` that is registered with `inventory`.
    const DESCRIPTOR: &'static Descriptor;
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
/// The backend is `rcu` or `sharded`; options follow as `key = value`: `name` (metric label, default
/// `module_path::Spec`), `shards`, `max_len`, `stats` (`false` compiles statistics out), `bpf_map`,
/// `help`. An invalid option fails to compile:
///
/// ```compile_fail
/// guarded_map::map_spec!(Bad: HashMap<u8, u8>, sharded, shards = 3);
/// ```
#[macro_export]
macro_rules! map_spec {
    (
        $(#[$meta:meta])*
        $vis:vis $spec:ident : HashMap<$key:ty, $value:ty>, $backend:ident
        $(, $option:ident = $option_value:expr)* $(,)?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default)]
        $vis struct $spec;

        const _: () = {
            static DESCRIPTOR: $crate::Descriptor = $crate::Descriptor::new(
                ::core::concat!(::core::module_path!(), "::", ::core::stringify!($spec)),
                <$crate::map_spec!(@type $backend) as $crate::Backend>::KIND,
            )
            .types(::core::stringify!($key), ::core::stringify!($value))
            .location(::core::module_path!(), ::core::file!(), ::core::line!())
            $(.$option($option_value))*;

            const _: () = DESCRIPTOR.assert_valid();

            $crate::__private::inventory::submit! {
                $crate::registry::Registration(&DESCRIPTOR)
            }

            impl $crate::MapSpec for $spec {
                type Backend = $crate::map_spec!(@type $backend);
                const DESCRIPTOR: &'static $crate::Descriptor = &DESCRIPTOR;
            }
        };
    };
    (@type rcu) => { $crate::Rcu };
    (@type sharded) => { $crate::Sharded };
}
