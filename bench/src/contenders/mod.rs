//! The contenders and the rules of which workloads each can run.

mod cow;
mod dashmap;
mod guarded;
mod limit;
mod papaya;
mod rwlock;
mod scc;

use std::hash::{BuildHasher, RandomState};
use std::panic::{self, AssertUnwindSafe};

use serde::Serialize;

use crate::adapter::{Concurrent, Map};
use crate::drive::{self, Measurement};
use crate::workload::{Job, Workload};

pub use self::cow::CopyOnWrite;
pub use self::dashmap::Dash;
pub use self::guarded::{
    AdaptiveRcu, AdaptiveSharded, AdaptiveStats, Guarded, RcuBare, RcuStats, ShardedBare,
    ShardedStats,
};
pub use self::limit::Unsynchronized;
pub use self::papaya::Papaya;
pub use self::rwlock::Locked;
pub use self::scc::{SccIndex, SccMap};

/// The fast hasher every contender gets in the "same hasher" runs.
pub type Fast = foldhash::fast::RandomState;
/// hashbrown's own default (foldhash too, with its own seeding).
type HashbrownDefault = hashbrown::DefaultHashBuilder;

/// Which hasher the contenders get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Hashers {
    /// foldhash for all: the maps themselves are compared.
    Same,
    /// Each crate's default, as a user who changes nothing gets it.
    Default,
}

impl Hashers {
    /// Its name in the table and the results file.
    pub fn name(self) -> &'static str {
        match self {
            Hashers::Same => "foldhash for all",
            Hashers::Default => "each crate's default",
        }
    }
}

/// How a contender stands towards writes, which decides the workloads it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Kind {
    /// A concurrent map: every workload.
    Concurrent,
    /// Copies the whole map on each write: the workloads whose copies fit [`COPY_BUDGET`].
    CopyOnWrite,
    /// No synchronization at all: read-only workloads (it is the limit there).
    Unsynchronized,
}

/// The most entries a copy-on-write contender may copy in one run (about a second here); past it
/// the run is reported as not run, with the estimate.
pub const COPY_BUDGET: f64 = 3e8;

/// One contender: a map type with a hasher.
#[derive(Clone, Copy)]
pub struct Contender {
    /// Its name in the table and the results file.
    pub name: &'static str,
    /// Its hasher, by name.
    pub hasher: &'static str,
    /// Which workloads it can take.
    pub kind: Kind,
    run: fn(&Job) -> Measurement,
}

impl Contender {
    fn new(
        name: &'static str,
        hasher: &'static str,
        kind: Kind,
        run: fn(&Job) -> Measurement,
    ) -> Self {
        Contender {
            name,
            hasher,
            kind,
            run,
        }
    }

    fn concurrent<M: Concurrent>(name: &'static str, hasher: &'static str) -> Self {
        Self::new(name, hasher, Kind::Concurrent, drive::concurrent::<M>)
    }

    fn copy_on_write<M: Concurrent>(name: &'static str, hasher: &'static str) -> Self {
        Self::new(name, hasher, Kind::CopyOnWrite, drive::concurrent::<M>)
    }

    fn unsynchronized<M: Map>(name: &'static str, hasher: &'static str) -> Self {
        Self::new(name, hasher, Kind::Unsynchronized, drive::pure_read::<M>)
    }

    /// `Ok` when the contender can take the job, else why not.
    pub fn admits(&self, job: &Job) -> Result<(), String> {
        match self.kind {
            Kind::Concurrent => Ok(()),
            Kind::Unsynchronized if job.workload == Workload::PureRead => Ok(()),
            Kind::Unsynchronized => Err("unsynchronized: read-only workloads only".into()),
            Kind::CopyOnWrite => {
                let copies = copied_entries(job);
                if copies <= COPY_BUDGET {
                    Ok(())
                } else {
                    Err(format!(
                        "each write copies the whole map: ~{copies:.1e} entries to copy in this run"
                    ))
                }
            }
        }
    }

    /// Runs the job (which [`Self::admits`] must have accepted). A panic (a failed `bustle`
    /// check, or a contender's own) becomes an error carrying its message, so one broken
    /// contender cannot take the rest of the suite down with it.
    pub fn run(&self, job: &Job) -> Result<Measurement, String> {
        panic::catch_unwind(AssertUnwindSafe(|| (self.run)(job))).map_err(|payload| {
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("a panic without a message");
            format!("panicked: {message}")
        })
    }
}

/// Entries a copy-on-write map copies in a job: one whole map per write, plus, for the `bustle`
/// workloads, one per prefill insert (bustle prefills by single inserts).
fn copied_entries(job: &Job) -> f64 {
    let size = job.prefilled().max(job.capacity() / 2) as f64;
    let writes = job.operations() as f64 * job.workload.write_fraction();
    let prefill = if job.workload.bustle_mix().is_some() {
        let p = job.prefilled() as f64;
        p * p / 2.0
    } else {
        0.0
    };
    writes * size + prefill
}

/// The names of guarded-map's four maps, for the statistics-cost pairs.
pub const RCU: &str = "guarded-map Rcu";
/// `Rcu` with statistics compiled out.
pub const RCU_BARE: &str = "guarded-map Rcu (stats off)";
/// `Sharded`, statistics on.
pub const SHARDED: &str = "guarded-map Sharded";
/// `Sharded` with statistics compiled out.
pub const SHARDED_BARE: &str = "guarded-map Sharded (stats off)";
/// `Adaptive`, statistics on.
pub const ADAPTIVE: &str = "guarded-map Adaptive";
/// The reference of every ratio.
pub const DASHMAP: &str = "dashmap";
/// The limit of the read-only workloads.
pub const LIMIT: &str = "hashbrown, unsynchronized (limit)";

/// Every contender with the given hashers, in the order of the report.
pub fn all(hashers: Hashers) -> Vec<Contender> {
    match hashers {
        Hashers::Same => with::<Fast, Fast>("foldhash", "foldhash"),
        Hashers::Default => {
            with::<RandomState, HashbrownDefault>("std SipHash", "foldhash (hashbrown's default)")
        }
    }
}

/// Every contender, with `S` for the maps whose default is std's hasher and `B` for those built
/// on hashbrown (named `s` and `b`).
fn with<S, B>(s: &'static str, b: &'static str) -> Vec<Contender>
where
    S: BuildHasher + Default + Clone + Send + Sync + 'static,
    B: BuildHasher + Default + Clone + Send + Sync + 'static,
{
    vec![
        Contender::concurrent::<Guarded<RcuStats, S>>(RCU, s),
        Contender::concurrent::<Guarded<RcuBare, S>>(RCU_BARE, s),
        Contender::concurrent::<Guarded<ShardedStats, S>>(SHARDED, s),
        Contender::concurrent::<Guarded<ShardedBare, S>>(SHARDED_BARE, s),
        Contender::concurrent::<Guarded<AdaptiveStats, S>>(ADAPTIVE, s),
        Contender::concurrent::<Dash<S>>(DASHMAP, s),
        Contender::concurrent::<Papaya<S>>("papaya", s),
        Contender::concurrent::<SccMap<S>>("scc HashMap", s),
        Contender::concurrent::<SccIndex<S>>("scc HashIndex", s),
        Contender::concurrent::<Locked<B>>("RwLock<hashbrown>", b),
        Contender::copy_on_write::<CopyOnWrite<B>>("arc-swap copy-on-write", b),
        Contender::unsynchronized::<Unsynchronized<B>>(LIMIT, b),
    ]
}
