//! Growth forecasts: how fast a map's entry count changes, and when it reaches its `max_len`.
//!
//! Computed by whoever publishes (a report, a scrape) from the entry counts it sees, never on a
//! map's hot path. Each [`Window`] is an exponentially weighted moving average of the rate of
//! change, weighted by the time between samples, so uneven report intervals weigh correctly.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// The horizon of one growth average.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Window {
    /// A one-minute average: reacts fast, for the critical alert.
    Short,
    /// A fifteen-minute average: steady, for the early warning.
    Long,
}

impl Window {
    /// Both windows, short first.
    pub const ALL: [Window; 2] = [Window::Short, Window::Long];

    /// Its time constant.
    ///
    /// ```
    /// use std::time::Duration;
    /// use guarded_map::report::Window;
    /// assert_eq!(Window::Long.horizon(), Duration::from_secs(15 * 60));
    /// ```
    pub const fn horizon(self) -> Duration {
        match self {
            Window::Short => Duration::from_secs(60),
            Window::Long => Duration::from_secs(15 * 60),
        }
    }

    /// Its value of the `window` label: `1m` or `15m`.
    ///
    /// ```
    /// use guarded_map::report::Window;
    /// assert_eq!(Window::Short.as_str(), "1m");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Window::Short => "1m",
            Window::Long => "15m",
        }
    }
}

/// The growth of one map's entry count, learned from samples `(time, entries)`.
///
/// ```
/// use std::time::Duration;
/// use guarded_map::report::{Forecast, Window};
///
/// let mut growth = Forecast::new();
/// // 100 entries a second, sampled every 5 seconds for 20 minutes.
/// for step in 0..=240u64 {
///     growth.observe(Duration::from_secs(step * 5), step * 500);
/// }
/// let rate = growth.entries_per_second(Window::Long).unwrap();
/// assert!((rate - 100.0).abs() < 1.0);
/// // 120 000 entries now: 80 000 to go at 100 a second.
/// let eta = growth.time_to(200_000, Window::Short).unwrap();
/// assert!((eta.as_secs_f64() - 800.0).abs() < 8.0);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Forecast {
    /// The last sample taken into the averages.
    last: Option<(Duration, u64)>,
    /// The averages, by window (`None` until two samples were seen).
    rates: Option<[f64; 2]>,
}

impl Forecast {
    /// Samples closer together than this are skipped: over a shorter span, one write burst would
    /// read as a rate.
    pub const MIN_SPACING: Duration = Duration::from_millis(500);

    /// A forecast with no samples.
    pub const fn new() -> Self {
        Forecast {
            last: None,
            rates: None,
        }
    }

    /// Takes the entry count `entries` seen at `at` (any fixed origin; times must not go back).
    /// A sample less than [`MIN_SPACING`](Self::MIN_SPACING) after the last one taken is ignored.
    pub fn observe(&mut self, at: Duration, entries: u64) {
        let Some((then, before)) = self.last else {
            self.last = Some((at, entries));
            return;
        };
        let Some(dt) = at.checked_sub(then).filter(|dt| *dt >= Self::MIN_SPACING) else {
            return;
        };
        let dt = dt.as_secs_f64();
        let rate = (entries as f64 - before as f64) / dt;
        self.last = Some((at, entries));
        let Some(rates) = &mut self.rates else {
            // The first rate starts both averages: starting from 0 would understate a steady
            // growth for a whole horizon.
            self.rates = Some([rate; 2]);
            return;
        };
        for (average, window) in rates.iter_mut().zip(Window::ALL) {
            let alpha = 1.0 - (-dt / window.horizon().as_secs_f64()).exp();
            *average += alpha * (rate - *average);
        }
    }

    /// The average change of the entry count over `window`, in entries per second (negative while
    /// the map shrinks); `None` before two samples.
    pub fn entries_per_second(&self, window: Window) -> Option<f64> {
        self.rates.map(|rates| rates[window as usize])
    }

    /// The entries at the last sample taken.
    pub fn entries(&self) -> Option<u64> {
        self.last.map(|(_, entries)| entries)
    }

    /// When, at `window`'s rate, the entry count reaches `limit`, from the last sample: zero if it
    /// is there already, `None` if the map is not growing (or before two samples).
    pub fn time_to(&self, limit: u64, window: Window) -> Option<Duration> {
        let entries = self.entries()?;
        if entries >= limit {
            return Some(Duration::ZERO);
        }
        let rate = self.entries_per_second(window)?;
        (rate > 0.0).then(|| Duration::from_secs_f64((limit - entries) as f64 / rate))
    }
}

/// The forecasts of every map label, fed by each publish.
fn forecasts() -> &'static Mutex<HashMap<&'static str, Forecast>> {
    static FORECASTS: OnceLock<Mutex<HashMap<&'static str, Forecast>>> = OnceLock::new();
    FORECASTS.get_or_init(Default::default)
}

/// The process's clock origin for samples.
fn now() -> Duration {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed()
}

/// Feeds the entry count of `label` seen now into its forecast and returns the forecast.
pub(super) fn observe(label: &'static str, entries: u64) -> Forecast {
    let at = now();
    let mut all = forecasts().lock();
    let forecast = all.entry(label).or_default();
    forecast.observe(at, entries);
    forecast.clone()
}

/// The growth forecast of the map labelled `label`, as the reports so far have seen it (`None`
/// before the first report of that map).
///
/// ```
/// use guarded_map::{map_spec, report, GuardedMap};
/// map_spec!(Jobs: HashMap<u32, u32>, sharded, name = "forecast_doc_jobs");
///
/// let jobs: GuardedMap<u32, u32, Jobs> = GuardedMap::new();
/// jobs.insert(1, 1);
/// report::report_now();
/// let growth = report::forecast("forecast_doc_jobs").unwrap();
/// assert_eq!(growth.entries(), Some(1));
/// ```
pub fn forecast(label: &str) -> Option<Forecast> {
    forecasts().lock().get(label).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn a_linear_growth_is_forecast_within_ten_percent() {
        let (rate, limit) = (37.0, 1_000_000u64);
        let mut f = Forecast::new();
        // Uneven intervals (1 to 4 s), 10 minutes.
        let mut t = 0.0;
        let mut step = 0u32;
        while t < 600.0 {
            f.observe(secs(t), (t * rate) as u64);
            step += 1;
            t += f64::from(1 + step % 4);
        }
        let entries = f.entries().unwrap();
        let truth = (limit - entries) as f64 / rate;
        for window in Window::ALL {
            let eta = f.time_to(limit, window).unwrap().as_secs_f64();
            assert!(
                (eta - truth).abs() < truth * 0.1,
                "{window:?}: {eta} vs {truth}"
            );
        }
    }

    #[test]
    fn the_short_window_follows_a_change_first() {
        let mut f = Forecast::new();
        for s in 0..=1800u32 {
            // Flat for 20 minutes, then 10 entries a second.
            let entries = if s < 1200 { 0 } else { 10 * (s - 1200) };
            f.observe(secs(f64::from(s)), u64::from(entries));
        }
        let short = f.entries_per_second(Window::Short).unwrap();
        let long = f.entries_per_second(Window::Long).unwrap();
        assert!((short - 10.0).abs() < 0.1, "{short}");
        assert!(long > 4.0 && long < 9.0, "{long}");
    }

    #[test]
    fn no_forecast_while_flat_or_shrinking_or_unknown() {
        let mut f = Forecast::new();
        assert_eq!(f.time_to(10, Window::Short), None);
        f.observe(secs(0.0), 5);
        assert_eq!(f.entries_per_second(Window::Short), None);
        f.observe(secs(10.0), 5);
        assert_eq!(f.time_to(10, Window::Short), None);
        f.observe(secs(20.0), 3);
        assert!(f.entries_per_second(Window::Long).unwrap() < 0.0);
        assert_eq!(f.time_to(10, Window::Long), None);
        assert_eq!(f.time_to(3, Window::Long), Some(Duration::ZERO));
    }

    #[test]
    fn close_samples_are_skipped() {
        let mut f = Forecast::new();
        f.observe(secs(0.0), 0);
        f.observe(secs(0.1), 1_000);
        assert_eq!(f.entries(), Some(0));
        f.observe(secs(1.0), 10);
        assert_eq!(f.entries_per_second(Window::Short), Some(10.0));
    }
}
