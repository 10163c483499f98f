//! AdamW with one fused in-place pass per parameter on the CPU. candle's `AdamW` computes each
//! update as a dozen tensor ops, each allocating a parameter-sized tensor, then copies three
//! results back: on SmolLM2's 134 M parameters that is most of a training step. This is the same
//! update (candle's arithmetic, in the parameter's dtype), reading the gradient once and writing
//! parameter and moments in place. Other devices and dtypes take candle's formula unchanged.

use candle_core::backprop::GradStore;
use candle_core::{bail, CpuStorage, DType, InplaceOp2, Layout, Tensor, Var};
use candle_nn::{Optimizer, ParamsAdamW};
use rayon::prelude::*;
use std::sync::Mutex;

/// First and second moments of one parameter.
enum Moments {
    F32(Vec<f32>, Vec<f32>),
    F64(Vec<f64>, Vec<f64>),
    /// any other device or dtype: candle tensors
    Tensors(Tensor, Tensor),
}

struct Slot {
    var: Var,
    moments: Mutex<Moments>,
}

pub struct FusedAdamW {
    slots: Vec<Slot>,
    params: ParamsAdamW,
    step_t: i32,
}

/// This step's constants, shared by every parameter.
#[derive(Clone, Copy)]
struct Step {
    lr: f64,
    decay: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    scale_m: f64,
    scale_v: f64,
}

/// θ ← θ(1 − lr·λ) − lr · m̂/(√v̂ + ε) in place on θ, given the gradient; the moments live in the op.
struct Update<'a> {
    step: Step,
    moments: &'a Mutex<Moments>,
}

const CHUNK: usize = 1 << 14;

fn update<T: candle_core::WithDType + crate::model::fused::Float>(
    s: Step,
    theta: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
) {
    let c = |x: f64| T::from_f64(x);
    let (b1, b2, one_b1, one_b2) = (c(s.beta1), c(s.beta2), c(1.0 - s.beta1), c(1.0 - s.beta2));
    let (sm, sv, keep, lr, eps) = (c(s.scale_m), c(s.scale_v), c(1.0 - s.lr * s.decay), c(s.lr), c(s.eps));
    theta
        .par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK))
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .for_each(|(((theta, g), m), v)| {
            for i in 0..theta.len() {
                m[i] = m[i] * b1 + g[i] * one_b1;
                v[i] = v[i] * b2 + g[i] * g[i] * one_b2;
                let adjusted = (m[i] * sm) / ((v[i] * sv).sqrt() + eps);
                theta[i] = theta[i] * keep - adjusted * lr;
            }
        });
}

impl InplaceOp2 for Update<'_> {
    fn name(&self) -> &'static str {
        "fused-adamw"
    }

    fn cpu_fwd(&self, dst: &mut CpuStorage, dst_l: &Layout, g: &CpuStorage, g_l: &Layout) -> candle_core::Result<()> {
        let (Some((a, b)), Some((ga, gb))) = (dst_l.contiguous_offsets(), g_l.contiguous_offsets()) else {
            bail!("fused-adamw: parameter and gradient must be contiguous")
        };
        let mut moments =
            self.moments.lock().map_err(|_| candle_core::Error::Msg("fused-adamw: poisoned moments".into()))?;
        match (dst, g, &mut *moments) {
            (CpuStorage::F32(t), CpuStorage::F32(g), Moments::F32(m, v)) => {
                update(self.step, &mut t[a..b], &g[ga..gb], m, v)
            }
            (CpuStorage::F64(t), CpuStorage::F64(g), Moments::F64(m, v)) => {
                update(self.step, &mut t[a..b], &g[ga..gb], m, v)
            }
            _ => bail!("fused-adamw: parameter, gradient and moments must share one float dtype"),
        }
        Ok(())
    }
}

impl FusedAdamW {
    /// The optimiser's state, to resume a run: the steps taken, and each parameter's first and
    /// second moments (as tensors of its shape, in the order the parameters were given).
    pub fn state(&self) -> candle_core::Result<(i32, Vec<(Tensor, Tensor)>)> {
        let moments = self
            .slots
            .iter()
            .map(|slot| {
                let guard =
                    slot.moments.lock().map_err(|_| candle_core::Error::Msg("fused-adamw: poisoned moments".into()))?;
                let shape = slot.var.shape();
                let as_tensor = |x: &[f32]| Tensor::from_slice(x, shape, &candle_core::Device::Cpu);
                let as_tensor64 = |x: &[f64]| Tensor::from_slice(x, shape, &candle_core::Device::Cpu);
                Ok(match &*guard {
                    Moments::F32(m, v) => (as_tensor(m)?, as_tensor(v)?),
                    Moments::F64(m, v) => (as_tensor64(m)?, as_tensor64(v)?),
                    Moments::Tensors(m, v) => (m.copy()?, v.copy()?),
                })
            })
            .collect::<candle_core::Result<_>>()?;
        Ok((self.step_t, moments))
    }

    /// Puts back a [`FusedAdamW::state`] of the same parameters: the next step continues the run
    /// as if it had never stopped.
    pub fn restore(&mut self, step_t: i32, moments: &[(Tensor, Tensor)]) -> candle_core::Result<()> {
        if moments.len() != self.slots.len() {
            bail!("the optimiser state has {} parameters, this run {}", moments.len(), self.slots.len())
        }
        for (slot, (m, v)) in self.slots.iter().zip(moments) {
            if m.shape() != slot.var.shape() || v.shape() != slot.var.shape() {
                bail!("the optimiser state's moments have shape {:?}, the parameter {:?}", m.shape(), slot.var.shape())
            }
            let mut guard =
                slot.moments.lock().map_err(|_| candle_core::Error::Msg("fused-adamw: poisoned moments".into()))?;
            let flat = |t: &Tensor| t.to_dtype(slot.var.dtype())?.flatten_all();
            *guard = match &*guard {
                Moments::F32(..) => Moments::F32(flat(m)?.to_vec1()?, flat(v)?.to_vec1()?),
                Moments::F64(..) => Moments::F64(flat(m)?.to_vec1()?, flat(v)?.to_vec1()?),
                Moments::Tensors(..) => Moments::Tensors(
                    m.to_dtype(slot.var.dtype())?.to_device(slot.var.device())?,
                    v.to_dtype(slot.var.dtype())?.to_device(slot.var.device())?,
                ),
            };
        }
        self.step_t = step_t;
        Ok(())
    }
}

impl Optimizer for FusedAdamW {
    type Config = ParamsAdamW;

    fn new(vars: Vec<Var>, params: ParamsAdamW) -> candle_core::Result<Self> {
        let slots = vars
            .into_iter()
            .filter(|v| v.dtype().is_float())
            .map(|var| {
                let n = var.elem_count();
                let cpu = var.device().is_cpu() && var.is_contiguous();
                let moments = match var.dtype() {
                    DType::F32 if cpu => Moments::F32(vec![0.0; n], vec![0.0; n]),
                    DType::F64 if cpu => Moments::F64(vec![0.0; n], vec![0.0; n]),
                    _ => Moments::Tensors(var.zeros_like()?, var.zeros_like()?),
                };
                Ok(Slot { var, moments: Mutex::new(moments) })
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(FusedAdamW { slots, params, step_t: 0 })
    }

    fn learning_rate(&self) -> f64 {
        self.params.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.params.lr = lr
    }

    fn step(&mut self, grads: &GradStore) -> candle_core::Result<()> {
        self.step_t += 1;
        let p = &self.params;
        let step = Step {
            lr: p.lr,
            decay: p.weight_decay,
            beta1: p.beta1,
            beta2: p.beta2,
            eps: p.eps,
            scale_m: 1.0 / (1.0 - p.beta1.powi(self.step_t)),
            scale_v: 1.0 / (1.0 - p.beta2.powi(self.step_t)),
        };
        for slot in &self.slots {
            let Some(g) = grads.get(slot.var.as_tensor()) else { continue };
            let mut moments =
                slot.moments.lock().map_err(|_| candle_core::Error::Msg("fused-adamw: poisoned moments".into()))?;
            if let Moments::Tensors(m, v) = &mut *moments {
                // candle's AdamW, term for term
                let next_m = ((&*m * step.beta1)? + (g * (1.0 - step.beta1))?)?;
                let next_v = ((&*v * step.beta2)? + (g.sqr()? * (1.0 - step.beta2))?)?;
                let adjusted = ((&next_m * step.scale_m)? / ((&next_v * step.scale_v)?.sqrt()? + step.eps)?)?;
                let theta = ((slot.var.as_tensor() * (1.0 - step.lr * step.decay))? - (adjusted * step.lr)?)?;
                slot.var.set(&theta)?;
                (*m, *v) = (next_m, next_v);
                continue;
            }
            drop(moments);
            let g = g.contiguous()?;
            slot.var.as_tensor().inplace_op2(&g, &Update { step, moments: &slot.moments })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::AdamW;

    /// Five steps on the same gradients: bit for bit candle's AdamW (f32 and f64).
    #[test]
    fn equals_candles_adamw() -> candle_core::Result<()> {
        for dtype in [DType::F32, DType::F64] {
            let init: Vec<f64> = (0..70_000).map(|i| ((i as f64) * 0.37).sin()).collect();
            let make =
                || Var::from_tensor(&Tensor::new(init.as_slice(), &Device::Cpu)?.to_dtype(dtype)?.reshape((700, 100))?);
            let (a, b) = (make()?, make()?);
            let params = ParamsAdamW { lr: 1e-2, weight_decay: 0.1, ..Default::default() };
            let (mut fused, mut plain) =
                (FusedAdamW::new(vec![a.clone()], params.clone())?, AdamW::new(vec![b.clone()], params)?);
            for k in 0..5 {
                let target = (Tensor::new(init.as_slice(), &Device::Cpu)?.to_dtype(dtype)?.reshape((700, 100))?
                    * (k as f64 - 2.0))?;
                let loss = |v: &Var| (v.as_tensor() - &target)?.sqr()?.sum_all();
                fused.backward_step(&loss(&a)?)?;
                plain.backward_step(&loss(&b)?)?;
            }
            let d = (a.as_tensor() - b.as_tensor())?.abs()?.max_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            assert!(d == 0.0, "{dtype:?}: fused and candle's AdamW differ by {d}");
        }
        Ok(())
    }

    /// Three steps, the state taken into a fresh optimiser over a copy of the parameter, two more
    /// steps on each: bit for bit the same parameter.
    #[test]
    fn a_restored_state_continues_the_run() -> candle_core::Result<()> {
        let init: Vec<f32> = (0..5_000).map(|i| ((i as f32) * 0.37).sin()).collect();
        let target = Tensor::new(init.as_slice(), &Device::Cpu)?.reshape((50, 100))?.cos()?;
        let loss = |v: &Var| (v.as_tensor() - &target)?.sqr()?.sum_all();
        let a = Var::from_tensor(&Tensor::new(init.as_slice(), &Device::Cpu)?.reshape((50, 100))?)?;
        let params = ParamsAdamW { lr: 1e-2, weight_decay: 0.1, ..Default::default() };
        let mut first = FusedAdamW::new(vec![a.clone()], params.clone())?;
        for _ in 0..3 {
            first.backward_step(&loss(&a)?)?;
        }
        let (t, moments) = first.state()?;
        assert_eq!(t, 3);
        let b = Var::from_tensor(&a.as_tensor().copy()?)?;
        let mut second = FusedAdamW::new(vec![b.clone()], params)?;
        second.restore(t, &moments)?;
        for _ in 0..2 {
            first.backward_step(&loss(&a)?)?;
            second.backward_step(&loss(&b)?)?;
        }
        let d = (a.as_tensor() - b.as_tensor())?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(d == 0.0, "the resumed optimiser differs by {d}");
        assert!(second.restore(1, &moments[..0]).is_err());
        Ok(())
    }
}
