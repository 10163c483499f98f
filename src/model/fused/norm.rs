//! RMS norm and layer norm over the last axis, one op each with its backward. Per row, with
//! x̂ = (x − μ)/σ (μ = 0 and σ = √(mean x² + ε) for RMS; σ = √(var + ε) for layer norm):
//!   y  = x̂ ⊙ w (+ b)
//!   dx = (g⊙w − mean(g⊙w) − x̂ · mean(g⊙w ⊙ x̂)) / σ     (no mean(g⊙w) term for RMS)
//!   dw = Σ_rows g ⊙ x̂,   db = Σ_rows g

use super::{column_sums, kernel_forward, no_grad, rows, Float, Kernel};
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor};

#[derive(Clone, Copy)]
struct Norm {
    eps: f64,
    /// layer norm (subtract the mean) rather than RMS norm
    centre: bool,
}

impl Norm {
    /// (μ, σ) of one row
    fn stats<T: Float>(&self, x: &[T]) -> (T, T) {
        let n = T::from_f64(x.len() as f64);
        let mut mu = T::zero();
        if self.centre {
            for &v in x {
                mu += v;
            }
            mu /= n;
        }
        let mut ss = T::zero();
        for &v in x {
            ss += (v - mu) * (v - mu);
        }
        (mu, (ss / n + T::from_f64(self.eps)).sqrt())
    }
}

impl Kernel for Norm {
    fn name(&self) -> &'static str {
        if self.centre {
            "fused-layer-norm"
        } else {
            "fused-rms-norm"
        }
    }

    /// xs: x (..., d), w (d) and, for layer norm with a bias, b (d)
    fn run<T: Float>(&self, xs: &[&[T]], dims: &[usize]) -> candle_core::Result<Vec<T>> {
        let d = dims[dims.len() - 1];
        let (x, w, b) = (xs[0], xs[1], xs.get(2));
        Ok(rows(x.len(), d, |r, dst: &mut [T]| {
            let x = &x[r * d..(r + 1) * d];
            let (mu, sigma) = self.stats(x);
            for (i, o) in dst.iter_mut().enumerate() {
                *o = (x[i] - mu) / sigma * w[i];
                if let Some(b) = b {
                    *o += b[i];
                }
            }
        }))
    }
}

/// dx from the output's gradient g, x and w. g may hold several gradients (n·rows, d) of the
/// norm of one x (rows, d): g's row r is x's row r mod rows (the per-head input gradients of a
/// shared stream).
struct NormGradX(Norm);

impl Kernel for NormGradX {
    fn name(&self) -> &'static str {
        "fused-norm-grad-x"
    }

    /// xs: g (…, rows, d), x (rows, d), w (d)
    fn run<T: Float>(&self, xs: &[&[T]], dims: &[usize]) -> candle_core::Result<Vec<T>> {
        let d = dims[dims.len() - 1];
        let (g, x, w) = (xs[0], xs[1], xs[2]);
        let x_rows = x.len() / d;
        if x_rows == 0 || !(g.len() / d).is_multiple_of(x_rows) {
            candle_core::bail!("fused-norm-grad-x: {} gradient rows for {x_rows} stream rows", g.len() / d)
        }
        let n = T::from_f64(d as f64);
        Ok(rows(g.len(), d, |r, dst: &mut [T]| {
            let xr = r % x_rows;
            let (x, g) = (&x[xr * d..(xr + 1) * d], &g[r * d..(r + 1) * d]);
            let (mu, sigma) = self.0.stats(x);
            let (mut mean_gw, mut mean_gwx) = (T::zero(), T::zero());
            for i in 0..d {
                let gw = g[i] * w[i];
                mean_gw += gw;
                mean_gwx += gw * (x[i] - mu) / sigma;
            }
            mean_gw /= n;
            mean_gwx /= n;
            if !self.0.centre {
                mean_gw = T::zero();
            }
            for (i, o) in dst.iter_mut().enumerate() {
                let xh = (x[i] - mu) / sigma;
                *o = (g[i] * w[i] - mean_gw - xh * mean_gwx) / sigma;
            }
        }))
    }
}

/// d/dx of Σ g ⊙ norm(x) for gradients g (…, rows, d) that share one stream x (rows, d) and the
/// norm's weight w (d): RMS norm, or layer norm with `centre`. One pass, no backward; for
/// [`super::supported`] tensors.
pub fn norm_input_grads(g: &Tensor, x: &Tensor, w: &Tensor, eps: f64, centre: bool) -> candle_core::Result<Tensor> {
    no_grad(NormGradX(Norm { eps, centre }), &[g, x, w])
}

/// dw = Σ_rows g ⊙ x̂ from x and g: shape (d).
struct NormGradW(Norm);

impl Kernel for NormGradW {
    fn name(&self) -> &'static str {
        "fused-norm-grad-w"
    }

    fn run<T: Float>(&self, xs: &[&[T]], dims: &[usize]) -> candle_core::Result<Vec<T>> {
        let d = dims[dims.len() - 1];
        let (x, g) = (xs[0], xs[1]);
        Ok(column_sums(x.len() / d, d, |r, acc: &mut [T]| {
            let (x, g) = (&x[r * d..(r + 1) * d], &g[r * d..(r + 1) * d]);
            let (mu, sigma) = self.0.stats(x);
            for i in 0..d {
                acc[i] += g[i] * (x[i] - mu) / sigma;
            }
        }))
    }

    fn shape(&self, first: &Shape) -> Shape {
        Shape::from(first.dims()[first.rank() - 1])
    }
}

impl Norm {
    fn grads(&self, x: &Tensor, w: &Tensor, g: &Tensor) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let dx = x.track_op().then(|| no_grad(NormGradX(*self), &[g, x, w])).transpose()?;
        let dw = w.track_op().then(|| no_grad(NormGradW(*self), &[x, g])).transpose()?;
        Ok((dx, dw))
    }
}

impl CustomOp2 for Norm {
    kernel_forward!(op => op; s1 l1, s2 l2);

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        g: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        self.grads(x, w, g)
    }
}

impl CustomOp3 for Norm {
    kernel_forward!(op => op; s1 l1, s2 l2, s3 l3);

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _y: &Tensor,
        g: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw) = self.grads(x, w, g)?;
        let db = b.track_op().then(|| g.flatten_to(g.rank() - 2)?.sum(0)).transpose()?;
        Ok((dx, dw, db))
    }
}

/// RMS norm of x (..., d) with weight w (d), for [`super::supported`] tensors.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op2(&w.contiguous()?, Norm { eps, centre: false })
}

/// Layer norm of x (..., d) with weight w and optional bias b (d), for [`super::supported`] tensors.
pub fn layer_norm(x: &Tensor, w: &Tensor, b: Option<&Tensor>, eps: f64) -> candle_core::Result<Tensor> {
    let (x, w, op) = (x.contiguous()?, w.contiguous()?, Norm { eps, centre: true });
    match b {
        Some(b) => x.apply_op3(&w, &b.contiguous()?, op),
        None => x.apply_op2(&w, op),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_values::{max_diff, t};
    use super::*;
    use candle_core::Var;

    #[test]
    fn shared_stream_input_gradients_equal_each_copys_own_backward() {
        let (heads, rows, d) = (3, 4, 5);
        let (x, w, g) = (t(&[rows, d], 1.0), t(&[d], 2.0), t(&[heads, rows, d], 3.0));
        for centre in [false, true] {
            let got = norm_input_grads(&g, &x, &w, 1e-5, centre).unwrap();
            // each head's copy of the stream through the differentiable norm, weighted by its g
            let xs = Var::from_tensor(&x.unsqueeze(0).unwrap().repeat((heads, 1, 1)).unwrap()).unwrap();
            let y = if centre {
                layer_norm(xs.as_tensor(), &w, None, 1e-5).unwrap()
            } else {
                rms_norm(xs.as_tensor(), &w, 1e-5).unwrap()
            };
            let grads = (y * &g).unwrap().sum_all().unwrap().backward().unwrap();
            let want = grads.get(xs.as_tensor()).unwrap();
            let dev = max_diff(&got, want);
            assert!(dev < 1e-13, "centre {centre}: {dev:e}");
        }
        let err = norm_input_grads(&t(&[7, d], 1.0), &x, &w, 1e-5, false).unwrap_err().to_string();
        assert!(err.contains("7 gradient rows for 4 stream rows"), "{err}");
    }
}
