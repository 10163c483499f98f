//! x · Wᵀ for a weight W (out, in) that is being trained. Through candle's ops this is a
//! transpose node and a matmul: backward, the matmul's weight gradient comes out as (in, out), is
//! added into a fresh zero tensor for the transposed view, then added transposed (a strided pass)
//! into a second zero tensor for W itself. Here it is one op: the forward is one product on W's own
//! storage, and the backward gives dx = g · W and dW = gᵀ · x, the latter directly in W's layout.

use super::contiguous;
use candle_core::{bail, CpuStorage, CustomOp2, Layout, Shape, Tensor, WithDType};

struct TrainedLinear;

const NAME: &str = "trained-linear";

/// y (rows, out) = x (rows, in) · w (out, in)ᵀ on contiguous storage, as one product.
fn product<T: WithDType>(x: &[T], w: &[T], rows: usize, n_in: usize, n_out: usize) -> Vec<T> {
    let mut y = vec![T::zero(); rows * n_out];
    let threads = candle_core::utils::get_num_threads();
    let parallelism = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    // SAFETY: the three buffers hold rows·out, rows·in and out·in elements, matching the strides:
    // y row-major (rows, out); x row-major (rows, in); wᵀ (in, out) read through w's row-major
    // (out, in) storage, i.e. column stride n_in, row stride 1.
    unsafe {
        gemm::gemm(
            rows,
            n_out,
            n_in,
            y.as_mut_ptr(),
            1,
            n_out as isize,
            false,
            x.as_ptr(),
            1,
            n_in as isize,
            w.as_ptr(),
            n_in as isize,
            1,
            T::zero(),
            T::one(),
            false,
            false,
            false,
            parallelism,
        );
    }
    y
}

impl CustomOp2 for TrainedLinear {
    fn name(&self) -> &'static str {
        NAME
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (rows, n_in) = xl.shape().dims2()?;
        let (n_out, w_in) = wl.shape().dims2()?;
        if w_in != n_in {
            bail!("trained-linear: input (.., {n_in}) against weight ({n_out}, {w_in})")
        }
        let y = match (xs, ws) {
            (CpuStorage::F32(_), CpuStorage::F32(_)) => {
                CpuStorage::F32(product(contiguous(xs, xl, NAME)?, contiguous(ws, wl, NAME)?, rows, n_in, n_out))
            }
            (CpuStorage::F64(_), CpuStorage::F64(_)) => {
                CpuStorage::F64(product(contiguous(xs, xl, NAME)?, contiguous(ws, wl, NAME)?, rows, n_in, n_out))
            }
            _ => bail!("trained-linear: input and weight must both be f32 or both f64"),
        };
        Ok((y, Shape::from((rows, n_out))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        g: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let dx = x.track_op().then(|| g.matmul(&w.detach())).transpose()?;
        let dw = w.track_op().then(|| g.t()?.matmul(&x.detach())).transpose()?;
        Ok((dx, dw))
    }
}

/// x (rows, in) · w (out, in)ᵀ with w's gradient computed in w's own layout; CPU, f32 or f64
/// (see [`super::supported`]).
pub fn trained_linear(x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op2(&w.contiguous()?, TrainedLinear)
}

#[cfg(test)]
mod tests {
    use super::super::test_values::{max_diff, t};
    use super::*;
    use candle_core::Var;

    #[test]
    fn values_and_both_gradients_equal_candles_matmul_of_the_transpose() {
        let x = Var::from_tensor(&t(&[5, 7], 1.0)).unwrap();
        let w = Var::from_tensor(&t(&[3, 7], 2.0)).unwrap();
        // a weighted sum, so that every output element's gradient differs
        let probe = t(&[5, 3], 3.0);
        let y = trained_linear(x.as_tensor(), w.as_tensor()).unwrap();
        let want = x.as_tensor().matmul(&w.as_tensor().t().unwrap()).unwrap();
        assert!(max_diff(&y, &want) < 1e-14);
        let g = (y * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        let g_want = (want * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        for v in [&x, &w] {
            let (a, b) = (g.get(v.as_tensor()).unwrap(), g_want.get(v.as_tensor()).unwrap());
            assert_eq!(a.dims(), v.dims(), "the gradient has its variable's layout");
            assert!(max_diff(a, b) < 1e-14);
        }
    }

    #[test]
    fn a_constant_input_gets_no_gradient_and_mismatched_shapes_are_refused() {
        let w = Var::from_tensor(&t(&[3, 7], 2.0)).unwrap();
        let x = t(&[5, 7], 1.0);
        let g = trained_linear(&x, w.as_tensor()).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(g.get(&x).is_none());
        assert_eq!(g.get(w.as_tensor()).unwrap().dims(), &[3, 7]);
        let err = trained_linear(&t(&[5, 6], 1.0), w.as_tensor()).unwrap_err().to_string();
        assert!(err.contains("input (.., 6) against weight (3, 7)"), "{err}");
    }
}
