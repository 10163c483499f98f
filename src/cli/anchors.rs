//! `circuitscope anchors`: CUD's anchors (ALGORITHMS.md §5, step 3). Several unlearning methods,
//! each at its documented settings from the original weights, rank the forget samples by their
//! answer NLL after the run; per method its k easiest and k hardest, and the consensus sets, go to
//! a folder with a record of every run.

use super::common::check_output_dir;
use super::model::load;
use super::progress::bar;
use super::unlearn::qa_file;
use anyhow::{bail, Result};
use candle_core::DType;
use circuitscope::data::QaPair;
use circuitscope::unlearn::anchors::{run_method, sample_nll, Consensus, MethodRun};
use circuitscope::unlearn::{Method, UnlearnConfig};
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct AnchorsArgs {
    /// the model before unlearning (a checkpoint folder, a Llama-family GGUF, or `smollm2`)
    pub model: PathBuf,
    /// the forget set (question/answer JSONL)
    #[arg(long)]
    pub forget: PathBuf,
    /// the retain set the methods keep
    #[arg(long)]
    pub retain: PathBuf,
    /// the folder to write (refused if it exists and is not empty, unless --force)
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long)]
    pub force: bool,
    /// the methods, comma-separated, each at its documented settings
    #[arg(long, default_value = "grad-diff,npo,simnpo,rmu")]
    pub methods: String,
    /// easiest and hardest samples kept per method [default: a quarter of the forget set]
    #[arg(long)]
    pub k: Option<usize>,
    /// use only the first N items of each file
    #[arg(long)]
    pub limit: Option<usize>,
    #[command(flatten)]
    pub prompt: super::args::PromptArgs,
}

fn jsonl(pairs: &[QaPair], indices: &[usize]) -> Result<Vec<u8>> {
    let mut out = String::new();
    for &i in indices {
        out.push_str(&serde_json::to_string(&pairs[i])?);
        out.push('\n');
    }
    Ok(out.into_bytes())
}

pub fn run(a: &AnchorsArgs) -> Result<()> {
    let methods: Vec<Method> = a.methods.split(',').map(|m| Method::from_name(m.trim())).collect::<Result<_, _>>()?;
    if methods.is_empty() || a.k == Some(0) || a.limit == Some(0) {
        bail!("--methods needs at least one method, and --k and --limit must be at least 1");
    }
    check_output_dir(&a.out, a.force)?;
    let (original, _) = load(&a.model, DType::F32)?;
    let format = a.prompt.format(&original)?;
    let (pairs, forget) = qa_file(&a.forget, a.limit, &original, &format)?;
    let (_, retain) = qa_file(&a.retain, a.limit, &original, &format)?;
    let k = a.k.unwrap_or((forget.len() / 4).max(1));
    if k > forget.len() {
        bail!("--k {k}: the forget set has {} samples", forget.len());
    }
    let nll_before = sample_nll(&original.decoder, &forget, UnlearnConfig::documented(Method::Npo).batch)?;
    println!("anchors: {} forget samples ({} retain), {} methods, k = {k}", forget.len(), retain.len(), methods.len());
    let mut runs: Vec<MethodRun> = Vec::new();
    for m in &methods {
        let mut cfg = UnlearnConfig::documented(*m);
        cfg.fit_rmu(&original.decoder, &forget, None, None)?;
        let pb = bar(0, m.name());
        let r = run_method(&original.path, &original.decoder, m.name(), &forget, &retain, &cfg, k, &pb)?;
        pb.finish_and_clear();
        let mean = r.nll_after.iter().sum::<f64>() / r.nll_after.len() as f64;
        println!("{:<12} {} steps, {:.1} s, mean forget NLL after {mean:.3}", m.name(), r.steps.len(), r.seconds);
        runs.push(r);
    }
    let c = Consensus::of(&runs);
    println!("consensus (in at least {} of {} methods): {}", runs.len().div_ceil(2), runs.len(), c.describe());
    let (easy, hard) = (c.easy, c.hard);
    let shape = circuitscope::graph::GraphShape::of(original.cfg());
    let record = json!({
        "graph": {"n_layers": shape.n_layers, "n_heads": shape.n_heads, "parallel_residual": shape.parallel_residual},
        "model": a.model, "forget": a.forget, "retain": a.retain, "limit": a.limit, "k": k,
        "prompt_format": format, "nll_before": nll_before, "methods": runs,
        "consensus": {"min_methods": runs.len().div_ceil(2), "easy": easy, "hard": hard, "contested": c.contested},
    });
    let mut files: Vec<(PathBuf, Vec<u8>)> =
        vec![(PathBuf::from("anchors.json"), (serde_json::to_string_pretty(&record)? + "\n").into_bytes())];
    for r in &runs {
        files.push((Path::new(&r.method).join("easy.jsonl"), jsonl(&pairs, &r.easy)?));
        files.push((Path::new(&r.method).join("hard.jsonl"), jsonl(&pairs, &r.hard)?));
    }
    files.push((Path::new("consensus").join("easy.jsonl"), jsonl(&pairs, &easy)?));
    files.push((Path::new("consensus").join("hard.jsonl"), jsonl(&pairs, &hard)?));
    circuitscope::fsutil::write_dir_atomic(&a.out, |tmp| {
        for (rel, bytes) in &files {
            let p = tmp.join(rel);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(|e| circuitscope::Error::io(parent, e))?;
            }
            std::fs::write(&p, bytes).map_err(|e| circuitscope::Error::io(&p, e))?;
        }
        Ok(())
    })?;
    println!("wrote {}", a.out.display());
    Ok(())
}
