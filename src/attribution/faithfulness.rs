//! Faithfulness of circuits (ALGORITHMS.md §4): run the clean input and, for every graph edge
//! u → v NOT in the circuit, add (z'_u − z_u) into in_v, where z_u is u's output *in this patched
//! run* (EAP-IG's `evaluate_graph` convention). Then in_v = Σ_{u in circuit} z_u + Σ_{u not in
//! circuit} z'_u + biases, so the empty circuit reproduces the corrupted run exactly.
//!
//! z_u of the patched run is known only after the run, so the additions come from the previous
//! pass and the passes are repeated to a fixed point: the input's output never changes, and each
//! pass makes one more writer group (the input; then per layer its heads, then its MLP, or both
//! at once with a parallel residual) exact. With patches from groups up to g, pass g + 1 is the
//! patched run. Each reader hook point gets one `Edit::Add`: the sum over its readers' patched
//! edges, Cᵀ·Δ with C the (n_fwd, n_bwd) complement of the circuit, one matrix product.

use super::data::{batches, Batch, Example};
use super::metric::{work_dtype, Metric};
use super::runs::{corrupted, Clean, Corruption, PassCount, Progress, Tracker};
use super::writers::{capture_writers, reader_additions, writer_outputs, Ablation};
use crate::error::{Error, Result};
use crate::graph::{GraphShape, Writer};
use crate::hooks::{Edit, HookSet, Intervention};
use crate::model::Decoder;
use candle_core::{DType, Device, Tensor};

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

/// The writer group whose output is exact from that pass on: input 0; then per layer its heads
/// and its MLP (the same group with a parallel residual, where the MLP does not read the heads).
fn writer_group(shape: GraphShape, w: usize) -> usize {
    match shape.writer(w) {
        Writer::Input => 0,
        Writer::Head { layer, .. } if shape.parallel_residual => layer + 1,
        Writer::Mlp { layer } if shape.parallel_residual => layer + 1,
        Writer::Head { layer, .. } => 2 * layer + 1,
        Writer::Mlp { layer } => 2 * layer + 2,
    }
}

/// Checks a mask and returns the patched edges as a (n_fwd, n_bwd) 0/1 matrix, which readers
/// have any, and how many passes make the patched run exact (0: nothing to patch).
fn complement(shape: GraphShape, mask: &[bool], index: usize) -> Result<(Vec<f32>, Vec<bool>, usize)> {
    let (nf, nb) = (shape.n_fwd(), shape.n_bwd());
    if mask.len() != nf * nb {
        return Err(Error::input(format!(
            "circuit mask {index} has {} entries; this model's graph needs n_fwd × n_bwd = {nf} × {nb} = {}",
            mask.len(),
            nf * nb
        )));
    }
    let mut c = vec![0f32; nf * nb];
    let mut used = vec![false; nb];
    let mut passes = 0;
    for (w, r) in shape.edges() {
        if !mask[w * nb + r] {
            c[w * nb + r] = 1.0;
            used[r] = true;
            passes = passes.max(writer_group(shape, w) + 1);
        }
    }
    Ok((c, used, passes))
}

/// One batch's clean run and corrupted writer outputs, ready to evaluate circuits on.
struct Evaluator<'a> {
    decoder: &'a Decoder,
    batch: &'a Batch,
    metric: Metric,
    /// the writers' corrupted outputs z' (n_fwd, b, s, d)
    z_corrupt: Tensor,
    clean: Clean,
}

impl Evaluator<'_> {
    /// Per-item metric values (b,) of the clean batch with every edge outside `mask` patched.
    fn values(&self, mask: &[bool], index: usize, track: &mut Tracker) -> Result<Tensor> {
        let (decoder, batch, metric, clean) = (self.decoder, self.batch, self.metric, &self.clean);
        let cfg = &decoder.cfg;
        let shape = GraphShape::of(cfg);
        let dtype = work_dtype(decoder.dtype());
        let (c, used, passes) = complement(shape, mask, index)?;
        if passes == 0 {
            return metric.values_at_rows(&clean.log_probs, batch, Some(&clean.log_probs));
        }
        let c = Tensor::from_vec(c, (shape.n_fwd(), shape.n_bwd()), &Device::Cpu)?.to_dtype(dtype)?;
        let (nf, b, s, d) = self.z_corrupt.dims4()?;
        let mut z = clean.z.clone();
        for pass in 1..=passes {
            let delta = (&self.z_corrupt - &z)?.reshape((nf, b * s * d))?;
            let per_reader = c.t()?.matmul(&delta)?.reshape((shape.n_bwd(), b, s, d))?;
            let mut hooks = if pass < passes { capture_writers(cfg) } else { HookSet::new() };
            for (point, add) in reader_additions(&per_reader, shape, &used)? {
                hooks = hooks.intervene(Intervention::new(point, Edit::Add(add.to_dtype(decoder.dtype())?)));
            }
            let out = decoder.forward(&batch.clean, &hooks)?;
            track.forward();
            if pass == passes {
                return metric.values(&out.logits, batch, Some(&clean.log_probs));
            }
            z = writer_outputs(&out.cache, cfg, dtype)?;
        }
        Err(Error::input("internal: the patched passes ended without a result"))
    }
}

/// Evaluates each circuit mask (row-major (n_fwd, n_bwd), true = edge in the circuit) on
/// `examples`; one call evaluates a whole sweep and shares the clean and corrupted runs.
pub fn faithfulness(
    decoder: &Decoder,
    examples: &[Example],
    masks: &[Vec<bool>],
    cfg: &FaithfulnessConfig,
    progress: &dyn Progress,
) -> Result<Faithfulness> {
    let shape = GraphShape::of(&decoder.cfg);
    let batches = batches(examples, cfg.batch_size)?;
    let mut planned_per_batch = 1 + u64::from(cfg.ablation.needs_corrupted_prompts());
    for (i, m) in masks.iter().enumerate() {
        planned_per_batch += complement(shape, m, i)?.2 as u64;
    }
    let empty = vec![false; shape.n_fwd() * shape.n_bwd()];
    if cfg.ablation != Ablation::Patching {
        planned_per_batch += complement(shape, &empty, 0)?.2 as u64;
    }
    let planned = Corruption::setup_forwards(&cfg.ablation, cfg.batch_size) + planned_per_batch * batches.len() as u64;
    let mut track = Tracker::new(planned, progress);
    let corruption = Corruption::prepare(decoder, &cfg.ablation, cfg.batch_size, &mut track)?;

    let sum = |t: &Tensor| -> Result<f64> { Ok(t.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?) };
    let (mut model, mut corrupt, mut circuits) = (0.0, 0.0, vec![0.0; masks.len()]);
    for batch in &batches {
        let corr = corrupted(decoder, batch, &corruption, &mut track)?;
        let clean = Clean::run(decoder, batch, &mut track)?;
        let z_corrupt = corr.z_prime(&clean.z)?;
        let eval = Evaluator { decoder, batch, metric: cfg.metric, z_corrupt, clean };
        let clean_lp = &eval.clean.log_probs;
        model += sum(&cfg.metric.values_at_rows(clean_lp, batch, Some(clean_lp))?)?;
        corrupt += sum(&match &corr.log_probs {
            Some(lp) => cfg.metric.values_at_rows(lp, batch, Some(clean_lp))?,
            None => eval.values(&empty, 0, &mut track)?,
        })?;
        for (i, mask) in masks.iter().enumerate() {
            circuits[i] += sum(&eval.values(mask, i, &mut track)?)?;
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

    #[test]
    fn patched_passes_follow_the_deepest_patched_writer() {
        let seq = GraphShape { n_layers: 2, n_heads: 2, parallel_residual: false };
        let par = GraphShape { parallel_residual: true, ..seq };
        let n = seq.n_fwd() * seq.n_bwd();
        assert_eq!(complement(seq, &vec![true; n], 0).unwrap().2, 0);
        assert_eq!(complement(seq, &vec![false; n], 0).unwrap().2, 5, "input, heads 0, m0, heads 1, m1");
        assert_eq!(complement(par, &vec![false; n], 0).unwrap().2, 3, "input, layer 0, layer 1");
        // only the input's edges patched: one pass
        let mut m = vec![true; n];
        m[..seq.n_bwd()].iter_mut().for_each(|x| *x = false);
        assert_eq!(complement(seq, &m, 0).unwrap().2, 1);
        let err = complement(seq, &[true; 3], 4).unwrap_err().to_string();
        assert!(err.contains("mask 4") && err.contains("3 entries"), "{err}");
    }
}
