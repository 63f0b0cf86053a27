//! Asymmetric fences: a store-then-load on a frequent path (a reader marks itself, then loads what
//! it reads) meets a store-then-load on a rare one (a writer unlinks or switches, then reads every
//! mark). Both need a full fence between their store and their load. On Linux the frequent side's
//! is a compiler fence only and the rare side's is `membarrier(PRIVATE_EXPEDITED)`, which runs a
//! full fence on every core that runs a thread of the process (liburcu's "memb" flavour); where
//! `membarrier` is missing, and under loom and Miri, both sides are full fences.
//!
//! Used by the `Rcu` grace periods (`trie/grace.rs`) and the adaptive backend's switch gate.

use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::compiler_fence;

use crate::sync::fence;

/// Whether `membarrier(PRIVATE_EXPEDITED)` is registered for this process, so that readers may
/// use a compiler fence only.
static EXPEDITED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Registers the process for expedited `membarrier` once (when the first map is made, so before
/// any reader reads the flag as set).
pub(crate) fn register() {
    #[cfg(all(target_os = "linux", not(miri), not(guarded_map_loom)))]
    {
        static REGISTERED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
        REGISTERED.get_or_init(|| {
            // SAFETY: `membarrier` takes two integers and touches no memory of ours.
            let registered = unsafe {
                libc::syscall(
                    libc::SYS_membarrier,
                    libc::MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
                    0,
                    0,
                )
            } == 0;
            EXPEDITED.store(registered, SeqCst);
        });
    }
}

/// Whether the writers' fences are `membarrier`s, so that a reader's is a compiler fence only.
#[inline(always)]
pub(crate) fn expedited() -> bool {
    EXPEDITED.load(Relaxed)
}

/// The frequent side's fence: between a reader's store of its mark and its load of what the mark
/// protects.
#[inline(always)]
pub(crate) fn reader_fence() {
    if expedited() {
        // The writer's `membarrier` supplies the hardware fence on this core when it is needed.
        compiler_fence(SeqCst);
    } else {
        fence(SeqCst);
    }
}

/// The rare side's fence, before it reads the marks: a full fence on every core that runs a thread
/// of the process.
pub(crate) fn writer_fence() {
    #[cfg(all(target_os = "linux", not(miri), not(guarded_map_loom)))]
    if EXPEDITED.load(Relaxed) {
        // SAFETY: as in `expedited`.
        let done = unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                libc::MEMBARRIER_CMD_PRIVATE_EXPEDITED,
                0,
                0,
            )
        };
        // Registered, it cannot fail (the kernel's documented errors are for unregistered or
        // unknown commands).
        assert_eq!(done, 0, "membarrier after registration");
        return;
    }
    fence(SeqCst);
}
