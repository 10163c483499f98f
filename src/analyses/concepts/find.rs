//! Locating a concept's value vectors automatically (a reconstruction: the reference located its
//! concepts by hand). Every value vector of the scanned layers is scored by how far its
//! vocabulary projection z = W_U·v lifts the concept's tokens T above the rest of the vocabulary:
//!
//!   score(v) = mean of the q largest  (z_t − mean(z)) / std(z)  over t ∈ T   (q = min(10, |T|))
//!
//! the concept's most lifted tokens, in standard deviations of the whole projection. A vector
//! that carries a concept puts a handful of its tokens far out in the tail; the top-q mean
//! rewards that without penalising the many concept tokens (of a long article) any one vector
//! does not carry. Mean and variance over the vocabulary come without projecting every vector:
//! mean(z) = ū·v and var(z) = vᵀ C v with ū the mean unembedding row and C = UᵀU/V − ūūᵀ (d × d,
//! once), so a layer costs |T|·d·f + d²·f multiply-adds instead of V·d·f. The best candidates
//! are then projected in full for their top-k tokens and their overlap with T.

use super::tokens::ConceptTokens;
use super::vectors::{projection, top_ids, TokenScore, ValueVector};
use crate::error::{Error, Result};
use crate::model::{Decoder, Tokenizer};
use crate::progress::Progress;
use candle_core::{DType, Device, Tensor, D};
use std::ops::Range;

/// How to scan.
#[derive(Clone, Debug)]
pub struct FindOptions {
    /// layers to scan (all by default)
    pub layers: Option<Range<usize>>,
    /// candidates to return
    pub candidates: usize,
    /// the q of the top-q mean
    pub q: usize,
    /// the top-k of the full projections (200, as the reference reads them)
    pub k: usize,
}

impl Default for FindOptions {
    fn default() -> Self {
        FindOptions { layers: None, candidates: 10, q: 10, k: 200 }
    }
}

/// One located value vector.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Candidate {
    pub vector: ValueVector,
    /// the top-q mean of the concept tokens' standardised logits
    pub score: f64,
    /// concept tokens among the projection's top k
    pub overlap: usize,
    /// the projection's first tokens, best first
    pub top_tokens: Vec<TokenScore>,
}

/// The `opts.candidates` best value vectors for `concept`, best first (their tokens' text from
/// `tok`, empty without one).
pub fn find(
    dec: &Decoder,
    tok: Option<&Tokenizer>,
    concept: &ConceptTokens,
    opts: &FindOptions,
    progress: &dyn Progress,
) -> Result<Vec<Candidate>> {
    let n_layers = dec.cfg.n_layers;
    let layers = opts.layers.clone().unwrap_or(0..n_layers);
    if layers.is_empty() || layers.end > n_layers {
        return Err(Error::input(format!(
            "layers {}..{} are not a range of this model's layers 0..{}",
            layers.start,
            layers.end,
            n_layers - 1
        )));
    }
    let u = dec.unembed.to_dtype(DType::F32)?; // (V, d)
    let v_size = u.dim(0)? as f64;
    let mean = (u.sum(0)? / v_size)?.unsqueeze(0)?; // (1, d)
    let cov = ((u.t()?.matmul(&u)? / v_size)? - mean.t()?.matmul(&mean)?)?; // (d, d)
    let ids: Vec<u32> = concept.ids.iter().copied().collect();
    let u_t = u.index_select(&Tensor::new(ids.as_slice(), u.device())?, 0)?; // (|T|, d)
    let q = opts.q.clamp(1, ids.len());
    let mut scored: Vec<(f64, ValueVector)> = Vec::new();
    progress.update(0, layers.len() as u64);
    for (done, l) in layers.clone().enumerate() {
        let w = dec.blocks[l].mlp.w_out.to_dtype(DType::F32)?; // (d, f)
        let mu = mean.matmul(&w)?; // (1, f)
        let sd = (&w * cov.matmul(&w)?)?.sum_keepdim(0)?.clamp(1e-30, f64::MAX)?.sqrt()?; // (1, f)
        let z = u_t.matmul(&w)?.broadcast_sub(&mu)?.broadcast_div(&sd)?; // (|T|, f)
        let cols: Vec<Vec<f32>> = z.t()?.contiguous()?.to_device(&Device::Cpu)?.to_vec2()?;
        for (dim, mut col) in cols.into_iter().enumerate() {
            col.select_nth_unstable_by(q - 1, |a, b| b.total_cmp(a));
            let top = col[..q].iter().map(|&x| x as f64).sum::<f64>() / q as f64;
            scored.push((top, ValueVector { layer: l, dim }));
        }
        progress.update(done as u64 + 1, layers.len() as u64);
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.truncate(opts.candidates.max(1));
    scored
        .into_iter()
        .map(|(score, vector)| {
            let top = top_ids(&projection(dec, &vector.of(dec)?)?, opts.k)?;
            let overlap = top.iter().filter(|(id, _)| concept.contains(*id)).count();
            let text = |id| tok.map(|t| t.token_text(id)).unwrap_or_default();
            let top_tokens =
                top.iter().take(20).map(|&(id, score)| TokenScore { id, token: text(id), score }).collect();
            Ok(Candidate { vector, score, overlap, top_tokens })
        })
        .collect()
}

/// The standardised logits (z − mean(z))/std(z) of a projection (V,): what [`find`] scores,
/// computed directly (the check of its shortcut).
pub fn standardised(projection: &Tensor) -> Result<Tensor> {
    let p = projection.to_dtype(DType::F64)?;
    let n = p.dim(0)? as f64;
    let mean = (p.sum_all()? / n)?;
    let centred = p.broadcast_sub(&mean)?;
    let sd = (centred.sqr()?.sum_keepdim(D::Minus1)? / n)?.sqrt()?;
    Ok(centred.broadcast_div(&sd)?)
}
