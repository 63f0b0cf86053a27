//! A Prometheus endpoint for every guarded map (feature `prometheus`).
//!
//! Three ways in, from the most done for you to the least:
//!
//! - [`install`] (or [`Builder`] for the listen address, histogram buckets, global labels and a
//!   reporting interval) puts `metrics-exporter-prometheus`'s recorder in place as the global
//!   `metrics` recorder, describes the metrics, and serves `GET`/`HEAD /metrics` from one
//!   background thread until [`Exporter::shutdown`]. Each scrape first publishes the registry
//!   ([`report_now`](crate::report_now)), so a scrape never shows statistics older than itself and
//!   no reporter thread is needed.
//! - [`install_recorder`] for a service with its own HTTP server: installs a `PrometheusBuilder`
//!   of yours, prepared with our buckets and descriptions; serve [`render`]'s text from your route.
//!   With the feature `axum`, [`axum::router`] is that route, ready to merge.
//! - [`prepare`] for a service that installs its recorder itself: our buckets on your builder;
//!   then call [`describe`](crate::describe) and render with [`render`].
//!
//! ```no_run
//! guarded_map::prometheus::install(guarded_map::prometheus::DEFAULT_ADDR)?; // keeps serving
//! # Ok::<(), guarded_map::prometheus::InstallError>(())
//! ```
//!
//! The server is hyper (HTTP/1.1, and HTTP/2 with prior knowledge) on a small tokio runtime owned
//! by the exporter's thread: no thread per connection, at most
//! [`max_connections`](Builder::max_connections) connections (a new one closes the idlest), request
//! heads of at most 16 KiB, request bodies never read, slow requests and idle connections closed
//! on timeouts, and accept errors (out of file descriptors) retried with a backoff, never the end
//! of serving. One client can neither crash the process nor stall another scrape.

mod builder;
mod error;
mod exporter;
mod recorder;
mod server;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;

pub use builder::{Builder, DEFAULT_ADDR, install};
pub use error::InstallError;
pub use exporter::Exporter;
pub use recorder::{CONTENT_TYPE, install_recorder, prepare, render};
