//! The rotary embedding (rotate-half layout, on the first `dims` of each head) as one op. It is a
//! rotation by angle θ per pair (i, i + dims/2), so its backward is the rotation by −θ: the same
//! op with the sine negated (the tables repeat each angle in both halves).

use super::{kernel_forward, no_grad, rows, Float, Kernel};
use candle_core::{bail, CpuStorage, CustomOp1, DType, Layout, Shape, Tensor};

struct Rope {
    /// (s, dims) each, or (b, s, dims) with positions per row; both halves repeated
    cos: Vec<f64>,
    sin: Vec<f64>,
    dims: usize,
    /// −1 for the backward (the inverse rotation)
    sign: f64,
}

impl Kernel for Rope {
    fn name(&self) -> &'static str {
        "fused-rotary"
    }

    /// x: (b, s, heads, dh)
    fn run<T: Float>(&self, xs: &[&[T]], dims: &[usize]) -> candle_core::Result<Vec<T>> {
        let [b, s, heads, dh] = dims else { bail!("fused-rotary: expected (b, s, heads, dh), got {dims:?}") };
        let (b, s, heads, dh, half) = (*b, *s, *heads, *dh, self.dims / 2);
        // one table for every row, or one per row
        let per_row = self.cos.len() == b * s * self.dims && b > 1;
        if !(per_row || self.cos.len() == s * self.dims) || self.dims > dh {
            bail!("fused-rotary: tables for {} values do not fit {b} x {s} positions of {dh}", self.cos.len());
        }
        let x = xs[0];
        Ok(rows(x.len(), dh, |r, dst: &mut [T]| {
            let p = if per_row { r / heads } else { (r / heads) % s };
            let (cos, sin) = (&self.cos[p * self.dims..], &self.sin[p * self.dims..]);
            let x = &x[r * dh..(r + 1) * dh];
            for i in 0..half {
                let (c, sn) = (T::from_f64(cos[i]), T::from_f64(self.sign * sin[i]));
                dst[i] = x[i] * c - x[i + half] * sn;
                dst[i + half] = x[i + half] * c + x[i] * sn;
            }
            dst[self.dims..].copy_from_slice(&x[self.dims..]);
        }))
    }
}

impl CustomOp1 for Rope {
    kernel_forward!(op => op; s l);

    fn bwd(&self, _x: &Tensor, _y: &Tensor, g: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let inverse = Rope { cos: self.cos.clone(), sin: self.sin.clone(), dims: self.dims, sign: -self.sign };
        Ok(Some(no_grad(inverse, &[g])?))
    }
}

/// x (b, s, heads, dh) with its first `dims` of each head rotated by the (s, dims) or (b, s, dims) tables, for
/// [`super::supported`] tensors.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor, dims: usize) -> candle_core::Result<Tensor> {
    let table = |t: &Tensor| t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>();
    x.contiguous()?.apply_op1(Rope { cos: table(cos)?, sin: table(sin)?, dims, sign: 1.0 })
}
