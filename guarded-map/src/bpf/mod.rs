//! Kernel BPF maps through the raw `bpf()` system call (feature `bpf`, Linux): what an eBPF agent's
//! user-space side uses to read and write the maps its kernel programs fill, and a [`Mirror`] that
//! keeps a guarded map (hash or ordered) equal to one.
//!
//! - [`BpfMap`]: a kernel map opened by name or id (or created), with typed keys and values: point
//!   commands, and [`list`](BpfMap::list)ing every entry (batches that grow on `ENOSPC`, or a
//!   key-by-key walk where the map type has no batches).
//! - [`ChangeRing`]: a BPF ring buffer read from user space.
//! - [`Mirror`]: full sync on an interval, or incremental from the change records of a kernel
//!   program (list-then-watch), with reconciliation; metrics `guarded_map_mirror_*`.
//!
//! Written by hand, not with aya: a few commands on plain fixed-size keys and values, and
//! `guarded-map` must not depend on the eBPF loader (see ARCHITECTURE.md). The command numbers and
//! the change record layout come from `guarded-map-probe-common`, which the kernel programs share.
//!
//! ```no_run
//! use guarded_map::bpf::BpfMap;
//!
//! let flows: BpfMap<u32, u64> = BpfMap::create("flows", 1024)?; // needs CAP_BPF
//! flows.update(7, 1500)?;
//! assert_eq!(flows.lookup(7)?, Some(1500));
//! assert_eq!(flows.entries(256)?, vec![(7, 1500)]);
//! # Ok::<(), std::io::Error>(())
//! ```

mod info;
mod lag;
mod map;
mod mirror;
mod ring;
mod sys;
mod target;

pub use info::MapInfo;
pub use lag::Lag;
pub use map::{BpfMap, Listing};
pub use mirror::{Mirror, MirrorOptions, MirrorStats, MirrorWriter};
pub use ring::ChangeRing;
pub use sys::calls;
pub use target::MirrorTarget;

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

/// The bytes of a plain value.
fn bytes_of<T: Plain>(value: &T) -> &[u8] {
    // SAFETY: `T` has no padding (`Plain`), so all its bytes are initialised.
    unsafe { std::slice::from_raw_parts(std::ptr::from_ref(value).cast(), size_of::<T>()) }
}

/// The bytes of a plain value, to overwrite.
fn bytes_of_mut<T: Plain>(value: &mut T) -> &mut [u8] {
    // SAFETY: `T` has no padding and any bytes are a valid `T` (`Plain`).
    unsafe { std::slice::from_raw_parts_mut(std::ptr::from_mut(value).cast(), size_of::<T>()) }
}
