//! The `bpf()` system call: its argument (`union bpf_attr`, as bytes) and the count of calls made.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// `bpf()` calls made through this module by this process.
static CALLS: AtomicU64 = AtomicU64::new(0);

/// The number of `bpf()` system calls this process has made through [`crate::bpf`] (a caller can
/// compare it with what a probe saw).
///
/// ```no_run
/// use guarded_map::bpf::{self, BpfMap};
///
/// let before = bpf::calls();
/// let flows: BpfMap<u32, u64> = BpfMap::create("flows", 16)?; // needs CAP_BPF
/// flows.update(1, 1)?;
/// assert_eq!(bpf::calls() - before, 3); // create, read back its description, update
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn calls() -> u64 {
    CALLS.load(Relaxed)
}

/// A `union bpf_attr`, as bytes with the fields each command uses written at their offsets.
#[repr(C, align(8))]
pub(super) struct Attr(pub(super) [u8; 128]);

impl Attr {
    pub(super) fn new() -> Self {
        Attr([0; 128])
    }

    pub(super) fn u32_at(mut self, offset: usize, value: u32) -> Self {
        self.0[offset..offset + 4].copy_from_slice(&value.to_ne_bytes());
        self
    }

    pub(super) fn u64_at(mut self, offset: usize, value: u64) -> Self {
        self.0[offset..offset + 8].copy_from_slice(&value.to_ne_bytes());
        self
    }

    pub(super) fn get_u32(&self, offset: usize) -> u32 {
        u32::from_ne_bytes(self.0[offset..offset + 4].try_into().expect("4 bytes"))
    }
}

/// Runs `cmd`. Every pointer inside `attr` must point to a live buffer of the size the command
/// and the map expect (the callers in this module pass `Plain` keys and values, or arrays of them).
pub(super) fn bpf(cmd: u32, attr: &mut Attr) -> io::Result<libc::c_long> {
    CALLS.fetch_add(1, Relaxed);
    // SAFETY: `attr` is a zero-filled `union bpf_attr` of the size passed, with the fields of `cmd`
    // set; the pointers inside it point to live buffers of the sizes the kernel writes (this
    // function's contract with its callers in this module).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            libc::c_long::from(cmd),
            attr.0.as_mut_ptr(),
            attr.0.len(),
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Runs `cmd`, which returns a new file descriptor.
pub(super) fn bpf_fd(cmd: u32, attr: &mut Attr) -> io::Result<OwnedFd> {
    let fd = bpf(cmd, attr)?;
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("bpf() returned no fd"))?;
    // SAFETY: the kernel returned a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether `err` is the kernel's "not supported" (`ENOTSUPP`, 524, which libc does not name, or
/// `EOPNOTSUPP`) or "invalid" answer to a command a map type does not implement.
pub(super) fn unsupported(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EINVAL | libc::EOPNOTSUPP | 524)
    )
}

/// `size_of::<T>()` as the kernel's `u32`.
pub(super) fn size_u32<T>() -> u32 {
    u32::try_from(size_of::<T>()).expect("a key or value of less than 4 GiB")
}
