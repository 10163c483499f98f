//! Graphviz DOT export of a circuit's in-circuit nodes and edges.
//!
//! Drawn bottom to top (`rankdir=BT`): `input` at the bottom, `logits` at the top, each
//! layer's heads on one rank (`rank=same`), the MLP on its own rank above them (on the heads'
//! rank in parallel-residual models, where it does not read them). Edge colour by sign
//! (Okabe–Ito blue positive, vermillion negative: colour-blind safe), `penwidth` from 0.5 to 5
//! by |score| / max |score| over the circuit, and the reader input by style: q solid,
//! k dashed, v dotted (MLP and logits inputs solid), with `headlabel` q/k/v.

use std::fmt::Write as _;
use std::path::Path;

use super::{Circuit, Qkv, Reader, Writer};
use crate::error::Result;
use crate::fsutil::write_atomic;

pub const POSITIVE_COLOUR: &str = "#0072B2";
pub const NEGATIVE_COLOUR: &str = "#D55E00";

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl Circuit {
    /// The circuit as a DOT `digraph` titled `title`.
    pub fn to_dot(&self, title: &str) -> String {
        let shape = self.shape();
        let mut out = String::new();
        let _ = writeln!(out, "digraph circuit {{");
        let _ = writeln!(out, "  label={}; labelloc=t; fontname=\"Helvetica\";", quote(title));
        let _ = writeln!(out, "  rankdir=BT; splines=true; nodesep=0.25; ranksep=0.6;");
        let _ = writeln!(
            out,
            "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=11, color=\"#333333\"];"
        );
        let _ = writeln!(out, "  edge [arrowsize=0.6];");
        let node = |n: usize, fill: &str| format!("{} [fillcolor=\"{fill}\"];", quote(&shape.node_name(n)));
        if self.node_in_graph(0) {
            let _ = writeln!(out, "  {{ rank=min; {} }}", node(0, "#E6E6E6"));
        }
        for layer in 0..shape.n_layers {
            let heads: Vec<usize> = (0..shape.n_heads)
                .map(|head| shape.writer_index(Writer::Head { layer, head }))
                .filter(|&n| self.node_in_graph(n))
                .collect();
            let mlp = shape.writer_index(Writer::Mlp { layer });
            let mut rank: Vec<String> = heads.iter().map(|&n| node(n, "#DCEAF7")).collect();
            if shape.parallel_residual && self.node_in_graph(mlp) {
                rank.push(node(mlp, "#FBE3CF"));
            }
            if !rank.is_empty() {
                let _ = writeln!(out, "  {{ rank=same; {} }}", rank.join(" "));
            }
            if !shape.parallel_residual && self.node_in_graph(mlp) {
                let _ = writeln!(out, "  {{ rank=same; {} }}", node(mlp, "#FBE3CF"));
            }
        }
        let _ = writeln!(out, "  {{ rank=max; {} }}", node(shape.logits_node(), "#E6E6E6"));

        let max = self.edges_in_graph().map(|(_, _, s)| s.abs()).filter(|s| s.is_finite()).fold(0.0f32, f32::max);
        for (w, r, s) in self.edges_in_graph() {
            let rel = if max > 0.0 && s.is_finite() { s.abs() / max } else { 0.0 };
            let colour = if s < 0.0 { NEGATIVE_COLOUR } else { POSITIVE_COLOUR };
            let (style, label) = match shape.reader(r) {
                Reader::Head { qkv: Qkv::Q, .. } => ("solid", ", headlabel=\"q\""),
                Reader::Head { qkv: Qkv::K, .. } => ("dashed", ", headlabel=\"k\""),
                Reader::Head { qkv: Qkv::V, .. } => ("dotted", ", headlabel=\"v\""),
                _ => ("solid", ""),
            };
            let _ = writeln!(
                out,
                "  {} -> {} [color=\"{colour}\", penwidth={:.2}, style={style}{label}, tooltip={}];",
                quote(&shape.writer(w).name()),
                quote(&shape.node_name(shape.node_of_reader(r))),
                0.5 + 4.5 * rel,
                quote(&format!("{} ({s:.4e})", shape.edge_name_of(w, r)))
            );
        }
        out.push_str("}\n");
        out
    }

    /// Writes [`Circuit::to_dot`] atomically.
    pub fn write_dot(&self, path: &Path, title: &str) -> Result<()> {
        write_atomic(path, self.to_dot(title).as_bytes())
    }
}
