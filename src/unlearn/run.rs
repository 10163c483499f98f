//! The unlearning loop: full-parameter (or selected-parameter) updates with AdamW, linear
//! warm-up then a constant rate, gradient accumulation and clipping, on forget batches paired
//! with retain batches. Deterministic on the CPU: the batch order is a seeded shuffle.

use super::loss::{answer_nll, AnswerNll, Objective};
use super::select::select_vars;
use crate::attribution::{batches_on, Batch, Example};
use crate::error::{Error, Result};
use crate::hooks::HookSet;
use crate::model::Decoder;
use crate::progress::Progress;
use crate::rng::Rng;
use crate::train::{clip_gradients, Trainable};
use candle_core::Var;
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use serde::{Deserialize, Serialize};

/// The unlearning methods by name, with their defaults (ALGORITHMS.md §8: open-unlearning's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    GradAscent,
    GradDiff,
    Npo,
    SimNpo,
}

impl Method {
    pub const ALL: [Method; 4] = [Method::GradAscent, Method::GradDiff, Method::Npo, Method::SimNpo];

    pub fn name(self) -> &'static str {
        match self {
            Method::GradAscent => "grad-ascent",
            Method::GradDiff => "grad-diff",
            Method::Npo => "npo",
            Method::SimNpo => "simnpo",
        }
    }

    pub fn from_name(name: &str) -> Result<Method> {
        Method::ALL.into_iter().find(|m| m.name() == name).ok_or_else(|| {
            let names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
            Error::input(format!("unknown unlearning method `{name}` (known: {})", names.join(", ")))
        })
    }

    /// (objective, γ, α): gradient ascent alone; gradient difference with α = 1; NPO with
    /// β = 0.1 and the retain NLL; SimNPO with β = 4.5, δ = 0 and γ = 1. open-unlearning's SimNPO
    /// has γ = 0.125, at its learning rate for 7B models; on the bundled model at this loop's
    /// defaults (lr 2e-4, 3 epochs) that leaves 60 % of forget01's greedy answers exact, γ = 1
    /// 15 % (README, "Unlearning").
    pub fn defaults(self) -> (Objective, f64, f64) {
        match self {
            Method::GradAscent => (Objective::GradAscent, 1.0, 0.0),
            Method::GradDiff => (Objective::GradAscent, 1.0, 1.0),
            Method::Npo => (Objective::Npo { beta: 0.1 }, 1.0, 1.0),
            Method::SimNpo => (Objective::SimNpo { beta: 4.5, delta: 0.0 }, 1.0, 1.0),
        }
    }
}

/// Everything that determines an unlearning run besides the data and the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnlearnConfig {
    pub objective: Objective,
    /// γ, the forget objective's weight
    pub gamma: f64,
    /// α, the retain NLL's weight (0: no retain term, the retain data unused)
    pub alpha: f64,
    pub lr: f64,
    pub weight_decay: f64,
    pub epochs: usize,
    /// forget examples per batch (and as many retain examples)
    pub batch: usize,
    /// batches whose gradients are summed before one optimiser step
    pub accumulate: usize,
    /// warm-up steps (linear from lr/warmup to lr)
    pub warmup: usize,
    /// global gradient-norm clip
    pub clip: f64,
    pub seed: u64,
    /// parameter-name patterns the update may touch (empty: every parameter)
    pub trainable: Vec<String>,
}

impl UnlearnConfig {
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 || self.batch == 0 || self.accumulate == 0 {
            return Err(Error::input("epochs, batch and accumulate must be at least 1"));
        }
        let positive = |x: f64| x > 0.0 && x.is_finite();
        if !positive(self.lr) || !positive(self.clip) {
            return Err(Error::input(format!("lr = {}, clip = {}: both must be positive", self.lr, self.clip)));
        }
        if self.gamma < 0.0 || self.alpha < 0.0 {
            return Err(Error::input("gamma and alpha must not be negative"));
        }
        Ok(())
    }
}

/// One optimiser step's record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepLog {
    pub step: usize,
    pub lr: f64,
    /// L_forget and the retain NLL (per answer token), averaged over the accumulated batches
    pub forget: f64,
    pub retain: Option<f64>,
    /// the global gradient norm before clipping
    pub grad_norm: f64,
}

/// Unlearns `forget` from `model` (keeping `retain` when α > 0). `reference` is the frozen
/// original model, needed by NPO (its NLL on each forget batch, computed once). Returns one
/// record per optimiser step; progress counts steps.
pub fn unlearn(
    model: &Trainable,
    reference: Option<&Decoder>,
    forget: &[Example],
    retain: &[Example],
    cfg: &UnlearnConfig,
    progress: &dyn Progress,
) -> Result<Vec<StepLog>> {
    cfg.validate()?;
    if forget.is_empty() {
        return Err(Error::input("there is nothing to forget: the forget set is empty"));
    }
    let use_retain = cfg.alpha > 0.0;
    if use_retain && retain.is_empty() {
        return Err(Error::input("alpha > 0 needs retain data"));
    }
    let device = model.vars.values().next().map(|v| v.device().clone()).unwrap_or(candle_core::Device::Cpu);
    let forget_batches = batches_on(forget, cfg.batch, &device)?;
    let retain_batches = if use_retain { batches_on(retain, cfg.batch, &device)? } else { Vec::new() };
    let reference_nll: Option<Vec<AnswerNll>> = match (cfg.objective, reference) {
        (Objective::Npo { .. }, None) => return Err(Error::input("NPO needs the frozen original model")),
        (Objective::Npo { .. }, Some(r)) => Some(
            forget_batches
                .iter()
                .map(|b| {
                    let logits = r.forward(&b.clean, &HookSet::new())?.logits;
                    let nll = answer_nll(&logits, b)?;
                    Ok(AnswerNll { sum: nll.sum.detach(), len: nll.len })
                })
                .collect::<Result<_>>()?,
        ),
        _ => None,
    };
    let chosen = select_vars(&model.vars, &cfg.trainable)?;
    let vars: Vec<Var> = chosen.into_iter().map(|(_, v)| v).collect();
    let params = ParamsAdamW { lr: cfg.lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: cfg.weight_decay };
    let mut opt = AdamW::new(vars.clone(), params)?;
    let hooks = HookSet::new().training();
    let steps_per_epoch = forget_batches.len().div_ceil(cfg.accumulate);
    let total = (steps_per_epoch * cfg.epochs) as u64;
    let mut rng = Rng::stream(cfg.seed, "unlearn/batches");
    let mut log = Vec::new();
    for _ in 0..cfg.epochs {
        let order = shuffled(&mut rng, forget_batches.len());
        for group in order.chunks(cfg.accumulate) {
            let step = log.len();
            let lr = cfg.lr * ((step + 1) as f64 / cfg.warmup.max(1) as f64).min(1.0);
            opt.set_learning_rate(lr);
            let decoder = model.decoder()?;
            let mut grads: Option<candle_core::backprop::GradStore> = None;
            let (mut forget_sum, mut retain_sum) = (0.0, 0.0);
            for &fi in group {
                let fb = &forget_batches[fi];
                let nll = answer_nll(&decoder.forward(&fb.clean, &hooks)?.logits, fb)?;
                let lf = cfg.objective.forget(&nll, reference_nll.as_ref().map(|r| &r[fi]))?;
                let retain_nll = if use_retain {
                    let rb: &Batch = &retain_batches[(step * cfg.accumulate + fi) % retain_batches.len()];
                    Some(answer_nll(&decoder.forward(&rb.clean, &hooks)?.logits, rb)?)
                } else {
                    None
                };
                let loss = (cfg.objective.total(&lf, retain_nll.as_ref(), cfg.gamma, cfg.alpha)? / group.len() as f64)?;
                forget_sum += lf.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
                if let Some(r) = &retain_nll {
                    retain_sum += r.token_mean()?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
                }
                let g = loss.backward()?;
                grads = Some(match grads {
                    None => g,
                    Some(mut acc) => {
                        for v in &vars {
                            if let Some(x) = g.get(v.as_tensor()) {
                                let sum = match acc.get(v.as_tensor()) {
                                    Some(a) => (a + x)?,
                                    None => x.clone(),
                                };
                                acc.insert(v.as_tensor(), sum);
                            }
                        }
                        acc
                    }
                });
            }
            let mut grads = grads.expect("a group holds at least one batch");
            let grad_norm = clip_gradients(&mut grads, &vars, cfg.clip)?;
            opt.step(&grads)?;
            let n = group.len() as f64;
            log.push(StepLog {
                step,
                lr,
                forget: forget_sum / n,
                retain: use_retain.then_some(retain_sum / n),
                grad_norm,
            });
            progress.update(log.len() as u64, total);
        }
    }
    Ok(log)
}

/// 0..n in a seeded random order (Fisher–Yates).
fn shuffled(rng: &mut Rng, n: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}
