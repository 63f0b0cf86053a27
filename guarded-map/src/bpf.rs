//! Kernel BPF maps through the raw `bpf()` system call (feature `bpf`, Linux): what an eBPF agent's
//! user-space side uses to read and write the maps its kernel programs fill, and what a guarded map
//! that mirrors a kernel map reads from.
//!
//! Written by hand, not with aya: this is a few commands on plain fixed-size keys and values, and
//! `guarded-map` must not depend on the eBPF loader (see ARCHITECTURE.md). The command numbers
//! come from `guarded-map-probe-common`, which the probe decodes with.
//!
//! ```no_run
//! use guarded_map::bpf::BpfHashMap;
//!
//! let flows: BpfHashMap<u32, u64> = BpfHashMap::create("flows", 1024)?; // needs CAP_BPF
//! flows.update(7, 1500)?;
//! assert_eq!(flows.lookup(7)?, Some(1500));
//! assert_eq!(flows.entries(256)?, vec![(7, 1500)]);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io;
use std::marker::PhantomData;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use guarded_map_probe_common::cmd::{
    MAP_CREATE, MAP_DELETE_ELEM, MAP_LOOKUP_BATCH, MAP_LOOKUP_ELEM, MAP_UPDATE_ELEM,
};

/// `BPF_MAP_TYPE_HASH`.
const MAP_TYPE_HASH: u32 = 1;
/// The longest map name the kernel keeps (`BPF_OBJ_NAME_LEN` less its NUL).
const NAME_MAX: usize = 15;

/// `bpf()` calls made through this module by this process.
static CALLS: AtomicU64 = AtomicU64::new(0);

/// The number of `bpf()` system calls this process has made through this module (a caller can
/// compare it with what a probe saw).
///
/// ```no_run
/// use guarded_map::bpf::{self, BpfHashMap};
///
/// let before = bpf::calls();
/// let flows: BpfHashMap<u32, u64> = BpfHashMap::create("flows", 16)?; // needs CAP_BPF
/// flows.update(1, 1)?;
/// assert_eq!(bpf::calls() - before, 2);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn calls() -> u64 {
    CALLS.load(Relaxed)
}

/// Plain fixed-size data that the kernel copies in and out byte for byte.
///
/// # Safety
///
/// Every bit pattern of `size_of::<Self>()` bytes must be a valid value, and the type must have no
/// padding (the kernel compares keys byte for byte).
pub unsafe trait Plain: Copy + Default + 'static {}

macro_rules! plain {
    ($($t:ty),*) => { $(
        // SAFETY: a primitive integer: every bit pattern is a value, no padding.
        unsafe impl Plain for $t {}
    )* };
}
plain!(u8, u16, u32, u64, i8, i16, i32, i64);

// SAFETY: an array of plain values has no padding between its elements and every bit pattern of
// each element is a value.
unsafe impl<T: Plain, const N: usize> Plain for [T; N] where [T; N]: Default {}

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
    // SAFETY: `attr` is a zero-filled `union bpf_attr` of the size passed, with the fields of `cmd`
    // set; the pointers inside it point to live buffers of the sizes the map was created with
    // (`Plain` keys and values, or arrays of them).
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

fn size_u32<T>() -> u32 {
    u32::try_from(size_of::<T>()).expect("a key or value of less than 4 GiB")
}

/// An open kernel BPF hash map of `K` keys and `V` values, closed when dropped.
#[derive(Debug)]
pub struct BpfHashMap<K, V> {
    fd: OwnedFd,
    types: PhantomData<fn(K) -> V>,
}

impl<K: Plain, V: Plain> BpfHashMap<K, V> {
    /// Creates a hash map named `name` (cut to 15 bytes) holding up to `max_entries`. Needs
    /// `CAP_BPF` (or root).
    ///
    /// ```no_run
    /// use guarded_map::bpf::BpfHashMap;
    ///
    /// let flows: BpfHashMap<u32, u64> = BpfHashMap::create("flows", 1024)?; // needs CAP_BPF
    /// assert_eq!(flows.entries(64)?, vec![]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create(name: &str, max_entries: u32) -> io::Result<Self> {
        let mut attr = Attr::new()
            .u32_at(0, MAP_TYPE_HASH)
            .u32_at(4, size_u32::<K>())
            .u32_at(8, size_u32::<V>())
            .u32_at(12, max_entries);
        let name = &name.as_bytes()[..name.len().min(NAME_MAX)];
        attr.0[28..28 + name.len()].copy_from_slice(name);
        let fd = bpf(MAP_CREATE, &mut attr)?;
        let fd = i32::try_from(fd).map_err(|_| io::Error::other("bpf() returned no fd"))?;
        // SAFETY: the kernel returned a new file descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(BpfHashMap {
            fd,
            types: PhantomData,
        })
    }

    fn elem(&self, key: &K, value: *mut V) -> Attr {
        Attr::new()
            .u32_at(0, self.fd.as_raw_fd() as u32)
            .u64_at(8, std::ptr::from_ref(key) as u64)
            .u64_at(16, value as u64)
    }

    /// Sets `key` to `value`.
    ///
    /// ```no_run
    /// use guarded_map::bpf::BpfHashMap;
    ///
    /// let flows: BpfHashMap<u32, u64> = BpfHashMap::create("flows", 1024)?; // needs CAP_BPF
    /// flows.update(7, 1500)?;
    /// flows.update(7, 1600)?; // replaces
    /// assert_eq!(flows.lookup(7)?, Some(1600));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn update(&self, key: K, mut value: V) -> io::Result<()> {
        bpf(MAP_UPDATE_ELEM, &mut self.elem(&key, &raw mut value)).map(drop)
    }

    /// The value of `key`, if present.
    ///
    /// ```no_run
    /// use guarded_map::bpf::BpfHashMap;
    ///
    /// let flows: BpfHashMap<u32, u64> = BpfHashMap::create("flows", 1024)?; // needs CAP_BPF
    /// flows.update(7, 1500)?;
    /// assert_eq!((flows.lookup(7)?, flows.lookup(8)?), (Some(1500), None));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn lookup(&self, key: K) -> io::Result<Option<V>> {
        let mut value = V::default();
        match bpf(MAP_LOOKUP_ELEM, &mut self.elem(&key, &raw mut value)) {
            Ok(_) => Ok(Some(value)),
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Removes `key`; `false` if it was absent.
    ///
    /// ```no_run
    /// use guarded_map::bpf::BpfHashMap;
    ///
    /// let flows: BpfHashMap<u32, u64> = BpfHashMap::create("flows", 1024)?; // needs CAP_BPF
    /// flows.update(7, 1500)?;
    /// assert!(flows.delete(7)?);
    /// assert!(!flows.delete(7)?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn delete(&self, key: K) -> io::Result<bool> {
        match bpf(MAP_DELETE_ELEM, &mut self.elem(&key, std::ptr::null_mut())) {
            Ok(_) => Ok(true),
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Every entry, read with `BPF_MAP_LOOKUP_BATCH`, `chunk` entries per call. Not an atomic
    /// snapshot: the kernel walks the map bucket by bucket while others may change it.
    ///
    /// ```no_run
    /// use guarded_map::bpf::BpfHashMap;
    ///
    /// let flows: BpfHashMap<u32, u64> = BpfHashMap::create("flows", 1024)?; // needs CAP_BPF
    /// for key in 0..1000 {
    ///     flows.update(key, u64::from(key))?;
    /// }
    /// assert_eq!(flows.entries(256)?.len(), 1000);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn entries(&self, chunk: u32) -> io::Result<Vec<(K, V)>> {
        let chunk = chunk.max(1);
        let mut out = Vec::new();
        let (mut token, mut first) = (0u32, true);
        loop {
            let mut keys = vec![K::default(); chunk as usize];
            let mut values = vec![V::default(); chunk as usize];
            let mut next = 0u32;
            let mut attr = Attr::new()
                .u64_at(0, if first { 0 } else { &raw const token as u64 })
                .u64_at(8, &raw mut next as u64)
                .u64_at(16, keys.as_mut_ptr() as u64)
                .u64_at(24, values.as_mut_ptr() as u64)
                .u32_at(32, chunk)
                .u32_at(36, self.fd.as_raw_fd() as u32);
            let result = bpf(MAP_LOOKUP_BATCH, &mut attr);
            let count = (attr.get_u32(32) as usize).min(keys.len());
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

impl<K, V> AsRawFd for BpfHashMap<K, V> {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}
