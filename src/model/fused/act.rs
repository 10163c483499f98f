//! Activations, plain (GPT-2's tanh GeLU) and gated (SiLU or tanh GeLU times the up projection),
//! as one op each with an exact analytic derivative. candle's GeLU differentiates through a dozen
//! tensor ops (with `powf`) and 6-digit constants; a gated MLP composed of candle ops is three
//! nodes forward and five gradient tensors backward.

use super::{kernel_forward, map, no_grad, Float, Kernel};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};

const C: f64 = 0.797_884_560_802_865_4; // √(2/π)
const A: f64 = 0.044_715;

/// The activations with a fused form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// x σ(x)
    Silu,
    /// ½x(1 + tanh(√(2/π)(x + 0.044715x³)))
    GeluTanh,
}

impl Act {
    fn f(self, x: f64) -> f64 {
        match self {
            Act::Silu => x / (1.0 + (-x).exp()),
            Act::GeluTanh => 0.5 * x * (1.0 + (C * (x + A * x * x * x)).tanh()),
        }
    }

    fn df(self, x: f64) -> f64 {
        match self {
            Act::Silu => {
                let s = 1.0 / (1.0 + (-x).exp());
                s * (1.0 + x * (1.0 - s))
            }
            Act::GeluTanh => {
                let t = (C * (x + A * x * x * x)).tanh();
                0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * C * (1.0 + 3.0 * A * x * x)
            }
        }
    }
}

/// act(x) · (the second input, or 1)
struct Forward(Act);
/// [x, g] → act'(x) · g, or [a, u, g] → act'(a) · u · g
struct Derivative(Act);

impl Kernel for Forward {
    fn name(&self) -> &'static str {
        "fused-activation"
    }

    fn run<T: Float>(&self, xs: &[&[T]], _: &[usize]) -> candle_core::Result<Vec<T>> {
        let act = self.0;
        Ok(map(xs, |v| {
            let y = T::from_f64(act.f(v[0].to_f64()));
            if v.len() > 1 {
                y * v[1]
            } else {
                y
            }
        }))
    }
}

impl Kernel for Derivative {
    fn name(&self) -> &'static str {
        "fused-activation-grad"
    }

    fn run<T: Float>(&self, xs: &[&[T]], _: &[usize]) -> candle_core::Result<Vec<T>> {
        let act = self.0;
        Ok(map(xs, |v| v[1..].iter().fold(T::from_f64(act.df(v[0].to_f64())), |p, &f| p * f)))
    }
}

impl CustomOp1 for Forward {
    kernel_forward!(op => op; s l);

    fn bwd(&self, x: &Tensor, _y: &Tensor, g: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(no_grad(Derivative(self.0), &[x, g])?))
    }
}

impl CustomOp2 for Forward {
    kernel_forward!(op => op; s1 l1, s2 l2);

    fn bwd(
        &self,
        a: &Tensor,
        u: &Tensor,
        _y: &Tensor,
        g: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let da = a.track_op().then(|| no_grad(Derivative(self.0), &[a, u, g])).transpose()?;
        let du = u.track_op().then(|| no_grad(Forward(self.0), &[a, g])).transpose()?;
        Ok((da, du))
    }
}

/// act(x), for [`super::supported`] tensors.
pub fn activation(x: &Tensor, act: Act) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1(Forward(act))
}

/// act(a) ⊙ u (a gated MLP's hidden activations), for [`super::supported`] tensors of one shape.
pub fn gated(a: &Tensor, u: &Tensor, act: Act) -> candle_core::Result<Tensor> {
    a.contiguous()?.apply_op2(&u.contiguous()?, Forward(act))
}

/// GPT-2's GeLU composed of candle ops, differentiated exactly by candle's autograd (candle's
/// fused GeLU backward rounds its constants to ~6 digits): the form for devices other than the CPU.
pub fn gelu_tanh_composed(x: &Tensor) -> candle_core::Result<Tensor> {
    let inner = ((x + (x.powf(3.0)? * A)?)? * C)?;
    (x * 0.5)? * (inner.tanh()? + 1.0)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Values against the formulas, derivatives (plain and gated) against central differences, f64.
    #[test]
    fn values_and_derivatives_are_exact() -> candle_core::Result<()> {
        let xs: Vec<f64> = (0..41).map(|i| (i as f64 - 20.0) * 0.2).collect();
        let us: Vec<f64> = (0..41).map(|i| (i as f64 * 0.7).sin()).collect();
        for act in [Act::Silu, Act::GeluTanh] {
            let x = Var::from_vec(xs.clone(), 41, &Device::Cpu)?;
            let u = Var::from_vec(us.clone(), 41, &Device::Cpu)?;
            let y = activation(x.as_tensor(), act)?;
            let g = y.sum_all()?.backward()?.get(x.as_tensor()).unwrap().to_vec1::<f64>()?;
            let gated_y = gated(x.as_tensor(), u.as_tensor(), act)?;
            let grads = gated_y.sum_all()?.backward()?;
            let (ga, gu) = (
                grads.get(x.as_tensor()).unwrap().to_vec1::<f64>()?,
                grads.get(u.as_tensor()).unwrap().to_vec1::<f64>()?,
            );
            let (yv, gy) = (y.to_vec1::<f64>()?, gated_y.to_vec1::<f64>()?);
            for (i, &x) in xs.iter().enumerate() {
                let want = match act {
                    Act::Silu => x / (1.0 + (-x).exp()),
                    Act::GeluTanh => {
                        0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh())
                    }
                };
                assert!((yv[i] - want).abs() < 1e-14 && (gy[i] - want * us[i]).abs() < 1e-14);
                let h = 1e-6;
                let fd = (act.f(x + h) - act.f(x - h)) / (2.0 * h);
                assert!((g[i] - fd).abs() < 1e-8, "{act:?} at {x}: {} vs {fd}", g[i]);
                assert!((ga[i] - fd * us[i]).abs() < 1e-8 && (gu[i] - want).abs() < 1e-14, "{act:?} gated at {x}");
            }
        }
        Ok(())
    }
}
