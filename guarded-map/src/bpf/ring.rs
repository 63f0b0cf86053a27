//! A BPF ring buffer (`BPF_MAP_TYPE_RINGBUF`) read from user space: the kernel's producer page and
//! data area mapped read-only, the consumer page read-write, as libbpf's `ring_buffer__poll` does.
//!
//! Written by hand rather than with aya: `guarded-map` does not depend on the eBPF loader
//! (ARCHITECTURE.md), and reading a ring is one loop over mapped memory.
//!
//! All of this file's `unsafe` is here: the mapping, and [`Ring::drain`]'s reads of it. `drain`
//! works on any memory laid out as the kernel lays out a ring, which is how Miri tests it.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use super::info::{self, MapInfo, RINGBUF};

/// A record the kernel has reserved but not yet submitted or discarded.
const BUSY: u32 = 1 << 31;
/// A record the kernel discarded: skipped.
const DISCARD: u32 = 1 << 30;
/// Bytes of a record's header (its length word and the kernel's page offset).
const HEADER: u64 = 8;

/// An open BPF ring buffer map, read by this process (one reader per ring: the consumer position
/// lives in the map, shared by every process that reads it).
pub struct ChangeRing {
    ring: Ring,
    // Dropped (unmapped) before the fd is closed.
    _producer: Mapping,
    _consumer: Mapping,
    info: MapInfo,
    fd: OwnedFd,
}

impl std::fmt::Debug for ChangeRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeRing")
            .field("info", &self.info)
            .finish()
    }
}

// SAFETY: the mappings are owned by this value and unmapped only when it drops; the positions are
// atomics and the data area is only read; `read` (which moves the consumer position) takes
// `&mut self`.
unsafe impl Send for ChangeRing {}
// SAFETY: through `&self` only atomic loads of the positions happen.
unsafe impl Sync for ChangeRing {}

impl ChangeRing {
    /// Maps the ring buffer behind `fd` (e.g. from a loader such as aya). An error if it is not a
    /// ring buffer map.
    pub fn from_fd(fd: OwnedFd) -> io::Result<Self> {
        let info = MapInfo::of(&fd)?;
        if info.map_type != RINGBUF {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "BPF map {:?} (id {}) is a {} map, not a ring buffer",
                    info.name,
                    info.id,
                    info.type_name()
                ),
            ));
        }
        let size = info.max_entries as usize;
        // SAFETY: plain system call.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
            .map_err(|_| io::Error::other("no page size"))?;
        let consumer = Mapping::new(&fd, page, 0, libc::PROT_READ | libc::PROT_WRITE)?;
        // The producer page, then the data area twice over, so that a record that wraps around
        // the end reads as one slice.
        let producer = Mapping::new(&fd, page + 2 * size, page as libc::off_t, libc::PROT_READ)?;
        let ring = Ring {
            consumer: consumer.ptr.as_ptr().cast(),
            producer: producer.ptr.as_ptr().cast(),
            // SAFETY: the data area starts one page into the producer mapping.
            data: unsafe { producer.ptr.as_ptr().add(page) },
            mask: size as u64 - 1,
        };
        Ok(ChangeRing {
            ring,
            _producer: producer,
            _consumer: consumer,
            info,
            fd,
        })
    }

    /// Maps the ring buffer the kernel knows by `id`.
    pub fn open_by_id(id: u32) -> io::Result<Self> {
        Self::from_fd(info::open_id(id)?.0)
    }

    /// Maps the one ring buffer named `name`.
    pub fn open_by_name(name: &str) -> io::Result<Self> {
        Self::from_fd(info::open_name(name)?.0)
    }

    /// What the kernel said of the map.
    pub fn info(&self) -> &MapInfo {
        &self.info
    }

    /// Bytes the kernel has reserved in the ring since it was created (its producer position).
    pub fn produced(&self) -> u64 {
        self.ring.position(self.ring.producer)
    }

    /// Bytes this reader (or an earlier one) has consumed.
    pub fn consumed(&self) -> u64 {
        self.ring.position(self.ring.consumer)
    }

    /// Waits up to `timeout` for the kernel to wake readers (a record submitted without
    /// `BPF_RB_NO_WAKEUP`); `true` if it did, or if records were already waiting.
    pub fn wait(&self, timeout: Duration) -> io::Result<bool> {
        if self.produced() != self.consumed() {
            return Ok(true);
        }
        let mut pollfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid `pollfd`.
        match unsafe { libc::poll(&raw mut pollfd, 1, millis) } {
            -1 => {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    Ok(false)
                } else {
                    Err(err)
                }
            }
            0 => Ok(false),
            _ => Ok(true),
        }
    }

    /// Hands the records submitted so far to `f`, in the order the kernel reserved them, and
    /// frees their room in the ring; stops at the first record still being written, and at the
    /// records submitted after the call began. Returns how many records `f` saw.
    pub fn read(&mut self, f: impl FnMut(&[u8])) -> usize {
        self.read_up_to(usize::MAX, f)
    }

    /// [`read`](Self::read), stopping after `max` records (a caller that must answer in bounded
    /// time reads in slices).
    pub fn read_up_to(&mut self, max: usize, mut f: impl FnMut(&[u8])) -> usize {
        // SAFETY: `ring` points into this value's live mappings, laid out by the kernel.
        unsafe { self.ring.drain(max, &mut f) }
    }
}

/// Where a reader finds a ring's positions and data.
struct Ring {
    consumer: *const AtomicU64,
    producer: *const AtomicU64,
    /// The data area, mapped twice in a row.
    data: *const u8,
    /// Bytes of the data area, less one (a power of two).
    mask: u64,
}

impl Ring {
    fn position(&self, at: *const AtomicU64) -> u64 {
        // SAFETY: `at` is one of this ring's two position words, live while the ring is.
        unsafe { &*at }.load(Ordering::Acquire)
    }

    /// Reads and consumes the records submitted before the call (libbpf's
    /// `ringbuf_process_ring`, one pass: a producer faster than `f` cannot keep it reading).
    ///
    /// # Safety
    ///
    /// `consumer` and `producer` point to live, 8-aligned position words; `data` to `2 * (mask +
    /// 1)` readable bytes, the second half a copy of the first; the records between the two
    /// positions are laid out as the kernel writes them (an 8-byte header whose first word is the
    /// record's length and flags, at 8-aligned offsets). Only this reader moves `consumer`.
    unsafe fn drain(&self, max: usize, f: &mut dyn FnMut(&[u8])) -> usize {
        // SAFETY: the caller's contract.
        let consumer = unsafe { &*self.consumer };
        let mut at = consumer.load(Ordering::Acquire);
        let end = self.position(self.producer);
        let mut seen = 0;
        while at < end && seen < max {
            // SAFETY: `at & mask` is inside the first copy of the data area.
            let header = unsafe { self.data.add((at & self.mask) as usize) };
            // SAFETY: an 8-aligned header in the mapping; its first word is written by the
            // kernel with a release store.
            let len = unsafe { &*header.cast::<AtomicU32>() }.load(Ordering::Acquire);
            if len & BUSY != 0 {
                break;
            }
            let bytes = len & !(BUSY | DISCARD);
            if len & DISCARD == 0 {
                // SAFETY: a submitted record of `bytes` bytes follows its header; with the data
                // area mapped twice it is contiguous even where it wraps.
                let record = unsafe {
                    std::slice::from_raw_parts(header.add(HEADER as usize), bytes as usize)
                };
                f(record);
                seen += 1;
            }
            at += (u64::from(bytes) + HEADER).next_multiple_of(8);
            consumer.store(at, Ordering::Release);
        }
        seen
    }
}

/// A shared mapping of a BPF map's memory, unmapped when dropped.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(fd: &OwnedFd, len: usize, offset: libc::off_t, prot: libc::c_int) -> io::Result<Self> {
        // SAFETY: a new shared mapping of the map's memory, at an address the kernel picks.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Mapping { ptr, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: this mapping, made by `new`, is no longer used.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ring laid out in ordinary memory as the kernel lays one out.
    struct FakeRing {
        consumer: Box<AtomicU64>,
        producer: Box<AtomicU64>,
        data: Vec<u64>,
        size: usize,
    }

    impl FakeRing {
        fn new(size: usize) -> Self {
            FakeRing {
                consumer: Box::new(AtomicU64::new(0)),
                producer: Box::new(AtomicU64::new(0)),
                data: vec![0; 2 * size / 8],
                size,
            }
        }

        /// Writes a record at the producer position (both copies), with its header's flags.
        fn push(&mut self, payload: &[u8], flags: u32) {
            let at = self.producer.load(Ordering::Relaxed);
            let mut record = Vec::new();
            record.extend_from_slice(&(payload.len() as u32 | flags).to_ne_bytes());
            record.extend_from_slice(&0u32.to_ne_bytes());
            record.extend_from_slice(payload);
            record.resize(record.len().next_multiple_of(8), 0);
            let size = self.size;
            let bytes = self.bytes();
            for (i, b) in record.iter().enumerate() {
                let pos = (at as usize + i) % size;
                bytes[pos] = *b;
                bytes[pos + size] = *b;
            }
            self.producer
                .store(at + record.len() as u64, Ordering::Release);
        }

        fn set_flags(&mut self, at: u64, len: u32) {
            let size = self.size;
            let pos = (at as usize) % size;
            let bytes = self.bytes();
            bytes[pos..pos + 4].copy_from_slice(&len.to_ne_bytes());
            bytes[pos + size..pos + size + 4].copy_from_slice(&len.to_ne_bytes());
        }

        fn bytes(&mut self) -> &mut [u8] {
            // SAFETY: the `u64`s' bytes, for as long as the borrow of `data`.
            unsafe {
                std::slice::from_raw_parts_mut(self.data.as_mut_ptr().cast(), self.data.len() * 8)
            }
        }

        fn drain(&mut self) -> Vec<Vec<u8>> {
            let ring = Ring {
                consumer: &raw const *self.consumer,
                producer: &raw const *self.producer,
                data: self.data.as_ptr().cast(),
                mask: self.size as u64 - 1,
            };
            let mut out = Vec::new();
            // SAFETY: the fake ring's memory is laid out as `drain` requires.
            unsafe { ring.drain(usize::MAX, &mut |r: &[u8]| out.push(r.to_vec())) };
            out
        }
    }

    #[test]
    fn records_come_in_order_skipping_discarded_and_stopping_at_busy() {
        let mut ring = FakeRing::new(64);
        ring.push(b"one", 0);
        ring.push(b"skipped", DISCARD);
        ring.push(b"three", 0);
        let busy_at = ring.producer.load(Ordering::Relaxed);
        ring.push(b"four", BUSY);
        assert_eq!(ring.drain(), vec![b"one".to_vec(), b"three".to_vec()]);
        assert_eq!(ring.consumer.load(Ordering::Relaxed), busy_at);
        // Submitted: the reader goes on from where it stopped.
        ring.set_flags(busy_at, 4);
        assert_eq!(ring.drain(), vec![b"four".to_vec()]);
        assert!(ring.drain().is_empty());
    }

    #[test]
    fn a_bounded_read_leaves_the_rest_for_the_next() {
        let mut ring = FakeRing::new(128);
        for i in 0..5u8 {
            ring.push(&[i; 3], 0);
        }
        let ring_view = Ring {
            consumer: &raw const *ring.consumer,
            producer: &raw const *ring.producer,
            data: ring.data.as_ptr().cast(),
            mask: 127,
        };
        let mut first = Vec::new();
        // SAFETY: the fake ring's memory is laid out as `drain` requires.
        unsafe { ring_view.drain(2, &mut |r: &[u8]| first.push(r[0])) };
        assert_eq!(first, [0, 1]);
        assert_eq!(ring.drain(), vec![vec![2; 3], vec![3; 3], vec![4; 3]]);
    }

    #[test]
    fn a_record_that_wraps_reads_whole() {
        let mut ring = FakeRing::new(64);
        for round in 0..20u8 {
            let payload: Vec<u8> = (0..13).map(|i| i + round).collect();
            ring.push(&payload, 0);
            assert_eq!(ring.drain(), vec![payload]);
        }
        assert!(ring.consumer.load(Ordering::Relaxed) > 64);
    }
}
