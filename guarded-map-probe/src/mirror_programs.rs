//! The kernel programs that change BPF maps and write a change record per change
//! (`guarded-map-ebpf`'s `mirror.rs`), loaded for a [`guarded_map::bpf::Mirror`]: its tests, its
//! benchmark and the `flows` example.
//!
//! ```no_run
//! use guarded_map::bpf::Mirror;
//! use guarded_map::{map_spec, OrderedMap};
//! use guarded_map_probe::mirror_programs::{MirrorPrograms, guarded_map_mirror_op};
//! use guarded_map_probe_common::change::mirror_op;
//!
//! map_spec!(Counts: BTreeMap<u32, u64>, ordered);
//! let counts: OrderedMap<u32, u64, Counts> = OrderedMap::new();
//!
//! let mut programs = MirrorPrograms::load()?; // needs root
//! programs.attach_mirror_op()?;
//! let kernel = programs.mirrored()?;
//! let mut mirror = Mirror::incremental(kernel.map, kernel.changes, kernel.counters, &counts)?;
//! guarded_map_mirror_op(mirror_op::SET, 10, 7, 3); // the kernel sets keys 10, 11, 12 to 7
//! mirror.poll(std::time::Duration::from_millis(100))?;
//! assert_eq!(counts.get_cloned(&11), Some(7));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::os::fd::{AsFd, OwnedFd};

use aya::maps::Map;
use aya::programs::{TracePoint, UProbe, uprobe::UProbeScope};
use aya::{Ebpf, EbpfLoader};
use guarded_map::bpf::{BpfMap, ChangeRing};
use guarded_map_probe_common::change::mirror_op;

use super::object::OBJECT;
use super::session::{ensure_tracefs, program};
use super::{Privileges, ProbeError};

/// The mirror programs, loaded (with their maps) into the kernel; detached and unloaded when
/// dropped.
pub struct MirrorPrograms {
    ebpf: Ebpf,
}

/// One kernel map that a program changes, with what an incremental mirror follows it by.
#[derive(Debug)]
pub struct MirroredMap<K, V> {
    /// The kernel map.
    pub map: BpfMap<K, V>,
    /// Its change records.
    pub changes: ChangeRing,
    /// Its change counter and lost-record counter.
    pub counters: BpfMap<u32, u64>,
}

impl MirrorPrograms {
    /// Loads the programs and creates their maps; attaches nothing yet.
    ///
    /// # Errors
    ///
    /// [`ProbeError::NoPrograms`] (built without the feature `programs`),
    /// [`ProbeError::Privileges`], or what loading returned.
    pub fn load() -> Result<Self, ProbeError> {
        if OBJECT.is_empty() {
            return Err(ProbeError::NoPrograms);
        }
        if let Some(missing) = Privileges::current().missing() {
            return Err(ProbeError::Privileges(missing));
        }
        let ebpf = EbpfLoader::new()
            .override_global("IGNORED_TGID", &std::process::id(), true)
            .load(OBJECT)
            .map_err(|err| ProbeError::ebpf("loading the programs", err))?;
        Ok(MirrorPrograms { ebpf })
    }

    /// Attaches `mirror_op` to [`guarded_map_mirror_op`] in this process: from then on, each call
    /// of that function changes the kernel map `MIRRORED` ([`mirrored`](Self::mirrored)) as it says,
    /// in the calling thread, before the function returns.
    pub fn attach_mirror_op(&mut self) -> Result<(), ProbeError> {
        let program: &mut UProbe = program(&mut self.ebpf, "mirror_op")?;
        program
            .load()
            .map_err(|err| ProbeError::ebpf("loading mirror_op", err))?;
        program
            .attach(
                mirror_op::SYMBOL,
                "/proc/self/exe",
                UProbeScope::CallingProcess,
            )
            .map_err(|err| ProbeError::ebpf("attaching mirror_op", err))?;
        Ok(())
    }

    /// Attaches `count_syscalls` to `raw_syscalls:sys_enter`: from then on the kernel map
    /// `SYSCALLS` ([`syscalls`](Self::syscalls)) counts every process's system calls (an LRU map
    /// of 1 024 processes), except this process's own.
    pub fn attach_count_syscalls(&mut self) -> Result<(), ProbeError> {
        ensure_tracefs()?;
        let program: &mut TracePoint = program(&mut self.ebpf, "count_syscalls")?;
        program
            .load()
            .map_err(|err| ProbeError::ebpf("loading count_syscalls", err))?;
        program
            .attach("raw_syscalls", "sys_enter")
            .map_err(|err| ProbeError::ebpf("attaching to raw_syscalls:sys_enter", err))?;
        Ok(())
    }

    /// `MIRRORED` (`u32 -> u64`, a hash map of up to 1 048 576 entries), its ring and counters.
    pub fn mirrored(&self) -> Result<MirroredMap<u32, u64>, ProbeError> {
        self.mirrored_map("MIRRORED", "MIRRORED_CHANGES", "MIRRORED_COUNTERS")
    }

    /// `SYSCALLS` (process id -> system calls, an LRU map of 1 024), its ring and counters.
    pub fn syscalls(&self) -> Result<MirroredMap<u32, u64>, ProbeError> {
        self.mirrored_map("SYSCALLS", "SYSCALLS_CHANGES", "SYSCALLS_COUNTERS")
    }

    fn mirrored_map(
        &self,
        map: &str,
        changes: &str,
        counters: &str,
    ) -> Result<MirroredMap<u32, u64>, ProbeError> {
        let opened = |err| ProbeError::io(format!("opening {map}"), err);
        Ok(MirroredMap {
            map: BpfMap::from_fd(self.map_fd(map)?).map_err(opened)?,
            changes: ChangeRing::from_fd(self.map_fd(changes)?).map_err(opened)?,
            counters: BpfMap::from_fd(self.map_fd(counters)?).map_err(opened)?,
        })
    }

    /// A new file descriptor of the object's map `name`.
    fn map_fd(&self, name: &str) -> Result<OwnedFd, ProbeError> {
        let data = match self.ebpf.map(name) {
            Some(
                Map::HashMap(data) | Map::LruHashMap(data) | Map::Array(data) | Map::RingBuf(data),
            ) => data,
            Some(_) => {
                return Err(ProbeError::Ebpf(format!(
                    "{name} is not a map the mirror reads"
                )));
            }
            None => return Err(ProbeError::Ebpf(format!("the object has no map {name}"))),
        };
        data.fd()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|err| ProbeError::io(format!("duplicating {name}'s fd"), err))
    }
}

/// The function [`MirrorPrograms::attach_mirror_op`] attaches to. With the program attached,
/// a call applies `op` (`guarded_map_probe_common::change::mirror_op`) to the keys
/// `key..key + count` (at most 64) of `MIRRORED`, in the kernel, each with its change record;
/// without it, it does nothing.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn guarded_map_mirror_op(op: u32, key: u32, value: u64, count: u32) {
    std::hint::black_box((op, key, value, count));
}
