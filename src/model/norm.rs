//! Layer norm and RMS norm, as configured.

use super::config::{ModelConfig, NormKind};
use super::naming::W;
use super::ops::Ops;
use super::weights::Weights;
use crate::error::Result;
use candle_core::Tensor;

#[derive(Clone)]
pub struct Norm {
    kind: NormKind,
    /// The effective scale: Gemma's (1 + w) is folded in at load time.
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    eps: f64,
}

impl Norm {
    /// Loads the norm named by `weight`/`bias` (`layer` is ignored for the final norm).
    pub fn new(cfg: &ModelConfig, ws: &Weights, weight: W, bias: W, layer: usize) -> Result<Self> {
        let d = cfg.d_model;
        let mut w = ws.tensor(weight, layer, &[d])?;
        if cfg.norm == NormKind::RmsNormPlusOne {
            w = (w + 1.0)?;
        }
        let bias = ws.optional(bias, layer, &[d], cfg.norm == NormKind::LayerNorm && ws.has(bias, layer))?;
        Ok(Norm { kind: cfg.norm, weight: w, bias, eps: cfg.norm_eps })
    }

    /// Normalises the last axis of x (any leading shape).
    pub fn forward(&self, x: &Tensor, ops: Ops) -> Result<Tensor> {
        match self.kind {
            NormKind::LayerNorm => ops.layer_norm(x, &self.weight, self.bias.as_ref(), self.eps),
            NormKind::RmsNorm | NormKind::RmsNormPlusOne => ops.rms_norm(x, &self.weight, self.eps),
        }
    }
}
