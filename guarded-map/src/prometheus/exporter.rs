//! [`Exporter`]: the handle of a running endpoint, and starting one.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusHandle, PrometheusRecorder};

use super::error::InstallError;
use super::recorder::render;
use super::server::{self, Control, Limits};
use crate::report;

/// How long [`Exporter::shutdown`] waits for the server's thread before leaving it behind.
const SHUTDOWN_WAIT: Duration = Duration::from_millis(900);

/// A running Prometheus endpoint.
///
/// It serves for the life of the process: dropping the `Exporter` leaves it serving, so
/// `install(addr)?;` as a statement is enough. [`shutdown`](Self::shutdown) stops it. The recorder
/// stays installed either way, as a global recorder cannot be removed.
pub struct Exporter {
    local_addr: SocketAddr,
    handle: PrometheusHandle,
    control: Arc<Control>,
    thread: JoinHandle<()>,
}

impl Exporter {
    /// The address the endpoint listens on (with the port chosen, if 0 was asked for).
    ///
    /// ```
    /// let exporter = guarded_map::prometheus::install("127.0.0.1:0")?;
    /// println!("scrape http://{}/metrics", exporter.local_addr());
    /// # Ok::<(), guarded_map::prometheus::InstallError>(())
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// What a scrape would return now (publishes the maps first, like a scrape).
    ///
    /// ```
    /// use guarded_map::{map_spec, GuardedMap};
    /// map_spec!(Jobs: HashMap<u32, u32>, sharded, name = "jobs");
    ///
    /// let exporter = guarded_map::prometheus::install("127.0.0.1:0")?;
    /// let jobs: GuardedMap<u32, u32, Jobs> = GuardedMap::new();
    /// jobs.insert(1, 1);
    /// assert!(exporter.render().contains(r#"guarded_map_entries{map="jobs"} 1"#));
    /// # Ok::<(), guarded_map::prometheus::InstallError>(())
    /// ```
    pub fn render(&self) -> String {
        render(&self.handle)
    }

    /// The recorder's handle, to render from elsewhere too.
    ///
    /// ```
    /// let exporter = guarded_map::prometheus::install("127.0.0.1:0")?;
    /// exporter.render(); // publishes the maps
    /// // Renders the recorder as last published, from another thread or server:
    /// let handle = exporter.handle().clone();
    /// assert!(handle.render().contains("# HELP guarded_map_entries"));
    /// # Ok::<(), guarded_map::prometheus::InstallError>(())
    /// ```
    pub fn handle(&self) -> &PrometheusHandle {
        &self.handle
    }

    /// Stops serving: the listener and every connection are closed, whatever the clients are
    /// doing. Returns within a second; the server's thread is waited for in that time (and left to
    /// finish on its own in the unlikely case it has not).
    ///
    /// ```
    /// let exporter = guarded_map::prometheus::install("127.0.0.1:0")?;
    /// let addr = exporter.local_addr();
    /// exporter.shutdown();
    /// assert!(std::net::TcpStream::connect(addr).is_err());
    /// # Ok::<(), guarded_map::prometheus::InstallError>(())
    /// ```
    pub fn shutdown(self) {
        self.control.request_stop();
        if self.control.wait_stopped(SHUTDOWN_WAIT) {
            // Its last step was to say so: joining is immediate.
            let _ = self.thread.join();
        } else {
            log::warn!(
                "guarded-map: the metrics server on {} did not stop within {SHUTDOWN_WAIT:?}; \
                 leaving its thread behind",
                self.local_addr
            );
        }
    }
}

impl fmt::Debug for Exporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exporter")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

/// Binds `addr`, starts the server's thread, then installs `recorder`; on any error nothing is
/// left installed or running.
pub(super) fn start(
    addr: SocketAddr,
    recorder: PrometheusRecorder,
    limits: Limits,
    report_every: Option<Duration>,
) -> Result<Exporter, InstallError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| InstallError::Start {
            reason: e.to_string(),
        })?;
    let listener = {
        let _inside = runtime.enter();
        server::bind(addr).map_err(|e| InstallError::Bind {
            addr,
            reason: e.to_string(),
        })?
    };
    let local_addr = listener.local_addr().map_err(|e| InstallError::Bind {
        addr,
        reason: e.to_string(),
    })?;
    let handle = recorder.handle();
    let control = Arc::new(Control::default());
    // The thread waits for the recorder to be installed, so that a refused recorder leaves no
    // server behind.
    let (go, ready) = mpsc::channel::<bool>();
    let thread = thread::Builder::new()
        .name("guarded-map-prometheus".into())
        .spawn({
            let (handle, control) = (handle.clone(), Arc::clone(&control));
            move || {
                if ready.recv() == Ok(true) {
                    runtime.block_on(server::serve(
                        listener,
                        handle,
                        limits,
                        &control,
                        report_every,
                    ));
                }
                // Closes every connection the server still holds.
                drop(runtime);
                control.stopped();
            }
        })
        .map_err(|e| InstallError::Start {
            reason: format!("cannot start the server thread: {e}"),
        })?;
    if metrics::set_global_recorder(recorder).is_err() {
        let _ = go.send(false);
        let _ = thread.join();
        return Err(InstallError::RecorderInstalled);
    }
    report::describe();
    let _ = go.send(true);
    Ok(Exporter {
        local_addr,
        handle,
        control,
        thread,
    })
}
