//! What can keep a probe from attaching or from going on.

use std::{fmt, io};

/// Why a probe could not attach, or stopped.
///
/// Every variant's message is one line meant for the person running the probe.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProbeError {
    /// No process has this pid.
    NoSuchProcess(u32),
    /// The process's executable lacks the hooks (not built with guarded-map, or stripped).
    NoHooks {
        /// The process.
        pid: u32,
        /// Its executable.
        exe: String,
        /// The symbols that were not found.
        missing: Vec<&'static str>,
    },
    /// This process lacks privileges the probe needs.
    Privileges(String),
    /// The process exited while the probe was attached.
    TargetExited(u32),
    /// A system call or file failed.
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: io::Error,
    },
    /// Loading or attaching an eBPF program failed.
    Ebpf(String),
    /// This build has no eBPF programs: it was built without the feature `programs`.
    NoPrograms,
    /// The target cannot do what was asked (built with an older guarded-map).
    Unsupported(String),
}

impl ProbeError {
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Self {
        ProbeError::Io {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn ebpf(what: &str, err: impl fmt::Display) -> Self {
        ProbeError::Ebpf(format!("{what}: {err}"))
    }
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::Unsupported(why) => f.write_str(why),
            ProbeError::NoSuchProcess(pid) => write!(f, "no process with pid {pid}"),
            ProbeError::NoHooks { pid, exe, missing } => write!(
                f,
                "process {pid} ({exe}) has no guarded-map hooks (missing {}): it is not built with \
                 guarded-map, or its symbols were stripped",
                missing.join(", ")
            ),
            ProbeError::Privileges(what) => write!(f, "insufficient privileges: {what}"),
            ProbeError::TargetExited(pid) => write!(f, "process {pid} exited"),
            ProbeError::Io { what, source } => write!(f, "{what}: {source}"),
            ProbeError::Ebpf(what) => write!(f, "eBPF: {what}"),
            ProbeError::NoPrograms => f.write_str(
                "this guarded-map-probe was built without its eBPF programs: rebuild it with \
                 `--features programs` (needs nightly with rust-src and bpf-linker; see the README)",
            ),
        }
    }
}

impl std::error::Error for ProbeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProbeError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
