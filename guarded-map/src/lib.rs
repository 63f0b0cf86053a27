//! Concurrent, instrumented `HashMap`s, chosen per field.
//!
//! [`GuardedMap`] is a hash map shared by `&self` whose concurrency strategy is fixed at compile time
//! by a spec type:
//!
//! - [`Rcu`]: read-mostly maps. Reads never lock or wait; writes copy one shard and publish a new
//!   version; [`snapshot`](GuardedMap::snapshot) is O(1).
//! - [`Sharded`]: write-heavy maps. A power-of-two array of cache-padded reader-writer locks.
//!
//! Every map counts what happens to it (reads, misses, writes by kind, lock contention and wait time,
//! RCU publishes and copied entries) in per-thread slots that cost about a nanosecond, readable with
//! [`GuardedMap::stats`] or, aggregated per declared map, through [`registry`]. The [`report`]
//! module publishes those statistics through the `metrics` facade ([`describe`], [`report_now`],
//! [`Reporter`]); with the feature `prometheus`, `prometheus::install` serves them at `/metrics`.
//!
//! Most code gets its maps from the [`guarded_map`] attribute, which rewrites a struct's `HashMap`
//! fields and generates one spec per field:
//!
//! ```
//! use std::collections::HashMap;
//! use guarded_map::guarded_map;
//!
//! #[guarded_map]
//! #[derive(Default)]
//! struct State {
//!     #[guarded(rcu)]
//!     routes: HashMap<String, u16>,
//!     #[guarded(sharded(shards = 16), max_len = 10_000)]
//!     sessions: HashMap<u64, String>,
//! }
//!
//! let state = State::default();
//! state.sessions.insert(1, "alice".into());
//! assert_eq!(state.sessions.len(), 1);
//! ```
//!
//! Without the attribute, [`map_spec!`] declares a spec by hand:
//!
//! ```
//! use guarded_map::{map_spec, GuardedMap};
//!
//! map_spec!(pub Routes: HashMap<String, u16>, rcu, help = "Upstream port by path prefix.");
//!
//! let routes: GuardedMap<String, u16, Routes> = GuardedMap::new();
//! routes.insert("/api".to_string(), 8080);
//! assert_eq!(routes.get_cloned("/api"), Some(8080));
//! assert_eq!(routes.stats().gets, 1);
//! ```
//!
//! # Hashers
//!
//! The hasher is the map's last type parameter and defaults to std's `RandomState`, exactly like the
//! `HashMap` it replaces, so HashDoS resistance is never traded away silently. Any `BuildHasher` can
//! be given (`GuardedMap<K, V, S, foldhash::fast::RandomState>`).
//!
//! # Linking
//!
//! Descriptors are collected with `inventory`, which relies on the linker keeping each declaring
//! object file. A library crate whose items the final binary never references may be dropped by the
//! linker, and with it its descriptors. Referencing anything from that crate (for example
//! `use that_crate as _;` is not enough, but calling one of its functions is) keeps them.
#![warn(missing_docs)]
// On docs.rs (all features), each feature-gated item says which feature it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backend;
#[cfg(all(feature = "bpf", target_os = "linux"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "bpf", target_os = "linux"))))]
pub mod bpf;
mod clock;
mod compute;
mod descriptor;
mod error;
mod fence;
mod hasher_of;
mod hooks;
mod live_iter;
mod map;
mod ordered;
mod per_thread;
#[cfg(feature = "prometheus")]
#[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
pub mod prometheus;
mod reentry;
pub mod registry;
pub mod report;
#[cfg(feature = "serde")]
mod serialize;
mod shrink;
mod snapshot;
mod spec;
mod stats;
mod sync;
mod table;
mod trie;

pub use backend::adaptive::Switched;
pub use backend::adaptive::decide::Estimate;
pub use backend::{Adaptive, Backend, Ordered, Rcu, Sharded};
pub use compute::{Compute, Computed};
pub use descriptor::{BackendKind, ConfigError, Descriptor, Shrink};
pub use error::{CapacityError, SwitchError};
pub use guarded_map_macros::guarded_map;
pub use guarded_map_probe_common::{ActiveBackend, SwitchReason};
pub use live_iter::LiveIter;
pub use map::GuardedMap;
pub use ordered::{OrderedMap, OrderedSnapshot};
pub use report::{Reporter, ReporterError, describe, report_now};
pub use snapshot::{Iter, Snapshot};
pub use spec::{MapSpec, SpecFor};
pub use stats::LastSwitch;
pub use stats::{HotKey, Stats};

/// Items the macros expand to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::backend::{RcuStore, ShardedStore, Storage, StoreConfig, Upserted};
    pub use crate::compute::Outcome;
    pub use crate::hasher_of::HasherOf;
    pub use inventory;
}

/// The attribute's documentation (kept beside the macro), its examples run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../guarded-map-macros/ATTRIBUTE.md")]
pub struct AttributeDoctests;

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
