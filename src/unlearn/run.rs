//! The unlearning loop: full-parameter (or selected-parameter) updates with AdamW, linear
//! warm-up then a constant rate, gradient accumulation and clipping, on forget batches paired
//! with retain batches. Deterministic on the CPU: the batch order is a seeded shuffle.

use super::loss::{answer_nll, answer_rows, rmu_control, rmu_mse, AnswerNll, Objective};
use super::select::{select_trainable, Selected};
use crate::attribution::{batches_on, Batch, Example};
use crate::error::{Error, Result};
use crate::hooks::HookSet;
use crate::model::Decoder;
use crate::progress::Progress;
use crate::rng::Rng;
use crate::train::FusedAdamW;
use crate::train::{clip_gradients, Trainable};
use candle_core::Var;
use candle_nn::{Optimizer, ParamsAdamW};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The unlearning methods by name, with their defaults (ALGORITHMS.md §8: open-unlearning's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    GradAscent,
    GradDiff,
    Npo,
    SimNpo,
    Rmu,
    /// ConceptVectors' Needle: noise on one value vector, then gradient ascent on that vector
    /// alone (not in [`Method::ALL`]: it needs the vector; see [`needle_config`])
    Needle,
    /// CURE: NPO's forget objective and the retain NLL, each module following its own gradient
    /// (not in [`Method::ALL`]: it needs a partition; see [`super::cure`])
    Cure,
}

impl Method {
    pub const ALL: [Method; 5] = [Method::GradAscent, Method::GradDiff, Method::Npo, Method::SimNpo, Method::Rmu];

    pub fn name(self) -> &'static str {
        match self {
            Method::GradAscent => "grad-ascent",
            Method::GradDiff => "grad-diff",
            Method::Npo => "npo",
            Method::SimNpo => "simnpo",
            Method::Rmu => "rmu",
            Method::Needle => "needle",
            Method::Cure => "cure",
        }
    }

    pub fn from_name(name: &str) -> Result<Method> {
        Method::ALL.into_iter().chain([Method::Needle, Method::Cure]).find(|m| m.name() == name).ok_or_else(|| {
            let names: Vec<&str> =
                Method::ALL.iter().chain(&[Method::Needle, Method::Cure]).map(|m| m.name()).collect();
            Error::input(format!("unknown unlearning method `{name}` (known: {})", names.join(", ")))
        })
    }

    /// (objective, γ, α): gradient ascent alone; gradient difference with α = 1; NPO with
    /// β = 0.1 and the retain NLL; SimNPO with β = 4.5, δ = 0 and γ = 1 (open-unlearning's γ =
    /// 0.125 goes with its learning rate for 7B models); RMU with α = 10.
    pub fn defaults(self) -> (Objective, f64, f64) {
        match self {
            Method::GradAscent => (Objective::GradAscent, 1.0, 0.0),
            Method::GradDiff => (Objective::GradAscent, 1.0, 1.0),
            Method::Npo => (Objective::Npo { beta: 0.1 }, 1.0, 1.0),
            Method::SimNpo => (Objective::SimNpo { beta: 4.5, delta: 0.0 }, 1.0, 1.0),
            // the layer and c depend on the model: the middle layer and [`rmu_scale`]
            Method::Rmu => (Objective::Rmu { layer: 0, c: 0.0 }, 1.0, 10.0),
            Method::Needle => (Objective::GradAscent, 1.0, 0.0),
            Method::Cure => (Objective::Npo { beta: 0.1 }, 1.0, 1.0),
        }
    }

    /// The learning rate that forgets forget10 on the bundled model in 3 epochs of batches of 8
    /// (README, "Unlearning": a sweep of each method's rate, the largest before the retain
    /// answers collapse or the forget answers are gone): gradient ascent 3e-5, gradient
    /// difference 5e-5, NPO 3e-5, SimNPO 1e-4, RMU 6e-4.
    pub fn lr(self) -> f64 {
        match self {
            Method::GradAscent | Method::Npo | Method::Cure => 3e-5,
            Method::GradDiff => 5e-5,
            Method::SimNpo => 1e-4,
            Method::Rmu => 6e-4,
            // the reference's (ConceptVectors' forget.py for Needle): one column moves far
            Method::Needle => 0.2,
        }
    }
}

/// Needle (ConceptVectors): adds N(0, σ²) noise (seeded, the stream concept validation draws
/// from) to value vector (`layer`, `dim`) of `model` in place, and returns `cfg` restricted to
/// that vector: gradient ascent moves it alone, every other parameter stays bit-identical.
pub fn needle_config(
    model: &Trainable,
    cfg: &UnlearnConfig,
    layer: usize,
    dim: usize,
    sigma: f64,
    seed: u64,
) -> Result<UnlearnConfig> {
    let (_, pattern) = model.value_vector(layer, dim)?;
    if !(sigma >= 0.0 && sigma.is_finite()) {
        return Err(Error::input(format!("Needle's noise σ = {sigma} must be a non-negative number")));
    }
    let noise = Rng::gaussian(seed, CONCEPT_NOISE_STREAM, model.cfg.d_model, sigma);
    model.add_to_value_vector(layer, dim, &noise)?;
    Ok(UnlearnConfig { trainable: vec![pattern], ..cfg.clone() })
}

/// The random stream of concept-vector noise: Needle's, and `concepts validate`'s, so that
/// validation with the same seed and σ shows what Needle's noise alone does.
pub const CONCEPT_NOISE_STREAM: &str = "concept-noise";

/// RMU's default c at `layer` (the default layer is the middle one, `n_layers / 2`): 2 × the mean
/// L2 norm of the frozen model's residual stream there at the forget answers' tokens
/// (ALGORITHMS.md §8 asks for c scaled to the norm of h; the factor 2 is ours).
pub fn rmu_scale(reference: &Decoder, forget: &[Example], layer: usize, batch: usize) -> Result<f64> {
    let (mut sum, mut n) = (0.0, 0usize);
    for b in batches_on(forget, batch.max(1), reference.device())? {
        let rows = answer_rows(&residual_after(reference, &b, layer, HookSet::new())?.detach(), &b)?;
        sum += rows.sqr()?.sum(1)?.sqrt()?.sum_all()?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
        n += rows.dim(0)?;
    }
    Ok(2.0 * sum / n.max(1) as f64)
}

/// The residual stream after `layer` (b, s, d) in a pass over `batch` under `hooks`, kept in the
/// autograd graph (a capture would detach it).
fn residual_after(dec: &Decoder, batch: &Batch, layer: usize, hooks: HookSet) -> Result<candle_core::Tensor> {
    use crate::hooks::{DynamicEdit, Edit, HookPoint, Intervention, Site};
    use std::sync::{Arc, Mutex};
    let slot: Arc<Mutex<Option<candle_core::Tensor>>> = Arc::new(Mutex::new(None));
    let keep = slot.clone();
    let edit = DynamicEdit::new([], move |x: &candle_core::Tensor, _: &_| {
        *keep.lock().expect("one pass at a time") = Some(x.clone());
        Ok(x.clone())
    });
    let point = HookPoint::Block(layer, Site::ResidPost);
    // only the stream is wanted: unembed no more than the answer rows
    let hooks = hooks.intervene(Intervention::new(point, Edit::Dynamic(edit))).logits_at(&batch.rows);
    dec.forward(&batch.clean, &hooks)?;
    let h = slot.lock().expect("one pass at a time").take();
    h.ok_or_else(|| Error::input(format!("layer {layer} is not a layer of this model")))
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
    /// CURE: the modules the update touches and the gradient each follows (then `trainable`
    /// must be empty)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cure: Option<super::cure::CurePlan>,
}

/// The documented loop settings (README, "Unlearning"): 3 epochs of batches of 8, one batch per
/// step, 2 warm-up steps, clip 1, weight decay 0.01, seed 42.
pub const DEFAULT_EPOCHS: usize = 3;
pub const DEFAULT_BATCH: usize = 8;
pub const DEFAULT_WARMUP: usize = 2;
pub const DEFAULT_CLIP: f64 = 1.0;
pub const DEFAULT_WEIGHT_DECAY: f64 = 0.01;
pub const DEFAULT_SEED: u64 = 42;

impl UnlearnConfig {
    /// A method at its documented settings, every parameter trainable. RMU's layer and c depend
    /// on the model and the data: [`UnlearnConfig::fit_rmu`] sets them.
    pub fn documented(method: Method) -> UnlearnConfig {
        let (objective, gamma, alpha) = method.defaults();
        UnlearnConfig {
            objective,
            gamma,
            alpha,
            lr: method.lr(),
            weight_decay: DEFAULT_WEIGHT_DECAY,
            epochs: DEFAULT_EPOCHS,
            batch: DEFAULT_BATCH,
            accumulate: 1,
            warmup: DEFAULT_WARMUP,
            clip: DEFAULT_CLIP,
            seed: DEFAULT_SEED,
            trainable: Vec::new(),
            cure: None,
        }
    }

    /// RMU's layer (`layer`, else the middle one) and c (`c`, else [`rmu_scale`] on `forget`);
    /// nothing for the other objectives.
    pub fn fit_rmu(
        &mut self,
        reference: &Decoder,
        forget: &[Example],
        layer: Option<usize>,
        c: Option<f64>,
    ) -> Result<()> {
        let n_layers = reference.cfg.n_layers;
        if let Objective::Rmu { layer: l, c: cc } = &mut self.objective {
            *l = layer.unwrap_or(n_layers / 2);
            if *l >= n_layers {
                return Err(Error::input(format!("RMU layer {l}: the model has {n_layers} layers")));
            }
            *cc = match c {
                Some(c) => c,
                None => rmu_scale(reference, forget, *l, self.batch)?,
            };
        }
        Ok(())
    }

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
        if self.cure.is_some() {
            if !self.trainable.is_empty() {
                return Err(Error::input("CURE's plan chooses the parameters: --trainable does not apply"));
            }
            if matches!(self.objective, Objective::Rmu { .. }) {
                return Err(Error::input(
                    "CURE's forget modules follow an answer objective (grad-ascent, NPO, SimNPO), not RMU",
                ));
            }
        }
        Ok(())
    }
}

/// One optimiser step's record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepLog {
    pub step: usize,
    pub lr: f64,
    /// L_forget and the retain term (the retain NLL per answer token; RMU: the MSE to the frozen
    /// model's stream), averaged over the accumulated batches
    pub forget: f64,
    pub retain: Option<f64>,
    /// the global gradient norm before clipping
    pub grad_norm: f64,
    /// CURE: how the task-shared modules' forget and retain gradients met
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflicts: Option<super::cure::Conflicts>,
    /// the epoch (from 0) and the seconds since the run started, at the step's end
    pub epoch: usize,
    pub seconds: f64,
}

/// An unlearning run that a program steps through: [`Unlearner::step`] makes one optimiser step
/// and returns its record, `None` once every epoch is done. A step whose loss or gradient is not
/// finite stops the run with an error naming the step, and the model keeps the last weights with
/// a finite loss (for a non-finite loss, those before the previous update).
pub struct Unlearner<'a> {
    model: &'a Trainable,
    reference: Option<&'a Decoder>,
    cfg: UnlearnConfig,
    forget_batches: Vec<Batch>,
    retain_batches: Vec<Batch>,
    /// the frozen model's NLL on each forget batch (NPO)
    reference_nll: Option<Vec<AnswerNll>>,
    /// RMU's control vector c·u over the model's width
    rmu: Option<candle_core::Tensor>,
    vars: Vec<Var>,
    /// the selected parameters, and the values of those only partly trainable (their frozen
    /// entries are put back after every step)
    selected: Vec<(Selected, Option<candle_core::Tensor>)>,
    opt: FusedAdamW,
    hooks: HookSet,
    rng: Rng,
    /// this epoch's batch order, and where the next step starts in it
    order: Vec<usize>,
    at: usize,
    epoch: usize,
    log: Vec<StepLog>,
    start: std::time::Instant,
    /// the trained parameters before the last update: restored when the next loss is not finite
    previous: Option<Vec<candle_core::Tensor>>,
    /// the step a non-finite value stopped the run at
    stopped_at: Option<usize>,
}

impl<'a> Unlearner<'a> {
    /// Checks the settings and the data and prepares the run. `reference` is the frozen original
    /// model, needed by NPO (its NLL on each forget batch, computed here once) and RMU's retain
    /// term.
    pub fn new(
        model: &'a Trainable,
        reference: Option<&'a Decoder>,
        forget: &[Example],
        retain: &[Example],
        cfg: &UnlearnConfig,
    ) -> Result<Self> {
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
                        let logits = r.forward(&b.clean, &HookSet::new().logits_at(&b.rows))?.logits;
                        let nll = answer_nll(&logits, b)?;
                        Ok(AnswerNll { sum: nll.sum.detach(), len: nll.len })
                    })
                    .collect::<Result<_>>()?,
            ),
            _ => None,
        };
        let rmu = match cfg.objective {
            Objective::Rmu { layer, c } => {
                if layer >= model.cfg.n_layers || !(c > 0.0 && c.is_finite()) {
                    return Err(Error::input(format!(
                        "RMU: layer {layer} of {} and c = {c}: the layer must exist and c be positive",
                        model.cfg.n_layers
                    )));
                }
                if use_retain && reference.is_none() {
                    return Err(Error::input("RMU's retain term needs the frozen original model"));
                }
                Some(rmu_control(model.cfg.d_model, c, cfg.seed, candle_core::DType::F32, &device)?)
            }
            _ => None,
        };
        let chosen = match &cfg.cure {
            Some(plan) => {
                plan.check(&model.vars, use_retain)?;
                plan.selection(&model.vars)?
            }
            None => select_trainable(&model.vars, &cfg.trainable)?,
        };
        let selected: Vec<(Selected, Option<candle_core::Tensor>)> = chosen
            .into_iter()
            .map(|s| {
                let frozen = s.mask.is_some().then(|| s.var.as_tensor().copy()).transpose()?;
                Ok((s, frozen))
            })
            .collect::<Result<_>>()?;
        let vars: Vec<Var> = selected.iter().map(|(s, _)| s.var.clone()).collect();
        let params = ParamsAdamW { lr: cfg.lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: cfg.weight_decay };
        let opt = FusedAdamW::new(vars.clone(), params)?;
        let mut rng = Rng::stream(cfg.seed, "unlearn/batches");
        let order = shuffled(&mut rng, forget_batches.len());
        Ok(Unlearner {
            model,
            reference,
            cfg: cfg.clone(),
            forget_batches,
            retain_batches,
            reference_nll,
            rmu,
            vars,
            selected,
            opt,
            hooks: HookSet::new().training(),
            rng,
            order,
            at: 0,
            epoch: 0,
            log: Vec::new(),
            start: std::time::Instant::now(),
            previous: None,
            stopped_at: None,
        })
    }

    /// Optimiser steps in the whole run.
    pub fn total_steps(&self) -> usize {
        self.forget_batches.len().div_ceil(self.cfg.accumulate) * self.cfg.epochs
    }

    /// The records of the steps made so far.
    pub fn log(&self) -> &[StepLog] {
        &self.log
    }

    /// The step at which a non-finite loss or gradient stopped the run (the model then holds the
    /// last weights with a finite loss); None while it runs or after it ended normally.
    pub fn stopped_at(&self) -> Option<usize> {
        self.stopped_at
    }

    /// One optimiser step over the next `accumulate` forget batches (each paired with a retain
    /// batch); `None` when the run is over.
    pub fn step(&mut self) -> Result<Option<StepLog>> {
        if self.stopped_at.is_some() {
            return Ok(None);
        }
        if self.at >= self.order.len() {
            self.epoch += 1;
            if self.epoch >= self.cfg.epochs {
                return Ok(None);
            }
            self.order = shuffled(&mut self.rng, self.forget_batches.len());
            self.at = 0;
        }
        let cfg = &self.cfg;
        let group: Vec<usize> = self.order[self.at..(self.at + cfg.accumulate).min(self.order.len())].to_vec();
        self.at += group.len();
        let step = self.log.len();
        let lr = cfg.lr * ((step + 1) as f64 / cfg.warmup.max(1) as f64).min(1.0);
        self.opt.set_learning_rate(lr);
        let decoder = self.model.decoder()?;
        let mut grads: Option<candle_core::backprop::GradStore> = None;
        // CURE keeps the retain term's gradient apart
        let mut retain_grads: Option<candle_core::backprop::GradStore> = None;
        let (mut forget_sum, mut retain_sum) = (0.0, 0.0);
        let use_retain = !self.retain_batches.is_empty();
        for &fi in &group {
            let fb = &self.forget_batches[fi];
            let rb: Option<&Batch> =
                use_retain.then(|| &self.retain_batches[(step * cfg.accumulate + fi) % self.retain_batches.len()]);
            let (lf, lr_term) = self.terms(&decoder, fi, fb, rb)?;
            let n = group.len() as f64;
            let loss = if cfg.cure.is_some() {
                (&lf * (cfg.gamma / n))?
            } else {
                (Objective::total(&lf, lr_term.as_ref(), cfg.gamma, cfg.alpha)? / n)?
            };
            let scalar = |t: &candle_core::Tensor| -> Result<f64> {
                Ok(t.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?)
            };
            let (f, r) = (scalar(&lf)?, lr_term.as_ref().map(scalar).transpose()?);
            if !f.is_finite() || r.is_some_and(|r| !r.is_finite()) {
                let retain = r.map_or(String::new(), |r| format!(", retain {r}"));
                return Err(self.stop(step, format!("the loss is forget {f}{retain}"), false));
            }
            forget_sum += f;
            retain_sum += r.unwrap_or(0.0);
            grads = Some(accumulate(grads, loss.backward()?, &self.vars)?);
            // only a plan with retain-specific or task-shared modules reads the retain gradient
            if let (Some(true), Some(r)) = (cfg.cure.as_ref().map(|p| p.needs_retain()), &lr_term) {
                retain_grads = Some(accumulate(retain_grads, (r * (cfg.alpha / n))?.backward()?, &self.vars)?);
            }
        }
        let mut grads = grads.expect("a group holds at least one batch");
        let mut conflicts = None;
        if let Some(plan) = &cfg.cure {
            let (combined, c) = plan.combine(&self.model.vars, grads, retain_grads.as_ref())?;
            grads = combined;
            conflicts = Some(c);
        }
        for (s, _) in self.selected.iter().filter(|(s, _)| s.mask.is_some()) {
            if let Some(g) = grads.get(s.var.as_tensor()) {
                let masked = s.masked_grad(g)?;
                grads.insert(s.var.as_tensor(), masked);
            }
        }
        let grad_norm = clip_gradients(&mut grads, &self.vars, cfg.clip)?;
        if !grad_norm.is_finite() {
            return Err(self.stop(step, format!("the gradient norm is {grad_norm}"), true));
        }
        self.previous = Some(self.vars.iter().map(|v| v.as_tensor().copy()).collect::<candle_core::Result<_>>()?);
        self.opt.step(&grads)?;
        for (s, frozen) in &self.selected {
            if let Some(f) = frozen {
                s.restore_frozen(f)?;
            }
        }
        let n = group.len() as f64;
        let record = StepLog {
            step,
            epoch: self.epoch,
            lr,
            forget: forget_sum / n,
            retain: use_retain.then_some(retain_sum / n),
            grad_norm,
            conflicts,
            seconds: self.start.elapsed().as_secs_f64(),
        };
        self.log.push(record.clone());
        Ok(Some(record))
    }

    /// (L_forget, the retain term) on forget batch `fi` and its retain batch.
    fn terms(
        &self,
        decoder: &Decoder,
        fi: usize,
        fb: &Batch,
        rb: Option<&Batch>,
    ) -> Result<(candle_core::Tensor, Option<candle_core::Tensor>)> {
        let hooks = &self.hooks;
        match (self.cfg.objective, &self.rmu) {
            (Objective::Rmu { layer, .. }, Some(control)) => {
                let h = residual_after(decoder, fb, layer, hooks.clone())?;
                let lf = rmu_mse(&h, control, fb)?;
                let retain = match (rb, self.reference) {
                    (Some(rb), Some(r)) => {
                        let h = residual_after(decoder, rb, layer, hooks.clone())?;
                        let frozen = residual_after(r, rb, layer, HookSet::new())?.detach();
                        Some(rmu_mse(&h, &frozen, rb)?)
                    }
                    _ => None,
                };
                Ok((lf, retain))
            }
            _ => {
                let nll = answer_nll(&decoder.forward(&fb.clean, &hooks.clone().logits_at(&fb.rows))?.logits, fb)?;
                let lf = self.cfg.objective.forget(&nll, self.reference_nll.as_ref().map(|r| &r[fi]))?;
                let retain = rb
                    .map(|rb| {
                        let logits = decoder.forward(&rb.clean, &hooks.clone().logits_at(&rb.rows))?.logits;
                        answer_nll(&logits, rb)?.token_mean()
                    })
                    .transpose()?;
                Ok((lf, retain))
            }
        }
    }
}

/// Where a run stands, to resume it ([`Unlearner::state`]): the records of the steps made (their
/// number is the next step's), the epoch and the place in its batch order, and the optimiser's
/// step count.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunState {
    pub epoch: usize,
    pub at: usize,
    pub log: Vec<StepLog>,
    pub optimiser_steps: i32,
}

impl Unlearner<'_> {
    /// The run's state and the optimiser's moments (`<parameter>.m`, `<parameter>.v`): with the
    /// weights, all that [`Unlearner::resume`] needs to go on as if the run had never stopped.
    pub fn state(&self) -> Result<(RunState, BTreeMap<String, candle_core::Tensor>)> {
        let (optimiser_steps, moments) = self.opt.state()?;
        let mut named = BTreeMap::new();
        for ((s, _), (m, v)) in self.selected.iter().zip(moments) {
            named.insert(format!("{}.m", s.name), m);
            named.insert(format!("{}.v", s.name), v);
        }
        let state = RunState { epoch: self.epoch, at: self.at, log: self.log.clone(), optimiser_steps };
        Ok((state, named))
    }

    /// Goes on from a [`Unlearner::state`] of a run with the same settings and data, the model
    /// holding that run's weights: the batch orders are drawn again from the seed up to the
    /// state's epoch, and the optimiser takes its moments back.
    pub fn resume(&mut self, state: RunState, moments: &BTreeMap<String, candle_core::Tensor>) -> Result<()> {
        let n = self.forget_batches.len();
        if state.at > n || state.epoch >= self.cfg.epochs || state.log.len() > self.total_steps() {
            return Err(Error::input(format!(
                "the saved run stands at epoch {}, batch {} after {} steps: not a place in this run ({} epochs of {n} \
                 batches)",
                state.epoch,
                state.at,
                state.log.len(),
                self.cfg.epochs
            )));
        }
        let pick = |name: String| {
            moments.get(&name).cloned().ok_or_else(|| Error::input(format!("the optimiser state has no `{name}`")))
        };
        let pairs = self
            .selected
            .iter()
            .map(|(s, _)| Ok((pick(format!("{}.m", s.name))?, pick(format!("{}.v", s.name))?)))
            .collect::<Result<Vec<_>>>()?;
        self.opt.restore(state.optimiser_steps, &pairs)?;
        let mut rng = Rng::stream(self.cfg.seed, "unlearn/batches");
        let mut order = shuffled(&mut rng, n);
        for _ in 0..state.epoch {
            order = shuffled(&mut rng, n);
        }
        (self.rng, self.order, self.epoch, self.at) = (rng, order, state.epoch, state.at);
        let elapsed = state.log.last().map_or(0.0, |s| s.seconds);
        let now = std::time::Instant::now();
        self.start = now.checked_sub(std::time::Duration::from_secs_f64(elapsed)).unwrap_or(now);
        self.log = state.log;
        self.previous = None;
        Ok(())
    }

    /// Stops the run at `step` for a non-finite value. When the loss itself is not finite, the
    /// weights that gave it (those after step − 1) are replaced by the ones before that update;
    /// when only the gradient is (`loss_finite`), the current weights had a finite loss and stay.
    fn stop(&mut self, step: usize, what: String, loss_finite: bool) -> Error {
        self.stopped_at = Some(step);
        let previous = self.previous.take();
        let kept = match (loss_finite, previous) {
            (false, Some(previous)) => {
                for (v, t) in self.vars.iter().zip(previous) {
                    if let Err(e) = v.set(&t) {
                        return e.into();
                    }
                }
                self.log.truncate(step.saturating_sub(1));
                step.checked_sub(2)
            }
            _ => step.checked_sub(1),
        };
        let kept = kept.map_or("the original weights".to_string(), |n| format!("the weights after step {n}"));
        Error::input(format!("the run stopped at step {step}: {what}; the model keeps {kept} (lower --lr)"))
    }
}

/// Unlearns `forget` from `model` (keeping `retain` when α > 0): an [`Unlearner`] run to the
/// end. Returns one record per optimiser step; progress counts steps.
pub fn unlearn(
    model: &Trainable,
    reference: Option<&Decoder>,
    forget: &[Example],
    retain: &[Example],
    cfg: &UnlearnConfig,
    progress: &dyn Progress,
) -> Result<Vec<StepLog>> {
    let mut u = Unlearner::new(model, reference, forget, retain, cfg)?;
    let total = u.total_steps() as u64;
    while let Some(s) = u.step()? {
        progress.update(s.step as u64 + 1, total);
    }
    Ok(u.log)
}

/// `acc` + `g` over `vars` (the gradients of the batches of one step).
fn accumulate(
    acc: Option<candle_core::backprop::GradStore>,
    g: candle_core::backprop::GradStore,
    vars: &[Var],
) -> Result<candle_core::backprop::GradStore> {
    let Some(mut acc) = acc else { return Ok(g) };
    for v in vars {
        if let Some(x) = g.get(v.as_tensor()) {
            let sum = match acc.get(v.as_tensor()) {
                Some(a) => (a + x)?,
                None => x.clone(),
            };
            acc.insert(v.as_tensor(), sum);
        }
    }
    Ok(acc)
}

/// 0..n in a seeded random order.
fn shuffled(rng: &mut Rng, n: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut v);
    v
}
