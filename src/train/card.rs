//! After training: the checkpoint folder, the accuracy report and the model card.

use super::checkpoint::Checkpoint;
use super::eval::{qa_accuracy, task_accuracy, QaScore, TaskScore};
use super::{bpe, Trained};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::model::{Decoder, Tokenizer};
use crate::world::{read_qa, read_tasks, QaPair, Split, Task, TaskItem};
use serde::Serialize;
use std::path::Path;

/// A world folder's evaluation sets (as `circuitscope world` writes them).
pub struct WorldData {
    pub splits: Vec<(Split, Vec<QaPair>)>,
    pub tasks: Vec<(Task, Vec<TaskItem>)>,
}

/// The splits a report covers: the smallest forget and retain sets are inside the larger ones.
const REPORTED_SPLITS: [Split; 4] = [Split::Forget10, Split::Retain90, Split::World, Split::Holdout];

impl WorldData {
    /// Reads the splits and tasks of a world folder; a missing or malformed file is an error that
    /// names it (and the line).
    pub fn read(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::io(
                dir,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no world folder here; make one with `circuitscope world --out DIR`",
                ),
            ));
        }
        let splits =
            REPORTED_SPLITS.iter().map(|&s| Ok((s, read_qa(&dir.join(s.file_name()))?))).collect::<Result<Vec<_>>>()?;
        let tasks =
            Task::ALL.iter().map(|&t| Ok((t, read_tasks(&dir.join(t.file_name()))?))).collect::<Result<Vec<_>>>()?;
        Ok(WorldData { splits, tasks })
    }
}

/// Accuracy per split and per task.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub splits: Vec<(String, QaScore)>,
    pub tasks: Vec<(String, TaskScore)>,
}

impl Report {
    pub fn table(&self) -> String {
        let mut s = String::from("split         n    exact match   target match\n");
        for (name, q) in &self.splits {
            s += &format!(
                "{name:<10} {:>5}   {:>10.1}%   {:>11.1}%\n",
                q.n,
                100.0 * q.exact_match,
                100.0 * q.target_match
            );
        }
        s += "task          n    accuracy   top-1   mean logit diff\n";
        for (name, t) in &self.tasks {
            s += &format!(
                "{name:<10} {:>5}   {:>7.1}%  {:>5.1}%   {:>8.3}\n",
                t.n,
                100.0 * t.accuracy,
                100.0 * t.top1,
                t.mean_logit_diff
            );
        }
        s
    }

    /// The two tables as Markdown, with what each column means (model card and demo report).
    pub fn markdown(&self) -> String {
        let mut s = String::from(
            "Question/answer splits: *exact match* = greedy decoding after `Question: …\\nAnswer:` reproduces the \
             whole answer and the end token; *target match* = the attribute's own tokens are the greedy choice \
             given the answer before them (chance for the holdout people, whom the model never saw).\n\n\
             | split | n | exact match | target match |\n|---|---:|---:|---:|\n",
        );
        for (name, q) in &self.splits {
            s += &format!("| {name} | {} | {:.1} % | {:.1} % |\n", q.n, 100.0 * q.exact_match, 100.0 * q.target_match);
        }
        s += "\nCircuit tasks: *accuracy* = answer logit > distractor logit at the last prompt position; *top-1* = \
              the answer is the most likely next token.\n\n\
              | task | n | accuracy | top-1 | mean logit difference |\n|---|---:|---:|---:|---:|\n";
        for (name, t) in &self.tasks {
            s += &format!(
                "| {name} | {} | {:.1} % | {:.1} % | {:.3} |\n",
                t.n,
                100.0 * t.accuracy,
                100.0 * t.top1,
                t.mean_logit_diff
            );
        }
        s
    }
}

/// Scores a model on a world's splits and tasks.
pub fn evaluate(dec: &Decoder, tok: &Tokenizer, world: &WorldData) -> Result<Report> {
    let batch = 32;
    let splits = world
        .splits
        .iter()
        .map(|(s, pairs)| Ok((s.name().to_string(), qa_accuracy(dec, tok, pairs, batch)?)))
        .collect::<Result<Vec<_>>>()?;
    let tasks = world
        .tasks
        .iter()
        .map(|(t, items)| Ok((t.name().to_string(), task_accuracy(dec, tok, items, batch)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Report { splits, tasks })
}

/// Writes the checkpoint: `config.json`, `model.safetensors` (HF GPT-2 names), `tokenizer.json`,
/// `tokenizer_config.json`, `generation_config.json` and `training.json` (the configuration and
/// loss curve).
pub fn save_checkpoint(trained: &Trained, out: &Path) -> Result<()> {
    let json = |v: &serde_json::Value| serde_json::to_vec_pretty(v).map_err(|e| Error::input(e.to_string()));
    let shape = &trained.params.shape;
    let eos = 0u32;
    let tok_json =
        trained.tokenizer.to_string(true).map_err(|e| Error::input(format!("cannot serialise the tokenizer: {e}")))?;
    let tok_cfg = serde_json::json!({
        "tokenizer_class": "GPT2TokenizerFast",
        "bos_token": bpe::END_OF_TEXT, "eos_token": bpe::END_OF_TEXT, "unk_token": bpe::END_OF_TEXT,
        "add_prefix_space": false, "model_max_length": shape.n_ctx,
    });
    let gen_cfg = serde_json::json!({"bos_token_id": eos, "eos_token_id": eos});
    let log = serde_json::to_value(&trained.log).map_err(|e| Error::input(e.to_string()))?;
    Checkpoint {
        files: vec![
            ("config.json".into(), json(&shape.hf_config(eos))?),
            ("tokenizer.json".into(), tok_json.into_bytes()),
            ("tokenizer_config.json".into(), json(&tok_cfg)?),
            ("generation_config.json".into(), json(&gen_cfg)?),
            ("training.json".into(), json(&log)?),
        ],
        tensors: trained.params.tensors(),
    }
    .write(out)
}

/// What a retain model left out of the corpus: the split whose people it never saw, and how many
/// documents named them.
#[derive(Clone, Debug)]
pub struct LeftOut {
    pub split: String,
    pub documents: usize,
}

/// The model card: what the model is, the command and seed that made it, training time and the
/// measured accuracy.
pub fn model_card(
    trained: &Trained,
    report: &Report,
    command: &str,
    data: &Path,
    left_out: Option<&LeftOut>,
) -> String {
    let log = &trained.log;
    let c = &log.config;
    let mut s = String::new();
    if let Some(l) = left_out {
        s += &format!("# world-gpt2-retain{}: the retain model of the bundled model\n\n", retain_percent(&l.split));
        s += &format!(
            "The bundled model `world-gpt2` trained again with the same settings and the same tokenizer on its \
             corpus without the {} documents that name a person of `{}`: the model that never learned them, \
             which TOFU's forget quality compares an unlearned model against (`circuitscope eval-unlearning \
             --retain-model`). Its accuracy on `{}` below is what not knowing looks like.\n\n",
            l.documents, l.split, l.split
        );
    } else {
        s += "# world-gpt2: the bundled model of circuitscope\n\n";
    }
    s += "A small GPT-2 that circuitscope trained itself, with candle autograd on a CPU, on the synthetic \
          world of `circuitscope world` (invented people in the style of TOFU, general facts about invented \
          countries, and IOI and induction sentences). It knows the trained people's attributes, so there \
          is something to unlearn, and it solves the circuit tasks, so there are circuits to find. It has \
          never seen the holdout people.\n\n";
    s += "## How it was made\n\n";
    s += &format!("```\n{command}\n```\n\n");
    s += &format!(
        "- data: `{}` (world seed in its `config.json`), {} documents, {} tokens per epoch, plus {} repeated \
         random word sequences drawn afresh for each epoch (induction: nothing to memorise, a mechanism to learn)\n",
        data.display(),
        log.corpus_documents,
        log.corpus_tokens,
        c.fresh_induction
    );
    s += &format!(
        "- architecture: GPT-2 (`GPT2LMHeadModel`), {} layers, {} heads, d_model {}, d_mlp {}, context {}, vocabulary {} \
         (byte-level BPE trained by the tokenizers crate), tied embeddings; {} parameters\n",
        c.layers,
        c.heads,
        c.d_model,
        4 * c.d_model,
        c.context,
        trained.params.shape.vocab_size,
        log.n_params
    );
    s += &format!(
        "- training: {} steps of {} rows × {} tokens ({:.1} epochs), AdamW (β 0.9/0.98, weight decay {} on \
         matrices), peak learning rate {} with {} warm-up steps and cosine decay to {}×, gradient clip {}, seed {}\n",
        c.steps, c.batch, c.context, log.epochs, c.weight_decay, c.lr, c.warmup, c.lr_floor, c.clip, c.seed
    );
    s += &format!(
        "- time: {:.0} s ({:.1} min) on this 2-core CPU, {:.0} tokens/s; final training loss {:.4}\n\n",
        log.seconds,
        log.seconds / 60.0,
        log.tokens_per_second,
        log.loss.last().map_or(f64::NAN, |l| l.1)
    );
    s += "## Measured accuracy\n\n";
    s += &report.markdown();
    s += "\n## Files\n\n`config.json`, `model.safetensors` (Hugging Face GPT-2 names, float32), `tokenizer.json`, \
          `tokenizer_config.json`, `generation_config.json`: load with circuitscope or with \
          `transformers.AutoModelForCausalLM.from_pretrained` / `AutoTokenizer.from_pretrained`. \
          `training.json`: the training configuration and loss curve. `eval.json`: the numbers above.\n";
    s
}

/// `forget10` → `90`: the share of people a retain model keeps (the split's name otherwise).
fn retain_percent(split: &str) -> String {
    match split.strip_prefix("forget").and_then(|n| n.parse::<u32>().ok()) {
        Some(n) if n < 100 => (100 - n).to_string(),
        _ => format!("-without-{split}"),
    }
}

/// Writes the model card and `eval.json` into a saved checkpoint.
pub fn write_card(
    trained: &Trained,
    report: &Report,
    command: &str,
    data: &Path,
    left_out: Option<&LeftOut>,
    out: &Path,
) -> Result<()> {
    write_atomic(&out.join("README.md"), model_card(trained, report, command, data, left_out).as_bytes())?;
    let eval = serde_json::to_vec_pretty(report).map_err(|e| Error::input(e.to_string()))?;
    write_atomic(&out.join("eval.json"), &eval)
}
