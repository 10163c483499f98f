//! Per-head reader gradients d(loss)/d(in_v) for the q/k/v inputs without materialising per-head
//! copies of the stream. Tapping `hook_{q,k,v}_input` makes the forward pass copy the stream
//! 3H times per layer (b, s, H, d); instead, tap `attn.hook_{q,k,v}` (b, s, H, dh, before the
//! rotary embedding; K/V already one per query head) and capture the attention's input x
//! (`hook_resid_pre`), then go back through the projection and the norm by hand:
//!
//!   dn_h = dq_h · W_q\[h\]                     (dh → d, the head's rows of the projection)
//!   g = dn_h ⊙ w                             (the norm's scale)
//!   LayerNorm: dx_h = (g − mean(g) − x̂ · mean(g ⊙ x̂)) / σ,   x̂ = (x − μ)/σ
//!   RMSNorm:   dx_h = (g − x̂ · mean(g ⊙ x̂)) / r,             x̂ = x/r
//!
//! Gemma's (1 + w) is already folded into the norm's weight at load time.

use crate::error::Result;
use crate::hooks::{HookPoint, Site, TapGradients};
use crate::model::{fused, Decoder, NormKind};
use candle_core::{DType, Tensor, D};

/// How the gradients at the per-head q/k/v inputs are obtained.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum QkvGradients {
    /// taps at `hook_{q,k,v}` and the projection and norm differentiated by hand (fast)
    #[default]
    Analytic,
    /// taps at `hook_{q,k,v}_input` (per-head copies of the stream; slow, the reference)
    Taps,
}

/// The hook points the analytic path taps and captures.
pub fn analytic_points(n_layers: usize) -> (Vec<HookPoint>, Vec<HookPoint>) {
    let taps = (0..n_layers).flat_map(|l| [Site::Q, Site::K, Site::V].map(|s| HookPoint::Block(l, s))).collect();
    let captures = (0..n_layers).map(|l| HookPoint::Block(l, Site::ResidPre)).collect();
    (taps, captures)
}

/// d(loss)/d(q, k, v inputs) of layer `l` for every head: (3H, b, s, d) in backward order
/// (q heads, k heads, v heads). `x` (b, s, d) is the attention's input, the stream before the norm.
pub fn head_input_gradients(
    decoder: &Decoder,
    l: usize,
    x: &Tensor,
    grads: &TapGradients,
    dtype: DType,
) -> Result<Tensor> {
    let cfg = &decoder.cfg;
    let attn = &decoder.blocks[l].attn;
    let (b, s, d) = x.dims3()?;
    let (h, dh) = (cfg.n_heads, cfg.d_head);
    let group = cfg.n_heads / cfg.n_kv_heads;
    let x = x.to_dtype(dtype)?.reshape((b * s, d))?;
    let w = attn.norm.weight.to_dtype(dtype)?;
    let layer_norm = cfg.norm == NormKind::LayerNorm;
    // CPU: one fused pass per projection; elsewhere the norm's backward composed, with its
    // forward quantities shared by every head: x̂ and 1/σ (b·s, 1).
    let shared = if fused::supported(&x) {
        None
    } else if layer_norm {
        let xc = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
        let inv = (xc.sqr()?.mean_keepdim(D::Minus1)? + cfg.norm_eps)?.sqrt()?.recip()?;
        Some((xc.broadcast_mul(&inv)?, inv))
    } else {
        let inv = (x.sqr()?.mean_keepdim(D::Minus1)? + cfg.norm_eps)?.sqrt()?.recip()?;
        Some((x.broadcast_mul(&inv)?, inv))
    };
    let mut parts = Vec::with_capacity(3);
    for (site, weight, heads) in
        [(Site::Q, &attn.wq, h), (Site::K, &attn.wk, cfg.n_kv_heads), (Site::V, &attn.wv, cfg.n_kv_heads)]
    {
        // (heads·dh, d) → (heads, dh, d), then one matrix per query head
        let mut wh = weight.to_dtype(dtype)?.reshape((heads, dh, d))?;
        if heads != h {
            let idx: Vec<u32> = (0..h as u32).map(|q| q / group as u32).collect();
            wh = wh.index_select(&Tensor::new(idx, x.device())?, 0)?;
        }
        // (b, s, H, dh) → (H, b·s, dh) · (H, dh, d) → (H, b·s, d)
        let g = grads.get(HookPoint::Block(l, site))?.to_dtype(dtype)?;
        let g = g.permute((2, 0, 1, 3))?.contiguous()?.reshape((h, b * s, dh))?;
        let dn = g.matmul(&wh)?;
        let dx = match &shared {
            None => fused::norm::norm_input_grads(&dn, &x, &w, cfg.norm_eps, layer_norm)?,
            Some((xhat, inv)) => {
                let g = dn.broadcast_mul(&w)?;
                let proj = g.broadcast_mul(xhat)?.mean_keepdim(D::Minus1)?; // (H, b·s, 1)
                let mut dx = g.broadcast_sub(&xhat.broadcast_mul(&proj)?)?;
                if layer_norm {
                    dx = dx.broadcast_sub(&g.mean_keepdim(D::Minus1)?)?;
                }
                dx.broadcast_mul(inv)?
            }
        };
        parts.push(dx.reshape((h, b, s, d))?);
    }
    Ok(Tensor::cat(&parts, 0)?)
}
