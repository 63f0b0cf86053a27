//! A connection's watchdog: [`Tracked`] notes every byte that moves on the socket in the
//! connection's [`Watch`], which the connection's task consults for its deadlines and the table of
//! connections for whom to close first.
//!
//! hyper has no idle timeout, and its header timeout does not cover HTTP/2 or the protocol
//! detection of hyper-util's auto server, so the one watchdog here covers every phase alike.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::Limits;

/// No request in progress (the value of `receiving_since`).
const NONE: u64 = u64::MAX;

/// What the watchdog and the table of connections know of one connection. Times are microseconds
/// since the table's epoch. Only the connection's own task writes them (the runtime has one
/// thread); `Relaxed` suffices.
#[derive(Debug)]
pub(super) struct Watch {
    epoch: Instant,
    /// The last time a byte moved either way (accepting counts).
    last_progress: AtomicU64,
    /// When the first byte of the request now being received arrived; [`NONE`] between requests.
    receiving_since: AtomicU64,
    evict: Notify,
}

impl Watch {
    pub(super) fn new(epoch: Instant, now: Instant) -> Self {
        Watch {
            epoch,
            last_progress: AtomicU64::new(micros(epoch, now)),
            receiving_since: AtomicU64::new(NONE),
            evict: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        micros(self.epoch, Instant::now())
    }

    fn bytes_read(&self) {
        let now = self.now();
        self.last_progress.store(now, Relaxed);
        if self.receiving_since.load(Relaxed) == NONE {
            self.receiving_since.store(now, Relaxed);
        }
    }

    fn bytes_written(&self) {
        self.last_progress.store(self.now(), Relaxed);
    }

    /// A request's head is complete and about to be answered.
    pub(super) fn request_received(&self) {
        self.receiving_since.store(NONE, Relaxed);
    }

    /// Eviction order, smallest first: idle connections before those receiving a request, each by
    /// how long they have been so.
    pub(super) fn eviction_rank(&self) -> (bool, u64) {
        match self.receiving_since.load(Relaxed) {
            NONE => (false, self.last_progress.load(Relaxed)),
            since => (true, since),
        }
    }

    /// Asks the connection's task to close the connection.
    pub(super) fn evict(&self) {
        // Stores a permit if the task is not waiting right now.
        self.evict.notify_one();
    }

    pub(super) async fn evicted(&self) {
        self.evict.notified().await;
    }

    /// Completes when the connection has been idle for `idle_timeout`, or a request has been
    /// arriving for `request_timeout`.
    pub(super) async fn expired(&self, limits: Limits) {
        let idle = as_micros(limits.idle_timeout);
        let request = as_micros(limits.request_timeout);
        loop {
            let mut deadline = self.last_progress.load(Relaxed).saturating_add(idle);
            let since = self.receiving_since.load(Relaxed);
            if since != NONE {
                deadline = deadline.min(since.saturating_add(request));
            }
            if self.now() >= deadline {
                return;
            }
            tokio::time::sleep_until(self.epoch + Duration::from_micros(deadline)).await;
        }
    }
}

fn micros(epoch: Instant, t: Instant) -> u64 {
    as_micros(t.saturating_duration_since(epoch))
}

fn as_micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2)
}

/// A socket whose reads and writes are noted in its [`Watch`].
pub(super) struct Tracked<S> {
    io: S,
    watch: Arc<Watch>,
}

impl<S> Tracked<S> {
    pub(super) fn new(io: S, watch: Arc<Watch>) -> Self {
        Tracked { io, watch }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.watch.bytes_read();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        this.note_written(&polled);
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.note_written(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl<S> Tracked<S> {
    fn note_written(&self, polled: &Poll<io::Result<usize>>) {
        if matches!(polled, Poll::Ready(Ok(n)) if *n > 0) {
            self.watch.bytes_written();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_connections: 1,
            request_timeout: Duration::from_millis(100),
            idle_timeout: Duration::from_millis(300),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_expires_after_the_idle_timeout() {
        let start = Instant::now();
        let watch = Watch::new(start, start);
        watch.expired(limits()).await;
        assert_eq!(start.elapsed(), Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_moving_keep_it_open_but_a_request_must_complete_in_time() {
        let start = Instant::now();
        let watch = Arc::new(Watch::new(start, start));
        // Written bytes (a reply being read) count as progress; no request is in progress.
        tokio::time::advance(Duration::from_millis(250)).await;
        watch.bytes_written();
        tokio::time::advance(Duration::from_millis(250)).await;
        watch.bytes_written();
        // A request starts arriving at 500 ms and trickles: the request timeout ends it at 600.
        tokio::time::advance(Duration::from_millis(1)).await;
        watch.bytes_read();
        assert!(watch.eviction_rank().0, "receiving ranks after idle");
        let trickle = {
            let watch = Arc::clone(&watch);
            tokio::spawn(async move {
                for _ in 0..50 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    watch.bytes_read();
                }
            })
        };
        watch.expired(limits()).await;
        assert_eq!(start.elapsed(), Duration::from_millis(601));
        trickle.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_completed_request_restarts_the_idle_clock() {
        let start = Instant::now();
        let watch = Watch::new(start, start);
        tokio::time::advance(Duration::from_millis(50)).await;
        watch.bytes_read();
        watch.request_received();
        assert_eq!(watch.eviction_rank(), (false, 50_000));
        watch.expired(limits()).await;
        assert_eq!(start.elapsed(), Duration::from_millis(350));
    }
}
