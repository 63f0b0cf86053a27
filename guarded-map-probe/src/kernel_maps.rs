//! Names for the target's BPF map file descriptors: fd -> map id (`/proc/PID/fdinfo/FD`) -> name and
//! type (`aya::maps::MapInfo::from_id`).

use std::collections::HashMap;
use std::fs;

use aya::maps::MapInfo;

/// What the probe knows of one kernel BPF map of the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelMap {
    /// The kernel's id of the map (0 when the fd could not be resolved, e.g. already closed).
    pub id: u32,
    /// Its name (up to 15 bytes), or `fd N` when unresolved.
    pub name: String,
    /// Its type, e.g. `Hash`, or `?`.
    pub map_type: String,
}

/// Resolves and remembers the target's map fds.
pub(crate) struct KernelMaps {
    pid: u32,
    by_fd: HashMap<i32, KernelMap>,
}

impl KernelMaps {
    pub fn new(pid: u32) -> Self {
        KernelMaps {
            pid,
            by_fd: HashMap::new(),
        }
    }

    /// Forgets what `fd` was: it was just (re)created.
    pub fn created(&mut self, fd: i32) {
        self.by_fd.remove(&fd);
    }

    /// The map behind `fd`, resolved on first sight.
    pub fn get(&mut self, fd: i32) -> &KernelMap {
        let pid = self.pid;
        self.by_fd.entry(fd).or_insert_with(|| resolve(pid, fd))
    }
}

fn resolve(pid: u32, fd: i32) -> KernelMap {
    let unresolved = || KernelMap {
        id: 0,
        name: format!("fd {fd}"),
        map_type: "?".into(),
    };
    let Ok(fdinfo) = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")) else {
        return unresolved();
    };
    let Some(id) = fdinfo
        .lines()
        .find_map(|line| line.strip_prefix("map_id:"))
        .and_then(|id| id.trim().parse::<u32>().ok())
    else {
        return unresolved();
    };
    match MapInfo::from_id(id) {
        Ok(info) => KernelMap {
            id,
            name: info
                .name_as_str()
                .filter(|name| !name.is_empty())
                .map_or_else(|| format!("map {id}"), str::to_owned),
            map_type: info
                .map_type()
                .map_or_else(|_| "?".into(), |t| format!("{t:?}")),
        },
        Err(_) => KernelMap {
            id,
            name: format!("map {id}"),
            map_type: "?".into(),
        },
    }
}
