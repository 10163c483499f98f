//! The numeric building blocks of the decoder, each in two forms: candle's fused kernels (fast,
//! but without a backward pass) and plain differentiable ops. `Ops::diff` picks the form; any
//! pass that gradients must cross uses the differentiable one.

use super::config::Activation;
pub use super::fused::const_matmul::matmul_const;
use super::fused::{self, act::Act, softmax::Visible};
use crate::error::Result;
use candle_core::{DType, Tensor, D};

/// Norms and softmax run in f32 at least (f64 stays f64, for finite-difference checks).
fn work_dtype(dt: DType) -> DType {
    if dt == DType::F64 {
        DType::F64
    } else {
        DType::F32
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Ops {
    pub diff: bool,
    /// On a differentiable pass, differentiate activations exactly (not candle's fused GeLU).
    pub exact: bool,
    /// Whether the CPU may take [`fused`] ops (false: compositions, the reference)
    pub fused: bool,
}

/// Which implementation of an op a pass takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// candle's kernel: fast, no backward; contiguous f32/f16/bf16 only
    Candle,
    /// ours ([`fused`]): one op with its backward; CPU, f32/f64
    Fused,
    /// plain candle ops, differentiated by candle's autograd: any device
    Composed,
}

impl Ops {
    /// Gradients must cross a differentiable pass; candle's kernels cannot take f64 or
    /// non-contiguous input.
    fn form(&self, x: &Tensor) -> Form {
        let candle = !self.diff && x.is_contiguous() && x.dtype() != DType::F64;
        if candle {
            Form::Candle
        } else if self.can_fuse(x) {
            Form::Fused
        } else {
            Form::Composed
        }
    }

    fn can_fuse(&self, x: &Tensor) -> bool {
        self.fused && fused::supported(x)
    }

    /// Softmax over the last axis, computed in f32.
    pub fn softmax(&self, x: &Tensor) -> Result<Tensor> {
        let dt = x.dtype();
        let x = x.to_dtype(work_dtype(dt))?;
        let p = match self.form(&x) {
            Form::Candle => candle_nn::ops::softmax_last_dim(&x)?,
            Form::Fused => fused::softmax::softmax(&x, 1.0, Visible::All)?,
            Form::Composed => {
                // The max only stabilises the exponent; it carries no gradient.
                let max = x.max_keepdim(D::Minus1)?.detach();
                let e = x.broadcast_sub(&max)?.exp()?;
                e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?
            }
        };
        Ok(p.to_dtype(dt)?)
    }

    /// Attention's pattern softmax(scale · qkᵀ + causal mask) from the raw products `qk`
    /// (b, H, s, s), computed in f32, with `mask` the additive (s, s) form of the same mask.
    pub fn attention_pattern(&self, qk: &Tensor, scale: f64, window: Option<usize>, mask: &Tensor) -> Result<Tensor> {
        let dt = qk.dtype();
        let x = qk.to_dtype(work_dtype(dt))?;
        if self.can_fuse(&x) {
            let p = fused::softmax::softmax(&x, scale, Visible::Causal { window })?;
            return Ok(p.to_dtype(dt)?);
        }
        self.softmax(&(qk * scale)?.broadcast_add(mask)?)
    }

    /// RMS norm over the last axis with weight `w` (already 1 + w for Gemma), in f32.
    pub fn rms_norm(&self, x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
        let dt = x.dtype();
        let x = x.to_dtype(work_dtype(dt))?;
        let w = w.to_dtype(x.dtype())?;
        let y = match self.form(&x) {
            Form::Candle => candle_nn::ops::rms_norm(&x, &w, eps as f32)?,
            Form::Fused => fused::norm::rms_norm(&x, &w, eps)?,
            Form::Composed => {
                let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
                x.broadcast_div(&(ms + eps)?.sqrt()?)?.broadcast_mul(&w)?
            }
        };
        Ok(y.to_dtype(dt)?)
    }

    /// Layer norm over the last axis, in f32.
    pub fn layer_norm(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>, eps: f64) -> Result<Tensor> {
        let dt = x.dtype();
        let x = x.to_dtype(work_dtype(dt))?;
        let w = w.to_dtype(x.dtype())?;
        let b = b.map(|b| b.to_dtype(x.dtype())).transpose()?;
        let y = match (self.form(&x), &b) {
            (Form::Candle, Some(b)) => candle_nn::ops::layer_norm(&x, &w, b, eps as f32)?,
            (Form::Fused, _) => fused::norm::layer_norm(&x, &w, b.as_ref(), eps)?,
            _ => {
                let mean = x.mean_keepdim(D::Minus1)?;
                let xc = x.broadcast_sub(&mean)?;
                let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
                let y = xc.broadcast_div(&(var + eps)?.sqrt()?)?.broadcast_mul(&w)?;
                match &b {
                    Some(b) => y.broadcast_add(b)?,
                    None => y,
                }
            }
        };
        Ok(y.to_dtype(dt)?)
    }

    /// The fused form of `act` on a differentiated CPU pass, if it has one. GPT-2's GeLU takes its
    /// one-op form also under `composed`: it was that op before the other fused ops existed, and
    /// the compositions stand for that implementation.
    fn fused_act(&self, x: &Tensor, act: Activation) -> Option<Act> {
        let (act, fused) = match act {
            Activation::Silu => (Act::Silu, self.fused),
            Activation::GeluTanh => (Act::GeluTanh, true),
            Activation::GeluErf | Activation::Relu => return None,
        };
        (self.diff && fused && fused::supported(x)).then_some(act)
    }

    pub fn activation(&self, x: &Tensor, act: Activation) -> Result<Tensor> {
        if let Some(a) = self.fused_act(x, act) {
            return Ok(fused::act::activation(x, a)?);
        }
        if self.diff && self.exact && act == Activation::GeluErf {
            // candle's fused GeLU backward uses constants rounded to ~6 digits; this composition
            // differentiates exactly.
            let e = (x * std::f64::consts::FRAC_1_SQRT_2)?.erf()?;
            return Ok(((x * 0.5)? * (e + 1.0)?)?);
        }
        Ok(match act {
            // Every differentiated pass, training's too, gets GPT-2's GeLU differentiated exactly
            // (off the CPU, where `fused_act` has no op).
            Activation::GeluTanh if self.diff => fused::act::gelu_tanh_composed(x)?,
            Activation::GeluTanh => x.gelu()?,
            Activation::GeluErf => x.gelu_erf()?,
            Activation::Silu => x.silu()?,
            Activation::Relu => x.relu()?,
        })
    }

    /// act(pre) ⊙ up, a gated MLP's hidden activations.
    pub fn gated(&self, pre: &Tensor, up: &Tensor, act: Activation) -> Result<Tensor> {
        match self.fused_act(pre, act) {
            Some(a) if pre.dims() == up.dims() && pre.dtype() == up.dtype() => Ok(fused::act::gated(pre, up, a)?),
            _ => Ok((self.activation(pre, act)? * up)?),
        }
    }

    /// [`linear`] on this pass: a trained weight (one that tracks gradients) takes the fused op,
    /// whose backward gives the weight's gradient in its own layout, where the pass may fuse.
    pub fn linear(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
        let fuse = self.fused && fused::supported(x) && fused::supported(w) && x.dtype() == w.dtype();
        linear_by(x, w, b, fuse)
    }
}

/// x @ wᵀ (+ b) for x of shape (..., in) and w of shape (out, in).
pub fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    linear_by(x, w, b, false)
}

fn linear_by(x: &Tensor, w: &Tensor, b: Option<&Tensor>, fuse: bool) -> Result<Tensor> {
    let dims = x.dims();
    let n_in = dims[dims.len() - 1];
    let rows = x.elem_count() / n_in;
    let x2 = x.reshape((rows, n_in))?;
    // A weight that tracks gradients (training) needs a backward that reaches both operands; a
    // constant weight takes the cheaper input-only backward.
    let y = match (w.track_op(), fuse) {
        (true, true) => fused::linear::trained_linear(&x2, w)?,
        (true, false) => x2.matmul(&w.t()?)?,
        (false, _) => matmul_const(&x2, &w.t()?)?,
    };
    let y = match b {
        Some(b) => y.broadcast_add(b)?,
        None => y,
    };
    let mut out_dims = dims.to_vec();
    *out_dims.last_mut().unwrap() = w.dim(0)?;
    Ok(y.reshape(out_dims)?)
}
