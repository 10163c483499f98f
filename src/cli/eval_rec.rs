//! `circuitscope eval-rec`: a model's recommendation metrics on a recommendation world
//! (`unlearn::recommend`): utility on the retained readers' test interactions and, for the forget
//! readers' training interactions, their AUC and (with `--reference`, the model retrained
//! without them) the JS and KL between the two models' Yes/No answers.

use super::model::load;
use anyhow::{bail, Result};
use candle_core::DType;
use circuitscope::data::PromptFormat;
use circuitscope::model::Model;
use circuitscope::unlearn::recommend::{forgetting, read_interactions, utility, yes_probability, Interaction};
use circuitscope::world::recommend::Reader;
use serde_json::json;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct EvalRecArgs {
    /// the model to evaluate (a model directory, or `smollm2`)
    pub model: PathBuf,
    /// a recommendation world (`circuitscope rec-world`)
    #[arg(long, default_value = "circuits/rec-world")]
    pub world: PathBuf,
    /// the forget readers: a split of the world (forget01, forget05)
    #[arg(long, conflicts_with = "forget_readers")]
    pub forget: Option<String>,
    /// the forget readers by name, comma-separated
    #[arg(long, value_delimiter = ',')]
    pub forget_readers: Vec<String>,
    /// the model retrained without the forget readers: the forgetting is measured against it
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// the prompt template [default: '{question} Answer:', the world's]
    #[arg(long)]
    pub prompt_format: Option<String>,
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// also write the figures as JSON
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The forget readers' names, checked against the world's readers.
fn forget_readers(a: &EvalRecArgs) -> Result<BTreeSet<String>> {
    let chosen = match &a.forget {
        Some(split) => circuitscope::world::recommend::forget_readers(&a.world, split)?,
        None => {
            let path = a.world.join("readers.jsonl");
            let readers: Vec<Reader> = circuitscope::data::read_jsonl(&path)?;
            for r in &a.forget_readers {
                if !readers.iter().any(|x| &x.name == r) {
                    bail!("--forget-readers: `{r}` is not a reader of {}", path.display());
                }
            }
            a.forget_readers.iter().cloned().collect()
        }
    };
    if chosen.is_empty() {
        bail!("give the forget readers: --forget forget01|forget05, or --forget-readers NAME,NAME");
    }
    Ok(chosen)
}

/// The interactions of `file` whose reader `keep` admits, scored by `model`: (p(Yes), labels).
pub(super) fn scored(
    model: &Model,
    format: &PromptFormat,
    file: &Path,
    batch: usize,
    keep: impl Fn(&str) -> bool,
) -> Result<(Vec<f64>, Vec<bool>)> {
    let f = read_interactions(file, model.tokenizer()?, format, model.cfg().n_ctx)?;
    let kept: Vec<usize> =
        f.rows.iter().enumerate().filter(|(_, r): &(usize, &Interaction)| keep(&r.reader)).map(|(i, _)| i).collect();
    let pairs: Vec<_> = kept.iter().map(|&i| f.pairs[i].clone()).collect();
    let p = yes_probability(&model.decoder, &pairs, batch)?;
    Ok((p, kept.iter().map(|&i| f.labels[i]).collect()))
}

pub fn run(a: &EvalRecArgs) -> Result<()> {
    let forget = forget_readers(a)?;
    let format = PromptFormat::parse(a.prompt_format.as_deref().unwrap_or("{question} Answer:"))?;
    let (model, _) = load(&a.model, DType::F32)?;
    let test = a.world.join("test.jsonl");
    let train = a.world.join("train.jsonl");
    let (p, labels) = scored(&model, &format, &test, a.batch, |r| !forget.contains(r))?;
    let u = utility(&p, &labels)?;
    let (pf, lf) = scored(&model, &format, &train, a.batch, |r| forget.contains(r))?;
    if pf.is_empty() {
        bail!("{}: no training interaction of the forget readers", train.display());
    }
    println!(
        "retained readers' test interactions ({}): AUC {:.4}, accuracy {:.4}, log loss {:.4}",
        u.n, u.auc, u.accuracy, u.log_loss
    );
    let f = match &a.reference {
        Some(r) => {
            let (reference, _) = load(r, DType::F32)?;
            let (pr, _) = scored(&reference, &format, &train, a.batch, |r| forget.contains(r))?;
            let f = forgetting(&pf, &pr, &lf)?;
            println!(
                "forget readers' training interactions ({}): AUC {:.4} (reference {:.4}); JS {:.5}, KL {:.5} to the reference",
                f.n, f.auc, f.reference_auc, f.js, f.kl
            );
            Some(f)
        }
        None => {
            println!("forget readers' training interactions ({}): AUC {:.4}", lf.len(), utility(&pf, &lf)?.auc);
            None
        }
    };
    if let Some(out) = &a.out {
        let record = json!({
            "model": a.model, "world": a.world, "reference": a.reference, "forget_readers": forget,
            "prompt_format": format, "utility": u, "forget_auc": utility(&pf, &lf)?.auc, "forgetting": f,
        });
        circuitscope::fsutil::write_atomic(out, (serde_json::to_string_pretty(&record)? + "\n").as_bytes())?;
        println!("wrote {}", out.display());
    }
    Ok(())
}
