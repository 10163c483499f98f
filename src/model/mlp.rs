//! The MLP: plain (GPT-2, GPT-NeoX) or gated (Llama, Qwen2, Mistral, Gemma).

use super::config::{Activation, ModelConfig};
use super::naming::W;
use super::norm::Norm;
use super::ops::Ops;
use super::weights::Weights;
use crate::error::Result;
use crate::hooks::{HookPoint, HookRun, HookSet, Site};
use candle_core::Tensor;

#[derive(Clone)]
pub struct Mlp {
    pub norm: Norm,
    /// (f, d): the input projection (the gate in gated MLPs)
    pub w_in: Tensor,
    pub b_in: Option<Tensor>,
    /// (f, d): gated MLPs' up projection
    pub w_up: Option<Tensor>,
    pub b_up: Option<Tensor>,
    /// (d, f): the output projection; its columns are the MLP's value vectors
    pub w_out: Tensor,
    pub b_out: Option<Tensor>,
    act: Activation,
}

impl Mlp {
    pub fn new(cfg: &ModelConfig, ws: &Weights, l: usize) -> Result<Self> {
        let (d, f) = (cfg.d_model, cfg.d_mlp);
        let gated = cfg.gated_mlp;
        Ok(Mlp {
            norm: Norm::new(cfg, ws, W::MlpNorm, W::MlpNormBias, l)?,
            w_in: ws.linear(W::MlpIn, l, f, d)?,
            b_in: ws.optional(W::MlpInBias, l, &[f], cfg.mlp_bias)?,
            w_up: gated.then(|| ws.linear(W::MlpUp, l, f, d)).transpose()?,
            b_up: ws.optional(W::MlpUpBias, l, &[f], gated && cfg.mlp_bias)?,
            w_out: ws.linear(W::MlpOut, l, d, f)?,
            b_out: ws.optional(W::MlpOutBias, l, &[d], cfg.mlp_bias)?,
            act: cfg.act,
        })
    }

    /// The MLP's hidden activations (`hook_post`, (b, s, f)) on x (b, s, d), with no hooks.
    pub fn hidden(&self, x: &Tensor, ops: Ops) -> Result<Tensor> {
        let none = HookSet::default();
        self.hidden_with(x, 0, &mut HookRun::new(&none, &[])?, ops)
    }

    fn hidden_with(&self, x: &Tensor, l: usize, run: &mut HookRun, ops: Ops) -> Result<Tensor> {
        let p = |site| HookPoint::Block(l, site);
        let n = self.norm.forward(x, ops)?;
        let pre = run.fire(p(Site::MlpPre), ops.linear(&n, &self.w_in, self.b_in.as_ref())?)?;
        let post = match &self.w_up {
            Some(w_up) => {
                let up = run.fire(p(Site::MlpPreLinear), ops.linear(&n, w_up, self.b_up.as_ref())?)?;
                ops.gated(&pre, &up, self.act)?
            }
            None => ops.activation(&pre, self.act)?,
        };
        run.fire(p(Site::MlpPost), post)
    }

    /// x: (b, s, d), the stream entering the MLP → (b, s, d).
    pub fn forward(&self, x: &Tensor, l: usize, run: &mut HookRun, ops: Ops) -> Result<Tensor> {
        let post = self.hidden_with(x, l, run, ops)?;
        run.fire(HookPoint::Block(l, Site::MlpOut), ops.linear(&post, &self.w_out, self.b_out.as_ref())?)
    }
}
