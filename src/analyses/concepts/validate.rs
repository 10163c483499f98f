//! Causal validation of a value vector by noise (ALGORITHMS.md §6): add N(0, σ²) to the vector,
//! let the edited and the original model answer the concept's questions and unrelated ones
//! greedily, and score each edited answer against the original's (BLEU, ROUGE-L F, as the
//! reference does). A vector that carries the concept changes the concept's answers and leaves
//! the unrelated ones nearly alone. The reference draws one noise vector (seed 8888); several
//! seeds show how much the verdict depends on the draw.

use super::text_match::{bleu, rouge_l_f};
use super::vectors::{norm, ValueVector};
use crate::error::{Error, Result};
use crate::hooks::HookSet;
use crate::model::inspect::{greedy_batch, GREEDY_ROWS};
use crate::model::{Decoder, Tokenizer};
use crate::progress::Progress;
use crate::rng::Rng;
use crate::unlearn::run::CONCEPT_NOISE_STREAM;
use candle_core::Tensor;

/// How to validate.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ValidateOptions {
    /// the noise's standard deviation (0.1)
    pub sigma: f64,
    pub seeds: Vec<u64>,
    /// greedy tokens per answer (100)
    pub max_new_tokens: usize,
    /// the prompt, with `{q}` standing for the question ("Question: {q}\n Answer:", as the reference)
    pub template: String,
}

impl Default for ValidateOptions {
    fn default() -> Self {
        ValidateOptions {
            sigma: 0.1,
            seeds: vec![8888, 1, 2],
            max_new_tokens: 100,
            template: "Question: {q}\n Answer:".into(),
        }
    }
}

/// One question's answers.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Answers {
    pub question: String,
    pub original: String,
    /// one per seed
    pub edited: Vec<String>,
    pub bleu: Vec<f64>,
    pub rouge_l: Vec<f64>,
}

/// A question set's scores: per seed, the mean over its questions.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SetScores {
    pub bleu: Vec<f64>,
    pub rouge_l: Vec<f64>,
    /// the share of answers the noise left exactly as they were: BLEU and ROUGE-L score an
    /// empty answer 0 even when it is unchanged (a model that ends its answer at once)
    pub unchanged: Vec<f64>,
    pub answers: Vec<Answers>,
}

impl SetScores {
    /// The mean over seeds of (BLEU, ROUGE-L).
    pub fn means(&self) -> (f64, f64) {
        (mean(&self.bleu), mean(&self.rouge_l))
    }

    /// The mean over seeds of the share of answers left unchanged.
    pub fn unchanged_mean(&self) -> f64 {
        mean(&self.unchanged)
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// The validation of one vector.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Validation {
    pub vector: ValueVector,
    pub options: ValidateOptions,
    /// ‖v‖₂ against the noise's expected norm σ√d
    pub vector_norm: f64,
    pub noise_norm: f64,
    pub concept: SetScores,
    pub unrelated: SetScores,
}

/// The noisy copy of `vv` for `seed`: v + σ·ε, ε ~ N(0, I) from the project's seeded generator.
pub fn noisy(dec: &Decoder, vv: ValueVector, sigma: f64, seed: u64) -> Result<Decoder> {
    let v = vv.of(dec)?;
    let noise = Tensor::from_vec(Rng::gaussian(seed, CONCEPT_NOISE_STREAM, v.dim(0)?, sigma), v.dims(), v.device())?;
    vv.replaced(dec, &(v + noise)?)
}

/// Greedy answers of `dec` to `questions` under `opts.template` (and `hooks`' interventions),
/// [`GREEDY_ROWS`] at a time, calling `done` after each.
pub fn answers(
    dec: &Decoder,
    tok: &Tokenizer,
    questions: &[String],
    opts: &ValidateOptions,
    hooks: &HookSet,
    done: &mut dyn FnMut(),
) -> Result<Vec<String>> {
    let prompts = questions.iter().map(|q| tok.encode(&opts.template.replace("{q}", q))).collect::<Result<Vec<_>>>()?;
    let mut out = Vec::with_capacity(prompts.len());
    for chunk in prompts.chunks(GREEDY_ROWS) {
        for ids in greedy_batch(dec, chunk, opts.max_new_tokens, tok.eos, hooks)? {
            out.push(tok.decode(&ids)?);
            done();
        }
    }
    Ok(out)
}

/// Noise validation of `vv` on the concept's questions and unrelated ones.
pub fn validate(
    dec: &Decoder,
    tok: &Tokenizer,
    vv: ValueVector,
    concept_questions: &[String],
    unrelated_questions: &[String],
    opts: &ValidateOptions,
    progress: &dyn Progress,
) -> Result<Validation> {
    vv.check(dec)?;
    if concept_questions.is_empty() || unrelated_questions.is_empty() {
        return Err(Error::input("validation needs at least one concept question and one unrelated question"));
    }
    if opts.seeds.is_empty() || !(opts.sigma > 0.0 && opts.sigma.is_finite()) {
        return Err(Error::input(format!("validation needs a seed and a positive noise σ (got σ = {})", opts.sigma)));
    }
    // progress counts answers: every question, by the original model and each noisy one
    let total = ((1 + opts.seeds.len()) * (concept_questions.len() + unrelated_questions.len())) as u64;
    let mut answered = 0u64;
    progress.update(0, total);
    let mut tick = || {
        answered += 1;
        progress.update(answered, total);
    };
    let sets = [concept_questions, unrelated_questions];
    let none = HookSet::new();
    let original: Vec<Vec<String>> =
        sets.iter().map(|qs| answers(dec, tok, qs, opts, &none, &mut tick)).collect::<Result<_>>()?;
    let mut edited: Vec<Vec<Vec<String>>> =
        vec![vec![Vec::new(); concept_questions.len()], vec![Vec::new(); unrelated_questions.len()]];
    for &seed in &opts.seeds {
        let model = noisy(dec, vv, opts.sigma, seed)?;
        for (set, qs) in sets.iter().enumerate() {
            for (i, a) in answers(&model, tok, qs, opts, &none, &mut tick)?.into_iter().enumerate() {
                edited[set][i].push(a);
            }
        }
    }
    let score = |set: usize| -> SetScores {
        let answers: Vec<Answers> = sets[set]
            .iter()
            .zip(&original[set])
            .zip(&edited[set])
            .map(|((q, o), e)| Answers {
                question: q.clone(),
                original: o.clone(),
                edited: e.clone(),
                bleu: e.iter().map(|x| bleu(x, o)).collect(),
                rouge_l: e.iter().map(|x| rouge_l_f(x, o)).collect(),
            })
            .collect();
        let per_seed = |f: fn(&Answers) -> &Vec<f64>| -> Vec<f64> {
            (0..opts.seeds.len()).map(|s| answers.iter().map(|a| f(a)[s]).sum::<f64>() / answers.len() as f64).collect()
        };
        let unchanged = (0..opts.seeds.len())
            .map(|s| answers.iter().filter(|a| a.edited[s] == a.original).count() as f64 / answers.len() as f64)
            .collect();
        SetScores { bleu: per_seed(|a| &a.bleu), rouge_l: per_seed(|a| &a.rouge_l), unchanged, answers }
    };
    let v = vv.of(dec)?;
    Ok(Validation {
        vector: vv,
        options: opts.clone(),
        vector_norm: norm(&v)?,
        noise_norm: opts.sigma * (v.dim(0)? as f64).sqrt(),
        concept: score(0),
        unrelated: score(1),
    })
}
