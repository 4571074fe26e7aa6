//! Plots for analysts (plotters): the shared pieces every figure of the report uses.
//!
//! ```text
//! series (times in ns, values) + markers --> TimePlot --> draw_time_plot --> PNG or SVG file
//! ```
//!
//! Text is drawn with DejaVu Sans compiled into the binary (`analyzer/assets/fonts`, registered
//! once as `sans-serif`), so plots render the same on a machine without font packages. Lines use
//! the Okabe-Ito palette, which stays distinguishable with the common forms of colour blindness.
//! Times on the axes are UTC.
//!
//! This is the foundation of the analyst report (issue 6); the per-finding figures build on it.

use std::{path::Path, sync::OnceLock};

use plotters::{coord::Shift, prelude::*};

/// What can go wrong drawing a plot.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The embedded font did not load (a build problem, not bad input).
    #[error("the embedded font {0} could not be loaded")]
    Font(&'static str),
    /// The file name says neither `.png` nor `.svg`.
    #[error("{path}: plots are written as .png or .svg")]
    Format {
        /// The file asked for.
        path: String,
    },
    /// Nothing to draw: no line has a finite value.
    #[error("{title}: no finite values to plot")]
    Empty {
        /// The plot's title.
        title: String,
    },
    /// plotters failed while drawing or writing the file.
    #[error("{path}: {problem}")]
    Draw {
        /// The file being written.
        path: String,
        /// plotters' message.
        problem: String,
    },
}

/// The Okabe-Ito palette (without its yellow, too pale on white): black first, then colours.
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 0, 0),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 158, 115),
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(204, 121, 167),
];

/// The font family plots use; [`fonts`] registers it.
pub const FONT: &str = "sans-serif";

/// Registers the embedded DejaVu Sans (regular and bold) as [`FONT`], once per process.
pub fn fonts() -> Result<(), PlotError> {
    static DONE: OnceLock<Result<(), &'static str>> = OnceLock::new();
    let result = DONE.get_or_init(|| {
        let faces: [(FontStyle, &'static [u8], &'static str); 2] = [
            (
                FontStyle::Normal,
                include_bytes!("../assets/fonts/DejaVuSans.ttf"),
                "DejaVuSans.ttf",
            ),
            (
                FontStyle::Bold,
                include_bytes!("../assets/fonts/DejaVuSans-Bold.ttf"),
                "DejaVuSans-Bold.ttf",
            ),
        ];
        for (style, bytes, name) in faces {
            plotters::style::register_font(FONT, style, bytes).map_err(|_| name)?;
        }
        Ok(())
    });
    result.map_err(PlotError::Font)
}

/// One line: a label for the legend and its samples (NaN values, and steps in time over three times
/// the usual one, are gaps).
#[derive(Debug, Clone)]
pub struct Line<'a> {
    /// Legend text; an empty label keeps the line out of the legend.
    pub label: String,
    /// Drawn thin and grey behind the others (e.g. every channel under their median).
    pub faint: bool,
    /// Sample times, ns since the epoch.
    pub times_ns: &'a [i64],
    /// Values, in the plot's unit.
    pub values: &'a [f64],
}

/// A moment marked across the plot (a change point, a context record).
#[derive(Debug, Clone)]
pub struct Marker {
    /// When, ns since the epoch.
    pub time_ns: i64,
    /// Text drawn beside the mark.
    pub label: String,
}

/// A plot of values against UTC time.
#[derive(Debug, Clone)]
pub struct TimePlot<'a> {
    /// Title above the plot.
    pub title: String,
    /// The value axis' description, with its unit (e.g. `Q (dB)`).
    pub y_label: String,
    /// Lines, drawn in palette order.
    pub lines: Vec<Line<'a>>,
    /// Moments marked with a dashed vertical line.
    pub markers: Vec<Marker>,
}

/// Size of a plot, pixels (SVG: user units).
pub const SIZE: (u32, u32) = (1000, 500);

/// Draws `plot` into `path`, as PNG or SVG by the file's extension.
pub fn draw_time_plot(plot: &TimePlot<'_>, path: &Path) -> Result<(), PlotError> {
    fonts()?;
    if !plot.lines.iter().any(|l| l.values.iter().any(|v| v.is_finite())) {
        return Err(PlotError::Empty {
            title: plot.title.clone(),
        });
    }
    let shown = path.display().to_string();
    let draw_error = |e: String| PlotError::Draw {
        path: shown.clone(),
        problem: e,
    };
    match path.extension().and_then(|e| e.to_str()) {
        Some("png") => {
            let root = BitMapBackend::new(path, SIZE).into_drawing_area();
            draw(plot, &root).map_err(draw_error)?;
            root.present().map_err(|e| draw_error(e.to_string()))
        }
        Some("svg") => {
            let root = SVGBackend::new(path, SIZE).into_drawing_area();
            draw(plot, &root).map_err(draw_error)?;
            root.present().map_err(|e| draw_error(e.to_string()))
        }
        _ => Err(PlotError::Format { path: shown }),
    }
}

/// The x coordinate: UTC time (plotters puts its ticks on round hours and days).
type Utc = chrono::DateTime<chrono::Utc>;

fn utc(t_ns: i64) -> Utc {
    chrono::DateTime::from_timestamp_nanos(t_ns)
}

/// The runs of a line drawn unbroken. A gap in the data is a gap in the plot: a NaN, or a step in
/// time over three times the line's usual one (rows missing during an outage), ends a run.
fn pieces(line: &Line<'_>) -> Vec<Vec<(i64, f64)>> {
    let mut steps: Vec<i64> = line.times_ns.windows(2).map(|w| w[1] - w[0]).collect();
    steps.sort_unstable();
    let longest = steps
        .get(steps.len() / 2)
        .map_or(i64::MAX, |s| s.saturating_mul(3));
    let mut pieces: Vec<Vec<(i64, f64)>> = vec![Vec::new()];
    let mut last_t: Option<i64> = None;
    for (&t, &v) in line.times_ns.iter().zip(line.values) {
        let jump = last_t.is_some_and(|l| t - l > longest);
        last_t = Some(t);
        if (jump || !v.is_finite()) && pieces.last().is_some_and(|p| !p.is_empty()) {
            pieces.push(Vec::new());
        }
        if v.is_finite()
            && let Some(piece) = pieces.last_mut()
        {
            piece.push((t, v));
        }
    }
    pieces.retain(|p| !p.is_empty());
    pieces
}

fn draw<DB: DrawingBackend>(plot: &TimePlot<'_>, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let finite = || {
        plot.lines.iter().flat_map(|l| {
            l.times_ns
                .iter()
                .zip(l.values)
                .filter(|(_, v)| v.is_finite())
                .map(|(&t, &v)| (t, v))
        })
    };
    let (mut x0, mut x1, mut y0, mut y1) = (i64::MAX, i64::MIN, f64::INFINITY, f64::NEG_INFINITY);
    for (x, y) in finite() {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    for m in &plot.markers {
        (x0, x1) = (x0.min(m.time_ns), x1.max(m.time_ns));
    }
    if !y0.is_finite() {
        return Err("no finite values to plot".into());
    }
    let pad = ((y1 - y0) * 0.08).max(1e-6);
    let (y0, y1) = (y0 - pad, y1 + pad);
    let (x0, x1) = (utc(x0), utc(x1.max(x0 + 1_000_000_000)));
    let mut chart = ChartBuilder::on(root)
        .caption(&plot.title, (FONT, 22).into_font().style(FontStyle::Bold))
        .margin(12)
        .x_label_area_size(46)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("time (UTC)")
        .y_desc(plot.y_label.as_str())
        .x_label_formatter(&|t: &Utc| t.format("%m-%d %H:%M").to_string())
        .x_labels(8)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(e)?;
    // Faint lines first, so the others are drawn over them; colours go to the others in order.
    let faint = RGBColor(175, 175, 175);
    let mut order: Vec<&Line<'_>> = plot.lines.iter().filter(|l| l.faint).collect();
    order.extend(plot.lines.iter().filter(|l| !l.faint));
    let mut next_colour = 0;
    for line in order {
        let (colour, width) = if line.faint {
            (faint, 1)
        } else {
            next_colour += 1;
            (PALETTE[(next_colour - 1) % PALETTE.len()], 2)
        };
        let pieces = pieces(line);
        for (k, piece) in pieces.into_iter().enumerate() {
            let points = piece.into_iter().map(|(t, v)| (utc(t), v));
            let series = chart
                .draw_series(LineSeries::new(points, colour.stroke_width(width)))
                .map_err(e)?;
            if k == 0 && !line.label.is_empty() {
                series.label(line.label.as_str()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(width))
                });
            }
        }
    }
    for m in &plot.markers {
        let x = utc(m.time_ns);
        chart
            .draw_series(DashedLineSeries::new(
                vec![(x, y0), (x, y1)],
                6,
                4,
                BLACK.stroke_width(1),
            ))
            .map_err(e)?;
        chart
            .draw_series(std::iter::once(Text::new(
                m.label.clone(),
                (x, y1),
                (FONT, 14).into_font().color(&BLACK),
            )))
            .map_err(e)?;
    }
    if plot.lines.iter().any(|l| !l.label.is_empty()) {
        chart
            .configure_series_labels()
            .label_font((FONT, 14))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .position(SeriesLabelPosition::LowerLeft)
            .draw()
            .map_err(e)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Vec<i64>, Vec<f64>, Vec<f64>) {
        let start = 1_790_000_000_000_000_000_i64;
        let times: Vec<i64> = (0..240).map(|i| start + i * 60_000_000_000).collect();
        let a: Vec<f64> = (0..240)
            .map(|i| {
                if i == 50 {
                    f64::NAN
                } else if i < 120 {
                    12.0
                } else {
                    11.9
                }
            })
            .collect();
        let b: Vec<f64> = (0..240).map(|i| 12.2 + 0.01 * (i % 7) as f64).collect();
        (times, a, b)
    }

    fn plot<'a>(times: &'a [i64], a: &'a [f64], b: &'a [f64]) -> TimePlot<'a> {
        TimePlot {
            title: "Q of fiber pair 1, a_to_b".into(),
            y_label: "Q (dB)".into(),
            lines: vec![
                Line {
                    label: "channel 1".into(),
                    faint: false,
                    times_ns: times,
                    values: a,
                },
                Line {
                    label: "channel 2".into(),
                    faint: false,
                    times_ns: times,
                    values: b,
                },
            ],
            markers: vec![Marker {
                time_ns: times[120],
                label: "step -0.10 dB".into(),
            }],
        }
    }

    /// A PNG is written with the title drawn in the embedded font (dark pixels in the caption
    /// band), palette colours in the plot, and an SVG with the texts as text.
    #[test]
    fn a_time_plot_renders_text_and_lines_as_png_and_svg() {
        let dir = tempfile::tempdir().unwrap();
        let (times, a, b) = sample();
        let p = plot(&times, &a, &b);
        let png = dir.path().join("q.png");
        draw_time_plot(&p, &png).unwrap();
        let image = image::open(&png).unwrap().to_rgb8();
        assert_eq!(image.dimensions(), SIZE);
        // The caption band (top 40 rows, middle half): the title's glyphs.
        let dark_in_caption = (SIZE.0 / 4..3 * SIZE.0 / 4)
            .flat_map(|x| (0..40).map(move |y| (x, y)))
            .filter(|&(x, y)| image.get_pixel(x, y).0.iter().all(|&c| c < 100))
            .count();
        assert!(
            dark_in_caption > 200,
            "{dark_in_caption} dark pixels in the caption band"
        );
        // The second line's colour (Okabe-Ito orange) appears in the plot.
        let orange = image.pixels().filter(|p| p.0 == [230, 159, 0]).count();
        assert!(orange > 500, "{orange} orange pixels");

        let svg = dir.path().join("q.svg");
        draw_time_plot(&p, &svg).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        for s in [
            "Q of fiber pair 1, a_to_b",
            "Q (dB)",
            "time (UTC)",
            "step -0.10 dB",
            "channel 2",
        ] {
            assert!(text.contains(s), "{s:?} missing from the SVG");
        }
    }

    #[test]
    fn lines_break_at_missing_values_and_missing_rows() {
        let minute = 60_000_000_000;
        let times: Vec<i64> = [0, 1, 2, 3, 4, 10, 11, 12].iter().map(|m| m * minute).collect();
        let values = [1.0, 2.0, f64::NAN, 4.0, 5.0, 6.0, 7.0, f64::NAN];
        let line = Line {
            label: String::new(),
            faint: false,
            times_ns: &times,
            values: &values,
        };
        let runs: Vec<Vec<f64>> = pieces(&line)
            .into_iter()
            .map(|p| p.into_iter().map(|(_, v)| v).collect())
            .collect();
        // The NaN at minute 2 and the rows missing from minute 5 to 9 split it; the NaN at the end
        // leaves nothing behind.
        assert_eq!(runs, vec![vec![1.0, 2.0], vec![4.0, 5.0], vec![6.0, 7.0]]);
    }

    #[test]
    fn bad_requests_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let (times, a, b) = sample();
        let p = plot(&times, &a, &b);
        let err = draw_time_plot(&p, &dir.path().join("q.jpg")).unwrap_err();
        assert!(matches!(err, PlotError::Format { .. }), "{err}");
        assert!(err.to_string().contains("q.jpg"), "{err}");
        let nan = vec![f64::NAN; times.len()];
        let empty = TimePlot {
            lines: vec![Line {
                label: "gone".into(),
                faint: false,
                times_ns: &times,
                values: &nan,
            }],
            ..p
        };
        let path = dir.path().join("empty.png");
        let err = draw_time_plot(&empty, &path).unwrap_err();
        assert!(matches!(err, PlotError::Empty { .. }), "{err}");
        assert!(!path.exists(), "no file for an empty plot");
    }
}
