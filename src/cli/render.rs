//! `circuitscope render`: a circuit JSON drawn as SVG (and DOT).

use super::circuit::title_or_stem;
use super::common::check_output;
use crate::RenderArgs;
use anyhow::Result;
use circuitscope::graph::Circuit;
use circuitscope::render::{write_circuit_svg, CircuitSvgOptions, InactiveNodes};

pub fn run(a: &RenderArgs) -> Result<()> {
    check_output(&a.out, "--out")?;
    if let Some(p) = &a.dot {
        check_output(p, "--dot")?;
    }
    let circuit = Circuit::read_json(&a.circuit)?;
    let title = title_or_stem(a.title.as_deref(), &a.circuit);
    let inactive = if a.hide_inactive { InactiveNodes::Hidden } else { InactiveNodes::Faint };
    write_circuit_svg(&a.out, &circuit, &CircuitSvgOptions { title: title.clone(), inactive, ..Default::default() })?;
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
