//! `circuitscope view`: a circuit (or the strongest edges of a scores file) as one self-contained
//! HTML page to explore in a browser: hover for scores, click a node to trace it, filter by top-n
//! or |score|.

use super::common::{check_output, read_scores, title_or_stem};
use anyhow::{bail, Result};
use circuitscope::fsutil::write_atomic;
use circuitscope::graph::Circuit;
use circuitscope::render::view::circuit_html;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ViewArgs {
    /// a circuit JSON (its edges are shown) or a scores file (its strongest edges)
    pub circuit: PathBuf,
    /// the page to write (.html)
    #[arg(short, long)]
    pub out: PathBuf,
    /// a scores file with no circuit selected: show its N edges of largest |score|, pruned
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub top: usize,
    /// [default: the circuit file's stem]
    #[arg(long)]
    pub title: Option<String>,
    #[command(flatten)]
    pub drawing: super::args::DrawingArgs,
}

pub fn run(a: &ViewArgs) -> Result<()> {
    check_output(&a.out, "--out")?;
    if a.out.extension().is_none_or(|e| e != "html") {
        bail!("--out {}: the page is HTML; give a file name ending in .html", a.out.display());
    }
    let source = read_scores(&a.circuit)?;
    let drawing = a.drawing.options(title_or_stem(a.title.as_deref(), &a.circuit), &source.shape())?;
    let n_edges = source.shape().n_edges();
    let circuit = if source.n_edges_in_graph() > 0 {
        source
    } else {
        if a.top == 0 || a.top > n_edges {
            bail!("--top {} is out of range: the graph has {n_edges} edges (give 1 to {n_edges})", a.top);
        }
        Circuit::top_n(source.scores(), a.top)?.pruned()
    };
    if circuit.n_edges_in_graph() == 0 {
        bail!("{}: no edge to show (none lies on an input → logits path)", a.circuit.display());
    }
    write_atomic(&a.out, circuit_html(&circuit, &drawing).as_bytes())?;
    println!(
        "{}: {} edges, {} nodes; wrote {} (open it in a browser)",
        a.circuit.display(),
        circuit.n_edges_in_graph(),
        circuit.n_nodes_in_graph(),
        a.out.display()
    );
    Ok(())
}
