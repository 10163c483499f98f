//! The numeric building blocks of the decoder, each in two forms: candle's fused kernels (fast,
//! but without a backward pass) and plain differentiable ops. `Ops::diff` picks the form; any
//! pass that gradients must cross uses the differentiable one.

use super::config::Activation;
use crate::error::Result;
use candle_core::{DType, Tensor, D};

#[derive(Clone, Copy, Debug)]
pub struct Ops {
    pub diff: bool,
}

impl Ops {
    /// Softmax over the last axis, computed in f32.
    pub fn softmax(&self, x: &Tensor) -> Result<Tensor> {
        let dt = x.dtype();
        let x = x.to_dtype(DType::F32)?;
        let p = if self.diff {
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
        let x = x.to_dtype(DType::F32)?;
        let w = w.to_dtype(DType::F32)?;
        let y = if self.diff || !x.is_contiguous() {
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
        let x = x.to_dtype(DType::F32)?;
        let w = w.to_dtype(DType::F32)?;
        let y = match (self.diff || !x.is_contiguous(), b) {
            (false, Some(b)) => candle_nn::ops::layer_norm(&x, &w, &b.to_dtype(DType::F32)?, eps as f32)?,
            _ => {
                let mean = x.mean_keepdim(D::Minus1)?;
                let xc = x.broadcast_sub(&mean)?;
                let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
                let y = xc.broadcast_div(&(var + eps)?.sqrt()?)?.broadcast_mul(&w)?;
                match b {
                    Some(b) => y.broadcast_add(&b.to_dtype(DType::F32)?)?,
                    None => y,
                }
            }
        };
        Ok(y.to_dtype(dt)?)
    }

    pub fn activation(&self, x: &Tensor, act: Activation) -> Result<Tensor> {
        Ok(match act {
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
    let y = x.reshape((rows, n_in))?.matmul(&w.t()?)?;
    let y = match b {
        Some(b) => y.broadcast_add(b)?,
        None => y,
    };
    let mut out_dims = dims.to_vec();
    *out_dims.last_mut().unwrap() = w.dim(0)?;
    Ok(y.reshape(out_dims)?)
}
