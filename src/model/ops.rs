//! The numeric building blocks of the decoder, each in two forms: candle's fused kernels (fast,
//! but without a backward pass) and plain differentiable ops. `Ops::diff` picks the form; any
//! pass that gradients must cross uses the differentiable one.

use super::config::Activation;
pub use super::const_matmul::matmul_const;
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
}

impl Ops {
    /// Whether `x` must take the plain differentiable form: gradients must cross it, or candle's
    /// fused kernel cannot take it (non-contiguous, or f64).
    fn plain(&self, x: &Tensor) -> bool {
        self.diff || !x.is_contiguous() || x.dtype() == DType::F64
    }

    /// Softmax over the last axis, computed in f32.
    pub fn softmax(&self, x: &Tensor) -> Result<Tensor> {
        let dt = x.dtype();
        let x = x.to_dtype(work_dtype(dt))?;
        let p = if self.plain(&x) {
            // The max only stabilises the exponent; it carries no gradient.
            let max = x.max_keepdim(D::Minus1)?.detach();
            let e = x.broadcast_sub(&max)?.exp()?;
            e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?
        } else {
            candle_nn::ops::softmax_last_dim(&x)?
        };
        Ok(p.to_dtype(dt)?)
    }

    /// RMS norm over the last axis with weight `w` (already 1 + w for Gemma), in f32.
    pub fn rms_norm(&self, x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
        let dt = x.dtype();
        let x = x.to_dtype(work_dtype(dt))?;
        let w = w.to_dtype(x.dtype())?;
        let y = if self.plain(&x) {
            let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
            x.broadcast_div(&(ms + eps)?.sqrt()?)?.broadcast_mul(&w)?
        } else {
            candle_nn::ops::rms_norm(&x, &w, eps as f32)?
        };
        Ok(y.to_dtype(dt)?)
    }

    /// Layer norm over the last axis, in f32.
    pub fn layer_norm(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>, eps: f64) -> Result<Tensor> {
        let dt = x.dtype();
        let x = x.to_dtype(work_dtype(dt))?;
        let w = w.to_dtype(x.dtype())?;
        let y = match (self.plain(&x), b) {
            (false, Some(b)) => candle_nn::ops::layer_norm(&x, &w, &b.to_dtype(x.dtype())?, eps as f32)?,
            _ => {
                let mean = x.mean_keepdim(D::Minus1)?;
                let xc = x.broadcast_sub(&mean)?;
                let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
                let y = xc.broadcast_div(&(var + eps)?.sqrt()?)?.broadcast_mul(&w)?;
                match b {
                    Some(b) => y.broadcast_add(&b.to_dtype(x.dtype())?)?,
                    None => y,
                }
            }
        };
        Ok(y.to_dtype(dt)?)
    }

    pub fn activation(&self, x: &Tensor, act: Activation) -> Result<Tensor> {
        if self.diff && self.exact {
            // candle's fused GeLU backward uses constants rounded to ~6 digits; these compositions
            // differentiate exactly.
            match act {
                Activation::GeluTanh => return Ok(super::gelu::gelu_tanh_composed(x)?),
                Activation::GeluErf => {
                    let e = (x * std::f64::consts::FRAC_1_SQRT_2)?.erf()?;
                    return Ok(((x * 0.5)? * (e + 1.0)?)?);
                }
                _ => {}
            }
        }
        Ok(match act {
            // Differentiated passes that accept an approximate activation (training) still get an
            // exact derivative here, one op instead of candle's composed backward.
            Activation::GeluTanh if self.diff => super::gelu::gelu_tanh(x)?,
            Activation::GeluTanh => x.gelu()?,
            Activation::GeluErf => x.gelu_erf()?,
            Activation::Silu => x.silu()?,
            Activation::Relu => x.relu()?,
        })
    }
}

/// x @ wᵀ (+ b) for x of shape (..., in) and w of shape (out, in).
pub fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let dims = x.dims();
    let n_in = dims[dims.len() - 1];
    let rows = x.elem_count() / n_in;
    let x2 = x.reshape((rows, n_in))?;
    // A weight that tracks gradients (training) needs candle's matmul, whose backward reaches both
    // operands; a constant weight takes the cheaper input-only backward.
    let y = if w.track_op() { x2.matmul(&w.t()?)? } else { matmul_const(&x2, &w.t()?)? };
    let y = match b {
        Some(b) => y.broadcast_add(b)?,
        None => y,
    };
    let mut out_dims = dims.to_vec();
    *out_dims.last_mut().unwrap() = w.dim(0)?;
    Ok(y.reshape(out_dims)?)
}
