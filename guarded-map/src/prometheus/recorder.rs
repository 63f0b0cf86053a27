//! The recorder side, for services with their own server or their own `PrometheusBuilder`: our
//! histogram buckets on a builder, installing it with our descriptions, and publishing before a
//! render.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::error::InstallError;
use crate::report::{self, MetricKind};

/// The content type of the Prometheus text format, for a route that serves [`render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Prepares a user's `PrometheusBuilder` for guarded-map's metrics: sets our histogram buckets
/// ([`SECONDS_BUCKETS`](crate::report::SECONDS_BUCKETS), 1 µs to 1 s) on our histograms, so they
/// render as Prometheus histograms rather than summaries. Everything else the builder says is kept.
///
/// After installing the recorder, call [`describe`](crate::describe) (or use
/// [`install_recorder`], which does both), and render with [`render`], which publishes the maps
/// first.
///
/// ```
/// use metrics_exporter_prometheus::PrometheusBuilder;
///
/// let builder = guarded_map::prometheus::prepare(PrometheusBuilder::new());
/// let recorder = builder.build_recorder(); // or .install_recorder()
/// # let _ = recorder;
/// ```
pub fn prepare(builder: PrometheusBuilder) -> PrometheusBuilder {
    prepare_with(builder, &report::SECONDS_BUCKETS)
}

/// [`prepare`] with the given buckets (validated by the caller: not empty).
pub(super) fn prepare_with(mut builder: PrometheusBuilder, buckets: &[f64]) -> PrometheusBuilder {
    for metric in report::METRICS.iter().chain(&report::MIRROR_METRICS) {
        if metric.kind == MetricKind::Histogram {
            builder = builder
                .set_buckets_for_metric(Matcher::Full(metric.name.to_owned()), buckets)
                .expect("the bucket list is not empty");
        }
    }
    builder
}

/// Prepares `builder` ([`prepare`]), installs its recorder as the global `metrics` recorder and
/// describes guarded-map's metrics; returns the handle to render with ([`render`]).
///
/// For a service that serves `/metrics` from its own HTTP server (see also the `axum` feature's
/// [`axum::router`](crate::prometheus::axum::router)):
///
/// ```no_run
/// use metrics_exporter_prometheus::PrometheusBuilder;
///
/// let builder = PrometheusBuilder::new().add_global_label("service", "billing");
/// let handle = guarded_map::prometheus::install_recorder(builder)?;
/// // In the service's `/metrics` handler:
/// let body: String = guarded_map::prometheus::render(&handle);
/// # let _ = body;
/// # Ok::<(), guarded_map::prometheus::InstallError>(())
/// ```
pub fn install_recorder(builder: PrometheusBuilder) -> Result<PrometheusHandle, InstallError> {
    let recorder = prepare(builder).build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|_| InstallError::RecorderInstalled)?;
    report::describe();
    Ok(handle)
}

/// What a scrape returns: publishes every guarded map's statistics
/// ([`report_now`](crate::report_now)), folds histogram samples in, and renders the text format.
/// A scrape therefore never shows statistics older than the scrape itself.
///
/// ```
/// use metrics_exporter_prometheus::PrometheusBuilder;
///
/// let recorder = guarded_map::prometheus::prepare(PrometheusBuilder::new()).build_recorder();
/// let handle = recorder.handle();
/// metrics::with_local_recorder(&recorder, || {
///     let text = guarded_map::prometheus::render(&handle);
///     # let _ = text;
/// });
/// ```
pub fn render(handle: &PrometheusHandle) -> String {
    report::report_now();
    handle.run_upkeep();
    handle.render()
}
