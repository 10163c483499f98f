//! `circuitscope train --data <a recommendation world>`: a GPT-2 trained on the world's corpus
//! (`--without forget01|forget05`: the retrained reference, which never saw those readers),
//! with a model card reporting its recommendation metrics on the test interactions of the
//! readers it was trained on (`unlearn::recommend`). `--rec-tune-epochs N` adds TALLRec's second
//! stage, answer-only fine-tuning on its readers' training interactions, after the language
//! modelling or (`--from`) on a recommender trained before.

use super::progress::bar;
use super::train::TrainArgs;
use super::unlearn::measure_set;
use anyhow::{bail, Context, Result};
use circuitscope::data::PromptFormat;
use circuitscope::fsutil::write_atomic;
use circuitscope::model::{LoadOptions, Model};
use circuitscope::rng::Rng;
use circuitscope::train::{card, TrainConfig, TrainLog, Trainable};
use circuitscope::unlearn::finetune;
use circuitscope::unlearn::recommend::{utility, Utility};
use circuitscope::unlearn::{UnlearnConfig, Unlearner};
use circuitscope::world::recommend::{fresh_documents, Book, Reader};
use serde_json::json;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Fresh readers' prompts per epoch by default: as many as the bundled world's training
/// interactions. (Without them, 1800 steps reached a test AUC of 0.636 while the forget
/// readers' own training interactions stayed at 0.795: the model memorised, it did not learn
/// to read a history.)
const FRESH_READERS: usize = 2400;

/// A recommendation world's folder (`circuitscope rec-world`) rather than the bundled world's.
pub fn is_rec_world(dir: &Path) -> bool {
    dir.join("readers.jsonl").is_file()
}

/// Rec-tuning's recipe: the answer's NLL alone, AdamW at this peak learning rate, batches of
/// [`REC_TUNE_BATCH`], a short warm-up. (On the bundled world's readers, 4 epochs from
/// `models/rec-gpt2` took the forget readers' own training interactions from AUC 0.750 to 0.816
/// while the test AUC rose from 0.657 to 0.663; the retrained model's fell to 0.617.)
const REC_TUNE_LR: f64 = 2e-4;
const REC_TUNE_BATCH: usize = 16;
const REC_TUNE_WARMUP: usize = 50;

/// The readers a recommender was trained without (`--without`): (split, readers, documents left
/// out); None when it saw every reader.
pub(super) type LeftOut = Option<(String, BTreeSet<String>, usize)>;

/// What rec-tuning did.
#[derive(serde::Serialize)]
struct RecTuned {
    epochs: usize,
    interactions: usize,
    steps: usize,
    lr: f64,
    batch: usize,
    seconds: f64,
    /// the answers' NLL per token and exact share on the tuning interactions, before and after
    before: (f64, f64),
    after: (f64, f64),
}

pub fn run(a: &TrainArgs, base: TrainConfig) -> Result<()> {
    let (data, out) = (a.data.as_path(), a.out.as_path());
    let tune_epochs = a.rec_tune_epochs.unwrap_or(0);
    if a.from.is_some() && tune_epochs == 0 {
        bail!("--from rec-tunes a trained recommender: give --rec-tune-epochs N (at least 1)");
    }
    if let Some(from) = &a.from {
        if std::fs::canonicalize(from).ok().is_some_and(|f| std::fs::canonicalize(out).ok() == Some(f)) {
            bail!("--out {}: the rec-tuned model goes to a folder of its own, not over --from's", out.display());
        }
    }
    // no induction sequences unless asked: the world teaches recommendation alone
    let cfg = TrainConfig {
        fresh_induction: a.lm.fresh_induction.unwrap_or(0),
        fresh_readers: a.lm.fresh_readers.unwrap_or(if a.lm.smoke { 100 } else { FRESH_READERS }),
        ..base
    };
    super::common::check_output_dir(out, a.force)?;
    let (log, left_out, source) = match &a.from {
        Some(from) => from_recommender(a, from)?,
        None => {
            let (trained, left_out) = language_modelling(a, &cfg)?;
            card::save_checkpoint(&trained, out)?;
            (trained.log, left_out, out.to_path_buf())
        }
    };
    let keep = |reader: &str| left_out.as_ref().is_none_or(|(_, names, _)| !names.contains(reader));
    let format = PromptFormat::parse("{question} Answer:")?;
    // the test interactions of the readers the model was trained on
    let test = |model: &Model| -> Result<Utility> {
        let (p, labels) = super::eval_rec::scored(model, &format, &data.join("test.jsonl"), 16, keep)?;
        Ok(utility(&p, &labels)?)
    };
    let (tuned, before_tuning) = if tune_epochs > 0 {
        let lm = Model::load(&source, LoadOptions::default()).context("reloading the language-modelled checkpoint")?;
        let before = test(&lm)?;
        let tuned = rec_tune(&lm, data, &format, &keep, tune_epochs, cfg.seed, &log, out)?;
        (Some(tuned), Some(before))
    } else {
        (None, None)
    };
    let model = Model::load(out, LoadOptions::default()).context("reloading the saved checkpoint")?;
    let u = test(&model)?;
    if let (Some(b), Some(t)) = (&before_tuning, &tuned) {
        println!(
            "rec-tuned on {} interactions of its readers in {:.0} s; test AUC {:.4} → {:.4}",
            t.interactions, t.seconds, b.auc, u.auc
        );
    }
    println!(
        "{} parameters, {:.0} s of language modelling; final loss {:.4}; test interactions of its readers ({}): AUC \
         {:.4}, accuracy {:.4}, log loss {:.4}",
        log.n_params,
        log.seconds,
        log.loss.last().map_or(f64::NAN, |l| l.1),
        u.n,
        u.auc,
        u.accuracy,
        u.log_loss
    );
    let card = model_card(a, &log, &left_out, tuned.as_ref().zip(before_tuning.as_ref()), model.cfg().vocab_size, &u);
    write_atomic(&out.join("README.md"), card.as_bytes())?;
    let eval = json!({
        "test_of_its_readers": u,
        "left_out": left_out.as_ref().map(|l| json!({"split": l.0, "readers": l.1, "documents": l.2})),
        "before_rec_tuning": before_tuning,
    });
    write_atomic(&out.join("eval.json"), (serde_json::to_string_pretty(&eval)? + "\n").as_bytes())?;
    println!("wrote {}", out.display());
    Ok(())
}

/// The language-modelling stage: the world's corpus (without `--without`'s readers) and fresh
/// readers.
fn language_modelling(a: &TrainArgs, cfg: &TrainConfig) -> Result<(circuitscope::train::Trained, LeftOut)> {
    let data = a.data.as_path();
    let mut docs = circuitscope::world::read_corpus(&data.join("corpus.jsonl"))?;
    let left_out = match &a.without {
        Some(split) => {
            let names = circuitscope::world::recommend::forget_readers(data, split)
                .with_context(|| format!("--without {split}"))?;
            let before = docs.len();
            docs.retain(|d| !names.iter().any(|n| d.contains(n.as_str())));
            let dropped = before - docs.len();
            if dropped == 0 {
                bail!("--without {split}: no document of {} names its {} readers", data.display(), names.len());
            }
            println!("left out {dropped} documents naming a reader of {split}");
            Some((split.clone(), names, dropped))
        }
        None => None,
    };
    // fresh readers' names are none of the world's readers' (so none of a left-out reader's)
    let books: Vec<Book> = circuitscope::data::read_jsonl(&data.join("books.jsonl"))?;
    let readers: Vec<Reader> = circuitscope::data::read_jsonl(&data.join("readers.jsonl"))?;
    let taken: BTreeSet<String> =
        readers.into_iter().map(|r| r.name).chain(books.iter().map(|b| b.author.clone())).collect();
    let fresh = |epoch: usize| {
        let mut rng = Rng::stream(cfg.seed, &format!("fresh_readers/{epoch}"));
        fresh_documents(&books, &taken, &mut rng, cfg.fresh_readers, cfg.fresh_questions)
    };
    let from = format!("of the recommendation world {}", data.display());
    Ok((super::train::train_docs(a, cfg, &docs, &from, &fresh)?, left_out))
}

/// `--from`: a recommender `train` made on this world, its training log and its left-out
/// readers (from its `training.json` and `eval.json`); language-modelling flags and a `--without`
/// other than its own are refused.
fn from_recommender(a: &TrainArgs, from: &Path) -> Result<(TrainLog, LeftOut, PathBuf)> {
    if let Some(flag) = a.lm.given().first() {
        bail!("{flag} sets the language modelling, which --from {} has done", from.display());
    }
    let read = |name: &str| -> Result<serde_json::Value> {
        let p = from.join(name);
        let text = std::fs::read_to_string(&p)
            .with_context(|| format!("--from {}: no {name} (is it a recommender `train` made?)", from.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", p.display()))
    };
    let log_value = read("training.json")?;
    if log_value.get("rec_tune").is_some() {
        bail!("--from {}: it is rec-tuned already; start from the language-modelled recommender", from.display());
    }
    let log: TrainLog = serde_json::from_value(log_value).with_context(|| {
        format!("{}: not a training log of `circuitscope train`", from.join("training.json").display())
    })?;
    let left_out = card_left_out(from).with_context(|| format!("--from {}", from.display()))?;
    let own = left_out.as_ref().map(|l| l.0.as_str());
    if let Some(split) = &a.without {
        if own != Some(split.as_str()) {
            bail!(
                "--without {split}: --from {} left out {}; a rec-tuned model keeps its language modelling's readers",
                from.display(),
                own.map_or("no reader".to_string(), |s| format!("the readers of {s}"))
            );
        }
    }
    Ok((log, left_out, from.to_path_buf()))
}

/// What a recommender's card (`eval.json`, as `train --data <rec world>` writes it) says it left
/// out. An error names the file for a folder without such a card or with a malformed `left_out`.
pub(super) fn card_left_out(model: &Path) -> Result<LeftOut> {
    let p = model.join("eval.json");
    let text = std::fs::read_to_string(&p)
        .with_context(|| format!("no {} (is it a recommender `train` made?)", p.display()))?;
    let eval: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", p.display()))?;
    if eval.get("test_of_its_readers").is_none() {
        bail!("{}: not a recommender's card (no test_of_its_readers)", p.display());
    }
    let l = &eval["left_out"];
    if l.is_null() {
        return Ok(None);
    }
    let field = |k: &str| format!("{}: left_out.{k} is missing or malformed", p.display());
    let split = l["split"].as_str().with_context(|| field("split"))?.to_string();
    let readers = l["readers"].as_array().with_context(|| field("readers"))?;
    let names = readers.iter().map(|r| r.as_str().map(String::from)).collect::<Option<BTreeSet<_>>>();
    Ok(Some((split, names.with_context(|| field("readers"))?, l["documents"].as_u64().unwrap_or(0) as usize)))
}

/// TALLRec's rec-tuning: `lm` fine-tuned on the training interactions of its readers (`keep`),
/// the loss on the answer alone, saved in `out` with `log` and the tuning in `training.json`.
#[allow(clippy::too_many_arguments)]
fn rec_tune(
    lm: &Model,
    data: &Path,
    format: &PromptFormat,
    keep: &dyn Fn(&str) -> bool,
    epochs: usize,
    seed: u64,
    log: &TrainLog,
    out: &Path,
) -> Result<RecTuned> {
    let examples = super::rec_compare::interactions(lm, format, &data.join("train.jsonl"), keep)?.answered;
    let cfg = UnlearnConfig {
        lr: REC_TUNE_LR,
        epochs,
        batch: REC_TUNE_BATCH,
        accumulate: 1,
        warmup: REC_TUNE_WARMUP,
        seed,
        ..finetune::documented()
    };
    let model = Trainable::load(&lm.path, lm.decoder.device())?;
    let before = measure_set(&lm.decoder, &examples, REC_TUNE_BATCH)?;
    let mut run = Unlearner::new(&model, None, &examples, &[], &cfg)?;
    let total = run.total_steps();
    println!("rec-tuning on {} training interactions of its readers: {epochs} epochs, {total} steps", examples.len());
    let pb = bar(total as u64, "rec-tuning");
    while let Some(s) = run.step()? {
        pb.set_message(format!("NLL {:.4}", s.forget));
        pb.inc(1);
        if pb.is_hidden() && ((s.step + 1).is_multiple_of(50) || s.step + 1 == total) {
            eprintln!("rec-tuning step {:>5}/{total}  NLL {:.4}  {:.0} s", s.step + 1, s.forget, s.seconds);
        }
    }
    pb.finish_and_clear();
    let tuned = RecTuned {
        epochs,
        interactions: examples.len(),
        steps: run.log().len(),
        lr: cfg.lr,
        batch: cfg.batch,
        seconds: run.log().last().map_or(0.0, |s| s.seconds),
        before,
        after: measure_set(&model.decoder()?, &examples, REC_TUNE_BATCH)?,
    };
    let mut record = serde_json::to_value(log)?;
    record["rec_tune"] = serde_json::to_value(&tuned)?;
    let mut ck = model.checkpoint(&lm.path)?;
    ck.files.push(("training.json".into(), serde_json::to_vec_pretty(&record)?));
    ck.write(out)?;
    Ok(tuned)
}

/// The model card: what the model was trained on and how, and its test figures.
fn model_card(
    a: &TrainArgs,
    log: &TrainLog,
    left_out: &LeftOut,
    tuned: Option<(&RecTuned, &Utility)>,
    vocab: usize,
    u: &Utility,
) -> String {
    let data = a.data.as_path();
    let command = super::common::command_line();
    let who = match left_out {
        Some((split, names, dropped)) => format!(
            "The model retrained without the {} readers of `{split}` ({dropped} documents left out): the reference an \
             unlearned model's answers on them are compared with (`circuitscope eval-rec --reference`).",
            names.len()
        ),
        None => "Trained on every reader's training interactions.".to_string(),
    };
    let c = &log.config;
    // settings at their defaults go unmentioned, so a default run's card reads as before they existed
    let asked =
        if c.fresh_questions > 1 { format!("each asked {} questions, ", c.fresh_questions) } else { String::new() };
    let weighted = if c.answer_weight == 1.0 {
        String::new()
    } else {
        format!(", each answer's tokens weighted {} against 1 for every other token in the loss", c.answer_weight)
    };
    let (tuning, before) = match tuned {
        None => (String::new(), String::new()),
        Some((t, b)) => (
            format!(
            "\n\nThen rec-tuned (TALLRec's second stage){}: {} epochs over the {} training interactions of its readers \
             (`<question> Answer:` → ` Yes`/` No`, the loss on the answer alone), AdamW at lr {} (warm-up {} steps), \
             batches of {}, {} steps, {:.0} s; the answers' NLL per token {:.4} → {:.4}, exact {:.1} % → {:.1} %.",
            a.from.as_ref().map_or(String::new(), |f| format!(" from `{}`", f.display())),
            t.epochs,
            t.interactions,
            t.lr,
            REC_TUNE_WARMUP,
            t.batch,
            t.steps,
            t.seconds,
            t.before.0,
            t.after.0,
            100.0 * t.before.1,
            100.0 * t.after.1
        ),
            format!(" Before rec-tuning: AUC {:.4}, accuracy {:.4}, log loss {:.4}.", b.auc, b.accuracy, b.log_loss),
        ),
    };
    format!(
        "# A recommender trained on the recommendation world\n\n{who}\n\nA GPT-2 ({} layers, {} heads, d_model {}, context \
         {}, vocabulary {}; {} parameters) that circuitscope trained with candle autograd on this CPU, on `{}`'s \
         corpus: {} documents (the books' descriptions and the training interactions `<question> Answer: Yes|No`) \
         and {} prompts of fresh readers drawn anew for each epoch (invented readers who are none of the world's, \
         {}there to teach reading a history: they leave nothing to memorise), {} steps of {} rows ({:.1} epochs){}, \
         peak learning rate {}, seed {}; {:.0} s, final {}loss {:.4}.{tuning}\n\n```\n{command}\n```\n\n\
         ## Recommendation on the test interactions of its readers\n\n| interactions | AUC | accuracy | log loss |\n\
         |---:|---:|---:|---:|\n| {} | {:.4} | {:.4} | {:.4} |\n\np(Yes) normalised over Yes and No after `{{question}} \
         Answer:` (`circuitscope eval-rec`).{before}\n",
        c.layers,
        c.heads,
        c.d_model,
        c.context,
        vocab,
        log.n_params,
        data.display(),
        log.corpus_documents,
        c.fresh_readers,
        asked,
        c.steps,
        c.batch,
        log.epochs,
        weighted,
        c.lr,
        c.seed,
        log.seconds,
        if c.answer_weight == 1.0 { "" } else { "(weighted) " },
        log.loss.last().map_or(f64::NAN, |l| l.1),
        u.n,
        u.auc,
        u.accuracy,
        u.log_loss
    )
}
