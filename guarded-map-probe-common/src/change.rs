//! Change records of a mirrored kernel map: what a kernel program writes into a ring buffer each
//! time it changes a BPF map, so that `guarded_map::bpf::Mirror` keeps a user-space map equal to
//! it without listing the whole map again.
//!
//! The protocol, for a kernel program that changes map `M` (keys `K`, values `V`):
//!
//! 1. change `M` (update or delete);
//! 2. reserve a [`Change<K, V>`] in the map's change ring; if the ring is full, add one to slot
//!    [`LOST_SLOT`] of the counters array instead, and stop (the mirror then reconciles);
//! 3. take the next sequence number: an atomic add of 1 to slot [`SEQ_SLOT`], the record's `seq`
//!    being the value after the add (so the slot always holds the last number given);
//! 4. fill in the record (`time_ns` from `bpf_ktime_get_ns`) and submit it.
//!
//! Per key, changes must reach steps 1 and 3 in the same order (one writer per key at a time, as
//! with a program that runs in the thread that causes the change); a key changed from two CPUs at
//! once may get its records out of order, which the mirror's reconciliation finds and corrects.

/// The record sets a key to the record's value.
pub const SET: u32 = 1;
/// The record removes a key (its value bytes are not read).
pub const DELETE: u32 = 2;

/// Slot of the counters array that holds the last sequence number given.
pub const SEQ_SLOT: u32 = 0;
/// Slot of the counters array that counts changes whose record found the ring full.
pub const LOST_SLOT: u32 = 1;
/// Slots of the counters array (`BPF_MAP_TYPE_ARRAY` of `u64`).
pub const COUNTER_SLOTS: u32 = 2;

/// What every change record starts with.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChangeHeader {
    /// The change's sequence number: 1, 2, 3... across every writer of the map.
    pub seq: u64,
    /// When the change was made (`CLOCK_MONOTONIC`, ns).
    pub time_ns: u64,
    /// [`SET`] or [`DELETE`].
    pub kind: u32,
    /// `size_of::<K>()`, checked by the reader.
    pub key_size: u16,
    /// `size_of::<V>()`, checked by the reader.
    pub value_size: u16,
}

/// One change record: the header, then the key and the value (`repr(C)`, so the reader and the
/// kernel program agree on where they are).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Change<K, V> {
    /// Sequence number, time and kind.
    pub header: ChangeHeader,
    /// The key changed.
    pub key: K,
    /// Its new value ([`SET`]).
    pub value: V,
}

impl<K, V> Change<K, V> {
    /// A header for this record type.
    pub const fn header(seq: u64, time_ns: u64, kind: u32) -> ChangeHeader {
        ChangeHeader {
            seq,
            time_ns,
            kind,
            key_size: size_of::<K>() as u16,
            value_size: size_of::<V>() as u16,
        }
    }
}

/// The test and benchmark program `mirror_op`: a uprobe on a function of this name and signature,
/// `extern "C" fn(op: u32, key: u32, value: u64, count: u32)`, that applies `op` to the keys
/// `key..key + count` (at most [`mirror_op::MAX_COUNT`]) of its `u32 -> u64` hash map and writes their change
/// records.
pub mod mirror_op {
    /// Symbol of the function the program is attached to.
    pub const SYMBOL: &str = "guarded_map_mirror_op";
    /// Set each key to `value`.
    pub const SET: u32 = 0;
    /// Remove each key.
    pub const DELETE: u32 = 1;
    /// Add `value` to each key (inserting it with `value` if absent).
    pub const ADD: u32 = 2;
    /// The most keys one call changes.
    pub const MAX_COUNT: u32 = 64;
}
