//! [`Builder`]: what a user sets on the exporter, checked before anything is installed.

use std::net::SocketAddr;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;

use super::error::InstallError;
use super::exporter::{self, Exporter};
use super::recorder;
use super::server::Limits;
use crate::report::{self, label};

/// The default listen address: loopback only. Pass `0.0.0.0:9898` to [`install`] to be scraped
/// from other hosts.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9898";

/// Installs the Prometheus recorder as the global `metrics` recorder and serves `/metrics` on
/// `addr` (`IP:PORT`; port 0 picks a free port, see [`Exporter::local_addr`]), with the
/// [`Builder`]'s defaults otherwise.
///
/// The endpoint serves for the life of the process, also when the returned [`Exporter`] is
/// dropped; [`Exporter::shutdown`] stops it. Nothing is installed when an error is returned: the
/// address is checked and bound first.
///
/// ```no_run
/// let exporter = guarded_map::prometheus::install("127.0.0.1:0")?;
/// println!("metrics on http://{}/metrics", exporter.local_addr());
/// # Ok::<(), guarded_map::prometheus::InstallError>(())
/// ```
pub fn install(addr: &str) -> Result<Exporter, InstallError> {
    Builder::new().listen(addr).install()
}

/// Configures and installs the Prometheus exporter; [`install`] is
/// `Builder::new().listen(addr).install()`.
///
/// ```no_run
/// use std::time::Duration;
/// use guarded_map::prometheus::Builder;
///
/// let exporter = Builder::new()
///     .listen("127.0.0.1:9898")                         // the default: loopback only
///     .global_label("service", "billing")               // on every series
///     .buckets(&[1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0]) // lock waits and publishes, seconds
///     .report_every(Duration::from_secs(10))            // also publish between scrapes
///     .install()?;
/// println!("scrape http://{}/metrics", exporter.local_addr());
/// # Ok::<(), guarded_map::prometheus::InstallError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a Builder does nothing until `install()` is called"]
pub struct Builder {
    listen: String,
    buckets: Vec<f64>,
    labels: Vec<(String, String)>,
    report_every: Option<Duration>,
    limits: Limits,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            listen: DEFAULT_ADDR.to_owned(),
            buckets: report::SECONDS_BUCKETS.to_vec(),
            labels: Vec::new(),
            report_every: None,
            limits: Limits::default(),
        }
    }
}

impl Builder {
    /// The defaults: [`DEFAULT_ADDR`], [`SECONDS_BUCKETS`](crate::report::SECONDS_BUCKETS), no
    /// global labels, publishing at each scrape only, and the connection limits documented on each
    /// setter.
    ///
    /// ```
    /// use guarded_map::prometheus::{Builder, DEFAULT_ADDR};
    ///
    /// let exporter = Builder::new().listen("127.0.0.1:0").install()?;
    /// assert!(exporter.local_addr().ip().is_loopback());
    /// assert!(DEFAULT_ADDR.starts_with("127.0.0.1:"));
    /// # Ok::<(), guarded_map::prometheus::InstallError>(())
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The address to listen on, `IP:PORT` (port 0 picks a free port, see
    /// [`Exporter::local_addr`]). Default [`DEFAULT_ADDR`], loopback only: pass `0.0.0.0:9898` to
    /// be scraped from other hosts.
    ///
    /// ```
    /// use guarded_map::prometheus::Builder;
    ///
    /// let exporter = Builder::new().listen("127.0.0.1:0").install()?;
    /// assert_ne!(exporter.local_addr().port(), 0); // the port the system chose
    /// # Ok::<(), guarded_map::prometheus::InstallError>(())
    /// ```
    pub fn listen(mut self, addr: impl Into<String>) -> Self {
        self.listen = addr.into();
        self
    }

    /// The upper bounds, in seconds, of the buckets of guarded-map's histograms (lock waits, RCU
    /// publishes): finite and strictly increasing.
    ///
    /// ```
    /// use guarded_map::prometheus::{Builder, InstallError};
    ///
    /// let exporter = Builder::new().listen("127.0.0.1:0").buckets(&[1e-6, 1e-4, 1e-2]).install()?;
    /// # drop(exporter);
    /// # Ok::<(), InstallError>(())
    /// ```
    pub fn buckets(mut self, bounds: &[f64]) -> Self {
        self.buckets = bounds.to_vec();
        self
    }

    /// A label put on every series (`service`, `instance`, ...). Its name must be a Prometheus
    /// label name that none of guarded-map's metrics uses ([`label::ALL`]).
    ///
    /// ```
    /// use guarded_map::prometheus::Builder;
    ///
    /// let exporter = Builder::new()
    ///     .listen("127.0.0.1:0")
    ///     .global_label("service", "billing")
    ///     .install()?;
    /// assert!(exporter.render().contains(r#"service="billing""#));
    /// # Ok::<(), guarded_map::prometheus::InstallError>(())
    /// ```
    pub fn global_label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.push((name.into(), value.into()));
        self
    }

    /// Also publish the maps every `interval` from the server's thread (by default they are
    /// published only when scraped, which is all Prometheus needs; an interval keeps
    /// [`Exporter::render`] and other readers of the recorder fresh too).
    ///
    /// ```
    /// use std::time::Duration;
    /// use guarded_map::prometheus::Builder;
    ///
    /// let exporter = Builder::new()
    ///     .listen("127.0.0.1:0")
    ///     .report_every(Duration::from_secs(15))
    ///     .install()?;
    /// # drop(exporter);
    /// # Ok::<(), guarded_map::prometheus::InstallError>(())
    /// ```
    pub fn report_every(mut self, interval: Duration) -> Self {
        self.report_every = Some(interval);
        self
    }

    /// The most connections served at once (default 64). A new connection beyond it closes the
    /// connection that has been idle longest, or, if none is idle, the one that has spent longest
    /// on an unfinished request: a scraper that connects is always served.
    ///
    /// ```
    /// use guarded_map::prometheus::Builder;
    ///
    /// let exporter = Builder::new().listen("127.0.0.1:0").max_connections(8).install()?;
    /// # drop(exporter);
    /// # Ok::<(), guarded_map::prometheus::InstallError>(())
    /// ```
    pub fn max_connections(mut self, max: usize) -> Self {
        self.limits.max_connections = max;
        self
    }

    /// How long a client may take over one request, from its first byte until the request is
    /// complete (default 10 s). Slow senders are disconnected when it runs out.
    ///
    /// ```
    /// use std::time::Duration;
    /// use guarded_map::prometheus::Builder;
    ///
    /// let exporter = Builder::new()
    ///     .listen("127.0.0.1:0")
    ///     .request_timeout(Duration::from_secs(2))
    ///     .install()?;
    /// # drop(exporter);
    /// # Ok::<(), guarded_map::prometheus::InstallError>(())
    /// ```
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.limits.request_timeout = timeout;
        self
    }

    /// How long a connection may go without a byte moved either way before it is closed (default
    /// 90 s, longer than Prometheus's default scrape interval so that keep-alive scrapes reuse
    /// their connection). This also closes connections whose client stopped reading replies.
    ///
    /// ```
    /// use std::time::Duration;
    /// use guarded_map::prometheus::Builder;
    ///
    /// let exporter = Builder::new()
    ///     .listen("127.0.0.1:0")
    ///     .idle_timeout(Duration::from_secs(30))
    ///     .install()?;
    /// # drop(exporter);
    /// # Ok::<(), guarded_map::prometheus::InstallError>(())
    /// ```
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.limits.idle_timeout = timeout;
        self
    }

    /// Installs the recorder as the global `metrics` recorder, describes the metrics, and serves
    /// `GET` and `HEAD /metrics` on the listen address from one background thread, until
    /// [`Exporter::shutdown`] (dropping the [`Exporter`] leaves it serving).
    ///
    /// Nothing is installed when an error is returned: the settings and the address are checked
    /// and the address is bound first.
    ///
    /// ```
    /// use guarded_map::prometheus::{Builder, InstallError};
    ///
    /// let exporter = Builder::new().listen("127.0.0.1:0").install()?;
    /// // A second recorder cannot be installed in the same process: an error, nothing changed.
    /// assert!(Builder::new().listen("127.0.0.1:0").install().is_err());
    /// exporter.shutdown();
    /// # Ok::<(), InstallError>(())
    /// ```
    pub fn install(self) -> Result<Exporter, InstallError> {
        self.check()?;
        let addr: SocketAddr = self.listen.parse().map_err(|_| InstallError::Address {
            addr: self.listen.clone(),
        })?;
        let mut builder = PrometheusBuilder::new().with_recommended_naming(true);
        for (name, value) in &self.labels {
            builder = builder.add_global_label(name, value);
        }
        let recorder = recorder::prepare_with(builder, &self.buckets).build_recorder();
        exporter::start(addr, recorder, self.limits, self.report_every)
    }

    fn check(&self) -> Result<(), InstallError> {
        let bad = |setting, reason: String| Err(InstallError::Setting { setting, reason });
        if self.buckets.is_empty() {
            return bad("buckets", "at least one bucket is needed".into());
        }
        if let Some(b) = self.buckets.iter().find(|b| !b.is_finite()) {
            return bad("buckets", format!("{b} is not a finite bound"));
        }
        if let Some(w) = self.buckets.windows(2).find(|w| w[0] >= w[1]) {
            return bad(
                "buckets",
                format!("bounds must increase strictly ({} then {})", w[0], w[1]),
            );
        }
        for (i, (name, _)) in self.labels.iter().enumerate() {
            if let Some(reason) = label_name_problem(name) {
                return bad("global_label", format!("{name:?} {reason}"));
            }
            if self.labels[..i].iter().any(|(earlier, _)| earlier == name) {
                return bad("global_label", format!("{name:?} is given twice"));
            }
        }
        if self.report_every.is_some_and(|i| i.is_zero()) {
            return bad(
                "report_every",
                "the interval must be greater than zero".into(),
            );
        }
        self.limits.check()
    }
}

/// Why `name` cannot be a global label, if it cannot.
fn label_name_problem(name: &str) -> Option<&'static str> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        Some("is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)")
    } else if name.starts_with("__") {
        Some("is reserved: names starting with __ belong to Prometheus")
    } else if label::ALL.contains(&name) || name == "le" || name == "quantile" {
        Some("is a label of guarded-map's own metrics")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting_error(builder: Builder) -> (&'static str, String) {
        match builder.check() {
            Err(InstallError::Setting { setting, reason }) => (setting, reason),
            other => panic!("expected a setting error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Builder::new().check(), Ok(()));
    }

    #[test]
    fn bad_settings_name_the_setting() {
        assert_eq!(setting_error(Builder::new().buckets(&[])).0, "buckets");
        let (_, reason) = setting_error(Builder::new().buckets(&[0.1, 0.1]));
        assert!(reason.contains("increase strictly"), "{reason}");
        let (_, reason) = setting_error(Builder::new().buckets(&[0.1, f64::INFINITY]));
        assert!(reason.contains("finite"), "{reason}");
        for name in ["", "1x", "a-b", "__x", "map", "le"] {
            let (setting, _) = setting_error(Builder::new().global_label(name, "v"));
            assert_eq!(setting, "global_label", "{name:?}");
        }
        let twice = Builder::new()
            .global_label("service", "a")
            .global_label("service", "b");
        assert!(setting_error(twice).1.contains("twice"));
        let (setting, _) = setting_error(Builder::new().report_every(Duration::ZERO));
        assert_eq!(setting, "report_every");
        let (setting, _) = setting_error(Builder::new().max_connections(0));
        assert_eq!(setting, "max_connections");
        let (setting, _) = setting_error(Builder::new().request_timeout(Duration::ZERO));
        assert_eq!(setting, "request_timeout");
        let (setting, _) = setting_error(Builder::new().idle_timeout(Duration::ZERO));
        assert_eq!(setting, "idle_timeout");
        assert!(
            Builder::new()
                .global_label("service", "billing")
                .global_label("instance", "a:1")
                .check()
                .is_ok()
        );
    }
}
