//! The per-forward-pass state of a `HookSet`: which points are active, the cache being filled,
//! and the zero-valued `Var`s whose gradients are the taps' gradients.

use super::cache::ActivationCache;
use super::point::{HookPoint, PointSet};
use super::set::{Edit, HookSet};
use crate::error::{Error, Result};
use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

pub struct HookRun<'a> {
    set: &'a HookSet,
    active: PointSet,
    capture: PointSet,
    edit: PointSet,
    tap: PointSet,
    cache: ActivationCache,
    taps: Vec<(HookPoint, Var)>,
}

impl<'a> HookRun<'a> {
    /// Resolves `set` against the model's hook points, rejecting points the model lacks.
    pub fn new(set: &'a HookSet, valid: &[HookPoint]) -> Result<Self> {
        let (mut active, mut capture, mut edit, mut tap) = Default::default();
        let check = |p: &HookPoint| HookPoint::parse_for(&p.to_string(), valid);
        for p in valid {
            if set.captures(p) {
                PointSet::insert(&mut capture, *p);
                PointSet::insert(&mut active, *p);
            }
        }
        let order = |p: &HookPoint| valid.iter().position(|v| v == p);
        for iv in &set.interventions {
            check(&iv.point)?;
            PointSet::insert(&mut edit, iv.point);
            PointSet::insert(&mut active, iv.point);
            if let Edit::Dynamic(d) = &iv.edit {
                // What a dynamic edit reads must be captured, and captured before it runs.
                for r in &d.reads {
                    check(r)?;
                    if order(r) >= order(&iv.point) {
                        return Err(Error::Hook {
                            point: iv.point.to_string(),
                            msg: format!("a dynamic edit here cannot read `{r}`, which fires later in the pass"),
                        });
                    }
                    PointSet::insert(&mut capture, *r);
                    PointSet::insert(&mut active, *r);
                }
            }
        }
        for p in &set.taps {
            check(p)?;
            PointSet::insert(&mut tap, *p);
            PointSet::insert(&mut active, *p);
        }
        Ok(HookRun { set, active, capture, edit, tap, cache: ActivationCache::default(), taps: Vec::new() })
    }

    /// Whether anything happens at `p`: the decoder computes optional activations (per-head
    /// inputs, per-head results) only when asked for.
    #[inline]
    pub fn wants(&self, p: HookPoint) -> bool {
        self.active.contains(p)
    }

    /// Whether the forward pass must avoid candle's fused ops, which have no backward.
    pub fn differentiable(&self) -> bool {
        self.set.differentiable || !self.set.taps.is_empty()
    }

    /// Whether the model may take its fused CPU ops (see `HookSet::composed`).
    pub fn fused(&self) -> bool {
        !self.set.composed
    }

    /// Whether activation gradients must be exact (see `HookSet::approximate_gradients`).
    pub fn exact_gradients(&self) -> bool {
        !self.set.approximate_gradients
    }

    /// Runs the interventions, tap and capture registered at `p` on activation `x`.
    #[inline]
    pub fn fire(&mut self, p: HookPoint, x: Tensor) -> Result<Tensor> {
        if !self.active.contains(p) {
            return Ok(x);
        }
        self.fire_active(p, x)
    }

    fn fire_active(&mut self, p: HookPoint, mut x: Tensor) -> Result<Tensor> {
        if self.edit.contains(p) {
            // Dynamic edits see the captures made so far in this run.
            for iv in self.set.interventions.iter().filter(|iv| iv.point == p) {
                x = iv.apply(&x, &self.cache)?;
            }
        }
        if self.tap.contains(p) {
            let dtype = self.set.tap_dtype.unwrap_or(x.dtype());
            let delta = Var::zeros(x.shape(), dtype, x.device())?;
            x = x.broadcast_add(&delta.as_tensor().to_dtype(x.dtype())?)?;
            self.taps.push((p, delta));
        }
        if self.capture.contains(p) {
            self.cache.insert(p, x.detach());
        }
        Ok(x)
    }

    pub fn finish(self) -> (ActivationCache, Taps) {
        (self.cache, Taps { vars: self.taps })
    }
}

/// The gradient taps of one forward pass.
#[derive(Default)]
pub struct Taps {
    vars: Vec<(HookPoint, Var)>,
}

impl Taps {
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// Back-propagates the scalar `metric` once and returns d(metric)/d(activation) at every
    /// tapped point (zeros where the metric does not depend on it).
    pub fn gradients(&self, metric: &Tensor) -> Result<TapGradients> {
        if metric.elem_count() != 1 {
            return Err(Error::input(format!(
                "the metric to differentiate must be a scalar, got shape {:?}",
                metric.dims()
            )));
        }
        let store = metric.sum_all()?.backward()?;
        self.collect(&store)
    }

    /// Reads the taps' gradients from a `GradStore` the caller computed.
    pub fn collect(&self, store: &GradStore) -> Result<TapGradients> {
        let mut cache = ActivationCache::default();
        for (p, v) in &self.vars {
            let g = match store.get(v.as_tensor()) {
                Some(g) => g.clone(),
                None => v.as_tensor().zeros_like()?,
            };
            cache.insert(*p, g);
        }
        Ok(TapGradients(cache))
    }

    pub fn vars(&self) -> impl Iterator<Item = (&HookPoint, &Var)> {
        self.vars.iter().map(|(p, v)| (p, v))
    }
}

/// Gradients at tapped hook points, keyed like an activation cache.
pub struct TapGradients(pub ActivationCache);

impl TapGradients {
    pub fn get(&self, p: HookPoint) -> Result<&Tensor> {
        self.0.get(p)
    }
}
