//! Faithfulness of circuits (ALGORITHMS.md §4): run the clean input and, for every graph edge
//! u → v NOT in the circuit, add (z'_u − z_u) into in_v, where z_u is u's output *in this patched
//! run* (EAP-IG's `evaluate_graph` convention). Then in_v = Σ_{u in circuit} z_u + Σ_{u not in
//! circuit} z'_u + biases, so the empty circuit reproduces the corrupted run exactly.
//!
//! One forward pass per circuit and batch: every writer fires before its readers, so each reader
//! hook point gets an [`Edit::Dynamic`](crate::hooks::Edit::Dynamic) that reads the writers' outputs captured earlier in the
//! same pass and patches its readers with one matrix product over those writers. Per reader v
//! (C_v = the circuit's edges into v, U_v = all of v's writers, Δ_u = z'_u − z_u(this run)):
//! - complement side: in_v + Σ_{u ∈ U_v∖C_v} Δ_u, the definition;
//! - circuit side: x'_v − Σ_{u ∈ C_v} Δ_u, where x'_v = Σ_{u ∈ U_v} z'_u + biases is v's input
//!   with every edge patched (computed once per batch from the clean run). Equal to the
//!   complement side because in_v = Σ_{u ∈ U_v} z_u + biases in this run too.
//!
//! Each reader takes whichever side sums fewer writers, so a small circuit in a sweep costs a few
//! writers per reader, not all of them. Readers with every edge in the circuit get no edit, and a
//! hook point whose readers all need none gets no intervention (no per-head q/k/v path in that
//! layer).
//!
//! Passes per batch: the clean run (capturing writers and reader streams), the corrupted run for
//! patching, then 1 per circuit with at least one edge outside it (0 for the full circuit), plus
//! 1 for the empty circuit under zero/mean ablation or partial patching (the reference M(corrupted)).

use super::data::{batches_on, Batch, Example};
use super::metric::{row_log_probs, work_dtype, Metric};
use super::reader_fix::ReaderFix;
use super::runs::{corrupted, Clean, Corruption, PassCount, Tracker};
use super::writers::{writer_points, Ablation};
use crate::error::{Error, Result};
use crate::graph::{GraphShape, Qkv, Reader, Writer};
use crate::hooks::{ActivationCache, HookPoint, HookSet, Intervention, Site};
use crate::model::{Decoder, ModelConfig};
use crate::progress::Progress;
use candle_core::{DType, Tensor};
use std::sync::Arc;

/// How circuits are evaluated.
#[derive(Clone, Debug)]
pub struct FaithfulnessConfig {
    pub metric: Metric,
    pub ablation: Ablation,
    pub batch_size: usize,
}

impl Default for FaithfulnessConfig {
    fn default() -> Self {
        FaithfulnessConfig { metric: Metric::LogitDiff, ablation: Ablation::Patching, batch_size: 8 }
    }
}

/// Metric values (means over items) of the model, the corrupted model and each circuit.
#[derive(Clone, Debug, PartialEq)]
pub struct Faithfulness {
    /// M(model): the clean run
    pub model: f64,
    /// M(corrupted): the corrupted run for patching; the empty circuit for zero/mean ablation
    pub corrupted: f64,
    /// M(circuit), one per mask
    pub circuits: Vec<f64>,
    /// (M(circuit) − M(corrupted)) / (M(model) − M(corrupted)), one per mask (NaN when the model
    /// and the corrupted model score the same)
    pub normalised: Vec<f64>,
    pub passes: PassCount,
}

/// A reader hook point: its readers are the backward indices `first..first + n` (the heads of a
/// q/k/v input, else one), all reading the writers `0..n_up`; `stream` indexes its all-patched
/// input x' (2l: attention inputs of layer l, 2l + 1: MLP input of layer l, 2L: logits).
struct ReaderPoint {
    point: HookPoint,
    first: usize,
    n: usize,
    per_head: bool,
    n_up: usize,
    stream: usize,
}

fn reader_groups(shape: GraphShape) -> Vec<ReaderPoint> {
    let (nl, nh) = (shape.n_layers, shape.n_heads);
    let mut v = Vec::with_capacity(4 * nl + 1);
    for l in 0..nl {
        // the writers before layer l's heads
        let up_attn = shape.writer_index(Writer::Head { layer: l, head: 0 });
        for (qkv, site) in Qkv::ALL.into_iter().zip([Site::QInput, Site::KInput, Site::VInput]) {
            let point = HookPoint::Block(l, site);
            let first = shape.reader_index(Reader::Head { layer: l, head: 0, qkv });
            v.push(ReaderPoint { point, first, n: nh, per_head: true, n_up: up_attn, stream: 2 * l });
        }
        // The MLP also reads its own layer's heads, unless attention and MLP read the same stream.
        let n_up = if shape.parallel_residual { up_attn } else { shape.writer_index(Writer::Mlp { layer: l }) };
        let point = HookPoint::Block(l, Site::MlpIn);
        let first = shape.reader_index(Reader::Mlp { layer: l });
        v.push(ReaderPoint { point, first, n: 1, per_head: false, n_up, stream: 2 * l + 1 });
    }
    let point = HookPoint::Block(nl - 1, Site::ResidPost);
    let first = shape.reader_index(Reader::Logits);
    v.push(ReaderPoint { point, first, n: 1, per_head: false, n_up: shape.n_fwd(), stream: 2 * nl });
    v
}

/// One circuit's patch at one reader hook point.
#[derive(Clone, Debug, PartialEq)]
struct PointPatch {
    point: HookPoint,
    per_head: bool,
    stream: usize,
    /// per reader of the point: its row of `coef`, or None when all its edges are in the circuit
    rows: Vec<Option<usize>>,
    /// per reader: starts from the all-patched input x' (circuit side) instead of its own input
    from_patched: Vec<bool>,
    /// the writers with a non-zero coefficient, ascending
    writers: Vec<usize>,
    /// (rows, writers) row-major coefficients of Δ = z' − z: +1 complement side, −1 circuit side
    coef: Vec<f32>,
}

fn check_mask(shape: GraphShape, mask: &[bool], index: usize) -> Result<()> {
    let (nf, nb) = (shape.n_fwd(), shape.n_bwd());
    if mask.len() != nf * nb {
        return Err(Error::input(format!(
            "circuit mask {index} has {} entries; this model's graph needs n_fwd × n_bwd = {nf} × {nb} = {}",
            mask.len(),
            nf * nb
        )));
    }
    Ok(())
}

/// The patches a circuit (a checked mask) needs, one per reader point that has any; empty for
/// the full circuit. Entries of the mask that are not edges of the graph are ignored.
fn plan(shape: GraphShape, mask: &[bool]) -> Vec<PointPatch> {
    let (nf, nb) = (shape.n_fwd(), shape.n_bwd());
    let mut out = Vec::new();
    for rp in reader_groups(shape) {
        let mut rows = vec![None; rp.n];
        let mut from_patched = vec![false; rp.n];
        let mut coef_rows: Vec<Vec<(usize, f32)>> = Vec::new();
        for i in 0..rp.n {
            let r = rp.first + i;
            let in_circuit = (0..rp.n_up).filter(|&w| mask[w * nb + r]).count();
            let outside = rp.n_up - in_circuit;
            if outside == 0 {
                continue;
            }
            rows[i] = Some(coef_rows.len());
            // Sum over whichever side has fewer writers (see the module documentation).
            from_patched[i] = in_circuit < outside;
            let (keep, c) = if from_patched[i] { (true, -1.0) } else { (false, 1.0) };
            coef_rows.push((0..rp.n_up).filter(|&w| mask[w * nb + r] == keep).map(|w| (w, c)).collect());
        }
        if coef_rows.is_empty() {
            continue;
        }
        let mut writers: Vec<usize> = coef_rows.iter().flatten().map(|&(w, _)| w).collect();
        writers.sort_unstable();
        writers.dedup();
        let mut column = vec![0; nf];
        writers.iter().enumerate().for_each(|(j, &w)| column[w] = j);
        let mut coef = vec![0f32; coef_rows.len() * writers.len()];
        for (i, row) in coef_rows.iter().enumerate() {
            row.iter().for_each(|&(w, c)| coef[i * writers.len() + column[w]] = c);
        }
        out.push(PointPatch {
            point: rp.point,
            per_head: rp.per_head,
            stream: rp.stream,
            rows,
            from_patched,
            writers,
            coef,
        });
    }
    out
}

/// The hook points holding the outputs of `writers`.
fn writer_reads(shape: GraphShape, learned_positions: bool, writers: &[usize]) -> Vec<HookPoint> {
    let mut v: Vec<HookPoint> = Vec::new();
    for &w in writers {
        let points: &[HookPoint] = &match shape.writer(w) {
            Writer::Input if learned_positions => vec![HookPoint::Embed, HookPoint::PosEmbed],
            Writer::Input => vec![HookPoint::Embed],
            Writer::Head { layer, .. } => vec![HookPoint::Block(layer, Site::Result)],
            Writer::Mlp { layer } => vec![HookPoint::Block(layer, Site::MlpOut)],
        };
        for p in points {
            if !v.contains(p) {
                v.push(*p);
            }
        }
    }
    v
}

/// This run's outputs of `writers` (ascending) from the cache: (writers.len(), b, s, d).
fn gather_writers(
    cache: &ActivationCache,
    shape: GraphShape,
    learned_positions: bool,
    writers: &[usize],
    dtype: DType,
) -> Result<Tensor> {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < writers.len() {
        match shape.writer(writers[i]) {
            Writer::Input => {
                let mut input = cache.get(HookPoint::Embed)?.clone();
                if learned_positions {
                    input = (input + cache.get(HookPoint::PosEmbed)?)?;
                }
                parts.push(input.unsqueeze(0)?);
                i += 1;
            }
            Writer::Mlp { layer } => {
                parts.push(cache.get(HookPoint::Block(layer, Site::MlpOut))?.unsqueeze(0)?);
                i += 1;
            }
            Writer::Head { layer, head } => {
                // consecutive indices of heads are heads of one layer: one slice of hook_result
                let mut n = 1;
                while i + n < writers.len()
                    && writers[i + n] == writers[i] + n
                    && matches!(shape.writer(writers[i + n]), Writer::Head { .. })
                {
                    n += 1;
                }
                let result = cache.get(HookPoint::Block(layer, Site::Result))?; // (b, s, H, d)
                parts.push(result.narrow(2, head, n)?.permute((2, 0, 1, 3))?);
                i += n;
            }
        }
    }
    Ok(Tensor::cat(&parts, 0)?.to_dtype(dtype)?)
}

/// Where a reader point's patched input starts from, before Σ coef·Δ is added.
enum Base {
    /// its own input in this run (complement side only)
    Own,
    /// x' (circuit side only)
    Patched,
    /// per head: own input × keep + x' × take, (1, 1, H, 1) 0/1 weights
    Mixed { keep: Tensor, take: Tensor },
}

/// The state of one point's dynamic edit.
struct Patcher {
    shape: GraphShape,
    learned_positions: bool,
    dtype: DType,
    per_head: bool,
    writers: Vec<usize>,
    /// (writers,) u32
    writer_index: Tensor,
    /// (rows, writers)
    coef: Tensor,
    /// z' of every writer (n_fwd, b, s, d)
    z_corrupt: Tensor,
    /// x' (b, s, d)
    x_patched: Tensor,
    /// per head: its row of coef·Δ, with rows.len() = a zero row; None when every head has a row
    row_of_head: Option<Tensor>,
    base: Base,
}

impl Patcher {
    /// x: (b, s, H, d) per head or (b, s, d) → the patched input, in x's dtype.
    fn apply(&self, x: &Tensor, cache: &ActivationCache) -> Result<Tensor> {
        let own = x.to_dtype(self.dtype)?;
        let patched = || -> Result<Tensor> {
            Ok(if self.per_head {
                self.x_patched.unsqueeze(2)?.broadcast_as(own.shape())?
            } else {
                self.x_patched.clone()
            })
        };
        let base = match &self.base {
            Base::Own => own.clone(),
            Base::Patched => patched()?,
            Base::Mixed { keep, take } => (own.broadcast_mul(keep)? + patched()?.broadcast_mul(take)?)?,
        };
        if self.writers.is_empty() {
            return Ok(base.to_dtype(x.dtype())?.contiguous()?);
        }
        let z = gather_writers(cache, self.shape, self.learned_positions, &self.writers, self.dtype)?;
        let (w, b, s, d) = z.dims4()?;
        let z_corrupt = if w == self.z_corrupt.dim(0)? {
            self.z_corrupt.clone()
        } else {
            self.z_corrupt.index_select(&self.writer_index, 0)?
        };
        let delta = (z_corrupt - z)?.reshape((w, b * s * d))?;
        let rows = self.coef.matmul(&delta)?; // (rows, b·s·d)
        let add = if self.per_head {
            let rows = match &self.row_of_head {
                Some(idx) => {
                    let zero = Tensor::zeros((1, b * s * d), self.dtype, rows.device())?;
                    Tensor::cat(&[rows, zero], 0)?.index_select(idx, 0)?
                }
                None => rows,
            };
            rows.reshape((self.shape.n_heads, b, s, d))?.permute((1, 2, 0, 3))?
        } else {
            rows.reshape((b, s, d))?
        };
        Ok((base + add)?.to_dtype(x.dtype())?.contiguous()?)
    }
}

/// One batch's clean run and corrupted writer outputs, ready to evaluate circuits on.
struct Evaluator<'a> {
    decoder: &'a Decoder,
    batch: &'a Batch,
    metric: Metric,
    /// the writers' corrupted outputs z' (n_fwd, b, s, d)
    z_corrupt: Tensor,
    /// x' per reader stream (see `ReaderPoint::stream`), each (b, s, d)
    x_patched: Vec<Tensor>,
    clean: Clean,
}

/// The clean run, capturing the writers and the streams the readers read: per layer the
/// attention input and the MLP input, and the final residual stream (b, s, d) each.
fn clean_run(decoder: &Decoder, batch: &Batch, track: &mut Tracker) -> Result<(Clean, Vec<Tensor>)> {
    let cfg = &decoder.cfg;
    let streams = stream_points(cfg);
    let hooks = HookSet::new().capture(writer_points(cfg).into_iter().chain(streams.iter().copied()));
    let out = decoder.forward(&batch.clean, &hooks.logits_at(&batch.rows))?;
    track.forward();
    let clean = Clean::from_cache(&out.cache, decoder, row_log_probs(&out.logits, batch)?, ReaderFix::default())?;
    let dtype = work_dtype(decoder.dtype());
    let x = streams.iter().map(|p| Ok(out.cache.get(*p)?.to_dtype(dtype)?)).collect::<Result<Vec<_>>>()?;
    Ok((clean, x))
}

fn stream_points(cfg: &ModelConfig) -> Vec<HookPoint> {
    let mut v: Vec<HookPoint> = (0..cfg.n_layers)
        .flat_map(|l| [HookPoint::Block(l, Site::ResidPre), HookPoint::Block(l, Site::MlpIn)])
        .collect();
    v.push(HookPoint::Block(cfg.n_layers - 1, Site::ResidPost));
    v
}

/// x'_v = in_v(clean) + Σ_{u → v} (z'_u − z_u(clean)) per reader stream: a running sum over
/// the writers in forward order. x: the clean streams, z, z_corrupt: (n_fwd, b, s, d).
fn patched_streams(shape: GraphShape, x: &[Tensor], z: &Tensor, z_corrupt: &Tensor) -> Result<Vec<Tensor>> {
    let nh = shape.n_heads;
    let delta = (z_corrupt - z)?;
    let mut sum = delta.get(0)?;
    let mut out = Vec::with_capacity(x.len());
    for l in 0..shape.n_layers {
        let first = shape.writer_index(Writer::Head { layer: l, head: 0 });
        out.push((&x[2 * l] + &sum)?);
        let heads = delta.narrow(0, first, nh)?.sum(0)?;
        if shape.parallel_residual {
            out.push((&x[2 * l + 1] + &sum)?);
            sum = ((sum + heads)? + delta.get(first + nh)?)?;
        } else {
            sum = (sum + heads)?;
            out.push((&x[2 * l + 1] + &sum)?);
            sum = (sum + delta.get(first + nh)?)?;
        }
    }
    out.push((&x[2 * shape.n_layers] + &sum)?);
    Ok(out)
}

impl Evaluator<'_> {
    /// The dynamic edit that applies `patch` during the pass.
    fn intervention(&self, patch: PointPatch) -> Result<Intervention> {
        let cfg = &self.decoder.cfg;
        let shape = GraphShape::of(cfg);
        let dtype = work_dtype(self.decoder.dtype());
        let dev = self.decoder.device();
        let n_rows = patch.rows.iter().flatten().count();
        let n_take = patch.from_patched.iter().filter(|&&t| t).count();
        let base = if n_take == 0 {
            Base::Own
        } else if n_take == patch.rows.len() {
            Base::Patched
        } else {
            // only per-head points have several readers
            let take: Vec<f32> = patch.from_patched.iter().map(|&t| f32::from(u8::from(t))).collect();
            let take = Tensor::from_vec(take, (1, 1, shape.n_heads, 1), dev)?.to_dtype(dtype)?;
            Base::Mixed { keep: take.affine(-1.0, 1.0)?, take }
        };
        let row_of_head = (patch.per_head && n_rows < patch.rows.len())
            .then(|| {
                let idx: Vec<u32> = patch.rows.iter().map(|r| r.unwrap_or(n_rows) as u32).collect();
                Tensor::new(idx, dev)
            })
            .transpose()?;
        let index: Vec<u32> = patch.writers.iter().map(|&w| w as u32).collect();
        let patcher = Patcher {
            shape,
            learned_positions: cfg.learned_positions(),
            dtype,
            per_head: patch.per_head,
            writer_index: Tensor::new(index, dev)?,
            coef: Tensor::from_vec(patch.coef, (n_rows, patch.writers.len()), dev)?.to_dtype(dtype)?,
            z_corrupt: self.z_corrupt.clone(),
            x_patched: self.x_patched[patch.stream].clone(),
            row_of_head,
            base,
            writers: patch.writers,
        };
        let reads = writer_reads(shape, cfg.learned_positions(), &patcher.writers);
        let patcher = Arc::new(patcher);
        Ok(Intervention::dynamic(patch.point, reads, move |x, cache| patcher.apply(x, cache)))
    }

    /// Per-item metric values (b,) of the clean batch with every edge outside `mask` patched:
    /// one forward pass, none for the full circuit.
    fn values(&self, mask: &[bool], track: &mut Tracker) -> Result<Tensor> {
        let (metric, batch, clean) = (self.metric, self.batch, &self.clean);
        let patches = plan(GraphShape::of(&self.decoder.cfg), mask);
        if patches.is_empty() {
            return metric.values_at_rows(&clean.log_probs, batch, Some(&clean.log_probs));
        }
        let mut hooks = HookSet::new();
        for patch in patches {
            hooks = hooks.intervene(self.intervention(patch)?);
        }
        let out = self.decoder.forward(&batch.clean, &hooks.logits_at(&batch.rows))?;
        track.forward();
        metric.values(&out.logits, batch, Some(&clean.log_probs))
    }
}

/// Evaluates each circuit mask (row-major (n_fwd, n_bwd), true = edge in the circuit) on
/// `examples`; one call evaluates a whole sweep and shares the clean and corrupted runs.
/// Forward passes per batch: clean + corrupted (patching) + 1 per circuit that leaves out any
/// edge (+ 1 for the empty circuit under zero/mean ablation).
pub fn faithfulness(
    decoder: &Decoder,
    examples: &[Example],
    masks: &[Vec<bool>],
    cfg: &FaithfulnessConfig,
    progress: &dyn Progress,
) -> Result<Faithfulness> {
    let shape = GraphShape::of(&decoder.cfg);
    let batches = batches_on(examples, cfg.batch_size, decoder.device())?;
    let passes = |m: &[bool]| u64::from(!plan(shape, m).is_empty());
    // The corrupted run's own metric is M(corrupted) for plain patching; otherwise the empty
    // circuit is evaluated for it.
    let corrupted_is_reference = match cfg.ablation {
        Ablation::Patching => true,
        Ablation::Partial { alpha } => alpha == 1.0,
        Ablation::Zero | Ablation::Mean { .. } => false,
    };
    let empty = vec![false; shape.n_fwd() * shape.n_bwd()];
    let mut planned_per_batch = 1 + u64::from(cfg.ablation.needs_corrupted_prompts());
    for (i, m) in masks.iter().enumerate() {
        check_mask(shape, m, i)?;
        planned_per_batch += passes(m);
    }
    if !corrupted_is_reference {
        planned_per_batch += passes(&empty);
    }
    let planned = Corruption::setup_forwards(&cfg.ablation, cfg.batch_size) + planned_per_batch * batches.len() as u64;
    let mut track = Tracker::new(planned, progress);
    let corruption = Corruption::prepare(decoder, &cfg.ablation, cfg.batch_size, &mut track)?;

    let sum = |t: &Tensor| -> Result<f64> { Ok(t.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?) };
    let (mut model, mut corrupt, mut circuits) = (0.0, 0.0, vec![0.0; masks.len()]);
    for batch in &batches {
        let corr = corrupted(decoder, batch, &corruption, &mut track)?;
        let (clean, streams) = clean_run(decoder, batch, &mut track)?;
        let z_corrupt = corr.z_prime(&clean.z)?;
        let x_patched = patched_streams(shape, &streams, &clean.z, &z_corrupt)?;
        let eval = Evaluator { decoder, batch, metric: cfg.metric, z_corrupt, x_patched, clean };
        let clean_lp = &eval.clean.log_probs;
        model += sum(&cfg.metric.values_at_rows(clean_lp, batch, Some(clean_lp))?)?;
        corrupt += sum(&match &corr.log_probs {
            Some(lp) => cfg.metric.values_at_rows(lp, batch, Some(clean_lp))?,
            None => eval.values(&empty, &mut track)?,
        })?;
        for (i, mask) in masks.iter().enumerate() {
            circuits[i] += sum(&eval.values(mask, &mut track)?)?;
        }
    }
    let n = examples.len() as f64;
    let (model, corrupted) = (model / n, corrupt / n);
    let circuits: Vec<f64> = circuits.into_iter().map(|c| c / n).collect();
    let normalised = circuits.iter().map(|c| (c - corrupted) / (model - corrupted)).collect();
    Ok(Faithfulness { model, corrupted, circuits, normalised, passes: track.passes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shapes() -> [GraphShape; 2] {
        let seq = GraphShape { n_layers: 2, n_heads: 3, parallel_residual: false };
        [seq, GraphShape { parallel_residual: true, ..seq }]
    }

    #[test]
    fn reader_groups_cover_every_reader_with_its_writers() {
        for shape in shapes() {
            let mut seen = vec![false; shape.n_bwd()];
            for rp in reader_groups(shape) {
                for (r, seen) in seen.iter_mut().enumerate().skip(rp.first).take(rp.n) {
                    *seen = true;
                    for w in 0..shape.n_fwd() {
                        let edge = shape.is_edge(shape.writer(w), shape.reader(r));
                        assert_eq!(edge, w < rp.n_up, "{shape:?}: writer {w} -> reader {r}");
                    }
                }
            }
            assert!(seen.iter().all(|&s| s));
        }
    }

    #[test]
    fn plans_patch_only_readers_with_edges_outside_the_circuit() {
        for shape in shapes() {
            let (nf, nb) = (shape.n_fwd(), shape.n_bwd());
            let n = nf * nb;
            // Full circuit: nothing to patch, no pass. Non-edges in the mask change nothing.
            assert!(plan(shape, &vec![true; n]).is_empty());
            let mut full_edges = vec![false; n];
            shape.edges().for_each(|(w, r)| full_edges[w * nb + r] = true);
            assert!(plan(shape, &full_edges).is_empty());
            // Empty circuit: every reader point starts from x' and needs no writer.
            let empty = plan(shape, &vec![false; n]);
            assert_eq!(empty.len(), 4 * shape.n_layers + 1);
            assert!(empty.iter().all(|p| p.writers.is_empty() && p.from_patched.iter().all(|&t| t)));
            // One edge removed: one point, one row, the edge's writer added on the complement side.
            let r = shape.reader_index(Reader::Head { layer: 1, head: 2, qkv: crate::graph::Qkv::K });
            let mut m = full_edges.clone();
            m[3 * nb + r] = false;
            let p = plan(shape, &m);
            assert_eq!(p.len(), 1);
            assert_eq!(p[0].point, HookPoint::Block(1, Site::KInput));
            assert_eq!(p[0].rows, vec![None, None, Some(0)]);
            assert_eq!((p[0].writers.clone(), p[0].coef.clone(), p[0].from_patched[2]), (vec![3], vec![1.0], false));
            // One edge kept into the logits: the circuit side, subtracting that writer's Δ.
            let logits = shape.reader_index(Reader::Logits);
            let mut m = vec![false; n];
            m[2 * nb + logits] = true;
            let p = plan(shape, &m);
            let last = p.last().unwrap();
            assert_eq!(
                (last.writers.clone(), last.coef.clone(), last.from_patched.clone()),
                (vec![2], vec![-1.0], vec![true])
            );
        }
        let err = check_mask(shapes()[0], &[true; 3], 4).unwrap_err().to_string();
        assert!(err.contains("mask 4") && err.contains("3 entries"), "{err}");
    }
}
