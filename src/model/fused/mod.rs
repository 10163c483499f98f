//! Fused CPU operations with their own backward pass. candle's fused kernels (softmax, norms,
//! rotary) have no backward, and the plain-op compositions that stand in for them on a
//! differentiated pass cost a dozen graph nodes each: every node is a pass over memory forward,
//! and backward a gradient for each operand (constants included) accumulated into a fresh zero
//! tensor. Each op here is one pass forward and one or two backward, computing only the gradients
//! of operands that track them.
//!
//! The kernels take contiguous f32 or f64 values (f64 is what the finite-difference tests run);
//! anything else, and every non-CPU device, takes the composed form in [`super::ops`].

pub mod act;
pub mod const_matmul;
pub mod linear;
pub mod norm;
pub mod rotary;
pub mod softmax;

use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Shape, Tensor, WithDType};
use rayon::prelude::*;

/// The float arithmetic the kernels need beyond `WithDType`'s.
pub trait Float: WithDType {
    fn exp(self) -> Self;
    fn sqrt(self) -> Self;
    fn maximum(self, o: Self) -> Self;
    fn neg_infinity() -> Self;
}

macro_rules! float {
    ($t:ty) => {
        impl Float for $t {
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            fn maximum(self, o: Self) -> Self {
                <$t>::max(self, o)
            }
            fn neg_infinity() -> Self {
                <$t>::NEG_INFINITY
            }
        }
    };
}
float!(f32);
float!(f64);

/// A computation over same-dtype contiguous inputs; `dims` are the first input's.
pub(crate) trait Kernel: Send + Sync {
    fn name(&self) -> &'static str;
    fn run<T: Float>(&self, xs: &[&[T]], dims: &[usize]) -> candle_core::Result<Vec<T>>;
    /// The output's shape; the first input's unless the kernel reduces.
    fn shape(&self, first: &Shape) -> Shape {
        first.clone()
    }
}

fn contiguous<'a, T: WithDType>(s: &'a CpuStorage, l: &Layout, op: &str) -> candle_core::Result<&'a [T]> {
    let Some((a, b)) = l.contiguous_offsets() else { bail!("{op}: the inputs must be contiguous") };
    Ok(&s.as_slice::<T>()?[a..b])
}

pub(crate) fn apply<K: Kernel>(k: &K, args: &[(&CpuStorage, &Layout)]) -> candle_core::Result<(CpuStorage, Shape)> {
    let (first, l0) = args[0];
    let shape = k.shape(l0.shape());
    let dims = l0.dims();
    Ok(match first {
        CpuStorage::F32(_) => {
            let xs =
                args.iter().map(|(s, l)| contiguous::<f32>(s, l, k.name())).collect::<candle_core::Result<Vec<_>>>()?;
            (CpuStorage::F32(k.run(&xs, dims)?), shape)
        }
        CpuStorage::F64(_) => {
            let xs =
                args.iter().map(|(s, l)| contiguous::<f64>(s, l, k.name())).collect::<candle_core::Result<Vec<_>>>()?;
            (CpuStorage::F64(k.run(&xs, dims)?), shape)
        }
        _ => bail!("{}: only f32 and f64 inputs are supported", k.name()),
    })
}

/// `name` and `cpu_fwd` of a custom op whose forward pass is the kernel `$k`, an expression of
/// the op bound to `$op`; one `storage layout` pair of names per input.
macro_rules! kernel_forward {
    ($op:ident => $k:expr; $($s:ident $l:ident),+) => {
        fn name(&self) -> &'static str {
            let $op = self;
            Kernel::name($k)
        }
        fn cpu_fwd(&self, $($s: &CpuStorage, $l: &Layout),+) -> candle_core::Result<(CpuStorage, Shape)> {
            let $op = self;
            $crate::model::fused::apply($k, &[$(($s, $l)),+])
        }
    };
}
pub(crate) use kernel_forward;

/// A kernel as an op without a backward (the backward passes' own steps).
pub(crate) struct NoGrad<K>(pub K);

impl<K: Kernel> CustomOp1 for NoGrad<K> {
    kernel_forward!(op => &op.0; s l);
}

impl<K: Kernel> CustomOp2 for NoGrad<K> {
    kernel_forward!(op => &op.0; s1 l1, s2 l2);
}

impl<K: Kernel> CustomOp3 for NoGrad<K> {
    kernel_forward!(op => &op.0; s1 l1, s2 l2, s3 l3);
}

/// Runs kernel `k` on `xs` (made contiguous), without a backward.
pub(crate) fn no_grad<K: Kernel + 'static>(k: K, xs: &[&Tensor]) -> candle_core::Result<Tensor> {
    let xs = xs.iter().map(|x| x.contiguous()).collect::<candle_core::Result<Vec<_>>>()?;
    match xs.as_slice() {
        [a] => a.apply_op1_no_bwd(&NoGrad(k)),
        [a, b] => a.apply_op2_no_bwd(b, &NoGrad(k)),
        [a, b, c] => a.apply_op3_no_bwd(b, c, &NoGrad(k)),
        _ => bail!("{}: kernels take one to three inputs", k.name()),
    }
}

/// Whether the fused form can take tensors like `x`: on the CPU, in f32 or f64.
pub fn supported(x: &Tensor) -> bool {
    x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64)
}

/// Elements per parallel chunk of an elementwise kernel.
const CHUNK: usize = 1 << 14;

/// `out[i] = f(xs[0][i], …)` in parallel chunks, for 1 to 3 same-length inputs.
pub(crate) fn map<T: Float>(xs: &[&[T]], f: impl Fn(&[T]) -> T + Send + Sync) -> Vec<T> {
    let n = xs[0].len();
    let mut out = vec![T::zero(); n];
    out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, dst)| {
        let mut args = [T::zero(); 3];
        for (k, d) in dst.iter_mut().enumerate() {
            let i = c * CHUNK + k;
            for (a, x) in args.iter_mut().zip(xs) {
                *a = x[i];
            }
            *d = f(&args[..xs.len()]);
        }
    });
    out
}

/// Rows of length `n`, processed in parallel: `f(row index, output row)`.
pub(crate) fn rows<T: Float>(len: usize, n: usize, f: impl Fn(usize, &mut [T]) + Send + Sync) -> Vec<T> {
    let mut out = vec![T::zero(); len];
    out.par_chunks_mut(n).enumerate().for_each(|(r, dst)| f(r, dst));
    out
}

/// Column sums of a (rows, n) matrix in parallel blocks of rows: the weight gradients of norms.
pub(crate) fn column_sums<T: Float>(n_rows: usize, n: usize, term: impl Fn(usize, &mut [T]) + Send + Sync) -> Vec<T> {
    const BLOCK: usize = 64;
    let partial: Vec<Vec<T>> = (0..n_rows.div_ceil(BLOCK))
        .into_par_iter()
        .map(|blk| {
            let mut acc = vec![T::zero(); n];
            for r in blk * BLOCK..((blk + 1) * BLOCK).min(n_rows) {
                term(r, &mut acc);
            }
            acc
        })
        .collect();
    let mut out = vec![T::zero(); n];
    for p in partial {
        for (o, v) in out.iter_mut().zip(p) {
            *o += v;
        }
    }
    out
}

/// Deterministic test tensors, f64 on the CPU.
#[cfg(test)]
pub(crate) mod test_values {
    use candle_core::{Device, Tensor};

    /// sin((i + seed)·0.37) at flat index i.
    pub fn t(shape: &[usize], seed: f64) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f64> = (0..n).map(|i| ((i as f64 + seed) * 0.37).sin()).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    pub fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap()
    }
}
