//! [`Reporter`]: publishes the registry on an interval from a background thread.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::report_now;

/// Publishes every guarded map's statistics through the `metrics` facade on an interval, from a
/// background thread, until it is shut down or dropped (both publish once more, so the last
/// counts are never lost).
///
/// The maps' hot paths never call the facade: they count into per-thread slots, which the reporter
/// sums. Install a `metrics` recorder first; [`describe`](crate::describe) registers the help texts.
///
/// ```
/// use std::time::Duration;
/// use guarded_map::Reporter;
///
/// let reporter = Reporter::start(Duration::from_millis(100))?;
/// reporter.report_now(); // on demand, too
/// reporter.shutdown();
/// # Ok::<(), guarded_map::ReporterError>(())
/// ```
#[must_use = "dropping the Reporter stops it: keep it for as long as it should publish"]
pub struct Reporter {
    interval: Duration,
    stop: Arc<Stop>,
    thread: Option<JoinHandle<()>>,
}

/// The reporter thread's stop request.
#[derive(Default)]
struct Stop {
    requested: Mutex<bool>,
    wake: Condvar,
}

impl Reporter {
    /// The interval of [`Reporter::start_default`].
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

    /// Starts a reporter publishing every [`DEFAULT_INTERVAL`](Self::DEFAULT_INTERVAL).
    ///
    /// ```
    /// use guarded_map::Reporter;
    ///
    /// let reporter = Reporter::start_default()?;
    /// assert_eq!(reporter.interval(), Reporter::DEFAULT_INTERVAL);
    /// # Ok::<(), guarded_map::ReporterError>(())
    /// ```
    pub fn start_default() -> Result<Reporter, ReporterError> {
        Self::start(Self::DEFAULT_INTERVAL)
    }

    /// Starts a reporter publishing every `interval` (and once right away).
    ///
    /// ```
    /// use std::time::Duration;
    /// use guarded_map::{Reporter, ReporterError};
    ///
    /// let reporter = Reporter::start(Duration::from_secs(5))?;
    /// assert!(matches!(Reporter::start(Duration::ZERO), Err(ReporterError::ZeroInterval)));
    /// # drop(reporter);
    /// # Ok::<(), ReporterError>(())
    /// ```
    pub fn start(interval: Duration) -> Result<Reporter, ReporterError> {
        if interval.is_zero() {
            return Err(ReporterError::ZeroInterval);
        }
        let stop = Arc::new(Stop::default());
        let thread = thread::Builder::new()
            .name("guarded-map-reporter".into())
            .spawn({
                let stop = Arc::clone(&stop);
                move || run(interval, &stop)
            })
            .map_err(ReporterError::Spawn)?;
        Ok(Reporter {
            interval,
            stop,
            thread: Some(thread),
        })
    }

    /// The publishing interval.
    ///
    /// ```
    /// use std::time::Duration;
    /// use guarded_map::Reporter;
    ///
    /// let reporter = Reporter::start(Duration::from_secs(2))?;
    /// assert_eq!(reporter.interval(), Duration::from_secs(2));
    /// # Ok::<(), guarded_map::ReporterError>(())
    /// ```
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Publishes now, on the calling thread (to the recorder this thread sees).
    ///
    /// ```
    /// use std::time::Duration;
    /// use guarded_map::Reporter;
    ///
    /// let reporter = Reporter::start(Duration::from_secs(60))?;
    /// // Before a scrape or at a checkpoint, without waiting a minute:
    /// reporter.report_now();
    /// # Ok::<(), guarded_map::ReporterError>(())
    /// ```
    pub fn report_now(&self) {
        report_now();
    }

    /// Stops the thread after one last report and waits for it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use guarded_map::Reporter;
    ///
    /// let reporter = Reporter::start(Duration::from_secs(60))?;
    /// reporter.shutdown(); // one last report, then the thread is joined
    /// # Ok::<(), guarded_map::ReporterError>(())
    /// ```
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        *self.stop.requested.lock() = true;
        self.stop.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            // A panic on the reporter thread came from a recorder; it was printed already.
            let _ = thread.join();
        }
    }
}

fn run(interval: Duration, stop: &Stop) {
    let mut requested = stop.requested.lock();
    loop {
        report_now();
        if *requested {
            return;
        }
        // Wakes early on shutdown; the loop then reports one last time and returns.
        stop.wake.wait_for(&mut requested, interval);
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

impl fmt::Debug for Reporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reporter")
            .field("interval", &self.interval)
            .field("running", &self.thread.is_some())
            .finish()
    }
}

/// Why a [`Reporter`] could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReporterError {
    /// The interval was zero.
    ZeroInterval,
    /// The operating system refused a thread.
    Spawn(io::Error),
}

impl fmt::Display for ReporterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReporterError::ZeroInterval => f.write_str("the reporter interval must not be zero"),
            ReporterError::Spawn(e) => write!(f, "cannot start the reporter thread: {e}"),
        }
    }
}

impl std::error::Error for ReporterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReporterError::Spawn(e) => Some(e),
            ReporterError::ZeroInterval => None,
        }
    }
}
