//! Plots for analysts (plotters): the shared pieces every figure of the report uses.
//!
//! ```text
//! TimePlot (lines against UTC time, markers, shaded context bands)
//! ProfilePlot (values along the cable, km, with a shaded span)        --render--> PNG or SVG file
//! HeatMap (rows against time, diverging colours)                        (by the file's extension)
//! EventPlot (events in named rows against time)
//! ```
//!
//! Text is drawn with DejaVu Sans compiled into the binary (`analyzer/assets/fonts`, registered
//! once as `sans-serif`), so PNGs render the same on a machine without font packages (an SVG names
//! the family and leaves the font to its viewer). Lines use the Okabe-Ito palette, which stays
//! distinguishable with the common forms of colour blindness. Times on the axes are UTC.

use std::{path::Path, sync::OnceLock};

use plotters::{
    coord::{CoordTranslate, Shift},
    prelude::*,
    style::text_anchor::{HPos, Pos, VPos},
};

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
    /// Stretches of time shaded behind the lines (context records).
    pub bands: Vec<Band>,
}

/// A stretch of time shaded across a time plot: a maintenance window, a repair, a vessel over the
/// cable. An instant (an earthquake) is drawn as a solid line.
#[derive(Debug, Clone)]
pub struct Band {
    /// Start, ns since the epoch.
    pub start_ns: i64,
    /// End, ns (equal to the start for an instant).
    pub end_ns: i64,
    /// Text drawn at the band's top left.
    pub label: String,
}

/// Size of a plot, pixels (SVG: user units).
pub const SIZE: (u32, u32) = (1000, 500);

/// A figure that can draw itself on any plotters backend.
pub trait Figure {
    /// The title (named in errors).
    fn title(&self) -> &str;
    /// True when there is something to draw.
    fn has_values(&self) -> bool;
    /// Draws the figure on `root`; plotters' errors as text.
    fn draw_on<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

/// Draws `figure` into `path`, as PNG or SVG by the file's extension. An empty figure is an error
/// and writes no file.
pub fn render(figure: &impl Figure, path: &Path) -> Result<(), PlotError> {
    fonts()?;
    if !figure.has_values() {
        return Err(PlotError::Empty {
            title: figure.title().to_owned(),
        });
    }
    let shown = path.display().to_string();
    let draw_error = |e: String| PlotError::Draw {
        path: shown.clone(),
        problem: e,
    };
    match path.extension().and_then(|e| e.to_str()) {
        Some("png") => {
            let mut pixels = vec![0_u8; SIZE.0 as usize * SIZE.1 as usize * 3];
            {
                let root = BitMapBackend::with_buffer(&mut pixels, SIZE).into_drawing_area();
                figure.draw_on(&root).map_err(draw_error)?;
                root.present().map_err(|e| draw_error(e.to_string()))?;
            }
            write_png(path, &pixels).map_err(|e| draw_error(e.to_string()))
        }
        Some("svg") => {
            let root = SVGBackend::new(path, SIZE).into_drawing_area();
            figure.draw_on(&root).map_err(draw_error)?;
            root.present().map_err(|e| draw_error(e.to_string()))
        }
        _ => Err(PlotError::Format { path: shown }),
    }
}

/// Writes RGB `pixels` of [`SIZE`] as a PNG at zlib's default level with adaptive filters, where
/// plotters' own encoder compresses fast: on the demo's 288 plots 39 MB against 81 MB, for 4.5 s
/// of drawing against 3.2 s. A plot with a hundred noisy channel lines compresses poorly, and a
/// month's report has hundreds of plots.
fn write_png(path: &Path, pixels: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut encoder = png::Encoder::new(file, SIZE.0, SIZE.1);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Default);
    encoder.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(pixels)?;
    writer.finish()?;
    Ok(())
}

impl Figure for TimePlot<'_> {
    fn title(&self) -> &str {
        &self.title
    }
    fn has_values(&self) -> bool {
        self.lines.iter().any(|l| l.values.iter().any(|v| v.is_finite()))
    }
    fn draw_on<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        draw(self, root)
    }
}

/// The legend box every plot uses, at `position`.
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(160, 160, 160))
        .position(position)
        .draw()
        .map_err(|e| e.to_string())
}

/// A value axis label with as many decimals as the axis' span needs, and no "-0".
fn tick(v: f64, span: f64) -> String {
    let decimals = if span >= 50.0 {
        0
    } else if span >= 5.0 {
        1
    } else if span >= 0.5 {
        2
    } else {
        3
    };
    let text = format!("{v:.decimals$}");
    if text.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') {
        text.trim_start_matches('-').to_owned()
    } else {
        text
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
    // The time range: every sample and marker. The value range: every value of the bold lines, and
    // the 1st to 99th percentile of the faint ones, so that a few outliers among hundreds of faint
    // lines (a probe's queueing spike) do not flatten the lines that matter; what lies beyond is
    // drawn at the edge.
    let (mut x0, mut x1, mut y0, mut y1) = (i64::MAX, i64::MIN, f64::INFINITY, f64::NEG_INFINITY);
    let mut faint: Vec<f64> = Vec::new();
    for line in &plot.lines {
        for (&t, &v) in line.times_ns.iter().zip(line.values) {
            if !v.is_finite() {
                continue;
            }
            (x0, x1) = (x0.min(t), x1.max(t));
            if line.faint {
                faint.push(v);
            } else {
                (y0, y1) = (y0.min(v), y1.max(v));
            }
        }
    }
    if !faint.is_empty() {
        faint.sort_unstable_by(f64::total_cmp);
        let at = |q: f64| faint[((faint.len() - 1) as f64 * q).round() as usize];
        (y0, y1) = (y0.min(at(0.01)), y1.max(at(0.99)));
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
        .y_label_formatter(&|v: &f64| tick(*v, y1 - y0))
        .x_labels(8)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(e)?;
    // Context bands behind everything, clipped to the plot; labels stacked down from the top.
    let band_fill = RGBColor(86, 180, 233).mix(0.18);
    let band_line = RGBColor(0, 114, 178);
    for (i, band) in plot.bands.iter().enumerate() {
        let (from, to) = (utc(band.start_ns).max(x0), utc(band.end_ns).min(x1));
        if from > to {
            continue;
        }
        if band.end_ns > band.start_ns {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(from, y0), (to, y1)],
                    band_fill.filled(),
                )))
                .map_err(e)?;
        } else {
            chart
                .draw_series(LineSeries::new(
                    vec![(from, y0), (from, y1)],
                    band_line.stroke_width(2),
                ))
                .map_err(e)?;
        }
        let y = y1 - (y1 - y0) * (0.045 * plot.markers.len() as f64 + 0.01 + 0.05 * i as f64);
        let right = from > x0 + (x1 - x0) * 3 / 5;
        let (x, side) = if right {
            (to, HPos::Right)
        } else {
            (from, HPos::Left)
        };
        chart
            .draw_series(std::iter::once(Text::new(
                format!(" {} ", band.label),
                (x, y),
                (FONT, 13)
                    .into_font()
                    .color(&band_line)
                    .pos(Pos::new(side, VPos::Top)),
            )))
            .map_err(e)?;
    }
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
            let points = piece.into_iter().map(|(t, v)| (utc(t), v.clamp(y0, y1)));
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
    // Marker labels beside their line, on the side with room, stepped down one by one.
    let middle = x0 + (x1 - x0) * 3 / 5;
    for (i, m) in plot.markers.iter().enumerate() {
        let x = utc(m.time_ns);
        chart
            .draw_series(DashedLineSeries::new(
                vec![(x, y0), (x, y1)],
                6,
                4,
                BLACK.stroke_width(1),
            ))
            .map_err(e)?;
        let side = if x > middle { HPos::Right } else { HPos::Left };
        let label = if x > middle {
            format!("{} ", m.label.trim())
        } else {
            format!(" {}", m.label.trim())
        };
        chart
            .draw_series(std::iter::once(Text::new(
                label,
                (x, y1 - (y1 - y0) * 0.045 * i as f64),
                (FONT, 14)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(side, VPos::Top)),
            )))
            .map_err(e)?;
    }
    if plot.lines.iter().any(|l| !l.label.is_empty()) {
        legend(&mut chart, SeriesLabelPosition::LowerLeft)?;
    }
    Ok(())
}

/// Values along the cable: one point per repeater, drawn as stems from zero.
#[derive(Debug, Clone)]
pub struct ProfileSeries {
    /// Legend text; empty keeps it out of the legend.
    pub label: String,
    /// Drawn small and grey behind the others (e.g. the other fiber pairs).
    pub faint: bool,
    /// (km from the A end, value).
    pub points: Vec<(f64, f64)>,
}

/// A plot along the cable (x in km): the span view of a finding.
#[derive(Debug, Clone)]
pub struct ProfilePlot {
    /// Title above the plot.
    pub title: String,
    /// The value axis' description, with its unit.
    pub y_label: String,
    /// Cable length, km (the x axis runs from 0 to it).
    pub length_km: f64,
    /// The series, faint ones first.
    pub series: Vec<ProfileSeries>,
    /// A stretch of cable shaded and labelled (the flagged span), km.
    pub highlight: Option<(f64, f64, String)>,
}

impl Figure for ProfilePlot {
    fn title(&self) -> &str {
        &self.title
    }
    fn has_values(&self) -> bool {
        self.series
            .iter()
            .any(|s| s.points.iter().any(|(_, v)| v.is_finite()))
    }
    fn draw_on<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(e)?;
        let extreme = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|(_, v)| v.abs()))
            .filter(|v| v.is_finite())
            .fold(0.0_f64, f64::max)
            .max(0.02)
            * 1.25;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FONT, 20).into_font().style(FontStyle::Bold))
            .margin(12)
            .x_label_area_size(46)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..self.length_km.max(1.0), -extreme..extreme)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("distance from the A end (km)")
            .y_desc(self.y_label.as_str())
            .x_label_formatter(&|km: &f64| format!("{km:.0}"))
            .y_label_formatter(&|v: &f64| tick(*v, 2.0 * extreme))
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 16))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(e)?;
        if let Some((from, to, label)) = &self.highlight {
            let colour = PALETTE[5];
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(*from, -extreme), (*to, extreme)],
                    colour.mix(0.18).filled(),
                )))
                .map_err(e)?;
            // The label on the side of the band with more room.
            let right = *from < self.length_km / 2.0;
            let x = if right { *to } else { *from };
            let anchor = if right {
                Pos::new(HPos::Left, VPos::Top)
            } else {
                Pos::new(HPos::Right, VPos::Top)
            };
            chart
                .draw_series(std::iter::once(Text::new(
                    format!(" {label} "),
                    (x, extreme * 0.95),
                    (FONT, 14).into_font().color(&colour).pos(anchor),
                )))
                .map_err(e)?;
        }
        chart
            .draw_series(LineSeries::new(
                vec![(0.0, 0.0), (self.length_km, 0.0)],
                RGBColor(120, 120, 120).stroke_width(1),
            ))
            .map_err(e)?;
        let mut next_colour = 0;
        let mut order: Vec<&ProfileSeries> = self.series.iter().filter(|s| s.faint).collect();
        order.extend(self.series.iter().filter(|s| !s.faint));
        for series in order {
            let (colour, size) = if series.faint {
                (RGBColor(175, 175, 175), 2)
            } else {
                next_colour += 1;
                (PALETTE[(next_colour - 1) % PALETTE.len()], 4)
            };
            let finite: Vec<(f64, f64)> = series
                .points
                .iter()
                .copied()
                .filter(|(_, v)| v.is_finite())
                .collect();
            if !series.faint {
                chart
                    .draw_series(
                        finite.iter().map(|&(km, v)| {
                            PathElement::new(vec![(km, 0.0), (km, v)], colour.stroke_width(1))
                        }),
                    )
                    .map_err(e)?;
            }
            let drawn = chart
                .draw_series(
                    finite
                        .iter()
                        .map(|&(km, v)| Circle::new((km, v), size, colour.filled())),
                )
                .map_err(e)?;
            if !series.label.is_empty() {
                drawn
                    .label(series.label.as_str())
                    .legend(move |(x, y)| Circle::new((x + 10, y), size, colour.filled()));
            }
        }
        if self.series.iter().any(|s| !s.label.is_empty()) {
            legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        }
        Ok(())
    }
}

/// The diverging colour of `v` in `-limit..limit`: vermillion below zero, white at zero, blue above
/// (both ends of Okabe-Ito, distinguishable with the common colour blindnesses). NaN is light grey.
pub fn diverging(v: f64, limit: f64) -> RGBColor {
    if !v.is_finite() {
        return RGBColor(225, 225, 225);
    }
    let x = (v / limit).clamp(-1.0, 1.0);
    let (end, w) = if x < 0.0 {
        ((213.0, 94.0, 0.0), -x)
    } else {
        ((0.0, 114.0, 178.0), x)
    };
    let mix = |a: f64| (255.0 + (a - 255.0) * w).round() as u8;
    RGBColor(mix(end.0), mix(end.1), mix(end.2))
}

/// A heat map of rows (spans) against time: one cell per row and time bin.
#[derive(Debug, Clone)]
pub struct HeatMap {
    /// Title above the plot.
    pub title: String,
    /// The row axis' description (e.g. `span`).
    pub y_label: String,
    /// The colour bar's description, with its unit.
    pub value_label: String,
    /// Start of the first bin, ns.
    pub t0_ns: i64,
    /// Bin width, ns.
    pub bin_ns: i64,
    /// `values[row][bin]`; row 0 is drawn at the bottom and numbered 1.
    pub values: Vec<Vec<f64>>,
    /// Values at or beyond ±limit get the end colours.
    pub limit: f64,
}

impl Figure for HeatMap {
    fn title(&self) -> &str {
        &self.title
    }
    fn has_values(&self) -> bool {
        self.values.iter().flatten().any(|v| v.is_finite())
    }
    fn draw_on<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(e)?;
        let (main, bar) = root.split_horizontally(SIZE.0 - 110);
        let rows = self.values.len();
        let bins = self.values.iter().map(Vec::len).max().unwrap_or(0);
        let t1 = self.t0_ns + self.bin_ns * bins.max(1) as i64;
        let mut chart = ChartBuilder::on(&main)
            .caption(&self.title, (FONT, 20).into_font().style(FontStyle::Bold))
            .margin(12)
            .x_label_area_size(46)
            .y_label_area_size(70)
            .build_cartesian_2d(utc(self.t0_ns)..utc(t1), 0.5..rows as f64 + 0.5)
            .map_err(e)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("time (UTC)")
            .y_desc(self.y_label.as_str())
            .x_label_formatter(&|t: &Utc| t.format("%m-%d %H:%M").to_string())
            .y_label_formatter(&|v: &f64| {
                if (v - v.round()).abs() < 1e-6 {
                    format!("{v:.0}")
                } else {
                    String::new()
                }
            })
            .x_labels(8)
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 16))
            .draw()
            .map_err(e)?;
        chart
            .draw_series(self.values.iter().enumerate().flat_map(|(row, cells)| {
                cells.iter().enumerate().map(move |(bin, &v)| {
                    let from = self.t0_ns + self.bin_ns * bin as i64;
                    Rectangle::new(
                        [
                            (utc(from), row as f64 + 0.5),
                            (utc(from + self.bin_ns), row as f64 + 1.5),
                        ],
                        diverging(v, self.limit).filled(),
                    )
                })
            }))
            .map_err(e)?;
        // The colour bar.
        let mut scale = ChartBuilder::on(&bar)
            .margin_top(50)
            .margin_bottom(58)
            .margin_right(10)
            .y_label_area_size(62)
            .build_cartesian_2d(0.0..1.0, -self.limit..self.limit)
            .map_err(e)?;
        scale
            .configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .y_desc(self.value_label.as_str())
            .y_labels(5)
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 13))
            .draw()
            .map_err(e)?;
        let steps = 60;
        scale
            .draw_series((0..steps).map(|i| {
                let a = -self.limit + 2.0 * self.limit * i as f64 / steps as f64;
                let b = a + 2.0 * self.limit / steps as f64;
                Rectangle::new(
                    [(0.0, a), (1.0, b)],
                    diverging((a + b) / 2.0, self.limit).filled(),
                )
            }))
            .map_err(e)?;
        Ok(())
    }
}

/// One event on an [`EventPlot`].
#[derive(Debug, Clone)]
pub struct Event {
    /// When, ns.
    pub time_ns: i64,
    /// Which row (index into the plot's rows).
    pub row: usize,
    /// Filled (e.g. unexplained) or hollow (explained).
    pub filled: bool,
}

/// Events in named rows against time: the findings timeline by class.
#[derive(Debug, Clone)]
pub struct EventPlot {
    /// Title above the plot.
    pub title: String,
    /// Row names, top row first.
    pub rows: Vec<String>,
    /// The events.
    pub events: Vec<Event>,
    /// Legend texts for filled and hollow marks.
    pub filled_means: String,
    /// What a hollow mark means.
    pub hollow_means: String,
    /// Time range shown, ns (the analysed window).
    pub range_ns: (i64, i64),
}

impl Figure for EventPlot {
    fn title(&self) -> &str {
        &self.title
    }
    fn has_values(&self) -> bool {
        !self.rows.is_empty() && self.range_ns.1 > self.range_ns.0
    }
    fn draw_on<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(e)?;
        let n = self.rows.len();
        // Row i is drawn at height n - i, so the first row is on top.
        let height = |row: usize| (n - row) as f64;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FONT, 20).into_font().style(FontStyle::Bold))
            .margin(12)
            .x_label_area_size(46)
            .y_label_area_size(150)
            .build_cartesian_2d(utc(self.range_ns.0)..utc(self.range_ns.1), 0.4..n as f64 + 0.6)
            .map_err(e)?;
        let rows = self.rows.clone();
        chart
            .configure_mesh()
            .x_desc("time (UTC)")
            .x_label_formatter(&|t: &Utc| t.format("%m-%d %H:%M").to_string())
            .y_label_formatter(&|v: &f64| {
                let k = v.round();
                if (v - k).abs() < 1e-6 && k >= 1.0 && k <= n as f64 {
                    rows[n - k as usize].clone()
                } else {
                    String::new()
                }
            })
            .y_labels(n + 1)
            .x_labels(8)
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 16))
            .light_line_style(RGBColor(240, 240, 240))
            .draw()
            .map_err(e)?;
        for (k, filled) in [(0, true), (1, false)] {
            let colour = BLACK;
            let events: Vec<&Event> = self.events.iter().filter(|ev| ev.filled == filled).collect();
            let drawn = chart
                .draw_series(events.iter().map(|ev| {
                    let c = PALETTE[(ev.row + 1) % PALETTE.len()];
                    let style = if filled { c.filled() } else { c.stroke_width(2) };
                    Circle::new((utc(ev.time_ns), height(ev.row)), 6, style)
                }))
                .map_err(e)?;
            let label = if k == 0 {
                &self.filled_means
            } else {
                &self.hollow_means
            };
            drawn.label(label.as_str()).legend(move |(x, y)| {
                if filled {
                    Circle::new((x + 10, y), 6, colour.filled())
                } else {
                    Circle::new((x + 10, y), 6, colour.stroke_width(2))
                }
            });
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    }
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
            bands: vec![Band {
                start_ns: times[30],
                end_ns: times[60],
                label: "maintenance MNT-1".into(),
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
        render(&p, &png).unwrap();
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
        render(&p, &svg).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        for s in [
            "Q of fiber pair 1, a_to_b",
            "Q (dB)",
            "time (UTC)",
            "step -0.10 dB",
            "channel 2",
            "maintenance MNT-1",
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
        let err = render(&p, &dir.path().join("q.jpg")).unwrap_err();
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
        let err = render(&empty, &path).unwrap_err();
        assert!(matches!(err, PlotError::Empty { .. }), "{err}");
        assert!(!path.exists(), "no file for an empty plot");
    }
}
