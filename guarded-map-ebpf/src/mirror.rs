//! Kernel programs that change BPF maps and write a change record for each change
//! (`guarded_map_probe_common::change`), which `guarded_map::bpf::Mirror` applies to a guarded map:
//!
//! - `mirror_op`: a uprobe on `guarded_map_mirror_op(op, key, value, count)` in the calling
//!   process; it changes `MIRRORED` (`u32 -> u64`) as asked. The mirror's tests and benchmark drive
//!   the kernel side of a mirror with it.
//! - `count_syscalls`: the `raw_syscalls:sys_enter` tracepoint; it counts system calls per process
//!   into `SYSCALLS` (an LRU map of 1 024 processes, so that evictions happen), except the
//!   loading process's own. The `flows` example
//!   mirrors it.

use core::intrinsics::{AtomicOrdering, atomic_xadd};

use aya_ebpf::EbpfContext;
use core::ffi::c_void;

use aya_ebpf::helpers::bpf_ktime_get_ns;
use aya_ebpf::helpers::generated::bpf_loop;
use aya_ebpf::macros::{map, tracepoint, uprobe};
use aya_ebpf::maps::{Array, HashMap, LruHashMap, RingBuf};
use aya_ebpf::programs::{ProbeContext, TracePointContext};
use guarded_map_probe_common::change::{self, Change, mirror_op};

/// `BPF_F_NO_PREALLOC`: entries are allocated as they come, so a large `max_entries` costs nothing
/// until it is used (every process that loads these programs creates these maps).
const NO_PREALLOC: u32 = 1;

#[map]
static MIRRORED: HashMap<u32, u64> = HashMap::with_max_entries(1 << 20, NO_PREALLOC);
/// 16 MiB: 400 000 records of 40 bytes.
#[map]
static MIRRORED_CHANGES: RingBuf = RingBuf::with_byte_size(16 << 20, 0);
#[map]
static MIRRORED_COUNTERS: Array<u64> = Array::with_max_entries(change::COUNTER_SLOTS, 0);

/// The process whose own system calls `count_syscalls` skips (the loader's: its mirror's reads
/// would otherwise count themselves, each one waking it again); set by the loader.
#[unsafe(no_mangle)]
static IGNORED_TGID: u32 = 0;

#[map]
static SYSCALLS: LruHashMap<u32, u64> = LruHashMap::with_max_entries(1024, 0);
#[map]
static SYSCALLS_CHANGES: RingBuf = RingBuf::with_byte_size(4 << 20, 0);
#[map]
static SYSCALLS_COUNTERS: Array<u64> = Array::with_max_entries(change::COUNTER_SLOTS, 0);

/// Adds `n` to the `u64` at `ptr` atomically and returns the sum (`BPF_ATOMIC_FETCH`, so
/// `bpf-linker --cpu v3`; `core`'s atomic types offer no 64-bit read-modify-write on this target).
///
/// # Safety
///
/// `ptr` is a `u64` of a map, 8-aligned and valid while the program runs.
#[inline(always)]
unsafe fn add(ptr: *mut u64, n: u64) -> u64 {
    // SAFETY: the caller's contract; every writer changes the value atomically.
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::SeqCst }>(ptr, n) + n }
}

/// Writes the change record of `key` (the protocol's steps 2 to 4).
#[inline(always)]
fn record<K: Copy + 'static, V: Copy + 'static>(
    ring: &RingBuf,
    counters: &Array<u64>,
    kind: u32,
    key: K,
    value: V,
) {
    let Some(mut entry) = ring.reserve::<Change<K, V>>(0) else {
        if let Some(lost) = counters.get_ptr_mut(change::LOST_SLOT) {
            // SAFETY: a slot of the counters array.
            unsafe { add(lost, 1) };
        }
        return;
    };
    let Some(seq) = counters.get_ptr_mut(change::SEQ_SLOT) else {
        entry.discard(0);
        return;
    };
    // SAFETY: a slot of the counters array.
    let seq = unsafe { add(seq, 1) };
    // SAFETY: a helper without arguments.
    let time_ns = unsafe { bpf_ktime_get_ns() };
    entry.write(Change {
        header: Change::<K, V>::header(seq, time_ns, kind),
        key,
        value,
    });
    entry.submit(0);
}

/// What `mirror_op` asks of each key, handed to [`change_one`] by `bpf_loop`.
#[repr(C)]
struct OpArgs {
    op: u32,
    first: u32,
    value: u64,
}

#[uprobe]
pub fn mirror_op(ctx: ProbeContext) -> u32 {
    let (Some(op), Some(first), Some(value), Some(count)) = (
        ctx.arg::<u32>(0),
        ctx.arg::<u32>(1),
        ctx.arg::<u64>(2),
        ctx.arg::<u32>(3),
    ) else {
        return 0;
    };
    let mut args = OpArgs { op, first, value };
    // `bpf_loop` (Linux 5.17): the verifier checks the body once, where a plain loop of 64
    // iterations with a change record each is more than it follows.
    // SAFETY: `change_one` has the callback's signature; `args` lives across the call.
    unsafe {
        bpf_loop(
            count.min(mirror_op::MAX_COUNT),
            change_one as *mut c_void,
            (&raw mut args).cast(),
            0,
        );
    }
    0
}

/// The `index`-th key of a `mirror_op` call: changes it and writes its record.
#[inline(never)]
extern "C" fn change_one(index: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: `ctx` is `mirror_op`'s `OpArgs`, alive for the whole loop.
    let args = unsafe { &*ctx.cast::<OpArgs>() };
    let key = args.first.wrapping_add(index as u32);
    let value = args.value;
    match args.op {
        mirror_op::SET => {
            if MIRRORED.insert(&key, &value, 0).is_ok() {
                record(
                    &MIRRORED_CHANGES,
                    &MIRRORED_COUNTERS,
                    change::SET,
                    key,
                    value,
                );
            }
        }
        mirror_op::DELETE => {
            if MIRRORED.remove(&key).is_ok() {
                record(
                    &MIRRORED_CHANGES,
                    &MIRRORED_COUNTERS,
                    change::DELETE,
                    key,
                    0u64,
                );
            }
        }
        mirror_op::ADD => {
            let now = match MIRRORED.get_ptr_mut(&key) {
                // SAFETY: the value of a live entry.
                Some(ptr) => unsafe { add(ptr, value) },
                None => {
                    if MIRRORED.insert(&key, &value, 0).is_err() {
                        return 0;
                    }
                    value
                }
            };
            record(&MIRRORED_CHANGES, &MIRRORED_COUNTERS, change::SET, key, now);
        }
        // Unknown: stop.
        _ => return 1,
    }
    0
}

#[tracepoint]
pub fn count_syscalls(ctx: TracePointContext) -> u32 {
    let tgid = ctx.tgid();
    // SAFETY: a plain read of a global the loader wrote before loading; volatile so the compiler
    // does not fold the initial 0 into the code.
    if tgid == unsafe { core::ptr::read_volatile(&IGNORED_TGID) } {
        return 0;
    }
    let now = match SYSCALLS.get_ptr_mut(&tgid) {
        // SAFETY: the value of a live entry.
        Some(ptr) => unsafe { add(ptr, 1) },
        None => {
            if SYSCALLS.insert(&tgid, &1, 0).is_err() {
                return 0;
            }
            1
        }
    };
    record(
        &SYSCALLS_CHANGES,
        &SYSCALLS_COUNTERS,
        change::SET,
        tgid,
        now,
    );
    0
}
