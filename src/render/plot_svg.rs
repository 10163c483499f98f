//! SVG charts written by hand: a line plot (faithfulness curves: normalised faithfulness
//! against the number of edges, linear or log x, a dashed reference line at 1.0, a legend for
//! several methods) and a grouped bar chart (e.g. edges per layer).
//!
//! Layout is computed from the font size and the label lengths: tick labels are thinned
//! until they fit their spacing, the legend sits outside the plot area on the right, and
//! the y-axis title is rotated in a column of its own, so no two labels overlap. Colours
//! are the Okabe–Ito palette and each series also gets its own dash pattern and marker, so
//! curves stay distinguishable in greyscale and for colour-blind readers.

use std::fmt::Write as _;
use std::path::Path;

use super::svg::{escape, f2, sig3, text, text_width, FONT_FAMILY};
use crate::error::Result;

/// Okabe–Ito colours, in order of use.
pub const PALETTE: [&str; 7] = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"];
const DASHES: [&str; 4] = ["", "7 4", "2 3", "9 3 2 3"];

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

    pub fn to_svg(&self) -> String {
        let fs = self.font_size;
        let xs: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .filter(|x| x.is_finite() && (self.x_scale == Scale::Linear || *x > 0.0))
            .collect();
        let mut ys: Vec<f64> =
            self.series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).filter(|y| y.is_finite()).collect();
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

        let mut legend: Vec<(LegendMark, String)> = self
            .series
            .iter()
            .enumerate()
            .map(|(i, s)| (if self.lines { LegendMark::Series(i) } else { LegendMark::Points(i) }, s.name.clone()))
            .collect();
        if let Some((_, label)) = &self.reference {
            legend.push((LegendMark::Reference, label.clone()));
        }
        let frame = Frame::new(
            fs,
            &self.title,
            &self.x_label,
            &self.y_label,
            &y_axis,
            self.plot_width,
            self.plot_height,
            &legend,
        );
        let mut out = frame.open();
        frame.y_grid_and_ticks(&mut out, &y_axis);
        frame.x_ticks(&mut out, &x_axis);

        // Reference line.
        if let Some((r, _)) = &self.reference {
            let y = frame.py(&y_axis, *r);
            let _ = writeln!(
                out,
                "<line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#444444\" stroke-width=\"1.2\" stroke-dasharray=\"6 4\"/>",
                f2(frame.x0),
                f2(frame.x0 + frame.w),
                y = f2(y)
            );
        }
        // Curves, clipped to the plot area.
        let _ = writeln!(out, "<g clip-path=\"url(#plot-area)\">");
        for (i, s) in self.series.iter().enumerate() {
            let pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite() && (self.x_scale == Scale::Linear || *x > 0.0))
                .map(|&(x, y)| (frame.px(&x_axis, x), frame.py(&y_axis, y)))
                .collect();
            if pts.is_empty() {
                continue;
            }
            if self.lines {
                let d: Vec<String> = pts.iter().map(|(x, y)| format!("{} {}", f2(*x), f2(*y))).collect();
                let _ = writeln!(
                    out,
                    "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2.00\" stroke-linejoin=\"round\"{}/>",
                    d.join(" "),
                    PALETTE[i % PALETTE.len()],
                    dash_attr(i)
                );
            }
            let size = if self.lines { 0.33 * fs } else { 0.2 * fs };
            for &(x, y) in &pts {
                let _ = writeln!(out, "{}", marker(i, x, y, size));
            }
        }
        let _ = writeln!(out, "</g>");
        frame.close(&mut out, &legend);
        out
    }

    /// Writes the picture as the path's extension asks: .svg, .pdf or .png.
    pub fn write(&self, path: &Path) -> Result<()> {
        super::write_picture(path, &self.to_svg())
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

    pub fn to_svg(&self) -> String {
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
        let legend: Vec<(LegendMark, String)> =
            self.series.iter().enumerate().map(|(i, (name, _))| (LegendMark::Bar(i), name.clone())).collect();
        let frame =
            Frame::new(fs, &self.title, &self.x_label, &self.y_label, &y_axis, plot_w, self.plot_height, &legend);
        let mut out = frame.open();
        frame.y_grid_and_ticks(&mut out, &y_axis);

        let slot = frame.w / n_cat as f64;
        let y_zero = frame.py(&y_axis, 0.0);
        for (si, (name, values)) in self.series.iter().enumerate() {
            for (ci, &v) in values.iter().enumerate().take(self.categories.len()) {
                if !v.is_finite() {
                    continue;
                }
                let x = frame.x0 + ci as f64 * slot + (slot - bar_w * n_series as f64) / 2.0 + si as f64 * bar_w;
                let y = frame.py(&y_axis, v);
                let _ = writeln!(
                    out,
                    "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{}</title></rect>",
                    f2(x),
                    f2(y.min(y_zero)),
                    f2(bar_w),
                    f2((y - y_zero).abs()),
                    PALETTE[si % PALETTE.len()],
                    escape(&format!("{name}, {}: {}", self.categories[ci], sig3(v)))
                );
            }
        }
        // Category labels, every k-th so they fit.
        let widest = self.categories.iter().map(|c| text_width(c, fs, false)).fold(0.0, f64::max);
        let every = ((widest + 0.5 * fs) / slot).ceil().max(1.0) as usize;
        for (ci, c) in self.categories.iter().enumerate().step_by(every) {
            let x = frame.x0 + (ci as f64 + 0.5) * slot;
            let _ = writeln!(out, "{}", tick_mark(x, frame.y0 + frame.h));
            let _ = writeln!(out, "{}", text(x, frame.y0 + frame.h + 1.5 * fs, fs, "middle", "fill=\"#333333\"", c));
        }
        frame.close(&mut out, &legend);
        out
    }

    /// Writes the picture as the path's extension asks: .svg, .pdf or .png.
    pub fn write(&self, path: &Path) -> Result<()> {
        super::write_picture(path, &self.to_svg())
    }
}

fn dash_attr(i: usize) -> String {
    match DASHES[i % DASHES.len()] {
        "" => String::new(),
        d => format!(" stroke-dasharray=\"{d}\""),
    }
}

/// Series i's marker: circle, square, triangle, diamond, in its colour, white centre.
fn marker(i: usize, x: f64, y: f64, r: f64) -> String {
    let c = PALETTE[i % PALETTE.len()];
    let style = format!("fill=\"#FFFFFF\" stroke=\"{c}\" stroke-width=\"1.50\"");
    match i % 4 {
        0 => format!("<circle cx=\"{}\" cy=\"{}\" r=\"{}\" {style}/>", f2(x), f2(y), f2(r)),
        1 => format!(
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" {style}/>",
            f2(x - r),
            f2(y - r),
            f2(2.0 * r),
            f2(2.0 * r)
        ),
        2 => format!(
            "<path d=\"M{} {} L{} {} L{} {} Z\" {style}/>",
            f2(x),
            f2(y - 1.2 * r),
            f2(x + 1.1 * r),
            f2(y + 0.8 * r),
            f2(x - 1.1 * r),
            f2(y + 0.8 * r)
        ),
        _ => format!(
            "<path d=\"M{} {} L{} {} L{} {} L{} {} Z\" {style}/>",
            f2(x),
            f2(y - 1.3 * r),
            f2(x + 1.3 * r),
            f2(y),
            f2(x),
            f2(y + 1.3 * r),
            f2(x - 1.3 * r),
            f2(y)
        ),
    }
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

fn tick_mark(x: f64, y: f64) -> String {
    format!("<line x1=\"{x}\" y1=\"{y}\" x2=\"{x}\" y2=\"{}\" stroke=\"#333333\"/>", f2(y + 4.0), x = f2(x), y = f2(y))
}

/// An axis: its data range (in transformed units for log) and its ticks (value, label).
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
                    let label = log_label(m, d);
                    ticks.push((v.log10(), label));
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

    /// A value's position in [0, 1] along the axis.
    fn frac(&self, v: f64) -> f64 {
        let t = if self.log { v.log10() } else { v };
        (t - self.lo) / (self.hi - self.lo)
    }
}

enum LegendMark {
    Series(usize),
    /// a scatter series: its marker alone
    Points(usize),
    Bar(usize),
    Reference,
}

/// The frame shared by the charts: title, axes box, axis titles, legend column.
struct Frame {
    fs: f64,
    x0: f64,
    y0: f64,
    w: f64,
    h: f64,
    width: f64,
    height: f64,
    title: String,
    x_label: String,
    y_label: String,
    legend_x: f64,
}

impl Frame {
    #[allow(clippy::too_many_arguments)]
    fn new(
        fs: f64,
        title: &str,
        x_label: &str,
        y_label: &str,
        y_axis: &Axis,
        w: f64,
        h: f64,
        legend: &[(LegendMark, String)],
    ) -> Frame {
        let margin = 1.2 * fs;
        let tick_w = y_axis.ticks.iter().map(|(_, l)| text_width(l, fs, false)).fold(0.0, f64::max);
        let x0 = margin + 1.4 * fs + tick_w + 0.8 * fs; // rotated y title column, tick labels
        let y0 = margin + 1.3 * fs * 1.35 + 1.8 * fs;
        let legend_w = legend.iter().map(|(_, l)| text_width(l, fs, false)).fold(0.0, f64::max) + 3.8 * fs;
        let legend_x = x0 + w + 1.5 * fs;
        let width = (legend_x + if legend.is_empty() { 0.0 } else { legend_w } + margin)
            .max(margin * 2.0 + text_width(title, 1.3 * fs, true))
            .ceil();
        let height = (y0 + h + 1.5 * fs + 1.8 * fs + margin).max(y0 + legend.len() as f64 * 1.6 * fs + margin).ceil();
        Frame {
            fs,
            x0,
            y0,
            w,
            h,
            width,
            height,
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            legend_x,
        }
    }

    fn px(&self, axis: &Axis, v: f64) -> f64 {
        self.x0 + axis.frac(v) * self.w
    }

    fn py(&self, axis: &Axis, v: f64) -> f64 {
        self.y0 + (1.0 - axis.frac(v)) * self.h
    }

    fn open(&self) -> String {
        let fs = self.fs;
        let mut out = String::new();
        let _ = writeln!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
        let _ = writeln!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"{FONT_FAMILY}\">",
            w = f2(self.width),
            h = f2(self.height)
        );
        let _ = writeln!(out, "<title>{}</title>", escape(&self.title));
        let _ = writeln!(
            out,
            "<defs><clipPath id=\"plot-area\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/></clipPath></defs>",
            f2(self.x0 - 0.5 * fs),
            f2(self.y0 - 0.5 * fs),
            f2(self.w + fs),
            f2(self.h + fs)
        );
        let _ = writeln!(
            out,
            "<rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"#FFFFFF\"/>",
            f2(self.width),
            f2(self.height)
        );
        let _ = writeln!(
            out,
            "{}",
            text(
                1.2 * fs,
                1.2 * fs + 1.3 * fs,
                1.3 * fs,
                "start",
                "font-weight=\"bold\" fill=\"#111111\"",
                &self.title
            )
        );
        out
    }

    fn y_grid_and_ticks(&self, out: &mut String, y: &Axis) {
        let fs = self.fs;
        for (v, label) in &y.ticks {
            let py = self.py(y, *v);
            let _ = writeln!(
                out,
                "<line x1=\"{}\" y1=\"{p}\" x2=\"{}\" y2=\"{p}\" stroke=\"#E5E5E5\"/>",
                f2(self.x0),
                f2(self.x0 + self.w),
                p = f2(py)
            );
            let _ = writeln!(out, "{}", text(self.x0 - 0.6 * fs, py + 0.35 * fs, fs, "end", "fill=\"#333333\"", label));
        }
    }

    /// X ticks and labels, thinned to every k-th label until they fit their spacing.
    fn x_ticks(&self, out: &mut String, x: &Axis) {
        let fs = self.fs;
        let pos: Vec<f64> = x.ticks.iter().map(|(t, _)| self.x0 + (t - x.lo) / (x.hi - x.lo) * self.w).collect();
        let mut every = 1;
        'fit: while every < x.ticks.len() {
            let shown: Vec<usize> = (0..x.ticks.len()).step_by(every).collect();
            for pair in shown.windows(2) {
                let need =
                    (text_width(&x.ticks[pair[0]].1, fs, false) + text_width(&x.ticks[pair[1]].1, fs, false)) / 2.0;
                if pos[pair[1]] - pos[pair[0]] < need + 0.6 * fs {
                    every += 1;
                    continue 'fit;
                }
            }
            break;
        }
        for (i, ((_, label), &px)) in x.ticks.iter().zip(&pos).enumerate() {
            let _ = writeln!(
                out,
                "<line x1=\"{p}\" y1=\"{}\" x2=\"{p}\" y2=\"{}\" stroke=\"#F0F0F0\"/>",
                f2(self.y0),
                f2(self.y0 + self.h),
                p = f2(px)
            );
            let _ = writeln!(out, "{}", tick_mark(px, self.y0 + self.h));
            if i % every == 0 {
                let _ =
                    writeln!(out, "{}", text(px, self.y0 + self.h + 1.5 * fs, fs, "middle", "fill=\"#333333\"", label));
            }
        }
    }

    fn close(&self, out: &mut String, legend: &[(LegendMark, String)]) {
        let fs = self.fs;
        // Axes box and titles.
        let _ = writeln!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333333\"/>",
            f2(self.x0),
            f2(self.y0),
            f2(self.w),
            f2(self.h)
        );
        let _ = writeln!(
            out,
            "{}",
            text(self.x0 + self.w / 2.0, self.y0 + self.h + 3.3 * fs, fs, "middle", "fill=\"#111111\"", &self.x_label)
        );
        let (yx, yy) = (1.2 * fs + fs, self.y0 + self.h / 2.0);
        let _ = writeln!(
            out,
            "{}",
            text(
                yx,
                yy,
                fs,
                "middle",
                &format!("fill=\"#111111\" transform=\"rotate(-90 {} {})\"", f2(yx), f2(yy)),
                &self.y_label
            )
        );
        // Legend column.
        for (k, (mark, label)) in legend.iter().enumerate() {
            let cy = self.y0 + (k as f64 + 0.5) * 1.6 * fs;
            let (sx, sw) = (self.legend_x, 2.4 * fs);
            match mark {
                LegendMark::Series(i) => {
                    let _ = writeln!(
                        out,
                        "<line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"{}\" stroke-width=\"2.00\"{}/>",
                        f2(sx),
                        f2(sx + sw),
                        PALETTE[i % PALETTE.len()],
                        dash_attr(*i),
                        y = f2(cy)
                    );
                    let _ = writeln!(out, "{}", marker(*i, sx + sw / 2.0, cy, 0.33 * fs));
                }
                LegendMark::Points(i) => {
                    let _ = writeln!(out, "{}", marker(*i, sx + sw / 2.0, cy, 0.33 * fs));
                }
                LegendMark::Bar(i) => {
                    let _ = writeln!(
                        out,
                        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"/>",
                        f2(sx + 0.6 * fs),
                        f2(cy - 0.5 * fs),
                        f2(sw - 1.2 * fs),
                        f2(fs),
                        PALETTE[i % PALETTE.len()]
                    );
                }
                LegendMark::Reference => {
                    let _ = writeln!(
                        out,
                        "<line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#444444\" stroke-width=\"1.2\" stroke-dasharray=\"6 4\"/>",
                        f2(sx),
                        f2(sx + sw),
                        y = f2(cy)
                    );
                }
            }
            let _ =
                writeln!(out, "{}", text(sx + sw + 0.6 * fs, cy + 0.35 * fs, fs, "start", "fill=\"#222222\"", label));
        }
        out.push_str("</svg>\n");
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
    fn plots_are_well_formed_without_overlapping_labels() {
        let eap = Series::new("EAP", vec![(10.0, 0.2), (100.0, 0.7), (1000.0, 0.95), (32491.0, 1.0)]);
        let ig = Series::new("EAP-IG", vec![(10.0, 0.4), (100.0, 0.9), (1000.0, 1.02), (32491.0, 1.0)]);
        let svg = LinePlot::faithfulness("IOI <GPT-2>", vec![eap, ig]).to_svg();
        check_well_formed(&svg).unwrap();
        assert_eq!(overlapping_texts(&text_items(&svg)), None);
        assert!(svg.contains("stroke-dasharray=\"6 4\""));

        let mut bars = BarChart::new("Edges per layer", "layer", "edges");
        bars.categories = (0..30).map(|l| l.to_string()).collect();
        bars.series = vec![("easy".into(), (0..30).map(|l| l as f64).collect()), ("hard".into(), vec![3.0; 30])];
        let svg = bars.to_svg();
        check_well_formed(&svg).unwrap();
        assert_eq!(overlapping_texts(&text_items(&svg)), None);
    }
}
