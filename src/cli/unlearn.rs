//! `circuitscope unlearn`: unlearns a question/answer forget set from a model directory and writes
//! the unlearned checkpoint, with `unlearn.json` (the settings, every step, and the answers' NLL
//! before and after on both sets).

use super::common::check_output_dir;
use super::model::load;
use super::progress::bar;
use anyhow::{bail, Result};
use candle_core::DType;
use circuitscope::data::{Example, ExampleFile, PromptFormat, QaPair};
use circuitscope::model::{Decoder, Model};
use circuitscope::train::Trainable;
use circuitscope::unlearn::answers::token_stats;
use circuitscope::unlearn::run::{
    Unlearner, DEFAULT_BATCH, DEFAULT_CLIP, DEFAULT_EPOCHS, DEFAULT_SEED, DEFAULT_WARMUP, DEFAULT_WEIGHT_DECAY,
};
use circuitscope::unlearn::{needle_config, Method, Objective, UnlearnConfig};
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
    /// peak learning rate (AdamW) [default: grad-ascent and npo 3e-5, grad-diff 5e-5, simnpo 1e-4, rmu 6e-4,
    /// needle 0.2]
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long, default_value_t = DEFAULT_EPOCHS)]
    pub epochs: usize,
    /// forget (and retain) items per batch
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    pub batch: usize,
    /// batches per optimiser step
    #[arg(long, default_value_t = 1)]
    pub accumulate: usize,
    /// warm-up steps
    #[arg(long, default_value_t = DEFAULT_WARMUP)]
    pub warmup: usize,
    /// global gradient-norm clip
    #[arg(long, default_value_t = DEFAULT_CLIP)]
    pub clip: f64,
    #[arg(long, default_value_t = DEFAULT_WEIGHT_DECAY)]
    pub weight_decay: f64,
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// CURE: the partition (`circuitscope cure`) whose modules the update follows
    #[arg(long)]
    pub partition: Option<PathBuf>,
    /// CURE: the forget-specific modules' objective, npo (default) or grad-ascent
    #[arg(long)]
    pub cure_objective: Option<String>,
    /// CURE: retain-specific modules stay frozen instead of following the retain loss
    #[arg(long)]
    pub freeze_retain_specific: bool,
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
    /// Needle: the value vector's layer
    #[arg(long)]
    pub layer: Option<usize>,
    /// Needle: the value vector's MLP hidden unit
    #[arg(long)]
    pub dim: Option<usize>,
    /// Needle: the noise σ added to the vector before the gradient ascent (drawn from --seed)
    #[arg(long)]
    pub noise: Option<f64>,
    /// parameter-name patterns the update may touch (`*` matches anything, e.g.
    /// 'transformer.h.3.*'; 'NAME[i,:]' or 'NAME[:,j]': one row or column of a matrix, e.g. one
    /// MLP neuron); everything else stays bit-identical [default: all]
    #[arg(long, num_args = 1..)]
    pub trainable: Vec<String>,
    /// use only the first N items of each file
    #[arg(long)]
    pub limit: Option<usize>,
    #[command(flatten)]
    pub prompt: super::args::PromptArgs,
}

fn method_help() -> String {
    let names: Vec<&str> = Method::ALL.iter().chain(&[Method::Needle, Method::Cure]).map(|m| m.name()).collect();
    format!("the unlearning method: {}", names.join(", "))
}

impl UnlearnArgs {
    fn config(&self) -> Result<UnlearnConfig> {
        let method = Method::from_name(&self.method)?;
        let base = UnlearnConfig::documented(method);
        let mut objective = base.objective;
        match &mut objective {
            Objective::Npo { beta } => *beta = self.beta.unwrap_or(*beta),
            Objective::SimNpo { beta, delta } => {
                *beta = self.beta.unwrap_or(*beta);
                *delta = self.delta.unwrap_or(*delta);
            }
            Objective::GradAscent | Objective::Rmu { .. } | Objective::Nll => {
                if self.beta.is_some() || self.delta.is_some() {
                    bail!("--beta and --delta are NPO's and SimNPO's; {} has none", method.name());
                }
            }
        }
        if !matches!(objective, Objective::Rmu { .. }) && (self.rmu_layer.is_some() || self.rmu_c.is_some()) {
            bail!("--rmu-layer and --rmu-c are RMU's; {} has neither", method.name());
        }
        let needle_args = self.layer.is_some() || self.dim.is_some() || self.noise.is_some();
        if method == Method::Needle {
            if self.layer.is_none() || self.dim.is_none() {
                bail!("--method needle unlearns one value vector: give --layer L --dim D");
            }
            if !self.trainable.is_empty() {
                bail!("--method needle trains the vector alone; --trainable does not apply");
            }
        } else if needle_args {
            bail!("--layer, --dim and --noise are Needle's; {} has none", method.name());
        }
        let cfg = UnlearnConfig {
            objective,
            gamma: self.gamma.unwrap_or(base.gamma),
            alpha: self.alpha.unwrap_or(base.alpha),
            lr: self.lr.unwrap_or(base.lr),
            weight_decay: self.weight_decay,
            epochs: self.epochs,
            batch: self.batch,
            accumulate: self.accumulate,
            warmup: self.warmup,
            clip: self.clip,
            seed: self.seed,
            trainable: self.trainable.clone(),
            cure: None,
        };
        if (method == Method::Cure) != self.partition.is_some() {
            bail!("--method cure and --partition go together (the partition from `circuitscope cure`)");
        }
        if method != Method::Cure && (self.cure_objective.is_some() || self.freeze_retain_specific) {
            bail!("--cure-objective and --freeze-retain-specific are CURE's; {} has neither", method.name());
        }
        let mut cfg = cfg;
        if method == Method::Cure {
            if !self.trainable.is_empty() {
                bail!("--method cure: the partition chooses the parameters; --trainable does not apply");
            }
            match self.cure_objective.as_deref() {
                None | Some("npo") => {}
                Some("grad-ascent") => cfg.objective = Objective::GradAscent,
                Some(o) => bail!("--cure-objective {o}: CURE's forget modules follow npo or grad-ascent"),
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

/// The answers' NLL per token (with the end token, unless --no-end-token) and the share of
/// answers whose every token is the argmax given the ones before: the greedy answer is exactly
/// right.
#[derive(serde::Serialize)]
struct Measure {
    forget_nll: f64,
    forget_exact: f64,
    retain_nll: Option<f64>,
    retain_exact: Option<f64>,
}

/// A question/answer file (at most `limit` records) as examples in `format`; every example fits
/// the model's context.
pub fn qa_file(
    path: &Path,
    limit: Option<usize>,
    model: &Model,
    format: &PromptFormat,
) -> Result<(Vec<QaPair>, Vec<Example>)> {
    let mut f = ExampleFile::read(path)?;
    if let Some(n) = limit {
        f.truncate(n);
    }
    let examples = f.qa_examples_within(model.tokenizer()?, format, model.cfg().n_ctx)?;
    let pairs = f.qa_pairs().expect("qa_examples read question/answer records").to_vec();
    Ok((pairs, examples))
}

/// [`Measure`] of one set under `dec`: (NLL per token, exact share).
pub(super) fn measure_set(dec: &Decoder, examples: &[Example], batch: usize) -> Result<(f64, f64)> {
    let stats = token_stats(dec, examples, batch)?;
    let (nll, len): (f64, usize) = stats.iter().fold((0.0, 0), |(s, n), t| (s + t.nll_sum(), n + t.len()));
    let exact = stats.iter().filter(|t| t.argmax.iter().all(|&h| h)).count();
    Ok((nll / len.max(1) as f64, exact as f64 / stats.len().max(1) as f64))
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
    let (original, _) = load(&a.model, DType::F32)?;
    let format = a.prompt.format(&original)?;
    let (_, forget) = qa_file(&a.forget, a.limit, &original, &format)?;
    let retain = match (&a.retain, cfg.alpha > 0.0) {
        (Some(p), true) => qa_file(p, a.limit, &original, &format)?.1,
        _ => Vec::new(),
    };
    let forget_tokens: std::collections::BTreeSet<&[u32]> = forget.iter().map(|e| e.clean.as_slice()).collect();
    let overlap = retain.iter().filter(|e| forget_tokens.contains(e.clean.as_slice())).count();
    if overlap > 0 {
        bail!(
            "{} and {} share {overlap} question/answer pairs: a pair cannot be both forgotten and kept",
            a.forget.display(),
            a.retain.as_deref().unwrap_or(Path::new("")).display()
        );
    }
    let mut cfg = cfg;
    cfg.fit_rmu(&original.decoder, &forget, a.rmu_layer, a.rmu_c)?;
    let model = Trainable::load(&original.path, original.decoder.device())?;
    if let (Some(layer), Some(dim)) = (a.layer, a.dim) {
        cfg = needle_config(&model, &cfg, layer, dim, a.noise.unwrap_or(0.1), a.seed)?;
    }
    if let Some(p) = &a.partition {
        let partition = circuitscope::analyses::cure::Partition::read(p)?;
        partition.check_for(&original.decoder, &p.display().to_string())?;
        cfg.cure = Some(partition.plan(&model, !a.freeze_retain_specific)?);
    }
    let measure = |dec: &Decoder| -> Result<Measure> {
        let (forget_nll, forget_exact) = measure_set(dec, &forget, a.batch)?;
        let r = (!retain.is_empty()).then(|| measure_set(dec, &retain, a.batch)).transpose()?;
        Ok(Measure { forget_nll, forget_exact, retain_nll: r.map(|r| r.0), retain_exact: r.map(|r| r.1) })
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
    let mut run = Unlearner::new(&model, Some(&original.decoder), &forget, &retain, &cfg)?;
    let pb = bar(run.total_steps() as u64, "unlearning");
    let stopped = loop {
        match run.step() {
            Ok(Some(s)) => {
                let retain = s.retain.map_or(String::new(), |r| format!("  retain {r:.4}"));
                pb.set_message(format!("forget {:.4}{retain}", s.forget));
                pb.inc(1);
            }
            Ok(None) => break None,
            // a non-finite loss: the last good weights are written below, with the record
            Err(e) if run.stopped_at().is_some() => break Some(e),
            Err(e) => return Err(e.into()),
        }
    };
    pb.finish_and_clear();
    let log = run.log().to_vec();
    let seconds = log.last().map_or(0.0, |s| s.seconds);
    let after = measure(&model.decoder()?)?;
    let mut ck = model.checkpoint(&original.path)?;
    let record = json!({
        "model": a.model, "method": a.method, "forget": a.forget, "retain": a.retain, "limit": a.limit,
        "prompt_format": format, "config": cfg, "steps": log, "seconds": seconds,
        "stopped": stopped.as_ref().map(|e| e.to_string()), "before": before, "after": after,
    });
    ck.files.push(("unlearn.json".into(), (serde_json::to_string_pretty(&record)? + "\n").into_bytes()));
    ck.write(&a.out)?;
    if let Some(e) = stopped {
        bail!("{e}; wrote those weights to {} (unlearn.json says where it stopped)", a.out.display());
    }
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
    let conflicts: Vec<_> = log.iter().filter_map(|s| s.conflicts.as_ref()).collect();
    if !conflicts.is_empty() {
        let (shared, conflicting) = conflicts.iter().fold((0, 0), |(s, c), x| (s + x.shared, c + x.conflicting));
        let cosines: Vec<f64> = conflicts.iter().filter_map(|c| c.mean_cosine).collect();
        let cos = if cosines.is_empty() {
            String::new()
        } else {
            format!(", mean cosine {:.3} where they did", cosines.iter().sum::<f64>() / cosines.len() as f64)
        };
        println!(
            "CURE: the forget and retain gradients of task-shared modules conflicted in {conflicting} of {shared} \
             module-steps{cos} (per step in unlearn.json)"
        );
    }
    println!("wrote {} ({} steps, {seconds:.1} s)", a.out.display(), log.len());
    Ok(())
}
