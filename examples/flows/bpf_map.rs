//! A kernel BPF hash map (`u32` -> `u64`) driven through the raw `bpf()` system call, as an eBPF
//! agent's user-space side drives the maps its kernel programs fill. Every call is counted, so a
//! caller can compare its own count with what a probe saw.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use guarded_map_probe_common::cmd::{
    MAP_CREATE, MAP_DELETE_ELEM, MAP_LOOKUP_BATCH, MAP_LOOKUP_ELEM, MAP_UPDATE_ELEM,
};

/// `BPF_MAP_TYPE_HASH`.
const BPF_MAP_TYPE_HASH: u32 = 1;

/// `bpf()` calls made through this module, by this process.
pub static CALLS: AtomicU64 = AtomicU64::new(0);

/// A `union bpf_attr`, as bytes with the fields each command uses written at their offsets.
#[repr(C, align(8))]
struct Attr([u8; 128]);

impl Attr {
    fn new() -> Self {
        Attr([0; 128])
    }
    fn u32_at(mut self, offset: usize, value: u32) -> Self {
        self.0[offset..offset + 4].copy_from_slice(&value.to_ne_bytes());
        self
    }
    fn u64_at(mut self, offset: usize, value: u64) -> Self {
        self.0[offset..offset + 8].copy_from_slice(&value.to_ne_bytes());
        self
    }
    fn get_u32(&self, offset: usize) -> u32 {
        u32::from_ne_bytes(self.0[offset..offset + 4].try_into().expect("4 bytes"))
    }
}

fn bpf(cmd: u32, attr: &mut Attr) -> io::Result<libc::c_long> {
    CALLS.fetch_add(1, Relaxed);
    // SAFETY: `attr` is a zero-filled `union bpf_attr` of the size passed, with the fields of
    // `cmd` set; pointers inside it point to live buffers of the sizes the map was created with.
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

/// An open BPF hash map of `u32` keys and `u64` values.
pub struct BpfHashMap {
    fd: OwnedFd,
}

impl BpfHashMap {
    /// Creates a map named `name` (at most 15 bytes) holding up to `max_entries`.
    pub fn create(name: &str, max_entries: u32) -> io::Result<Self> {
        let mut attr = Attr::new()
            .u32_at(0, BPF_MAP_TYPE_HASH)
            .u32_at(4, 4)
            .u32_at(8, 8)
            .u32_at(12, max_entries);
        let name = &name.as_bytes()[..name.len().min(15)];
        attr.0[28..28 + name.len()].copy_from_slice(name);
        let fd = bpf(MAP_CREATE, &mut attr)?;
        // SAFETY: the kernel returned a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        Ok(BpfHashMap { fd })
    }

    fn elem(&self, key: &u32, value: *mut u64) -> Attr {
        Attr::new()
            .u32_at(0, self.fd.as_raw_fd() as u32)
            .u64_at(8, std::ptr::from_ref(key) as u64)
            .u64_at(16, value as u64)
    }

    /// Sets `key` to `value`.
    pub fn update(&self, key: u32, mut value: u64) -> io::Result<()> {
        bpf(MAP_UPDATE_ELEM, &mut self.elem(&key, &raw mut value)).map(drop)
    }

    /// The value of `key`, if present.
    pub fn lookup(&self, key: u32) -> io::Result<Option<u64>> {
        let mut value = 0u64;
        match bpf(MAP_LOOKUP_ELEM, &mut self.elem(&key, &raw mut value)) {
            Ok(_) => Ok(Some(value)),
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Removes `key`; false if it was absent.
    pub fn delete(&self, key: u32) -> io::Result<bool> {
        match bpf(MAP_DELETE_ELEM, &mut self.elem(&key, std::ptr::null_mut())) {
            Ok(_) => Ok(true),
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Every entry, read with `MAP_LOOKUP_BATCH`, `chunk` entries per call.
    pub fn entries(&self, chunk: u32) -> io::Result<Vec<(u32, u64)>> {
        let mut out = Vec::new();
        let (mut token, mut first) = (0u32, true);
        loop {
            let mut keys = vec![0u32; chunk as usize];
            let mut values = vec![0u64; chunk as usize];
            let mut next = 0u32;
            let mut attr = Attr::new()
                .u64_at(0, if first { 0 } else { &raw const token as u64 })
                .u64_at(8, &raw mut next as u64)
                .u64_at(16, keys.as_mut_ptr() as u64)
                .u64_at(24, values.as_mut_ptr() as u64)
                .u32_at(32, chunk)
                .u32_at(36, self.fd.as_raw_fd() as u32);
            let result = bpf(MAP_LOOKUP_BATCH, &mut attr);
            let count = attr.get_u32(32) as usize;
            out.extend(
                keys[..count]
                    .iter()
                    .copied()
                    .zip(values[..count].iter().copied()),
            );
            match result {
                Ok(_) => {}
                // The last batch: the kernel says there is nothing after it.
                Err(err) if err.raw_os_error() == Some(libc::ENOENT) => return Ok(out),
                Err(err) => return Err(err),
            }
            token = next;
            first = false;
        }
    }
}
