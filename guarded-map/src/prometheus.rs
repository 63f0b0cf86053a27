//! A Prometheus endpoint for every guarded map (feature `prometheus`).
//!
//! [`install`] puts `metrics-exporter-prometheus`'s recorder in place as the global `metrics`
//! recorder (recommended naming, histogram buckets from 1 µs to 1 s), describes the metrics, and
//! serves `GET /metrics` on the given address from one background thread. Each scrape first
//! publishes the registry ([`report_now`](crate::report_now)), so a scrape never shows statistics
//! older than the scrape itself and no reporter thread is needed.
//!
//! The exporter crate's own listener would bring tokio and hyper and offers no hook before a
//! scrape; `tiny_http` serves the one route on a plain thread.
//!
//! ```no_run
//! let exporter = guarded_map::prometheus::install(guarded_map::prometheus::DEFAULT_ADDR)?;
//! println!("metrics on http://{}/metrics", exporter.local_addr());
//! # Ok::<(), guarded_map::prometheus::InstallError>(())
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tiny_http::{Header, Method, Request, Response, Server};

use crate::report::{self, MetricKind};

/// The default listen address: loopback only. Pass `0.0.0.0:9898` to [`install`] to be scraped
/// from other hosts.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9898";

/// The content type of the Prometheus text format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Installs the Prometheus recorder as the global `metrics` recorder and serves `/metrics` on
/// `addr` (`IP:PORT`; port 0 picks a free port, see [`Exporter::local_addr`]).
///
/// Nothing is installed when an error is returned: the address is checked and bound first.
pub fn install(addr: &str) -> Result<Exporter, InstallError> {
    let wanted: SocketAddr = addr.parse().map_err(|_| InstallError::Address {
        addr: addr.to_owned(),
    })?;
    let server = Server::http(wanted).map_err(|e| InstallError::Bind {
        addr: wanted,
        reason: e.to_string(),
    })?;
    let local_addr = server
        .server_addr()
        .to_ip()
        .expect("bound to an IP address");
    let mut builder = PrometheusBuilder::new().with_recommended_naming(true);
    for metric in report::METRICS {
        if metric.kind == MetricKind::Histogram {
            builder = builder
                .set_buckets_for_metric(
                    Matcher::Full(metric.name.to_owned()),
                    &report::SECONDS_BUCKETS,
                )
                .expect("the bucket list is not empty");
        }
    }
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|_| InstallError::RecorderInstalled)?;
    report::describe();
    let server = Arc::new(server);
    let thread = thread::Builder::new()
        .name("guarded-map-prometheus".into())
        .spawn({
            let (server, handle) = (Arc::clone(&server), handle.clone());
            move || serve(&server, &handle)
        })
        .map_err(|e| InstallError::Bind {
            addr: local_addr,
            reason: format!("cannot start the server thread: {e}"),
        })?;
    Ok(Exporter {
        local_addr,
        handle,
        server,
        thread: Some(thread),
    })
}

/// A running Prometheus endpoint. Dropping it (or [`shutdown`](Self::shutdown)) stops serving; the
/// recorder stays installed, as a global recorder cannot be removed.
pub struct Exporter {
    local_addr: SocketAddr,
    handle: PrometheusHandle,
    server: Arc<Server>,
    thread: Option<JoinHandle<()>>,
}

impl Exporter {
    /// The address the endpoint listens on (with the port chosen, if 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// What a scrape would return now.
    pub fn render(&self) -> String {
        render(&self.handle)
    }

    /// Stops serving and waits for the server thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for Exporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exporter")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

/// Publishes the registry, folds histogram samples in, and renders the text format.
fn render(handle: &PrometheusHandle) -> String {
    report::report_now();
    handle.run_upkeep();
    handle.render()
}

fn serve(server: &Server, handle: &PrometheusHandle) {
    for request in server.incoming_requests() {
        respond(request, handle);
    }
}

fn respond(request: Request, handle: &PrometheusHandle) {
    let path = request.url().split('?').next().unwrap_or("");
    let response = match (request.method(), path) {
        (Method::Get, "/metrics") => Response::from_string(render(handle))
            .with_header(Header::from_bytes("Content-Type", CONTENT_TYPE).expect("a valid header")),
        (Method::Get, "/") => Response::from_string("guarded-map: metrics at /metrics\n"),
        (Method::Get, _) => Response::from_string("not found\n").with_status_code(404),
        _ => Response::from_string("method not allowed\n").with_status_code(405),
    };
    // The scraper may have gone away; nothing to do about it here.
    let _ = request.respond(response);
}

/// Why [`install`] failed. Nothing was installed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InstallError {
    /// The address is not `IP:PORT`.
    Address {
        /// The address as given.
        addr: String,
    },
    /// The address could not be bound (in use, not local, not permitted).
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the operating system said.
        reason: String,
    },
    /// A global `metrics` recorder is installed already (the exporter was installed before, or
    /// another one was).
    RecorderInstalled,
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstallError::Address { addr } => write!(
                f,
                "invalid listen address {addr:?}: expected IP:PORT, such as {DEFAULT_ADDR}"
            ),
            InstallError::Bind { addr, reason } => write!(f, "cannot listen on {addr}: {reason}"),
            InstallError::RecorderInstalled => {
                f.write_str("a global metrics recorder is already installed")
            }
        }
    }
}

impl std::error::Error for InstallError {}
