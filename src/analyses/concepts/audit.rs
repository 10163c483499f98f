//! The parametric audit (ALGORITHMS.md §6): how much an unlearning run moved a value vector, and
//! whether its vocabulary projection still says the concept. Each model projects its own vector
//! through its own unembedding, as the reference does.

use super::tokens::ConceptTokens;
use super::vectors::{cosine, l2, norm, projection, top_ids, ValueVector};
use crate::error::{Error, Result};
use crate::model::Decoder;
use std::collections::BTreeSet;

/// The top-k the reference compares (200).
pub const TOP_K: usize = 200;

/// One vector before and after.
#[derive(Clone, Debug, serde::Serialize)]
pub struct VectorAudit {
    pub vector: ValueVector,
    /// cos(v, v'), capped at 1
    pub cosine: f64,
    /// ‖v − v'‖₂
    pub l2: f64,
    /// ‖v‖₂, the scale of `l2`
    pub norm: f64,
    /// |top-k(v) ∩ top-k(v')| / |top-k(v) ∪ top-k(v')|
    pub jaccard: f64,
    /// of the concept tokens among top-k(v), the share still in top-k(v') (None without concept
    /// tokens or when top-k(v) holds none of them)
    pub concept_kept: Option<f64>,
    /// concept tokens among top-k(v)
    pub concept_before: Option<usize>,
}

/// An error unless `a` and `b` can be compared vector by vector: same layers, widths and vocabulary.
pub fn check_comparable(a: &Decoder, b: &Decoder) -> Result<()> {
    let (x, y) = (&a.cfg, &b.cfg);
    let shape = |c: &crate::model::ModelConfig| (c.n_layers, c.d_model, c.d_mlp, c.vocab_size);
    if shape(x) != shape(y) {
        return Err(Error::input(format!(
            "the models differ in shape: (layers, d_model, d_mlp, vocabulary) = {:?} against {:?}",
            shape(x),
            shape(y)
        )));
    }
    Ok(())
}

/// The audit of `vectors` between `before` and `after`.
pub fn audit(
    before: &Decoder,
    after: &Decoder,
    vectors: &[ValueVector],
    concept: Option<&ConceptTokens>,
) -> Result<Vec<VectorAudit>> {
    check_comparable(before, after)?;
    vectors
        .iter()
        .map(|&vector| {
            let (v, w) = (vector.of(before)?, vector.of(after)?);
            let top = |d: &Decoder, x| -> Result<BTreeSet<u32>> {
                Ok(top_ids(&projection(d, x)?, TOP_K)?.into_iter().map(|(id, _)| id).collect())
            };
            let (a, b) = (top(before, &v)?, top(after, &w)?);
            let jaccard = a.intersection(&b).count() as f64 / a.union(&b).count().max(1) as f64;
            let kept = concept.map(|c| {
                let was: Vec<u32> = a.iter().copied().filter(|&id| c.contains(id)).collect();
                let still = was.iter().filter(|id| b.contains(id)).count();
                (was.len(), (!was.is_empty()).then(|| still as f64 / was.len() as f64))
            });
            Ok(VectorAudit {
                vector,
                cosine: cosine(&v, &w)?,
                l2: l2(&v, &w)?,
                norm: norm(&v)?,
                jaccard,
                concept_kept: kept.and_then(|k| k.1),
                concept_before: kept.map(|k| k.0),
            })
        })
        .collect()
}
