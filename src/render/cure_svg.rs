//! A CURE partition as an SVG grid: one row per layer, one column per head and one for the MLP,
//! each cell coloured by its category (stronger for a higher score) and labelled with its
//! normalised forget and retain scores.

use super::circuit_svg::NodeFills;
use super::svg::{escape, text};
use crate::analyses::cure::{Category, Partition};
use std::fmt::Write;

fn colour(c: Category) -> (f64, f64, f64) {
    match c {
        Category::ForgetSpecific => (214.0, 39.0, 40.0),
        Category::RetainSpecific => (31.0, 119.0, 180.0),
        Category::TaskShared => (148.0, 103.0, 189.0),
        Category::Outside => (200.0, 200.0, 200.0),
    }
}

/// The cell's fill: the category's colour, mixed with white in proportion to how weak the
/// module's stronger score is (outside modules stay pale).
fn fill(c: Category, strength: f64) -> String {
    let (r, g, b) = colour(c);
    let a = if c == Category::Outside { 0.25 } else { 0.35 + 0.65 * strength.clamp(0.0, 1.0) };
    let mix = |x: f64| 255.0 - a * (255.0 - x);
    format!("rgb({:.0},{:.0},{:.0})", mix(r), mix(g), mix(b))
}

pub fn cure_svg(p: &Partition, title: &str) -> String {
    let (layers, heads) = (p.model.n_layers, p.model.n_heads);
    let (cw, ch) = (58.0, 30.0);
    let (x0, y0) = (60.0, 64.0);
    let legend: Vec<(Category, String)> =
        Category::ALL.iter().map(|&c| (c, format!("{} ({})", c.name(), p.count(c)))).collect();
    let legend_w: f64 = legend.iter().map(|(_, l)| 35.0 + super::svg::text_width(l, 10.0, false)).sum::<f64>() + 10.0;
    let w = (x0 + cw * (heads + 1) as f64 + 20.0).max(legend_w).max(super::svg::text_width(title, 13.0, true) + 20.0);
    let legend_y = y0 + ch * layers as f64 + 24.0;
    let h = legend_y + 44.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="Helvetica, Arial, sans-serif" font-size="10">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    s.push_str(&text(10.0, 20.0, 13.0, "start", r#"font-weight="bold""#, title));
    s.push_str(&text(
        10.0,
        38.0,
        10.0,
        "start",
        r##"fill="#555555""##,
        "cell: normalised forget score (f) and retain score (r)",
    ));
    for col in 0..=heads {
        let label = if col == heads { "MLP".to_string() } else { format!("h{col}") };
        s.push_str(&text(x0 + cw * (col as f64 + 0.5), y0 - 8.0, 10.0, "middle", "", &label));
    }
    for layer in 0..layers {
        s.push_str(&text(x0 - 8.0, y0 + ch * (layer as f64 + 0.5) + 3.5, 10.0, "end", "", &format!("layer {layer}")));
    }
    for m in &p.modules {
        let col = m.head.unwrap_or(heads);
        let (x, y) = (x0 + cw * col as f64, y0 + ch * m.layer as f64);
        let _ = writeln!(
            s,
            r##"<rect x="{x:.1}" y="{y:.1}" width="{cw}" height="{ch}" fill="{}" stroke="white" stroke-width="1.5"><title>{}: {} (forget {:.3}, retain {:.3})</title></rect>"##,
            fill(m.category, m.forget.max(m.retain)),
            escape(&m.name),
            m.category.name(),
            m.forget,
            m.retain
        );
        let label = format!("f {:.2} r {:.2}", m.forget, m.retain);
        s.push_str(&text(x + cw / 2.0, y + ch / 2.0 + 3.0, 8.5, "middle", "", &label));
    }
    let mut x = 10.0;
    for (c, label) in legend {
        let _ = writeln!(
            s,
            r##"<rect x="{x:.1}" y="{legend_y:.1}" width="14" height="14" fill="{}" stroke="#999999" stroke-width="0.5"/>"##,
            fill(c, 1.0)
        );
        s.push_str(&text(x + 19.0, legend_y + 11.0, 10.0, "start", "", &label));
        x += 35.0 + super::svg::text_width(&label, 10.0, false);
    }
    s.push_str("</svg>\n");
    s
}

/// A partition as circuit-drawing fills (`circuitscope circuit --partition`) for a circuit of
/// `shape`: each module's node in its category's colour (a light one for outside modules), one
/// legend row per category with its count. Refused for a partition of another model's shape.
pub fn partition_fills(p: &Partition, shape: &crate::graph::GraphShape) -> crate::error::Result<NodeFills> {
    if (p.model.n_layers, p.model.n_heads) != (shape.n_layers, shape.n_heads) {
        return Err(crate::error::Error::input(format!(
            "the partition was made for a model of {} layers × {} heads, the circuit's has {} × {}",
            p.model.n_layers, p.model.n_heads, shape.n_layers, shape.n_heads
        )));
    }
    Ok(NodeFills {
        by_node: p.modules.iter().map(|m| (m.name.clone(), fill(m.category, 0.6))).collect(),
        legend: Category::ALL
            .iter()
            .map(|&c| {
                let n = p.count(c);
                (fill(c, 0.6), format!("CURE: {} ({n} module{})", c.name(), if n == 1 { "" } else { "s" }))
            })
            .collect(),
    })
}
