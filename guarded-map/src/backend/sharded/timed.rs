//! Taking a shard lock with the wait timed, only when the lock was not free: the uncontended path
//! reads no clock.

use super::lock::{ReadGuard, ShardLock, WriteGuard};
use crate::backend::Stopwatch;
use crate::reentry;
use crate::stats::Recorder;

/// Read-locks `lock` (`COUNTED`: see [`ShardLock::try_read`]), timing the wait only when the lock
/// was not free. The recorder is made only then: on the fast path, finding it (thread-local loads)
/// in front of the lock's locked instruction costs registers the lookup needs (spilled to the
/// stack: stores the locked instruction then waits for).
///
/// `map` is the map's address (see `reentry`): a read nested in another read of the same map on
/// this thread enters past a waiting writer, which may be waiting for the outer read.
#[inline(always)]
pub(super) fn read_timed<'a, 'r, T, const COUNTED: bool>(
    lock: &'a ShardLock<T>,
    map: *const (),
    rec: impl FnOnce() -> Recorder<'r>,
) -> ReadGuard<'a, T, COUNTED> {
    match lock.try_read() {
        Some(guard) => guard,
        None => read_slow(lock, map, rec()),
    }
}

#[cold]
#[inline(never)]
fn read_slow<'a, T, const COUNTED: bool>(
    lock: &'a ShardLock<T>,
    map: *const (),
    rec: Recorder<'_>,
) -> ReadGuard<'a, T, COUNTED> {
    let watch = Stopwatch::start(rec);
    let guard = if reentry::reading(map) {
        lock.read_nested()
    } else {
        lock.read()
    };
    rec.contended(watch.elapsed());
    guard
}

/// Write-locks `lock`, timing the wait only when the lock was not free.
#[inline]
pub(super) fn write_timed<'a, T>(lock: &'a ShardLock<T>, rec: Recorder<'_>) -> WriteGuard<'a, T> {
    match lock.try_write() {
        Some(guard) => guard,
        None => write_slow(lock, rec),
    }
}

#[cold]
fn write_slow<'a, T>(lock: &'a ShardLock<T>, rec: Recorder<'_>) -> WriteGuard<'a, T> {
    let watch = Stopwatch::start(rec);
    let guard = lock.write();
    rec.contended(watch.elapsed());
    guard
}
