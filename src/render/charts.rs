//! Charts, drawn by plotters on its SVG backend: line plots (faithfulness curves: normalised
//! faithfulness against the number of edges, linear or log x, a dashed reference line at 1.0),
//! scatter plots, and grouped bar charts (edges per layer, histograms).
//!
//! plotters draws the axes, grid, ticks, labels, bars, lines and markers. What is ours is the
//! layout around them: the margins are sized from the labels with [`text_width`] (so no label
//! is cut or overlaps another), the ticks are "nice" (1, 2, 5 × 10^k; on a log axis decades,
//! with 2 and 5 when it spans at most two, and counts written 10k), x labels are thinned until
//! they fit their spacing, and the legend sits in a column right of the plot area, where it
//! hides no data. Colours are the Okabe–Ito palette and each series also gets its own dash
//! pattern and marker, so curves stay distinguishable in greyscale and for colour-blind readers.

use std::path::Path;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::svg::{sig3, text_width, FONT_FAMILY};
use crate::error::{Error, Result};

/// Okabe–Ito colours, in order of use.
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xCC, 0x79, 0xA7),
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0x56, 0xB4, 0xE9),
    RGBColor(0x00, 0x00, 0x00),
];
/// Each series' line: solid, then (dash, gap) in px.
const DASHES: [Option<(u32, u32)>; 4] = [None, Some((7, 4)), Some((2, 3)), Some((12, 3))];
const INK: RGBColor = RGBColor(0x11, 0x11, 0x11);
const TICK_INK: RGBColor = RGBColor(0x33, 0x33, 0x33);
const GRID: RGBColor = RGBColor(0xE5, 0xE5, 0xE5);
const REFERENCE: RGBColor = RGBColor(0x44, 0x44, 0x44);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    Linear,
    /// Base-10 log; points with x ≤ 0 are left out.
    Log,
}

/// One named curve: (x, y) points, drawn in the given order.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

impl Series {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series { name: name.into(), points }
    }
}

#[derive(Clone, Debug)]
pub struct LinePlot {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_scale: Scale,
    pub series: Vec<Series>,
    /// A dashed horizontal line and its legend label, e.g. (1.0, "full model").
    pub reference: Option<(f64, String)>,
    /// Size of the plot area (axes box) in px; margins are added around it.
    pub plot_width: f64,
    pub plot_height: f64,
    pub font_size: f64,
    /// Join each series' points with a line (false: a scatter plot of markers).
    pub lines: bool,
}

impl LinePlot {
    pub fn new(title: impl Into<String>, x_label: impl Into<String>, y_label: impl Into<String>) -> Self {
        LinePlot {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            x_scale: Scale::Linear,
            series: Vec::new(),
            reference: None,
            plot_width: 480.0,
            plot_height: 300.0,
            font_size: 12.0,
            lines: true,
        }
    }

    /// A scatter plot: markers only, square plot area.
    pub fn scatter(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
        series: Vec<Series>,
    ) -> Self {
        let mut p = LinePlot::new(title, x_label, y_label);
        p.series = series;
        p.lines = false;
        p.plot_width = p.plot_height;
        p
    }

    /// The faithfulness-curve plot: log x (edges), y = normalised faithfulness, dashed line at 1.
    pub fn faithfulness(title: impl Into<String>, curves: Vec<Series>) -> Self {
        let mut p = LinePlot::new(title, "edges in circuit", "normalised faithfulness");
        p.x_scale = Scale::Log;
        p.series = curves;
        p.reference = Some((1.0, "full model (1.0)".into()));
        p
    }

    /// A series' drawable points, in axis units (log10 x on a log axis).
    fn drawable(&self, s: &Series) -> Vec<(f64, f64)> {
        s.points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite() && (self.x_scale == Scale::Linear || *x > 0.0))
            .map(|&(x, y)| (if self.x_scale == Scale::Log { x.log10() } else { x }, y))
            .collect()
    }

    pub fn to_svg(&self) -> Result<String> {
        let fs = self.font_size;
        // the axes span the points drawn (on a log axis, a point at x = 0 is not)
        let drawn: Vec<(f64, f64)> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|(x, y)| x.is_finite() && y.is_finite() && (self.x_scale == Scale::Linear || *x > 0.0))
            .collect();
        let xs: Vec<f64> = drawn.iter().map(|p| p.0).collect();
        let mut ys: Vec<f64> = drawn.iter().map(|p| p.1).collect();
        if let Some((r, _)) = &self.reference {
            ys.push(*r);
        }
        ys.push(0.0); // faithfulness and counts read best from 0
        let x_axis = match self.x_scale {
            Scale::Linear => Axis::linear(&xs),
            Scale::Log => Axis::log(&xs),
        };
        // curves (faithfulness) may pass 1 and want room above; a scatter spans its data
        let y_axis = if self.lines { Axis::linear_with_headroom(&ys) } else { Axis::linear(&ys) };
        let x_shown = x_axis.fitting(self.plot_width, fs);

        let mut legend: Vec<(LegendMark, &str)> = self
            .series
            .iter()
            .enumerate()
            .map(|(i, s)| (if self.lines { LegendMark::Series(i) } else { LegendMark::Points(i) }, s.name.as_str()))
            .collect();
        if let Some((_, label)) = &self.reference {
            legend.push((LegendMark::Reference, label.as_str()));
        }
        let layout = Layout::new(fs, &self.title, &y_axis, self.plot_width, self.plot_height, &legend);
        let axes = Axes {
            x: &x_axis,
            x_shown: &x_shown,
            y: &y_axis,
            x_label: &self.x_label,
            y_label: &self.y_label,
            x_grid: true,
        };
        layout.draw(&self.title, &legend, &axes, |chart| {
            if let Some((r, _)) = &self.reference {
                chart.draw_series(DashedLineSeries::new(
                    [(x_axis.lo, *r), (x_axis.hi, *r)],
                    6,
                    4,
                    REFERENCE.stroke_width(1),
                ))?;
            }
            let size = if self.lines { 0.33 * fs } else { 0.2 * fs }.round().max(2.0) as i32;
            for (i, s) in self.series.iter().enumerate() {
                let pts = self.drawable(s);
                if self.lines {
                    let style = PALETTE[i % PALETTE.len()].stroke_width(2);
                    match DASHES[i % DASHES.len()] {
                        None => chart.draw_series(LineSeries::new(pts.iter().copied(), style))?,
                        Some((dash, gap)) => {
                            chart.draw_series(DashedLineSeries::new(pts.iter().copied(), dash, gap, style))?
                        }
                    };
                }
                for &p in &pts {
                    draw_marker(chart.plotting_area(), i, p, size)?;
                }
            }
            Ok(())
        })
    }

    /// Writes the picture as the path's extension asks: .svg, .pdf or .png.
    pub fn write(&self, path: &Path) -> Result<()> {
        super::write_picture(path, &self.to_svg()?)
    }
}

/// A grouped bar chart: one group per category, one bar per series in each group.
#[derive(Clone, Debug)]
pub struct BarChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub categories: Vec<String>,
    /// (name, one value per category).
    pub series: Vec<(String, Vec<f64>)>,
    pub plot_height: f64,
    pub font_size: f64,
}

impl BarChart {
    pub fn new(title: impl Into<String>, x_label: impl Into<String>, y_label: impl Into<String>) -> Self {
        BarChart {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            categories: Vec::new(),
            series: Vec::new(),
            plot_height: 260.0,
            font_size: 12.0,
        }
    }

    pub fn to_svg(&self) -> Result<String> {
        let fs = self.font_size;
        let n_cat = self.categories.len().max(1);
        let n_series = self.series.len().max(1);
        let bar_w = (fs * 1.2 / (n_series as f64).sqrt()).max(3.0);
        let group_w = bar_w * n_series as f64 + fs * 0.8;
        let plot_w = (group_w * n_cat as f64).max(360.0);
        let mut ys: Vec<f64> =
            self.series.iter().flat_map(|(_, v)| v.iter().copied()).filter(|y| y.is_finite()).collect();
        ys.push(0.0);
        let y_axis = Axis::linear_with_headroom(&ys);
        // x runs over [0, n_cat): category c is the slot [c, c + 1), labelled at its middle
        let slot = plot_w / n_cat as f64;
        let widest = self.categories.iter().map(|c| text_width(c, fs, false)).fold(0.0, f64::max);
        let every = ((widest + 0.5 * fs) / slot).ceil().max(1.0) as usize;
        let x_axis = Axis {
            lo: 0.0,
            hi: n_cat as f64,
            log: false,
            ticks: self.categories.iter().enumerate().map(|(c, name)| (c as f64 + 0.5, name.clone())).collect(),
        };
        let x_shown: Vec<(f64, String)> = x_axis.ticks.iter().step_by(every).cloned().collect();
        let legend: Vec<(LegendMark, &str)> =
            self.series.iter().enumerate().map(|(i, (name, _))| (LegendMark::Bar(i), name.as_str())).collect();
        let layout = Layout::new(fs, &self.title, &y_axis, plot_w, self.plot_height, &legend);
        let bar = bar_w / slot; // in x units
        let axes = Axes {
            x: &x_axis,
            x_shown: &x_shown,
            y: &y_axis,
            x_label: &self.x_label,
            y_label: &self.y_label,
            x_grid: false,
        };
        layout.draw(&self.title, &legend, &axes, |chart| {
            for (si, (_, values)) in self.series.iter().enumerate() {
                let colour = PALETTE[si % PALETTE.len()].filled();
                chart.draw_series(
                    values.iter().take(self.categories.len()).enumerate().filter(|(_, v)| v.is_finite()).map(
                        |(ci, &v)| {
                            let x0 = ci as f64 + (1.0 - bar * n_series as f64) / 2.0 + si as f64 * bar;
                            Rectangle::new([(x0, 0.0), (x0 + bar, v)], colour)
                        },
                    ),
                )?;
            }
            Ok(())
        })
    }

    /// Writes the picture as the path's extension asks: .svg, .pdf or .png.
    pub fn write(&self, path: &Path) -> Result<()> {
        super::write_picture(path, &self.to_svg()?)
    }
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<Ticked, Ticked>>;
type DrawResult<T> = std::result::Result<T, Box<dyn std::error::Error + 'static>>;

/// A chart's axes: the x ticks that keep their labels, the axis titles, and whether vertical
/// grid lines are drawn (not between bars).
struct Axes<'a> {
    x: &'a Axis,
    x_shown: &'a [(f64, String)],
    y: &'a Axis,
    x_label: &'a str,
    y_label: &'a str,
    x_grid: bool,
}

/// Grid lines and labelled ticks at the axes' shown ticks, tick labels and axis titles.
fn mesh(chart: &mut Chart<'_, '_>, fs: f64, axes: &Axes) -> DrawResult<()> {
    let x_names = |v: &f64| axes.x.label_at(*v);
    let y_names = |v: &f64| axes.y.label_at(*v);
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(axes.x_label)
        .y_desc(axes.y_label)
        .axis_desc_style(font(fs).color(&INK))
        .label_style(font(fs).color(&TICK_INK))
        .x_label_formatter(&x_names)
        .y_label_formatter(&y_names)
        .bold_line_style(GRID.stroke_width(1))
        .light_line_style(TRANSPARENT)
        .axis_style(TICK_INK.stroke_width(1))
        .set_all_tick_mark_size(4);
    if !axes.x_grid {
        mesh.disable_x_mesh();
    }
    mesh.draw()?;
    Ok(())
}

/// Our font stack at `px` pixels (plotters writes a font's size divided by 1.24).
fn font(px: f64) -> TextStyle<'static> {
    TextStyle::from(FontDesc::new(FontFamily::Name(FONT_FAMILY), px * 1.24, FontStyle::Normal))
}

fn bold_font(px: f64) -> TextStyle<'static> {
    TextStyle::from(FontDesc::new(FontFamily::Name(FONT_FAMILY), px * 1.24, FontStyle::Bold))
}

/// The SVG with each `font-size` to two decimals at most: plotters' division by 1.24 does
/// not always give back the size asked for (`15.600000000000001`).
fn tidy_font_sizes(svg: &str) -> String {
    const KEY: &str = "font-size=\"";
    let mut out = String::with_capacity(svg.len());
    let mut rest = svg;
    while let Some(i) = rest.find(KEY) {
        let start = i + KEY.len();
        let Some(len) = rest[start..].find('"') else { break };
        out.push_str(&rest[..start]);
        match rest[start..start + len].parse::<f64>() {
            Ok(v) => out.push_str(format!("{v:.2}").trim_end_matches('0').trim_end_matches('.')),
            Err(_) => out.push_str(&rest[start..start + len]),
        }
        rest = &rest[start + len..];
    }
    out.push_str(rest);
    out
}

/// Draws series i's marker at `at` (a data or pixel coordinate of the area): circle, square,
/// triangle, diamond, in its colour with a white centre.
fn draw_marker<CT: CoordTranslate>(
    area: &DrawingArea<SVGBackend<'_>, CT>,
    i: usize,
    at: CT::From,
    r: i32,
) -> DrawResult<()>
where
    CT::From: Clone,
{
    let colour = PALETTE[i % PALETTE.len()];
    let (fill, stroke) = (WHITE.filled(), colour.stroke_width(2));
    let at = EmptyElement::at(at);
    let scaled = |k: f64| (k * r as f64).round() as i32;
    match i % 4 {
        0 => area.draw(&(at + Circle::new((0, 0), r, fill) + Circle::new((0, 0), r, stroke)))?,
        1 => {
            area.draw(&(at + Rectangle::new([(-r, -r), (r, r)], fill) + Rectangle::new([(-r, -r), (r, r)], stroke)))?
        }
        k => {
            let corners = if k == 2 {
                vec![(0, -scaled(1.2)), (scaled(1.1), scaled(0.8)), (-scaled(1.1), scaled(0.8)), (0, -scaled(1.2))]
            } else {
                let d = scaled(1.3);
                vec![(0, -d), (d, 0), (0, d), (-d, 0), (0, -d)]
            };
            area.draw(&(at + Polygon::new(corners.clone(), fill) + PathElement::new(corners, stroke)))?
        }
    }
    Ok(())
}

/// The label of the log tick m × 10^d: plain from 0.01 to 1000, then k and M (counts of
/// edges read best that way), scientific beyond.
fn log_label(m: f64, d: i32) -> String {
    let m = m as u32;
    match d {
        -2..=3 => sig3(m as f64 * 10f64.powi(d)),
        4..=5 => format!("{}k", m * 10u32.pow((d - 3) as u32)),
        6..=8 => format!("{}M", m * 10u32.pow((d - 6) as u32)),
        _ => format!("{m}e{d}"),
    }
}

/// An axis: its data range (in log10 units for log) and its ticks (value in those units, label).
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
    ticks: Vec<(f64, String)>,
}

impl Axis {
    /// A linear axis covering the values, extended to "nice" ticks (1, 2, 5 × 10^k), about 6.
    fn linear(values: &[f64]) -> Axis {
        let (mut lo, mut hi) =
            values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        if hi - lo < 1e-12 {
            hi = lo + 1.0;
        }
        let raw = (hi - lo) / 5.0;
        let mag = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw * 0.999).unwrap_or(10.0 * mag);
        let (lo, hi) = ((lo / step + 1e-9).floor() * step, (hi / step - 1e-9).ceil() * step);
        let n = ((hi - lo) / step).round() as usize;
        let ticks = (0..=n)
            .map(|k| {
                let v = lo + k as f64 * step;
                let v = if v.abs() < step * 1e-9 { 0.0 } else { v };
                (v, sig3(v))
            })
            .collect();
        Axis { lo, hi, log: false, ticks }
    }

    /// A base-10 log axis from the decade below the smallest value to the decade above the
    /// largest; ticks at powers of ten, plus 2 and 5 when it spans at most two decades.
    fn log(values: &[f64]) -> Axis {
        let (mut lo, mut hi) =
            values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        if !lo.is_finite() {
            (lo, hi) = (1.0, 10.0);
        }
        let (d0, mut d1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
        if d1 == d0 {
            d1 += 1;
        }
        let minors: &[f64] = if d1 - d0 <= 2 { &[1.0, 2.0, 5.0] } else { &[1.0] };
        let mut ticks = Vec::new();
        for d in d0..=d1 {
            for &m in minors {
                let v = m * 10f64.powi(d);
                if v <= 10f64.powi(d1) * 1.000001 {
                    ticks.push((v.log10(), log_label(m, d)));
                }
            }
        }
        Axis { lo: d0 as f64, hi: d1 as f64, log: true, ticks }
    }

    /// A linear axis with headroom above the largest value (3 % of the range) so that curves
    /// and reference lines at the maximum do not sit on the frame.
    fn linear_with_headroom(values: &[f64]) -> Axis {
        let (lo, hi) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        if !lo.is_finite() || hi - lo < 1e-12 {
            return Axis::linear(values);
        }
        let mut padded = values.to_vec();
        padded.push(hi + 0.03 * (hi - lo));
        Axis::linear(&padded)
    }

    /// The ticks that keep their labels along `length` px: every k-th, the smallest k at which
    /// neighbouring labels stay 0.6 em apart.
    fn fitting(&self, length: f64, fs: f64) -> Vec<(f64, String)> {
        let pos: Vec<f64> = self.ticks.iter().map(|(t, _)| (t - self.lo) / (self.hi - self.lo) * length).collect();
        let fits = |every: usize| {
            let shown: Vec<usize> = (0..self.ticks.len()).step_by(every).collect();
            shown.windows(2).all(|p| {
                let need =
                    (text_width(&self.ticks[p[0]].1, fs, false) + text_width(&self.ticks[p[1]].1, fs, false)) / 2.0;
                pos[p[1]] - pos[p[0]] >= need + 0.6 * fs
            })
        };
        let every = (1..self.ticks.len().max(1)).find(|&k| fits(k)).unwrap_or(self.ticks.len().max(1));
        self.ticks.iter().step_by(every).cloned().collect()
    }

    /// plotters' coordinate for the axis, with `shown` as its labelled ticks.
    fn range(&self, shown: &[(f64, String)]) -> Ticked {
        Ticked { lo: self.lo, hi: self.hi, ticks: shown.iter().map(|t| t.0).collect() }
    }

    fn label_at(&self, v: f64) -> String {
        match self.ticks.iter().find(|(t, _)| (t - v).abs() <= 1e-9 * (1.0 + t.abs())) {
            Some((_, label)) => label.clone(),
            None if self.log => sig3(10f64.powf(v)),
            None => sig3(v),
        }
    }
}

/// A linear plotters coordinate whose key points (grid lines and labels) are given ticks.
struct Ticked {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let t = (v - self.lo) / (self.hi - self.lo);
        limit.0 + ((limit.1 - limit.0) as f64 * t).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        // no light grid between the ticks
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

enum LegendMark {
    Series(usize),
    /// a scatter series: its marker alone
    Points(usize),
    Bar(usize),
    Reference,
}

/// A chart's canvas in px: the title on top, the chart (plot area with its label areas) below
/// it, the legend column on the right.
struct Layout {
    fs: f64,
    margin: f64,
    /// Top of the chart area, below the title.
    top: f64,
    width: u32,
    height: u32,
    /// Widths of the y label area (rotated title and tick labels) and height of the x one.
    y_area: f64,
    x_area: f64,
    legend_w: f64,
}

impl Layout {
    fn new(fs: f64, title: &str, y_axis: &Axis, plot_w: f64, plot_h: f64, legend: &[(LegendMark, &str)]) -> Layout {
        let margin = 1.2 * fs;
        let tick_w = y_axis.ticks.iter().map(|(_, l)| text_width(l, fs, false)).fold(0.0, f64::max);
        let y_area = 1.6 * fs + tick_w + 0.9 * fs;
        let x_area = 3.6 * fs;
        let top = margin + 1.3 * fs * 1.35 + 1.2 * fs;
        let legend_w = if legend.is_empty() {
            0.0
        } else {
            1.5 * fs + legend.iter().map(|(_, l)| text_width(l, fs, false)).fold(0.0, f64::max) + 3.8 * fs
        };
        let width =
            (margin + y_area + plot_w + legend_w + margin).max(margin * 2.0 + text_width(title, 1.3 * fs, true));
        let height = (top + plot_h + x_area + margin).max(top + legend.len() as f64 * 1.6 * fs + x_area + margin);
        Layout { fs, margin, top, width: width.ceil() as u32, height: height.ceil() as u32, y_area, x_area, legend_w }
    }

    /// The chart as SVG: the title; the axes, grid and labels; what `series` draws on them; the
    /// frame; and the legend beside the plot area.
    fn draw<F>(&self, title: &str, legend: &[(LegendMark, &str)], axes: &Axes, series: F) -> Result<String>
    where
        F: FnOnce(&mut Chart<'_, '_>) -> DrawResult<()>,
    {
        let mut svg = String::new();
        self.draw_into(&mut svg, title, legend, axes, series)
            .map_err(|e| Error::input(format!("drawing the chart \"{title}\": {e}")))?;
        Ok(tidy_font_sizes(&svg))
    }

    fn draw_into<F>(
        &self,
        svg: &mut String,
        title: &str,
        legend: &[(LegendMark, &str)],
        axes: &Axes,
        series: F,
    ) -> DrawResult<()>
    where
        F: FnOnce(&mut Chart<'_, '_>) -> DrawResult<()>,
    {
        let fs = self.fs;
        let root = SVGBackend::with_string(svg, (self.width, self.height)).into_drawing_area();
        root.fill(&WHITE)?;
        let title_style = bold_font(1.3 * fs).color(&INK).pos(Pos::new(HPos::Left, VPos::Top));
        root.draw(&Text::new(title.to_string(), (self.margin as i32, self.margin as i32), title_style))?;
        let chart_area =
            root.margin(self.top as i32, self.margin as i32, self.margin as i32, (self.legend_w + self.margin) as i32);
        let mut chart = ChartBuilder::on(&chart_area)
            .x_label_area_size(self.x_area)
            .y_label_area_size(self.y_area)
            .build_cartesian_2d(axes.x.range(axes.x_shown), axes.y.range(&axes.y.ticks))?;
        mesh(&mut chart, fs, axes)?;
        series(&mut chart)?;
        chart.draw_series(std::iter::once(Rectangle::new(
            [(axes.x.lo, axes.y.lo), (axes.x.hi, axes.y.hi)],
            TICK_INK.stroke_width(1),
        )))?;
        let (plot_x, plot_y) = chart.plotting_area().get_pixel_range();
        // the legend column, its first row level with the plot area's top
        let (sx, sw) = (plot_x.end as f64 + 1.5 * fs, 2.4 * fs);
        let label_style = font(fs).color(&INK).pos(Pos::new(HPos::Left, VPos::Center));
        for (k, (mark, label)) in legend.iter().enumerate() {
            let cy = plot_y.start as f64 + (k as f64 + 0.5) * 1.6 * fs;
            let (x0, x1, y) = (sx as i32, (sx + sw) as i32, cy as i32);
            let middle = ((sx + sw / 2.0) as i32, y);
            match mark {
                LegendMark::Series(i) => {
                    let style = PALETTE[i % PALETTE.len()].stroke_width(2);
                    match DASHES[i % DASHES.len()] {
                        None => root.draw(&PathElement::new(vec![(x0, y), (x1, y)], style))?,
                        Some((dash, gap)) => {
                            root.draw(&DashedPathElement::new(vec![(x0, y), (x1, y)], dash, gap, style))?
                        }
                    }
                    draw_marker(&root, *i, middle, (0.33 * fs).round() as i32)?;
                }
                LegendMark::Points(i) => draw_marker(&root, *i, middle, (0.33 * fs).round() as i32)?,
                LegendMark::Bar(i) => root.draw(&Rectangle::new(
                    [
                        ((sx + 0.6 * fs) as i32, (cy - 0.5 * fs) as i32),
                        ((sx + sw - 0.6 * fs) as i32, (cy + 0.5 * fs) as i32),
                    ],
                    PALETTE[i % PALETTE.len()].filled(),
                ))?,
                LegendMark::Reference => {
                    root.draw(&DashedPathElement::new(vec![(x0, y), (x1, y)], 6, 4, REFERENCE.stroke_width(1)))?
                }
            }
            root.draw(&Text::new(label.to_string(), ((sx + sw + 0.6 * fs) as i32, y), label_style.clone()))?;
        }
        root.present()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::svg::{check_well_formed, overlapping_texts, text_items};

    #[test]
    fn nice_linear_ticks_cover_the_data() {
        let a = Axis::linear(&[0.0, 0.93, 1.0]);
        assert_eq!((a.lo, a.hi), (0.0, 1.0));
        assert_eq!(a.ticks.iter().map(|t| t.1.as_str()).collect::<Vec<_>>(), ["0", "0.2", "0.4", "0.6", "0.8", "1"]);
        let a = Axis::linear(&[-0.13, 1.2]);
        assert!(a.lo <= -0.13 && a.hi >= 1.2);
    }

    #[test]
    fn log_ticks_are_decades() {
        let a = Axis::log(&[10.0, 20.0, 1000.0]);
        assert_eq!((a.lo, a.hi), (1.0, 3.0));
        let labels: Vec<_> = a.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["10", "20", "50", "100", "200", "500", "1000"]);
    }

    #[test]
    fn font_sizes_are_tidied() {
        let svg = "<text font-size=\"15.600000000000001\" x=\"1\">a</text><text font-size=\"12\">b</text>";
        assert_eq!(tidy_font_sizes(svg), "<text font-size=\"15.6\" x=\"1\">a</text><text font-size=\"12\">b</text>");
    }

    #[test]
    fn crowded_tick_labels_are_thinned() {
        let a = Axis::linear(&(0..=100).map(|v| v as f64 * 1000.0).collect::<Vec<_>>());
        assert_eq!(a.fitting(2000.0, 12.0).len(), a.ticks.len());
        let few = a.fitting(60.0, 12.0);
        assert!(few.len() < a.ticks.len() && few.len() >= 2 && few[0] == a.ticks[0], "{few:?}");
    }

    #[test]
    fn plots_are_well_formed_without_overlapping_labels() {
        let eap = Series::new("EAP", vec![(10.0, 0.2), (100.0, 0.7), (1000.0, 0.95), (32491.0, 1.0)]);
        let ig = Series::new("EAP-IG", vec![(10.0, 0.4), (100.0, 0.9), (1000.0, 1.02), (32491.0, 1.0)]);
        let svg = LinePlot::faithfulness("IOI <GPT-2>", vec![eap, ig]).to_svg().unwrap();
        check_well_formed(&svg).unwrap();
        assert_eq!(overlapping_texts(&text_items(&svg)), None);

        let mut bars = BarChart::new("Edges per layer", "layer", "edges");
        bars.categories = (0..30).map(|l| l.to_string()).collect();
        bars.series = vec![("easy".into(), (0..30).map(|l| l as f64).collect()), ("hard".into(), vec![3.0; 30])];
        let svg = bars.to_svg().unwrap();
        check_well_formed(&svg).unwrap();
        assert_eq!(overlapping_texts(&text_items(&svg)), None);
    }
}
