//! The kernel-side programs of guarded-map's probe (built for `bpfel-unknown-none`):
//!
//! - `summary_hook` / `op_hook`: uprobes on the target's hook functions; each copies the record its
//!   argument points to into the `RECORDS` ring buffer and stamps it with the time (and thread).
//! - `bpf_enter` / `bpf_exit`: the `syscalls:sys_enter_bpf` / `sys_exit_bpf` tracepoints, filtered to
//!   the target process (`TARGET_TGID`, set by the loader); a followed map command is remembered per
//!   thread on entry and written to `RECORDS` as a `Syscall` record on exit, with its latency and result.
//!
//! - `mirror_op` / `count_syscalls` (`mirror.rs`): programs that change BPF maps and write their
//!   change records, for `guarded_map::bpf::Mirror` (its tests, its benchmark, the `flows` example).
//!
//! On any other target this binary is an empty placeholder.
#![cfg_attr(target_arch = "bpf", no_std, no_main)]
#![cfg_attr(target_arch = "bpf", feature(core_intrinsics))]
#![cfg_attr(target_arch = "bpf", allow(internal_features))]

#[cfg(not(target_arch = "bpf"))]
fn main() {}

#[cfg(target_arch = "bpf")]
mod mirror;

#[cfg(target_arch = "bpf")]
mod programs {
    use core::ffi::c_void;
    use core::mem::size_of;

    use aya_ebpf::EbpfContext;
    use aya_ebpf::helpers::generated::bpf_probe_read_user;
    use aya_ebpf::helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns};
    use aya_ebpf::macros::{map, tracepoint, uprobe};
    use aya_ebpf::maps::{HashMap, RingBuf};
    use aya_ebpf::programs::{ProbeContext, TracePointContext};
    use guarded_map_probe_common::{OpSample, RecordKind, Summary, Syscall, cmd};

    /// The process whose `bpf()` calls are followed; set by the loader before it loads the programs.
    #[unsafe(no_mangle)]
    static TARGET_TGID: u32 = 0;

    /// Every record, in order. 4 MiB: over 70 000 samples, several times what the probe lets
    /// accumulate between two reads at the default sampling rate.
    #[map]
    static RECORDS: RingBuf = RingBuf::with_byte_size(4 << 20, 0);

    /// Submit without waking the reader: it reads on its own clock (every 50 ms), so that a busy
    /// target does not wake it once per record (which cost a busy machine a noticeable share of its
    /// CPU).
    const NO_WAKEUP: u64 = 1;

    /// A followed `bpf()` call between its entry and its exit, by thread.
    #[map]
    static IN_FLIGHT: HashMap<u32, Started> = HashMap::with_max_entries(4096, 0);

    #[derive(Clone, Copy)]
    struct Started {
        cmd: u32,
        map_fd: i32,
        uattr: u64,
        start_ns: u64,
    }

    // `sys_enter_bpf`'s fields (see its `format` file): `int cmd` at 16, `union bpf_attr *uattr` at
    // 24; `sys_exit_bpf`'s `long ret` at 16.
    const CMD_OFFSET: usize = 16;
    const UATTR_OFFSET: usize = 24;
    const RET_OFFSET: usize = 16;

    fn target() -> u32 {
        // SAFETY: a plain read of a global the loader wrote before loading; volatile so the
        // compiler does not fold the initial 0 into the code.
        unsafe { core::ptr::read_volatile(&TARGET_TGID) }
    }

    /// Copies the `T` the hook's first argument points to into the ring buffer; `stamp` fills in
    /// what only the kernel side knows.
    #[inline(always)]
    fn copy_record<T: 'static>(ctx: &ProbeContext, stamp: impl FnOnce(&mut T)) {
        let Some(src) = ctx.arg::<*const T>(0) else {
            return;
        };
        let Some(mut entry) = RECORDS.reserve::<T>(0) else {
            return;
        };
        let dst = entry.as_mut_ptr();
        // SAFETY: `dst` is `size_of::<T>()` bytes of ring buffer reserved above; the helper checks
        // the user address.
        let copied = unsafe {
            bpf_probe_read_user(
                dst.cast::<c_void>(),
                size_of::<T>() as u32,
                src.cast::<c_void>(),
            )
        };
        if copied != 0 {
            entry.discard(0);
            return;
        }
        // SAFETY: every byte was written by the copy above, and `T` is plain data.
        stamp(unsafe { &mut *dst });
        entry.submit(NO_WAKEUP);
    }

    /// The target's summary hook: `fn(*const Summary)`.
    #[uprobe]
    pub fn summary_hook(ctx: ProbeContext) -> u32 {
        copy_record::<Summary>(&ctx, |record| {
            record.kind = RecordKind::Summary as u32;
            // SAFETY: a helper without arguments.
            record.time_ns = unsafe { bpf_ktime_get_ns() };
        });
        0
    }

    /// The target's operation hook: `fn(*const OpSample)`.
    #[uprobe]
    pub fn op_hook(ctx: ProbeContext) -> u32 {
        let tid = ctx.pid();
        copy_record::<OpSample>(&ctx, |record| {
            record.kind = RecordKind::Op as u32;
            record.tid = tid;
            // SAFETY: a helper without arguments.
            record.time_ns = unsafe { bpf_ktime_get_ns() };
        });
        0
    }

    /// Reads a `u32` of the caller's `union bpf_attr`.
    fn attr_u32(uattr: u64, offset: usize) -> Option<u32> {
        let mut value = 0u32;
        // SAFETY: the helper checks the user address and writes 4 bytes into `value`.
        let ret = unsafe {
            bpf_probe_read_user(
                (&raw mut value).cast::<c_void>(),
                4,
                (uattr + offset as u64) as *const c_void,
            )
        };
        (ret == 0).then_some(value)
    }

    #[tracepoint]
    pub fn bpf_enter(ctx: TracePointContext) -> u32 {
        let pid_tgid = bpf_get_current_pid_tgid();
        if (pid_tgid >> 32) as u32 != target() {
            return 0;
        }
        // SAFETY: `cmd` and `uattr` are at these offsets of `sys_enter_bpf`'s record.
        let (Ok(command), Ok(uattr)) = (unsafe { ctx.read_at::<u32>(CMD_OFFSET) }, unsafe {
            ctx.read_at::<u64>(UATTR_OFFSET)
        }) else {
            return 0;
        };
        if !cmd::is_followed(command) {
            return 0;
        }
        let map_fd = match cmd::map_fd_offset(command) {
            Some(offset) => attr_u32(uattr, offset).map_or(-1, |fd| fd as i32),
            None => -1,
        };
        let started = Started {
            cmd: command,
            map_fd,
            uattr,
            // SAFETY: a helper without arguments.
            start_ns: unsafe { bpf_ktime_get_ns() },
        };
        let _ = IN_FLIGHT.insert(&(pid_tgid as u32), &started, 0);
        0
    }

    #[tracepoint]
    pub fn bpf_exit(ctx: TracePointContext) -> u32 {
        let pid_tgid = bpf_get_current_pid_tgid();
        if (pid_tgid >> 32) as u32 != target() {
            return 0;
        }
        let tid = pid_tgid as u32;
        // SAFETY: the value is copied out at once; only this thread writes its entry.
        let Some(started) = (unsafe { IN_FLIGHT.get(&tid) }).copied() else {
            return 0;
        };
        let _ = IN_FLIGHT.remove(&tid);
        // SAFETY: `ret` is at this offset of `sys_exit_bpf`'s record.
        let result = unsafe { ctx.read_at::<i64>(RET_OFFSET) }.unwrap_or(-1);
        let map_fd = if started.cmd == cmd::MAP_CREATE {
            if result >= 0 { result as i32 } else { -1 }
        } else {
            started.map_fd
        };
        let count = match cmd::batch_count_offset(started.cmd) {
            Some(offset) => attr_u32(started.uattr, offset).unwrap_or(0),
            None => 1,
        };
        // SAFETY: a helper without arguments.
        let now = unsafe { bpf_ktime_get_ns() };
        let record = Syscall {
            kind: RecordKind::Syscall as u32,
            cmd: started.cmd,
            tid,
            map_fd,
            result,
            count,
            reserved: 0,
            start_ns: started.start_ns,
            latency_ns: now - started.start_ns,
        };
        let _ = RECORDS.output::<Syscall>(&record, NO_WAKEUP);
        0
    }

    #[panic_handler]
    fn panic(_info: &core::panic::PanicInfo) -> ! {
        loop {}
    }

    #[unsafe(link_section = "license")]
    #[unsafe(no_mangle)]
    static LICENSE: [u8; 4] = *b"GPL\0";
}
