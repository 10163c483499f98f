//! The one generic decoder. Every supported family is this forward pass with a different
//! `ModelConfig`; hook points fire in the order `hooks::point` documents.

use super::attention::{Attention, AttnContext};
use super::config::ModelConfig;
use super::mlp::Mlp;
use super::naming::W;
use super::norm::Norm;
use super::ops::Ops;
use super::rotary::Rotary;
use super::weights::Weights;
use crate::error::{Error, Result};
use crate::hooks::{ActivationCache, Edit, HookPoint, HookRun, HookSet, Site, Taps};
use candle_core::{DType, Device, Tensor};

#[derive(Clone)]
pub struct Block {
    pub attn: Attention,
    pub mlp: Mlp,
}

#[derive(Clone)]
pub struct Decoder {
    pub cfg: ModelConfig,
    /// (V, d)
    pub tok_embed: Tensor,
    /// (n_ctx, d), learned positions only
    pub pos_embed: Option<Tensor>,
    pub blocks: Vec<Block>,
    pub final_norm: Norm,
    /// (V, d): the unembedding (the token embedding itself when tied)
    pub unembed: Tensor,
    rotary: Option<Rotary>,
    points: Vec<HookPoint>,
    dtype: DType,
    device: Device,
}

/// The keys (after the rotary embedding) and values of the positions a text has run through so
/// far, per layer, (b, positions, H, dh) each: what [`Decoder::forward_cached`] attends to.
#[derive(Clone, Debug, Default)]
pub struct KvCache {
    layers: Vec<(Tensor, Tensor)>,
    len: usize,
    /// per row, how many positions at its start are padding (empty: none)
    pads: Vec<usize>,
}

impl KvCache {
    /// An empty cache for a batch of texts of different lengths aligned at their ends: row r
    /// starts with `pads[r]` padding positions, which no position attends to (but itself) and
    /// which do not count in the row's positions, so each row runs as it would alone.
    pub fn left_padded(pads: Vec<usize>) -> Self {
        let pads = if pads.iter().all(|&p| p == 0) { Vec::new() } else { pads };
        KvCache { layers: Vec::new(), len: 0, pads }
    }

    /// Positions cached.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keeps only batch rows `rows` (in that order), as a batch whose other texts have ended.
    pub fn keep_rows(&mut self, rows: &[usize]) -> Result<()> {
        if let Some((k, _)) = self.layers.first() {
            let b = k.dim(0)?;
            if let Some(&r) = rows.iter().find(|&&r| r >= b) {
                return Err(Error::input(format!("the cache has no batch row {r} (it holds {b})")));
            }
            let index = Tensor::new(rows.iter().map(|&r| r as u32).collect::<Vec<_>>(), k.device())?;
            for (k, v) in &mut self.layers {
                *k = k.index_select(&index, 0)?;
                *v = v.index_select(&index, 0)?;
            }
        }
        if !self.pads.is_empty() {
            if let Some(&r) = rows.iter().find(|&&r| r >= self.pads.len()) {
                return Err(Error::input(format!("the cache has no batch row {r} (it pads {})", self.pads.len())));
            }
            self.pads = rows.iter().map(|&r| self.pads[r]).collect();
        }
        Ok(())
    }
}

/// Each row's positions for `s` new ones after `offset` (row-major, b × s), counted from the end
/// of its `pads` leading padding positions (padding itself sits at 0).
fn row_positions(offset: usize, s: usize, pads: &[usize]) -> Vec<usize> {
    pads.iter().flat_map(|&p| (offset..offset + s).map(move |q| q.saturating_sub(p))).collect()
}

/// What one forward pass returns.
pub struct ForwardOutput {
    /// (b, s, V), or (n, V) at the hook set's `logit_rows`
    pub logits: Tensor,
    pub cache: ActivationCache,
    pub taps: Taps,
}

impl Decoder {
    pub fn new(cfg: ModelConfig, ws: &Weights) -> Result<Self> {
        let (v, d) = (cfg.vocab_size, cfg.d_model);
        let tok_embed = ws.tensor(W::TokEmbed, 0, &[v, d])?;
        let pos_embed = cfg.learned_positions().then(|| ws.tensor(W::PosEmbed, 0, &[cfg.n_ctx, d])).transpose()?;
        let blocks = (0..cfg.n_layers)
            .map(|l| Ok(Block { attn: Attention::new(&cfg, ws, l)?, mlp: Mlp::new(&cfg, ws, l)? }))
            .collect::<Result<Vec<_>>>()?;
        let final_norm = Norm::new(&cfg, ws, W::FinalNorm, W::FinalNormBias, 0)?;
        let unembed = if cfg.tied_embeddings && !ws.has(W::LmHead, 0) {
            tok_embed.clone()
        } else {
            ws.tensor(W::LmHead, 0, &[v, d])?
        };
        let points = HookPoint::all(cfg.n_layers, cfg.learned_positions(), cfg.parallel_residual, cfg.gated_mlp);
        Ok(Decoder {
            rotary: Rotary::new(&cfg.positional),
            cfg,
            tok_embed,
            pos_embed,
            blocks,
            final_norm,
            unembed,
            points,
            dtype: ws.dtype,
            device: ws.device.clone(),
        })
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Where the weights live; every pass runs there (inputs on another device are moved).
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Every hook point of this model, in firing order.
    pub fn hook_points(&self) -> &[HookPoint] {
        &self.points
    }

    /// A (1, s) input tensor from token ids, on the CPU ([`Decoder::forward`] moves it).
    pub fn input(ids: &[u32]) -> Result<Tensor> {
        Ok(Tensor::new(ids, &Device::Cpu)?.unsqueeze(0)?)
    }

    /// Checks token ids before they reach an index op (ids already on a GPU make this wait for it:
    /// callers keep ids on the CPU, as the attribution batches do).
    fn check_input(&self, ids: &Tensor) -> Result<(usize, usize)> {
        let (b, s) = ids
            .dims2()
            .map_err(|_| Error::input(format!("token ids must have shape (batch, seq), got {:?}", ids.dims())))?;
        if b == 0 || s == 0 {
            return Err(Error::input("the input is empty: give at least one token"));
        }
        if s > self.cfg.n_ctx {
            return Err(Error::input(format!(
                "the input has {s} tokens, longer than the model's context of {} tokens",
                self.cfg.n_ctx
            )));
        }
        let max = ids.to_dtype(DType::U32)?.flatten_all()?.max(0)?.to_scalar::<u32>()?;
        if max as usize >= self.cfg.vocab_size {
            return Err(Error::input(format!(
                "token id {max} is out of range for a vocabulary of {} tokens",
                self.cfg.vocab_size
            )));
        }
        Ok((b, s))
    }

    /// Logits only, no hooks.
    pub fn logits(&self, ids: &Tensor) -> Result<Tensor> {
        Ok(self.forward(ids, &HookSet::default())?.logits)
    }

    /// What every attention layer shares in a pass over `s` new positions after `offset` cached
    /// ones: the new positions' rotary tables, (s, dims), and their (s, offset + s) mask; or, with
    /// `pads` (one per row), tables (b, s, dims) at each row's own positions and a (b, 1, s,
    /// offset + s) mask that hides the padding.
    fn step_context(&self, offset: usize, s: usize, pads: &[usize], ops: Ops) -> Result<AttnContext<'_>> {
        let window = self.blocks.first().and_then(|blk| blk.attn.sliding_window());
        if !pads.is_empty() {
            let b = pads.len();
            let rope = match &self.rotary {
                Some(r) => {
                    let (cos, sin) = r.tables_at(&row_positions(offset, s, pads), self.dtype, &self.device)?;
                    let dims = cos.dim(1)?;
                    Some((r, cos.reshape((b, s, dims))?, sin.reshape((b, s, dims))?))
                }
                None => None,
            };
            let mask = Attention::mask_padded(offset, s, window, pads, self.dtype, &self.device)?;
            return Ok(AttnContext { rope, mask, window, ops });
        }
        let rope = match &self.rotary {
            Some(r) => {
                let (cos, sin) = r.tables(offset + s, self.dtype, &self.device)?;
                Some((r, cos.narrow(0, offset, s)?.contiguous()?, sin.narrow(0, offset, s)?.contiguous()?))
            }
            None => None,
        };
        let mask = Attention::mask_after(offset, s, window, self.dtype, &self.device)?;
        Ok(AttnContext { rope, mask, window, ops })
    }

    /// What every attention layer shares in a pass over `s` positions: rotary tables and the mask.
    pub fn attn_context(&self, s: usize, ops: Ops) -> Result<AttnContext<'_>> {
        self.step_context(0, s, &[], ops)
    }

    /// (b, s, d) → (n, d): the final stream at flat positions `rows` (n,) of `HookSet::logit_rows`.
    fn logit_rows(&self, normed: Tensor, rows: &Tensor) -> Result<Tensor> {
        let (b, s, d) = normed.dims3()?;
        let n = rows.dims1().map_err(|_| {
            Error::input(format!("logit rows must be one index per row (n,), got shape {:?}", rows.dims()))
        })?;
        // Checked where that costs nothing: reading indices back from a GPU would wait for it.
        if rows.device().is_cpu() {
            let max = rows.to_dtype(DType::U32)?.to_vec1::<u32>()?.into_iter().max();
            if let Some(m) = max.filter(|&m| m as usize >= b * s) {
                return Err(Error::input(format!("logit row {m} is past the batch's {b} x {s} positions")));
            }
        }
        let rows = rows.to_dtype(DType::U32)?.to_device(&self.device)?;
        Ok(normed.reshape((b * s, d))?.index_select(&rows, 0)?.reshape((n, d))?)
    }

    /// ids: (b, s) u32 → logits (b, s, V), plus whatever `hooks` asked for.
    pub fn forward(&self, ids: &Tensor, hooks: &HookSet) -> Result<ForwardOutput> {
        let (_, s) = self.check_input(ids)?;
        let run = HookRun::new(hooks, &self.points)?;
        let ops = Ops { diff: run.differentiable(), exact: run.exact_gradients(), fused: run.fused() };
        let ctx = self.attn_context(s, ops)?;
        self.pass(ids, hooks, run, 0, &[], |l, x, run| self.blocks[l].attn.forward(x, l, run, &ctx))
    }

    /// The next `ids` (b, s) of a text whose earlier positions are in `cache`: their logits
    /// (b, s, V), or at `hooks`' logit rows, attending to the cached keys and values, which the
    /// pass extends. A prompt in one call and then one token per call is a generation whose step
    /// costs no more as the text grows. Hooks see the new positions only (an intervention's
    /// positions count from the first of them, padding included); the per-head input and result
    /// points, and the attention scores, cannot be hooked here. A batch of texts of different
    /// lengths starts from [`KvCache::left_padded`].
    pub fn forward_cached(&self, ids: &Tensor, cache: &mut KvCache, hooks: &HookSet) -> Result<ForwardOutput> {
        let (b, s) = self.check_input(ids)?;
        let offset = cache.len;
        if offset + s > self.cfg.n_ctx {
            return Err(Error::input(format!(
                "{offset} cached and {s} new positions pass the model's context of {} tokens",
                self.cfg.n_ctx
            )));
        }
        if let Some((k, _)) = cache.layers.first() {
            if k.dim(0)? != b {
                return Err(Error::input(format!("the cache holds {} rows, the input {b}", k.dim(0)?)));
            }
        }
        if !cache.pads.is_empty() && cache.pads.len() != b {
            return Err(Error::input(format!("the cache pads {} rows, the input has {b}", cache.pads.len())));
        }
        if offset == 0 && cache.pads.iter().any(|&p| p >= s) {
            return Err(Error::input(format!("a row of {s} positions is all padding")));
        }
        if hooks.interventions.iter().any(|iv| matches!(iv.edit, Edit::Repeat(_))) {
            return Err(Error::input("a repeat of the batch cannot run on cached keys and values (one row each)"));
        }
        let run = HookRun::new(hooks, &self.points)?;
        let ops = Ops { diff: run.differentiable(), exact: run.exact_gradients(), fused: run.fused() };
        let ctx = self.step_context(offset, s, &cache.pads, ops)?;
        let mut fresh = Vec::with_capacity(self.blocks.len());
        let out = self.pass(ids, hooks, run, offset, &cache.pads, |l, x, run| {
            let (y, kv) = self.blocks[l].attn.forward_cached(x, l, run, &ctx, cache.layers.get(l))?;
            fresh.push(kv);
            Ok(y)
        })?;
        cache.layers = fresh;
        cache.len = offset + s;
        Ok(out)
    }

    /// The pass around the attention layers: embeddings at positions `offset..` (less each row's
    /// padding, with `pads`), the blocks with `attend` as each one's attention, the final norm
    /// and the logits.
    fn pass(
        &self,
        ids: &Tensor,
        hooks: &HookSet,
        mut run: HookRun,
        offset: usize,
        pads: &[usize],
        mut attend: impl FnMut(usize, &Tensor, &mut HookRun) -> Result<Tensor>,
    ) -> Result<ForwardOutput> {
        let (b, s) = ids.dims2()?;
        let d = self.cfg.d_model;
        let ops = Ops { diff: run.differentiable(), exact: run.exact_gradients(), fused: run.fused() };
        let ids = ids.to_dtype(DType::U32)?.to_device(&self.device)?;

        let mut emb = self.tok_embed.index_select(&ids.flatten_all()?, 0)?.reshape((b, s, d))?;
        if let Some(scale) = self.cfg.embed_scale {
            // HF rounds √d to the activation dtype before multiplying.
            let scale = Tensor::new(scale as f32, &self.device)?.to_dtype(self.dtype)?;
            emb = emb.broadcast_mul(&scale)?;
        }
        let mut resid = run.fire(HookPoint::Embed, emb)?;
        if let Some(pos) = &self.pos_embed {
            let pos = if pads.is_empty() {
                pos.narrow(0, offset, s)?.unsqueeze(0)?.broadcast_as((b, s, d))?.contiguous()?
            } else {
                let at: Vec<u32> = row_positions(offset, s, pads).into_iter().map(|p| p as u32).collect();
                pos.index_select(&Tensor::new(at, &self.device)?, 0)?.reshape((b, s, d))?
            };
            resid = (resid + run.fire(HookPoint::PosEmbed, pos)?)?;
        }

        for (l, block) in self.blocks.iter().enumerate() {
            let p = |site| HookPoint::Block(l, site);
            resid = run.fire(p(Site::ResidPre), resid)?;
            let attn_out = attend(l, &resid, &mut run)?;
            resid = if self.cfg.parallel_residual {
                let mlp_in = run.fire(p(Site::MlpIn), resid.clone())?;
                let mlp_out = block.mlp.forward(&mlp_in, l, &mut run, ops)?;
                ((resid + attn_out)? + mlp_out)?
            } else {
                let mid = run.fire(p(Site::ResidMid), (resid + attn_out)?)?;
                let mlp_in = run.fire(p(Site::MlpIn), mid.clone())?;
                (mid + block.mlp.forward(&mlp_in, l, &mut run, ops)?)?
            };
            resid = run.fire(p(Site::ResidPost), resid)?;
        }
        let mut normed = run.fire(HookPoint::LnFinal, self.final_norm.forward(&resid, ops)?)?;
        if let Some(rows) = &hooks.logit_rows {
            normed = self.logit_rows(normed, rows)?;
        }
        let logits = ops.linear(&normed, &self.unembed, None)?;
        let (cache, taps) = run.finish();
        Ok(ForwardOutput { logits, cache, taps })
    }
}
