//! `circuitscope render`: a circuit JSON drawn as SVG, PDF or PNG (and DOT).

use super::common::{check_output, check_picture, title_or_stem};
use anyhow::Result;
use circuitscope::graph::Circuit;
use circuitscope::render::{write_circuit_svg, CircuitSvgOptions, InactiveNodes};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct RenderArgs {
    pub circuit: PathBuf,
    #[arg(short, long)]
    pub out: PathBuf,
    /// [default: the circuit file's stem]
    #[arg(long)]
    pub title: Option<String>,
    /// leave out the nodes that are not in the circuit (default: drawn faint)
    #[arg(long)]
    pub hide_inactive: bool,
    #[command(flatten)]
    pub drawing: super::args::DrawingArgs,
    /// also write Graphviz DOT
    #[arg(long)]
    pub dot: Option<PathBuf>,
}

pub fn run(a: &RenderArgs) -> Result<()> {
    check_picture(&a.out, "--out")?;
    if let Some(p) = &a.dot {
        check_output(p, "--dot")?;
    }
    let circuit = Circuit::read_json(&a.circuit)?;
    let drawing = a.drawing.options(String::new(), &circuit.shape())?;
    let title = title_or_stem(a.title.as_deref(), &a.circuit);
    let inactive = if a.hide_inactive { InactiveNodes::Hidden } else { InactiveNodes::Faint };
    write_circuit_svg(&a.out, &circuit, &CircuitSvgOptions { title: title.clone(), inactive, ..drawing })?;
    if let Some(p) = &a.dot {
        circuit.write_dot(p, &title)?;
    }
    println!(
        "{}: {} edges, {} nodes; wrote {}{}",
        a.circuit.display(),
        circuit.n_edges_in_graph(),
        circuit.n_nodes_in_graph(),
        a.out.display(),
        a.dot.as_ref().map(|p| format!(" and {}", p.display())).unwrap_or_default()
    );
    Ok(())
}
