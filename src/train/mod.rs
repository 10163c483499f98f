//! The trainer of the bundled model (layer 5, beside the world generator): a byte-level BPE
//! tokenizer trained with the tokenizers crate and a GPT-2 trained with candle autograd (AdamW,
//! warm-up and cosine decay, gradient clipping), saved as a Hugging Face checkpoint that
//! circuitscope's loader and transformers both read.
//!
//! Deterministic: the tokenizer, the initialisation (SplitMix64) and the data order (shuffled per
//! epoch from the seed) depend on the configuration alone, and CPU matrix products reduce in a
//! fixed order, so the same configuration gives the same weights.

pub mod adamw;
pub mod bpe;
pub mod card;
pub mod checkpoint;
pub mod data;
pub mod eval;
pub mod from_gguf;
pub mod loss;
pub mod params;
pub mod schedule;

use crate::error::{Error, Result};
use crate::hooks::HookSet;
use crate::rng::Rng;
pub use adamw::FusedAdamW;
use candle_core::Var;
use candle_nn::{Optimizer, ParamsAdamW};
pub use params::{Gpt2Shape, Params, Trainable};
pub use schedule::Schedule;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Everything that determines a training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub layers: usize,
    pub heads: usize,
    pub d_model: usize,
    pub context: usize,
    pub vocab_size: usize,
    pub steps: usize,
    /// Rows of `context` tokens per step.
    pub batch: usize,
    pub lr: f64,
    pub warmup: usize,
    /// Final learning rate as a fraction of `lr`.
    pub lr_floor: f64,
    pub weight_decay: f64,
    /// Global gradient-norm clip.
    pub clip: f64,
    pub seed: u64,
    /// Repeated random word sequences (5 to 10 words, shown twice, like the corpus's) drawn
    /// afresh for every epoch, on top of the corpus: they teach a mechanism (induction), and
    /// fresh draws leave nothing to memorise, so the model cannot spend its capacity on them
    /// instead of learning to copy. (1500 fresh sequences of up to 20 words per epoch taught no
    /// induction at all in 1800 steps: accuracy 46 %.)
    #[serde(default)]
    pub fresh_induction: usize,
    /// Recommendation worlds: prompts of fresh readers (a history and one answered target) drawn
    /// afresh for every epoch ([`crate::world::recommend::fresh_documents`]), so that the model
    /// learns to read a history rather than only memorising its readers' answers.
    #[serde(default)]
    pub fresh_readers: usize,
    /// Questions each fresh reader's prompt answers (the first in the world's form, the others
    /// on lines of their own after it).
    #[serde(default = "one_question")]
    pub fresh_questions: usize,
    /// The loss weight of an answer's tokens (after `Answer:`, to its line's end) relative to
    /// every other token's 1 ([`data::answer_weighted`]); the loss is the weighted mean.
    #[serde(default = "one")]
    pub answer_weight: f64,
}

fn one() -> f64 {
    1.0
}

fn one_question() -> usize {
    1
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            layers: 4,
            heads: 4,
            d_model: 128,
            context: 128,
            vocab_size: 2048,
            steps: 1800,
            batch: 16,
            lr: 3e-3,
            warmup: 50,
            lr_floor: 0.05,
            weight_decay: 0.1,
            clip: 1.0,
            seed: 42,
            fresh_induction: 2000,
            fresh_readers: 0,
            fresh_questions: 1,
            answer_weight: 1.0,
        }
    }
}

impl TrainConfig {
    /// A few dozen steps of a tiny model: enough to see the loss fall (CI's smoke run).
    pub fn smoke() -> Self {
        TrainConfig {
            layers: 2,
            heads: 4,
            d_model: 64,
            context: 128,
            vocab_size: 1024,
            steps: 40,
            batch: 8,
            lr: 3e-3,
            warmup: 5,
            fresh_induction: 100,
            ..TrainConfig::default()
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.steps == 0 || self.batch == 0 || self.fresh_questions == 0 {
            return Err(Error::input("steps, batch and fresh_questions must be at least 1"));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(Error::input(format!("lr = {}: the learning rate must be positive", self.lr)));
        }
        if !(0.0..=1.0).contains(&self.lr_floor) {
            return Err(Error::input(format!("lr_floor = {}: expected a fraction in [0, 1]", self.lr_floor)));
        }
        if !(self.answer_weight >= 0.0 && self.answer_weight.is_finite()) {
            return Err(Error::input(format!(
                "answer_weight = {}: expected a non-negative loss weight",
                self.answer_weight
            )));
        }
        if self.clip <= 0.0 {
            return Err(Error::input(format!("clip = {}: the gradient clip must be positive", self.clip)));
        }
        Ok(())
    }

    fn shape(&self, vocab_size: usize) -> Gpt2Shape {
        Gpt2Shape { n_layers: self.layers, n_heads: self.heads, d_model: self.d_model, n_ctx: self.context, vocab_size }
    }

    pub fn schedule(&self) -> Schedule {
        Schedule { peak: self.lr, warmup: self.warmup.min(self.steps), total: self.steps, floor: self.lr_floor }
    }
}

/// What a run produced.
pub struct Trained {
    pub params: Params,
    pub tokenizer: tokenizers::Tokenizer,
    pub log: TrainLog,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainLog {
    pub config: TrainConfig,
    pub n_params: usize,
    pub corpus_documents: usize,
    pub corpus_tokens: usize,
    pub epochs: f64,
    /// (step, mean loss over the steps since the previous entry)
    pub loss: Vec<(usize, f64)>,
    pub seconds: f64,
    pub tokens_per_second: f64,
}

/// Scales every gradient so their global L2 norm is at most `clip`; returns the norm before.
pub fn clip_gradients(grads: &mut candle_core::backprop::GradStore, vars: &[Var], clip: f64) -> Result<f64> {
    let mut sq = 0f64;
    for v in vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
        }
    }
    let norm = sq.sqrt();
    if norm > clip {
        let scale = clip / norm;
        for v in vars {
            if let Some(g) = grads.remove(v.as_tensor()) {
                grads.insert(v.as_tensor(), (g * scale)?);
            }
        }
    }
    Ok(norm)
}

/// Trains a tokenizer and a GPT-2 on `docs`. `on_step(step, loss, lr)` is called after every step
/// (progress bars); training stops early with an error if the loss stops being finite.
pub fn train(cfg: &TrainConfig, docs: &[String], on_step: impl FnMut(usize, f64, f64)) -> Result<Trained> {
    let tokenizer = bpe::train_tokenizer(docs, cfg.vocab_size)?;
    train_with_fresh(cfg, docs, tokenizer, &|_| Vec::new(), on_step)
}

/// [`train`] with a given tokenizer instead of one trained on `docs` (a retain model must share
/// the original model's vocabulary for its truth ratios to be comparable token for token; its
/// first special token must be id 0, the end-of-text token), and with `fresh_docs(epoch)`'s
/// documents added to each epoch's (after its fresh induction sequences): drawn anew per epoch,
/// they teach what no fixed document can.
pub fn train_with_fresh(
    cfg: &TrainConfig,
    docs: &[String],
    tokenizer: tokenizers::Tokenizer,
    fresh_docs: &dyn Fn(usize) -> Vec<String>,
    mut on_step: impl FnMut(usize, f64, f64),
) -> Result<Trained> {
    cfg.validate()?;
    if tokenizer.token_to_id(bpe::END_OF_TEXT) != Some(0) {
        return Err(Error::input(format!("the tokenizer must have {} as token 0", bpe::END_OF_TEXT)));
    }
    let start = Instant::now();
    let vocab = tokenizer.get_vocab_size(true);
    let eos = 0;
    let shape = cfg.shape(vocab);
    shape.validate()?;
    let weight = cfg.answer_weight as f32;
    let packer = data::Packer::new(data::answer_weighted(&tokenizer, docs, weight)?, cfg.context, eos)?;
    // epoch e's fresh induction documents, tokenised
    let fresh = |epoch: usize| -> Result<Vec<data::Doc>> {
        let mut r = Rng::stream(cfg.seed, &format!("fresh_induction/{epoch}"));
        let mut docs = crate::world::induction_documents(&mut r, cfg.fresh_induction);
        docs.extend(fresh_docs(epoch));
        data::answer_weighted(&tokenizer, &docs, weight)
    };
    let params = Params::init(&shape, eos, cfg.seed)?;
    let (decay, no_decay): (Vec<Var>, Vec<Var>) = {
        let (a, b): (Vec<_>, Vec<_>) = params.vars.iter().partition(|(n, _)| params::decays(n));
        (a.into_iter().map(|(_, v)| v.clone()).collect(), b.into_iter().map(|(_, v)| v.clone()).collect())
    };
    let adam = |wd| ParamsAdamW { lr: cfg.lr, beta1: 0.9, beta2: 0.98, eps: 1e-8, weight_decay: wd };
    let mut opt_decay = FusedAdamW::new(decay.clone(), adam(cfg.weight_decay))?;
    let mut opt_plain = FusedAdamW::new(no_decay.clone(), adam(0.0))?;
    let all_vars: Vec<Var> = params.vars.values().cloned().collect();
    let schedule = cfg.schedule();
    // Plain ops (see `HookSet::composed`): the bundled model's training reproduces bit for bit.
    let hooks = HookSet::new().training().composed();

    let mut rng = Rng::stream(cfg.seed, "batches");
    let mut epoch = 0;
    let mut rows = packer.epoch(&mut rng, &fresh(epoch)?)?;
    let rows_per_epoch = rows.len();
    let mut cursor = 0;
    let mut log = Vec::new();
    let (mut window, mut window_n, mut trained_tokens, mut rows_seen) = (0f64, 0usize, 0usize, 0usize);
    for step in 0..cfg.steps {
        if cursor + cfg.batch > rows.len() {
            epoch += 1;
            rows = packer.epoch(&mut rng, &fresh(epoch)?)?;
            cursor = 0;
        }
        let batch = packer.batch(&rows[cursor..(cursor + cfg.batch).min(rows.len())])?;
        cursor += cfg.batch;
        rows_seen += cfg.batch;
        let lr = schedule.at(step);
        opt_decay.set_learning_rate(lr);
        opt_plain.set_learning_rate(lr);
        let decoder = params.decoder()?;
        let logits = decoder.forward(&batch.inputs, &hooks)?.logits;
        let loss = loss::masked_cross_entropy(&logits, &batch.targets, &batch.mask)?;
        let loss_value = loss.to_scalar::<f32>()? as f64;

        if !loss_value.is_finite() {
            return Err(Error::input(format!("the loss became {loss_value} at step {step}; lower --lr")));
        }
        let mut grads = loss.backward()?;
        clip_gradients(&mut grads, &all_vars, cfg.clip)?;
        opt_decay.step(&grads)?;
        opt_plain.step(&grads)?;
        trained_tokens += batch.tokens;
        window += loss_value;
        window_n += 1;
        if (step + 1) % 10 == 0 || step + 1 == cfg.steps {
            log.push((step + 1, window / window_n as f64));
            window = 0.0;
            window_n = 0;
        }
        on_step(step, loss_value, lr);
    }
    let seconds = start.elapsed().as_secs_f64();
    let log = TrainLog {
        config: cfg.clone(),
        n_params: params.n_params(),
        corpus_documents: docs.len(),
        corpus_tokens: packer.n_tokens(),
        epochs: rows_seen as f64 / rows_per_epoch.max(1) as f64,
        loss: log,
        seconds,
        tokens_per_second: trained_tokens as f64 / seconds,
    };
    Ok(Trained { params, tokenizer, log })
}
