//! `circuitscope evaluate`: the normalised faithfulness of a circuit, or with `--sweep` the
//! faithfulness curve of circuits re-selected from its scores, with CPR and CMD.

use super::args::ModelDataArgs;
use super::common::{check_circuit_matches, check_output, check_picture, parse_edge_counts, read_data, read_scores};
use super::progress::bar;
use anyhow::{bail, Result};
use circuitscope::attribution::{default_points, faithfulness, faithfulness_sweep, FaithfulnessConfig, SweepSelection};
use circuitscope::fsutil::write_atomic;
use circuitscope::graph::Circuit;
use circuitscope::render::{LinePlot, Series};
use serde_json::json;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct EvaluateArgs {
    #[command(flatten)]
    pub run: ModelDataArgs,
    /// a circuit JSON (with --sweep, its scores are used and its selection ignored)
    #[arg(long)]
    pub circuit: PathBuf,
    /// evaluate circuits re-selected from the scores at increasing edge counts
    #[arg(long)]
    pub sweep: bool,
    /// how the sweep selects each circuit: top-n or greedy
    #[arg(long, default_value = "top-n", requires = "sweep")]
    pub selection: String,
    /// the sweep's edge counts, e.g. 10,20,50 [default: 1,2,5,10,20,50,… and every edge]
    #[arg(long, requires = "sweep")]
    pub points: Option<String>,
    /// write the result as JSON
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// draw the sweep's faithfulness curve (.svg, .pdf or .png)
    #[arg(long, requires = "sweep")]
    pub svg: Option<PathBuf>,
    /// report the sweep's smallest circuit whose normalised faithfulness reaches this
    #[arg(long, default_value_t = 0.8, requires = "sweep")]
    pub target: f64,
}

pub fn run(a: &EvaluateArgs) -> Result<()> {
    // Everything that can be checked without the model is checked before loading it.
    let selection = SweepSelection::from_name(&a.selection)?;
    let points = a.points.as_deref().map(|p| parse_edge_counts(p, "--points")).transpose()?;
    if a.run.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    if !(a.target.is_finite() && a.target > 0.0) {
        bail!("--target must be a finite faithfulness above 0, e.g. 0.8 (got {})", a.target);
    }
    if let Some(p) = &a.out {
        check_output(p, "--out")?;
    }
    if let Some(p) = &a.svg {
        check_picture(p, "--svg")?;
    }
    let circuit = if a.sweep { read_scores(&a.circuit)? } else { Circuit::read_json(&a.circuit)? };
    let data = read_data(&a.run)?;
    let n_edges = circuit.shape().n_edges();
    if let Some(bad) = points.iter().flatten().find(|&&n| n == 0 || n > n_edges) {
        bail!("--points: {bad} is out of range: the circuit's graph has {n_edges} edges (give 1 to {n_edges})");
    }

    let (model, _) = super::model::load(&a.run.model, a.run.dtype.into())?;
    check_circuit_matches(&circuit, &a.circuit, model.cfg(), &model.path)?;
    let examples = data.file.examples(model.tokenizer()?)?;
    let cfg = FaithfulnessConfig {
        metric: data.metric,
        ablation: data.ablation(&examples, model.tokenizer()?)?,
        batch_size: a.run.batch_size,
    };
    let setting = json!({
        "circuit": a.circuit, "model": model.path, "data": a.run.data, "n_items": examples.len(),
        "metric": data.metric.name(), "intervention": data.intervention.name(),
        "reference": data.reference_json(&a.run, &cfg.ablation),
    });
    let pb = bar(0, "evaluating");
    let t = std::time::Instant::now();
    let mut result = if a.sweep {
        let points = points.unwrap_or_else(|| default_points(n_edges));
        let sweep = faithfulness_sweep(&model.decoder, &examples, circuit.scores(), selection, &points, &cfg, &pb)?;
        pb.finish_and_clear();
        warn_if_degenerate(sweep.model, sweep.corrupted);
        println!(
            "faithfulness curve over {} items ({} selection, pruned; {} metric, {} ablation)",
            examples.len(),
            selection.name(),
            data.metric,
            data.intervention.name()
        );
        println!("  {:>9} {:>7} {:>6} {:>12} {:>13}", "requested", "edges", "nodes", "metric", "faithfulness");
        for p in &sweep.points {
            println!("  {:>9} {:>7} {:>6} {:>12.4} {:>13.4}", p.requested, p.edges, p.nodes, p.metric, p.faithfulness);
        }
        println!("model {:.4}, corrupted {:.4}", sweep.model, sweep.corrupted);
        println!("CPR {:.4} (area under the curve, higher is better)", sweep.areas.cpr);
        println!("CMD {:.4} (area between the curve and 1, lower is better)", sweep.areas.cmd);
        match sweep.smallest_reaching(a.target) {
            Some(p) => println!(
                "smallest circuit reaching faithfulness {}: {} edges ({:.1} % of {n_edges}), {} nodes, faithfulness {:.4}",
                a.target,
                p.edges,
                100.0 * p.edges as f64 / n_edges as f64,
                p.nodes,
                p.faithfulness
            ),
            None => println!("no circuit of the sweep reaches faithfulness {}", a.target),
        }
        if let Some(p) = &a.svg {
            let title = format!("Faithfulness: {}", data.file.path.file_stem().unwrap_or_default().to_string_lossy());
            LinePlot::faithfulness(title, vec![Series::new(selection.name(), sweep.curve())]).write(p)?;
        }
        sweep.to_json(a.target)
    } else {
        if circuit.n_edges_in_graph() == 0 {
            eprintln!(
                "note: {} selects no edges (a scores file?); its circuit is the corrupted model",
                a.circuit.display()
            );
        }
        let f = faithfulness(&model.decoder, &examples, &[circuit.edge_mask()], &cfg, &pb)?;
        pb.finish_and_clear();
        warn_if_degenerate(f.model, f.corrupted);
        let (metric, normalised) = (f.circuits[0], f.normalised[0]);
        println!(
            "circuit of {} edges, {} nodes, over {} items ({} metric, {} ablation)",
            circuit.n_edges_in_graph(),
            circuit.n_nodes_in_graph(),
            examples.len(),
            data.metric,
            data.intervention.name()
        );
        println!("  model      {:.4}", f.model);
        println!("  corrupted  {:.4}", f.corrupted);
        println!("  circuit    {metric:.4}");
        println!("normalised faithfulness {normalised:.4}");
        json!({
            "edges": circuit.n_edges_in_graph(), "nodes": circuit.n_nodes_in_graph(),
            "model_metric": f.model, "corrupted_metric": f.corrupted, "circuit_metric": metric,
            "faithfulness": normalised,
            "passes": {"forwards": f.passes.forwards, "backwards": f.passes.backwards},
        })
    };
    let seconds = t.elapsed().as_secs_f64();
    if let Some(obj) = result.as_object_mut() {
        for (k, v) in setting.as_object().into_iter().flatten() {
            obj.insert(k.clone(), v.clone());
        }
        obj.insert("seconds".into(), json!(seconds));
    }
    if let Some(p) = &a.out {
        write_atomic(p, (serde_json::to_string_pretty(&result)? + "\n").as_bytes())?;
        println!("wrote {}", p.display());
    }
    if let Some(p) = &a.svg {
        println!("wrote {}", p.display());
    }
    println!("{seconds:.1} s");
    Ok(())
}

/// Normalised faithfulness divides by M(model) − M(corrupted); when the two agree it means nothing.
fn warn_if_degenerate(model: f64, corrupted: f64) {
    if (model - corrupted).abs() <= 1e-6 * model.abs().max(corrupted.abs()).max(1e-12) {
        eprintln!(
            "note: the model ({model:.6}) and the corrupted run ({corrupted:.6}) score the same, so normalised \
             faithfulness is undefined here: the intervention does not change the metric on this data"
        );
    }
}
