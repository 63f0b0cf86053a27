//! The records guarded-map's probe moves from a target process to the probe, shared by the three
//! parties that handle them: the target's runtime (which fills [`Summary`] and [`OpSample`] and hands
//! them to its hook functions), the kernel-side programs of `guarded-map-ebpf` (which copy them, and
//! write [`Syscall`] records of their own, into one ring buffer), and the probe in user space
//! (`guarded-map-probe`, which reads that ring buffer).
//!
//! Every record is `#[repr(C)]` with explicit padding, starts with a `u32` [`RecordKind`], and is read
//! back by kind and size. `no_std` and dependency-free, so the target's runtime can use it at no cost.
#![no_std]

pub mod change;
mod forms;
mod statistics;

pub use forms::{ActiveBackend, SwitchReason};
pub use statistics::{STATS, Stat};

/// Symbol of the `u16` semaphore the kernel raises while a probe is attached.
pub const SEMAPHORE_SYMBOL: &str = "guarded_map_probe_semaphore";
/// Symbol of the target's [`ProbeConfig`], which the probe writes before it attaches.
pub const CONFIG_SYMBOL: &str = "guarded_map_probe_config";
/// Symbol of the target's [`PinRequest`] words, which `guarded-map-probe pin` writes.
pub const PIN_SYMBOL: &str = "guarded_map_probe_pin";
/// Symbol of the hook that receives a `*const Summary`.
pub const SUMMARY_HOOK_SYMBOL: &str = "guarded_map_probe_summary";
/// Symbol of the hook that receives a `*const OpSample`.
pub const OP_HOOK_SYMBOL: &str = "guarded_map_probe_op";

/// The id under which a label's summaries and samples travel: a hash of the label (FNV-1a), so that
/// descriptors sharing a label share it too.
pub const fn map_id(label: &str) -> u64 {
    let bytes = label.as_bytes();
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let mut i = 0;
    while i < bytes.len() {
        hash = (hash ^ bytes[i] as u64).wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

/// A request to pin the adaptive maps of one label to a form, or to let their cost model decide
/// again: two `u64`s, native endian, at [`PIN_SYMBOL`]. The probe writes the map's [`map_id`]
/// first and then the word with a request number one higher than the last; the target applies a
/// request once, at a sample point, when it sees a new number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PinRequest {
    /// The [`map_id`] of the maps' label.
    pub map_id: u64,
    /// Increases with every request.
    pub number: u32,
    /// The form to hold, or `None` to let the cost model decide.
    pub to: Option<ActiveBackend>,
}

impl PinRequest {
    /// The request's second word: the number above the form's code (0 for none).
    pub const fn word(&self) -> u64 {
        let code = match self.to {
            Some(form) => form.code(),
            None => 0,
        };
        (self.number as u64) << 8 | code as u64
    }

    /// The request of the two words, if the second names a request (number above 0).
    pub const fn from_words(map_id: u64, word: u64) -> Option<PinRequest> {
        let number = (word >> 8) as u32;
        if number == 0 {
            return None;
        }
        Some(PinRequest {
            map_id,
            number,
            to: ActiveBackend::from_code(word as u8),
        })
    }
}

/// Bytes of a map label in a [`Summary`] (longer labels are cut, ending in `~`).
pub const LABEL_LEN: usize = 96;
/// Bytes of a kernel BPF map name (the kernel's `BPF_OBJ_NAME_LEN`).
pub const BPF_NAME_LEN: usize = 16;

/// Which concurrency strategy a map uses (`guarded_map::BackendKind`). Its code is what a
/// [`Summary`] carries; this is the one place that names and decodes it.
#[repr(u8)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackendKind {
    /// Read-copy-update: wait-free reads of an immutable, atomically swapped table.
    Rcu = 0,
    /// A power-of-two array of reader-writer locks, each over its own hash table.
    Sharded = 1,
    /// A persistent B+ tree behind an atomically swapped pointer (`BTreeMap` fields).
    Ordered = 2,
    /// `Rcu` or `Sharded` at a time, switched while the map runs.
    Adaptive = 3,
}

impl BackendKind {
    /// Every kind, in code order.
    pub const ALL: [BackendKind; 4] = [
        BackendKind::Rcu,
        BackendKind::Sharded,
        BackendKind::Ordered,
        BackendKind::Adaptive,
    ];

    /// The lowercase name used in metric labels and by the probe (`"rcu"`, `"sharded"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            BackendKind::Rcu => "rcu",
            BackendKind::Sharded => "sharded",
            BackendKind::Ordered => "ordered",
            BackendKind::Adaptive => "adaptive",
        }
    }

    /// The code a record carries.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The kind of a record's code, if it names one.
    pub const fn from_code(code: u32) -> Option<BackendKind> {
        match code {
            0 => Some(BackendKind::Rcu),
            1 => Some(BackendKind::Sharded),
            2 => Some(BackendKind::Ordered),
            3 => Some(BackendKind::Adaptive),
            _ => None,
        }
    }
}

impl core::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first field of every record.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// A [`Summary`].
    Summary = 1,
    /// An [`OpSample`].
    Op = 2,
    /// A [`Syscall`].
    Syscall = 3,
}

impl RecordKind {
    /// The kind a record's first word names, if any.
    pub fn from_u32(word: u32) -> Option<RecordKind> {
        match word {
            1 => Some(RecordKind::Summary),
            2 => Some(RecordKind::Op),
            3 => Some(RecordKind::Syscall),
            _ => None,
        }
    }
}

/// What the probe asks of the target: the target's runtime reads it (relaxed) whenever the
/// semaphore is raised. Two `u32`s, native endian, at [`CONFIG_SYMBOL`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeConfig {
    /// Hand one operation in this many, per thread, to the operation hook (0: none).
    pub sample_every: u32,
    /// Hand every map's summary to the summary hook this often, in milliseconds.
    pub interval_ms: u32,
}

impl ProbeConfig {
    /// What a probe asks for unless told otherwise: one operation in 1024, a summary a second.
    pub const DEFAULT: ProbeConfig = ProbeConfig {
        sample_every: 1024,
        interval_ms: 1000,
    };

    /// The config as the bytes the target keeps.
    pub fn to_bytes(self) -> [u8; 8] {
        let mut out = [0; 8];
        out[..4].copy_from_slice(&self.sample_every.to_ne_bytes());
        out[4..].copy_from_slice(&self.interval_ms.to_ne_bytes());
        out
    }

    /// The config from the bytes the target keeps.
    pub fn from_bytes(bytes: [u8; 8]) -> ProbeConfig {
        let word =
            |i: usize| u32::from_ne_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        ProbeConfig {
            sample_every: word(0),
            interval_ms: word(4),
        }
    }
}

/// A map operation, as counted in a [`Summary`] and named in an [`OpSample`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// A keyed read.
    Get = 0,
    /// An insert of a new entry.
    Insert = 1,
    /// A change of an existing entry.
    Update = 2,
    /// A `remove`.
    Remove = 3,
    /// A `retain`.
    Retain = 4,
    /// A `clear`.
    Clear = 5,
    /// A `snapshot`.
    Snapshot = 6,
    /// A range scan of an ordered map.
    Range = 7,
}

impl Op {
    /// Every operation, in index order.
    pub const ALL: [Op; OPS] = [
        Op::Get,
        Op::Insert,
        Op::Update,
        Op::Remove,
        Op::Retain,
        Op::Clear,
        Op::Snapshot,
        Op::Range,
    ];

    /// The operation an index names, if any.
    pub fn from_u32(index: u32) -> Option<Op> {
        Op::ALL.get(index as usize).copied()
    }

    /// Its name, as the probe prints it.
    pub fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Insert => "insert",
            Op::Update => "update",
            Op::Remove => "remove",
            Op::Retain => "retain",
            Op::Clear => "clear",
            Op::Snapshot => "snapshot",
            Op::Range => "range",
        }
    }

    /// The statistic that counts it.
    pub const fn stat(self) -> Stat {
        match self {
            Op::Get => Stat::Get,
            Op::Insert => Stat::Insert,
            Op::Update => Stat::Update,
            Op::Remove => Stat::Remove,
            Op::Retain => Stat::Retain,
            Op::Clear => Stat::Clear,
            Op::Snapshot => Stat::Snapshot,
            Op::Range => Stat::Range,
        }
    }

    /// Whether it writes.
    pub fn is_write(self) -> bool {
        !matches!(self, Op::Get | Op::Snapshot | Op::Range)
    }
}

/// Number of [`Op`]s.
pub const OPS: usize = 8;

/// One guarded map's totals (every instance of one descriptor, dropped ones included), handed to
/// the summary hook every interval while a probe is attached.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    /// [`RecordKind::Summary`].
    pub kind: u32,
    /// The map's [`BackendKind::code`].
    pub backend: u32,
    /// Identifies the map within the target (its descriptor's address).
    pub map_id: u64,
    /// When the kernel copied the record (`CLOCK_MONOTONIC`, ns); 0 in the target.
    pub time_ns: u64,
    /// Live instances.
    pub instances: u64,
    /// Of an adaptive map: live instances in the `Rcu` and in the `Sharded` form.
    pub forms: [u32; 2],
    /// Of an adaptive map: live instances pinned to the `Rcu` and to the `Sharded` form.
    pub pinned: [u32; 2],
    /// Of an adaptive map's last switch (any instance's latest): its
    /// [`ActiveBackend::code`]s from and to and its [`SwitchReason::code`] (0: none yet).
    pub last_switch: [u8; 3],
    /// Padding; 0.
    pub reserved: u8,
    /// The shard count of a `Sharded` (or adaptive) map; 0 for a backend without fixed shards.
    pub shards: u32,
    /// How long ago that switch ended, in ms, when the summary was made.
    pub last_switch_age_ms: u64,
    /// The map's `max_len`; 0 when it has none.
    pub max_len: u64,
    /// The map's statistics, indexed by [`Stat`]: counters since the target started, gauges now.
    pub stats: [u64; STATS],
    /// The map's label, NUL-padded.
    pub label: [u8; LABEL_LEN],
    /// The kernel BPF map the map mirrors (`#[guarded(bpf_map = "...")]`), NUL-padded; empty if none.
    pub bpf_map: [u8; BPF_NAME_LEN],
}

impl Summary {
    /// The value of one statistic.
    pub const fn get(&self, stat: Stat) -> u64 {
        self.stats[stat as usize]
    }

    /// An empty summary of kind [`RecordKind::Summary`].
    pub const EMPTY: Summary = Summary {
        kind: RecordKind::Summary as u32,
        backend: 0,
        map_id: 0,
        time_ns: 0,
        instances: 0,
        forms: [0; 2],
        pinned: [0; 2],
        last_switch: [0; 3],
        reserved: 0,
        shards: 0,
        last_switch_age_ms: 0,
        max_len: 0,
        stats: [0; STATS],
        label: [0; LABEL_LEN],
        bpf_map: [0; BPF_NAME_LEN],
    };
}

/// One sampled operation: one in [`ProbeConfig::sample_every`] per thread.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct OpSample {
    /// [`RecordKind::Op`].
    pub kind: u32,
    /// The [`Op`].
    pub op: u32,
    /// The map (see [`Summary::map_id`]).
    pub map_id: u64,
    /// A keyed fingerprint of the key: its hash mixed with a secret drawn when the target started,
    /// so equal keys match within one run and the key itself never leaves the process.
    pub fingerprint: u64,
    /// How long the operation waited for a contended lock, in ns (0 when it did not wait).
    pub lock_wait_nanos: u64,
    /// When the kernel copied the record (`CLOCK_MONOTONIC`, ns); 0 in the target.
    pub time_ns: u64,
    /// The thread that performed it (filled in by the kernel side).
    pub tid: u32,
    /// Padding; 0.
    pub reserved: u32,
}

/// One `bpf()` map command of the target, recorded by the syscall tracepoints.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Syscall {
    /// [`RecordKind::Syscall`].
    pub kind: u32,
    /// The `bpf()` command.
    pub cmd: u32,
    /// The calling thread.
    pub tid: u32,
    /// The map's file descriptor (for `BPF_MAP_CREATE`, the one it returned; -1 if it failed).
    pub map_fd: i32,
    /// The syscall's return value.
    pub result: i64,
    /// Elements a batch command processed (its `count` on return); 1 for other commands.
    pub count: u32,
    /// Padding; 0.
    pub reserved: u32,
    /// When the call entered the kernel (`CLOCK_MONOTONIC`, ns).
    pub start_ns: u64,
    /// How long it took, in ns.
    pub latency_ns: u64,
}

/// The `bpf()` commands on maps that the probe follows, with their kernel numbers.
pub mod cmd {
    /// `BPF_MAP_CREATE`.
    pub const MAP_CREATE: u32 = 0;
    /// `BPF_MAP_LOOKUP_ELEM`.
    pub const MAP_LOOKUP_ELEM: u32 = 1;
    /// `BPF_MAP_UPDATE_ELEM`.
    pub const MAP_UPDATE_ELEM: u32 = 2;
    /// `BPF_MAP_DELETE_ELEM`.
    pub const MAP_DELETE_ELEM: u32 = 3;
    /// `BPF_MAP_GET_NEXT_KEY`.
    pub const MAP_GET_NEXT_KEY: u32 = 4;
    /// `BPF_MAP_GET_NEXT_ID` (not followed: it names no map fd).
    pub const MAP_GET_NEXT_ID: u32 = 12;
    /// `BPF_MAP_GET_FD_BY_ID` (not followed: its map fd is its result).
    pub const MAP_GET_FD_BY_ID: u32 = 14;
    /// `BPF_OBJ_GET_INFO_BY_FD` (not followed: any kind of object).
    pub const OBJ_GET_INFO_BY_FD: u32 = 15;
    /// `BPF_MAP_LOOKUP_AND_DELETE_ELEM`.
    pub const MAP_LOOKUP_AND_DELETE_ELEM: u32 = 21;
    /// `BPF_MAP_FREEZE`.
    pub const MAP_FREEZE: u32 = 22;
    /// `BPF_MAP_LOOKUP_BATCH`.
    pub const MAP_LOOKUP_BATCH: u32 = 24;
    /// `BPF_MAP_LOOKUP_AND_DELETE_BATCH`.
    pub const MAP_LOOKUP_AND_DELETE_BATCH: u32 = 25;
    /// `BPF_MAP_UPDATE_BATCH`.
    pub const MAP_UPDATE_BATCH: u32 = 26;
    /// `BPF_MAP_DELETE_BATCH`.
    pub const MAP_DELETE_BATCH: u32 = 27;

    /// Where a command's `union bpf_attr` holds the map's fd: `None` for commands the probe does not
    /// follow and for `BPF_MAP_CREATE` (whose fd is its result).
    pub fn map_fd_offset(cmd: u32) -> Option<usize> {
        match cmd {
            MAP_LOOKUP_ELEM
            | MAP_UPDATE_ELEM
            | MAP_DELETE_ELEM
            | MAP_GET_NEXT_KEY
            | MAP_LOOKUP_AND_DELETE_ELEM
            | MAP_FREEZE => Some(0),
            // `in_batch`, `out_batch`, `keys`, `values` (8 bytes each), `count` (4), `map_fd`.
            MAP_LOOKUP_BATCH
            | MAP_LOOKUP_AND_DELETE_BATCH
            | MAP_UPDATE_BATCH
            | MAP_DELETE_BATCH => Some(36),
            _ => None,
        }
    }

    /// Where a batch command's `count` is in its `union bpf_attr`, or `None` for other commands.
    pub fn batch_count_offset(cmd: u32) -> Option<usize> {
        match cmd {
            MAP_LOOKUP_BATCH
            | MAP_LOOKUP_AND_DELETE_BATCH
            | MAP_UPDATE_BATCH
            | MAP_DELETE_BATCH => Some(32),
            _ => None,
        }
    }

    /// Whether the probe follows the command.
    pub fn is_followed(cmd: u32) -> bool {
        cmd == MAP_CREATE || map_fd_offset(cmd).is_some()
    }

    /// The command's name, as the probe prints it.
    pub fn name(cmd: u32) -> &'static str {
        match cmd {
            MAP_CREATE => "create",
            MAP_LOOKUP_ELEM => "lookup",
            MAP_UPDATE_ELEM => "update",
            MAP_DELETE_ELEM => "delete",
            MAP_GET_NEXT_KEY => "get_next_key",
            MAP_LOOKUP_AND_DELETE_ELEM => "lookup_and_delete",
            MAP_FREEZE => "freeze",
            MAP_LOOKUP_BATCH => "lookup_batch",
            MAP_LOOKUP_AND_DELETE_BATCH => "lookup_and_delete_batch",
            MAP_UPDATE_BATCH => "update_batch",
            MAP_DELETE_BATCH => "delete_batch",
            _ => "other",
        }
    }
}

/// A record type: `repr(C)`, made only of integers and byte arrays without padding, so that any
/// bytes of its size are a valid value.
///
/// # Safety
///
/// Implement it only for such types.
pub unsafe trait Record: Copy {
    /// The record in the first `size_of::<Self>()` of `bytes` (`None` if there are fewer).
    fn read_from(bytes: &[u8]) -> Option<Self> {
        (bytes.len() >= size_of::<Self>()).then(|| {
            // SAFETY: at least `size_of::<Self>()` bytes, read unaligned; every bit pattern is a
            // valid `Self` (the trait's contract).
            unsafe { bytes.as_ptr().cast::<Self>().read_unaligned() }
        })
    }
}

// SAFETY: `repr(C)` integers and byte arrays; the layout test below checks there is no padding.
unsafe impl Record for Summary {}
// SAFETY: as for `Summary`.
unsafe impl Record for OpSample {}
// SAFETY: as for `Summary`.
unsafe impl Record for Syscall {}

/// The text of a NUL-padded name field (up to its first NUL).
pub fn name_bytes(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_have_no_hidden_padding() {
        // Every byte of a record is a named field, so the kernel copies no uninitialized memory
        // and the user side may read any byte.
        assert_eq!(
            size_of::<Summary>(),
            4 * 2
                + 8 * 3
                + (4 * 2 + 4 * 2 + 3 + 1 + 4 + 8 + 8)
                + 8 * STATS
                + LABEL_LEN
                + BPF_NAME_LEN
        );
        assert_eq!(size_of::<OpSample>(), 4 * 2 + 8 * 4 + 4 * 2);
        assert_eq!(size_of::<Syscall>(), 4 * 4 + 8 + 4 * 2 + 8 * 2);
    }

    #[test]
    fn records_are_read_from_bytes_of_their_size() {
        let mut bytes = [0u8; size_of::<OpSample>() + 1];
        bytes[..4].copy_from_slice(&(RecordKind::Op as u32).to_ne_bytes());
        bytes[8..16].copy_from_slice(&9u64.to_ne_bytes());
        // Unaligned on purpose: ring-buffer records need not be aligned for `T`.
        let sample = OpSample::read_from(&bytes[..]).unwrap();
        assert_eq!((sample.kind, sample.map_id), (RecordKind::Op as u32, 9));
        let shifted = OpSample::read_from(&bytes[1..]).unwrap();
        assert_eq!(shifted.kind, (RecordKind::Op as u32) >> 8);
        assert!(OpSample::read_from(&bytes[2..]).is_none());
        assert!(Summary::read_from(&bytes).is_none());
    }

    #[test]
    fn config_round_trips_and_ops_index() {
        let config = ProbeConfig {
            sample_every: 7,
            interval_ms: 250,
        };
        assert_eq!(ProbeConfig::from_bytes(config.to_bytes()), config);
        for (i, op) in Op::ALL.iter().enumerate() {
            assert_eq!(Op::from_u32(i as u32), Some(*op));
        }
        assert_eq!(Op::from_u32(OPS as u32), None);
        assert_eq!(cmd::map_fd_offset(cmd::MAP_UPDATE_BATCH), Some(36));
        assert!(cmd::is_followed(cmd::MAP_CREATE) && !cmd::is_followed(5));
        assert_eq!(name_bytes(b"flows\0\0\0"), b"flows");
    }
}
