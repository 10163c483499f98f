//! GeLU (tanh approximation, GPT-2's `gelu_new`) as one op with its analytic derivative. candle's
//! own GeLU differentiates through a dozen tensor ops (with `powf`) and 6-digit constants; this
//! is one pass forward and one backward, exact to rounding.

use candle_core::{bail, CpuStorage, CustomOp1, Layout, Shape, Tensor, WithDType};

const C: f64 = 0.797_884_560_802_865_4; // √(2/π)
const A: f64 = 0.044_715;

struct GeluTanh;

/// The derivative, as an op of its own (used only inside the backward pass).
struct GeluTanhGrad;

fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + (C * (x + A * x * x * x)).tanh())
}

fn gelu_grad(x: f64) -> f64 {
    let t = (C * (x + A * x * x * x)).tanh();
    0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * C * (1.0 + 3.0 * A * x * x)
}

fn map<T: WithDType>(v: &[T], f: fn(f64) -> f64) -> Vec<T> {
    v.iter().map(|x| T::from_f64(f(x.to_f64()))).collect()
}

fn apply(s: &CpuStorage, l: &Layout, f: fn(f64) -> f64) -> candle_core::Result<CpuStorage> {
    let Some((a, b)) = l.contiguous_offsets() else { bail!("gelu: the input must be contiguous") };
    Ok(match s {
        CpuStorage::F32(v) => CpuStorage::F32(map(&v[a..b], f)),
        CpuStorage::F64(v) => CpuStorage::F64(map(&v[a..b], f)),
        CpuStorage::BF16(v) => CpuStorage::BF16(map(&v[a..b], f)),
        CpuStorage::F16(v) => CpuStorage::F16(map(&v[a..b], f)),
        _ => bail!("gelu: only float inputs are supported"),
    })
}

impl CustomOp1 for GeluTanh {
    fn name(&self) -> &'static str {
        "gelu-tanh"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        Ok((apply(s, l, gelu)?, l.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let d = arg.contiguous()?.apply_op1_no_bwd(&GeluTanhGrad)?;
        Ok(Some(grad.mul(&d)?))
    }
}

impl CustomOp1 for GeluTanhGrad {
    fn name(&self) -> &'static str {
        "gelu-tanh-grad"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        Ok((apply(s, l, gelu_grad)?, l.shape().clone()))
    }
}

/// GPT-2's GeLU with an exact one-op backward on the CPU. On a GPU (the op has no CUDA kernel)
/// it is [`gelu_tanh_composed`]: the same function and derivative, in several candle kernels.
pub fn gelu_tanh(x: &Tensor) -> candle_core::Result<Tensor> {
    if x.device().is_cpu() {
        x.contiguous()?.apply_op1(GeluTanh)
    } else {
        gelu_tanh_composed(x)
    }
}

/// ½x(1 + tanh(√(2/π)(x + 0.044715x³))) composed of candle ops, differentiated exactly by
/// candle's autograd (candle's fused GeLU backward rounds its constants to ~6 digits).
pub fn gelu_tanh_composed(x: &Tensor) -> candle_core::Result<Tensor> {
    let c = (2.0 / std::f64::consts::PI).sqrt();
    let inner = ((x + (x.powf(3.0)? * A)?)? * c)?;
    (x * 0.5)? * (inner.tanh()? + 1.0)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Value against the formula's composition, derivative against central differences (f64).
    #[test]
    fn value_and_derivative_are_exact() -> candle_core::Result<()> {
        let xs: Vec<f64> = (0..41).map(|i| (i as f64 - 20.0) * 0.2).collect();
        let x = Var::from_vec(xs.clone(), 41, &Device::Cpu)?;
        let y = gelu_tanh(x.as_tensor())?;
        let g = y.sum_all()?.backward()?.get(x.as_tensor()).unwrap().to_vec1::<f64>()?;
        let yv = y.to_vec1::<f64>()?;
        for (i, &x) in xs.iter().enumerate() {
            let composed = 0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh());
            assert!((yv[i] - composed).abs() < 1e-14);
            let h = 1e-6;
            let fd = (gelu(x + h) - gelu(x - h)) / (2.0 * h);
            assert!((g[i] - fd).abs() < 1e-8, "x = {x}: {} vs {fd}", g[i]);
        }
        Ok(())
    }
}
