//! Where the graph's writers and readers (ALGORITHMS.md §1) live in the forward pass, and their
//! activations and gradients stacked in graph order.
//!
//! Writers (forward index order), their outputs z_u:
//! - `input` = `hook_embed` (+ `hook_pos_embed` for learned positions), the stream entering layer 0
//! - `a{l}.h{h}` = `blocks.l.attn.hook_result[:, :, h, :]` (no output bias: it belongs to no head)
//! - `m{l}` = `blocks.l.hook_mlp_out` (its output bias included)
//!
//! Readers (backward index order), their inputs in_v:
//! - `a{l}.h{h}<q|k|v>` = `blocks.l.hook_{q,k,v}_input[:, :, h, :]` (per query head, also for K/V
//!   under grouped-query attention)
//! - `m{l}` = `blocks.l.hook_mlp_in`
//! - `logits` = `blocks.{L-1}.hook_resid_post`, the stream entering the final norm
//!
//! In every supported family in_v = Σ_{u → v} z_u + (attention output biases of earlier layers),
//! which is what makes "add z'_u − z_u into in_v" patch exactly the edge u → v.

use super::data::Batch;
use super::metric::work_dtype;
use crate::error::{Error, Result};
use crate::graph::{GraphShape, Qkv, Reader};
use crate::hooks::{ActivationCache, HookPoint, HookSet, Site, TapGradients};
use crate::model::{Decoder, ModelConfig};
use candle_core::{DType, Tensor};

/// What a writer's output becomes when it is "corrupted": z'_u.
#[derive(Clone, Debug, PartialEq)]
pub enum Ablation {
    /// z' from the corrupted prompt (activation patching)
    Patching,
    /// z' = z + α (z_corrupted − z): patching scaled by α (α = 1 is [`Ablation::Patching`]);
    /// small α probes the linear regime, where exact patching approaches EAP
    Partial { alpha: f64 },
    /// z' = 0
    Zero,
    /// z' = the writer's mean output over a reference set of token sequences: over items and
    /// positions, or (`per_position`) over items only, one mean per position.
    Mean { reference: Vec<Vec<u32>>, per_position: bool },
}

impl Ablation {
    pub fn name(&self) -> &'static str {
        match self {
            Ablation::Patching => "patching",
            Ablation::Partial { .. } => "partial-patching",
            Ablation::Zero => "zero",
            Ablation::Mean { per_position: false, .. } => "mean",
            Ablation::Mean { per_position: true, .. } => "mean-positional",
        }
    }

    /// Whether this ablation runs the corrupted prompts.
    pub fn needs_corrupted_prompts(&self) -> bool {
        matches!(self, Ablation::Patching | Ablation::Partial { .. })
    }
}

/// The hook points whose captures make up the writers' outputs.
pub fn writer_points(cfg: &ModelConfig) -> Vec<HookPoint> {
    let mut v = vec![HookPoint::Embed];
    if cfg.learned_positions() {
        v.push(HookPoint::PosEmbed);
    }
    for l in 0..cfg.n_layers {
        v.push(HookPoint::Block(l, Site::Result));
        v.push(HookPoint::Block(l, Site::MlpOut));
    }
    v
}

/// The hook points to tap for d(loss)/d(writer output): the input's gradient is the embedding's.
/// The heads' outputs are summed into the attention's output, so each head's gradient is that
/// output's: tapping it spares the pass the per-head results, (b, s, H, d) forward and backward.
pub fn writer_tap_points(cfg: &ModelConfig) -> Vec<HookPoint> {
    let mut v = vec![HookPoint::Embed];
    for l in 0..cfg.n_layers {
        v.push(HookPoint::Block(l, Site::AttnOut));
        v.push(HookPoint::Block(l, Site::MlpOut));
    }
    v
}

/// The hook points of the readers' inputs.
pub fn reader_points(cfg: &ModelConfig) -> Vec<HookPoint> {
    let mut v = Vec::with_capacity(4 * cfg.n_layers + 1);
    for l in 0..cfg.n_layers {
        for site in [Site::QInput, Site::KInput, Site::VInput, Site::MlpIn] {
            v.push(HookPoint::Block(l, site));
        }
    }
    v.push(HookPoint::Block(cfg.n_layers - 1, Site::ResidPost));
    v
}

/// The hook point of reader `r`'s input, and its head for per-head points.
pub fn reader_site(cfg: &ModelConfig, r: Reader) -> (HookPoint, Option<usize>) {
    match r {
        Reader::Head { layer, head, qkv } => {
            let site = match qkv {
                Qkv::Q => Site::QInput,
                Qkv::K => Site::KInput,
                Qkv::V => Site::VInput,
            };
            (HookPoint::Block(layer, site), Some(head))
        }
        Reader::Mlp { layer } => (HookPoint::Block(layer, Site::MlpIn), None),
        Reader::Logits => (HookPoint::Block(cfg.n_layers - 1, Site::ResidPost), None),
    }
}

/// (b, s, H, d) → (H, b, s, d)
fn heads_first(t: &Tensor) -> Result<Tensor> {
    Ok(t.permute((2, 0, 1, 3))?)
}

/// Writer outputs stacked in forward-index order: (n_fwd, b, s, d) in `dtype`.
pub fn writer_outputs(cache: &ActivationCache, cfg: &ModelConfig, dtype: DType) -> Result<Tensor> {
    let mut input = cache.get(HookPoint::Embed)?.clone();
    if cfg.learned_positions() {
        input = (input + cache.get(HookPoint::PosEmbed)?)?;
    }
    let mut parts = vec![input.unsqueeze(0)?];
    for l in 0..cfg.n_layers {
        parts.push(heads_first(cache.get(HookPoint::Block(l, Site::Result))?)?);
        parts.push(cache.get(HookPoint::Block(l, Site::MlpOut))?.unsqueeze(0)?);
    }
    Ok(Tensor::cat(&parts, 0)?.to_dtype(dtype)?)
}

/// d(loss)/d(writer output), stacked like [`writer_outputs`]: (n_fwd, b, s, d).
pub fn writer_gradients(grads: &TapGradients, cfg: &ModelConfig, dtype: DType) -> Result<Tensor> {
    let mut parts = vec![grads.get(HookPoint::Embed)?.unsqueeze(0)?];
    for l in 0..cfg.n_layers {
        let out = grads.get(HookPoint::Block(l, Site::AttnOut))?;
        parts.push(out.unsqueeze(0)?.broadcast_as((cfg.n_heads, out.dim(0)?, out.dim(1)?, out.dim(2)?))?);
        parts.push(grads.get(HookPoint::Block(l, Site::MlpOut))?.unsqueeze(0)?);
    }
    Ok(Tensor::cat(&parts, 0)?.to_dtype(dtype)?)
}

/// d(loss)/d(reader input) stacked in backward-index order: (n_bwd, b, s, d), from taps at
/// every reader point.
pub fn reader_gradients(grads: &TapGradients, cfg: &ModelConfig, dtype: DType) -> Result<Tensor> {
    let heads = (0..cfg.n_layers)
        .map(|l| {
            let parts = [Site::QInput, Site::KInput, Site::VInput]
                .map(|site| grads.get(HookPoint::Block(l, site)).and_then(heads_first));
            let parts = parts.into_iter().collect::<Result<Vec<_>>>()?;
            Ok(Tensor::cat(&parts, 0)?)
        })
        .collect::<Result<Vec<_>>>()?;
    reader_gradients_with_heads(grads, cfg, dtype, heads)
}

/// Like [`reader_gradients`], with the q/k/v readers' gradients given per layer as (3H, b, s, d)
/// and the MLP and logits readers' read from taps.
pub fn reader_gradients_with_heads(
    grads: &TapGradients,
    cfg: &ModelConfig,
    dtype: DType,
    heads: Vec<Tensor>,
) -> Result<Tensor> {
    let mut parts = Vec::with_capacity(2 * cfg.n_layers + 1);
    for (l, qkv) in heads.into_iter().enumerate() {
        parts.push(qkv.to_dtype(dtype)?);
        parts.push(grads.get(HookPoint::Block(l, Site::MlpIn))?.unsqueeze(0)?.to_dtype(dtype)?);
    }
    parts.push(grads.get(HookPoint::Block(cfg.n_layers - 1, Site::ResidPost))?.unsqueeze(0)?.to_dtype(dtype)?);
    Ok(Tensor::cat(&parts, 0)?)
}

/// The reader points tapped when the q/k/v gradients come from elsewhere: MLP inputs and logits.
pub fn non_head_reader_points(cfg: &ModelConfig) -> Vec<HookPoint> {
    let mut v: Vec<HookPoint> = (0..cfg.n_layers).map(|l| HookPoint::Block(l, Site::MlpIn)).collect();
    v.push(HookPoint::Block(cfg.n_layers - 1, Site::ResidPost));
    v
}

/// A hook set that captures every writer output.
pub fn capture_writers(cfg: &ModelConfig) -> HookSet {
    HookSet::new().capture(writer_points(cfg))
}

/// Mean writer outputs over `reference` (padded positions excluded): (n_fwd, 1, 1, d), or
/// (n_fwd, 1, s_max, d) with `per_position`. Returns the means and the forward passes run.
pub fn mean_outputs(
    decoder: &Decoder,
    reference: &[Vec<u32>],
    per_position: bool,
    batch_size: usize,
) -> Result<(Tensor, usize)> {
    let cfg = &decoder.cfg;
    let dtype = work_dtype(decoder.dtype());
    if reference.is_empty() || reference.iter().any(|r| r.is_empty()) {
        return Err(Error::input("mean ablation needs a non-empty reference set of non-empty token sequences"));
    }
    let s_max = reference.iter().map(Vec::len).max().unwrap_or(0);
    let n_fwd = GraphShape::of(cfg).n_fwd();
    let d = cfg.d_model;
    // Sums over items, per position: (n_fwd, s_max, d); counts per position.
    let dev = decoder.device();
    let mut sum = Tensor::zeros((n_fwd, s_max, d), dtype, dev)?;
    let mut counts = vec![0usize; s_max];
    let mut passes = 0;
    for chunk in reference.chunks(batch_size.max(1)) {
        let b = chunk.len();
        let s = chunk.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(b * s);
        let mut mask = Vec::with_capacity(b * s);
        for r in chunk {
            for p in 0..s {
                ids.push(r.get(p).copied().unwrap_or(super::data::PAD_TOKEN));
                mask.push(if p < r.len() { 1f32 } else { 0f32 });
            }
            counts.iter_mut().take(r.len()).for_each(|c| *c += 1);
        }
        // token ids stay on the CPU: the forward pass checks them there and moves them
        let ids = Tensor::from_vec(ids, (b, s), &candle_core::Device::Cpu)?;
        let out = decoder.forward(&ids, &capture_writers(cfg))?;
        passes += 1;
        let z = writer_outputs(&out.cache, cfg, dtype)?; // (n_fwd, b, s, d)
        let mask = Tensor::from_vec(mask, (1, b, s, 1), dev)?.to_dtype(dtype)?;
        let part = z.broadcast_mul(&mask)?.sum(1)?; // (n_fwd, s, d)
        sum = (sum + part.pad_with_zeros(1, 0, s_max - s)?)?;
    }
    let mean = if per_position {
        let inv: Vec<f64> = counts.iter().map(|&c| 1.0 / c.max(1) as f64).collect();
        let inv = Tensor::new(inv, dev)?.to_dtype(dtype)?.reshape((1, s_max, 1))?;
        sum.broadcast_mul(&inv)?.unsqueeze(1)?
    } else {
        let total: usize = counts.iter().sum();
        (sum.sum_keepdim(1)? / total as f64)?.unsqueeze(1)?
    };
    Ok((mean, passes))
}

/// z' for a batch, broadcast to the batch's shape (n_fwd, b, s, d), from precomputed means.
pub fn broadcast_means(means: &Tensor, batch: &Batch, d: usize) -> Result<Tensor> {
    let (n_fwd, _, s_ref, _) = means.dims4()?;
    let (b, s) = (batch.len(), batch.seq_len());
    let means = if s_ref == 1 {
        means.clone()
    } else if s <= s_ref {
        means.narrow(2, 0, s)?
    } else {
        return Err(Error::input(format!(
            "example {}: per-position mean ablation has means for {s_ref} positions, but these examples have {s}; \
             give reference sequences at least as long as the examples",
            batch.first_index
        )));
    };
    Ok(means.broadcast_as((n_fwd, b, s, d))?.contiguous()?)
}
