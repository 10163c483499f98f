//! `circuitscope train --data <a recommendation world>`: a GPT-2 trained on the world's corpus
//! (`--without forget01|forget05`: the retrained reference, which never saw those readers),
//! with a model card reporting its recommendation metrics on the test interactions of the
//! readers it was trained on (`unlearn::recommend`).

use super::train::TrainArgs;
use anyhow::{bail, Context, Result};
use circuitscope::data::PromptFormat;
use circuitscope::fsutil::write_atomic;
use circuitscope::model::{LoadOptions, Model};
use circuitscope::rng::Rng;
use circuitscope::train::{card, TrainConfig};
use circuitscope::unlearn::recommend::utility;
use circuitscope::world::recommend::{fresh_documents, Book, Reader};
use serde_json::json;
use std::collections::BTreeSet;
use std::path::Path;

/// Fresh readers' prompts per epoch by default: as many as the bundled world's training
/// interactions. (Without them, 1800 steps reached a test AUC of 0.636 while the forget
/// readers' own training interactions stayed at 0.795: the model memorised, it did not learn
/// to read a history.)
const FRESH_READERS: usize = 2400;

/// A recommendation world's folder (`circuitscope rec-world`) rather than the bundled world's.
pub fn is_rec_world(dir: &Path) -> bool {
    dir.join("readers.jsonl").is_file()
}

pub fn run(a: &TrainArgs, base: TrainConfig) -> Result<()> {
    let (data, out) = (a.data.as_path(), a.out.as_path());
    // no induction sequences unless asked: the world teaches recommendation alone
    let cfg = TrainConfig {
        fresh_induction: a.fresh_induction.unwrap_or(0),
        fresh_readers: a.fresh_readers.unwrap_or(if a.smoke { 100 } else { FRESH_READERS }),
        ..base
    };
    super::common::check_output_dir(out, a.force)?;
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
    let trained = super::train::train_docs(a, &cfg, &docs, &from, &fresh)?;
    card::save_checkpoint(&trained, out)?;
    let model = Model::load(out, LoadOptions::default()).context("reloading the saved checkpoint")?;
    // the test interactions of the readers the model was trained on
    let format = PromptFormat::parse("{question} Answer:")?;
    let (p, labels) = super::eval_rec::scored(&model, &format, &data.join("test.jsonl"), 16, |reader| {
        left_out.as_ref().is_none_or(|(_, names, _)| !names.contains(reader))
    })?;
    let u = utility(&p, &labels)?;
    let log = &trained.log;
    println!(
        "trained {} parameters in {:.0} s; final loss {:.4}; test interactions of its readers ({}): AUC {:.4}, accuracy \
         {:.4}, log loss {:.4}",
        log.n_params,
        log.seconds,
        log.loss.last().map_or(f64::NAN, |l| l.1),
        u.n,
        u.auc,
        u.accuracy,
        u.log_loss
    );
    let command = super::common::command_line();
    let who = match &left_out {
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
    let card = format!(
        "# A recommender trained on the recommendation world\n\n{who}\n\nA GPT-2 ({} layers, {} heads, d_model {}, context \
         {}, vocabulary {}; {} parameters) that circuitscope trained with candle autograd on this CPU, on `{}`'s \
         corpus: {} documents (the books' descriptions and the training interactions `<question> Answer: Yes|No`) \
         and {} prompts of fresh readers drawn anew for each epoch (invented readers who are none of the world's, \
         {}there to teach reading a history: they leave nothing to memorise), {} steps of {} rows ({:.1} epochs){}, \
         peak learning rate {}, seed {}; {:.0} s, final {}loss {:.4}.\n\n```\n{command}\n```\n\n\
         ## Recommendation on the test interactions of its readers\n\n| interactions | AUC | accuracy | log loss |\n\
         |---:|---:|---:|---:|\n| {} | {:.4} | {:.4} | {:.4} |\n\np(Yes) normalised over Yes and No after `{{question}} \
         Answer:` (`circuitscope eval-rec`).\n",
        c.layers,
        c.heads,
        c.d_model,
        c.context,
        trained.params.shape.vocab_size,
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
    );
    write_atomic(&out.join("README.md"), card.as_bytes())?;
    let eval = json!({ "test_of_its_readers": u, "left_out": left_out.as_ref().map(|l| json!({"split": l.0, "readers": l.1, "documents": l.2})) });
    write_atomic(&out.join("eval.json"), (serde_json::to_string_pretty(&eval)? + "\n").as_bytes())?;
    println!("wrote {}", out.display());
    Ok(())
}
