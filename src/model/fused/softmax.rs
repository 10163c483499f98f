//! softmax(scale · x + causal mask) over the last axis, one op with its backward
//! dx = scale · y ⊙ (g − Σ g ⊙ y). With the mask, x is (..., s, s) attention scores and query i
//! sees keys j ≤ i (within the sliding window, if any): the same as adding attention's −∞ mask.

use super::{kernel_forward, no_grad, rows, Float, Kernel};
use candle_core::{bail, CpuStorage, CustomOp1, Layout, Shape, Tensor};

/// Which keys each query sees: all of them, or the causal ones (within a window).
#[derive(Clone, Copy, Debug)]
pub enum Visible {
    All,
    Causal { window: Option<usize> },
}

impl Visible {
    /// Keys `lo..hi` that query `i` of `n` sees.
    fn range(self, i: usize, n: usize) -> (usize, usize) {
        match self {
            Visible::All => (0, n),
            Visible::Causal { window } => (window.map_or(0, |w| (i + 1).saturating_sub(w)), i + 1),
        }
    }
}

struct Softmax {
    scale: f64,
    visible: Visible,
}

struct SoftmaxGrad {
    scale: f64,
}

impl Kernel for Softmax {
    fn name(&self) -> &'static str {
        "fused-softmax"
    }

    fn run<T: Float>(&self, xs: &[&[T]], dims: &[usize]) -> candle_core::Result<Vec<T>> {
        let n = dims[dims.len() - 1];
        let s_q = if dims.len() >= 2 { dims[dims.len() - 2] } else { 1 };
        if matches!(self.visible, Visible::Causal { .. }) && s_q != n {
            bail!("fused-softmax: a causal mask needs square scores, got {dims:?}");
        }
        let (x, scale) = (xs[0], T::from_f64(self.scale));
        Ok(rows(x.len(), n, |r, dst: &mut [T]| {
            let src = &x[r * n..(r + 1) * n];
            let (lo, hi) = self.visible.range(r % s_q, n);
            let mut max = T::neg_infinity();
            for &v in &src[lo..hi] {
                max = max.maximum(v * scale);
            }
            let mut sum = T::zero();
            for (d, &v) in dst[lo..hi].iter_mut().zip(&src[lo..hi]) {
                *d = (v * scale - max).exp();
                sum += *d;
            }
            for d in &mut dst[lo..hi] {
                *d /= sum;
            }
        }))
    }
}

impl Kernel for SoftmaxGrad {
    fn name(&self) -> &'static str {
        "fused-softmax-grad"
    }

    /// xs: the output y and its gradient g
    fn run<T: Float>(&self, xs: &[&[T]], dims: &[usize]) -> candle_core::Result<Vec<T>> {
        let n = dims[dims.len() - 1];
        let (y, g, scale) = (xs[0], xs[1], T::from_f64(self.scale));
        Ok(rows(y.len(), n, |r, dst: &mut [T]| {
            let (y, g) = (&y[r * n..(r + 1) * n], &g[r * n..(r + 1) * n]);
            let mut dot = T::zero();
            for (&a, &b) in y.iter().zip(g) {
                dot += a * b;
            }
            for ((d, &a), &b) in dst.iter_mut().zip(y).zip(g) {
                *d = scale * a * (b - dot);
            }
        }))
    }
}

impl CustomOp1 for Softmax {
    kernel_forward!(op => op; s l);

    fn bwd(&self, _x: &Tensor, y: &Tensor, g: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(no_grad(SoftmaxGrad { scale: self.scale }, &[y, g])?))
    }
}

/// softmax(scale · x + mask) over the last axis of x, for [`super::supported`] tensors.
pub fn softmax(x: &Tensor, scale: f64, visible: Visible) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1(Softmax { scale, visible })
}
