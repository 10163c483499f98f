//! `circuitscope circuit`: a circuit selected from a scores file, pruned, written as JSON, and
//! optionally drawn (SVG, DOT).

use super::common::{check_output, check_picture, fmt_score, read_scores, title_or_stem};
use anyhow::{bail, Result};
use circuitscope::graph::Circuit;
use circuitscope::render::write_circuit_svg;
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("selection").required(true).args(["top_n", "greedy", "threshold"])))]
pub struct CircuitArgs {
    /// a scores or circuit JSON (EAP-IG layout)
    pub scores: PathBuf,
    /// keep the N edges of largest |score|
    #[arg(long, value_name = "N")]
    pub top_n: Option<usize>,
    /// grow the circuit from the logits, N edges
    #[arg(long, value_name = "N")]
    pub greedy: Option<usize>,
    /// keep edges with |score| ≥ T
    #[arg(long, value_name = "T")]
    pub threshold: Option<f32>,
    /// keep nodes and edges that lie on no input → logits path
    #[arg(long)]
    pub no_prune: bool,
    #[arg(long)]
    pub out: PathBuf,
    /// draw the circuit: .svg, .pdf or .png, chosen by the extension
    #[arg(long)]
    pub svg: Option<PathBuf>,
    #[arg(long)]
    pub dot: Option<PathBuf>,
    #[command(flatten)]
    pub drawing: super::args::DrawingArgs,
    /// title of the drawings [default: the output file's stem]
    #[arg(long)]
    pub title: Option<String>,
}

pub fn run(a: &CircuitArgs) -> Result<()> {
    check_output(&a.out, "--out")?;
    if let Some(p) = &a.svg {
        check_picture(p, "--svg")?;
    }
    if let Some(p) = &a.dot {
        check_output(p, "--dot")?;
    }
    let source = read_scores(&a.scores)?;
    let scores = source.scores();
    let n_edges = scores.shape.n_edges();
    let (mut circuit, how) = match (a.top_n, a.greedy, a.threshold) {
        (Some(n), ..) => {
            if n == 0 || n > n_edges {
                bail!("--top-n {n} is out of range: the graph has {n_edges} edges (give 1 to {n_edges})");
            }
            (Circuit::top_n(scores, n)?, format!("top {n}"))
        }
        (_, Some(n), _) => {
            if n == 0 || n > n_edges {
                bail!("--greedy {n} is out of range: the graph has {n_edges} edges (give 1 to {n_edges})");
            }
            (Circuit::greedy(scores, n)?, format!("greedy {n}"))
        }
        (.., Some(t)) => {
            if !(t.is_finite() && t >= 0.0) {
                bail!("--threshold {t}: give a finite |score| of at least 0");
            }
            (Circuit::threshold(scores, t), format!("|score| ≥ {t}"))
        }
        _ => bail!("give one of --top-n N, --greedy N or --threshold T"),
    };
    let selected = circuit.n_edges_in_graph();
    if !a.no_prune {
        circuit.prune();
    }
    circuit.set_node_scores(source.node_scores().map(<[f32]>::to_vec));
    circuit.set_d_model(source.d_model());

    let title = title_or_stem(a.title.as_deref(), &a.out);
    let drawing = a.drawing.options(title.clone(), &circuit.shape())?;
    circuit.write_json(&a.out)?;
    if let Some(p) = &a.svg {
        write_circuit_svg(p, &circuit, &drawing)?;
    }
    if let Some(p) = &a.dot {
        circuit.write_dot(p, &title)?;
    }

    let pruned = if a.no_prune { "not pruned".to_string() } else { format!("{selected} before pruning") };
    println!(
        "{how}: {} of {n_edges} edges ({pruned}), {} of {} nodes",
        circuit.n_edges_in_graph(),
        circuit.n_nodes_in_graph(),
        circuit.shape().n_fwd()
    );
    if circuit.n_edges_in_graph() == 0 {
        // Written anyway (an empty circuit is a valid one: the corrupted model), but never silently.
        eprintln!(
            "note: the circuit is empty: {}",
            if selected == 0 {
                format!("{how} selects no edge of {}", a.scores.display())
            } else {
                format!(
                    "none of the {selected} selected edges lies on a path from the input to the logits, so pruning \
                     removed them all (select more edges, or --no-prune)"
                )
            }
        );
    }
    print_top_nodes(&circuit);
    for p in [Some(&a.out), a.svg.as_ref(), a.dot.as_ref()].into_iter().flatten() {
        println!("wrote {}", p.display());
    }
    Ok(())
}

/// The circuit's nodes ranked by the total |score| of their in-circuit edges (in and out).
fn print_top_nodes(c: &Circuit) {
    let shape = c.shape();
    let mut weight = vec![0f64; shape.n_nodes()];
    for (w, r, s) in c.edges_in_graph() {
        let s = f64::from(s.abs());
        if s.is_finite() {
            weight[w] += s;
            weight[shape.node_of_reader(r)] += s;
        }
    }
    let mut nodes: Vec<usize> = (0..shape.n_nodes()).filter(|&n| c.node_in_graph(n) && weight[n] > 0.0).collect();
    nodes.sort_by(|x, y| weight[*y].total_cmp(&weight[*x]));
    if nodes.is_empty() {
        return;
    }
    println!("top nodes by the |score| of their circuit edges:");
    for n in nodes.into_iter().take(10) {
        let score = c
            .node_scores()
            .filter(|s| s[n].is_finite())
            .map(|s| format!("  node score {}", fmt_score(s[n])))
            .unwrap_or_default();
        println!("  {:<8} {:.4e}{score}", shape.node_name(n), weight[n]);
    }
}
