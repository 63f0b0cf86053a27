//! An attached probe: loads the eBPF programs, attaches them to the target, reads the ring buffer.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use aya::maps::{MapData, RingBuf};
use aya::programs::{TracePoint, UProbe};
use aya::{Ebpf, EbpfLoader};
use guarded_map_probe_common::{OpSample, ProbeConfig, Record, RecordKind, Summary, Syscall};

use super::intervals::{Interval, Intervals};
use super::object::OBJECT;
use super::privileges::Privileges;
use super::target::Target;
use super::{ProbeError, perf};

/// Summaries the target sends per interval of the probe.
const SUMMARIES_PER_INTERVAL: u32 = 2;

/// How often the ring buffer is read (the kernel side does not wake the reader per record).
const READ_EVERY: Duration = Duration::from_millis(50);

/// How a probe watches its target.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Length of an interval, and how often the target sends its summaries.
    pub interval: Duration,
    /// Sample one operation in this many, per thread of the target (0: no samples).
    pub sample_every: u32,
}

impl Default for Options {
    /// One-second intervals, one operation in 1024 sampled.
    fn default() -> Self {
        Options {
            interval: Duration::from_millis(u64::from(ProbeConfig::DEFAULT.interval_ms)),
            sample_every: ProbeConfig::DEFAULT.sample_every,
        }
    }
}

/// A probe attached to one process. Dropping it detaches (the kernel lowers the target's semaphore
/// as the uprobes go, also when this process is killed).
#[must_use = "dropping the Probe detaches it: keep it for as long as it should watch"]
pub struct Probe {
    // Declared (so dropped) before the programs they run.
    uprobes: Vec<OwnedFd>,
    ring: RingBuf<MapData>,
    ebpf: Ebpf,
    target: Target,
    exited: OwnedFd,
    intervals: Intervals,
    interval: Duration,
    interval_start: Instant,
}

impl Probe {
    /// Attaches to process `pid`.
    ///
    /// # Errors
    ///
    /// [`ProbeError::NoPrograms`] (built without the feature `programs`),
    /// [`ProbeError::NoSuchProcess`], [`ProbeError::NoHooks`] (not built with guarded-map, or
    /// stripped), [`ProbeError::Privileges`], or what loading and attaching returned.
    pub fn attach(pid: u32, options: Options) -> Result<Probe, ProbeError> {
        if OBJECT.is_empty() {
            return Err(ProbeError::NoPrograms);
        }
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return Err(ProbeError::NoSuchProcess(pid));
        }
        // Before touching the target: without them nothing below can work.
        if let Some(missing) = Privileges::current().missing() {
            return Err(ProbeError::Privileges(missing));
        }
        let target = Target::open(pid)?;
        let exited = perf::pidfd(pid).map_err(|err| match err.raw_os_error() {
            Some(libc::ESRCH) => ProbeError::TargetExited(pid),
            _ => ProbeError::io(format!("watching process {pid}"), err),
        })?;
        let mut ebpf = EbpfLoader::new()
            .override_global("TARGET_TGID", &pid, true)
            .load(OBJECT)
            .map_err(|err| ProbeError::ebpf("loading the programs", err))?;
        ensure_tracefs()?;
        for (name, event) in [("bpf_enter", "sys_enter_bpf"), ("bpf_exit", "sys_exit_bpf")] {
            let program: &mut TracePoint = program(&mut ebpf, name)?;
            program
                .load()
                .map_err(|err| ProbeError::ebpf(&format!("loading {name}"), err))?;
            program
                .attach("syscalls", event)
                .map_err(|err| ProbeError::ebpf(&format!("attaching to syscalls:{event}"), err))?;
        }
        // The config first: the target reads it when it sees the semaphore raised.
        // Two summaries per interval: the first interval then has rates (its first summary is
        // the baseline), where one per interval left it at 0 ops/s.
        let every = options.interval / SUMMARIES_PER_INTERVAL;
        let interval_ms = u32::try_from(every.as_millis().max(1)).unwrap_or(u32::MAX);
        target.write_config(ProbeConfig {
            sample_every: options.sample_every,
            interval_ms,
        })?;
        let mut uprobes = Vec::new();
        for (name, offset) in [
            ("summary_hook", target.hooks.summary),
            ("op_hook", target.hooks.op),
        ] {
            let program: &mut UProbe = program(&mut ebpf, name)?;
            program
                .load()
                .map_err(|err| ProbeError::ebpf(&format!("loading {name}"), err))?;
            let fd = program
                .fd()
                .map_err(|err| ProbeError::ebpf(&format!("{name}'s fd"), err))?;
            let event = perf::attach_uprobe(
                fd.as_fd(),
                &target.exe_link,
                offset,
                target.hooks.semaphore,
                pid,
            )
            .map_err(|err| {
                if !target.alive() {
                    ProbeError::TargetExited(pid)
                } else {
                    ProbeError::io(
                        format!("attaching a uprobe to {} ({name})", target.exe),
                        err,
                    )
                }
            })?;
            uprobes.push(event);
        }
        let ring = ebpf
            .take_map("RECORDS")
            .ok_or_else(|| ProbeError::Ebpf("the object has no RECORDS map".into()))?;
        let ring =
            RingBuf::try_from(ring).map_err(|err| ProbeError::ebpf("opening RECORDS", err))?;
        Ok(Probe {
            uprobes,
            ring,
            ebpf,
            target,
            exited,
            intervals: Intervals::new(pid),
            interval: options.interval,
            interval_start: Instant::now(),
        })
    }

    /// The target's pid.
    pub fn pid(&self) -> u32 {
        self.target.pid
    }

    /// The target's executable.
    pub fn exe(&self) -> &str {
        &self.target.exe
    }

    /// The target's semaphore, read from its memory (one per attached uprobe while attached).
    pub fn semaphore(&self) -> Result<u16, ProbeError> {
        self.target.semaphore()
    }

    /// Waits for the end of the current interval and returns what it saw.
    ///
    /// # Errors
    ///
    /// [`ProbeError::TargetExited`] once the target has exited (after what it sent last was read).
    pub fn next_interval(&mut self) -> Result<Interval, ProbeError> {
        let end = self.interval_start + self.interval;
        loop {
            self.drain();
            let now = Instant::now();
            if now >= end {
                break;
            }
            // The programs do not wake us (see `NO_WAKEUP` there): read on our own clock.
            let timeout = (end - now).min(READ_EVERY).as_millis().max(1) as i32;
            let mut fds = [
                libc::pollfd {
                    fd: self.ring.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.exited.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: `fds` is an array of two valid `pollfd`s on open fds.
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) };
            if ready < 0 {
                let err = std::io::Error::last_os_error();
                if err.kind() != std::io::ErrorKind::Interrupted {
                    return Err(ProbeError::io("waiting for records", err));
                }
            } else if fds[1].revents != 0 {
                self.drain();
                return Err(ProbeError::TargetExited(self.target.pid));
            }
        }
        let now = Instant::now();
        let seconds = now.duration_since(self.interval_start).as_secs_f64();
        // The next interval starts where this one ended, unless reading fell a whole interval
        // behind (then it starts now rather than returning a burst of short intervals).
        self.interval_start = if now - end > self.interval { now } else { end };
        Ok(self.intervals.finish(seconds))
    }

    /// Detaches: the same as dropping the probe, spelled out.
    pub fn detach(self) {}

    /// Hands every record waiting in the ring buffer to the intervals.
    fn drain(&mut self) {
        while let Some(item) = self.ring.next() {
            let bytes: &[u8] = &item;
            let Some(kind) = bytes
                .get(..4)
                .map(|w| u32::from_ne_bytes([w[0], w[1], w[2], w[3]]))
                .and_then(RecordKind::from_u32)
            else {
                continue;
            };
            match kind {
                RecordKind::Summary => {
                    if let Some(r) = Summary::read_from(bytes) {
                        self.intervals.summary(r);
                    }
                }
                RecordKind::Op => {
                    if let Some(r) = OpSample::read_from(bytes) {
                        self.intervals.sample(r);
                    }
                }
                RecordKind::Syscall => {
                    if let Some(r) = Syscall::read_from(bytes) {
                        self.intervals.syscall(r);
                    }
                }
            }
        }
    }
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe")
            .field("pid", &self.target.pid)
            .field("exe", &self.target.exe)
            .field("uprobes", &self.uprobes.len())
            .field("programs", &self.ebpf.programs().count())
            .finish_non_exhaustive()
    }
}

/// Where tracefs is mounted on current kernels.
const TRACEFS: &str = "/sys/kernel/tracing";

/// Mounts tracefs where aya looks for it, if it is mounted at neither of its usual places (a
/// minimal system or container may not mount it; attaching to a tracepoint needs it).
pub(crate) fn ensure_tracefs() -> Result<(), ProbeError> {
    let mounted = |dir: &str| std::path::Path::new(dir).join("events").is_dir();
    if mounted(TRACEFS) || mounted("/sys/kernel/debug/tracing") {
        return Ok(());
    }
    // SAFETY: NUL-terminated strings that outlive the call; no data argument.
    let ret = unsafe {
        libc::mount(
            c"tracefs".as_ptr(),
            c"/sys/kernel/tracing".as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if ret != 0 {
        return Err(ProbeError::io(
            format!(
                "tracefs is not mounted, and mounting it at {TRACEFS} failed (mount -t tracefs tracefs {TRACEFS})"
            ),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// A loaded object's program `name`, as `T`.
pub(crate) fn program<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T, ProbeError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    let program = ebpf
        .program_mut(name)
        .ok_or_else(|| ProbeError::Ebpf(format!("the object has no program {name}")))?;
    program
        .try_into()
        .map_err(|err| ProbeError::ebpf(&format!("program {name}"), err))
}
