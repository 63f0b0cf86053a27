//! The probe hooks: what lets `guarded-map-probe` watch a running process from outside.
//!
//! Always compiled, and nearly free while no probe is attached: every map operation counts down a
//! thread-local countdown ([`tick`]); at a *sample point*, about one operation in
//! [`SAMPLE_EVERY`] per thread, the map feeds its hot-key summary and [`sample_point`] loads the
//! `u16` semaphore (relaxed). A probe raises it through the kernel's uprobe reference counter
//! (`ref_ctr_offset`), which the kernel lowers again when the probe goes away, even if the probe is
//! killed. While it is raised:
//!
//! - one operation in `sample_every` per thread hands an [`OpSample`] to the operation hook (sample
//!   points then come at least that often);
//! - a thread (started at the first sample point that sees the semaphore raised, ending when it
//!   drops) hands each declared map's [`Summary`] to the summary hook every `interval_ms`.
//!
//! The hooks are naked functions made of a 5-byte `nop` and a `ret`, so an attached uprobe takes the
//! kernel's fast path (an ordinary function entry costs several times more per hit). The probe finds
//! all four items by their symbols (see `guarded_map_probe_common`'s `*_SYMBOL` constants), which a stripped
//! binary no longer has.
//!
//! The semaphore sits in `.data`, not `.bss`: the kernel raises it through its offset in the
//! executable's file, and `.bss` has none. On x86_64 it is defined in assembly with hidden
//! visibility and read with one RIP-relative instruction: a Rust `static` under its own symbol name
//! has default visibility, which rustc reaches through the GOT (a second, dependent load). Hidden, the symbol stays in the symbol
//! table the probe searches, but it cannot be reached from outside the binary or shared object
//! that links this crate (a Rust `dylib` whose users inline map operations would not link).

use std::cell::Cell;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Acquire, Ordering::Relaxed};
use std::thread;
use std::time::Duration;

pub(crate) use guarded_map_probe_common::Op;
use guarded_map_probe_common::{
    BPF_NAME_LEN, BackendKind, LABEL_LEN, OpSample, PinRequest, ProbeConfig, RecordKind, Stat,
    Summary, map_id,
};

use crate::registry::{self, MapReport};
use crate::stats::hot_keys::{SAMPLE_EVERY, fingerprint};

use semaphore::semaphore;

/// Raised by the kernel while a probe is attached (see the module documentation): on x86_64 a
/// hidden symbol defined in assembly and read with one instruction (Miri runs no assembly).
#[cfg(all(target_arch = "x86_64", not(miri)))]
mod semaphore {
    core::arch::global_asm!(
        ".pushsection .data.guarded_map_probe_semaphore,\"aw\",@progbits",
        ".globl guarded_map_probe_semaphore",
        ".hidden guarded_map_probe_semaphore",
        ".type guarded_map_probe_semaphore,@object",
        ".size guarded_map_probe_semaphore,2",
        ".p2align 1",
        "guarded_map_probe_semaphore:",
        ".short 0",
        ".popsection",
    );

    /// The semaphore's value (relaxed: a plain load).
    #[inline(always)]
    pub(super) fn semaphore() -> u16 {
        let value: u32;
        // SAFETY: reads the two bytes the assembly above defines; the kernel writes them only as
        // a whole `u16` (the uprobe reference counter), and a misaligned read cannot happen
        // (`.p2align 1`). No stack, no other memory, flags kept: as the options say.
        unsafe {
            core::arch::asm!(
                "movzx {0:e}, word ptr [rip + guarded_map_probe_semaphore]",
                out(reg) value,
                options(nostack, readonly, preserves_flags),
            );
        }
        value as u16
    }
}

/// See the x86_64 version: elsewhere an exported Rust static.
#[cfg(not(all(target_arch = "x86_64", not(miri))))]
mod semaphore {
    use std::sync::atomic::{AtomicU16, Ordering::Relaxed};

    #[unsafe(export_name = "guarded_map_probe_semaphore")]
    #[unsafe(link_section = ".data.guarded_map_probe_semaphore")]
    #[used]
    static SEMAPHORE: AtomicU16 = AtomicU16::new(0);

    /// The semaphore's value.
    #[inline(always)]
    pub(super) fn semaphore() -> u16 {
        SEMAPHORE.load(Relaxed)
    }
}

/// [`ProbeConfig`]'s two words, written by the probe (through the process's memory) before it
/// raises the semaphore; all zero until a probe has attached once.
#[unsafe(export_name = "guarded_map_probe_config")]
#[unsafe(link_section = ".data.guarded_map_probe_config")]
#[used]
static CONFIG: [AtomicU32; 2] = [AtomicU32::new(0), AtomicU32::new(0)];

/// A [`PinRequest`]'s two words, written by `guarded-map-probe pin` (through the process's
/// memory, with the privileges attaching needs); all zero until the first request.
#[unsafe(export_name = "guarded_map_probe_pin")]
#[unsafe(link_section = ".data.guarded_map_probe_pin")]
#[used]
static PIN: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

/// The number of the last [`PinRequest`] this process applied.
static PIN_APPLIED: AtomicU64 = AtomicU64::new(0);

/// Applies a new pin request, if the probe wrote one (at sample points: one load when none).
fn check_pin() {
    let word = PIN[1].load(Acquire);
    let applied = PIN_APPLIED.load(Relaxed);
    if word >> 8 == applied
        || PIN_APPLIED
            .compare_exchange(applied, word >> 8, Relaxed, Relaxed)
            .is_err()
    {
        return;
    }
    if let Some(request) = PinRequest::from_words(PIN[0].load(Relaxed), word) {
        registry::request_pin(request.map_id, request.to);
    }
}

/// The hook a summary goes to; a uprobe reads its argument.
#[cfg(target_arch = "x86_64")]
#[unsafe(export_name = "guarded_map_probe_summary")]
#[unsafe(naked)]
extern "C" fn summary_hook(_record: *const Summary) {
    // `nopl 0(%rax,%rax,1)`, the 5-byte nop the kernel's optimized uprobes replace, then return.
    core::arch::naked_asm!(".byte 0x0f, 0x1f, 0x44, 0x00, 0x00", "ret")
}

/// The hook a sampled operation goes to; a uprobe reads its argument.
#[cfg(target_arch = "x86_64")]
#[unsafe(export_name = "guarded_map_probe_op")]
#[unsafe(naked)]
extern "C" fn op_hook(_record: *const OpSample) {
    core::arch::naked_asm!(".byte 0x0f, 0x1f, 0x44, 0x00, 0x00", "ret")
}

/// Elsewhere an ordinary function the compiler keeps (uprobes still attach, on the slow path).
#[cfg(not(target_arch = "x86_64"))]
#[unsafe(export_name = "guarded_map_probe_summary")]
#[inline(never)]
extern "C" fn summary_hook(record: *const Summary) {
    std::hint::black_box(record);
}

/// See the x86_64 version.
#[cfg(not(target_arch = "x86_64"))]
#[unsafe(export_name = "guarded_map_probe_op")]
#[inline(never)]
extern "C" fn op_hook(record: *const OpSample) {
    std::hint::black_box(record);
}

/// Keeps both hooks in every binary, also one that never calls them (a probe still finds them).
#[used]
static KEEP_HOOKS: (
    extern "C" fn(*const Summary),
    extern "C" fn(*const OpSample),
) = (summary_hook, op_hook);

/// Whether a probe is attached.
#[inline(always)]
pub(crate) fn armed() -> bool {
    semaphore() != 0
}

/// The probe's config as last written (defaults for words it left at 0).
fn config() -> ProbeConfig {
    let interval_ms = CONFIG[1].load(Relaxed);
    ProbeConfig {
        sample_every: CONFIG[0].load(Relaxed),
        interval_ms: if interval_ms == 0 {
            ProbeConfig::DEFAULT.interval_ms
        } else {
            interval_ms
        },
    }
}

std::thread_local! {
    /// Operations of this thread left before its next sample point.
    static COUNTDOWN: Cell<u32> = const { Cell::new(1) };
    /// What `COUNTDOWN` was last set to: the operations between the last two sample points.
    static RELOADED: Cell<u32> = const { Cell::new(1) };
    /// Operations of this thread left before the probe's next sample (while armed).
    static PROBE_LEFT: Cell<u32> = const { Cell::new(0) };
    /// The lock wait of an operation of this thread, in ns, and the countdown when it waited.
    static WAIT: Cell<(u64, u32)> = const { Cell::new((0, 0)) };
    /// This thread's random state, for the gaps between sample points.
    static RANDOM: Cell<u64> = const { Cell::new(0) };
}

/// Notes the contended wait of the calling thread's current operation (while armed).
#[cold]
pub(crate) fn waited(wait: Duration) {
    if armed() {
        let nanos = u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX);
        WAIT.set((nanos, COUNTDOWN.get()));
    }
}

/// Counts one operation of this thread toward its next sample point: true when this operation is
/// one (about one in [`SAMPLE_EVERY`], or the probe's `sample_every` while a probe asks for
/// more). Inline: a thread-local decrement and a branch, all that an operation pays when it is
/// not one.
#[inline(always)]
pub(crate) fn tick() -> bool {
    if cfg!(guarded_map_no_hooks) {
        // `--cfg guarded_map_no_hooks` compiles sampling out, for `scripts/probe-overhead` to
        // measure what it costs; not an option for applications (a probe could no longer see
        // them, nor their hot keys be found).
        return false;
    }
    let left = COUNTDOWN.get().wrapping_sub(1);
    COUNTDOWN.set(left);
    left == 0
}

/// At a sample point (see [`tick`]): hands the operation to an attached probe when its sample is
/// due, makes sure summaries are being sent, and sets the countdown to the next sample point.
#[cold]
#[inline(never)]
pub(crate) fn sample_point(label: &'static str, op: Op, hash: u64) {
    check_pin();
    let since = RELOADED.get();
    let mut next = random_gap();
    let (wait, waited_at) = WAIT.replace((0, 0));
    if armed() {
        ensure_summaries();
        let every = config().sample_every;
        if every != 0 {
            let mut left = PROBE_LEFT.get().saturating_sub(since);
            if left == 0 {
                // A wait noted while the countdown stood at 1 was this operation's.
                let wait = if waited_at == 1 { wait } else { 0 };
                send_sample(label, op, hash, wait);
                left = every;
            }
            PROBE_LEFT.set(left);
            next = next.min(left);
        }
    }
    COUNTDOWN.set(next);
    RELOADED.set(next);
}

/// Operations until the next sample point: drawn uniformly from 1 to `2 * SAMPLE_EVERY - 1`
/// (mean [`SAMPLE_EVERY`]), so no periodic access pattern lines up with the sample points.
fn random_gap() -> u32 {
    let mut x = RANDOM.get();
    if x == 0 {
        x = RandomState::new().hash_one(0x5eed_u64) | 1;
    }
    // xorshift64
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    RANDOM.set(x);
    1 + (x % u64::from(2 * SAMPLE_EVERY - 1)) as u32
}

/// Hands one sampled operation to the operation hook.
fn send_sample(label: &'static str, op: Op, hash: u64, wait: u64) {
    let sample = OpSample {
        kind: RecordKind::Op as u32,
        op: op as u32,
        map_id: map_id(label),
        fingerprint: fingerprint(hash),
        lock_wait_nanos: wait,
        time_ns: 0,
        tid: 0,
        reserved: 0,
    };
    op_hook(&sample);
}

/// Whether the summary thread runs.
static SUMMARIES: AtomicBool = AtomicBool::new(false);

/// Starts the summary thread unless it runs.
fn ensure_summaries() {
    if SUMMARIES.load(Relaxed) || SUMMARIES.swap(true, Relaxed) {
        return;
    }
    let spawned = thread::Builder::new()
        .name("guarded-map-probe".into())
        .spawn(send_summaries);
    if spawned.is_err() {
        // Out of threads: try again at a later operation.
        SUMMARIES.store(false, Relaxed);
    }
}

/// The summary thread: every interval while armed, one summary per declared map; ends when it sees
/// the probe gone.
fn send_summaries() {
    loop {
        while armed() {
            send_summaries_now();
            thread::sleep(Duration::from_millis(u64::from(config().interval_ms)));
        }
        SUMMARIES.store(false, Relaxed);
        // A probe may have attached between the last check and the store: whoever wins the swap
        // (us, or an operation) carries on.
        if !armed() || SUMMARIES.swap(true, Relaxed) {
            return;
        }
    }
}

/// Hands every declared map's summary to the summary hook now.
fn send_summaries_now() {
    for report in registry::reports_by_label() {
        summary_hook(&summary_of(&report));
    }
}

fn summary_of(report: &MapReport) -> Summary {
    let d = report.descriptor;
    let s = &report.stats;
    let mut summary = Summary::EMPTY;
    summary.backend = u32::from(d.backend().code());
    summary.map_id = map_id(d.label());
    summary.instances = report.instances as u64;
    summary.forms = [report.forms.rcu, report.forms.sharded].map(|n| n as u32);
    summary.pinned = [report.forms.pinned_rcu, report.forms.pinned_sharded].map(|n| n as u32);
    if matches!(d.backend(), BackendKind::Sharded | BackendKind::Adaptive) {
        summary.shards = u32::try_from(d.shards_or_default()).unwrap_or(u32::MAX);
    }
    summary.max_len = d.max_len_limit().map_or(0, |n| n as u64);
    if let Some(last) = report.last_switch {
        summary.last_switch = [last.from.code(), last.to.code(), last.reason.code()];
        summary.last_switch_age_ms = last.ago().as_millis() as u64;
    }
    for stat in Stat::ALL {
        summary.stats[stat as usize] = s.get(stat);
    }
    copy_name(&mut summary.label, d.label());
    copy_name(&mut summary.bpf_map, d.bpf_map_name().unwrap_or(""));
    summary
}

/// Copies `name` into a NUL-padded field, cutting it (ending in `~`) when it does not fit.
fn copy_name<const N: usize>(field: &mut [u8; N], name: &str) {
    let bytes = name.as_bytes();
    if bytes.len() <= N {
        field[..bytes.len()].copy_from_slice(bytes);
    } else {
        field.copy_from_slice(&bytes[..N]);
        field[N - 1] = b'~';
    }
}

const _: () = assert!(LABEL_LEN > 1 && BPF_NAME_LEN > 1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_padded_or_cut() {
        let mut field = [0u8; 8];
        copy_name(&mut field, "flows");
        assert_eq!(&field, b"flows\0\0\0");
        copy_name(&mut field, "a_much_longer_name");
        assert_eq!(&field, b"a_much_~");
    }

    #[test]
    fn ids_and_fingerprints_are_stable_within_a_run() {
        assert_eq!(map_id("app.routes"), map_id("app.routes"));
        assert_ne!(map_id("app.routes"), map_id("app.sessions"));
        assert_eq!(fingerprint(42), fingerprint(42));
        assert_ne!(fingerprint(42), fingerprint(43));
        assert_ne!(fingerprint(42), 42);
    }

    #[test]
    #[cfg_attr(miri, ignore = "the hooks are inline assembly")]
    fn disarmed_by_default() {
        assert!(!armed());
        // Calling the hooks directly is harmless (they are a nop and a return).
        summary_hook(&Summary::EMPTY);
    }
}
