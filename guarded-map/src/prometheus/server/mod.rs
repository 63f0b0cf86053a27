//! The `/metrics` server: hyper (HTTP/1.1 and HTTP/2 without TLS) on a current-thread tokio
//! runtime that the exporter's one thread drives. No thread per connection, and no client can
//! stall another:
//!
//! - every connection is a task; the table of connections ([`connections`]) caps them and, when
//!   full, closes the one idle longest to admit a new one;
//! - each connection has a watchdog ([`tracked`]): a request must be complete within the request
//!   timeout of its first byte, and a connection on which no byte moves for the idle timeout is
//!   closed (idle clients, clients that never read their replies, bodies declared but never sent);
//! - request heads are bounded by hyper's buffer limit (HTTP/1) and header list limit (HTTP/2);
//!   request bodies are never read;
//! - an accept error (out of file descriptors, say) is logged, frees the idlest connection, and
//!   is retried with a backoff: it never ends serving.

mod connections;
mod routes;
mod tracked;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use metrics_exporter_prometheus::PrometheusHandle;
use parking_lot::{Condvar, Mutex};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Notify;

use super::error::InstallError;
use connections::Connections;
use tracked::{Tracked, Watch};

/// The largest request head accepted, in bytes (HTTP/1: hyper's read buffer, whose minimum is
/// 8 KiB; HTTP/2: the header list). A scrape's head is a few hundred bytes.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Concurrent HTTP/2 streams per connection.
const MAX_STREAMS: u32 = 16;
/// The kernel's queue of connections not yet accepted.
const BACKLOG: u32 = 1024;
/// The longest pause between two accepts that fail.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The server's limits (set through [`Builder`](super::Builder)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) max_connections: usize,
    pub(crate) request_timeout: Duration,
    pub(crate) idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 64,
            request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(90),
        }
    }
}

impl Limits {
    pub(super) fn check(&self) -> Result<(), InstallError> {
        let bad = |setting, reason: &str| {
            Err(InstallError::Setting {
                setting,
                reason: reason.to_owned(),
            })
        };
        if self.max_connections == 0 {
            return bad("max_connections", "at least one connection is needed");
        }
        if self.request_timeout.is_zero() {
            return bad("request_timeout", "the timeout must be greater than zero");
        }
        if self.idle_timeout.is_zero() {
            return bad("idle_timeout", "the timeout must be greater than zero");
        }
        Ok(())
    }
}

/// The stop request from [`Exporter::shutdown`](super::Exporter::shutdown), and the server's
/// answer that it stopped.
#[derive(Default)]
pub(super) struct Control {
    stop: AtomicBool,
    wake: Notify,
    stopped: Mutex<bool>,
    stopped_changed: Condvar,
}

impl Control {
    pub(super) fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        // Stores a permit if the server is not waiting right now.
        self.wake.notify_one();
    }

    async fn stop_requested(&self) {
        while !self.stop.load(Ordering::SeqCst) {
            self.wake.notified().await;
        }
    }

    pub(super) fn stopped(&self) {
        *self.stopped.lock() = true;
        self.stopped_changed.notify_all();
    }

    /// Whether the server stopped within `wait`.
    pub(super) fn wait_stopped(&self, wait: Duration) -> bool {
        let mut stopped = self.stopped.lock();
        if !*stopped {
            self.stopped_changed.wait_for(&mut stopped, wait);
        }
        *stopped
    }
}

/// Binds `addr` with a deep accept queue (a burst of connections must not push a scraper's into
/// the kernel's retry timeouts). Call inside the runtime.
pub(super) fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Serves until a stop is requested. Returning drops nothing by itself: the caller drops the
/// runtime, which closes every connection task.
pub(super) async fn serve(
    listener: TcpListener,
    handle: PrometheusHandle,
    limits: Limits,
    control: &Control,
    report_every: Option<Duration>,
) {
    let connections = Arc::new(Connections::new(limits.max_connections));
    let protocols = protocols();
    let mut backoff = Backoff::default();
    let mut report = report_every.map(tokio::time::interval);
    loop {
        tokio::select! {
            () = control.stop_requested() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    backoff.succeeded();
                    let watch = connections.admit(tokio::time::Instant::now());
                    tokio::spawn(connection(
                        stream,
                        watch,
                        Arc::clone(&connections),
                        protocols.clone(),
                        handle.clone(),
                        limits,
                    ));
                }
                Err(e) => {
                    match backoff.failed(&e, &connections) {
                        Retry::Now => {}
                        // Lets the evicted connection's task run and close its socket.
                        Retry::AfterYield => tokio::task::yield_now().await,
                        Retry::After(pause) => tokio::select! {
                            () = control.stop_requested() => return,
                            () = tokio::time::sleep(pause) => {}
                        },
                    }
                }
            },
            _ = tick(&mut report) => crate::report::report_now(),
        }
    }
}

/// The next tick of the optional reporting interval; never, without one.
async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// HTTP/1.1 and HTTP/2 (prior knowledge), with the head limits; the timeouts are the watchdog's.
fn protocols() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .max_buf_size(MAX_HEAD_BYTES)
        .header_read_timeout(None)
        .keep_alive(true);
    builder
        .http2()
        .max_header_list_size(MAX_HEAD_BYTES as u32)
        .max_concurrent_streams(MAX_STREAMS);
    builder
}

/// Serves one connection until it ends, its watchdog fires or it is evicted.
async fn connection(
    stream: TcpStream,
    watch: Arc<Watch>,
    connections: Arc<Connections>,
    protocols: auto::Builder<TokioExecutor>,
    handle: PrometheusHandle,
    limits: Limits,
) {
    // Replies are written whole; without this a keep-alive scrape waits on delayed ACKs.
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(Tracked::new(stream, Arc::clone(&watch)));
    let service = service_fn({
        let watch = Arc::clone(&watch);
        move |request| {
            watch.request_received();
            let handle = handle.clone();
            async move {
                // One reply per turn: a client pipelining thousands of requests takes its turn
                // like every other connection instead of keeping the thread to itself.
                tokio::task::yield_now().await;
                Ok::<_, Infallible>(routes::respond(&request, &handle))
            }
        }
    });
    tokio::select! {
        _ = protocols.serve_connection(io, service) => {}
        () = watch.expired(limits) => {}
        () = watch.evicted() => {}
    }
    connections.remove(&watch);
}

/// When to try accepting again after a failure.
enum Retry {
    /// At once: the peer gave up before it was accepted.
    Now,
    /// Once the connection closed to make room has closed.
    AfterYield,
    /// After a pause: nothing could be closed.
    After(Duration),
}

/// Accept failures: the pause before the next try, and the log (at most one line per
/// [`LOG_EVERY`], so that a flood of connections cannot flood the log too).
#[derive(Default)]
struct Backoff {
    /// Failures since the last accept that succeeded.
    in_a_row: u32,
    /// Failures since the last log line.
    unlogged: u64,
    last_logged: Option<tokio::time::Instant>,
}

/// The least time between two log lines about accept failures.
const LOG_EVERY: Duration = Duration::from_secs(10);

impl Backoff {
    fn succeeded(&mut self) {
        self.in_a_row = 0;
    }

    fn failed(&mut self, e: &io::Error, connections: &Connections) -> Retry {
        use io::ErrorKind::*;
        if matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted) {
            return Retry::Now;
        }
        self.in_a_row = self.in_a_row.saturating_add(1);
        self.unlogged += 1;
        let now = tokio::time::Instant::now();
        if self
            .last_logged
            .is_none_or(|t| now.duration_since(t) >= LOG_EVERY)
        {
            log::warn!(
                "guarded-map: the metrics server cannot accept connections ({e}; {} failures since the \
                 last report, {} connections open); closing the idlest to make room, retrying",
                self.unlogged,
                connections.len()
            );
            self.unlogged = 0;
            self.last_logged = Some(now);
        }
        // Out of file descriptors or memory: make room by closing the idlest connection. Its
        // task runs (and closes its socket) while this one yields.
        if connections.evict_one() {
            return Retry::AfterYield;
        }
        let exp = self.in_a_row.saturating_sub(1).min(10);
        Retry::After((Duration::from_millis(1) * (1 << exp)).min(MAX_BACKOFF))
    }
}
