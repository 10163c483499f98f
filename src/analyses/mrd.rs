//! MRD, the memorisation-by-weight-perturbation baseline of the CUD reference (ALGORITHMS.md §5;
//! Feng et al. 2025, "memory removal difficulty"): how much a sample's answer loss moves when
//! every weight is perturbed by Gaussian noise. Reconstructed as
//! MRD(x) = mean over K draws ε_k ~ N(0, σ² I) of |ℓ(θ + ε_k; x) − ℓ(θ; x)| / ℓ(θ; x),
//! ℓ the mean answer NLL per token (K = 100, σ = 1e-5 as in the reference).

use crate::data::Example;
use crate::error::Result;
use crate::progress::Progress;
use crate::rng::Rng;
use crate::train::Trainable;
use crate::unlearn::anchors::sample_nll;
use candle_core::Tensor;
use serde::Serialize;

#[derive(Clone, Copy, Debug, Serialize)]
pub struct MrdSettings {
    /// perturbations drawn
    pub draws: usize,
    /// the noise's standard deviation
    pub sigma: f64,
    pub seed: u64,
    /// samples per forward pass
    pub batch: usize,
}

impl Default for MrdSettings {
    fn default() -> Self {
        MrdSettings { draws: 100, sigma: 1e-5, seed: 42, batch: 8 }
    }
}

/// MRD of every example (see the module documentation). The model's weights are perturbed in
/// place and restored bit for bit before returning, also on error.
pub fn mrd(model: &Trainable, examples: &[Example], s: &MrdSettings, progress: &dyn Progress) -> Result<Vec<f64>> {
    let originals: Vec<Tensor> =
        model.vars.values().map(|v| v.as_tensor().copy()).collect::<candle_core::Result<_>>()?;
    let result = perturbed_losses(model, examples, s, &originals, progress);
    for (v, t) in model.vars.values().zip(&originals) {
        v.set(t)?;
    }
    let (base, draws) = result?;
    Ok(base
        .iter()
        .enumerate()
        .map(|(i, &b)| draws.iter().map(|d| (d[i] - b).abs()).sum::<f64>() / draws.len().max(1) as f64 / b.max(1e-12))
        .collect())
}

/// The losses at θ, and at θ + ε_k for each draw.
fn perturbed_losses(
    model: &Trainable,
    examples: &[Example],
    s: &MrdSettings,
    originals: &[Tensor],
    progress: &dyn Progress,
) -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
    let base = sample_nll(&model.decoder()?, examples, s.batch)?;
    let mut rng = Rng::stream(s.seed, "mrd");
    let mut draws = Vec::with_capacity(s.draws);
    for k in 0..s.draws {
        for (v, t) in model.vars.values().zip(originals) {
            let noise: Vec<f32> = (0..t.elem_count()).map(|_| (rng.normal() * s.sigma) as f32).collect();
            v.set(&(t + Tensor::from_vec(noise, t.shape(), t.device())?)?)?;
        }
        // the decoder's transposed and split weights are copies: build it anew from the vars
        draws.push(sample_nll(&model.decoder()?, examples, s.batch)?);
        progress.update(k as u64 + 1, s.draws as u64);
    }
    Ok((base, draws))
}
