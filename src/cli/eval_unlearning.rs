//! `circuitscope eval-unlearning`: TOFU's evaluation of a model (ALGORITHMS.md §9) on its own
//! files, unchanged: per question (`questions.jsonl`) and in summary (`summary.json`, and two
//! pictures: the forget truth ratios against the retain model's, and the headline numbers).

use super::common::{check_output_dir, sibling};
use super::model::{load, resolve_model};
use super::progress::bar;
use anyhow::{bail, Context, Result};
use candle_core::DType;
use circuitscope::data::{PerturbedQa, PromptFormat};
use circuitscope::model::Model;
use circuitscope::render::charts::{BarChart, LinePlot, Scale, Series};
use circuitscope::unlearn::evaluate::{read_question_set, score_questions, QuestionScores, ScoreOptions, TofuScores};
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct EvalUnlearningArgs {
    /// the model to evaluate (a checkpoint folder or GGUF file; `smollm2`)
    pub model: PathBuf,
    /// the forget set: TOFU's `forgetNN.jsonl` (its `forgetNN_perturbed.jsonl` beside it is read
    /// too) or the perturbed file itself
    #[arg(long)]
    pub forget: PathBuf,
    /// the forget set's paraphrased and perturbed answers [default: `<forget>_perturbed.jsonl`]
    #[arg(long)]
    pub forget_perturbed: Option<PathBuf>,
    /// retain questions with paraphrased and perturbed answers (TOFU's `retain_perturbed.jsonl`)
    #[arg(long)]
    pub retain: PathBuf,
    /// never-trained questions, the membership-inference negatives (TOFU's `holdoutNN.jsonl`)
    #[arg(long)]
    pub holdout: Option<PathBuf>,
    /// real-author questions with wrong options (TOFU's `real_authors_perturbed.jsonl`)
    #[arg(long)]
    pub real_authors: Option<PathBuf>,
    /// world-fact questions with wrong options (TOFU's `world_facts_perturbed.jsonl`)
    #[arg(long)]
    pub world_facts: Option<PathBuf>,
    /// the retain model (trained without the forget set): forget quality and privleak
    #[arg(long)]
    pub retain_model: Option<PathBuf>,
    /// instead of --retain-model: the retain model's own evaluation (an `eval-unlearning` folder
    /// of it on the same forget and holdout questions, in the same prompt format), whose scores
    /// are read rather than computed again, e.g. for a table of many unlearned models
    #[arg(long, conflicts_with = "retain_model")]
    pub retain_eval: Option<PathBuf>,
    /// the folder to write (refused if it exists and is not empty, unless --force)
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub pictures: super::args::PictureArgs,
    #[command(flatten)]
    pub prompt: super::args::PromptArgs,
    /// greedy answers stop here or at the end token
    #[arg(long, default_value_t = 200)]
    pub max_new_tokens: usize,
    /// examples per forward pass
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// use only the first N questions of each file
    #[arg(long)]
    pub limit: Option<usize>,
}

/// A question file: every record, or an error naming the file.
fn read_set(path: &Path, limit: Option<usize>) -> Result<Vec<PerturbedQa>> {
    Ok(read_question_set(path, limit, false)?)
}

/// A set whose every question must come with wrong answers (the truth ratio needs them).
pub(super) fn read_with_options(path: &Path, limit: Option<usize>) -> Result<Vec<PerturbedQa>> {
    Ok(read_question_set(path, limit, true)?)
}

/// The forget set with its paraphrased and perturbed answers: the file itself when it has them,
/// else the perturbed file, whose questions must be the forget file's, in order.
fn read_forget(a: &EvalUnlearningArgs) -> Result<(Vec<PerturbedQa>, Option<PathBuf>)> {
    let rows = read_set(&a.forget, a.limit)?;
    if rows.iter().all(|r| !r.perturbed_answer.is_empty()) && a.forget_perturbed.is_none() {
        return Ok((rows, None));
    }
    let path = a.forget_perturbed.clone().unwrap_or_else(|| sibling(&a.forget, "_perturbed.jsonl"));
    if !path.exists() {
        bail!(
            "{} has no perturbed answers and {} does not exist: give --forget-perturbed FILE",
            a.forget.display(),
            path.display()
        );
    }
    let perturbed = read_with_options(&path, a.limit)?;
    if perturbed.len() != rows.len() {
        bail!(
            "{} holds {} questions but {} holds {}: the perturbed file must hold the forget file's questions",
            path.display(),
            perturbed.len(),
            a.forget.display(),
            rows.len()
        );
    }
    if let Some(i) = rows.iter().zip(&perturbed).position(|(r, p)| r.question != p.question) {
        bail!(
            "{} record {} asks {:?}, but {} record {} asks {:?}: the perturbed file must hold the forget file's \
             questions, in order",
            path.display(),
            i + 1,
            perturbed[i].question,
            a.forget.display(),
            i + 1,
            rows[i].question
        );
    }
    Ok((perturbed, Some(path)))
}

/// A set read from an optional file, with its path.
fn set<'a>(rows: &'a Option<Vec<PerturbedQa>>, path: &'a Option<PathBuf>) -> Option<(&'a [PerturbedQa], &'a Path)> {
    rows.as_deref().zip(path.as_deref())
}

/// The scores of one set (read from `path`) under one model, with a progress bar.
fn score(
    model: &Model,
    format: &PromptFormat,
    (items, path): (&[PerturbedQa], &Path),
    opts: &ScoreOptions,
    what: &str,
) -> Result<Vec<QuestionScores>> {
    let pb = bar(0, what);
    let out = score_questions(&model.decoder, model.tokenizer()?, format, items, opts, &pb)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), super::error_line(&e.into())))?;
    pb.finish_and_clear();
    Ok(out)
}

/// Whether two model arguments name the same model (the same folder or file, aliases resolved).
fn same_model(a: &Path, b: &Path) -> bool {
    let canonical = |p: &Path| resolve_model(p).ok().and_then(|p| std::fs::canonicalize(p).ok());
    matches!((canonical(a), canonical(b)), (Some(x), Some(y)) if x == y)
}

/// A saved evaluation's model (its `summary.json`'s `model`), forget and holdout scores.
type SavedScores = (serde_json::Value, Vec<QuestionScores>, Option<Vec<QuestionScores>>);

/// The retain model's scores from its own evaluation (`--retain-eval DIR`): the forget and holdout
/// sets of `DIR/questions.jsonl`, which must ask this evaluation's questions with its answers, in
/// its prompt format.
fn read_retain_eval(
    dir: &Path,
    format: &PromptFormat,
    forget: &[PerturbedQa],
    holdout: Option<&[PerturbedQa]>,
) -> Result<SavedScores> {
    let summary_path = dir.join("summary.json");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary_path).with_context(|| {
            format!("--retain-eval {}: no summary.json (an eval-unlearning folder)", dir.display())
        })?)
        .with_context(|| format!("{}: not JSON", summary_path.display()))?;
    // the same prompts, wherever the template came from (each model's own chat template)
    let without_source = |mut v: serde_json::Value| {
        if let Some(o) = v.as_object_mut() {
            o.remove("source");
        }
        v
    };
    let ours = without_source(serde_json::to_value(format)?);
    if without_source(summary["prompt_format"].clone()) != ours {
        bail!(
            "{}: the retain model was evaluated in another prompt format ({}), this evaluation uses {}",
            summary_path.display(),
            summary["prompt_format"],
            ours
        );
    }
    let path = dir.join("questions.jsonl");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let (mut saved_forget, mut saved_holdout) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("{} line {}: not JSON", path.display(), i + 1))?;
        let into = match v["set"].as_str() {
            Some("forget") => &mut saved_forget,
            Some("holdout") => &mut saved_holdout,
            _ => continue,
        };
        into.push(
            serde_json::from_value::<QuestionScores>(v)
                .with_context(|| format!("{} line {}: not a question's scores", path.display(), i + 1))?,
        );
    }
    let check = |saved: &[QuestionScores], ours: &[PerturbedQa], set: &str| -> Result<()> {
        if saved.len() != ours.len() {
            bail!(
                "{}: its {set} set holds {} questions, this evaluation's {}",
                path.display(),
                saved.len(),
                ours.len()
            );
        }
        if let Some(i) = saved.iter().zip(ours).position(|(s, o)| s.question != o.question || s.answer != o.answer) {
            bail!(
                "{}: {set} question {} is {:?} with the answer {:?}, this evaluation's is {:?} with {:?}",
                path.display(),
                i + 1,
                saved[i].question,
                saved[i].answer,
                ours[i].question,
                ours[i].answer
            );
        }
        Ok(())
    };
    check(&saved_forget, forget, "forget")?;
    let saved_forget = teacher_forced_only(saved_forget);
    let saved_holdout = match holdout {
        Some(h) => {
            if saved_holdout.is_empty() {
                bail!("{}: the retain model was evaluated without --holdout, which privleak needs", path.display());
            }
            check(&saved_holdout, h, "holdout")?;
            Some(saved_holdout)
        }
        None => None,
    };
    Ok((summary["model"].clone(), saved_forget, saved_holdout))
}

/// Scores as a loaded retain model's are made: teacher-forced, without greedy answers.
fn teacher_forced_only(mut qs: Vec<QuestionScores>) -> Vec<QuestionScores> {
    for q in &mut qs {
        (q.generated, q.rouge_l_recall) = (None, None);
    }
    qs
}

/// The retain model's scores read from its evaluation must count the answers' tokens as the
/// model does: the same vocabulary, as [`check_same_vocabulary`] asks of a loaded one.
fn check_same_tokens(model: &[QuestionScores], saved: &[QuestionScores], dir: &Path) -> Result<()> {
    if let Some(i) = model.iter().zip(saved).position(|(m, s)| m.n_tokens != s.n_tokens) {
        bail!(
            "{}: forget question {} has {} answer tokens there and {} here: the retain model's tokenizer differs \
             from the model's, and forget quality needs the same vocabulary",
            dir.display(),
            i + 1,
            saved[i].n_tokens,
            model[i].n_tokens
        );
    }
    Ok(())
}

/// The retain model must read the same tokens: its vocabulary equals the model's.
fn check_same_vocabulary(model: &Model, retain: &Model, path: &Path) -> Result<()> {
    let (a, b) = (model.tokenizer()?, retain.tokenizer()?);
    let probe = "Question: Where was the author born?\nAnswer: The author was born in 1961.";
    if a.vocab_size() != b.vocab_size() || a.encode(probe)? != b.encode(probe)? {
        bail!(
            "{}: the retain model's tokenizer differs from the model's ({} and {} tokens); forget quality compares \
             truth ratios question by question and needs the same vocabulary",
            path.display(),
            b.vocab_size(),
            a.vocab_size()
        );
    }
    Ok(())
}

pub fn run(a: &EvalUnlearningArgs) -> Result<()> {
    a.pictures.format()?;
    if a.limit == Some(0) || a.batch == 0 {
        bail!("--limit and --batch must be at least 1");
    }
    check_output_dir(&a.out, a.force)?;
    let (forget, forget_perturbed) = read_forget(a)?;
    let retain = read_with_options(&a.retain, a.limit)?;
    let real_authors = a.real_authors.as_deref().map(|p| read_with_options(p, a.limit)).transpose()?;
    let world_facts = a.world_facts.as_deref().map(|p| read_with_options(p, a.limit)).transpose()?;
    let holdout = a.holdout.as_deref().map(|p| read_set(p, a.limit)).transpose()?;
    let forget_questions: std::collections::BTreeSet<&str> = forget.iter().map(|r| r.question.as_str()).collect();
    let overlap = retain.iter().filter(|r| forget_questions.contains(r.question.as_str())).count();
    if overlap > 0 {
        bail!(
            "{} and {} share {overlap} questions: the retain set must not hold forget questions",
            a.forget.display(),
            a.retain.display()
        );
    }

    let t = std::time::Instant::now();
    let (model, _) = load(&a.model, DType::F32)?;
    let format = a.prompt.format(&model)?;
    // the model evaluated against itself (the retain model's own row) is scored once
    let itself = a.retain_model.as_deref().is_some_and(|p| same_model(p, &a.model));
    let retain_model = match &a.retain_model {
        Some(p) if !itself => {
            let (m, _) = load(p, DType::F32)?;
            check_same_vocabulary(&model, &m, p)?;
            Some(m)
        }
        _ => None,
    };
    let saved =
        a.retain_eval.as_deref().map(|d| read_retain_eval(d, &format, &forget, holdout.as_deref())).transpose()?;
    let opts = ScoreOptions { batch: a.batch, max_new_tokens: a.max_new_tokens, generate: true };
    let teacher_forced = ScoreOptions { generate: false, ..opts.clone() };
    let forget_path = forget_perturbed.as_deref().unwrap_or(&a.forget);
    let forget_scores = score(&model, &format, (&forget, forget_path), &opts, "forget")?;
    let holdout_scores =
        set(&holdout, &a.holdout).map(|s| score(&model, &format, s, &teacher_forced, "holdout")).transpose()?;
    // the retain model: its forget truth ratios (forget quality) and its AUCs (privleak)
    let (retain_model_forget, retain_model_holdout, retain_model_name) = if itself {
        (Some(teacher_forced_only(forget_scores.clone())), holdout_scores.clone(), json!(a.retain_model))
    } else if let (Some((name, f, h)), Some(dir)) = (saved, &a.retain_eval) {
        check_same_tokens(&forget_scores, &f, dir)?;
        (Some(f), h, name)
    } else {
        let rm_forget = retain_model
            .as_ref()
            .map(|m| score(m, &format, (&forget, forget_path), &teacher_forced, "retain model"))
            .transpose()?;
        let rm_holdout = match (&retain_model, set(&holdout, &a.holdout)) {
            (Some(m), Some(s)) => Some(score(m, &format, s, &teacher_forced, "retain model")?),
            _ => None,
        };
        (rm_forget, rm_holdout, json!(a.retain_model))
    };
    let scores = TofuScores {
        forget: forget_scores,
        retain: score(&model, &format, (&retain, &a.retain), &opts, "retain")?,
        real_authors: set(&real_authors, &a.real_authors)
            .map(|s| score(&model, &format, s, &opts, "real authors"))
            .transpose()?,
        world_facts: set(&world_facts, &a.world_facts)
            .map(|s| score(&model, &format, s, &opts, "world facts"))
            .transpose()?,
        holdout: holdout_scores,
        retain_model_forget,
        retain_model_holdout,
    };
    let seconds = t.elapsed().as_secs_f64();
    let mut summary = json!({
        "model": a.model, "retain_model": retain_model_name, "retain_eval": a.retain_eval, "prompt_format": format,
        "files": {"forget": a.forget, "forget_perturbed": forget_perturbed, "retain": a.retain,
                  "holdout": a.holdout, "real_authors": a.real_authors, "world_facts": a.world_facts},
        "limit": a.limit, "max_new_tokens": a.max_new_tokens,
    });
    for (k, v) in scores.summary()?.as_object().into_iter().flatten() {
        summary[k] = v.clone();
    }
    summary["seconds"] = json!(seconds);
    let lines = scores.questions_jsonl()?;
    let (f, rm_forget) = (&scores.forget, scores.retain_model_forget.as_deref());
    let tr_plot = truth_ratio_plot(f, rm_forget)?;
    let bars = headline_chart(&summary)?;
    let pictures = a.pictures.convert(vec![
        (a.out.join("truth_ratio.svg"), tr_plot.into_bytes()),
        (a.out.join("metrics.svg"), bars.into_bytes()),
    ])?;
    // every number is computed before the first file is written
    std::fs::create_dir_all(&a.out).with_context(|| format!("cannot create {}", a.out.display()))?;
    circuitscope::fsutil::write_atomic(&a.out.join("questions.jsonl"), lines.as_bytes())?;
    for (path, bytes) in &pictures {
        circuitscope::fsutil::write_atomic(path, bytes)?;
    }
    circuitscope::fsutil::write_atomic(
        &a.out.join("summary.json"),
        (serde_json::to_string_pretty(&summary)? + "\n").as_bytes(),
    )?;
    print_summary(&summary);
    println!("wrote {} ({seconds:.1} s)", a.out.display());
    Ok(())
}

fn num(v: &serde_json::Value) -> String {
    v.as_f64().map_or("-".into(), |x| format!("{x:.4}"))
}

fn print_summary(s: &serde_json::Value) {
    println!("forget quality     {}  (KS D {})", num(&s["forget_quality"]), num(&s["ks_statistic"]));
    println!("model utility      {}", num(&s["model_utility"]));
    for set in ["forget", "retain", "real_authors", "world_facts"] {
        let x = &s[set];
        if x.is_null() {
            continue;
        }
        println!(
            "{set:<18} probability {}  ROUGE-L recall {}  truth ratio {}  exact memorisation {}",
            num(&x["probability"]),
            num(&x["rouge_l_recall"]),
            num(&x["truth_ratio"]),
            num(&x["exact_memorisation"])
        );
    }
    let m = &s["mia_auc"];
    if !m.is_null() {
        println!(
            "MIA AUC            LOSS {}  zlib {}  Min-k% {}  Min-k%++ {}",
            num(&m["loss"]),
            num(&m["zlib"]),
            num(&m["min_k"]),
            num(&m["min_k_plus_plus"])
        );
    }
    let p = &s["privleak"];
    if !p.is_null() {
        println!("privleak (Min-k%++) {}", num(&p["min_k_plus_plus"]));
    }
}

/// The empirical distribution functions of the forget truth ratios, the model's and the retain
/// model's: forget quality is the KS test between these two curves.
fn truth_ratio_plot(model: &[QuestionScores], retain_model: Option<&[QuestionScores]>) -> Result<String> {
    let ecdf = |qs: &[QuestionScores]| -> Vec<(f64, f64)> {
        let mut v: Vec<f64> = qs.iter().filter_map(|q| q.truth_ratio).filter(|t| *t > 0.0).collect();
        v.sort_by(f64::total_cmp);
        let n = v.len() as f64;
        v.iter().enumerate().flat_map(|(i, &x)| [(x, i as f64 / n), (x, (i + 1) as f64 / n)]).collect()
    };
    let mut plot = LinePlot::new("Forget-set truth ratios", "truth ratio (log scale)", "share of questions ≤ x");
    plot.x_scale = Scale::Log;
    plot.series.push(Series::new("model", ecdf(model)));
    if let Some(r) = retain_model {
        plot.series.push(Series::new("retain model", ecdf(r)));
    }
    Ok(plot.to_svg()?)
}

/// One bar per headline number of the summary (those it has).
fn headline_chart(s: &serde_json::Value) -> Result<String> {
    let picks: [(&str, &serde_json::Value); 7] = [
        ("forget quality", &s["forget_quality"]),
        ("model utility", &s["model_utility"]),
        ("forget prob.", &s["forget"]["probability"]),
        ("retain prob.", &s["retain"]["probability"]),
        ("forget ROUGE-L", &s["forget"]["rouge_l_recall"]),
        ("retain ROUGE-L", &s["retain"]["rouge_l_recall"]),
        ("Min-k%++ AUC", &s["mia_auc"]["min_k_plus_plus"]),
    ];
    let mut chart = BarChart::new("Unlearning evaluation", "", "value");
    let kept: Vec<(&str, f64)> = picks.iter().filter_map(|(n, v)| v.as_f64().map(|x| (*n, x))).collect();
    chart.categories = kept.iter().map(|k| k.0.to_string()).collect();
    chart.series.push(("model".into(), kept.iter().map(|k| k.1).collect()));
    Ok(chart.to_svg()?)
}
