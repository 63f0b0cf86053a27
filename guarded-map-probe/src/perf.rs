//! Uprobes opened by hand with `perf_event_open`, so that they can carry the kernel's uprobe
//! reference counter (`ref_ctr_offset`): while such a uprobe exists, the kernel keeps the `u16` at
//! that file offset of the target raised, and it lowers it when the uprobe goes (the fd is closed,
//! also when this process dies). aya 0.14 does not expose that field, so this module opens the event
//! and hands aya's program fd to it; no crate offers it either.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `perf_event_attr`, as far as a uprobe needs it (the kernel takes any size it knows, zeros beyond).
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    kind: u32,
    size: u32,
    /// For the uprobe PMU: bit 0 = return probe, bits 32-63 = `ref_ctr_offset`.
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    /// Bit 0: `disabled`.
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    /// For the uprobe PMU: the path of the file.
    config1: u64,
    /// For the uprobe PMU: the offset in it.
    config2: u64,
    rest: [u64; 7],
}

const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
/// `_IO('$', 0)`.
const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
/// `_IOW('$', 8, u32)`.
const PERF_EVENT_IOC_SET_BPF: libc::c_ulong = 0x4004_2408;

/// The uprobe PMU's type number.
fn uprobe_pmu() -> io::Result<u32> {
    let text = fs::read_to_string("/sys/bus/event_source/devices/uprobe/type")?;
    text.trim()
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "uprobe PMU type"))
}

/// Attaches `program` (a loaded uprobe program) at `offset` of `path`, for process `pid` only,
/// keeping the `u16` at `ref_ctr_offset` of the same file raised while the returned fd is open.
pub(crate) fn attach_uprobe(
    program: BorrowedFd<'_>,
    path: &Path,
    offset: u64,
    ref_ctr_offset: u64,
    pid: u32,
) -> io::Result<OwnedFd> {
    let path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path with a NUL byte"))?;
    let attr = PerfEventAttr {
        kind: uprobe_pmu()?,
        size: size_of::<PerfEventAttr>() as u32,
        config: ref_ctr_offset << 32,
        sample_period: 1,
        wakeup_events: 1,
        flags: 1, // disabled until the program is set
        config1: path.as_ptr() as u64,
        config2: offset,
        ..PerfEventAttr::default()
    };
    // SAFETY: `attr` is a valid `perf_event_attr` of the size it states, and `path` outlives the
    // call; the kernel copies both.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &raw const attr,
            pid as libc::pid_t,
            -1 as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the syscall returned a new fd that nothing else owns.
    let event = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    for (request, arg) in [
        (PERF_EVENT_IOC_SET_BPF, program.as_raw_fd() as libc::c_ulong),
        (PERF_EVENT_IOC_ENABLE, 0),
    ] {
        // SAFETY: both requests take an integer argument; `event` is open.
        if unsafe { libc::ioctl(event.as_raw_fd(), request, arg) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(event)
}

/// A pidfd of `pid`: readable once the process exits.
pub(crate) fn pidfd(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: `pidfd_open` takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

const _: () = assert!(size_of::<PerfEventAttr>() == 128);
