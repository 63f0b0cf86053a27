//! A ready `/metrics` route for an [axum](https://docs.rs/axum) service (feature `axum`).
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use metrics_exporter_prometheus::PrometheusBuilder;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let handle = guarded_map::prometheus::install_recorder(PrometheusBuilder::new())?;
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .merge(guarded_map::prometheus::axum::router(handle));
//! // axum::serve(listener, app).await?;
//! # let _ = app;
//! # Ok(())
//! # }
//! ```

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

use super::recorder::{CONTENT_TYPE as METRICS_TYPE, render};

/// A router with `GET /metrics` (and `HEAD`), which publishes every guarded map and renders the
/// recorder behind `handle` (see [`install_recorder`](super::install_recorder)). Merge it into
/// the service's router, whatever that router's state.
///
/// ```
/// use axum::Router;
/// use metrics_exporter_prometheus::PrometheusBuilder;
///
/// let handle = guarded_map::prometheus::install_recorder(PrometheusBuilder::new())?;
/// let app: Router = Router::new().merge(guarded_map::prometheus::axum::router(handle));
/// # let _ = app;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn router<S>(handle: PrometheusHandle) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new().route("/metrics", get(move || metrics(handle.clone())))
}

/// The handler behind [`router`], to mount elsewhere: `get(move || metrics(handle.clone()))`.
pub async fn metrics(handle: PrometheusHandle) -> impl IntoResponse {
    ([(CONTENT_TYPE, METRICS_TYPE)], render(&handle))
}
