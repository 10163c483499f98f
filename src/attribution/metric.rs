//! Metrics: one scalar per item, read at the item's own metric rows (see `data`).
//!
//! **Sign convention (the one place it is stated).** A metric's *value* is the natural quantity
//! (logit difference, probability difference, KL, NLL, sequence probability). Attribution
//! differentiates a *loss*, `loss = sign · value` with [`Metric::sign`]: −1 for the quantities
//! where higher means the model does the task better (logit difference, probability difference,
//! sequence probability), +1 for KL and NLL. This is EAP-IG's `loss=True` convention: every edge
//! score is (z'_u − z_u)·∂loss/∂in_v, so a positive score means patching the edge *hurts* the
//! task, and exact patching scores are loss(patched) − loss(clean). Faithfulness reports values.
//! The loss of a batch is the sum of its items' losses; scores are averaged over items.

use super::data::Batch;
use crate::error::{Error, Result};
use candle_core::{DType, Tensor, D};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// logit(answer) − logit(distractor) after the last prompt token (pairs only)
    LogitDiff,
    /// p(answer) − p(distractor) after the last prompt token (pairs only)
    ProbDiff,
    /// KL(p_clean ‖ p) at the metric rows, averaged over an item's rows
    Kl,
    /// mean negative log-likelihood of the answer tokens (a pair's answer is one token)
    Nll,
    /// sequence probability exp(−mean NLL) of the answer
    SeqProb,
}

impl Metric {
    pub const ALL: [Metric; 5] = [Metric::LogitDiff, Metric::ProbDiff, Metric::Kl, Metric::Nll, Metric::SeqProb];

    pub fn name(self) -> &'static str {
        match self {
            Metric::LogitDiff => "logit-diff",
            Metric::ProbDiff => "prob-diff",
            Metric::Kl => "kl",
            Metric::Nll => "nll",
            Metric::SeqProb => "seq-prob",
        }
    }

    /// loss = sign · value (see the module documentation).
    pub fn sign(self) -> f64 {
        match self {
            Metric::LogitDiff | Metric::ProbDiff | Metric::SeqProb => -1.0,
            Metric::Kl | Metric::Nll => 1.0,
        }
    }

    /// Per-item metric values (b,), differentiable, in `dtype` (f32, or f64 for f64 models).
    /// `clean_log_probs` (n_rows, V) is the clean run's [`row_log_probs`], needed by KL only.
    pub fn values(self, logits: &Tensor, batch: &Batch, clean_log_probs: Option<&Tensor>) -> Result<Tensor> {
        let rows = row_logits(logits, batch)?.to_dtype(work_dtype(logits.dtype()))?;
        self.values_at_rows(&rows, batch, clean_log_probs)
    }

    /// Per-item values from the logits at the metric rows (n_rows, V); any per-row shift of the
    /// logits (e.g. log-probabilities instead) gives the same values.
    pub fn values_at_rows(self, rows: &Tensor, batch: &Batch, clean_log_probs: Option<&Tensor>) -> Result<Tensor> {
        let dtype = rows.dtype();
        let rows = rows.clone();
        let per_item = |per_row: &Tensor| -> Result<Tensor> {
            // (b, n_rows) · (n_rows, 1) → (b,)
            Ok(batch.row_mean.to_dtype(dtype)?.matmul(&per_row.unsqueeze(1)?)?.squeeze(1)?)
        };
        let pick = |t: &Tensor, idx: &Tensor| -> Result<Tensor> { Ok(t.gather(&idx.unsqueeze(1)?, 1)?.squeeze(1)?) };
        Ok(match self {
            Metric::LogitDiff | Metric::ProbDiff => {
                let distractors = batch.distractors.as_ref().ok_or_else(|| {
                    Error::input(format!(
                        "metric {self} needs answer/distractor pairs; the examples from {} on include question/answer \
                         examples (use nll, seq-prob or kl)",
                        batch.first_index
                    ))
                })?;
                // Pairs have exactly one row per item, in item order.
                let scores = if self == Metric::LogitDiff { rows } else { log_softmax(&rows)?.exp()? };
                (pick(&scores, &batch.row_tokens)? - pick(&scores, distractors)?)?
            }
            Metric::Kl => {
                let clean = clean_log_probs
                    .ok_or_else(|| Error::input("the KL metric needs the clean run's log-probabilities"))?
                    .to_dtype(dtype)?
                    .detach();
                let kl = (clean.exp()? * (&clean - log_softmax(&rows)?)?)?.sum(D::Minus1)?;
                per_item(&kl)?
            }
            Metric::Nll | Metric::SeqProb => {
                let nll = per_item(&pick(&log_softmax(&rows)?, &batch.row_tokens)?.neg()?)?;
                if self == Metric::Nll {
                    nll
                } else {
                    nll.neg()?.exp()?
                }
            }
        })
    }

    /// Per-item losses (b,): `sign · values`.
    pub fn losses(self, logits: &Tensor, batch: &Batch, clean_log_probs: Option<&Tensor>) -> Result<Tensor> {
        Ok((self.values(logits, batch, clean_log_probs)? * self.sign())?)
    }
}

/// Log-probabilities (n_rows, V) at the batch's metric rows, detached: the KL reference.
pub fn row_log_probs(logits: &Tensor, batch: &Batch) -> Result<Tensor> {
    let rows = row_logits(logits, batch)?.to_dtype(work_dtype(logits.dtype()))?;
    Ok(log_softmax(&rows)?.detach())
}

/// logits (b, s, V) → (n_rows, V) at the metric rows.
/// The logits at `batch`'s metric rows (n_rows, V): picked out of (b, s, V), or as they are when
/// the forward pass unembedded only those rows (`HookSet::logits_at(&batch.rows)`).
fn row_logits(logits: &Tensor, batch: &Batch) -> Result<Tensor> {
    let n_rows = batch.rows.dim(0)?;
    if logits.rank() == 2 {
        if logits.dim(0)? != n_rows {
            return Err(Error::input(format!(
                "logits of shape {:?} are not the {n_rows} metric rows of the batch",
                logits.dims()
            )));
        }
        return Ok(logits.clone());
    }
    let (b, s, v) = logits.dims3()?;
    if b != batch.len() || s != batch.seq_len() {
        return Err(Error::input(format!(
            "logits of shape {:?} do not belong to a batch of {} items of {} positions",
            logits.dims(),
            batch.len(),
            batch.seq_len()
        )));
    }
    Ok(logits.reshape((b * s, v))?.index_select(&batch.rows, 0)?)
}

/// Log-softmax over the last axis; the max only stabilises the exponent, so it is detached.
pub fn log_softmax(x: &Tensor) -> Result<Tensor> {
    let shifted = x.broadcast_sub(&x.max_keepdim(D::Minus1)?.detach())?;
    Ok(shifted.broadcast_sub(&shifted.exp()?.sum_keepdim(D::Minus1)?.log()?)?)
}

/// f64 stays f64 (finite-difference checks); everything else is computed in f32.
pub fn work_dtype(dt: DType) -> DType {
    if dt == DType::F64 {
        DType::F64
    } else {
        DType::F32
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Metric {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Metric::ALL.into_iter().find(|m| m.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
            Error::input(format!("unknown metric `{s}` (known: {})", names.join(", ")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_signs_make_losses() {
        for m in Metric::ALL {
            assert_eq!(m.name().parse::<Metric>().unwrap(), m);
        }
        assert!("logit_diff".parse::<Metric>().unwrap_err().to_string().contains("logit-diff"));
        assert_eq!(Metric::LogitDiff.sign(), -1.0);
        assert_eq!(Metric::Nll.sign(), 1.0);
    }

    #[test]
    fn values_from_logits_by_hand() {
        use super::super::data::Example;
        use candle_core::Device;
        let ex = [Example::pair(vec![1, 2], vec![1, 3], 0, 2)];
        let batch = Batch::new(&ex, 0).unwrap();
        // (1, 2, 3): only the last position matters
        let logits = Tensor::new(&[[[9.0f64, 9.0, 9.0], [1.0, 0.0, -1.0]]], &Device::Cpu).unwrap();
        let v = |m: Metric| Metric::values(m, &logits, &batch, None).unwrap().to_vec1::<f64>().unwrap()[0];
        assert!((v(Metric::LogitDiff) - 2.0).abs() < 1e-12);
        let z: f64 = [1.0f64, 0.0, -1.0].iter().map(|x| x.exp()).sum();
        let p = |x: f64| x.exp() / z;
        assert!((v(Metric::ProbDiff) - (p(1.0) - p(-1.0))).abs() < 1e-12);
        assert!((v(Metric::Nll) + p(1.0).ln()).abs() < 1e-12);
        assert!((v(Metric::SeqProb) - p(1.0)).abs() < 1e-12);
        let clean = row_log_probs(&logits, &batch).unwrap();
        assert!(Metric::Kl.values(&logits, &batch, Some(&clean)).unwrap().to_vec1::<f64>().unwrap()[0].abs() < 1e-12);
        assert!(Metric::Kl.values(&logits, &batch, None).is_err());
    }
}
