//! `circuitscope unlearn`: unlearns a question/answer forget set from a model directory and writes
//! the unlearned checkpoint, with `unlearn.json` (the settings, every step, and the answers' NLL
//! before and after on both sets).

use super::common::check_output_dir;
use super::model::load;
use super::progress::bar;
use anyhow::{bail, Result};
use candle_core::DType;
use circuitscope::attribution::{batches_on, Example};
use circuitscope::data::{ExampleFile, QaPair};
use circuitscope::hooks::HookSet;
use circuitscope::model::{Decoder, Tokenizer};
use circuitscope::train::eval::qa_accuracy;
use circuitscope::train::Trainable;
use circuitscope::unlearn::run::rmu_scale;
use circuitscope::unlearn::{answer_nll, unlearn, Method, Objective, UnlearnConfig};
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct UnlearnArgs {
    /// a model directory (config.json + safetensors) with a tokenizer
    pub model: PathBuf,
    /// question/answer JSONL to forget (`question`, `answer`)
    #[arg(long)]
    pub forget: PathBuf,
    /// question/answer JSONL to keep: the retain loss (every method but grad-ascent)
    #[arg(long)]
    pub retain: Option<PathBuf>,
    #[arg(long, default_value = "grad-diff", help = method_help())]
    pub method: String,
    /// the checkpoint folder to write (refused if it exists and is not empty, unless --force)
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long)]
    pub force: bool,
    /// peak learning rate (AdamW) [default: 2e-4; rmu 4e-4]
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// forget (and retain) items per batch
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// batches per optimiser step
    #[arg(long, default_value_t = 1)]
    pub accumulate: usize,
    /// warm-up steps
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// global gradient-norm clip
    #[arg(long, default_value_t = 1.0)]
    pub clip: f64,
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// γ, the forget objective's weight [default: the method's]
    #[arg(long)]
    pub gamma: Option<f64>,
    /// α, the retain term's weight [default: 1; 0 for grad-ascent, 10 for rmu]
    #[arg(long)]
    pub alpha: Option<f64>,
    /// β of NPO and SimNPO [default: 0.1 and 4.5]
    #[arg(long)]
    pub beta: Option<f64>,
    /// δ of SimNPO [default: 0]
    #[arg(long)]
    pub delta: Option<f64>,
    /// RMU: the layer whose residual stream is steered [default: the middle layer]
    #[arg(long)]
    pub rmu_layer: Option<usize>,
    /// RMU: the length c of the steering vector [default: 2 × the stream's mean norm there]
    #[arg(long)]
    pub rmu_c: Option<f64>,
    /// parameter-name patterns the update may touch (`*` matches anything, e.g.
    /// 'transformer.h.3.*'); every other parameter stays bit-identical [default: all]
    #[arg(long, num_args = 1..)]
    pub trainable: Vec<String>,
    /// use only the first N items of each file
    #[arg(long)]
    pub limit: Option<usize>,
}

fn method_help() -> String {
    let names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
    format!("the unlearning method: {}", names.join(", "))
}

impl UnlearnArgs {
    fn config(&self) -> Result<UnlearnConfig> {
        let method = Method::from_name(&self.method)?;
        let (mut objective, gamma, alpha) = method.defaults();
        match &mut objective {
            Objective::Npo { beta } => *beta = self.beta.unwrap_or(*beta),
            Objective::SimNpo { beta, delta } => {
                *beta = self.beta.unwrap_or(*beta);
                *delta = self.delta.unwrap_or(*delta);
            }
            Objective::GradAscent | Objective::Rmu { .. } => {
                if self.beta.is_some() || self.delta.is_some() {
                    bail!("--beta and --delta are NPO's and SimNPO's; {} has none", method.name());
                }
            }
        }
        if !matches!(objective, Objective::Rmu { .. }) && (self.rmu_layer.is_some() || self.rmu_c.is_some()) {
            bail!("--rmu-layer and --rmu-c are RMU's; {} has neither", method.name());
        }
        let cfg = UnlearnConfig {
            objective,
            gamma: self.gamma.unwrap_or(gamma),
            alpha: self.alpha.unwrap_or(alpha),
            lr: self.lr.unwrap_or(method.lr()),
            weight_decay: self.weight_decay,
            epochs: self.epochs,
            batch: self.batch,
            accumulate: self.accumulate,
            warmup: self.warmup,
            clip: self.clip,
            seed: self.seed,
            trainable: self.trainable.clone(),
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

/// The answers' NLL per token and the share of greedy answers that are exactly right, on the
/// forget and the retain set.
#[derive(serde::Serialize)]
struct Measure {
    forget_nll: f64,
    forget_exact: f64,
    retain_nll: Option<f64>,
    retain_exact: Option<f64>,
}

/// A question/answer file (at most `limit` records): its pairs and their examples.
fn qa_file(path: &Path, limit: Option<usize>, tok: &Tokenizer) -> Result<(Vec<QaPair>, Vec<Example>)> {
    let mut f = ExampleFile::read(path)?;
    if let Some(n) = limit {
        f.truncate(n);
    }
    let Some(pairs) = f.qa_pairs() else {
        bail!("{}: unlearning reads question/answer data (`question`, `answer`), not task items", path.display());
    };
    Ok((pairs.to_vec(), f.examples(tok)?))
}

/// The answers' NLL per token over `examples`, in batches.
fn mean_nll(dec: &Decoder, examples: &[Example], batch: usize) -> Result<f64> {
    let (mut sum, mut len) = (0.0, 0.0);
    for b in batches_on(examples, batch.max(1), dec.device())? {
        let nll = answer_nll(&dec.forward(&b.clean, &HookSet::new())?.logits, &b)?;
        sum += nll.sum.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        len += nll.len.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    }
    Ok(sum / len)
}

pub fn run(a: &UnlearnArgs) -> Result<()> {
    // Everything that can be checked without the model is checked before loading it.
    let cfg = a.config()?;
    if cfg.alpha > 0.0 && a.retain.is_none() {
        bail!(
            "--method {} keeps a retain set (alpha = {}): give --retain FILE.jsonl, or --alpha 0",
            a.method,
            cfg.alpha
        );
    }
    if a.limit == Some(0) {
        bail!("--limit must be at least 1");
    }
    check_output_dir(&a.out, a.force)?;
    if !a.model.is_dir() {
        bail!(
            "{}: unlearning writes a checkpoint and needs a model directory (config.json + safetensors)",
            a.model.display()
        );
    }
    let (original, _) = load(&a.model, DType::F32)?;
    let tok = original.tokenizer()?;
    let (forget_pairs, forget) = qa_file(&a.forget, a.limit, tok)?;
    let (retain_pairs, retain) = match (&a.retain, cfg.alpha > 0.0) {
        (Some(p), true) => qa_file(p, a.limit, tok)?,
        _ => (Vec::new(), Vec::new()),
    };
    let mut cfg = cfg;
    if let Objective::Rmu { layer, c } = &mut cfg.objective {
        *layer = a.rmu_layer.unwrap_or(original.cfg().n_layers / 2);
        if *layer >= original.cfg().n_layers {
            bail!("--rmu-layer {layer}: the model has {} layers", original.cfg().n_layers);
        }
        *c = match a.rmu_c {
            Some(c) => c,
            None => rmu_scale(&original.decoder, &forget, *layer, a.batch)?,
        };
    }
    let model = Trainable::load(&a.model, original.decoder.device())?;
    // The answers' NLL per token, and how many greedy answers are still the exact answer (end
    // token included), on each set.
    let measure = |dec: &Decoder| -> Result<Measure> {
        let exact = |p: &[QaPair]| qa_accuracy(dec, tok, p, a.batch).map(|s| s.exact_match);
        Ok(Measure {
            forget_nll: mean_nll(dec, &forget, a.batch)?,
            forget_exact: exact(&forget_pairs)?,
            retain_nll: (!retain.is_empty()).then(|| mean_nll(dec, &retain, a.batch)).transpose()?,
            retain_exact: (!retain_pairs.is_empty()).then(|| exact(&retain_pairs)).transpose()?,
        })
    };
    let before = measure(&original.decoder)?;
    println!(
        "unlearning {} forget items ({} retain) from {} with {} ({} epochs, lr {})",
        forget.len(),
        retain.len(),
        a.model.display(),
        a.method,
        cfg.epochs,
        cfg.lr
    );
    let pb = bar(0, "unlearning");
    let t = std::time::Instant::now();
    let log = unlearn(&model, Some(&original.decoder), &forget, &retain, &cfg, &pb)?;
    pb.finish_and_clear();
    let seconds = t.elapsed().as_secs_f64();
    let after = measure(&model.decoder()?)?;
    let mut ck = model.checkpoint(&a.model)?;
    let record = json!({
        "model": a.model, "method": a.method, "forget": a.forget, "retain": a.retain, "limit": a.limit,
        "config": cfg, "steps": log, "seconds": seconds, "before": before, "after": after,
    });
    ck.files.push(("unlearn.json".into(), (serde_json::to_string_pretty(&record)? + "\n").into_bytes()));
    ck.write(&a.out)?;
    println!(
        "forget: answer NLL per token {:.4} → {:.4}, exact greedy answers {:.1} % → {:.1} %",
        before.forget_nll,
        after.forget_nll,
        100.0 * before.forget_exact,
        100.0 * after.forget_exact
    );
    if let (Some(b), Some(r), Some(be), Some(re)) =
        (before.retain_nll, after.retain_nll, before.retain_exact, after.retain_exact)
    {
        println!(
            "retain: answer NLL per token {b:.4} → {r:.4}, exact greedy answers {:.1} % → {:.1} %",
            100.0 * be,
            100.0 * re
        );
    }
    println!("wrote {} ({} steps, {seconds:.1} s)", a.out.display(), log.len());
    Ok(())
}
