//! The forward and backward passes every method is built from: the clean and corrupted runs of a
//! batch (writer outputs z and z'), and one gradient step (reader and writer gradients of the
//! loss under some edits). Passes are counted so benchmarks can report them.

use super::data::Batch;
use super::head_grads::{analytic_points, head_input_gradients, QkvGradients};
use super::metric::{row_log_probs, work_dtype};
use super::reader_fix::{every_layer, stack_layers, stacked_gradients, ReaderFix};
use super::writers::{
    broadcast_means, mean_outputs, non_head_reader_points, reader_gradients, reader_gradients_with_heads,
    reader_points, writer_gradients, writer_outputs, writer_points, writer_tap_points, Ablation,
};
use super::AttributionConfig;
use crate::error::Result;
use crate::graph::GraphShape;
use crate::hooks::{ActivationCache, Edit, HookPoint, HookSet, Intervention, Site, TapGradients};
use crate::model::Decoder;
use crate::progress::Progress;
use candle_core::{DType, Tensor};

/// Forward and backward passes run (each over one batch, whatever its size).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassCount {
    pub forwards: usize,
    pub backwards: usize,
}

impl std::ops::AddAssign for PassCount {
    fn add_assign(&mut self, o: PassCount) {
        self.forwards += o.forwards;
        self.backwards += o.backwards;
    }
}

/// Counts passes and reports them as progress against a planned total.
pub(crate) struct Tracker<'a> {
    pub passes: PassCount,
    pub total: u64,
    progress: &'a dyn Progress,
}

impl<'a> Tracker<'a> {
    pub fn new(total: u64, progress: &'a dyn Progress) -> Self {
        progress.update(0, total);
        Tracker { passes: PassCount::default(), total, progress }
    }

    pub fn forward(&mut self) {
        self.passes.forwards += 1;
        self.total = self.total.max(self.passes.forwards as u64);
        self.progress.update(self.passes.forwards as u64, self.total);
    }

    pub fn backward(&mut self) {
        self.passes.backwards += 1;
    }
}

/// An ablation made ready for batches: mean outputs are computed once over the reference set.
pub(crate) enum Corruption {
    /// the corrupted run, scaled by α around the clean one (α = 1: plain patching)
    Patching(f64),
    Zero,
    /// (n_fwd, 1, 1 or s_ref, d)
    Means(Tensor),
}

impl Corruption {
    pub fn prepare(decoder: &Decoder, ablation: &Ablation, batch_size: usize, track: &mut Tracker) -> Result<Self> {
        Ok(match ablation {
            Ablation::Patching => Corruption::Patching(1.0),
            Ablation::Partial { alpha } => Corruption::Patching(*alpha),
            Ablation::Zero => Corruption::Zero,
            Ablation::Mean { reference, per_position } => {
                let (means, passes) = mean_outputs(decoder, reference, *per_position, batch_size)?;
                (0..passes).for_each(|_| track.forward());
                Corruption::Means(means)
            }
        })
    }

    /// Forward passes `prepare` runs (the reference set's, for mean ablation).
    pub fn setup_forwards(ablation: &Ablation, batch_size: usize) -> u64 {
        match ablation {
            Ablation::Mean { reference, .. } => reference.len().div_ceil(batch_size.max(1)) as u64,
            _ => 0,
        }
    }

    /// Forward passes `corrupted` runs per batch.
    pub fn forwards_per_batch(ablation: &Ablation) -> u64 {
        u64::from(ablation.needs_corrupted_prompts())
    }
}

/// The corrupted side of a batch: the corrupted writer outputs (n_fwd, b, s, d) and, for plain
/// patching, the corrupted run's log-probabilities at the metric rows.
pub(crate) struct Corrupted {
    z: Tensor,
    alpha: f64,
    pub log_probs: Option<Tensor>,
}

impl Corrupted {
    /// z' (n_fwd, b, s, d) given the clean outputs z: z + α (z_corrupted − z).
    pub fn z_prime(&self, clean_z: &Tensor) -> Result<Tensor> {
        if self.alpha == 1.0 {
            Ok(self.z.clone())
        } else {
            Ok((clean_z + ((&self.z - clean_z)? * self.alpha)?)?)
        }
    }
}

pub(crate) fn corrupted(decoder: &Decoder, batch: &Batch, c: &Corruption, track: &mut Tracker) -> Result<Corrupted> {
    let cfg = &decoder.cfg;
    let dtype = work_dtype(decoder.dtype());
    let shape = (GraphShape::of(cfg).n_fwd(), batch.len(), batch.seq_len(), cfg.d_model);
    Ok(match c {
        Corruption::Patching(alpha) => {
            let hooks = HookSet::new().capture(writer_points(cfg)).logits_at(&batch.rows);
            let out = decoder.forward(batch.corrupted()?, &hooks)?;
            track.forward();
            Corrupted {
                z: writer_outputs(&out.cache, cfg, dtype)?,
                alpha: *alpha,
                log_probs: (*alpha == 1.0).then(|| row_log_probs(&out.logits, batch)).transpose()?,
            }
        }
        Corruption::Zero => {
            Corrupted { z: Tensor::zeros(shape, dtype, decoder.device())?, alpha: 1.0, log_probs: None }
        }
        Corruption::Means(m) => Corrupted { z: broadcast_means(m, batch, cfg.d_model)?, alpha: 1.0, log_probs: None },
    })
}

/// The clean side of a batch.
pub(crate) struct Clean {
    /// writer outputs z (n_fwd, b, s, d)
    pub z: Tensor,
    /// the position embeddings as added (b, s, d), learned-position models only
    pub pos: Option<Tensor>,
    /// log-probabilities at the metric rows (n_rows, V): the KL reference
    pub log_probs: Tensor,
    /// the stream entering each layer's attention (L, b, s, d), in the model's dtype; QK fix only
    pub streams: Option<Tensor>,
    /// the stream entering each layer's MLP (L, b, s, d), in the model's dtype; MLP fix only
    pub mlp_streams: Option<Tensor>,
}

impl Clean {
    /// `fix`: the reader fixes whose clean streams the cache holds (see [`Clean::points`]).
    pub fn from_cache(cache: &ActivationCache, decoder: &Decoder, log_probs: Tensor, fix: ReaderFix) -> Result<Self> {
        let cfg = &decoder.cfg;
        let dtype = work_dtype(decoder.dtype());
        let pos = cfg.learned_positions().then(|| cache.get(HookPoint::PosEmbed).cloned()).transpose()?;
        let stack = |on: bool, site| on.then(|| stack_layers(cfg.n_layers, site, |p| cache.get(p))).transpose();
        Ok(Clean {
            z: writer_outputs(cache, cfg, dtype)?,
            pos,
            log_probs,
            streams: stack(fix.qk, Site::ResidPre)?,
            mlp_streams: stack(fix.mlp, Site::MlpIn)?,
        })
    }

    /// What a clean run captures: the writers' outputs, and the streams entering the readers
    /// that `fix` recomputes.
    fn points(cfg: &crate::model::ModelConfig, fix: ReaderFix) -> Vec<HookPoint> {
        let mut v = writer_points(cfg);
        for (on, site) in [(fix.qk, Site::ResidPre), (fix.mlp, Site::MlpIn)] {
            if on {
                v.extend(every_layer(cfg.n_layers, site));
            }
        }
        v
    }

    /// A clean forward pass that only captures (with the streams `fix` needs).
    pub fn run(decoder: &Decoder, batch: &Batch, fix: ReaderFix, track: &mut Tracker) -> Result<Self> {
        let hooks = HookSet::new().capture(Self::points(&decoder.cfg, fix)).logits_at(&batch.rows);
        let out = decoder.forward(&batch.clean, &hooks)?;
        track.forward();
        Self::from_cache(&out.cache, decoder, row_log_probs(&out.logits, batch)?, fix)
    }

    /// The `hook_embed` replacement that makes the input writer's output `input` (b, s, d), or
    /// (m·b, s, d) for the batch repeated m times.
    pub fn embed_replacing_input(&self, input: &Tensor, model_dtype: DType) -> Result<Intervention> {
        let embed = match &self.pos {
            Some(pos) => {
                let m = input.dim(0)? / pos.dim(0)?;
                (input - pos.repeat((m, 1, 1))?.to_dtype(input.dtype())?)?
            }
            None => input.clone(),
        };
        Ok(Intervention::new(HookPoint::Embed, Edit::Replace(embed.to_dtype(model_dtype)?)))
    }
}

/// A batch repeated n times ([`Batch::repeat`]) with its KL reference repeated alike, made once
/// per n: several patches (exact patching) or interpolation steps (EAP-IG) in one pass.
pub(crate) struct Tiles<'a> {
    batch: &'a Batch,
    reference: &'a Tensor,
    made: Vec<Option<(Batch, Tensor)>>,
}

impl<'a> Tiles<'a> {
    /// `reference`: the clean run's log-probabilities at `batch`'s metric rows.
    pub fn new(batch: &'a Batch, reference: &'a Tensor) -> Self {
        Tiles { batch, reference, made: Vec::new() }
    }

    /// The batch n times over and its reference.
    pub fn get(&mut self, n: usize) -> Result<(&Batch, &Tensor)> {
        if self.made.len() < n {
            self.made.resize(n, None);
        }
        if self.made[n - 1].is_none() {
            self.made[n - 1] = Some((self.batch.repeat(n)?, self.reference.repeat((n, 1))?));
        }
        let (b, r) = self.made[n - 1].as_ref().expect("made above");
        Ok((b, r))
    }
}

/// Gradients of one backward pass.
pub(crate) struct Step {
    /// d(loss)/d(in_v): (n_bwd, b, s, d)
    pub readers: Tensor,
    /// d(loss)/d(z_u): (n_fwd, b, s, d)
    pub writers: Tensor,
    /// d(loss)/d(attention pattern): (L, b, H, s, s), for the QK fix only
    pub patterns: Option<Tensor>,
    /// d(loss)/d(MLP hidden activations): (L, b, s, f), for the MLP fix only
    pub hidden: Option<Tensor>,
}

/// (…, m·b, …) → (…, b, …) along `axis`: the sum over the m copies of a repeated batch.
fn fold_copies(t: &Tensor, m: usize, axis: usize) -> Result<Tensor> {
    // Copy by copy: each is a run of whole rows, so every add streams contiguous blocks, where
    // candle's sum over a middle axis walks the tensor with a stride (a seventh of an
    // EAP-IG-on-activations run on SmolLM2).
    let b = t.dim(axis)? / m;
    let mut sum = t.narrow(axis, 0, b)?.contiguous()?;
    for k in 1..m {
        sum = (sum + t.narrow(axis, k * b, b)?)?;
    }
    Ok(sum)
}

fn add_optional(a: Option<Tensor>, b: Option<Tensor>) -> Result<Option<Tensor>> {
    Ok(match (a, b) {
        (Some(a), Some(b)) => Some((a + b)?),
        _ => None,
    })
}

impl std::ops::Add for Step {
    type Output = Result<Step>;
    fn add(self, o: Step) -> Result<Step> {
        Ok(Step {
            readers: (self.readers + o.readers)?,
            writers: (self.writers + o.writers)?,
            patterns: add_optional(self.patterns, o.patterns)?,
            hidden: add_optional(self.hidden, o.hidden)?,
        })
    }
}

/// One forward + backward pass of the clean tokens under `edits`, differentiating the summed
/// per-item loss. `reference`: the clean run's log-probabilities at the batch's metric rows (the
/// KL reference). With `reference` None this is the clean run itself: it captures the writers,
/// and its own log-probabilities are the reference (returned as `Clean`).
///
/// `batch` may be `copies` copies of a batch (`Batch::repeat`, one interpolation step each): the
/// gradients come back summed over the copies, (…, b, …). If `edits` repeat the stream
/// (`Edit::Repeat(copies)`), the pass reads the first copy's tokens only and runs the layers
/// before the repeat once.
pub(crate) fn gradient_step(
    decoder: &Decoder,
    batch: &Batch,
    config: &AttributionConfig,
    edits: Vec<Intervention>,
    reference: Option<&Tensor>,
    track: &mut Tracker,
    copies: usize,
) -> Result<(Step, Option<Clean>)> {
    let (metric, qkv, fix) = (config.metric, config.qkv_gradients, config.fix);
    let cfg = &decoder.cfg;
    let dtype = work_dtype(decoder.dtype());
    let mut hooks = HookSet::new();
    if reference.is_none() {
        hooks = hooks.capture(Clean::points(cfg, fix));
    }
    for site in fix.sites() {
        hooks = hooks.tap(every_layer(cfg.n_layers, site));
    }
    let repeats = edits.iter().any(|iv| matches!(iv.edit, Edit::Repeat(_)));
    for iv in edits {
        hooks = hooks.intervene(iv);
    }
    hooks = match qkv {
        QkvGradients::Taps => hooks.tap(reader_points(cfg)),
        QkvGradients::Analytic => {
            let (taps, captures) = analytic_points(cfg.n_layers);
            hooks.tap(taps).tap(non_head_reader_points(cfg)).capture(captures)
        }
    };
    hooks = hooks.tap(writer_tap_points(cfg));
    hooks.tap_dtype = Some(dtype);
    let ids = if repeats { batch.clean.narrow(0, 0, batch.len() / copies)? } else { batch.clean.clone() };
    let out = decoder.forward(&ids, &hooks.logits_at(&batch.rows))?;
    track.forward();
    let own = match reference {
        Some(_) => None,
        None => Some(Clean::from_cache(&out.cache, decoder, row_log_probs(&out.logits, batch)?, fix)?),
    };
    let reference = reference.or(own.as_ref().map(|c| &c.log_probs));
    let loss = metric.losses(&out.logits, batch, reference)?.sum_all()?;
    let grads = out.taps.gradients(&loss)?;
    track.backward();
    // Rows of every copy (after a repeat, or all of them) fold into one; points before a repeat
    // have one copy's rows already. q, k and v fold after the analytic head gradients, which are
    // not linear in them.
    let rows = batch.len();
    let fold = |t: &Tensor, axis: usize| -> Result<Tensor> {
        if copies > 1 && t.dim(axis)? == rows {
            fold_copies(t, copies, axis)
        } else {
            Ok(t.clone())
        }
    };
    let analytic = matches!(qkv, QkvGradients::Analytic);
    let mut folded = ActivationCache::default();
    for (p, g) in grads.0.iter() {
        let per_copy = analytic && matches!(p, HookPoint::Block(_, Site::Q | Site::K | Site::V));
        folded.insert(*p, if per_copy { g.clone() } else { fold(g, 0)? });
    }
    let folded = TapGradients(folded);
    let readers = match qkv {
        QkvGradients::Taps => reader_gradients(&folded, cfg, dtype)?,
        QkvGradients::Analytic => {
            let heads = (0..cfg.n_layers)
                .map(|l| {
                    let x = out.cache.get(HookPoint::Block(l, Site::ResidPre))?;
                    fold(&head_input_gradients(decoder, l, x, &grads, dtype)?, 1)
                })
                .collect::<Result<Vec<_>>>()?;
            reader_gradients_with_heads(&folded, cfg, dtype, heads)?
        }
    };
    let grads = folded;
    let stacked = |on: bool, site| on.then(|| stacked_gradients(&grads, cfg.n_layers, site, dtype)).transpose();
    let (patterns, hidden) = (stacked(fix.qk, Site::Pattern)?, stacked(fix.mlp, Site::MlpPost)?);
    Ok((Step { readers, writers: writer_gradients(&grads, cfg, dtype)?, patterns, hidden }, own))
}

/// Σ_{s,d} Δ·G per item: Δ (n_fwd, b, s, d), G (n, b, s, d) → (b, n_fwd, n).
pub(crate) fn contract_per_item(delta: &Tensor, g: &Tensor) -> Result<Tensor> {
    let (nf, b, s, d) = delta.dims4()?;
    let n = g.dim(0)?;
    let delta = delta.transpose(0, 1)?.contiguous()?.reshape((b, nf, s * d))?;
    let g = g.transpose(0, 1)?.contiguous()?.reshape((b, n, s * d))?;
    Ok(delta.matmul(&g.transpose(1, 2)?)?)
}

/// Σ_{b,s,d} Δ·G: Δ (n_fwd, b, s, d), G (n, b, s, d) → (n_fwd, n), one matrix product.
pub(crate) fn contract(delta: &Tensor, g: &Tensor) -> Result<Tensor> {
    let nf = delta.dim(0)?;
    let n = g.dim(0)?;
    let delta = delta.reshape((nf, ()))?;
    let g = g.reshape((n, ()))?;
    Ok(delta.matmul(&g.t()?)?)
}

/// Node scores per item: Σ_{s,d} Δ_u · ∂L/∂z_u → (b, n_fwd).
pub(crate) fn node_contract(delta: &Tensor, writer_grads: &Tensor) -> Result<Tensor> {
    Ok((delta * writer_grads)?.sum(3)?.sum(2)?.t()?)
}
