//! x · R for a right operand R (a weight) that takes no gradient. candle's matmul backward
//! always computes the gradient of both operands, which for a weight is a weight-sized matmul and
//! allocation nobody reads; gradient taps need only the input's gradient, grad · Rᵀ, which this op
//! gives.

use candle_core::{bail, CpuStorage, CustomOp1, Device, Layout, Shape, Storage, Tensor};

struct ConstRhsMatmul {
    rhs: Tensor,
}

impl CustomOp1 for ConstRhsMatmul {
    fn name(&self) -> &'static str {
        "const-rhs-matmul"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let Some((a, b)) = l.contiguous_offsets() else { bail!("const-rhs-matmul: the input must be contiguous") };
        let dev = &Device::Cpu;
        let x = match s {
            CpuStorage::F32(v) => Tensor::from_slice(&v[a..b], l.shape(), dev)?,
            CpuStorage::F64(v) => Tensor::from_slice(&v[a..b], l.shape(), dev)?,
            CpuStorage::BF16(v) => Tensor::from_slice(&v[a..b], l.shape(), dev)?,
            CpuStorage::F16(v) => Tensor::from_slice(&v[a..b], l.shape(), dev)?,
            _ => bail!("const-rhs-matmul: only float inputs are supported"),
        };
        let y = x.matmul(&self.rhs)?.contiguous()?;
        let shape = y.shape().clone();
        let (storage, layout) = y.storage_and_layout();
        let Storage::Cpu(c) = &*storage else { bail!("const-rhs-matmul: expected CPU storage") };
        if layout.contiguous_offsets() != Some((0, shape.elem_count())) {
            bail!("const-rhs-matmul: unexpected matmul output layout")
        }
        Ok((c.clone(), shape))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad.matmul(&self.rhs.t()?)?))
    }
}

/// x · rhs (batched like `Tensor::matmul`); when x carries gradients and rhs does not, rhs's
/// gradient is never computed. On a GPU (the op has no CUDA path) this is candle's matmul, whose
/// backward also computes the unused weight gradient: correct, one extra matmul per weight.
pub fn matmul_const(x: &Tensor, rhs: &Tensor) -> candle_core::Result<Tensor> {
    if x.track_op() && !rhs.track_op() && x.device().is_cpu() {
        x.contiguous()?.apply_op1(ConstRhsMatmul { rhs: rhs.clone() })
    } else {
        x.matmul(rhs)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_values::t;
    use super::*;
    use candle_core::{DType, Var};

    #[test]
    fn same_values_and_input_gradient_as_matmul_and_weight_gradients_when_asked() {
        let x = Var::from_tensor(&t(&[3, 4, 5], 1.0)).unwrap();
        let w = t(&[3, 5, 2], 2.0);
        let y = matmul_const(x.as_tensor(), &w).unwrap();
        let want = x.as_tensor().matmul(&w).unwrap();
        assert_eq!(y.to_vec3::<f64>().unwrap(), want.to_vec3::<f64>().unwrap());
        let g = y.sum_all().unwrap().backward().unwrap();
        let g_want = want.sum_all().unwrap().backward().unwrap();
        let (a, b) = (g.get(x.as_tensor()).unwrap(), g_want.get(x.as_tensor()).unwrap());
        assert_eq!(a.to_vec3::<f64>().unwrap(), b.to_vec3::<f64>().unwrap());
        assert!(g.get(&w).is_none(), "a constant weight gets no gradient");

        // A weight that is a variable (training, unlearning) still gets its gradient.
        let wv = Var::from_tensor(&w).unwrap();
        let g = matmul_const(x.as_tensor(), wv.as_tensor()).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(g.get(wv.as_tensor()).is_some());
        assert_eq!(g.get(x.as_tensor()).unwrap().dtype(), DType::F64);
    }
}
