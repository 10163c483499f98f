//! Next-token cross-entropy as one op with a hand-written backward, (softmax − one-hot) · weight:
//! two passes over the (tokens, vocabulary) logits instead of the dozen that the composed
//! log-softmax, gather and mask (and their backward) cost.

use crate::error::{Error, Result};
use candle_core::{bail, CpuStorage, CustomOp1, DType, Layout, Shape, Tensor, D};

struct CrossEntropy {
    targets: Vec<u32>,
    /// per row: mask / (sum of the mask)
    weights: Vec<f32>,
}

impl CrossEntropy {
    fn rows<'a>(&self, s: &'a CpuStorage, l: &Layout) -> candle_core::Result<(&'a [f32], usize)> {
        let CpuStorage::F32(v) = s else { bail!("cross-entropy: logits must be f32") };
        let Some((a, b)) = l.contiguous_offsets() else { bail!("cross-entropy: logits must be contiguous") };
        let vocab = l.dims()[l.dims().len() - 1];
        Ok((&v[a..b], vocab))
    }
}

/// log Σ exp(row), stably.
fn log_sum_exp(row: &[f32]) -> f32 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    max + row.iter().map(|&x| (x - max).exp()).sum::<f32>().ln()
}

impl CustomOp1 for CrossEntropy {
    fn name(&self) -> &'static str {
        "masked-cross-entropy"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (v, vocab) = self.rows(s, l)?;
        let mut total = 0f64;
        for (i, row) in v.chunks(vocab).enumerate() {
            if self.weights[i] != 0.0 {
                let nll = log_sum_exp(row) - row[self.targets[i] as usize];
                total += (nll * self.weights[i]) as f64;
            }
        }
        Ok((CpuStorage::F32(vec![total as f32]), Shape::from(())))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let g = grad.to_scalar::<f32>()?;
        let (storage, layout) = arg.storage_and_layout();
        let candle_core::Storage::Cpu(s) = &*storage else { bail!("cross-entropy: expected CPU storage") };
        let (v, vocab) = self.rows(s, layout)?;
        let mut out = vec![0f32; v.len()];
        for (i, (row, o)) in v.chunks(vocab).zip(out.chunks_mut(vocab)).enumerate() {
            let w = self.weights[i] * g;
            if w == 0.0 {
                continue;
            }
            let lse = log_sum_exp(row);
            for (x, y) in row.iter().zip(o.iter_mut()) {
                *y = (x - lse).exp() * w;
            }
            o[self.targets[i] as usize] -= w;
        }
        Ok(Some(Tensor::from_vec(out, arg.shape(), arg.device())?))
    }
}

/// Mean next-token cross-entropy of `logits` (b, t, V) against `targets` (b, t), weighted by
/// `mask` (b, t): Σ mask · nll / Σ mask (a 0/1 mask: the mean over the positions where it is 1).
pub fn masked_cross_entropy(logits: &Tensor, targets: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let (b, t, v) = logits.dims3()?;
    let targets: Vec<u32> = targets.flatten_all()?.to_vec1()?;
    let mask: Vec<f32> = mask.flatten_all()?.to_vec1()?;
    if targets.len() != b * t || mask.len() != b * t {
        return Err(Error::input("cross-entropy: targets and mask must have the logits' (batch, seq) shape"));
    }
    if let Some(&bad) = targets.iter().find(|&&x| x as usize >= v) {
        return Err(Error::input(format!("cross-entropy: target {bad} is outside the vocabulary of {v}")));
    }
    if mask.iter().any(|&m| m < 0.0 || !m.is_finite()) {
        return Err(Error::input("cross-entropy: the loss mask must be non-negative and finite"));
    }
    // a 0/1 mask sums exactly to its count of ones: the plain mean, bit for bit
    let n = mask.iter().sum::<f32>();
    let n = if n > 0.0 { n } else { 1.0 };
    let weights: Vec<f32> = mask.iter().map(|m| m / n).collect();
    let flat = logits.reshape((b * t, v))?.contiguous()?;
    if !flat.device().is_cpu() {
        // The fused op has no GPU kernel: the same loss composed of candle ops, which autograd
        // differentiates on any device.
        let dev = flat.device();
        let log_probs = candle_nn::ops::log_softmax(&flat.to_dtype(DType::F32)?, D::Minus1)?;
        let picked = log_probs.gather(&Tensor::from_vec(targets, (b * t, 1), dev)?, 1)?.squeeze(1)?;
        return Ok((picked * Tensor::from_vec(weights, b * t, dev)?)?.sum_all()?.neg()?);
    }
    Ok(flat.apply_op1(CrossEntropy { targets, weights })?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var, D};

    /// The fused op against candle's composed log-softmax: same value, same gradient.
    #[test]
    fn matches_the_composed_loss_and_its_gradient() -> Result<()> {
        let dev = &Device::Cpu;
        let data: Vec<f32> = (0..2 * 3 * 7).map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.4).collect();
        let targets = Tensor::new(&[[1u32, 6, 0], [3, 3, 2]], dev)?;
        let mask = Tensor::new(&[[1f32, 1.0, 0.0], [1.0, 0.0, 1.0]], dev)?;
        let x = Var::from_vec(data, (2, 3, 7), dev)?;
        let fused = masked_cross_entropy(x.as_tensor(), &targets, &mask)?;
        let g1 = fused.backward()?.get(x.as_tensor()).unwrap().clone();
        let logp = candle_nn::ops::log_softmax(x.as_tensor(), D::Minus1)?;
        let picked = logp.gather(&targets.unsqueeze(2)?, 2)?.squeeze(2)?;
        let composed = ((picked * &mask)?.sum_all()?.neg()? / 4.0)?;
        let g2 = composed.backward()?.get(x.as_tensor()).unwrap().clone();
        let dv = (fused.to_scalar::<f32>()? - composed.to_scalar::<f32>()?).abs();
        let dg = (g1 - g2)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
        assert!(dv < 1e-5 && dg < 1e-6, "value diff {dv}, gradient diff {dg}");
        Ok(())
    }

    /// A weighted mask gives the weighted mean, Σ w · nll / Σ w, and its gradient.
    #[test]
    fn a_weighted_mask_gives_the_weighted_mean() -> Result<()> {
        let dev = &Device::Cpu;
        let data: Vec<f32> = (0..2 * 2 * 5).map(|i| ((i * 29 % 13) as f32 - 6.0) * 0.3).collect();
        let targets = Tensor::new(&[[1u32, 4], [0, 2]], dev)?;
        let mask = Tensor::new(&[[1f32, 3.0], [0.0, 0.5]], dev)?;
        let x = Var::from_vec(data, (2, 2, 5), dev)?;
        let fused = masked_cross_entropy(x.as_tensor(), &targets, &mask)?;
        let g1 = fused.backward()?.get(x.as_tensor()).unwrap().clone();
        let logp = candle_nn::ops::log_softmax(x.as_tensor(), D::Minus1)?;
        let picked = logp.gather(&targets.unsqueeze(2)?, 2)?.squeeze(2)?;
        let composed = ((picked * &mask)?.sum_all()?.neg()? / 4.5)?;
        let g2 = composed.backward()?.get(x.as_tensor()).unwrap().clone();
        let dv = (fused.to_scalar::<f32>()? - composed.to_scalar::<f32>()?).abs();
        let dg = (g1 - g2)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
        assert!(dv < 1e-5 && dg < 1e-6, "value diff {dv}, gradient diff {dg}");
        let negative = Tensor::new(&[[1f32, -1.0], [0.0, 0.5]], dev)?;
        assert!(masked_cross_entropy(x.as_tensor(), &targets, &negative).is_err());
        Ok(())
    }
}
