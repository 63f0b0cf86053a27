//! Which privileges the probe needs, and which of them the calling process has.

use std::fs;

/// Capability numbers (`linux/capability.h`).
const CAP_SYS_PTRACE: u32 = 19;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// The calling process's privileges, as far as the probe cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Privileges {
    /// Effective user id 0.
    pub root: bool,
    /// May load eBPF programs and create maps (`CAP_BPF`, or `CAP_SYS_ADMIN`).
    pub bpf: bool,
    /// May attach to tracepoints and uprobes (`CAP_PERFMON`, or `CAP_SYS_ADMIN`).
    pub perfmon: bool,
    /// May write another user's process memory (`CAP_SYS_PTRACE`), for the sampling config.
    pub ptrace: bool,
}

impl Privileges {
    /// Reads the calling process's effective capabilities.
    pub fn current() -> Privileges {
        let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
        let caps = status
            .lines()
            .find_map(|line| line.strip_prefix("CapEff:"))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .unwrap_or(0);
        let euid = status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .and_then(|id| id.parse::<u32>().ok());
        Privileges::from_caps(caps, euid == Some(0))
    }

    fn from_caps(caps: u64, root: bool) -> Privileges {
        let has = |cap: u32| caps & (1 << cap) != 0;
        Privileges {
            root,
            bpf: has(CAP_BPF) || has(CAP_SYS_ADMIN),
            perfmon: has(CAP_PERFMON) || has(CAP_SYS_ADMIN),
            ptrace: has(CAP_SYS_PTRACE),
        }
    }

    /// What is missing to attach, in words; `None` when nothing is.
    pub fn missing(&self) -> Option<String> {
        let mut missing = Vec::new();
        if !self.bpf {
            missing.push("CAP_BPF");
        }
        if !self.perfmon {
            missing.push("CAP_PERFMON");
        }
        if !self.ptrace {
            missing.push("CAP_SYS_PTRACE");
        }
        (!missing.is_empty()).then(|| {
            format!(
                "missing {} (run as root, or grant them: setcap cap_bpf,cap_perfmon,cap_sys_ptrace+ep)",
                missing.join(", ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_read_from_their_bits() {
        let all = Privileges::from_caps(u64::MAX, true);
        assert_eq!(all.missing(), None);
        let none = Privileges::from_caps(0, false);
        let missing = none.missing().unwrap();
        assert!(missing.contains("CAP_BPF") && missing.contains("CAP_PERFMON"));
        // CAP_SYS_ADMIN covers loading and attaching, not writing another process's memory.
        let admin = Privileges::from_caps(1 << CAP_SYS_ADMIN, false);
        assert!(admin.bpf && admin.perfmon && !admin.ptrace);
    }
}
