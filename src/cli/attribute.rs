//! `circuitscope attribute`: edge scores of a metric over a data file, written as an EAP-IG
//! circuit JSON (every edge scored, none selected), a `<stem>.meta.json` beside it, and with
//! `--per-sample` a `<stem>.per_sample.safetensors`.

use super::args::ModelDataArgs;
use super::common::{check_output, fmt_score, read_data, sibling};
use super::progress::bar;
use anyhow::{bail, Result};
use candle_core::DType;
use circuitscope::attribution::{attribute, AttributionConfig, Method, Metric, ReaderFix};
use circuitscope::fsutil::write_atomic;
use circuitscope::graph::Circuit;
use serde_json::json;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct AttributeArgs {
    #[command(flatten)]
    pub run: ModelDataArgs,
    // the names come from `Method::all`, the one list of methods
    #[arg(long, default_value = "eap-ig-inputs", help = Method::names().join(", "))]
    pub method: String,
    /// integration steps m of the EAP-IG methods
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// also write one score matrix per item to <out stem>.per_sample.safetensors
    #[arg(long)]
    pub per_sample: bool,
    /// rows per forward pass: EAP-IG's items × interpolation steps (the steps of a batch share
    /// passes up to it; the batch size gives one step per pass), exact patching's items × edges
    #[arg(long, default_value_t = AttributionConfig::default().max_rows)]
    pub max_rows: usize,
    /// gradient methods: score query and key edges through their exactly recomputed attention
    /// pattern (AtP*'s QK fix), which a saturated softmax otherwise hides from the gradient
    #[arg(long)]
    pub qk_fix: bool,
    /// gradient methods: score edges into MLPs through the exactly recomputed MLP output
    #[arg(long)]
    pub mlp_fix: bool,
    /// the scores file to write (EAP-IG JSON); <out stem>.meta.json is written beside it
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(a: &AttributeArgs) -> Result<()> {
    // Everything that can be checked without the model is checked before loading it.
    let method = Method::from_name(&a.method, a.steps)?;
    if method.steps() == Some(0) {
        bail!("--steps must be at least 1");
    }
    if (a.qk_fix || a.mlp_fix) && method == Method::Exact {
        bail!("--qk-fix and --mlp-fix apply to the gradient methods; exact patching needs no fix");
    }
    if a.run.batch_size == 0 || a.max_rows == 0 {
        bail!("--batch-size and --max-rows must be at least 1");
    }
    check_output(&a.out, "--out")?;
    let (meta_path, per_sample_path) = (sibling(&a.out, ".meta.json"), sibling(&a.out, ".per_sample.safetensors"));
    let data = read_data(&a.run)?;
    if data.metric == Metric::Kl && method == Method::Eap {
        // KL to the clean distribution is at its minimum on the clean run, where EAP takes its
        // one gradient: every score is zero up to rounding.
        eprintln!(
            "note: the gradient of KL at the clean run is zero, so EAP's scores are rounding noise; use \
             eap-ig-inputs, eap-ig-activations, clean-corrupted or exact with --metric kl"
        );
    }

    let dtype: DType = a.run.dtype.into();
    let (model, _) = super::model::load(&a.run.model, dtype)?;
    let examples = data.file.examples(model.tokenizer()?)?;
    let cfg = AttributionConfig {
        method,
        metric: data.metric,
        ablation: data.ablation(&examples, model.tokenizer()?)?,
        batch_size: a.run.batch_size,
        per_sample: a.per_sample,
        max_rows: a.max_rows,
        fix: ReaderFix { qk: a.qk_fix, mlp: a.mlp_fix },
        ..Default::default()
    };
    println!(
        "attributing {} over {} {} items of {} ({} ablation, {} metric)",
        method.name(),
        examples.len(),
        data.file.kind().name(),
        a.run.data.display(),
        data.intervention.name(),
        data.metric
    );
    let pb = bar(0, "attributing");
    let t = std::time::Instant::now();
    let result = attribute(&model.decoder, &examples, &cfg, &pb)?;
    let seconds = t.elapsed().as_secs_f64();
    pb.finish_and_clear();

    let mut circuit = Circuit::empty(result.scores.clone()).with_d_model(model.cfg().d_model);
    if let Some(nodes) = &result.node_scores {
        // The circuit's node vector also has `logits` (last), which is not scored.
        let mut nodes = nodes.clone();
        nodes.push(f32::NAN);
        circuit.set_node_scores(Some(nodes));
    }
    let meta = json!({
        "method": method.name(), "steps": method.steps(), "fix": cfg.fix.name(), "metric": data.metric.name(),
        "intervention": data.intervention.name(), "reference": data.reference_json(&a.run, &cfg.ablation), "data": a.run.data, "data_kind": data.file.kind().name(),
        "n_items": examples.len(), "batch_size": a.run.batch_size, "max_rows": a.max_rows, "model": model.path,
        "dtype": format!("{dtype:?}").to_lowercase(),
        "device": circuitscope::model::device::name(model.decoder.device()),
        "passes": {"forwards": result.passes.forwards, "backwards": result.passes.backwards},
        "seconds": seconds, "clean_metric": result.clean_metric, "corrupted_metric": result.corrupted_metric,
        "scores": a.out, "per_sample": a.per_sample.then_some(&per_sample_path),
    });
    // Each file is written atomically; the scores last, so their presence means a finished run.
    if a.per_sample {
        result.write_per_sample(&per_sample_path)?;
    }
    write_atomic(&meta_path, (serde_json::to_string_pretty(&meta)? + "\n").as_bytes())?;
    circuit.write_json(&a.out)?;

    let shape = result.scores.shape;
    let mut ranked: Vec<(usize, usize, f32)> = result.scores.edges().collect();
    ranked.sort_by(|x, y| y.2.abs().total_cmp(&x.2.abs()));
    println!("top edges by |score| (positive: patching the edge hurts the task):");
    for (w, r, s) in ranked.iter().take(10) {
        println!("  {:<28} {}", shape.edge_name_of(*w, *r), fmt_score(*s));
    }
    let corrupted = result.corrupted_metric.map(|c| format!(", corrupted {c:.4}")).unwrap_or_default();
    println!("{}: clean {:.4}{corrupted}", data.metric, result.clean_metric);
    println!(
        "{} edges scored with {} forward and {} backward passes in {seconds:.1} s",
        shape.n_edges(),
        result.passes.forwards,
        result.passes.backwards
    );
    println!("wrote {} and {}", a.out.display(), meta_path.display());
    if a.per_sample {
        println!("wrote {}", per_sample_path.display());
    }
    Ok(())
}
