//! `circuitscope finetune`: full fine-tuning on question/answer data with the model's prompt
//! format (its chat template where it has one), TOFU's recipe by default
//! (`unlearn::finetune`), saved every `--save-every` steps so that `--resume` goes on after an
//! interruption, bit for bit as if there had been none.

use super::common::check_output_dir;
use super::model::load;
use super::progress::bar;
use super::unlearn::{measure_set, qa_file};
use anyhow::{bail, Context, Result};
use candle_core::DType;
use circuitscope::train::Trainable;
use circuitscope::unlearn::finetune::{self, data_fingerprint, differences, resume_dir};
use circuitscope::unlearn::{UnlearnConfig, Unlearner};
use serde_json::{json, Value};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct FinetuneArgs {
    /// a model directory (config.json + safetensors) with a tokenizer, or `smollm2`
    pub model: PathBuf,
    /// question/answer JSONL to learn (`question`, `answer`)
    #[arg(long)]
    pub data: PathBuf,
    /// the checkpoint folder to write (refused if it exists and is not empty, unless --force or
    /// --resume)
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long)]
    pub force: bool,
    /// go on with the run saved in --out (the same model, data and settings)
    #[arg(long)]
    pub resume: bool,
    /// save the run's state (weights, optimiser, place in the data) every this many steps
    #[arg(long, default_value_t = 25)]
    pub save_every: usize,
    /// stop after this many steps of this sitting, saved; --resume goes on
    #[arg(long)]
    pub stop_after: Option<usize>,
    /// peak learning rate (AdamW) [default: 2e-5]
    #[arg(long)]
    pub lr: Option<f64>,
    /// [default: 5]
    #[arg(long)]
    pub epochs: Option<usize>,
    /// examples per batch [default: 8]
    #[arg(long)]
    pub batch: Option<usize>,
    /// batches per optimiser step [default: 4, an effective batch of 32]
    #[arg(long)]
    pub accumulate: Option<usize>,
    /// warm-up steps (linear) [default: one epoch's]
    #[arg(long)]
    pub warmup: Option<usize>,
    /// [default: 0.01]
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// global gradient-norm clip [default: 1]
    #[arg(long)]
    pub clip: Option<f64>,
    /// [default: 42]
    #[arg(long)]
    pub seed: Option<u64>,
    /// use only the first N records of the data
    #[arg(long)]
    pub limit: Option<usize>,
    #[command(flatten)]
    pub prompt: super::args::PromptArgs,
}

impl FinetuneArgs {
    /// The recipe with the flags given; the warm-up is one epoch's steps over `n` examples unless
    /// --warmup says otherwise.
    fn config(&self, n: usize) -> Result<UnlearnConfig> {
        let d = finetune::documented();
        let mut cfg = UnlearnConfig {
            lr: self.lr.unwrap_or(d.lr),
            epochs: self.epochs.unwrap_or(d.epochs),
            batch: self.batch.unwrap_or(d.batch),
            accumulate: self.accumulate.unwrap_or(d.accumulate),
            weight_decay: self.weight_decay.unwrap_or(d.weight_decay),
            clip: self.clip.unwrap_or(d.clip),
            seed: self.seed.unwrap_or(d.seed),
            ..d
        };
        cfg.warmup = self.warmup.unwrap_or_else(|| finetune::warmup_of_one_epoch(&cfg, n));
        cfg.validate()?;
        Ok(cfg)
    }
}

pub fn run(a: &FinetuneArgs) -> Result<()> {
    if a.limit == Some(0) || a.save_every == 0 || a.stop_after == Some(0) {
        bail!("--limit, --save-every and --stop-after must be at least 1");
    }
    let saved = if a.resume {
        Some(finetune::read(&a.out)?)
    } else {
        check_output_dir(&a.out, a.force)?;
        None
    };
    let (original, _) = load(&a.model, DType::F32)?;
    let format = a.prompt.format(&original)?;
    let (_, examples) = qa_file(&a.data, a.limit, &original, &format)?;
    let cfg = a.config(examples.len())?;
    let model_path = std::fs::canonicalize(&original.path).unwrap_or_else(|_| original.path.clone());
    let settings = json!({
        "model": model_path, "data_fingerprint": data_fingerprint(&examples), "examples": examples.len(),
        "prompt_format": format, "config": cfg,
    });
    let model = match &saved {
        Some(s) => {
            let changed = differences(&s.settings, &settings);
            if !changed.is_empty() {
                bail!(
                    "{}: the saved run was started with other settings ({}); resume it with its own, or start \
                     again with --force",
                    a.out.display(),
                    changed.join("; ")
                );
            }
            Trainable::load(&resume_dir(&a.out), original.decoder.device())?
        }
        None => Trainable::load(&original.path, original.decoder.device())?,
    };
    let mut run = Unlearner::new(&model, None, &examples, &[], &cfg)?;
    let before: Value = match saved {
        Some(s) => {
            run.resume(s.state, &s.moments)?;
            s.extra["before"].clone()
        }
        None => {
            eprintln!("measuring the answers before fine-tuning ({} examples)", examples.len());
            let (nll, exact) = measure_set(&original.decoder, &examples, cfg.batch)?;
            json!({ "nll": nll, "exact": exact })
        }
    };
    let extra = json!({ "before": before });
    let total = run.total_steps();
    let done = run.log().len();
    println!(
        "fine-tuning {} on {} examples of {}: {} epochs, lr {}, batch {} × {}, {}{total} steps",
        a.model.display(),
        examples.len(),
        a.data.display(),
        cfg.epochs,
        cfg.lr,
        cfg.batch,
        cfg.accumulate,
        if done > 0 { format!("from step {done} of ") } else { String::new() }
    );
    let pb = bar(total as u64, "fine-tuning");
    pb.set_position(done as u64);
    let mut this_sitting = 0;
    let save = |run: &Unlearner| {
        finetune::save(&a.out, &model, &original.path, run, &settings, &extra)
            .with_context(|| format!("saving the run's state in {}", resume_dir(&a.out).display()))
    };
    loop {
        let Some(s) = run.step()? else { break };
        this_sitting += 1;
        pb.set_message(format!("NLL {:.4}", s.forget));
        pb.inc(1);
        // without a terminal the bar is hidden: a line now and then instead
        if pb.is_hidden() && ((s.step + 1).is_multiple_of(5) || s.step + 1 == total) {
            eprintln!("step {:>5}/{total}  NLL {:.4}  lr {:.2e}  {:.0} s", s.step + 1, s.forget, s.lr, s.seconds);
        }
        let last = s.step + 1 == total;
        if !last && (s.step + 1) % a.save_every == 0 {
            save(&run)?;
        }
        if !last && a.stop_after == Some(this_sitting) {
            save(&run)?;
            pb.finish_and_clear();
            println!(
                "stopped after {this_sitting} steps ({} of {total}), saved in {}; go on with --resume",
                s.step + 1,
                resume_dir(&a.out).display()
            );
            return Ok(());
        }
    }
    pb.finish_and_clear();
    let log = run.log().to_vec();
    let (nll, exact) = measure_set(&model.decoder()?, &examples, cfg.batch)?;
    let after = json!({ "nll": nll, "exact": exact });
    let seconds = log.last().map_or(0.0, |s| s.seconds);
    let mut ck = model.checkpoint(&original.path)?;
    let record = json!({
        "model": a.model, "data": a.data, "limit": a.limit, "settings": settings, "steps": log,
        "seconds": seconds, "before": before, "after": after,
    });
    ck.files.push(("finetune.json".into(), (serde_json::to_string_pretty(&record)? + "\n").into_bytes()));
    // the finished checkpoint replaces the folder, the saved state with it
    ck.write(&a.out)?;
    println!(
        "answer NLL per token {:.4} → {:.4}, exact greedy answers {:.1} % → {:.1} %",
        before["nll"].as_f64().unwrap_or(f64::NAN),
        nll,
        100.0 * before["exact"].as_f64().unwrap_or(f64::NAN),
        100.0 * exact
    );
    println!("wrote {} ({} steps, {seconds:.1} s)", a.out.display(), log.len());
    Ok(())
}
