//! An open kernel BPF map with typed keys and values: point commands, and listing every entry.

use std::collections::HashSet;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, OwnedFd};

use guarded_map_probe_common::cmd::{
    MAP_CREATE, MAP_DELETE_ELEM, MAP_GET_NEXT_KEY, MAP_LOOKUP_BATCH, MAP_LOOKUP_ELEM,
    MAP_UPDATE_ELEM,
};

use super::info::{self, HASH, MapInfo, NAME_MAX};
use super::plain::{Plain, bytes_of};
use super::sys::{Attr, bpf, bpf_fd, size_u32, unsupported};

/// An open kernel BPF map of `K` keys and `V` values, closed when dropped.
#[derive(Debug)]
pub struct BpfMap<K, V> {
    fd: OwnedFd,
    info: MapInfo,
    types: PhantomData<fn(K) -> V>,
}

/// Every entry of a map, and how they were read ([`BpfMap::list`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing<K, V> {
    /// The entries, in the kernel's order.
    pub entries: Vec<(K, V)>,
    /// `bpf()` calls the listing made.
    pub calls: u64,
    /// Times a batch was too small for one hash bucket (`ENOSPC`) and was doubled.
    pub grown: u32,
    /// The entries per batch call at the end (after any doubling).
    pub chunk: u32,
    /// `true` if the map type has no batch lookup and the listing walked key by key
    /// (`BPF_MAP_GET_NEXT_KEY`, then a lookup per key).
    pub by_key: bool,
}

impl<K: Plain, V: Plain> BpfMap<K, V> {
    /// Creates a hash map named `name` (cut to 15 bytes) holding up to `max_entries`. Needs
    /// `CAP_BPF` (or root).
    ///
    /// ```no_run
    /// use guarded_map::bpf::BpfMap;
    ///
    /// let flows: BpfMap<u32, u64> = BpfMap::create("flows", 1024)?; // needs CAP_BPF
    /// assert_eq!(flows.entries(64)?, vec![]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create(name: &str, max_entries: u32) -> io::Result<Self> {
        Self::create_typed(HASH, name, max_entries, 0)
    }

    /// Creates a map of kernel type `map_type` (`BPF_MAP_TYPE_*`) with creation `flags`
    /// (`BPF_F_*`), named `name` (cut to 15 bytes). Needs `CAP_BPF` (or root).
    ///
    /// ```no_run
    /// use guarded_map::bpf::BpfMap;
    ///
    /// // BPF_MAP_TYPE_DEVMAP (14): slot -> interface index. It has no batch lookup: listing it
    /// // walks key by key.
    /// let ports: BpfMap<u32, u32> = BpfMap::create_typed(14, "ports", 8, 0)?;
    /// ports.update(3, 1)?; // slot 3 -> the loopback interface
    /// let listing = ports.list(16)?;
    /// assert!(listing.by_key && listing.entries == vec![(3, 1)]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create_typed(
        map_type: u32,
        name: &str,
        max_entries: u32,
        flags: u32,
    ) -> io::Result<Self> {
        let mut attr = Attr::new()
            .u32_at(0, map_type)
            .u32_at(4, size_u32::<K>())
            .u32_at(8, size_u32::<V>())
            .u32_at(12, max_entries)
            .u32_at(16, flags);
        let name = &name.as_bytes()[..name.len().min(NAME_MAX)];
        attr.0[28..28 + name.len()].copy_from_slice(name);
        Self::from_fd(bpf_fd(MAP_CREATE, &mut attr)?)
    }

    /// Opens the map the kernel knows by `id` (as `bpftool map show` lists it). An error if its
    /// key or value size is not `K`'s or `V`'s.
    ///
    /// ```no_run
    /// use guarded_map::bpf::BpfMap;
    ///
    /// let made: BpfMap<u32, u64> = BpfMap::create("flows", 16)?; // needs CAP_BPF
    /// let again: BpfMap<u32, u64> = BpfMap::open_by_id(made.info().id)?;
    /// made.update(1, 10)?;
    /// assert_eq!(again.lookup(1)?, Some(10));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open_by_id(id: u32) -> io::Result<Self> {
        let (fd, info) = info::open_id(id)?;
        Self::checked(fd, info)
    }

    /// Opens the one map named `name`, e.g. a map a kernel program of another process declared.
    /// An error if no map or several maps have that name, or if its key or value size is not
    /// `K`'s or `V`'s.
    ///
    /// ```no_run
    /// use guarded_map::bpf::BpfMap;
    ///
    /// let made: BpfMap<u32, u64> = BpfMap::create("gm_doc_named", 16)?; // needs CAP_BPF
    /// let found: BpfMap<u32, u64> = BpfMap::open_by_name("gm_doc_named")?;
    /// assert_eq!(found.info().id, made.info().id);
    /// assert!(BpfMap::<u64, u64>::open_by_name("gm_doc_named").is_err()); // wrong key size
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open_by_name(name: &str) -> io::Result<Self> {
        let (fd, info) = info::open_name(name)?;
        Self::checked(fd, info)
    }

    /// Takes a map file descriptor (e.g. from a loader such as aya). An error if it is not a map,
    /// or if its key or value size is not `K`'s or `V`'s.
    pub fn from_fd(fd: OwnedFd) -> io::Result<Self> {
        let info = MapInfo::of(&fd)?;
        Self::checked(fd, info)
    }

    fn checked(fd: OwnedFd, info: MapInfo) -> io::Result<Self> {
        if (info.key_size, info.value_size) != (size_u32::<K>(), size_u32::<V>()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "BPF map {:?} (id {}) has {}-byte keys and {}-byte values, not {} and {} ({} -> {})",
                    info.name,
                    info.id,
                    info.key_size,
                    info.value_size,
                    size_of::<K>(),
                    size_of::<V>(),
                    std::any::type_name::<K>(),
                    std::any::type_name::<V>(),
                ),
            ));
        }
        Ok(BpfMap {
            fd,
            info,
            types: PhantomData,
        })
    }

    /// What the kernel said of the map when it was opened.
    pub fn info(&self) -> &MapInfo {
        &self.info
    }

    /// A second handle on the same kernel map (a duplicated file descriptor).
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(BpfMap {
            fd: self.fd.try_clone()?,
            info: self.info.clone(),
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
    /// use guarded_map::bpf::BpfMap;
    ///
    /// let flows: BpfMap<u32, u64> = BpfMap::create("flows", 1024)?; // needs CAP_BPF
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
    /// use guarded_map::bpf::BpfMap;
    ///
    /// let flows: BpfMap<u32, u64> = BpfMap::create("flows", 1024)?; // needs CAP_BPF
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
    /// use guarded_map::bpf::BpfMap;
    ///
    /// let flows: BpfMap<u32, u64> = BpfMap::create("flows", 1024)?; // needs CAP_BPF
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

    /// The key after `key` in the kernel's order, or the first key for `None`; `None` at the end.
    /// If `key` is no longer in the map, the kernel starts again from the first key.
    pub fn next_key(&self, key: Option<K>) -> io::Result<Option<K>> {
        let mut next = K::default();
        let key_ptr = key.as_ref().map_or(0, |k| std::ptr::from_ref(k) as u64);
        let mut attr = Attr::new()
            .u32_at(0, self.fd.as_raw_fd() as u32)
            .u64_at(8, key_ptr)
            .u64_at(16, &raw mut next as u64);
        match bpf(MAP_GET_NEXT_KEY, &mut attr) {
            Ok(_) => Ok(Some(next)),
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Every entry, read with `BPF_MAP_LOOKUP_BATCH`, `chunk` entries per call (see
    /// [`list`](Self::list)).
    ///
    /// ```no_run
    /// use guarded_map::bpf::BpfMap;
    ///
    /// let flows: BpfMap<u32, u64> = BpfMap::create("flows", 1024)?; // needs CAP_BPF
    /// for key in 0..1000 {
    ///     flows.update(key, u64::from(key))?;
    /// }
    /// assert_eq!(flows.entries(256)?.len(), 1000);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn entries(&self, chunk: u32) -> io::Result<Vec<(K, V)>> {
        self.list(chunk).map(|listing| listing.entries)
    }

    /// Every entry, and how they were read. Batches of `chunk` entries (`BPF_MAP_LOOKUP_BATCH`);
    /// a batch too small for one of the kernel's hash buckets (`ENOSPC`) is doubled and tried
    /// again; a map type without batch lookups is walked key by key (`BPF_MAP_GET_NEXT_KEY`).
    ///
    /// Not an atomic snapshot: the kernel walks the map bucket by bucket while others may change
    /// it, so a key changed during the listing may appear with its old or its new value, or (if it
    /// was removed or added) be missing. [`Mirror`](super::Mirror) is built to live with that.
    ///
    /// ```no_run
    /// use guarded_map::bpf::BpfMap;
    ///
    /// let flows: BpfMap<u32, u64> = BpfMap::create("flows", 4096)?; // needs CAP_BPF
    /// for key in 0..3000 {
    ///     flows.update(key, 1)?;
    /// }
    /// // One entry per call cannot hold a bucket of two: the batch grows until it can.
    /// let listing = flows.list(1)?;
    /// assert_eq!(listing.entries.len(), 3000);
    /// assert!(listing.grown > 0 && listing.chunk > 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn list(&self, chunk: u32) -> io::Result<Listing<K, V>> {
        self.list_between(chunk, || {})
    }

    /// [`list`](Self::list), calling `between` after each system call (the mirror drains its
    /// change ring there, so that a long listing does not let the ring fill).
    pub(super) fn list_between(
        &self,
        chunk: u32,
        mut between: impl FnMut(),
    ) -> io::Result<Listing<K, V>> {
        let mut listing = Listing {
            chunk: chunk.max(1),
            ..Listing::default()
        };
        // The position between batches: a bucket number (`u32`) for hash maps, a key for the
        // maps that batch generically (arrays, tries), so room for either, 8-aligned.
        let words = size_of::<K>().max(4).div_ceil(8);
        let (mut token, mut next) = (vec![0u64; words], vec![0u64; words]);
        let mut first = true;
        let mut keys = Vec::new();
        let mut values = Vec::new();
        loop {
            let chunk = listing.chunk;
            keys.resize(chunk as usize, K::default());
            values.resize(chunk as usize, V::default());
            let mut attr = Attr::new()
                .u64_at(0, if first { 0 } else { token.as_ptr() as u64 })
                .u64_at(8, next.as_mut_ptr() as u64)
                .u64_at(16, keys.as_mut_ptr() as u64)
                .u64_at(24, values.as_mut_ptr() as u64)
                .u32_at(32, chunk)
                .u32_at(36, self.fd.as_raw_fd() as u32);
            let result = bpf(MAP_LOOKUP_BATCH, &mut attr);
            listing.calls += 1;
            between();
            let count = (attr.get_u32(32) as usize).min(keys.len());
            listing.entries.extend(
                keys[..count]
                    .iter()
                    .copied()
                    .zip(values[..count].iter().copied()),
            );
            match result {
                Ok(_) => {}
                // The last batch: the kernel says there is nothing after it.
                Err(err) if err.raw_os_error() == Some(libc::ENOENT) => return Ok(listing),
                // A bucket holds more entries than the batch: read it again, with room for it.
                Err(err) if err.raw_os_error() == Some(libc::ENOSPC) && count == 0 => {
                    if chunk >= self.info.max_entries.max(1) {
                        return Err(err);
                    }
                    listing.grown += 1;
                    listing.chunk = chunk.saturating_mul(2).min(self.info.max_entries.max(1));
                    continue;
                }
                Err(err) if first && unsupported(&err) => {
                    return self.list_by_key(listing, between);
                }
                Err(err) => return Err(err),
            }
            token.copy_from_slice(&next);
            first = false;
        }
    }

    /// Lists by `BPF_MAP_GET_NEXT_KEY` and a lookup per key. A key removed while the walk stands
    /// on it makes the kernel start again from the first key; keys already seen are not repeated.
    fn list_by_key(
        &self,
        mut listing: Listing<K, V>,
        mut between: impl FnMut(),
    ) -> io::Result<Listing<K, V>> {
        listing.by_key = true;
        listing.entries.clear();
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        let mut key = None;
        while let Some(next) = self.next_key(key)? {
            listing.calls += 1;
            key = Some(next);
            if !seen.insert(bytes_of(&next).to_vec()) {
                continue;
            }
            if let Some(value) = self.lookup(next)? {
                listing.entries.push((next, value));
            }
            listing.calls += 1;
            between();
        }
        listing.calls += 1;
        Ok(listing)
    }
}

impl<K, V> AsRawFd for BpfMap<K, V> {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}
