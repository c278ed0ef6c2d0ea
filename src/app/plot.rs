//! PNG plots of runs (plotters, bitmap backend, no Python): learning curves, feedback
//! alignment over training, the distribution of plateau differences alpha_t - alpha_f, and a
//! hidden-layer spike raster. The two last ones simulate a few examples from a checkpoint on
//! a copy of the network (`diagnostics`), so they need no trace file.
//!
//! Text is drawn with a TrueType font read at run time: `$APICAL_FONT`, else DejaVu Sans from
//! Debian's `fonts-dejavu-core` (scripts/setup.sh installs it) or the usual other places.

use crate::app::palette::{color, REFERENCE_COLOR};
use crate::base::rng::{stream, Key, Purpose};
use crate::io::atomic::{create_output_dir, PendingFile};
use crate::io::checkpoint::{self, Checkpoint};
use crate::io::mnist::MnistSet;
use crate::io::record::{recorded_spikes, SpikeWindow};
use crate::io::run_dir::{trained, EpochMetrics, RunDir};
use crate::model::neuron::plateau_potential;
use crate::model::phases::phase_lengths;
use crate::run::alignment::{self, AlignmentRecord};
use crate::sim::network::Network;
use crate::sim::observer::{Observer, Phase, StepInfo};
use crate::sim::state::NetState;
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error(
        "no TrueType font found for plot text: set APICAL_FONT to a .ttf file or install fonts-dejavu-core (scripts/setup.sh does); tried {0}"
    )]
    NoFont(String),
    #[error("cannot draw {path}: {problem}")]
    Draw { path: PathBuf, problem: String },
    #[error("{path}: {problem}")]
    Input { path: PathBuf, problem: String },
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
}

const FONT_PLACES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/local/share/fonts/DejaVuSans.ttf",
];

/// Registers the plot font once per process: `$APICAL_FONT` when set (an empty value counts
/// as unset; a font named there that cannot be used is an error, not a reason to use
/// another), else the first DejaVu Sans of the usual system font folders.
pub fn ensure_font() -> Result<(), PlotError> {
    static FONT: OnceLock<Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let places: Vec<(PathBuf, &str)> =
            match std::env::var_os("APICAL_FONT").filter(|v| !v.is_empty()) {
                Some(p) => vec![(PathBuf::from(p), " (APICAL_FONT)")],
                None => FONT_PLACES.iter().map(|p| (PathBuf::from(p), "")).collect(),
            };
        let mut tried: Vec<String> = Vec::new();
        for (p, origin) in places {
            tried.push(format!("{}{origin}", p.display()));
            if let Ok(bytes) = std::fs::read(&p) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return Ok(());
                }
            }
        }
        Err(tried.join(", "))
    })
    .clone()
    .map_err(PlotError::NoFont)
}

fn draw_err<E: std::fmt::Display>(path: &Path) -> impl FnOnce(E) -> PlotError + '_ {
    move |e| PlotError::Draw {
        path: path.to_path_buf(),
        problem: e.to_string(),
    }
}

/// A named line of (x, y) points.
#[derive(Clone, Debug)]
pub(crate) struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// A reference value drawn as a marker at the right edge (the paper's number).
    pub reference: Option<f64>,
    /// Palette index (default: the series' position), to keep colours across charts.
    pub color: Option<usize>,
    /// A shaded band around the line, (x, low, high): the spread over seeds (empty: none).
    pub band: Vec<(f64, f64, f64)>,
    /// Single values drawn as open circles in the series' colour: one per seed where a
    /// line is their mean (empty: none).
    pub dots: Vec<(f64, f64)>,
}

impl Series {
    /// A plain line: no reference marker, default colour, no band.
    pub fn line(name: &str, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.to_string(),
            points,
            reference: None,
            color: None,
            band: Vec::new(),
            dots: Vec::new(),
        }
    }
}

/// How a chart's x axis places its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum XScale {
    Linear,
    /// Logarithmic (every x must be positive): for values spread over a decade or more,
    /// such as learning rates.
    Log,
}

/// `x` with three significant digits and no trailing zeros ("0.05", "0.19", "1.5", "200").
fn significant(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let decimals = (2 - x.abs().log10().floor() as i32).max(0) as usize;
    let t = format!("{x:.decimals$}");
    if t.contains('.') {
        t.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        t
    }
}

/// Several runs of one series (seeds) as one: the mean at each x that any run has, and the
/// band from the smallest to the largest value there (no band for a single run). NaN
/// values are left out.
pub(crate) fn mean_and_spread(name: &str, runs: &[Vec<(f64, f64)>]) -> Series {
    let mut xs: Vec<f64> = runs.iter().flatten().map(|p| p.0).collect();
    xs.sort_by(|a, b| a.total_cmp(b));
    xs.dedup();
    let mut points = Vec::new();
    let mut band = Vec::new();
    for x in xs {
        let v: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.iter().find(|p| p.0 == x).map(|p| p.1))
            .filter(|v| v.is_finite())
            .collect();
        if v.is_empty() {
            continue;
        }
        points.push((x, v.iter().sum::<f64>() / v.len() as f64));
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        band.push((x, lo, hi));
    }
    if runs.len() < 2 {
        band.clear();
    }
    Series {
        band,
        ..Series::line(name, points)
    }
}

const SIZE: (u32, u32) = (900, 520);
/// Width of the legend panel right of a line chart's plotting area.
const LEGEND_WIDTH: u32 = 250;

fn range_of(values: impl Iterator<Item = f64>, pad_to_zero: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if pad_to_zero {
        lo = lo.min(0.0);
    }
    if hi - lo < 1e-9 {
        hi = lo + 1.0;
    }
    let pad = 0.05 * (hi - lo);
    (if pad_to_zero { lo } else { lo - pad }, hi + pad)
}

/// Lines of `series` against x, each with its band (the spread over seeds) shaded in its
/// colour and its reference value marked by a triangle at the right edge; the legend sits
/// in a panel of its own right of the plot, so it never covers a line. Integer x values
/// (epochs) are labelled without decimals.
pub(crate) fn line_chart(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series],
    y_range: Option<(f64, f64)>,
) -> Result<(), PlotError> {
    line_chart_scaled(path, title, x_desc, y_desc, series, y_range, XScale::Linear)
}

/// [`line_chart`] with the x axis `scale`d: on a logarithmic axis the points, bands and
/// dots are placed at log10(x) (non-positive x are left out) and labelled with x.
pub(crate) fn line_chart_scaled(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series],
    y_range: Option<(f64, f64)>,
    scale: XScale,
) -> Result<(), PlotError> {
    ensure_font()?;
    let log = scale == XScale::Log;
    let logged: Vec<Series>;
    let series = if log {
        let lx = |v: &[(f64, f64)]| -> Vec<(f64, f64)> {
            v.iter()
                .filter(|p| p.0 > 0.0)
                .map(|p| (p.0.log10(), p.1))
                .collect()
        };
        logged = series
            .iter()
            .map(|s| Series {
                points: lx(&s.points),
                dots: lx(&s.dots),
                band: s
                    .band
                    .iter()
                    .filter(|b| b.0 > 0.0)
                    .map(|b| (b.0.log10(), b.1, b.2))
                    .collect(),
                ..s.clone()
            })
            .collect();
        &logged[..]
    } else {
        series
    };
    let (x0, mut x1) = range_of(
        series
            .iter()
            .flat_map(|s| s.points.iter().chain(&s.dots).map(|p| p.0)),
        !log,
    );
    let has_ref = series.iter().any(|s| s.reference.is_some());
    if has_ref {
        x1 += 0.08 * (x1 - x0);
    }
    let (y0, y1) = y_range.unwrap_or_else(|| {
        range_of(
            series.iter().flat_map(|s| {
                s.points
                    .iter()
                    .map(|p| p.1)
                    .chain(s.reference)
                    .chain(s.band.iter().flat_map(|b| [b.1, b.2]))
                    .chain(s.dots.iter().map(|p| p.1))
            }),
            true,
        )
    });
    let png = PendingFile::create(path).map_err(draw_err(path))?;
    let tmp = png.temporary().to_path_buf();
    let root = BitMapBackend::new(&tmp, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err(path))?;
    let body = root
        .titled(title, ("sans-serif", 17))
        .map_err(draw_err(path))?;
    let (plot_area, legend_area) = body.split_horizontally(SIZE.0 - LEGEND_WIDTH);
    let mut chart = ChartBuilder::on(&plot_area)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(draw_err(path))?;
    let y_fmt = |x: &f64| {
        if (x - x.round()).abs() < 1e-9 {
            format!("{x:.0}")
        } else {
            format!("{x:.1}")
        }
    };
    let x_fmt = |x: &f64| {
        if log {
            significant(10f64.powf(*x))
        } else {
            y_fmt(x)
        }
    };
    // Whole x values (epochs) over a short range: one label per value, none between.
    let whole_x = !log
        && series
            .iter()
            .flat_map(|s| &s.points)
            .all(|p| (p.0 - p.0.round()).abs() < 1e-9);
    let x_labels = if whole_x && x1 - x0 <= 20.0 {
        (x1 - x0).floor() as usize + 1
    } else {
        10
    };
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_labels(x_labels)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .light_line_style(WHITE)
        .draw()
        .map_err(draw_err(path))?;
    // Bands first, so that every line is drawn over them.
    for (i, s) in series.iter().enumerate() {
        let band: Vec<&(f64, f64, f64)> = s
            .band
            .iter()
            .filter(|b| b.1.is_finite() && b.2.is_finite())
            .collect();
        if band.len() >= 2 {
            let c = color(s.color.unwrap_or(i));
            let outline: Vec<(f64, f64)> = band
                .iter()
                .map(|b| (b.0, b.2))
                .chain(band.iter().rev().map(|b| (b.0, b.1)))
                .collect();
            chart
                .draw_series(std::iter::once(Polygon::new(outline, c.mix(0.18).filled())))
                .map_err(draw_err(path))?;
        }
    }
    for (i, s) in series.iter().enumerate() {
        let c = color(s.color.unwrap_or(i));
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|p| p.1.is_finite())
            .collect();
        // A reference line (chance) is dashed and has no markers: it is not a measurement.
        let reference = s.color == Some(REFERENCE_COLOR);
        if reference {
            chart
                .draw_series(DashedLineSeries::new(pts.clone(), 10, 6, c.stroke_width(2)))
                .map_err(draw_err(path))?;
        } else {
            chart
                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                .map_err(draw_err(path))?;
        }
        if pts.len() <= 80 && !reference {
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))
                .map_err(draw_err(path))?;
        }
        if let Some(r) = s.reference {
            chart
                .draw_series(std::iter::once(TriangleMarker::new((x1, r), 6, c.filled())))
                .map_err(draw_err(path))?;
        }
        chart
            .draw_series(
                s.dots
                    .iter()
                    .filter(|p| p.1.is_finite())
                    .map(|&p| Circle::new(p, 4, c.stroke_width(1))),
            )
            .map_err(draw_err(path))?;
    }
    draw_legend(path, &legend_area, series)?;
    root.present().map_err(draw_err(path))?;
    png.commit().map_err(draw_err(path))
}

/// The legend panel: one line per series in its colour, then what the markers mean.
fn draw_legend(
    path: &Path,
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    series: &[Series],
) -> Result<(), PlotError> {
    let font = ("sans-serif", 13).into_font();
    let row = 19;
    let mut y = 20;
    for (i, s) in series.iter().enumerate() {
        let c = color(s.color.unwrap_or(i));
        area.draw(&PathElement::new(
            vec![(4, y + 7), (26, y + 7)],
            c.stroke_width(3),
        ))
        .map_err(draw_err(path))?;
        area.draw(&Text::new(s.name.clone(), (32, y), font.clone()))
            .map_err(draw_err(path))?;
        y += row;
    }
    y += row / 2;
    let grey = RGBColor(90, 90, 90);
    if series.iter().any(|s| s.band.len() >= 2) {
        area.draw(&Rectangle::new(
            [(4, y + 2), (26, y + 12)],
            grey.mix(0.25).filled(),
        ))
        .map_err(draw_err(path))?;
        area.draw(&Text::new("min-max over seeds", (32, y), font.clone()))
            .map_err(draw_err(path))?;
        y += row;
    }
    if series.iter().any(|s| !s.dots.is_empty()) {
        area.draw(&Circle::new((15, y + 7), 4, grey.stroke_width(1)))
            .map_err(draw_err(path))?;
        area.draw(&Text::new("one seed", (32, y), font.clone()))
            .map_err(draw_err(path))?;
        y += row;
    }
    if series.iter().any(|s| s.reference.is_some()) {
        area.draw(&TriangleMarker::new((15, y + 7), 6, grey.filled()))
            .map_err(draw_err(path))?;
        area.draw(&Text::new("the paper, 60 epochs", (32, y), font))
            .map_err(draw_err(path))?;
    }
    Ok(())
}

/// A histogram of `values` in `bins` equal bins, with the mean and sd in the title.
pub(crate) fn histogram(
    path: &Path,
    title: &str,
    x_desc: &str,
    values: &[f64],
    bins: usize,
) -> Result<(), PlotError> {
    ensure_font()?;
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let (lo, hi) = range_of(finite.iter().copied(), false);
    let bins = bins.max(1);
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    for &v in &finite {
        let b = (((v - lo) / width) as usize).min(bins - 1);
        counts[b] += 1;
    }
    let n = finite.len().max(1) as f64;
    let mean = finite.iter().sum::<f64>() / n;
    let sd = (finite.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.05;
    let png = PendingFile::create(path).map_err(draw_err(path))?;
    let tmp = png.temporary().to_path_buf();
    let root = BitMapBackend::new(&tmp, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err(path))?;
    let caption = format!("{title} (n = {}, mean {mean:.4}, sd {sd:.4})", finite.len());
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(lo..hi, 0.0..top)
        .map_err(draw_err(path))?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("count")
        .y_label_formatter(&|c| format!("{c:.0}"))
        .light_line_style(WHITE)
        .draw()
        .map_err(draw_err(path))?;
    chart
        .draw_series(counts.iter().enumerate().map(|(b, &c)| {
            let x = lo + b as f64 * width;
            Rectangle::new([(x, 0.0), (x + width, c as f64)], color(0).filled())
        }))
        .map_err(draw_err(path))?;
    root.present().map_err(draw_err(path))?;
    png.commit().map_err(draw_err(path))
}

/// Spikes of one layer over a few simulated examples, with the phases shaded.
#[derive(Clone, Debug, Default)]
pub struct Raster {
    /// (time step, neuron) of every spike of the recorded neurons.
    pub spikes: Vec<(u64, u32)>,
    /// Neurons recorded: 0..neurons.
    pub neurons: u32,
    /// (first step, last step + 1, phase) of every phase.
    pub phases: Vec<(u64, u64, Phase)>,
    pub layer: usize,
    /// The layer's population name (hidden0, ..., output), as everywhere else.
    pub population: String,
}

/// Draws a raster (one dot per spike; forward phases white, target phases shaded).
pub(crate) fn raster_chart(path: &Path, title: &str, r: &Raster) -> Result<(), PlotError> {
    ensure_font()?;
    let t1 = r.phases.last().map_or(1, |p| p.1).max(1);
    let png = PendingFile::create(path).map_err(draw_err(path))?;
    let tmp = png.temporary().to_path_buf();
    let root = BitMapBackend::new(&tmp, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err(path))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(0u64..t1, 0u32..r.neurons.max(1))
        .map_err(draw_err(path))?;
    chart
        .configure_mesh()
        .x_desc("time step (ms); shaded: target phases")
        .y_desc(format!("neuron of {}", r.population))
        .disable_mesh()
        .draw()
        .map_err(draw_err(path))?;
    let shade = RGBColor(255, 200, 120).mix(0.35);
    chart
        .draw_series(
            r.phases
                .iter()
                .filter(|p| p.2 == Phase::Target)
                .map(|&(a, b, _)| Rectangle::new([(a, 0), (b, r.neurons.max(1))], shade.filled())),
        )
        .map_err(draw_err(path))?;
    chart
        .draw_series(
            r.spikes
                .iter()
                .map(|&(t, i)| Rectangle::new([(t, i), (t + 1, i + 1)], BLACK.filled())),
        )
        .map_err(draw_err(path))?;
    root.present().map_err(draw_err(path))?;
    png.commit().map_err(draw_err(path))
}

/// Collects the spikes of neurons `0..neurons` of one layer, and the phase boundaries.
struct RasterObserver {
    r: Raster,
    t: u64,
    phase_start: u64,
}

impl Observer for RasterObserver {
    fn reads_apical(&self) -> bool {
        false
    }
    fn on_step(&mut self, info: &StepInfo<'_>) {
        for &i in &info.state.layers[self.r.layer].events {
            if i < self.r.neurons {
                self.r.spikes.push((self.t, i));
            }
        }
        self.t += 1;
    }
    fn on_phase_end(&mut self, phase: Phase, _state: &NetState) {
        self.r.phases.push((self.phase_start, self.t, phase));
        self.phase_start = self.t;
    }
}

/// Streams of the diagnostic simulations: apart from every stream of a run.
const DIAG_KEY: u64 = Key::Diagnostic.value();

/// Prepares a copy of `net` for diagnostic training examples: reset state, own streams.
fn diagnostic_copy(net: &Network, seed: u64) -> Network {
    let mut n = net.clone();
    n.state.reset();
    n.state.reseed(seed, Purpose::TrainSpikes, &[DIAG_KEY]);
    n
}

/// Simulates `examples` training examples (learning included, on a copy) and records the
/// spikes of the first `neurons` neurons of `layer` (the first hidden layer for plots).
pub(crate) fn simulate_raster(
    net: &Network,
    train: &MnistSet,
    seed: u64,
    examples: usize,
    layer: usize,
    neurons: usize,
) -> Raster {
    let mut n = diagnostic_copy(net, seed);
    let neurons = neurons.min(n.params[layer].n) as u32;
    let (l_f, l_t) = phase_lengths(
        &n.model.cfg,
        examples,
        &mut stream(seed, Purpose::PhaseLengths, &[DIAG_KEY]),
    );
    let mut obs = RasterObserver {
        r: Raster {
            neurons,
            layer,
            population: n.model.cfg.topology().population_names()[layer + 1].clone(),
            ..Default::default()
        },
        t: 0,
        phase_start: 0,
    };
    for k in 0..examples.min(train.len()) {
        n.train_example_observed(train.image(k), train.label(k), l_f[k], l_t[k], &mut obs);
    }
    obs.r
}

/// alpha_t - alpha_f (eq. 5.2) of every neuron of each hidden layer over `examples`
/// training examples simulated on a copy of `net` (learning included, as in training).
pub fn plateau_differences(
    net: &Network,
    train: &MnistSet,
    seed: u64,
    examples: usize,
) -> Vec<Vec<f64>> {
    let mut n = diagnostic_copy(net, seed);
    let hidden = n.params.len() - 1;
    let mut out = vec![Vec::new(); hidden];
    let (l_f, l_t) = phase_lengths(
        &n.model.cfg,
        examples,
        &mut stream(seed, Purpose::PhaseLengths, &[DIAG_KEY]),
    );
    for k in 0..examples.min(train.len()) {
        n.train_example(train.image(k), train.label(k), l_f[k], l_t[k]);
        for (m, o) in out.iter_mut().enumerate() {
            let l = &n.state.layers[m];
            o.extend(
                l.target
                    .a
                    .iter()
                    .zip(&l.forward.a)
                    .map(|(&t, &f)| (plateau_potential(t) - plateau_potential(f)) as f64),
            );
        }
    }
    out
}

/// Per-epoch metrics of a run directory (metrics.json).
pub(crate) fn read_metrics(dir: &Path) -> Result<Vec<EpochMetrics>, PlotError> {
    let p = dir.join("metrics.json");
    let text = std::fs::read_to_string(&p).map_err(|e| PlotError::Input {
        path: p.clone(),
        problem: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| PlotError::Input {
        path: p,
        problem: format!("not a metrics file: {e}"),
    })
}

/// Alignment records of a run directory (alignment.csv; empty if absent).
pub(crate) fn read_alignment(dir: &Path) -> Vec<AlignmentRecord> {
    std::fs::read_to_string(dir.join(alignment::FILE_NAME))
        .map(|t| alignment::parse_csv(&t))
        .unwrap_or_default()
}

/// Test error after each epoch (x: the epoch), from a run's metrics; from epoch 0, the
/// initial network's test, when the run has it.
pub(crate) fn learning_series(
    name: &str,
    metrics: &[EpochMetrics],
    reference: Option<f64>,
) -> Series {
    let points = metrics
        .iter()
        .map(|m| (m.record.epoch as f64, m.record.test_error))
        .collect();
    Series {
        reference,
        ..Series::line(name, points)
    }
}

/// The error of a guess among `classes` classes (90 % for ten), drawn from epoch 0 to
/// `last_epoch` in grey: where an untrained network's curve starts, for runs without a test
/// of the initial network (`training.test_initial = false`, or runs older than it). None
/// when every curve has its epoch 0 measured, and when every point of `curves` lies below a
/// quarter of chance: the line would press the curves into the bottom of the chart (a
/// 60-epoch run of 1-8 % under a 90 % line).
pub(crate) fn chance_series(curves: &[Series], classes: usize, last_epoch: f64) -> Option<Series> {
    let measured = |c: &Series| c.points.iter().any(|p| p.0 == 0.0 && p.1.is_finite());
    if curves.iter().all(measured) {
        return None;
    }
    let chance = 100.0 * (1.0 - 1.0 / classes.max(1) as f64);
    let top = curves
        .iter()
        .flat_map(|c| c.points.iter().chain(&c.dots).map(|p| p.1))
        .fold(0.0f64, f64::max);
    (top >= chance / 4.0).then(|| Series {
        color: Some(REFERENCE_COLOR),
        ..Series::line(
            &format!("chance ({chance:.0} %), an untrained guess"),
            vec![(0.0, chance), (last_epoch.max(1.0), chance)],
        )
    })
}

/// The update angle of hidden layer `layer` per epoch.
pub(crate) fn alignment_series(name: &str, records: &[AlignmentRecord], layer: usize) -> Series {
    Series::line(
        name,
        records
            .iter()
            .filter(|r| r.layer == layer)
            .map(|r| (r.epoch as f64, r.update_angle_deg))
            .collect(),
    )
}

/// Trace points of a run directory (alignment_trace.csv; empty if absent).
pub fn read_alignment_trace(dir: &Path) -> Vec<alignment::TracePoint> {
    std::fs::read_to_string(dir.join(alignment::TRACE_FILE_NAME))
        .map(|t| alignment::parse_trace_csv(&t))
        .unwrap_or_default()
}

/// The update angle of hidden layer `layer` against training progress in epochs (epoch e,
/// example k of n: e - 1 + k / n), each point the mean of `group` consecutive blocks of the
/// trace (weighted by their examples; the x of the group's last block), so that a long
/// trace stays readable: 10 blocks of 100 make one point per 1,000 examples.
pub(crate) fn alignment_trace_series(
    name: &str,
    points: &[alignment::TracePoint],
    layer: usize,
    examples_per_epoch: usize,
    group: usize,
) -> Series {
    let n = examples_per_epoch.max(1) as f64;
    let blocks: Vec<&alignment::TracePoint> = points
        .iter()
        .filter(|p| p.layer == layer && p.update_angle_deg.is_finite())
        .collect();
    let line = blocks
        .chunks(group.max(1))
        .filter_map(|g| {
            let count: usize = g.iter().map(|p| p.update_examples).sum();
            let last = g.last()?;
            let sum: f64 = g
                .iter()
                .map(|p| p.update_angle_deg * p.update_examples as f64)
                .sum();
            (count > 0).then(|| {
                (
                    (last.epoch - 1) as f64 + last.example as f64 / n,
                    sum / count as f64,
                )
            })
        })
        .collect();
    Series::line(name, line)
}

/// The network of a run's latest checkpoint, restored exactly as the run saved it.
pub(crate) fn load_latest(dir: &Path) -> Result<(Network, Checkpoint), PlotError> {
    let (net, ck, _) =
        RunDir::open(dir)
            .and_then(|r| r.restore())
            .map_err(|e| PlotError::Input {
                path: dir.to_path_buf(),
                problem: e.to_string(),
            })?;
    Ok((net, ck))
}

/// Plateau-difference histogram and spike rasters of a trained network (every hidden layer;
/// the output layer's raster for a network without hidden layers; no raster in the rate
/// mode). A raster shows the last examples of the trace file `traces` when it recorded
/// that layer's spikes, else a few examples simulated from the network. Returns the files.
pub(crate) fn network_plots(
    net: &Network,
    train: &MnistSet,
    seed: u64,
    examples: usize,
    out: &Path,
    label: &str,
    traces: Option<&Path>,
) -> Result<Vec<PathBuf>, PlotError> {
    let mut files = Vec::new();
    let hidden = net.params.len() - 1;
    // The first hidden layer's file keeps its name; deeper layers get their own files.
    let file = |stem: &str, m: usize| {
        out.join(if m == 0 {
            format!("{stem}.png")
        } else {
            format!("{stem}_hidden{m}.png")
        })
    };
    if hidden > 0 {
        let diffs = plateau_differences(net, train, seed, examples);
        for (m, d) in diffs.iter().enumerate().take(hidden) {
            let p = file("plateau_differences", m);
            histogram(
                &p,
                &format!("{label}: alpha_t - alpha_f, hidden{m}, {examples} examples"),
                "plateau difference alpha_t - alpha_f",
                d,
                60,
            )?;
            files.push(p);
        }
    }
    if net.model.cfg.neuron.mode == crate::model::config::NeuronMode::Rate {
        // The rate mode (section 9) has no spikes to draw.
        return Ok(files);
    }
    // Every hidden layer (the output layer of a network without one): the spikes the run
    // recorded when its trace file has them, else simulated from the checkpoint.
    let shown = examples.clamp(1, 3);
    for m in 0..hidden.max(1) {
        let population = net.model.cfg.topology().population_names()[m + 1].clone();
        let recorded = traces
            .and_then(|t| recorded_spikes(t, &population, shown).ok().flatten())
            .map(|w| recorded_raster(&w, m, &population, 100.min(net.params[m].n as u64)));
        let (raster, title) = match recorded {
            Some((r, what)) => {
                let title = format!(
                    "{label}: recorded spikes of the first {} neurons of {}, {what} (traces.h5)",
                    r.neurons, r.population
                );
                (r, title)
            }
            None => {
                let r = simulate_raster(net, train, seed, shown, m, 100);
                let title = format!(
                    "{label}: spikes of the first {} neurons of {}, {shown} examples simulated from the last checkpoint",
                    r.neurons, r.population
                );
                (r, title)
            }
        };
        let p = file("raster", m);
        raster_chart(&p, &title, &raster)?;
        files.push(p);
    }
    Ok(files)
}

/// A raster of the first `neurons` neurons (at most the layer's) of layer `layer` from
/// spikes read back from a trace file, with the examples' phases; and which examples they are ("epoch 3, examples
/// 998-1000").
pub(crate) fn recorded_raster(
    w: &SpikeWindow,
    layer: usize,
    population: &str,
    neurons: u64,
) -> (Raster, String) {
    let t0 = w.examples.first().map_or(0.0, |e| e.start_ms);
    let step = |t: f64| ((t - t0) / w.dt).round().max(0.0) as u64;
    let mut phases = Vec::new();
    for e in &w.examples {
        let a = step(e.start_ms);
        let b = a + u64::from(e.forward_steps);
        phases.push((a, b, Phase::Forward));
        phases.push((b, b + u64::from(e.target_steps), Phase::Target));
    }
    let r = Raster {
        spikes: w
            .spikes
            .iter()
            .filter(|s| s.1 < neurons)
            .map(|&(t, i)| (step(t), i as u32))
            .collect(),
        neurons: neurons as u32,
        phases,
        layer,
        population: population.to_string(),
    };
    let what = match (w.examples.first(), w.examples.last()) {
        (Some(a), Some(b)) if w.examples.len() > 1 => format!(
            "epoch {}, examples {}-{}",
            b.epoch,
            a.example + 1,
            b.example + 1
        ),
        (Some(a), _) => format!("epoch {}, example {}", a.epoch, a.example + 1),
        _ => String::new(),
    };
    (r, what)
}

/// `apical plot RUN_DIR`: every plot of one run into RUN_DIR/plots/. `train` is needed for
/// the plots that simulate examples from the latest checkpoint.
pub fn plot_run(dir: &Path, train: &MnistSet, examples: usize) -> Result<Vec<PathBuf>, PlotError> {
    let out = dir.join("plots");
    create_output_dir(&out).map_err(|e| PlotError::Input {
        path: out.clone(),
        problem: e.to_string(),
    })?;
    let metrics = read_metrics(dir)?;
    let (net, ck) = load_latest(dir)?;
    let name = net.model.cfg.name.clone();
    let mut files = Vec::new();
    let p = out.join("learning_curve.png");
    let test = learning_series("test error", &metrics, None);
    let mut curves = vec![
        // Nothing is trained in epoch 0 (the initial test): no training error there.
        Series::line(
            "training error (running)",
            trained(&metrics)
                .iter()
                .map(|m| (m.record.epoch as f64, m.record.train_error))
                .collect(),
        ),
    ];
    // The chance line stands in for epoch 0 only where the test curve lacks it.
    let chance = chance_series(
        std::slice::from_ref(&test),
        net.model.cfg.network.classes,
        metrics.last().map_or(1.0, |m| m.record.epoch as f64),
    );
    curves.insert(0, test);
    curves.extend(chance);
    line_chart(
        &p,
        &format!(
            "{name}: test error before training and after each epoch, training error during each"
        ),
        "epoch",
        "error (%)",
        &curves,
        None,
    )?;
    files.push(p);
    let records = read_alignment(dir);
    if !records.is_empty() {
        let hidden = records.iter().map(|r| r.layer).max().unwrap_or(0) + 1;
        let mut series: Vec<Series> = (0..hidden)
            .map(|m| alignment_series(&format!("update vs backprop, hidden{m}"), &records, m))
            .collect();
        for m in 0..hidden {
            series.push(Series::line(
                &format!("Y vs W^T, hidden{m}"),
                records
                    .iter()
                    .filter(|r| r.layer == m)
                    .map(|r| (r.epoch as f64, r.feedback_angle_deg))
                    .collect(),
            ));
        }
        let p = out.join("alignment.png");
        line_chart(
            &p,
            &format!("{name}: feedback alignment (angles, degrees)"),
            "epoch",
            "angle (degrees)",
            &series,
            Some((0.0, 120.0)),
        )?;
        files.push(p);
    }
    let trace = read_alignment_trace(dir);
    if !trace.is_empty() {
        let per_epoch = metrics.last().map_or(1, |m| m.record.train_examples);
        let hidden = trace.iter().map(|t| t.layer).max().unwrap_or(0) + 1;
        let series: Vec<Series> = (0..hidden)
            .map(|m| alignment_trace_series(&format!("hidden{m}"), &trace, m, per_epoch, 10))
            .collect();
        let p = out.join("alignment_trace.png");
        line_chart(
            &p,
            &format!("{name}: hidden update vs backprop's, mean of each 1,000 examples"),
            "epoch",
            "angle (degrees)",
            &series,
            Some((0.0, 120.0)),
        )?;
        files.push(p);
    }
    let traces = dir.join("traces.h5");
    files.extend(network_plots(
        &net,
        train,
        ck.seed,
        examples,
        &out,
        &name,
        traces.is_file().then_some(traces.as_path()),
    )?);
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_measured_epoch_0_starts_the_curve_and_replaces_the_chance_line() {
        let row = |epoch, test_error| EpochMetrics {
            record: crate::io::checkpoint::EpochRecord {
                epoch,
                train_examples: 10,
                train_error: 50.0,
                test_examples: 10,
                test_error,
                rates_hz: vec![1.0],
            },
            wall_seconds: 1.0,
            train_seconds: 1.0,
            test_seconds: 0.0,
            seconds_per_train_example: 0.1,
            burst_probability: Vec::new(),
        };
        let with = vec![EpochMetrics::initial(10, 88.0, 0.5), row(1, 40.0)];
        let curve = learning_series("test", &with, None);
        assert_eq!(curve.points, [(0.0, 88.0), (1.0, 40.0)]);
        assert!(chance_series(&[curve], 10, 1.0).is_none());
        // A run without the initial test (older, or test_initial = false) keeps the line.
        let without = learning_series("test", &with[1..], None);
        let chance = chance_series(&[without], 10, 1.0).expect("the chance line");
        assert_eq!(chance.points, [(0.0, 90.0), (1.0, 90.0)]);
        assert_eq!(trained(&with).len(), 1);
    }

    #[test]
    fn log_axis_labels_have_three_significant_digits() {
        for (x, text) in [
            (0.05, "0.05"),
            (0.19, "0.19"),
            (0.2134, "0.213"),
            (1.5, "1.5"),
            (200.0, "200"),
            (1234.0, "1234"),
        ] {
            assert_eq!(significant(x), text, "{x}");
        }
    }

    #[test]
    fn a_recorded_raster_places_spikes_and_phases_from_the_first_example() {
        let e = |example, start_ms| crate::io::record::ExampleSpan {
            epoch: 2,
            example,
            start_ms,
            forward_steps: 3,
            target_steps: 2,
        };
        let w = SpikeWindow {
            dt: 0.5,
            examples: vec![e(8, 100.0), e(9, 102.5)],
            spikes: vec![(100.0, 4), (101.5, 150), (102.5, 0), (104.5, 4)],
        };
        let (r, what) = recorded_raster(&w, 0, "hidden0", 100);
        assert_eq!(what, "epoch 2, examples 9-10");
        assert_eq!(r.spikes, vec![(0, 4), (5, 0), (9, 4)]);
        assert_eq!(
            r.phases,
            vec![
                (0, 3, Phase::Forward),
                (3, 5, Phase::Target),
                (5, 8, Phase::Forward),
                (8, 10, Phase::Target)
            ]
        );
        assert_eq!((r.neurons, r.population.as_str()), (100, "hidden0"));
    }
}
