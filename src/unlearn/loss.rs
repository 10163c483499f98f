//! The unlearning objectives on answer tokens (ALGORITHMS.md §8). Every function is a candle
//! expression of the logits, so autograd gives the update on any device.
//!
//! Batches are built from question/answer [`crate::data::Example`]s: the metric rows of a
//! [`Batch`] are exactly the answer tokens, each scored given the tokens before it.

use crate::attribution::{Batch, Metric};
use crate::error::{Error, Result};
use candle_core::{DType, Tensor};

/// Per example of a batch: the summed NLL of its answer tokens and their number.
pub struct AnswerNll {
    /// (b,) Σ over the answer's tokens of −log p(token | everything before it); differentiable
    pub sum: Tensor,
    /// (b,) the number of answer tokens, as the loss dtype
    pub len: Tensor,
}

impl AnswerNll {
    /// (b,) the mean NLL per answer token.
    pub fn mean(&self) -> Result<Tensor> {
        Ok((&self.sum / &self.len)?)
    }

    /// The batch's NLL per answer token, all answers' tokens pooled (what a causal-LM loss over
    /// the batch's unmasked tokens is): Σ sum / Σ len.
    pub fn token_mean(&self) -> Result<Tensor> {
        Ok((self.sum.sum_all()? / self.len.sum_all()?)?)
    }
}

/// The answers' NLL under `logits` (b, s, V) of `batch`'s question/answer examples, in f32 (f64
/// for an f64 model, for finite-difference checks).
pub fn answer_nll(logits: &Tensor, batch: &Batch) -> Result<AnswerNll> {
    let mean = Metric::Nll.values(logits, batch, None)?; // (b,): the per-token mean
    let dtype = mean.dtype();
    let lens: Vec<f64> = batch.answer_lengths().into_iter().map(|n| n as f64).collect();
    let len = Tensor::from_vec(lens, batch.len(), mean.device())?.to_dtype(dtype)?;
    Ok(AnswerNll { sum: (mean * &len)?, len })
}

/// log σ(x), without overflow for large |x|: −(max(−x, 0) + log(1 + e^−|x|)).
pub fn log_sigmoid(x: &Tensor) -> Result<Tensor> {
    let tail = (x.abs()?.neg()?.exp()? + 1.0)?.log()?;
    Ok((x.neg()?.relu()? + tail)?.neg()?)
}

/// The forget objective of a method (ALGORITHMS.md §8); the retain side is the retain set's
/// NLL, weighted by α in [`Objective::total`].
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Objective {
    /// L_forget = −NLL, per answer token over the batch
    GradAscent,
    /// L_forget = −(2/β)·mean log σ(β·(NLL_θ − NLL_ref)), NLL summed over each answer's tokens,
    /// ref = the frozen original model
    Npo { beta: f64 },
    /// L_forget = −(2/β)·mean log σ(β·(NLL_θ/|y| − δ)), no reference model
    SimNpo { beta: f64, delta: f64 },
    /// RMU: the residual stream after `layer` pulled towards c·u at the forget answers' tokens
    /// ([`rmu_mse`]), and held to the frozen model's on retain data (the retain term, in place of
    /// the retain NLL); its terms are on hidden states, so `unlearn::unlearn` computes them
    Rmu { layer: usize, c: f64 },
    /// Fine-tuning, the opposite of forgetting: L = +NLL per answer token over the batch, a
    /// causal LM's loss with the prompt masked (`unlearn::finetune` runs the loop with it)
    Nll,
}

impl Objective {
    /// L_forget on a forget batch; `reference` is the frozen model's [`AnswerNll`] on the same
    /// batch (NPO only).
    pub fn forget(&self, nll: &AnswerNll, reference: Option<&AnswerNll>) -> Result<Tensor> {
        match *self {
            Objective::GradAscent => Ok(nll.token_mean()?.neg()?),
            Objective::Npo { beta } => {
                let r = reference.ok_or_else(|| Error::input("NPO needs the reference model's NLL"))?;
                let margin = (&nll.sum - r.sum.detach())?;
                Ok((log_sigmoid(&(margin * beta)?)?.mean_all()? * (-2.0 / beta))?)
            }
            Objective::SimNpo { beta, delta } => {
                let margin = (nll.mean()? - delta)?;
                Ok((log_sigmoid(&(margin * beta)?)?.mean_all()? * (-2.0 / beta))?)
            }
            Objective::Rmu { .. } => {
                Err(Error::input("RMU's objective is on the residual stream, not on the answers' NLL"))
            }
            Objective::Nll => nll.token_mean(),
        }
    }

    /// L = γ·L_forget + α·L_retain, L_retain the retain term (the retain NLL per answer token;
    /// RMU's MSE to the frozen model); no retain term (gradient ascent alone): γ·L_forget.
    pub fn total(forget: &Tensor, retain: Option<&Tensor>, gamma: f64, alpha: f64) -> Result<Tensor> {
        let l = (forget * gamma)?;
        Ok(match retain {
            Some(r) => (l + (r * alpha)?)?,
            None => l,
        })
    }
}

/// RMU's loss on one stream (ALGORITHMS.md §8): the mean over the answer tokens and the model
/// width of (h − target)², h (b, s, d) the residual stream after the chosen layer, `target`
/// broadcast to it (c·u for forget data, the frozen model's h for retain data). The answer
/// tokens' own positions count (what a causal LM's label mask marks), one after the positions
/// that predict them (the batch's metric rows).
pub fn rmu_mse(h: &Tensor, target: &Tensor, batch: &Batch) -> Result<Tensor> {
    let rows = answer_rows(h, batch)?;
    let target = if target.dims() == h.dims() {
        answer_rows(target, batch)?
    } else {
        target.broadcast_as(rows.shape())?.contiguous()?
    };
    Ok((rows - target.to_dtype(h.dtype())?)?.sqr()?.mean_all()?)
}

/// The rows of `h` (b, s, d) at the answer tokens' own positions, (n_answer_tokens, d): one after
/// the batch's metric rows, which are the positions that predict them.
pub fn answer_rows(h: &Tensor, batch: &Batch) -> Result<Tensor> {
    let (b, s, d) = h.dims3()?;
    let one = Tensor::ones(1, batch.rows.dtype(), batch.rows.device())?;
    Ok(h.reshape((b * s, d))?.index_select(&batch.rows.broadcast_add(&one)?, 0)?)
}

/// A fixed random direction for RMU: entries uniform in [0, 1) from `seed` (SplitMix64), scaled
/// to unit length, times `c`. Shape (d,).
pub fn rmu_control(d: usize, c: f64, seed: u64, dtype: DType, device: &candle_core::Device) -> Result<Tensor> {
    let mut rng = crate::rng::Rng::stream(seed, "rmu-control");
    let v: Vec<f64> = (0..d).map(|_| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64).collect();
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let v: Vec<f64> = v.into_iter().map(|x| c * x / norm).collect();
    Ok(Tensor::from_vec(v, d, device)?.to_dtype(dtype)?)
}
