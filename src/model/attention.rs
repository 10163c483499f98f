//! Multi-head attention with grouped-query support, firing every attention hook point.
//! Per-head q/k/v inputs and per-head results are only materialised when a hook asks for them.

use super::config::ModelConfig;
use super::naming::W;
use super::norm::Norm;
use super::ops::{matmul_const, Ops};
use super::rotary::Rotary;
use super::weights::Weights;
use crate::error::Result;
use crate::hooks::{HookPoint, HookRun, Site};
use candle_core::Tensor;

#[derive(Clone)]
pub struct Attention {
    pub norm: Norm,
    /// (H·dh, d), (KV·dh, d), (KV·dh, d), (d, H·dh)
    pub wq: Tensor,
    pub wk: Tensor,
    pub wv: Tensor,
    pub wo: Tensor,
    pub bq: Option<Tensor>,
    pub bk: Option<Tensor>,
    pub bv: Option<Tensor>,
    pub bo: Option<Tensor>,
    n_heads: usize,
    n_kv_heads: usize,
    d_head: usize,
    scale: f64,
    sliding_window: Option<usize>,
    /// query head → its key/value head, for grouped-query attention
    kv_index: Option<Tensor>,
}

/// Shared per-pass inputs of every attention layer.
pub struct AttnContext<'a> {
    pub rope: Option<(&'a Rotary, Tensor, Tensor)>,
    /// (s, s) additive mask: 0 where a query may attend, −inf elsewhere; (b, 1, s, s_k) in a
    /// padded batch
    pub mask: Tensor,
    /// the sliding window the mask applies, if any
    pub window: Option<usize>,
    pub ops: Ops,
}

impl Attention {
    pub fn new(cfg: &ModelConfig, ws: &Weights, l: usize) -> Result<Self> {
        let qkv = ws.qkv(l)?;
        let d = cfg.d_model;
        let nq = cfg.n_heads * cfg.d_head;
        let group = cfg.n_heads / cfg.n_kv_heads;
        let kv_index = (group > 1)
            .then(|| {
                let idx: Vec<u32> = (0..cfg.n_heads as u32).map(|h| h / group as u32).collect();
                Tensor::new(idx, &ws.device)
            })
            .transpose()?;
        Ok(Attention {
            norm: Norm::new(cfg, ws, W::AttnNorm, W::AttnNormBias, l)?,
            wq: qkv.q.0,
            bq: qkv.q.1,
            wk: qkv.k.0,
            bk: qkv.k.1,
            wv: qkv.v.0,
            bv: qkv.v.1,
            wo: ws.linear(W::O, l, d, nq)?,
            bo: ws.optional(W::OBias, l, &[d], cfg.o_bias)?,
            n_heads: cfg.n_heads,
            n_kv_heads: cfg.n_kv_heads,
            d_head: cfg.d_head,
            scale: cfg.attn_scale(),
            sliding_window: cfg.sliding_window,
            kv_index,
        })
    }

    /// (s, s) additive causal mask, limited to the sliding window if the model has one.
    pub fn mask(
        s: usize,
        sliding_window: Option<usize>,
        dtype: candle_core::DType,
        device: &candle_core::Device,
    ) -> Result<Tensor> {
        Self::mask_after(0, s, sliding_window, dtype, device)
    }

    /// (s, offset + s) additive causal mask of `s` queries at positions `offset..offset + s`
    /// over every key up to them, limited to the sliding window if the model has one.
    pub fn mask_after(
        offset: usize,
        s: usize,
        sliding_window: Option<usize>,
        dtype: candle_core::DType,
        device: &candle_core::Device,
    ) -> Result<Tensor> {
        let n = offset + s;
        let mut m = vec![0f32; s * n];
        for i in 0..s {
            let q = offset + i;
            for j in 0..n {
                let outside = j > q || sliding_window.is_some_and(|w| q - j >= w);
                if outside {
                    m[i * n + j] = f32::NEG_INFINITY;
                }
            }
        }
        Ok(Tensor::from_vec(m, (s, n), device)?.to_dtype(dtype)?)
    }

    /// (b, 1, s, offset + s) additive mask of [`Self::mask_after`] for a batch whose row r starts
    /// with `pads[r]` padding positions: no query sees a padding key, except a padding query its
    /// own (so that every softmax row has a finite entry). The window counts in positions, which
    /// padding shifts alike for query and key.
    pub fn mask_padded(
        offset: usize,
        s: usize,
        sliding_window: Option<usize>,
        pads: &[usize],
        dtype: candle_core::DType,
        device: &candle_core::Device,
    ) -> Result<Tensor> {
        let n = offset + s;
        let mut m = vec![0f32; pads.len() * s * n];
        for (r, &pad) in pads.iter().enumerate() {
            for i in 0..s {
                let q = offset + i;
                for j in 0..n {
                    let hidden = if q < pad { j != q } else { j < pad || j > q };
                    if hidden || sliding_window.is_some_and(|w| q >= j && q - j >= w) {
                        m[(r * s + i) * n + j] = f32::NEG_INFINITY;
                    }
                }
            }
        }
        Ok(Tensor::from_vec(m, (pads.len(), 1, s, n), device)?.to_dtype(dtype)?)
    }

    pub fn sliding_window(&self) -> Option<usize> {
        self.sliding_window
    }

    /// (b, s, KV, dh) → (b, s, H, dh): one key/value per query head.
    fn per_query_head(&self, t: Tensor) -> Result<Tensor> {
        match &self.kv_index {
            Some(idx) => Ok(t.index_select(idx, 2)?),
            None => Ok(t),
        }
    }

    /// Per-head weights (H, dh, d) and biases (H, dh) for the split-input path.
    fn head_weights(&self, w: &Tensor, b: Option<&Tensor>, heads: usize) -> Result<(Tensor, Option<Tensor>)> {
        let d = w.dim(1)?;
        let mut w = w.reshape((heads, self.d_head, d))?;
        let mut b = b.map(|b| b.reshape((heads, self.d_head))).transpose()?;
        if let (Some(idx), true) = (&self.kv_index, heads == self.n_kv_heads) {
            w = w.index_select(idx, 0)?;
            b = b.map(|b| b.index_select(idx, 0)).transpose()?;
        }
        Ok((w, b))
    }

    /// x: (b, s, H, d) per-head inputs, w: (H, dh, d) → (b, s, H, dh)
    fn head_project(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
        let (bs, s, h, d) = x.dims4()?;
        let dh = w.dim(1)?;
        let xt = x.permute((2, 0, 1, 3))?.contiguous()?.reshape((h, bs * s, d))?;
        let y = matmul_const(&xt, &w.transpose(1, 2)?)?.reshape((h, bs, s, dh))?.permute((1, 2, 0, 3))?;
        Ok(match b {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }

    /// Normed stream n (b, s, d) → queries (b, s, H, dh), before the rotary embedding.
    fn queries(&self, n: &Tensor, ops: Ops) -> Result<Tensor> {
        let (b, s, _) = n.dims3()?;
        Ok(ops.linear(n, &self.wq, self.bq.as_ref())?.reshape((b, s, self.n_heads, self.d_head))?)
    }

    /// Normed stream n (b, s, d) → keys (b, s, H, dh), one per query head.
    fn keys(&self, n: &Tensor, ops: Ops) -> Result<Tensor> {
        self.project_kv(n, &self.wk, self.bk.as_ref(), ops)
    }

    fn project_kv(&self, n: &Tensor, w: &Tensor, bias: Option<&Tensor>, ops: Ops) -> Result<Tensor> {
        let (b, s, _) = n.dims3()?;
        self.per_query_head(ops.linear(n, w, bias)?.reshape((b, s, self.n_kv_heads, self.d_head))?)
    }

    /// q, k (b, s, H, dh) before the rotary embedding → raw products q·kᵀ (b, H, s_q, s_k).
    fn products(&self, q: &Tensor, k: &Tensor, ctx: &AttnContext) -> Result<Tensor> {
        let (q, k) = match &ctx.rope {
            Some((rope, cos, sin)) => (rope.apply(q, cos, sin, ctx.ops)?, rope.apply(k, cos, sin, ctx.ops)?),
            None => (q.clone(), k.clone()),
        };
        let q = q.transpose(1, 2)?.contiguous()?;
        let k = k.transpose(1, 2)?.contiguous()?;
        Ok(q.matmul(&k.t()?)?)
    }

    /// q, k (b, s, H, dh) before the rotary embedding → scaled, masked scores (b, H, s_q, s_k).
    fn scores(&self, q: &Tensor, k: &Tensor, ctx: &AttnContext) -> Result<Tensor> {
        Ok((self.products(q, k, ctx)? * self.scale)?.broadcast_add(&ctx.mask)?)
    }

    /// Queries (b, s, H, dh) when the query path reads `x` (b, s, d), the stream before the norm.
    pub fn queries_from(&self, x: &Tensor, ctx: &AttnContext) -> Result<Tensor> {
        self.queries(&self.norm.forward(x, ctx.ops)?, ctx.ops)
    }

    /// Keys (b, s, H, dh), one per query head, when the key path reads `x` (b, s, d).
    pub fn keys_from(&self, x: &Tensor, ctx: &AttnContext) -> Result<Tensor> {
        self.keys(&self.norm.forward(x, ctx.ops)?, ctx.ops)
    }

    /// The attention pattern (b, H, s_q, s_k) of queries and keys from [`Self::queries_from`] and
    /// [`Self::keys_from`]: what `hook_pattern` shows for those inputs. Fires no hooks.
    pub fn pattern_of(&self, q: &Tensor, k: &Tensor, ctx: &AttnContext) -> Result<Tensor> {
        ctx.ops.softmax(&self.scores(q, k, ctx)?)
    }

    /// x: (b, s, d), the residual stream entering attention → (b, s, d).
    pub fn forward(&self, x: &Tensor, l: usize, run: &mut HookRun, ctx: &AttnContext) -> Result<Tensor> {
        let (b, s, d) = x.dims3()?;
        let (h, dh) = (self.n_heads, self.d_head);
        let p = |site| HookPoint::Block(l, site);
        let split = run.wants(p(Site::QInput)) || run.wants(p(Site::KInput)) || run.wants(p(Site::VInput));
        let (q, k, v) = if split {
            let per_head = x.unsqueeze(2)?.broadcast_as((b, s, h, d))?.contiguous()?;
            let mut proj = |site, w: &Tensor, bias: Option<&Tensor>, heads| -> Result<Tensor> {
                let xin = run.fire(p(site), per_head.clone())?;
                let n = self.norm.forward(&xin, ctx.ops)?;
                let (w, bias) = self.head_weights(w, bias, heads)?;
                Self::head_project(&n, &w, bias.as_ref())
            };
            (
                proj(Site::QInput, &self.wq, self.bq.as_ref(), h)?,
                proj(Site::KInput, &self.wk, self.bk.as_ref(), self.n_kv_heads)?,
                proj(Site::VInput, &self.wv, self.bv.as_ref(), self.n_kv_heads)?,
            )
        } else {
            let n = self.norm.forward(x, ctx.ops)?;
            (
                self.queries(&n, ctx.ops)?,
                self.keys(&n, ctx.ops)?,
                self.project_kv(&n, &self.wv, self.bv.as_ref(), ctx.ops)?,
            )
        };
        let q = run.fire(p(Site::Q), q)?;
        let k = run.fire(p(Site::K), k)?;
        let v = run.fire(p(Site::V), v)?;
        let pattern = if run.wants(p(Site::AttnScores)) {
            let scores = run.fire(p(Site::AttnScores), self.scores(&q, &k, ctx)?)?;
            ctx.ops.softmax(&scores)?
        } else {
            // scale, mask and softmax in one op
            ctx.ops.attention_pattern(&self.products(&q, &k, ctx)?, self.scale, ctx.window, &ctx.mask)?
        };
        // (b, H, s, dh)
        let v = v.transpose(1, 2)?.contiguous()?;
        let pattern = run.fire(p(Site::Pattern), pattern)?;
        // (b, s, H, dh)
        let z = pattern.matmul(&v)?.transpose(1, 2)?;
        let z = run.fire(p(Site::Z), z)?;
        let out = if run.wants(p(Site::Result)) {
            // per head: z_h (b, s, dh) · W_O[:, h]ᵀ → (b, s, H, d)
            let wo = self.wo.reshape((d, h, dh))?.permute((1, 2, 0))?; // (H, dh, d)
            let zt = z.permute((2, 0, 1, 3))?.contiguous()?.reshape((h, b * s, dh))?;
            let result = matmul_const(&zt, &wo.contiguous()?)?.reshape((h, b, s, d))?.permute((1, 2, 0, 3))?;
            let result = run.fire(p(Site::Result), result)?;
            result.sum(2)?
        } else {
            ctx.ops.linear(&z.contiguous()?.reshape((b, s, h * dh))?, &self.wo, None)?
        };
        let out = match &self.bo {
            Some(bo) => out.broadcast_add(bo)?,
            None => out,
        };
        run.fire(p(Site::AttnOut), out)
    }

    /// [`Self::forward`] for `s` new positions after the cached ones: x (b, s, d) and this layer's
    /// cached keys (rotated) and values (b, s_past, H, dh) → (b, s, d) and the keys and values of
    /// every position so far. Fires q, k, v, pattern (b, H, s, s_past + s), z and attn_out.
    pub fn forward_cached(
        &self,
        x: &Tensor,
        l: usize,
        run: &mut HookRun,
        ctx: &AttnContext,
        past: Option<&(Tensor, Tensor)>,
    ) -> Result<(Tensor, (Tensor, Tensor))> {
        let (b, s, _) = x.dims3()?;
        let (h, dh) = (self.n_heads, self.d_head);
        let p = |site| HookPoint::Block(l, site);
        for site in [Site::QInput, Site::KInput, Site::VInput, Site::AttnScores, Site::Result] {
            if run.wants(p(site)) {
                return Err(crate::error::Error::input(format!(
                    "{} cannot be hooked in a cached (step by step) pass",
                    p(site)
                )));
            }
        }
        let n = self.norm.forward(x, ctx.ops)?;
        let q = run.fire(p(Site::Q), self.queries(&n, ctx.ops)?)?;
        let k = run.fire(p(Site::K), self.keys(&n, ctx.ops)?)?;
        let v = run.fire(p(Site::V), self.project_kv(&n, &self.wv, self.bv.as_ref(), ctx.ops)?)?;
        let (q, k) = match &ctx.rope {
            Some((rope, cos, sin)) => (rope.apply(&q, cos, sin, ctx.ops)?, rope.apply(&k, cos, sin, ctx.ops)?),
            None => (q, k),
        };
        let (k, v) = match past {
            Some((pk, pv)) => (Tensor::cat(&[pk, &k], 1)?, Tensor::cat(&[pv, &v], 1)?),
            None => (k, v),
        };
        let qt = q.transpose(1, 2)?.contiguous()?;
        let kt = k.transpose(1, 2)?.contiguous()?;
        let scores = (qt.matmul(&kt.t()?)? * self.scale)?.broadcast_add(&ctx.mask)?;
        let pattern = run.fire(p(Site::Pattern), ctx.ops.softmax(&scores)?)?;
        let z = run.fire(p(Site::Z), pattern.matmul(&v.transpose(1, 2)?.contiguous()?)?.transpose(1, 2)?)?;
        let out = ctx.ops.linear(&z.contiguous()?.reshape((b, s, h * dh))?, &self.wo, None)?;
        let out = match &self.bo {
            Some(bo) => out.broadcast_add(bo)?,
            None => out,
        };
        Ok((run.fire(p(Site::AttnOut), out)?, (k, v)))
    }
}
