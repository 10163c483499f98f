//! TOFU's evaluation of an unlearned model (ALGORITHMS.md §9, after open-unlearning): every
//! question of a set scored on its own ([`QuestionScores`]), then the set's aggregates
//! ([`SetSummary`]) and the headline numbers: forget quality against a retain model
//! ([`forget_quality`]), model utility ([`model_utility`]), the membership-inference AUCs and
//! privleak ([`MiaAucs`]).

use super::answers::{token_stats_shared_prompts, MiaScores, TokenStats};
use super::metrics::{forget_truth_ratio, harmonic_mean, ks_2samp, retain_truth_ratio, truth_ratio, EPS};
use super::rouge::rouge_l_recall;
use crate::data::{Example, PerturbedQa, PromptFormat, Target};
use crate::error::{Error, Result};
use crate::hooks::HookSet;
use crate::model::inspect::{greedy_batch, GREEDY_ROWS};
use crate::model::{Decoder, Tokenizer};
use crate::progress::Progress;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// How questions are scored.
#[derive(Clone, Debug)]
pub struct ScoreOptions {
    /// examples per teacher-forced pass
    pub batch: usize,
    /// greedy answers are cut here or at the end token (TOFU: 200)
    pub max_new_tokens: usize,
    /// generate greedy answers (ROUGE-L); off for sets only the MIA reads
    pub generate: bool,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        ScoreOptions { batch: 16, max_new_tokens: 200, generate: true }
    }
}

/// One question's scores under one model (a line of `questions.jsonl`, which reads back).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct QuestionScores {
    pub question: String,
    pub answer: String,
    /// answer tokens with the end token, and their summed and mean NLL
    pub n_tokens: usize,
    pub nll_sum: f64,
    pub nll: f64,
    /// exp(−mean NLL): the per-token geometric-mean probability
    pub probability: f64,
    /// P(answer) / (P(answer) + Σ P(perturbed) + 1e-10), with the same per-token probability
    /// (TOFU's probability on real authors and world facts); None without perturbed answers
    pub normalised_probability: Option<f64>,
    /// the mean NLL per token of the paraphrase (the answer where there is none) and of each
    /// perturbed answer
    pub paraphrased_nll: Option<f64>,
    pub perturbed_nll: Vec<f64>,
    pub truth_ratio: Option<f64>,
    /// the greedy answer and its ROUGE-L recall against `answer`
    pub generated: Option<String>,
    pub rouge_l_recall: Option<f64>,
    pub exact_memorisation: f64,
    pub extraction_strength: f64,
    pub mia: MiaScores,
}

/// Scores every item of a set (ALGORITHMS.md §9): the answer's NLL, probability and
/// membership-inference scores from one teacher-forced pass; the paraphrase's and perturbed
/// answers' NLL and the truth ratio when the item has them; the greedy answer and its ROUGE-L
/// recall when `opts.generate`. Progress counts items (forward batches, then generations).
pub fn score_questions(
    dec: &Decoder,
    tok: &Tokenizer,
    format: &PromptFormat,
    items: &[PerturbedQa],
    opts: &ScoreOptions,
    progress: &dyn Progress,
) -> Result<Vec<QuestionScores>> {
    // every answer to score, flat: per item the answer, then its paraphrase, then the perturbed;
    // each ends with the end token when the format adds one, as open-unlearning scores them
    let scored_eos = format.end_token && tok.eos.is_some();
    let mut examples: Vec<Example> = Vec::new();
    let mut spans = Vec::with_capacity(items.len());
    for (i, it) in items.iter().enumerate() {
        let start = examples.len();
        let mut add = |text: &str, what: &str| -> Result<()> {
            let ex = format.example(tok, &it.question, text, i).map_err(|e| {
                Error::input(format!("record {} ({what}): {}", i + 1, e.to_string().trim_start_matches("input: ")))
            })?;
            if ex.clean.len() > dec.cfg.n_ctx {
                return Err(Error::input(format!(
                    "record {}: the question and its {what} are {} tokens, longer than the model's context of {}",
                    i + 1,
                    ex.clean.len(),
                    dec.cfg.n_ctx
                )));
            }
            examples.push(ex);
            Ok(())
        };
        add(&it.answer, "answer")?;
        if let Some(p) = &it.paraphrased_answer {
            add(p, "paraphrased answer")?;
        }
        for p in &it.perturbed_answer {
            add(p, "perturbed answer")?;
        }
        spans.push(start..examples.len());
    }
    let total = (items.len() * if opts.generate { 2 } else { 1 }) as u64;
    let mut stats: Vec<TokenStats> = Vec::with_capacity(examples.len());
    for chunk in examples.chunks(opts.batch.max(1) * 8) {
        stats.extend(token_stats_shared_prompts(dec, chunk, opts.batch)?);
        progress.update((items.len() * stats.len() / examples.len().max(1)) as u64, total);
    }
    let mut generated: Vec<Option<String>> = vec![None; items.len()];
    if opts.generate {
        let prompts: Vec<Vec<u32>> = spans
            .iter()
            .map(|span| {
                let first = &examples[span.start]; // the answer's example: its prompt is the question's
                let Target::Sequence { prompt_len } = first.target else { unreachable!("a question/answer example") };
                first.clean[..prompt_len].to_vec()
            })
            .collect();
        let mut done = 0;
        for chunk in prompts.chunks(GREEDY_ROWS) {
            // greedy answers stop at the end token whether or not the scored answers end with it
            for ids in greedy_batch(dec, chunk, opts.max_new_tokens, tok.eos, &HookSet::new())? {
                let ids: Vec<u32> = ids.into_iter().take_while(|&t| Some(t) != tok.eos).collect();
                generated[done] = Some(tok.decode(&ids)?.trim().to_string());
                done += 1;
            }
            progress.update((items.len() + done) as u64, total);
        }
    }
    let mut out = Vec::with_capacity(items.len());
    for ((it, span), generated) in items.iter().zip(spans).zip(generated) {
        let s = &stats[span];
        let answer = &s[0];
        let body = if scored_eos { answer.without_last() } else { answer.clone() };
        let has_paraphrase = it.paraphrased_answer.is_some() as usize;
        let perturbed_nll: Vec<f64> = s[1 + has_paraphrase..].iter().map(TokenStats::mean_nll).collect();
        let paraphrased_nll = s[has_paraphrase].mean_nll();
        let truth = (!perturbed_nll.is_empty()).then(|| truth_ratio(paraphrased_nll, &perturbed_nll)).transpose()?;
        let p = |t: &TokenStats| (-t.mean_nll()).exp();
        let normalised = (!perturbed_nll.is_empty())
            .then(|| p(answer) / (p(answer) + s[1 + has_paraphrase..].iter().map(p).sum::<f64>() + EPS));
        let text = format.completion(&it.answer);
        out.push(QuestionScores {
            question: it.question.clone(),
            answer: it.answer.clone(),
            n_tokens: answer.len(),
            nll_sum: answer.nll_sum(),
            nll: answer.mean_nll(),
            probability: p(answer),
            normalised_probability: normalised,
            paraphrased_nll: (!perturbed_nll.is_empty()).then_some(paraphrased_nll),
            perturbed_nll,
            truth_ratio: truth,
            rouge_l_recall: generated.as_deref().map(|g| rouge_l_recall(g, &it.answer)),
            generated,
            exact_memorisation: body.exact_memorisation(),
            extraction_strength: body.extraction_strength(),
            mia: answer.mia(&body, &text),
        });
    }
    Ok(out)
}

/// The mean of a field over the questions that have it (NaN for none).
fn mean_of(qs: &[QuestionScores], f: impl Fn(&QuestionScores) -> Option<f64>) -> f64 {
    let v: Vec<f64> = qs.iter().filter_map(f).collect();
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// A set's aggregates.
#[derive(Clone, Debug, Serialize)]
pub struct SetSummary {
    pub n: usize,
    /// mean per-token probability of the answer (real authors, world facts: normalised against
    /// the perturbed answers)
    pub probability: f64,
    pub rouge_l_recall: f64,
    /// forget: mean min(TR, 1/TR); other sets: mean max(0, 1 − TR)
    pub truth_ratio: f64,
    pub exact_memorisation: f64,
    pub extraction_strength: f64,
}

/// Which aggregate a set's truth ratio takes, and which probability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetKind {
    Forget,
    Retain,
    /// real authors and world facts: probability normalised against the perturbed answers
    Options,
}

impl SetSummary {
    pub fn of(qs: &[QuestionScores], kind: SetKind) -> SetSummary {
        let trs: Vec<f64> = qs.iter().filter_map(|q| q.truth_ratio).collect();
        SetSummary {
            n: qs.len(),
            probability: match kind {
                SetKind::Options => mean_of(qs, |q| q.normalised_probability),
                _ => mean_of(qs, |q| Some(q.probability)),
            },
            rouge_l_recall: mean_of(qs, |q| q.rouge_l_recall),
            truth_ratio: match (trs.is_empty(), kind) {
                (true, _) => f64::NAN,
                (false, SetKind::Forget) => forget_truth_ratio(&trs),
                (false, _) => retain_truth_ratio(&trs),
            },
            exact_memorisation: mean_of(qs, |q| Some(q.exact_memorisation)),
            extraction_strength: mean_of(qs, |q| Some(q.extraction_strength)),
        }
    }
}

/// The area under the ROC curve of `positive` scores against `negative` ones: the probability
/// that a random positive scores above a random negative, ties counting half (what
/// `sklearn.metrics.roc_auc_score` computes).
pub fn auc(negative: &[f64], positive: &[f64]) -> Result<f64> {
    if negative.is_empty() || positive.is_empty() {
        return Err(Error::input("an AUC needs scores of both classes"));
    }
    if negative.iter().chain(positive).any(|x| x.is_nan()) {
        return Err(Error::input("an AUC got a NaN score"));
    }
    // Mann–Whitney U over mid-ranks
    let mut all: Vec<(f64, bool)> =
        negative.iter().map(|&x| (x, false)).chain(positive.iter().map(|&x| (x, true))).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < all.len() {
        let j = (i..all.len()).find(|&j| all[j].0 != all[i].0).unwrap_or(all.len());
        let mid = (i + j + 1) as f64 / 2.0; // 1-based mid-rank of the tie group
        rank_sum += mid * all[i..j].iter().filter(|x| x.1).count() as f64;
        i = j;
    }
    let (np, nn) = (positive.len() as f64, negative.len() as f64);
    Ok((rank_sum - np * (np + 1.0) / 2.0) / (np * nn))
}

/// The four attacks' AUCs.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct MiaAucs {
    pub loss: f64,
    pub zlib: f64,
    pub min_k: f64,
    pub min_k_plus_plus: f64,
}

impl MiaAucs {
    /// Forget (label 0) against holdout (label 1): the AUC of the holdout scores against the
    /// forget ones, as open-unlearning labels them. 0.5 when the model cannot tell them apart.
    pub fn of(forget: &[QuestionScores], holdout: &[QuestionScores]) -> Result<MiaAucs> {
        let one = |f: fn(&MiaScores) -> f64| -> Result<f64> {
            let a: Vec<f64> = forget.iter().map(|q| f(&q.mia)).collect();
            let b: Vec<f64> = holdout.iter().map(|q| f(&q.mia)).collect();
            auc(&a, &b)
        };
        Ok(MiaAucs {
            loss: one(|m| m.loss)?,
            zlib: one(|m| m.zlib)?,
            min_k: one(|m| m.min_k)?,
            min_k_plus_plus: one(|m| m.min_k_plus_plus)?,
        })
    }

    /// privleak per attack: ((1 − AUC) − (1 − AUC_retain)) / (1 − AUC_retain) × 100.
    pub fn privleak(&self, retain: &MiaAucs) -> MiaAucs {
        let p = |a: f64, r: f64| ((1.0 - a) - (1.0 - r)) / (1.0 - r) * 100.0;
        MiaAucs {
            loss: p(self.loss, retain.loss),
            zlib: p(self.zlib, retain.zlib),
            min_k: p(self.min_k, retain.min_k),
            min_k_plus_plus: p(self.min_k_plus_plus, retain.min_k_plus_plus),
        }
    }
}

/// The nine parts of model utility, by name, and their harmonic mean (NaN when a part is NaN).
pub fn model_utility(
    retain: &SetSummary,
    real_authors: &SetSummary,
    world_facts: &SetSummary,
) -> (Vec<(String, f64)>, f64) {
    let mut parts = Vec::new();
    for (name, s) in [("retain", retain), ("real_authors", real_authors), ("world_facts", world_facts)] {
        parts.push((format!("{name}.probability"), s.probability));
        parts.push((format!("{name}.rouge_l_recall"), s.rouge_l_recall));
        parts.push((format!("{name}.truth_ratio"), s.truth_ratio));
    }
    let values: Vec<f64> = parts.iter().map(|p| p.1).collect();
    let mu = if values.iter().any(|v| v.is_nan()) { f64::NAN } else { harmonic_mean(&values) };
    (parts, mu)
}

/// Forget quality: the two-sample Kolmogorov–Smirnov p-value between the model's and the retain
/// model's per-question forget truth ratios, with the statistic D.
pub fn forget_quality(model: &[QuestionScores], retain_model: &[QuestionScores]) -> Result<(f64, f64)> {
    let trs = |qs: &[QuestionScores]| -> Result<Vec<f64>> {
        qs.iter()
            .map(|q| {
                q.truth_ratio.ok_or_else(|| Error::input("forget quality needs every forget question's truth ratio"))
            })
            .collect()
    };
    let (d, p) = ks_2samp(&trs(model)?, &trs(retain_model)?)?;
    Ok((p, d))
}

/// A TOFU question file's records (the first `limit`); an error naming the file when it holds
/// none, or, with `need_options`, when a record has no wrong answers (the truth ratio needs them).
pub fn read_question_set(path: &Path, limit: Option<usize>, need_options: bool) -> Result<Vec<PerturbedQa>> {
    let mut rows: Vec<PerturbedQa> = crate::data::read_jsonl(path)?;
    if rows.is_empty() {
        return Err(Error::format(path, "the file holds no questions"));
    }
    rows.truncate(limit.unwrap_or(usize::MAX));
    if let Some(i) = rows.iter().position(|r| need_options && r.perturbed_answer.is_empty()) {
        return Err(Error::format(
            path,
            format!(
                "record {} has no `perturbed_answer`; the truth ratio needs wrong answers (TOFU's *_perturbed.jsonl \
                 files have them)",
                i + 1
            ),
        ));
    }
    Ok(rows)
}

/// Every set's per-question scores of one evaluation: the model's, and the retain model's on the
/// forget and holdout sets where there is one. [`TofuScores::summary`] gives TOFU's headline
/// numbers from them, [`TofuScores::questions_jsonl`] one line per question.
#[derive(Clone, Debug, Default)]
pub struct TofuScores {
    pub forget: Vec<QuestionScores>,
    pub retain: Vec<QuestionScores>,
    pub real_authors: Option<Vec<QuestionScores>>,
    pub world_facts: Option<Vec<QuestionScores>>,
    /// never-trained questions, teacher-forced only: the membership-inference negatives
    pub holdout: Option<Vec<QuestionScores>>,
    /// the retain model on the forget set (forget quality) and on the holdout set (privleak)
    pub retain_model_forget: Option<Vec<QuestionScores>>,
    pub retain_model_holdout: Option<Vec<QuestionScores>>,
}

impl TofuScores {
    /// The headline numbers (forget quality with the KS statistic, model utility with its nine
    /// parts, each set's [`SetSummary`], the MIA AUCs and privleak), null where a set is missing.
    pub fn summary(&self) -> Result<serde_json::Value> {
        let retain = SetSummary::of(&self.retain, SetKind::Retain);
        let options = |s: &Option<Vec<QuestionScores>>| s.as_deref().map(|q| SetSummary::of(q, SetKind::Options));
        let (real_authors, world_facts) = (options(&self.real_authors), options(&self.world_facts));
        let utility = match (&real_authors, &world_facts) {
            (Some(x), Some(y)) => Some(model_utility(&retain, x, y)),
            _ => None,
        };
        let quality = self.retain_model_forget.as_deref().map(|rm| forget_quality(&self.forget, rm)).transpose()?;
        let mia = self.holdout.as_deref().map(|h| MiaAucs::of(&self.forget, h)).transpose()?;
        let retain_model_mia = match (&self.retain_model_forget, &self.retain_model_holdout) {
            (Some(f), Some(h)) => Some(MiaAucs::of(f, h)?),
            _ => None,
        };
        let privleak = mia.as_ref().zip(retain_model_mia.as_ref()).map(|(m, r)| m.privleak(r));
        let parts = utility.as_ref().map(|u| u.0.iter().map(|(k, v)| (k.clone(), serde_json::json!(v))).collect());
        Ok(serde_json::json!({
            "forget_quality": quality.map(|q| q.0), "ks_statistic": quality.map(|q| q.1),
            "model_utility": utility.as_ref().map(|u| u.1),
            "model_utility_parts": parts.map(serde_json::Value::Object),
            "forget": SetSummary::of(&self.forget, SetKind::Forget), "retain": retain,
            "real_authors": real_authors, "world_facts": world_facts,
            "retain_model_forget": self.retain_model_forget.as_deref().map(|q| SetSummary::of(q, SetKind::Forget)),
            "mia_auc": mia, "retain_model_mia_auc": retain_model_mia, "privleak": privleak,
        }))
    }

    /// One JSON line per question of the model's sets, with its `set` and `index`.
    pub fn questions_jsonl(&self) -> Result<String> {
        let sets = [
            ("forget", Some(&self.forget)),
            ("retain", Some(&self.retain)),
            ("real_authors", self.real_authors.as_ref()),
            ("world_facts", self.world_facts.as_ref()),
            ("holdout", self.holdout.as_ref()),
        ];
        let mut lines = String::new();
        for (set, qs) in sets {
            for (i, q) in qs.into_iter().flatten().enumerate() {
                let mut v = serde_json::to_value(q).map_err(|e| Error::input(format!("question {i} of {set}: {e}")))?;
                v["set"] = serde_json::json!(set);
                v["index"] = serde_json::json!(i);
                lines.push_str(&v.to_string());
                lines.push('\n');
            }
        }
        Ok(lines)
    }
}
