//! Kernel BPF maps through the raw `bpf()` system call (feature `bpf`, Linux): what an eBPF agent's
//! user-space side uses to read and write the maps its kernel programs fill, and a [`Mirror`] that
//! keeps a guarded map (hash or ordered) equal to one.
//!
//! - [`BpfMap`]: a kernel map opened by name or id (or created), with typed keys and values: point
//!   commands, and [`list`](BpfMap::list)ing every entry (batches that grow on `ENOSPC`, or a
//!   key-by-key walk where the map type has no batches).
//! - [`ChangeRing`]: a BPF ring buffer read from user space.
//! - [`Mirror`]: full sync on an interval, or incremental from the change records of a kernel
//!   program (list-then-watch), with reconciliation; metrics `guarded_map_mirror_*`.
//!
//! Written by hand, not with aya: a few commands on plain fixed-size keys and values, and
//! `guarded-map` must not depend on the eBPF loader (see ARCHITECTURE.md). The command numbers and
//! the change record layout come from `guarded-map-probe-common`, which the kernel programs share.
//!
//! ```no_run
//! use guarded_map::bpf::BpfMap;
//!
//! let flows: BpfMap<u32, u64> = BpfMap::create("flows", 1024)?; // needs CAP_BPF
//! flows.update(7, 1500)?;
//! assert_eq!(flows.lookup(7)?, Some(1500));
//! assert_eq!(flows.entries(256)?, vec![(7, 1500)]);
//! # Ok::<(), std::io::Error>(())
//! ```

mod info;
mod lag;
mod map;
mod mirror;
mod options;
mod order;
mod plain;
mod record;
mod ring;
mod sys;
mod target;
mod writer;

pub use info::MapInfo;
pub use lag::Lag;
pub use map::{BpfMap, Listing};
pub use mirror::Mirror;
pub use options::{MirrorOptions, MirrorStats};
pub use plain::Plain;
pub use ring::ChangeRing;
pub use sys::calls;
pub use target::MirrorTarget;
pub use writer::MirrorWriter;
