//! Rotary position embeddings in the rotate-half layout, on the first `dims` of each head.

use super::config::{Positional, RopeScaling};
use super::ops::Ops;
use crate::error::Result;
use candle_core::{DType, Device, Tensor, D};

#[derive(Clone)]
pub struct Rotary {
    dims: usize,
    inv_freq: Vec<f32>,
}

impl Rotary {
    pub fn new(positional: &Positional) -> Option<Self> {
        let Positional::Rotary { dims, theta, scaling } = positional else { return None };
        let half = dims / 2;
        let mut inv: Vec<f64> = (0..half).map(|i| 1.0 / theta.powf((2 * i) as f64 / *dims as f64)).collect();
        match scaling {
            RopeScaling::None => {}
            RopeScaling::Linear { factor } => inv.iter_mut().for_each(|f| *f /= factor),
            RopeScaling::FreqFactors(ff) => inv.iter_mut().zip(ff).for_each(|(f, s)| *f /= *s as f64),
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings: old,
            } => {
                let low_wavelen = old / low_freq_factor;
                let high_wavelen = old / high_freq_factor;
                for f in inv.iter_mut() {
                    let wavelen = 2.0 * std::f64::consts::PI / *f;
                    if wavelen > low_wavelen {
                        *f /= factor;
                    } else if wavelen >= high_wavelen {
                        let smooth = (old / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
                        *f = (1.0 - smooth) * *f / factor + smooth * *f;
                    }
                }
            }
        }
        Some(Rotary { dims: *dims, inv_freq: inv.into_iter().map(|f| f as f32).collect() })
    }

    /// cos and sin tables, (s, dims) each, both halves repeated (rotate-half layout).
    pub fn tables(&self, s: usize, dtype: DType, device: &Device) -> Result<(Tensor, Tensor)> {
        let positions: Vec<usize> = (0..s).collect();
        self.tables_at(&positions, dtype, device)
    }

    /// The tables at `positions`, (n, dims) each.
    pub fn tables_at(&self, positions: &[usize], dtype: DType, device: &Device) -> Result<(Tensor, Tensor)> {
        let half = self.dims / 2;
        let shape = (positions.len(), self.dims);
        let mut cos = Vec::with_capacity(positions.len() * self.dims);
        let mut sin = Vec::with_capacity(positions.len() * self.dims);
        for &p in positions {
            for _ in 0..2 {
                for i in 0..half {
                    let a = p as f32 * self.inv_freq[i];
                    cos.push(a.cos());
                    sin.push(a.sin());
                }
            }
        }
        let cos = Tensor::from_vec(cos, shape, device)?.to_dtype(dtype)?;
        let sin = Tensor::from_vec(sin, shape, device)?.to_dtype(dtype)?;
        Ok((cos, sin))
    }

    /// x: (b, s, heads, dh) → same shape with the first `dims` of each head rotated by tables
    /// (s, dims), or (b, s, dims) with positions per row (one fused op on the CPU unless `ops`
    /// asks for the composition).
    pub fn apply(&self, x: &Tensor, cos: &Tensor, sin: &Tensor, ops: Ops) -> Result<Tensor> {
        if ops.fused && super::fused::supported(x) {
            return Ok(super::fused::rotary::rope(x, cos, sin, self.dims)?);
        }
        let dh = x.dim(D::Minus1)?;
        let (b, s) = match cos.dims() {
            [s, _] => (1, *s),
            [b, s, _] => (*b, *s),
            other => {
                return Err(crate::error::Error::input(format!(
                    "rotary tables must be (s, dims) or (b, s, dims), got {other:?}"
                )))
            }
        };
        let half = self.dims / 2;
        let rot = x.narrow(D::Minus1, 0, self.dims)?;
        let x1 = rot.narrow(D::Minus1, 0, half)?;
        let x2 = rot.narrow(D::Minus1, half, half)?;
        let rotated_half = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
        // → (1 or b, s, 1, dims) to broadcast over batch and heads
        let cos = cos.reshape((b, s, 1, self.dims))?;
        let sin = sin.reshape((b, s, 1, self.dims))?;
        let out = (rot.broadcast_mul(&cos)? + rotated_half.broadcast_mul(&sin)?)?;
        if self.dims == dh {
            Ok(out)
        } else {
            Ok(Tensor::cat(&[&out, &x.narrow(D::Minus1, self.dims, dh - self.dims)?], D::Minus1)?)
        }
    }
}
