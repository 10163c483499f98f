//! Reader fixes for the gradient methods: score an edge exactly up to its reader's own output and
//! linearly only beyond it. The gradient methods linearise the whole path from the patched
//! reader input to the metric; where the reader itself saturates, that misses most of the
//! effect of a full patch.
//!
//! **QK fix** (AtP*, Kramár et al. 2024). An edge into a head's query or key input reaches the
//! metric only through that head's attention pattern, and the softmax saturates: a position the
//! clean run ignores has gradient ~0, yet a patch that raises its score moves attention to it (in
//! IOI, a name mover's key at S2 once S2 is no longer a repeated name). With x (b, s, d) the
//! clean stream entering layer l:
//!
//! ```text
//! query edge: A'_h = softmax(q_h(x + Δ_u) · k_h(x)ᵀ)      key edge: A'_h = softmax(q_h(x) · k_h(x + Δ_u)ᵀ)
//! s(u → a{l}.h{h}<q|k>) = Σ_{b,i,j} (A'_h − A_h) · Ḡ_h,    Ḡ = ∂L/∂A at `hook_pattern`
//! ```
//!
//! **MLP fix**, the same idea for an MLP reader, whose activation saturates the same way (a
//! fact-lookup neuron that one patched input switches on or off). With x the clean MLP input and
//! post_l the MLP's hidden activations:
//!
//! ```text
//! s(u → m{l}) = Σ_{b,s,f} (post_l(x + Δ_u) − post_l(x)) · Ḡ_l,    Ḡ = ∂L/∂post at `mlp.hook_post`
//! ```
//!
//! The MLP's output is linear in post; taking the gradient there, not at the output, keeps it
//! zero in a pass that replaces the MLP's output (EAP-IG on activations), where the MLP's input
//! has no effect.
//!
//! Δ_u = z'_u − z_u, and every Ḡ is averaged over the method's steps like its other gradients,
//! so for EAP the QK fix is exactly AtP*'s. Value and logit edges keep the method's own scores.
//! No pass is added: the fixes recompute one layer's attention pattern or MLP per writer.

use crate::error::Result;
use crate::graph::{GraphShape, Qkv, Reader, Writer};
use crate::hooks::{HookPoint, Site, TapGradients};
use crate::model::attention::AttnContext;
use crate::model::ops::Ops;
use crate::model::Decoder;
use candle_core::{DType, Tensor, D};

/// Which readers are scored exactly up to their output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReaderFix {
    /// heads' query and key inputs, through the attention pattern
    pub qk: bool,
    /// MLP inputs, through the MLP
    pub mlp: bool,
}

impl ReaderFix {
    pub fn any(&self) -> bool {
        self.qk || self.mlp
    }

    /// "qk", "mlp", "qk+mlp" or "none", for reports.
    pub fn name(&self) -> &'static str {
        match (self.qk, self.mlp) {
            (true, true) => "qk+mlp",
            (true, false) => "qk",
            (false, true) => "mlp",
            (false, false) => "none",
        }
    }

    /// The site whose gradient a fix needs, in every layer: the attention pattern (QK fix) or the
    /// MLP's hidden activations (MLP fix).
    pub fn sites(&self) -> Vec<Site> {
        [(self.qk, Site::Pattern), (self.mlp, Site::MlpPost)].into_iter().filter(|f| f.0).map(|f| f.1).collect()
    }
}

/// `site` in every layer.
pub(crate) fn every_layer(n_layers: usize, site: Site) -> Vec<HookPoint> {
    (0..n_layers).map(|l| HookPoint::Block(l, site)).collect()
}

/// `site` in every layer, read by `get` (a capture or a gradient) and stacked: (L, ...).
pub(crate) fn stack_layers<'a>(
    n_layers: usize,
    site: Site,
    get: impl Fn(HookPoint) -> Result<&'a Tensor>,
) -> Result<Tensor> {
    let parts =
        every_layer(n_layers, site).into_iter().map(|p| Ok(get(p)?.unsqueeze(0)?)).collect::<Result<Vec<_>>>()?;
    Ok(Tensor::cat(&parts, 0)?)
}

/// The gradient at `site` in every layer, stacked: (L, ...) in `dtype`.
pub(crate) fn stacked_gradients(grads: &TapGradients, n_layers: usize, site: Site, dtype: DType) -> Result<Tensor> {
    Ok(stack_layers(n_layers, site, |p| grads.get(p))?.to_dtype(dtype)?)
}

/// Rows (writers × items × positions) recomputed together, to bound memory.
const MAX_ROWS: usize = 4096;

/// What the fixes read from the clean run and the method's averaged gradients.
pub(crate) struct FixInputs<'a> {
    /// the clean stream entering each layer's attention (L, b, s, d), with the QK fix
    pub streams: Option<&'a Tensor>,
    /// the clean stream entering each layer's MLP (L, b, s, d), with the MLP fix
    pub mlp_streams: Option<&'a Tensor>,
    /// z'_u − z_u (n_fwd, b, s, d)
    pub delta: &'a Tensor,
    /// positions before this one have Δ = 0 exactly, whatever rounding `delta` holds there (the
    /// prompts' shared prefix, with patching), and the fixes take their clean values there
    pub unchanged: usize,
    /// ∂L/∂A (L, b, H, s, s), with the QK fix
    pub pattern_grads: Option<&'a Tensor>,
    /// ∂L/∂post (L, b, s, f), with the MLP fix
    pub hidden_grads: Option<&'a Tensor>,
}

/// Replaces the fixed readers' entries of `per_item` (b, n_fwd, n_bwd) with their fixed scores.
pub(crate) fn apply(decoder: &Decoder, fix: ReaderFix, inputs: &FixInputs, per_item: &Tensor) -> Result<Tensor> {
    let shape = GraphShape::of(&decoder.cfg);
    let (_, b, s, _) = inputs.delta.dims4()?;
    let ctx = decoder.attn_context(s, Ops { diff: false, exact: false, fused: true })?;
    let mut out = Scores {
        values: per_item.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?,
        nf: shape.n_fwd(),
        nb: shape.n_bwd(),
    };
    let missing = || crate::error::Error::input("internal: a reader fix ran without its clean streams or gradients");
    // Norms, projections and the MLP are position-wise: where Δ is zero, the patched queries,
    // keys and MLP inputs are the clean ones (in IOI, everything before S2). Δ there is rounding
    // only (the clean and corrupted runs use different kernels), so those positions are left out.
    let from = inputs.unchanged.min(s.saturating_sub(1));
    let changed = inputs.delta.narrow(2, from, s - from)?;
    for l in 0..decoder.cfg.n_layers {
        if fix.qk {
            let (x, g) =
                (inputs.streams.ok_or_else(missing)?.get(l)?, inputs.pattern_grads.ok_or_else(missing)?.get(l)?);
            qk_layer(decoder, l, &ctx, &x, (&changed, from), &g, &mut out)?;
        }
        if fix.mlp {
            let (x, g) =
                (inputs.mlp_streams.ok_or_else(missing)?.get(l)?, inputs.hidden_grads.ok_or_else(missing)?.get(l)?);
            mlp_layer(decoder, l, &x.narrow(1, from, s - from)?, &changed, &g.narrow(1, from, s - from)?, &mut out)?;
        }
    }
    Ok(Tensor::from_vec(out.values, (b, out.nf, out.nb), per_item.device())?.to_dtype(per_item.dtype())?)
}

/// Per-item scores (b, n_fwd, n_bwd), flattened.
struct Scores {
    values: Vec<f64>,
    nf: usize,
    nb: usize,
}

impl Scores {
    /// Writes `v` (n, b, k) for writers first.. and the k readers `readers`.
    fn set(&mut self, first: usize, readers: &[usize], v: &Tensor) -> Result<()> {
        let v: Vec<Vec<Vec<f64>>> = v.to_dtype(DType::F64)?.to_vec3()?;
        for (i, per_writer) in v.iter().enumerate() {
            for (item, row) in per_writer.iter().enumerate() {
                for (&r, &x) in readers.iter().zip(row) {
                    self.values[(item * self.nf + first + i) * self.nb + r] = x;
                }
            }
        }
        Ok(())
    }
}

/// The first `n` writers in chunks of at most `MAX_ROWS` rows of `b` items × `s` positions each:
/// (first, count).
fn chunks(n: usize, b: usize, s: usize) -> impl Iterator<Item = (usize, usize)> {
    let per = (MAX_ROWS / (b * s).max(1)).max(1);
    (0..n).step_by(per).map(move |first| (first, per.min(n - first)))
}

/// x (b, s, d) plus each of writers first..first+n's Δ: (n·b, s, d) in x's dtype.
fn patched(x: &Tensor, delta: &Tensor, first: usize, n: usize) -> Result<Tensor> {
    let (b, s, d) = x.dims3()?;
    Ok(delta.narrow(0, first, n)?.to_dtype(x.dtype())?.broadcast_add(&x.unsqueeze(0)?)?.reshape((n * b, s, d))?)
}

/// `changed`: Δ from position `from` on (n_fwd, b, s − from, d); before it Δ is zero.
fn qk_layer(
    decoder: &Decoder,
    l: usize,
    ctx: &AttnContext,
    x: &Tensor,
    (changed, from): (&Tensor, usize),
    g: &Tensor,
    out: &mut Scores,
) -> Result<()> {
    let shape = GraphShape::of(&decoder.cfg);
    let attn = &decoder.blocks[l].attn;
    let x = x.to_dtype(decoder.dtype())?;
    let (b, s, _) = x.dims3()?;
    let h = decoder.cfg.n_heads;
    let dtype = g.dtype();
    let (q, k) = (attn.queries_from(&x, ctx)?, attn.keys_from(&x, ctx)?);
    let clean = attn.pattern_of(&q, &k, ctx)?.to_dtype(dtype)?;
    // Writers before layer l are exactly those with an edge into its heads.
    let n_writers = shape.writer_index(Writer::Head { layer: l, head: 0 });
    let x_changed = x.narrow(1, from, s - from)?;
    for (first, n) in chunks(n_writers, b, s) {
        let xp = patched(&x_changed, changed, first, n)?;
        let (q_tiled, k_tiled) = (q.repeat((n, 1, 1, 1))?, k.repeat((n, 1, 1, 1))?);
        // Queries and keys are projected position by position (the rotary embedding comes later,
        // in the scores), so over the unchanged prefix the patched ones are the clean ones.
        let with_prefix = |clean: &Tensor, rest: Tensor| -> Result<Tensor> {
            Ok(if from == 0 { rest } else { Tensor::cat(&[&clean.narrow(1, 0, from)?, &rest], 1)? })
        };
        let (q_patched, k_patched) =
            (with_prefix(&q_tiled, attn.queries_from(&xp, ctx)?)?, with_prefix(&k_tiled, attn.keys_from(&xp, ctx)?)?);
        for (qkv, pattern) in [
            (Qkv::Q, attn.pattern_of(&q_patched, &k_tiled, ctx)?),
            (Qkv::K, attn.pattern_of(&q_tiled, &k_patched, ctx)?),
        ] {
            // Σ_{i,j} (A' − A)·Ḡ per writer, item and head: (n, b, H)
            let change = pattern.to_dtype(dtype)?.reshape((n, b, h, s, s))?.broadcast_sub(&clean.unsqueeze(0)?)?;
            let scores = change.broadcast_mul(&g.unsqueeze(0)?)?.sum(D::Minus1)?.sum(D::Minus1)?;
            let readers: Vec<usize> =
                (0..h).map(|head| shape.reader_index(Reader::Head { layer: l, head, qkv })).collect();
            out.set(first, &readers, &scores)?;
        }
    }
    Ok(())
}

fn mlp_layer(decoder: &Decoder, l: usize, x: &Tensor, delta: &Tensor, g: &Tensor, out: &mut Scores) -> Result<()> {
    let shape = GraphShape::of(&decoder.cfg);
    let mlp = &decoder.blocks[l].mlp;
    let ops = Ops { diff: false, exact: false, fused: true };
    let x = x.to_dtype(decoder.dtype())?;
    let (b, s, f) = g.dims3()?;
    let dtype = g.dtype();
    let clean = mlp.hidden(&x, ops)?.to_dtype(dtype)?;
    let m = shape.writer_index(Writer::Mlp { layer: l });
    let reader = [shape.reader_index(Reader::Mlp { layer: l })];
    // Writers with an edge into m{l}: everything before it, except layer l's heads in a
    // parallel-residual model (they read the same stream as the MLP).
    let n_writers = if shape.parallel_residual { shape.writer_index(Writer::Head { layer: l, head: 0 }) } else { m };
    for (first, n) in chunks(n_writers, b, s) {
        let y = mlp.hidden(&patched(&x, delta, first, n)?, ops)?.to_dtype(dtype)?.reshape((n, b, s, f))?;
        // Σ_{s,f} (post(x + Δ) − post(x))·Ḡ per writer and item: (n, b, 1)
        let scores =
            y.broadcast_sub(&clean.unsqueeze(0)?)?.broadcast_mul(&g.unsqueeze(0)?)?.sum(D::Minus1)?.sum(D::Minus1)?;
        out.set(first, &reader, &scores.unsqueeze(2)?)?;
    }
    Ok(())
}
