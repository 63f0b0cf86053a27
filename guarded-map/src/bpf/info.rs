//! What the kernel says of a BPF map (`BPF_OBJ_GET_INFO_BY_FD`), and finding a map by id or name.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use guarded_map_probe_common::cmd::{MAP_GET_FD_BY_ID, MAP_GET_NEXT_ID, OBJ_GET_INFO_BY_FD};

use super::sys::{Attr, bpf, bpf_fd};

/// The longest map name the kernel keeps (`BPF_OBJ_NAME_LEN` less its NUL).
pub(super) const NAME_MAX: usize = 15;

/// A kernel BPF map's description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapInfo {
    /// The kernel's id of the map (what `bpftool map show` lists).
    pub id: u32,
    /// Its type (`BPF_MAP_TYPE_*`); [`type_name`](Self::type_name) names the common ones.
    pub map_type: u32,
    /// Bytes of a key.
    pub key_size: u32,
    /// Bytes of a value.
    pub value_size: u32,
    /// The most entries it holds (for a ring buffer: its bytes).
    pub max_entries: u32,
    /// Its creation flags (`BPF_F_*`).
    pub flags: u32,
    /// Its name (up to 15 bytes).
    pub name: String,
}

/// `BPF_MAP_TYPE_HASH`.
pub(super) const HASH: u32 = 1;
/// `BPF_MAP_TYPE_ARRAY`.
const ARRAY: u32 = 2;
/// `BPF_MAP_TYPE_LRU_HASH`.
const LRU_HASH: u32 = 9;
/// `BPF_MAP_TYPE_RINGBUF`.
pub(super) const RINGBUF: u32 = 27;

impl MapInfo {
    /// The map type's name as `bpftool` spells it, for the common types (`"hash"`, `"array"`,
    /// `"lru_hash"`, `"ringbuf"`), or its number.
    pub fn type_name(&self) -> String {
        match self.map_type {
            HASH => "hash".into(),
            ARRAY => "array".into(),
            LRU_HASH => "lru_hash".into(),
            RINGBUF => "ringbuf".into(),
            other => format!("type {other}"),
        }
    }

    /// The description of the map behind `fd`.
    pub(super) fn of(fd: &OwnedFd) -> io::Result<Self> {
        let mut info = [0u8; 88];
        let mut attr = Attr::new()
            .u32_at(0, fd.as_raw_fd() as u32)
            .u32_at(4, info.len() as u32)
            .u64_at(8, info.as_mut_ptr() as u64);
        bpf(OBJ_GET_INFO_BY_FD, &mut attr)?;
        let u32_at = |at: usize| u32::from_ne_bytes(info[at..at + 4].try_into().expect("4 bytes"));
        let name = &info[24..40];
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        Ok(MapInfo {
            map_type: u32_at(0),
            id: u32_at(4),
            key_size: u32_at(8),
            value_size: u32_at(12),
            max_entries: u32_at(16),
            flags: u32_at(20),
            name: String::from_utf8_lossy(&name[..end]).into_owned(),
        })
    }
}

/// Opens the map with kernel id `id`.
pub(super) fn open_id(id: u32) -> io::Result<(OwnedFd, MapInfo)> {
    let fd = bpf_fd(MAP_GET_FD_BY_ID, &mut Attr::new().u32_at(0, id)).map_err(|err| {
        if err.raw_os_error() == Some(libc::ENOENT) {
            io::Error::new(io::ErrorKind::NotFound, format!("no BPF map has id {id}"))
        } else {
            err
        }
    })?;
    let info = MapInfo::of(&fd)?;
    Ok((fd, info))
}

/// Opens the one map named `name` (cut to 15 bytes, as the kernel keeps it); an error if there is
/// none or more than one.
pub(super) fn open_name(name: &str) -> io::Result<(OwnedFd, MapInfo)> {
    let wanted = &name[..name.len().min(NAME_MAX)];
    let mut found: Vec<(OwnedFd, MapInfo)> = Vec::new();
    let mut id = 0u32;
    loop {
        let mut attr = Attr::new().u32_at(0, id);
        match bpf(MAP_GET_NEXT_ID, &mut attr) {
            Ok(_) => id = attr.get_u32(4),
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => break,
            Err(err) => return Err(err),
        }
        match open_id(id) {
            Ok((fd, info)) if info.name == wanted => found.push((fd, info)),
            Ok(_) => {}
            // Gone since it was listed.
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
    }
    match found.len() {
        1 => Ok(found.pop().expect("one")),
        0 => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no BPF map is named {wanted:?}"),
        )),
        _ => {
            let ids: Vec<String> = found.iter().map(|(_, info)| info.id.to_string()).collect();
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} BPF maps are named {wanted:?} (ids {}): open one by id",
                    found.len(),
                    ids.join(", ")
                ),
            ))
        }
    }
}
