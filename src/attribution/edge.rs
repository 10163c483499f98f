//! The gradient methods of ALGORITHMS.md §2: EAP, EAP-IG on inputs, EAP-IG on activations and
//! clean-corrupted. All score s(u→v) = Σ_{b,s,d} (z'_u − z_u)·Ḡ_v, where Ḡ_v is the loss gradient
//! at reader v's input averaged over the method's steps, so each batch ends in one matrix
//! product Δ (n_fwd, b·s·d) × Ḡᵀ (b·s·d, n_bwd). Node scores use the gradient at the writer's
//! own output instead, averaged over the same steps.

use super::data::Batch;
use super::reader_fix::{self, FixInputs};
use super::runs::{
    contract, contract_per_item, corrupted, gradient_step, node_contract, Clean, Corruption, Step, Tiles, Tracker,
};
use super::{AttributionConfig, Method};
use crate::error::{Error, Result};
use crate::graph::{GraphShape, Writer};
use crate::hooks::{Edit, HookPoint, Intervention, Site};
use crate::model::Decoder;
use candle_core::Tensor;

/// Scores of one batch.
pub(crate) struct BatchScores {
    /// (n_fwd, n_bwd), summed over the batch's items
    pub sum: Tensor,
    /// (b, n_fwd, n_bwd), when per-sample scores were asked for
    pub per_item: Option<Tensor>,
    /// (b, n_fwd) node scores (gradient methods only)
    pub nodes: Option<Tensor>,
    /// (b,) metric values of the clean run
    pub clean_values: Tensor,
    /// (b,) metric values of the corrupted run (patching only)
    pub corrupted_values: Option<Tensor>,
}

/// The writer groups EAP-IG on activations interpolates, in forward order: the input, all heads
/// of a layer (at `hook_result`), a layer's MLP.
#[derive(Clone, Copy, Debug)]
enum Group {
    Input,
    Heads(usize),
    Mlp(usize),
}

fn groups(n_layers: usize) -> Vec<Group> {
    let mut v = vec![Group::Input];
    for l in 0..n_layers {
        v.push(Group::Heads(l));
        v.push(Group::Mlp(l));
    }
    v
}

/// Rows (items × steps) up to which EAP-IG fills a pass with interpolation steps. Measured on
/// SmolLM2-135M on 2 CPU cores (4 IOI prompts, m = 5): 1 item a pass with its 5 steps together
/// took 10.3 s against 15.4 s one step a pass, but 4 items a pass took 8.4 s one step a pass,
/// 10.1 s two steps a pass and 12.7 s all five: past a handful of rows a bigger pass costs more
/// than the passes it saves (the per-reader gradients of a pass grow with its rows).
pub(crate) const STEP_ROWS: usize = 5;

/// Interpolation steps per pass for a batch of `b` items: as many as `max_rows` and
/// [`STEP_ROWS`] rows allow (items × steps), at least one, at most all `steps`.
pub(crate) fn steps_per_pass(max_rows: usize, b: usize, steps: usize) -> usize {
    (max_rows.min(STEP_ROWS) / b.max(1)).clamp(1, steps.max(1))
}

/// Forward passes per batch of `b` items of a gradient method, besides the corrupted run.
pub(crate) fn forwards_per_batch(method: &Method, n_layers: usize, b: usize, max_rows: usize) -> u64 {
    let passes = |steps: usize| steps.div_ceil(steps_per_pass(max_rows, b, steps)) as u64;
    match *method {
        Method::Eap => 1,
        Method::EapIgInputs { steps } => 1 + passes(steps),
        Method::EapIgActivations { steps } => 1 + (2 * n_layers + 1) as u64 * passes(steps),
        Method::CleanCorrupted => 3,
        Method::Exact => 1,
    }
}

/// a + α (b − a)
fn lerp(a: &Tensor, b: &Tensor, alpha: f64) -> Result<Tensor> {
    Ok((a + ((b - a)? * alpha)?)?)
}

pub(crate) fn gradient_scores(
    decoder: &Decoder,
    batch: &Batch,
    method: &Method,
    config: &AttributionConfig,
    corruption: &Corruption,
    track: &mut Tracker,
) -> Result<BatchScores> {
    let (metric, per_sample, fix) = (config.metric, config.per_sample, config.fix);
    let cfg = &decoder.cfg;
    let shape = GraphShape::of(cfg);
    let model_dtype = decoder.dtype();
    let corr = corrupted(decoder, batch, corruption, track)?;

    // EAP's clean run is its one gradient pass; the other methods capture the clean run first.
    let (clean, eap_step) = match method {
        Method::Eap => {
            let (step, own) = gradient_step(decoder, batch, config, vec![], None, track, 1)?;
            (own.ok_or_else(|| Error::input("internal: the clean gradient pass captured nothing"))?, Some(step))
        }
        _ => (Clean::run(decoder, batch, fix, track)?, None),
    };
    let z_corr = corr.z_prime(&clean.z)?;

    let mut total: Option<Step> = None;
    let mut add = |step: Step| -> Result<()> {
        total = Some(match total.take() {
            None => step,
            Some(t) => (t + step)?,
        });
        Ok(())
    };
    // Interpolation steps run several to a pass: the batch repeated once per step, the edits'
    // tensors concatenated in the same order, the gradients summed over the copies. An edit
    // inside layer l leaves the layers before it as in the clean run, the same for every step:
    // with `shared` Some(l) they run once, and the stream is repeated entering layer l.
    let mut tiles = Tiles::new(batch, &clean.log_probs);
    let mut steps_pass = |mut edits: Vec<Intervention>, m: usize, shared: Option<usize>| -> Result<Step> {
        let (rep, reference) = tiles.get(m)?;
        if let (Some(l), true) = (shared, m > 1) {
            edits.insert(0, Intervention::new(HookPoint::Block(l, Site::ResidPre), Edit::Repeat(m)));
        }
        Ok(gradient_step(decoder, rep, config, edits, Some(reference), track, m)?.0)
    };
    let chunks = |steps: usize| -> Vec<Vec<usize>> {
        let k = steps_per_pass(config.max_rows, batch.len(), steps);
        (0..steps).collect::<Vec<_>>().chunks(k).map(|c| c.to_vec()).collect()
    };
    let n_steps = match *method {
        Method::Eap => {
            add(eap_step.ok_or_else(|| Error::input("internal: EAP ran no gradient pass"))?)?;
            1
        }
        Method::EapIgInputs { steps } => {
            let (z_in, z_in_corr) = (clean.z.get(0)?, z_corr.get(0)?);
            for chunk in chunks(steps) {
                let inputs = chunk
                    .iter()
                    .map(|&k| lerp(&z_in_corr, &z_in, k as f64 / steps as f64))
                    .collect::<Result<Vec<_>>>()?;
                let edit = clean.embed_replacing_input(&Tensor::cat(&inputs, 0)?, model_dtype)?;
                add(steps_pass(vec![edit], chunk.len(), None)?)?;
            }
            steps
        }
        Method::EapIgActivations { steps } => {
            let h = cfg.n_heads;
            for group in groups(cfg.n_layers) {
                for chunk in chunks(steps) {
                    // one (b, …) replacement per step, in the chunk's order
                    let per_step = |alpha: f64| -> Result<Tensor> {
                        Ok(match group {
                            Group::Input => lerp(&z_corr.get(0)?, &clean.z.get(0)?, alpha)?,
                            Group::Heads(l) => {
                                let from = shape.writer_index(Writer::Head { layer: l, head: 0 });
                                let z = lerp(&z_corr.narrow(0, from, h)?, &clean.z.narrow(0, from, h)?, alpha)?;
                                // (H, b, s, d) → (b, s, H, d), the shape of hook_result
                                z.permute((1, 2, 0, 3))?.to_dtype(model_dtype)?
                            }
                            Group::Mlp(l) => {
                                let i = shape.writer_index(Writer::Mlp { layer: l });
                                lerp(&z_corr.get(i)?, &clean.z.get(i)?, alpha)?.to_dtype(model_dtype)?
                            }
                        })
                    };
                    let zs =
                        chunk.iter().map(|&k| per_step((k + 1) as f64 / steps as f64)).collect::<Result<Vec<_>>>()?;
                    let z = Tensor::cat(&zs, 0)?;
                    let (edit, shared) = match group {
                        Group::Input => (clean.embed_replacing_input(&z, model_dtype)?, None),
                        Group::Heads(l) => {
                            (Intervention::new(HookPoint::Block(l, Site::Result), Edit::Replace(z)), Some(l))
                        }
                        Group::Mlp(l) => {
                            (Intervention::new(HookPoint::Block(l, Site::MlpOut), Edit::Replace(z)), Some(l))
                        }
                    };
                    add(steps_pass(vec![edit], chunk.len(), shared)?)?;
                }
            }
            (2 * cfg.n_layers + 1) * steps
        }
        Method::CleanCorrupted => {
            add(steps_pass(vec![], 1, None)?)?;
            add(steps_pass(vec![clean.embed_replacing_input(&z_corr.get(0)?, model_dtype)?], 1, None)?)?;
            2
        }
        Method::Exact => return Err(Error::input("internal: exact patching is not a gradient method")),
    };
    let total = total.ok_or_else(|| Error::input("internal: no gradient steps were run"))?;
    let scale = 1.0 / n_steps as f64;
    let (g, w) = ((total.readers * scale)?, (total.writers * scale)?);
    let delta = (&z_corr - &clean.z)?;
    debug_assert_eq!(delta.dim(0).ok(), Some(shape.n_fwd()));
    let mut per_item = (per_sample || fix.any()).then(|| contract_per_item(&delta, &g)).transpose()?;
    if let (Some(p), true) = (&per_item, fix.any()) {
        let mean = |t: &Option<Tensor>| t.as_ref().map(|t| t * scale).transpose();
        let (patterns, hidden) = (mean(&total.patterns)?, mean(&total.hidden)?);
        let inputs = FixInputs {
            streams: clean.streams.as_ref(),
            mlp_streams: clean.mlp_streams.as_ref(),
            delta: &delta,
            unchanged: match corruption {
                Corruption::Patching(_) => batch.shared_prefix,
                Corruption::Zero | Corruption::Means(_) => 0,
            },
            pattern_grads: patterns.as_ref(),
            hidden_grads: hidden.as_ref(),
        };
        per_item = Some(reader_fix::apply(decoder, fix, &inputs, p)?);
    }
    let sum = match &per_item {
        Some(p) => p.sum(0)?,
        None => contract(&delta, &g)?,
    };
    let per_item = if per_sample { per_item } else { None };
    let clean_values = metric.values_at_rows(&clean.log_probs, batch, Some(&clean.log_probs))?;
    let corrupted_values =
        corr.log_probs.as_ref().map(|lp| metric.values_at_rows(lp, batch, Some(&clean.log_probs))).transpose()?;
    Ok(BatchScores { sum, per_item, nodes: Some(node_contract(&delta, &w)?), clean_values, corrupted_values })
}
