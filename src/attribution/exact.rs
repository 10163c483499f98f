//! Exact edge patching: for each edge u → v alone, add (z'_u − z_u) into in_v and measure
//! ΔL = L(patched) − L(clean). The edge's writer is upstream of its reader, so its output is the
//! same in the patched run as in the clean one and a fixed addition patches the edge exactly.
//!
//! Work: |E| forwards' worth. Edges into the same reader hook point run together: the batch is
//! tiled once per edge (up to `max_rows` rows per pass) and each tile gets its own addition.

use super::data::Batch;
use super::edge::BatchScores;
use super::metric::Metric;
use super::reader_fix::ReaderFix;
use super::runs::{corrupted, Clean, Corruption, Tiles, Tracker};
use super::writers::reader_site;
use crate::error::Result;
use crate::graph::GraphShape;
use crate::hooks::{Edit, HookPoint, HookSet, Intervention};
use crate::model::{Decoder, ModelConfig};
use candle_core::{Device, Tensor};

/// An edge to patch: (writer, reader, the reader's head at a per-head point).
type Edge = (usize, usize, Option<usize>);

/// Edges grouped by the hook point of their reader.
type EdgeGroup = (HookPoint, Vec<Edge>);

fn edge_groups(cfg: &ModelConfig) -> Vec<EdgeGroup> {
    let shape = GraphShape::of(cfg);
    let mut groups: Vec<EdgeGroup> = Vec::new();
    for (w, r) in shape.edges() {
        let (point, head) = reader_site(cfg, shape.reader(r));
        match groups.last_mut() {
            Some((p, v)) if *p == point => v.push((w, r, head)),
            _ => groups.push((point, vec![(w, r, head)])),
        }
    }
    groups
}

/// Edges patched together in one pass for a batch of `b` items.
fn edges_per_pass(b: usize, max_rows: usize) -> usize {
    (max_rows / b.max(1)).max(1)
}

/// Forward passes per batch, besides the corrupted run.
pub(crate) fn forwards_per_batch(cfg: &ModelConfig, b: usize, max_rows: usize) -> u64 {
    let per = edges_per_pass(b, max_rows);
    1 + edge_groups(cfg).iter().map(|(_, e)| e.len().div_ceil(per) as u64).sum::<u64>()
}

pub(crate) fn exact_scores(
    decoder: &Decoder,
    batch: &Batch,
    metric: Metric,
    corruption: &Corruption,
    max_rows: usize,
    track: &mut Tracker,
) -> Result<BatchScores> {
    let cfg = &decoder.cfg;
    let shape = GraphShape::of(cfg);
    let (nf, nb) = (shape.n_fwd(), shape.n_bwd());
    let b = batch.len();
    let corr = corrupted(decoder, batch, corruption, track)?;
    let clean = Clean::run(decoder, batch, ReaderFix::default(), track)?;
    let delta = (corr.z_prime(&clean.z)? - &clean.z)?; // (n_fwd, b, s, d)
    let clean_values = metric.values_at_rows(&clean.log_probs, batch, Some(&clean.log_probs))?;
    let clean_losses: Vec<f64> = (&clean_values * metric.sign())?.to_dtype(candle_core::DType::F64)?.to_vec1()?;

    let per = edges_per_pass(b, max_rows);
    let mut per_item = vec![0f32; b * nf * nb];
    let mut tiles = Tiles::new(batch, &clean.log_probs);
    // Each pass's losses stay on the model's device until all passes are queued: one copy back.
    let mut pending: Vec<(&[Edge], Tensor)> = Vec::new();
    let groups = edge_groups(cfg);
    for (point, edges) in &groups {
        for chunk in edges.chunks(per) {
            let n = chunk.len();
            let (tb, reference) = tiles.get(n)?;
            let mut parts = Vec::with_capacity(n);
            for &(w, _, head) in chunk {
                let dz = delta.get(w)?; // (b, s, d)
                parts.push(match head {
                    Some(h) => {
                        // Δ into head h only: (b, s, H, d), zero at the other heads
                        let mut onehot = vec![0f32; cfg.n_heads];
                        onehot[h] = 1.0;
                        let onehot = Tensor::from_vec(onehot, (1, 1, cfg.n_heads, 1), dz.device())?;
                        dz.unsqueeze(2)?.broadcast_mul(&onehot.to_dtype(dz.dtype())?)?
                    }
                    None => dz,
                });
            }
            let add = Tensor::cat(&parts, 0)?.to_dtype(decoder.dtype())?;
            let hooks = HookSet::new().intervene(Intervention::new(*point, Edit::Add(add))).logits_at(&tb.rows);
            let out = decoder.forward(&tb.clean, &hooks)?;
            track.forward();
            pending.push((chunk, metric.losses(&out.logits, tb, Some(reference))?.to_dtype(candle_core::DType::F64)?));
        }
    }
    if !pending.is_empty() {
        let all: Vec<f64> = Tensor::cat(&pending.iter().map(|p| &p.1).collect::<Vec<_>>(), 0)?.to_vec1()?;
        let mut at = 0;
        for (chunk, _) in &pending {
            for (e, &(w, r, _)) in chunk.iter().enumerate() {
                for i in 0..b {
                    per_item[(i * nf + w) * nb + r] = (all[at + e * b + i] - clean_losses[i]) as f32;
                }
            }
            at += chunk.len() * b;
        }
    }
    let per_item = Tensor::from_vec(per_item, (b, nf, nb), &Device::Cpu)?;
    let corrupted_values =
        corr.log_probs.as_ref().map(|lp| metric.values_at_rows(lp, batch, Some(&clean.log_probs))).transpose()?;
    Ok(BatchScores { sum: per_item.sum(0)?, per_item: Some(per_item), nodes: None, clean_values, corrupted_values })
}
