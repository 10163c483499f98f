//! `circuitscope train`: the bundled model, from the world's corpus to a Hugging Face checkpoint
//! with a model card.

use super::progress::bar;
use anyhow::{bail, Context, Result};
use circuitscope::model::{LoadOptions, Model};
use circuitscope::train::{self, card, TrainConfig};
use circuitscope::world::{read_people, Split};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct TrainArgs {
    /// a world folder (`circuitscope world --out DIR`), or a recommendation world's
    /// (`circuitscope rec-world`)
    #[arg(long, default_value = "circuits/world")]
    pub data: PathBuf,
    /// the checkpoint folder to write (refused if it exists and is not empty, unless --force)
    #[arg(long, default_value = "models/world-gpt2")]
    pub out: PathBuf,
    #[arg(long)]
    pub force: bool,
    // how the language model is trained (what `--from` has done already)
    #[command(flatten)]
    pub lm: LmArgs,
    #[arg(long)]
    pub seed: Option<u64>,
    /// leave out every document naming a person of this split (e.g. `forget10`: the retain model
    /// that TOFU's forget quality compares against; a reader of `forget01`/`forget05` in a
    /// recommendation world)
    #[arg(long)]
    pub without: Option<String>,
    /// recommendation worlds: epochs of rec-tuning after the language modelling (TALLRec's second
    /// stage: the model's readers' training interactions, the loss on the answer alone)
    /// [default: 0]
    #[arg(long)]
    pub rec_tune_epochs: Option<usize>,
    /// recommendation worlds: rec-tune this recommender (`train` on the same world: its
    /// tokenizer, its left-out readers) instead of training one; needs --rec-tune-epochs
    #[arg(long)]
    pub from: Option<PathBuf>,
}

/// The flags of the language modelling, which `--from` (a recommender trained before) has done.
/// Every one is an `Option` or a switch, so that [`LmArgs::given`] can name those given.
#[derive(clap::Args, serde::Serialize)]
pub struct LmArgs {
    /// a few dozen steps of a tiny model instead (a smoke test: the loss must fall)
    #[arg(long)]
    pub smoke: bool,
    #[arg(long)]
    pub steps: Option<usize>,
    #[arg(long)]
    pub layers: Option<usize>,
    #[arg(long)]
    pub heads: Option<usize>,
    #[arg(long)]
    pub d_model: Option<usize>,
    /// context length in tokens
    #[arg(long)]
    pub context: Option<usize>,
    #[arg(long)]
    pub vocab_size: Option<usize>,
    /// rows per step
    #[arg(long)]
    pub batch: Option<usize>,
    /// peak learning rate
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long)]
    pub warmup: Option<usize>,
    /// AdamW weight decay (on weight matrices only)
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// repeated random word sequences drawn afresh for every epoch, on top of the corpus
    #[arg(long)]
    pub fresh_induction: Option<usize>,
    /// recommendation worlds: prompts of fresh readers drawn afresh for every epoch [default:
    /// 2400, as many as the world's training interactions]
    #[arg(long)]
    pub fresh_readers: Option<usize>,
    /// recommendation worlds: questions each fresh reader's prompt answers [default: 1]
    #[arg(long)]
    pub fresh_questions: Option<usize>,
    /// the loss weight of an answer's tokens (after `Answer:`, to the line's end) against 1 for
    /// every other token [default: 1]
    #[arg(long)]
    pub answer_weight: Option<f64>,
    /// a `tokenizer.json` to use instead of training one (a retain model must share the original
    /// model's vocabulary)
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
}

impl LmArgs {
    /// The flags given on the command line, as `--name`: the fields that are set (an `Option`
    /// with a value, a switch that is on), named as clap names them.
    pub fn given(&self) -> Vec<String> {
        let fields = serde_json::to_value(self).expect("the flags as JSON");
        let set = |v: &serde_json::Value| !v.is_null() && *v != serde_json::Value::Bool(false);
        fields
            .as_object()
            .expect("a struct is a JSON object")
            .iter()
            .filter(|(_, v)| set(v))
            .map(|(k, _)| format!("--{}", k.replace('_', "-")))
            .collect()
    }
}

impl TrainArgs {
    /// The training configuration: the flags given, the defaults (or `--smoke`'s) for the rest.
    pub fn config(&self) -> TrainConfig {
        let (lm, base) = (&self.lm, if self.lm.smoke { TrainConfig::smoke() } else { TrainConfig::default() });
        TrainConfig {
            steps: lm.steps.unwrap_or(base.steps),
            layers: lm.layers.unwrap_or(base.layers),
            heads: lm.heads.unwrap_or(base.heads),
            d_model: lm.d_model.unwrap_or(base.d_model),
            context: lm.context.unwrap_or(base.context),
            vocab_size: lm.vocab_size.unwrap_or(base.vocab_size),
            batch: lm.batch.unwrap_or(base.batch),
            lr: lm.lr.unwrap_or(base.lr),
            warmup: lm.warmup.unwrap_or(base.warmup),
            weight_decay: lm.weight_decay.unwrap_or(base.weight_decay),
            fresh_induction: lm.fresh_induction.unwrap_or(base.fresh_induction),
            fresh_readers: lm.fresh_readers.unwrap_or(base.fresh_readers),
            fresh_questions: lm.fresh_questions.unwrap_or(base.fresh_questions),
            answer_weight: lm.answer_weight.unwrap_or(base.answer_weight),
            seed: self.seed.unwrap_or(base.seed),
            ..base
        }
    }
}

/// The corpus without the documents that name a person of `split` (by full name: biographies,
/// question/answer pairs and fact-recall sentences), and how many were left out.
fn corpus_without(data: &Path, docs: Vec<String>, split: &str) -> Result<(Vec<String>, usize)> {
    let Some(split) = Split::ALL.into_iter().find(|s| s.name() == split && *s != Split::World) else {
        let names: Vec<&str> = Split::ALL.iter().filter(|s| **s != Split::World).map(|s| s.name()).collect();
        bail!("--without {split}: not a split of people (known: {})", names.join(", "));
    };
    let people = read_people(&data.join("people.jsonl"))?;
    let names: Vec<&str> = people.iter().filter(|p| split.contains(p.group)).map(|p| p.name.as_str()).collect();
    let before = docs.len();
    let kept: Vec<String> = docs.into_iter().filter(|d| !names.iter().any(|n| d.contains(n))).collect();
    let dropped = before - kept.len();
    if dropped == 0 {
        bail!("--without {}: no document of {} names its {} people", split.name(), data.display(), names.len());
    }
    Ok((kept, dropped))
}

pub fn run(a: &TrainArgs) -> Result<()> {
    if super::train_rec::is_rec_world(&a.data) {
        return super::train_rec::run(a, a.config());
    }
    if a.lm.fresh_readers.is_some() || a.lm.fresh_questions.is_some() || a.rec_tune_epochs.is_some() || a.from.is_some()
    {
        bail!(
            "--fresh-readers, --fresh-questions, --rec-tune-epochs and --from apply to a recommendation world \
             (`circuitscope rec-world`), not to {}",
            a.data.display()
        );
    }
    let (data, out, cfg) = (a.data.as_path(), a.out.as_path(), &a.config());
    super::common::check_output_dir(out, a.force)?;
    let world = card::WorldData::read(data)?;
    let mut docs = circuitscope::world::read_corpus(&data.join("corpus.jsonl"))?;
    let mut left_out = None;
    if let Some(split) = &a.without {
        let (kept, documents) = corpus_without(data, docs, split)?;
        println!("left out {documents} documents naming a person of {split}");
        docs = kept;
        left_out = Some(card::LeftOut { split: split.clone(), documents });
    }
    let trained = train_docs(a, cfg, &docs, &format!("from {}", data.display()), &|_| Vec::new())?;
    let log = &trained.log;
    println!(
        "trained {} parameters in {:.0} s ({:.0} tokens/s, {:.1} epochs); final loss {:.4}",
        log.n_params,
        log.seconds,
        log.tokens_per_second,
        log.epochs,
        log.loss.last().map_or(f64::NAN, |l| l.1)
    );
    card::save_checkpoint(&trained, out)?;
    let model = Model::load(out, LoadOptions::default()).context("reloading the saved checkpoint")?;
    let report = card::evaluate(&model.decoder, model.tokenizer()?, &world)?;
    print!("{}", report.table());
    let command = super::common::command_line();
    card::write_card(&trained, &report, &command, data, left_out.as_ref(), out)?;
    println!("wrote {}", out.display());
    Ok(())
}

/// Trains a GPT-2 of `cfg` on `docs` (with `--tokenizer`'s vocabulary when given) behind a
/// progress bar; `from` says where the documents come from.
/// `fresh(epoch)` adds each epoch's fresh documents ([`train::train_with_fresh`]).
pub(super) fn train_docs(
    a: &TrainArgs,
    cfg: &TrainConfig,
    docs: &[String],
    from: &str,
    fresh: &dyn Fn(usize) -> Vec<String>,
) -> Result<train::Trained> {
    let tokenizer = match &a.lm.tokenizer {
        Some(p) => Some(
            tokenizers::Tokenizer::from_file(p)
                .map_err(|e| anyhow::anyhow!("{}: not a readable tokenizer.json: {e}", p.display()))?,
        ),
        None => None,
    };
    println!(
        "training a GPT-2 ({} layers, {} heads, d_model {}, context {}) on {} documents {from} for {} steps",
        cfg.layers,
        cfg.heads,
        cfg.d_model,
        cfg.context,
        docs.len(),
        cfg.steps
    );
    let pb = bar(cfg.steps as u64, "training");
    let mut avg = None::<f64>;
    let on_step = |step: usize, loss: f64, lr: f64| {
        let a = avg.map_or(loss, |a| 0.95 * a + 0.05 * loss);
        avg = Some(a);
        pb.set_message(format!("loss {a:.4} lr {lr:.2e}"));
        pb.inc(1);
        // Without a terminal the bar is hidden: log a line now and then instead.
        if pb.is_hidden() && (step.is_multiple_of(50) || step + 1 == cfg.steps) {
            eprintln!(
                "step {:>5}/{}  loss {a:.4}  lr {lr:.2e}  {:.0} s",
                step + 1,
                cfg.steps,
                pb.elapsed().as_secs_f64()
            );
        }
    };
    let tokenizer = match tokenizer {
        Some(t) => t,
        None => train::bpe::train_tokenizer(docs, cfg.vocab_size)?,
    };
    let trained = train::train_with_fresh(cfg, docs, tokenizer, fresh, on_step)?;
    pb.finish_and_clear();
    Ok(trained)
}

#[cfg(test)]
mod tests {
    use super::{LmArgs, TrainArgs};
    use clap::{Args, Command, FromArgMatches};

    /// `--from` refuses the language-modelling flags by what [`LmArgs::given`] names: each flag
    /// of the group, given alone, is named as the command line spells it, and none when none is.
    #[test]
    fn every_language_modelling_flag_given_alone_is_named_as_clap_spells_it() {
        let cmd = TrainArgs::augment_args(Command::new("train"));
        let parse = |args: &[&str]| {
            let m = cmd.clone().try_get_matches_from(args).unwrap();
            TrainArgs::from_arg_matches(&m).unwrap()
        };
        assert!(parse(&["train"]).lm.given().is_empty());
        let group = LmArgs::augment_args(Command::new("lm"));
        let flags: Vec<_> =
            group.get_arguments().filter_map(|a| Some((a.get_long()?, a.get_action().takes_values()))).collect();
        assert!(flags.len() >= 16, "{} flags", flags.len());
        for (long, takes_value) in flags {
            let flag = format!("--{long}");
            let args: Vec<&str> = if takes_value { vec!["train", &flag, "1"] } else { vec!["train", &flag] };
            assert_eq!(parse(&args).lm.given(), vec![flag.clone()]);
        }
    }
}
