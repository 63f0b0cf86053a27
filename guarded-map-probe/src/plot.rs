//! `guarded-map-probe plot`: a recording turned into a picture, one chart per map, of its entries,
//! capacity, `max_len` (when the recording has it) and growth forecast over time.
//!
//! A recording is JSON lines, one per interval, as `guarded-map-probe record` writes them (and as
//! the bench crate's capacity stress run writes its own history): each line an object with
//! `unix_ms` and `maps`, each map an object with `label`, `len` and `capacity`, optionally
//! `max_len`. The forecast replays the samples through the reporter's own
//! `guarded_map::report::Forecast` and projects the entries from the last sample at its
//! one-minute rate.

use std::fmt;
use std::time::Duration;

use guarded_map::report::{Forecast, Window};
use plotters::prelude::*;
use serde_json::Value;

/// One sample of one map.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Seconds since the recording's first line.
    pub seconds: f64,
    /// Entries.
    pub len: u64,
    /// Entries the tables hold without growing.
    pub capacity: u64,
}

/// One map's history in a recording.
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    /// The map's label.
    pub label: String,
    /// Its samples, oldest first.
    pub points: Vec<Point>,
    /// Its `max_len` (all instances), if the recording says.
    pub max_len: Option<u64>,
}

impl History {
    /// The growth forecast after the last sample: entries per second at the one-minute rate.
    pub fn growth(&self) -> Option<f64> {
        let mut forecast = Forecast::new();
        for p in &self.points {
            forecast.observe(Duration::from_secs_f64(p.seconds), p.len);
        }
        forecast.entries_per_second(Window::Short)
    }
}

/// Why a recording could not be plotted.
#[derive(Debug)]
#[non_exhaustive]
pub enum PlotError {
    /// A line is not a recording's JSON object.
    Parse {
        /// Its number, from 1.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// No line holds a map.
    Empty,
    /// Drawing failed.
    Draw(String),
}

impl fmt::Display for PlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlotError::Parse { line, message } => write!(f, "line {line}: {message}"),
            PlotError::Empty => f.write_str("the recording holds no map"),
            PlotError::Draw(e) => write!(f, "cannot draw: {e}"),
        }
    }
}

impl std::error::Error for PlotError {}

/// The maps of a recording (JSON lines), in the order they first appear.
///
/// ```
/// let text = r#"{"unix_ms": 1000, "maps": [{"label": "a", "len": 1, "capacity": 4}]}
/// {"unix_ms": 3000, "maps": [{"label": "a", "len": 3, "capacity": 4, "max_len": 10}]}"#;
/// let maps = guarded_map_probe::plot::read(text).unwrap();
/// assert_eq!(maps[0].points[1].seconds, 2.0);
/// assert_eq!(maps[0].max_len, Some(10));
/// ```
pub fn read(text: &str) -> Result<Vec<History>, PlotError> {
    let mut maps: Vec<History> = Vec::new();
    let mut origin = None;
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| PlotError::Parse {
            line: n + 1,
            message,
        };
        let record: Value = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        let ms = record["unix_ms"]
            .as_u64()
            .ok_or_else(|| bad("no `unix_ms`".into()))?;
        let origin = *origin.get_or_insert(ms);
        let seconds = ms.saturating_sub(origin) as f64 / 1000.0;
        let Some(entries) = record["maps"].as_array() else {
            return Err(bad("no `maps` list".into()));
        };
        for map in entries {
            let field = |name: &str| {
                map[name]
                    .as_u64()
                    .ok_or_else(|| bad(format!("a map without `{name}`")))
            };
            let label = map["label"]
                .as_str()
                .ok_or_else(|| bad("a map without `label`".into()))?;
            let point = Point {
                seconds,
                len: field("len")?,
                capacity: field("capacity")?,
            };
            let history = match maps.iter_mut().position(|m| m.label == label) {
                Some(i) => &mut maps[i],
                None => {
                    maps.push(History {
                        label: label.to_owned(),
                        points: Vec::new(),
                        max_len: None,
                    });
                    maps.last_mut().expect("just pushed")
                }
            };
            history.points.push(point);
            if let Some(max_len) = map["max_len"].as_u64() {
                history.max_len = Some(max_len);
            }
        }
    }
    if maps.is_empty() {
        return Err(PlotError::Empty);
    }
    Ok(maps)
}

/// Draws one chart per map, stacked, as SVG text.
///
/// ```
/// let text = r#"{"unix_ms": 0, "maps": [{"label": "a", "len": 1, "capacity": 4}]}
/// {"unix_ms": 1000, "maps": [{"label": "a", "len": 2, "capacity": 4}]}"#;
/// let svg = guarded_map_probe::plot::svg(&guarded_map_probe::plot::read(text).unwrap()).unwrap();
/// assert!(svg.starts_with("<svg") && svg.contains("entries"));
/// ```
pub fn svg(maps: &[History]) -> Result<String, PlotError> {
    const WIDTH: u32 = 900;
    const HEIGHT_EACH: u32 = 320;
    let mut out = String::new();
    {
        let height = HEIGHT_EACH * maps.len().max(1) as u32;
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw)?;
        for (area, map) in root.split_evenly((maps.len(), 1)).iter().zip(maps) {
            chart(area, map)?;
        }
        root.present().map_err(draw)?;
    }
    Ok(out)
}

fn draw(e: impl fmt::Display) -> PlotError {
    PlotError::Draw(e.to_string())
}

/// The forecast's projection: from the last sample, a quarter of the recording's span ahead (at
/// least a second), cut where it leaves `0..=top`.
fn projection(map: &History, top: f64) -> Option<[(f64, f64); 2]> {
    let last = map.points.last()?;
    let rate = map.growth()?;
    let span = last.seconds - map.points.first()?.seconds;
    let from = last.len as f64;
    let mut ahead = (span / 4.0).max(1.0);
    let end = from + rate * ahead;
    if end > top {
        ahead = (top - from) / rate;
    } else if end < 0.0 {
        ahead = from / -rate;
    }
    Some([
        (last.seconds, from),
        (last.seconds + ahead, from + rate * ahead),
    ])
}

/// A count in the unit that reads best on an axis.
fn si(x: f64) -> String {
    match x.abs() {
        a if a >= 1e9 => format!("{:.1}G", x / 1e9),
        a if a >= 1e6 => format!("{:.1}M", x / 1e6),
        a if a >= 1e3 => format!("{:.0}k", x / 1e3),
        _ => format!("{x:.0}"),
    }
}

fn chart(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    map: &History,
) -> Result<(), PlotError> {
    let y_top = map
        .points
        .iter()
        .map(|p| p.len.max(p.capacity) as f64)
        .chain(map.max_len.map(|m| m as f64))
        .fold(1.0, f64::max)
        * 1.1;
    let projected = projection(map, y_top);
    let last = map.points.last().map_or(1.0, |p| p.seconds);
    let x_end = projected.map_or(last, |p| p[1].0.max(last));
    let caption = match (map.growth(), map.max_len) {
        (Some(rate), Some(max)) if rate > 0.0 => {
            let left = max.saturating_sub(map.points.last().map_or(0, |p| p.len)) as f64;
            format!(
                "{}: {rate:+.0} entries/s, max_len in {:.0} s",
                map.label,
                left / rate
            )
        }
        (Some(rate), _) => format!("{}: {rate:+.0} entries/s", map.label),
        (None, _) => map.label.clone(),
    };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_end.max(1.0), 0.0..y_top)
        .map_err(draw)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("entries")
        .y_label_formatter(&|y| si(*y))
        .draw()
        .map_err(draw)?;
    let line = |f: fn(&Point) -> u64| map.points.iter().map(move |p| (p.seconds, f(p) as f64));
    chart
        .draw_series(LineSeries::new(line(|p| p.len), BLUE.stroke_width(2)))
        .map_err(draw)?
        .label("entries")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLUE.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(line(|p| p.capacity), BLACK.mix(0.6)))
        .map_err(draw)?
        .label("capacity")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLACK.mix(0.6)));
    if let Some(max) = map.max_len {
        chart
            .draw_series(LineSeries::new(
                [(0.0, max as f64), (x_end, max as f64)],
                RED,
            ))
            .map_err(draw)?
            .label("max_len")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], RED));
    }
    if let Some(projected) = projected {
        let orange = RGBColor(230, 130, 0);
        chart
            .draw_series(LineSeries::new(projected, orange.stroke_width(2)))
            .map_err(draw)?
            .label("forecast (1m rate)")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], orange.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK.mix(0.3))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(draw)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_say_where() {
        let err = read("{\"unix_ms\": 1, \"maps\": []}\nnot json").unwrap_err();
        assert!(matches!(err, PlotError::Parse { line: 2, .. }), "{err}");
        let err = read("{\"maps\": []}").unwrap_err();
        assert!(err.to_string().contains("unix_ms"), "{err}");
        let err = read("{\"unix_ms\": 1, \"maps\": [{\"label\": \"a\"}]}").unwrap_err();
        assert!(err.to_string().contains("`len`"), "{err}");
        assert!(matches!(read("\n"), Err(PlotError::Empty)));
    }

    #[test]
    fn a_growing_map_is_drawn_with_its_forecast() {
        let text: String = (0..=60u64)
            .map(|s| {
                format!(
                    "{{\"unix_ms\": {}, \"maps\": [{{\"label\": \"g\", \"len\": {}, \"capacity\": {}, \"max_len\": 100000}}, {{\"label\": \"flat\", \"len\": 5, \"capacity\": 8}}]}}\n",
                    s * 1000,
                    s * 100,
                    (s * 100).next_power_of_two()
                )
            })
            .collect();
        let maps = read(&text).unwrap();
        assert_eq!(maps.len(), 2);
        let rate = maps[0].growth().unwrap();
        assert!((rate - 100.0).abs() < 1.0, "{rate}");
        let svg = svg(&maps).unwrap();
        for text in [
            "g: +100 entries/s, max_len in 940 s",
            "flat: +0 entries/s",
            "forecast",
            "max_len",
            "capacity",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
    }
}
