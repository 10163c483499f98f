//! A circuit drawn as SVG, for papers.
//!
//! Layout: one row per layer, layers bottom to top, `input` centred below layer 0 and `logits`
//! centred above the last layer. In a layer's row the heads stand left to right by index and
//! the MLP stands to their right, raised half a row so that edges from the layer's own heads
//! into the MLP (sequential residual) flow upward like every other edge. All boxes have one
//! width, sized from the longest node label and the font size, and rows and columns are
//! spaced from the box size, so no two labels can overlap; the layer labels sit in a column
//! on the left, the legend in a column on the right, the title and a summary line on top.
//!
//! Nodes in the circuit are filled and outlined and drawn over the edges; nodes outside it are
//! drawn faint under the edges (default) or left out ([`InactiveNodes`]), keeping their grid
//! place either way so circuits of one model always line up. Edges are cubic Béziers from the
//! top of the writer's box to the reader's port on the bottom of the reader's box: a head has
//! three ports, q on the left, k in the middle, v on the right, and its q/k/v edges are also
//! solid/dashed/dotted. A near-vertical edge that would run behind other rows' boxes (m0 → m3,
//! input → logits) climbs in a lane between the columns instead. With `group_heads` a layer's
//! heads are one node (`a5.h1,3,7`), and the edges between two nodes (and into one of q, k, v)
//! are one edge whose score is their sum.
//! Colour gives the sign (Okabe–Ito blue positive, vermillion negative; colour-blind safe),
//! stroke width and opacity grow with |score| / max |score| over the circuit's edges, and
//! stronger edges are drawn on top. Numbers are written with two decimals, so the same
//! circuit always gives the same bytes.

use std::fmt::Write as _;
use std::path::Path;

use super::svg::{escape, f2, sig3, text, text_width, FONT_FAMILY};
use crate::error::Result;
use crate::graph::dot::{NEGATIVE_COLOUR, POSITIVE_COLOUR};
use crate::graph::{Circuit, Qkv, Reader, Writer};

/// What to do with nodes that are not in the circuit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InactiveNodes {
    /// Pale outline and pale label: shows where the circuit sits in the model.
    Faint,
    /// Not drawn (their grid places stay empty).
    Hidden,
}

#[derive(Clone, Debug)]
pub struct CircuitSvgOptions {
    pub title: String,
    /// The line under the title; `None` writes the circuit's size and the model's shape.
    pub subtitle: Option<String>,
    /// Node label size in px; everything else scales from it.
    pub font_size: f64,
    pub inactive: InactiveNodes,
    /// Stroke width of the weakest and of the strongest edge, px.
    pub min_edge_width: f64,
    pub max_edge_width: f64,
    /// Only the layers and nodes in the circuit: each layer's circuit heads side by side, the
    /// layers without a circuit node left out and marked (`… layers 3–7`), for large models.
    pub compact: bool,
    /// The picture's width in points (1/72 in, e.g. a paper column's 240); its height follows.
    pub width_pt: Option<f64>,
    /// Greys instead of colours, for greyscale printing: black positive edges, grey negative
    /// ones (their dash and width unchanged), grey boxes.
    pub greyscale: bool,
    /// Each layer's heads drawn as one node, labelled with the circuit's heads in it; the edges
    /// between the same two nodes (and the same q/k/v input) merged into one with their
    /// summed score.
    pub group_heads: bool,
    /// Fills that replace the palette's for the named nodes, with their legend rows (e.g. a CURE
    /// partition's categories, [`super::cure_svg::partition_fills`]); grouped heads keep the
    /// palette's.
    pub fills: Option<NodeFills>,
}

/// Node fills by node name (`a3.h1`, `m2`) and the legend rows that explain them (fill, label),
/// which stand in for the palette's "attention head" and "MLP" rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeFills {
    pub by_node: std::collections::BTreeMap<String, String>,
    pub legend: Vec<(String, String)>,
}

impl Default for CircuitSvgOptions {
    fn default() -> Self {
        CircuitSvgOptions {
            title: "Circuit".into(),
            subtitle: None,
            font_size: 11.0,
            inactive: InactiveNodes::Faint,
            min_edge_width: 0.6,
            max_edge_width: 5.0,
            compact: false,
            width_pt: None,
            greyscale: false,
            group_heads: false,
            fills: None,
        }
    }
}

const HEAD_FILL: &str = "#E3EDF7";
const MLP_FILL: &str = "#FCE8D5";
const IO_FILL: &str = "#E6E6E6";
const NODE_STROKE: &str = "#333333";
const FAINT_FILL: &str = "#FAFAFA";
const FAINT_STROKE: &str = "#D6D6D6";
const FAINT_TEXT: &str = "#B4B4B4";
const EDGE_GREY: &str = "#555555";

/// The fills and edge colours of a drawing.
struct Palette {
    head: &'static str,
    mlp: &'static str,
    io: &'static str,
    positive: &'static str,
    negative: &'static str,
}

impl Palette {
    fn of(opts: &CircuitSvgOptions) -> Palette {
        if opts.greyscale {
            Palette { head: "#F2F2F2", mlp: "#D9D9D9", io: "#E6E6E6", positive: "#111111", negative: "#9A9A9A" }
        } else {
            Palette {
                head: HEAD_FILL,
                mlp: MLP_FILL,
                io: IO_FILL,
                positive: POSITIVE_COLOUR,
                negative: NEGATIVE_COLOUR,
            }
        }
    }
}

/// Where layers and heads stand: every layer and head in its own row and column, or (compact)
/// only those with circuit nodes, with a marker row for each run of left-out layers.
struct Grid {
    /// row (from the bottom, 0-based) of each layer; `None` for a left-out layer
    row: Vec<Option<usize>>,
    n_rows: usize,
    /// column of each head of each layer; `None` for a left-out head
    col: Vec<Vec<Option<usize>>>,
    n_cols: usize,
    /// marker rows: (row, first and last left-out layer)
    skipped: Vec<(usize, usize, usize)>,
}

impl Grid {
    fn full(n_layers: usize, n_heads: usize) -> Grid {
        Grid {
            row: (0..n_layers).map(Some).collect(),
            n_rows: n_layers,
            col: vec![(0..n_heads).map(Some).collect(); n_layers],
            n_cols: n_heads,
            skipped: Vec::new(),
        }
    }

    fn compact(c: &Circuit) -> Grid {
        let shape = c.shape();
        let (nl, nh) = (shape.n_layers, shape.n_heads);
        let in_circuit = |w: Writer| c.node_in_graph(shape.writer_index(w));
        let col: Vec<Vec<Option<usize>>> = (0..nl)
            .map(|layer| {
                let mut next = 0;
                (0..nh)
                    .map(|head| {
                        in_circuit(Writer::Head { layer, head }).then(|| {
                            next += 1;
                            next - 1
                        })
                    })
                    .collect()
            })
            .collect();
        let kept = |l: usize| col[l].iter().any(Option::is_some) || in_circuit(Writer::Mlp { layer: l });
        let (mut row, mut skipped, mut n_rows, mut gap_from) = (vec![None; nl], Vec::new(), 0, None);
        for (l, r) in row.iter_mut().enumerate() {
            if kept(l) {
                if let Some(from) = gap_from.take() {
                    skipped.push((n_rows, from, l - 1));
                    n_rows += 1;
                }
                *r = Some(n_rows);
                n_rows += 1;
            } else if gap_from.is_none() {
                gap_from = Some(l);
            }
        }
        if let Some(from) = gap_from {
            skipped.push((n_rows, from, nl - 1));
            n_rows += 1;
        }
        let n_cols = col.iter().map(|c| c.iter().flatten().count()).max().unwrap_or(0).max(1);
        Grid { row, n_rows, col, n_cols, skipped }
    }

    /// Every layer's drawn heads in one column, where their group's node stands.
    fn grouped(mut self) -> Grid {
        self.col.iter_mut().flatten().flatten().for_each(|c| *c = 0);
        self.n_cols = 1;
        self
    }
}

/// The node of a layer's heads (`group_heads`): `a5.h1,3,7` for up to three of the circuit's
/// heads, `a5: 6 heads` for more, `a5` for a layer with none.
fn head_group_label(layer: usize, heads: &[usize]) -> String {
    match heads.len() {
        0 => format!("a{layer}"),
        1..=3 => format!("a{layer}.h{}", heads.iter().map(|h| h.to_string()).collect::<Vec<_>>().join(",")),
        k => format!("a{layer}: {k} heads"),
    }
}

/// An edge as drawn: one edge of the circuit, or (`group_heads`) those between the same two
/// nodes and port, with their summed score. `w` and `r` are one of them (they share a path).
struct DrawnEdge {
    w: usize,
    r: usize,
    score: f32,
    title: String,
}

/// The circuit's edges as drawn, merged between head groups where asked.
fn drawn_edges(c: &Circuit, group_heads: bool) -> Vec<DrawnEdge> {
    let shape = c.shape();
    let single = |(w, r, s): (usize, usize, f32)| DrawnEdge {
        w,
        r,
        score: s,
        title: format!("{} = {}", shape.edge_name_of(w, r), sig3(s as f64)),
    };
    if !group_heads {
        return c.edges_in_graph().map(single).collect();
    }
    // a writer or reader by its node when heads are grouped: (kind, layer, q/k/v)
    let writer_key = |w: usize| match shape.writer(w) {
        Writer::Input => (0, 0, 0),
        Writer::Head { layer, .. } => (1, layer, 0),
        Writer::Mlp { layer } => (2, layer, 0),
    };
    let reader_key = |r: usize| match shape.reader(r) {
        Reader::Head { layer, qkv, .. } => (1, layer, qkv as usize),
        Reader::Mlp { layer } => (2, layer, 0),
        Reader::Logits => (3, 0, 0),
    };
    let mut merged: std::collections::BTreeMap<_, Vec<(usize, usize, f32)>> = Default::default();
    for e in c.edges_in_graph() {
        merged.entry((writer_key(e.0), reader_key(e.1))).or_default().push(e);
    }
    merged
        .into_values()
        .map(|group| {
            if group.len() == 1 {
                return single(group[0]);
            }
            let sum: f32 = group.iter().map(|e| e.2).sum();
            let names: Vec<String> = group.iter().map(|&(w, r, _)| shape.edge_name_of(w, r)).collect();
            let listed = if names.len() <= 6 { names.join(", ") } else { format!("{} edges", names.len()) };
            DrawnEdge {
                w: group[0].0,
                r: group[0].1,
                score: sum,
                title: format!("{listed}: sum = {}", sig3(sum as f64)),
            }
        })
        .collect()
}

/// Dash pattern of a reader input: q and single-input readers solid, k dashed, v dotted.
fn dash(qkv: Option<Qkv>) -> &'static str {
    match qkv {
        Some(Qkv::K) => " stroke-dasharray=\"7 4\"",
        Some(Qkv::V) => " stroke-dasharray=\"0.1 3.5\" stroke-linecap=\"round\"",
        _ => "",
    }
}

/// Box geometry: top-left corner.
#[derive(Clone, Copy)]
struct NodeBox {
    x: f64,
    y: f64,
}

struct Layout {
    box_w: f64,
    box_h: f64,
    pitch: f64,
    grid_x0: f64,
    grid_w: f64,
    top: f64,
    grid: Grid,
    col_gap: f64,
    mlp_gap: f64,
}

impl Layout {
    fn head(&self, layer: usize, head: usize) -> NodeBox {
        // a left-out head (compact) is never drawn and no edge of the circuit touches it
        let col = self.grid.col[layer][head].unwrap_or(head);
        NodeBox { x: self.grid_x0 + col as f64 * (self.box_w + self.col_gap), y: self.row_y(layer) }
    }
    fn mlp(&self, layer: usize) -> NodeBox {
        let x = self.grid_x0 + self.grid.n_cols as f64 * (self.box_w + self.col_gap) + self.mlp_gap;
        NodeBox { x, y: self.row_y(layer) - self.pitch / 2.0 }
    }
    /// Top of layer `layer`'s head row; the top row is logits, the bottom row input.
    fn row_y(&self, layer: usize) -> f64 {
        self.row_top(self.grid.row[layer].unwrap_or(0))
    }
    /// Top of grid row `row` (0: the lowest layer's).
    fn row_top(&self, row: usize) -> f64 {
        self.top + (self.grid.n_rows - row) as f64 * self.pitch
    }
    fn centre_x(&self) -> f64 {
        self.grid_x0 + (self.grid_w - self.box_w) / 2.0
    }
    fn input(&self) -> NodeBox {
        NodeBox { x: self.centre_x(), y: self.top + (self.grid.n_rows + 1) as f64 * self.pitch }
    }
    fn logits(&self) -> NodeBox {
        NodeBox { x: self.centre_x(), y: self.top }
    }
    fn writer_box(&self, w: Writer) -> NodeBox {
        match w {
            Writer::Input => self.input(),
            Writer::Head { layer, head } => self.head(layer, head),
            Writer::Mlp { layer } => self.mlp(layer),
        }
    }
    /// The point where an edge into reader `r` ends, and the reader's q/k/v.
    fn port(&self, r: Reader) -> ((f64, f64), Option<Qkv>) {
        let (b, frac, qkv) = match r {
            Reader::Head { layer, head, qkv } => {
                let frac = match qkv {
                    Qkv::Q => 0.25,
                    Qkv::K => 0.5,
                    Qkv::V => 0.75,
                };
                (self.head(layer, head), frac, Some(qkv))
            }
            Reader::Mlp { layer } => (self.mlp(layer), 0.5, None),
            Reader::Logits => (self.logits(), 0.5, None),
        };
        ((b.x + frac * self.box_w, b.y + self.box_h), qkv)
    }
    fn reader_box(&self, r: Reader) -> NodeBox {
        match r {
            Reader::Head { layer, head, .. } => self.head(layer, head),
            Reader::Mlp { layer } => self.mlp(layer),
            Reader::Logits => self.logits(),
        }
    }
    /// The SVG path of an edge from the top of writer box `b` to the port (x2, y2) of reader box
    /// `rb`. A near-vertical edge that passes other rows would run hidden under their boxes
    /// (m0 → m3 under m1 and m2, a0.h3 → a5.h3 under a1–a4.h3, input → logits under the middle
    /// column), so it leaves its column between the rows, climbs in a lane (the MLP column's
    /// beside it outside the grid, farther out the more rows it spans; anything else's in the
    /// nearest gap between columns) and comes back to its port. Every other edge is one cubic
    /// Bézier.
    fn edge_path(&self, b: NodeBox, rb: NodeBox, (x2, y2): (f64, f64), fs: f64) -> String {
        let (x1, y1) = (b.x + self.box_w / 2.0, b.y);
        let overlapping = (b.x - rb.x).abs() < self.box_w;
        if overlapping && y1 - y2 > self.pitch {
            let skipped = ((y1 - y2 + self.box_h) / self.pitch).round() as usize - 1;
            let mlp_x = self.mlp(0).x;
            let lane = if (b.x - mlp_x).abs() < 1.0 && (rb.x - mlp_x).abs() < 1.0 {
                mlp_x + self.box_w + fs * (0.6 + 0.3 * skipped.min(5) as f64)
            } else {
                self.nearest_gap((x1 + x2) / 2.0)
            };
            // a quarter of the free space between two rows: turns happen between the boxes
            let a = (self.pitch - self.box_h) / 4.0;
            return format!(
                "M{} {} C{} {} {} {} {} {} L{} {} C{} {} {} {} {} {}",
                f2(x1),
                f2(y1),
                f2(x1),
                f2(y1 - a),
                f2(lane),
                f2(y1 - a),
                f2(lane),
                f2(y1 - 2.0 * a),
                f2(lane),
                f2(y2 + 2.0 * a),
                f2(lane),
                f2(y2 + a),
                f2(x2),
                f2(y2 + a),
                f2(x2),
                f2(y2)
            );
        }
        let bend = ((y1 - y2).abs() * 0.5).clamp(self.pitch * 0.4, self.pitch * 1.2);
        format!(
            "M{} {} C{} {} {} {} {} {}",
            f2(x1),
            f2(y1),
            f2(x1),
            f2(y1 - bend),
            f2(x2),
            f2(y2 + bend),
            f2(x2),
            f2(y2)
        )
    }
    /// The centre of the gap between columns nearest to `x`: left of the first head column,
    /// between two head columns, or between the last head column and the MLP column.
    fn nearest_gap(&self, x: f64) -> f64 {
        let step = self.box_w + self.col_gap;
        let mut gaps: Vec<f64> =
            (0..self.grid.n_cols).map(|i| self.grid_x0 + i as f64 * step - self.col_gap / 2.0).collect();
        let last_head_right = self.grid_x0 + self.grid.n_cols as f64 * step - self.col_gap;
        gaps.push((last_head_right + self.mlp(0).x) / 2.0);
        gaps.into_iter().min_by(|a, b| (a - x).abs().total_cmp(&(b - x).abs())).unwrap_or(x)
    }
    fn grid_bottom(&self) -> f64 {
        self.input().y + self.box_h
    }
}

/// The circuit as an SVG document.
pub fn circuit_svg(c: &Circuit, opts: &CircuitSvgOptions) -> String {
    let shape = c.shape();
    let (n_layers, n_heads) = (shape.n_layers, shape.n_heads);
    let fs = opts.font_size;
    // the circuit's heads of each layer, for the head groups' labels
    let circuit_heads: Vec<Vec<usize>> = (0..n_layers)
        .map(|layer| {
            (0..n_heads).filter(|&head| c.node_in_graph(shape.writer_index(Writer::Head { layer, head }))).collect()
        })
        .collect();
    let group_label = |l: usize| head_group_label(l, &circuit_heads[l]);
    let group_w = match opts.group_heads {
        true => (0..n_layers).map(|l| text_width(&group_label(l), fs, false)).fold(0.0, f64::max),
        false => 0.0,
    };
    let longest = (0..shape.n_nodes()).map(|n| text_width(&shape.node_name(n), fs, false)).fold(group_w, f64::max);
    let box_w = (longest + 1.4 * fs).ceil();
    let box_h = (2.0 * fs).ceil();
    let margin = 1.5 * fs;
    let title_fs = 1.45 * fs;
    let sub_fs = fs;
    let layer_label = |l: usize| format!("layer {l}");
    let label_w = text_width(&layer_label(n_layers.saturating_sub(1)), fs, false);
    let col_gap = (0.8 * fs).ceil();
    let mlp_gap = (1.6 * fs).ceil();
    let grid = if opts.compact { Grid::compact(c) } else { Grid::full(n_layers, n_heads) };
    let grid = if opts.group_heads { grid.grouped() } else { grid };
    let skip_label = |a: usize, b: usize| match a == b {
        true => format!("… layer {a}"),
        false => format!("… layers {a}–{b}"),
    };
    let label_w =
        grid.skipped.iter().map(|&(_, a, b)| text_width(&skip_label(a, b), fs, false)).fold(label_w, f64::max);
    let grid_x0 = margin + label_w + fs;
    let grid_w = grid.n_cols as f64 * (box_w + col_gap) + mlp_gap + box_w;
    let top = margin + title_fs + 0.6 * fs + sub_fs + 2.2 * fs;
    let lay = Layout { box_w, box_h, pitch: (3.5 * box_h).ceil(), grid_x0, grid_w, top, grid, col_gap, mlp_gap };
    let palette = Palette::of(opts);
    // compact drawings leave out every node outside the circuit
    let inactive = if opts.compact { InactiveNodes::Hidden } else { opts.inactive };

    let mut edges = drawn_edges(c, opts.group_heads);
    // Legend entries: (kind of swatch, label).
    let max_abs = edges.iter().map(|e| e.score.abs()).filter(|s| s.is_finite()).fold(0.0f32, f32::max);
    let mut legend: Vec<(Swatch, String)> = vec![
        (Swatch::Line(palette.positive, 2.5, None), "positive score".into()),
        (Swatch::Line(palette.negative, 2.5, None), "negative score".into()),
        (
            Swatch::Widths,
            format!("width ∝ |{}score| (max {})", if opts.group_heads { "summed " } else { "" }, sig3(max_abs as f64)),
        ),
        (Swatch::Line(EDGE_GREY, 1.6, Some(Qkv::Q)), "query input (left port)".into()),
        (Swatch::Line(EDGE_GREY, 1.6, Some(Qkv::K)), "key input (middle port)".into()),
        (Swatch::Line(EDGE_GREY, 1.6, Some(Qkv::V)), "value input (right port)".into()),
    ];
    match &opts.fills {
        Some(f) => {
            legend.extend(f.legend.iter().map(|(fill, label)| (Swatch::Node(fill.clone(), NODE_STROKE), label.clone())))
        }
        None => legend.extend([
            (Swatch::Node(palette.head.into(), NODE_STROKE), "attention head".into()),
            (Swatch::Node(palette.mlp.into(), NODE_STROKE), "MLP".into()),
        ]),
    }
    if inactive == InactiveNodes::Faint {
        legend.push((Swatch::Node(FAINT_FILL.into(), FAINT_STROKE), "not in circuit".into()));
    }
    let swatch_w = 3.0 * fs;
    let legend_row = 1.8 * fs;
    let legend_pad = fs;
    // past the MLP column's lanes (edge_path)
    let legend_x = grid_x0 + grid_w + 3.5 * fs;
    let legend_text_w = legend.iter().map(|(_, t)| text_width(t, fs, false)).fold(0.0, f64::max);
    let legend_w = legend_pad * 2.0 + swatch_w + 0.8 * fs + legend_text_w;
    let legend_h = legend_pad * 2.0 + legend.len() as f64 * legend_row;

    let title = &opts.title;
    let subtitle = opts.subtitle.clone().unwrap_or_else(|| {
        format!(
            "{} edges, {} nodes · {} layers × {} heads{}",
            c.n_edges_in_graph(),
            c.n_nodes_in_graph(),
            n_layers,
            n_heads,
            if shape.parallel_residual { " (parallel attention/MLP)" } else { "" }
        ) + if opts.compact { "; only the circuit's layers and nodes" } else { "" }
            + if opts.group_heads { "; a layer's heads as one node" } else { "" }
    });
    let header_w = text_width(title, title_fs, true).max(text_width(&subtitle, sub_fs, false));
    let width = (legend_x + legend_w + margin).max(2.0 * margin + header_w).ceil();
    let height = (lay.grid_bottom().max(top + legend_h) + margin).ceil();
    // the drawing's own units stay; the page size is the asked width in points
    let (page_w, page_h) = match opts.width_pt {
        Some(w) => (format!("{}pt", f2(w)), format!("{}pt", f2(w * height / width))),
        None => (f2(width), f2(height)),
    };

    let mut out = String::new();
    let _ = writeln!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{page_w}\" height=\"{page_h}\" viewBox=\"0 0 {w} {h}\" font-family=\"{FONT_FAMILY}\">",
        w = f2(width),
        h = f2(height)
    );
    let _ = writeln!(out, "<title>{}</title>", escape(title));
    let _ = writeln!(out, "<rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"#FFFFFF\"/>", f2(width), f2(height));
    let _ = writeln!(
        out,
        "{}",
        text(margin, margin + title_fs, title_fs, "start", "font-weight=\"bold\" fill=\"#111111\"", title)
    );
    let _ = writeln!(
        out,
        "{}",
        text(margin, margin + title_fs + 0.6 * fs + sub_fs, sub_fs, "start", "fill=\"#555555\"", &subtitle)
    );

    // Layer labels, on the head row's centre line.
    let _ = writeln!(out, "<g id=\"layer-labels\" fill=\"#777777\">");
    for l in (0..n_layers).filter(|&l| lay.grid.row[l].is_some()) {
        let y = lay.row_y(l) + box_h / 2.0 + 0.35 * fs;
        let _ = writeln!(out, "{}", text(grid_x0 - fs, y, fs, "end", "", &layer_label(l)));
    }
    for &(row, a, b) in &lay.grid.skipped {
        let y = lay.row_top(row) + box_h / 2.0 + 0.35 * fs;
        let _ = writeln!(out, "{}", text(grid_x0 - fs, y, fs, "end", "font-style=\"italic\"", &skip_label(a, b)));
    }
    let _ = writeln!(out, "</g>");

    // Nodes outside the circuit go under the edges (no edge ends at one, and an edge passing
    // one stays visible), the circuit's on top.
    // a node's box: where, its fill, in the circuit or not, its label and its hover text
    let draw_box = |out: &mut String, b: NodeBox, fill: &str, active: bool, name: &str, hover: &str, is_head: bool| {
        let (fill, stroke, ink) =
            if active { (fill, NODE_STROKE, "#111111") } else { (FAINT_FILL, FAINT_STROKE, FAINT_TEXT) };
        let _ = writeln!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"{}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{}\"><title>{}</title></rect>",
            f2(b.x),
            f2(b.y),
            f2(box_w),
            f2(box_h),
            f2(0.3 * fs),
            if active { "1.00" } else { "0.80" },
            escape(hover)
        );
        if active && is_head {
            // The three input ports.
            for frac in [0.25, 0.5, 0.75] {
                let _ = writeln!(
                    out,
                    "<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{NODE_STROKE}\"/>",
                    f2(b.x + frac * box_w),
                    f2(b.y + box_h),
                    f2(0.16 * fs)
                );
            }
        }
        let _ = writeln!(
            out,
            "{}",
            text(b.x + box_w / 2.0, b.y + box_h / 2.0 + 0.35 * fs, fs, "middle", &format!("fill=\"{ink}\""), name)
        );
    };
    let is_head = |node: usize| node != shape.logits_node() && matches!(shape.writer(node), Writer::Head { .. });
    // grouped heads are drawn by their group
    let drawn_alone = |node: usize| !(opts.group_heads && is_head(node));
    let draw_node = |out: &mut String, node: usize| {
        let (b, fill) = if node == shape.logits_node() {
            (lay.logits(), palette.io)
        } else {
            match shape.writer(node) {
                w @ Writer::Input => (lay.writer_box(w), palette.io),
                w @ Writer::Head { .. } => (lay.writer_box(w), palette.head),
                w @ Writer::Mlp { .. } => (lay.writer_box(w), palette.mlp),
            }
        };
        let name = shape.node_name(node);
        let fill = opts.fills.as_ref().and_then(|f| f.by_node.get(&name)).map_or(fill, String::as_str);
        draw_box(out, b, fill, c.node_in_graph(node), &name, &name, is_head(node));
    };
    // the head groups drawn (a layer's box stands where its heads' column is)
    let groups: Vec<usize> = match opts.group_heads {
        true => (0..n_layers)
            .filter(|&l| lay.grid.row[l].is_some() && lay.grid.col[l].iter().any(Option::is_some))
            .collect(),
        false => Vec::new(),
    };
    let draw_group = |out: &mut String, l: usize| {
        let heads = &circuit_heads[l];
        let b = lay.head(l, heads.first().copied().unwrap_or(0));
        let hover: Vec<String> = heads.iter().map(|&h| format!("a{l}.h{h}")).collect();
        let hover = if hover.is_empty() { format!("a{l}: no head in the circuit") } else { hover.join(", ") };
        draw_box(out, b, palette.head, !heads.is_empty(), &group_label(l), &hover, true);
    };
    if inactive == InactiveNodes::Faint {
        let _ = writeln!(out, "<g id=\"inactive-nodes\">");
        (0..shape.n_nodes()).filter(|&n| !c.node_in_graph(n) && drawn_alone(n)).for_each(|n| draw_node(&mut out, n));
        groups.iter().filter(|&&l| circuit_heads[l].is_empty()).for_each(|&l| draw_group(&mut out, l));
        let _ = writeln!(out, "</g>");
    }

    // Edges, weakest first so the strongest are on top.
    let nb = shape.n_bwd();
    let key = |s: f32| if s.is_finite() { s.abs() } else { 0.0 };
    edges.sort_by(|a, b| key(a.score).total_cmp(&key(b.score)).then((a.w * nb + a.r).cmp(&(b.w * nb + b.r))));
    let _ = writeln!(out, "<g id=\"edges\" fill=\"none\">");
    for e in &edges {
        let (w, r, s) = (e.w, e.r, e.score);
        let rel = if max_abs > 0.0 { (key(s) / max_abs) as f64 } else { 0.0 };
        let reader = shape.reader(r);
        let (port, qkv) = lay.port(reader);
        let d = lay.edge_path(lay.writer_box(shape.writer(w)), lay.reader_box(reader), port, fs);
        let colour = if s < 0.0 { palette.negative } else { palette.positive };
        let _ = writeln!(
            out,
            "<path d=\"{d}\" stroke=\"{colour}\" stroke-width=\"{}\" stroke-opacity=\"{}\"{}><title>{}</title></path>",
            f2(opts.min_edge_width + (opts.max_edge_width - opts.min_edge_width) * rel),
            f2(0.3 + 0.6 * rel),
            dash(qkv),
            escape(&e.title)
        );
    }
    let _ = writeln!(out, "</g>");

    let _ = writeln!(out, "<g id=\"nodes\">");
    (0..shape.n_nodes()).filter(|&n| c.node_in_graph(n) && drawn_alone(n)).for_each(|n| draw_node(&mut out, n));
    groups.iter().filter(|&&l| !circuit_heads[l].is_empty()).for_each(|&l| draw_group(&mut out, l));
    let _ = writeln!(out, "</g>");

    // Legend.
    let _ = writeln!(out, "<g id=\"legend\">");
    let _ = writeln!(
        out,
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"{}\" fill=\"#FFFFFF\" stroke=\"#CCCCCC\"/>",
        f2(legend_x),
        f2(top),
        f2(legend_w),
        f2(legend_h),
        f2(0.3 * fs)
    );
    for (i, (swatch, label)) in legend.iter().enumerate() {
        let cy = top + legend_pad + (i as f64 + 0.5) * legend_row;
        let sx = legend_x + legend_pad;
        match swatch {
            Swatch::Line(colour, width, qkv) => {
                let _ = writeln!(
                    out,
                    "<line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"{colour}\" stroke-width=\"{}\"{}/>",
                    f2(sx),
                    f2(sx + swatch_w),
                    f2(*width),
                    dash(*qkv),
                    y = f2(cy)
                );
            }
            Swatch::Widths => {
                for (k, wdt) in
                    [opts.min_edge_width, (opts.min_edge_width + opts.max_edge_width) / 2.0, opts.max_edge_width]
                        .into_iter()
                        .enumerate()
                {
                    let x0 = sx + k as f64 * swatch_w / 3.0;
                    let _ = writeln!(
                        out,
                        "<line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"{EDGE_GREY}\" stroke-width=\"{}\" stroke-opacity=\"{}\"/>",
                        f2(x0),
                        f2(x0 + swatch_w / 3.0 - 1.0),
                        f2(wdt),
                        f2(0.3 + 0.3 * k as f64),
                        y = f2(cy)
                    );
                }
            }
            Swatch::Node(fill, stroke) => {
                let _ = writeln!(
                    out,
                    "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"{}\" fill=\"{fill}\" stroke=\"{stroke}\"/>",
                    f2(sx + 0.5 * fs),
                    f2(cy - 0.55 * fs),
                    f2(swatch_w - fs),
                    f2(1.1 * fs),
                    f2(0.2 * fs)
                );
            }
        }
        let _ =
            writeln!(out, "{}", text(sx + swatch_w + 0.8 * fs, cy + 0.35 * fs, fs, "start", "fill=\"#222222\"", label));
    }
    let _ = writeln!(out, "</g>");
    out.push_str("</svg>\n");
    out
}

#[derive(Clone)]
enum Swatch {
    /// A line: colour, width, dash as a reader input.
    Line(&'static str, f64, Option<Qkv>),
    /// Three line widths, thin to thick.
    Widths,
    /// A node box: fill, stroke.
    Node(String, &'static str),
}

/// Writes [`circuit_svg`] atomically.
/// Writes the drawing as the path's extension asks: .svg, .pdf or .png.
pub fn write_circuit_svg(path: &Path, c: &Circuit, opts: &CircuitSvgOptions) -> Result<()> {
    super::write_picture(path, &circuit_svg(c, opts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{EdgeScores, GraphShape};
    use crate::render::svg::{check_well_formed, overlapping_texts, text_items};

    #[test]
    fn small_circuit_is_well_formed_and_labels_do_not_overlap() {
        let shape = GraphShape { n_layers: 2, n_heads: 3, parallel_residual: false };
        let mut s = EdgeScores::zeros(shape);
        for (i, (w, r)) in shape.edges().enumerate() {
            s.set(w, r, ((i * 37 % 11) as f32 - 5.0) / 10.0);
        }
        let c = Circuit::top_n(&s, 20).unwrap().pruned();
        let svg = circuit_svg(&c, &CircuitSvgOptions { title: "A & B <test>".into(), ..Default::default() });
        check_well_formed(&svg).unwrap();
        assert!(svg.contains("A &amp; B &lt;test&gt;"));
        assert_eq!(overlapping_texts(&text_items(&svg)), None);
    }
}
