//! `circuitscope cud`: circuit-guided unlearning difficulty of every forget sample (ALGORITHMS.md
//! §5) against the easy and hard anchors that `circuitscope anchors` wrote: per-sample EAP-IG
//! circuits, the two anchor circuits, and per sample CUD with its circuit's structure, as CSV.

use super::common::{check_output, sibling};
use super::model::load;
use super::progress::bar;
use super::unlearn::qa_file;
use anyhow::{bail, Result};
use candle_core::DType;
use circuitscope::analyses::cud::{anchor_circuit, score_samples, CircuitVector, CudSettings, Similarity};
use serde_json::json;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct CudArgs {
    /// the model before unlearning
    pub model: PathBuf,
    /// the forget samples to score (question/answer JSONL)
    #[arg(long)]
    pub forget: PathBuf,
    /// the folder `circuitscope anchors` wrote
    #[arg(long)]
    pub anchors: PathBuf,
    /// which anchor sets: `consensus` or one method's (e.g. `npo`)
    #[arg(long, default_value = "consensus")]
    pub anchor_set: String,
    /// circuit vectors: `weighted` (score × in-circuit) or `binary`
    #[arg(long, default_value = "weighted")]
    pub vector: String,
    /// `cosine`, `jaccard` or `hamming`
    #[arg(long, default_value = "cosine")]
    pub similarity: String,
    /// edges per greedy circuit
    #[arg(long, default_value_t = 75)]
    pub edges: usize,
    /// EAP-IG interpolation steps
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// samples per forward pass
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// score only the first N forget samples
    #[arg(long)]
    pub limit: Option<usize>,
    #[command(flatten)]
    pub prompt: super::args::PromptArgs,
    /// the CSV to write (its settings go to <stem>.meta.json beside it)
    #[arg(long)]
    pub out: PathBuf,
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn run(a: &CudArgs) -> Result<()> {
    let vector = match a.vector.as_str() {
        "weighted" => CircuitVector::Weighted,
        "binary" => CircuitVector::Binary,
        v => bail!("--vector {v}: expected weighted or binary"),
    };
    let similarity = match a.similarity.as_str() {
        "cosine" => Similarity::Cosine,
        "jaccard" => Similarity::Jaccard,
        "hamming" => Similarity::Hamming,
        v => bail!("--similarity {v}: expected cosine, jaccard or hamming"),
    };
    if a.edges == 0 || a.steps == 0 || a.batch == 0 || a.limit == Some(0) {
        bail!("--edges, --steps, --batch and --limit must be at least 1");
    }
    let set_dir = a.anchors.join(&a.anchor_set);
    let (easy_path, hard_path) = (set_dir.join("easy.jsonl"), set_dir.join("hard.jsonl"));
    for p in [&easy_path, &hard_path] {
        if !p.exists() {
            bail!("{} does not exist: --anchors takes the folder `circuitscope anchors` wrote", p.display());
        }
    }
    check_output(&a.out, "--out")?;
    let meta_path = sibling(&a.out, ".meta.json");
    let (model, _) = load(&a.model, DType::F32)?;
    let format = a.prompt.format(&model)?;
    let (pairs, forget) = qa_file(&a.forget, a.limit, &model, &format)?;
    let (_, easy) = qa_file(&easy_path, None, &model, &format)?;
    let (_, hard) = qa_file(&hard_path, None, &model, &format)?;
    let settings = CudSettings { steps: a.steps, edges: a.edges, vector, similarity, batch: a.batch };
    let t = std::time::Instant::now();
    let pb = bar(0, "easy anchor");
    let e = anchor_circuit(&model.decoder, &easy, &settings, &pb)?;
    pb.finish_and_clear();
    let pb = bar(0, "hard anchor");
    let h = anchor_circuit(&model.decoder, &hard, &settings, &pb)?;
    pb.finish_and_clear();
    let pb = bar(0, "samples");
    let scores = score_samples(&model.decoder, &forget, &e, &h, &settings, &pb)?;
    pb.finish_and_clear();
    let seconds = t.elapsed().as_secs_f64();
    let mut csv = String::from("index,question,cud,d_easy,d_hard,edges,mean_writer_layer,deepest_layer\n");
    for (i, (q, s)) in pairs.iter().zip(&scores).enumerate() {
        csv.push_str(&format!(
            "{i},{},{:.6},{:.6},{:.6},{},{:.4},{}\n",
            csv_field(&q.question),
            s.cud,
            s.d_easy,
            s.d_hard,
            s.edges,
            s.mean_writer_layer,
            s.deepest_layer
        ));
    }
    let meta = json!({
        "model": a.model, "forget": a.forget, "limit": a.limit, "anchors": a.anchors, "anchor_set": a.anchor_set,
        "easy_samples": easy.len(), "hard_samples": hard.len(), "settings": settings, "prompt_format": format,
        "easy_circuit_edges": e.n_edges_in_graph(), "hard_circuit_edges": h.n_edges_in_graph(),
        "attribution": "EAP-IG on activations, zero ablation, metric: the answer's probability exp(−mean NLL)",
        "seconds": seconds,
    });
    circuitscope::fsutil::write_atomic(&a.out, csv.as_bytes())?;
    circuitscope::fsutil::write_atomic(&meta_path, (serde_json::to_string_pretty(&meta)? + "\n").as_bytes())?;
    let mean = scores.iter().map(|s| s.cud).sum::<f64>() / scores.len().max(1) as f64;
    println!(
        "CUD of {} samples (mean {mean:.3}) against {} easy and {} hard anchors in {seconds:.1} s; wrote {} and {}",
        scores.len(),
        easy.len(),
        hard.len(),
        a.out.display(),
        meta_path.display()
    );
    Ok(())
}
