//! MLP value vectors (ALGORITHMS.md §6): column `dim` of layer `layer`'s output projection, the
//! direction the MLP writes when its hidden unit `dim` fires, and what that direction says in
//! the vocabulary (the unembedding times the vector, no final norm, as the reference projects).

use crate::error::{Error, Result};
use crate::model::{Decoder, Tokenizer};
use candle_core::{DType, Tensor};

/// One value vector: hidden unit `dim` of layer `layer`'s MLP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct ValueVector {
    pub layer: usize,
    pub dim: usize,
}

impl std::fmt::Display for ValueVector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "L{}.{}", self.layer, self.dim)
    }
}

impl ValueVector {
    /// An error naming the bound unless the model has this layer and hidden unit.
    pub fn check(&self, dec: &Decoder) -> Result<()> {
        let cfg = &dec.cfg;
        if self.layer >= cfg.n_layers {
            return Err(Error::input(format!(
                "layer {} is out of range: the model has layers 0..{}",
                self.layer,
                cfg.n_layers - 1
            )));
        }
        if self.dim >= cfg.d_mlp {
            return Err(Error::input(format!(
                "dimension {} is out of range: layer {}'s MLP has hidden units 0..{}",
                self.dim,
                self.layer,
                cfg.d_mlp - 1
            )));
        }
        Ok(())
    }

    /// The vector (d,) in f32.
    pub fn of(&self, dec: &Decoder) -> Result<Tensor> {
        self.check(dec)?;
        let w = &dec.blocks[self.layer].mlp.w_out; // (d, f)
        Ok(w.narrow(1, self.dim, 1)?.squeeze(1)?.to_dtype(DType::F32)?)
    }

    /// A copy of `dec` whose vector is `v` (d,); every other weight is shared, unchanged.
    pub fn replaced(&self, dec: &Decoder, v: &Tensor) -> Result<Decoder> {
        self.check(dec)?;
        let mut out = dec.clone();
        let w = &dec.blocks[self.layer].mlp.w_out;
        let d = w.dim(0)?;
        if v.dims() != [d] {
            return Err(Error::input(format!("a value vector of this model has shape [{d}], got {:?}", v.dims())));
        }
        let col = v.to_dtype(w.dtype())?.to_device(w.device())?.reshape((d, 1))?;
        out.blocks[self.layer].mlp.w_out = w.slice_assign(&[0..d, self.dim..self.dim + 1], &col)?;
        Ok(out)
    }
}

/// The vocabulary projection W_U · v (V,) of a vector v (d,), f32.
pub fn projection(dec: &Decoder, v: &Tensor) -> Result<Tensor> {
    let u = dec.unembed.to_dtype(DType::F32)?;
    Ok(u.matmul(&v.to_dtype(DType::F32)?.to_device(u.device())?.unsqueeze(1)?)?.squeeze(1)?)
}

/// One token of a projection.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TokenScore {
    pub id: u32,
    pub token: String,
    /// its logit in the projection
    pub score: f32,
}

/// The `k` highest-scoring token ids of a projection (V,), best first (ties: lower id first).
pub fn top_ids(projection: &Tensor, k: usize) -> Result<Vec<(u32, f32)>> {
    let z: Vec<f32> = projection.to_dtype(DType::F32)?.to_device(&candle_core::Device::Cpu)?.to_vec1()?;
    let mut idx: Vec<u32> = (0..z.len() as u32).collect();
    let k = k.min(z.len());
    let by = |a: &u32, b: &u32| z[*b as usize].total_cmp(&z[*a as usize]).then(a.cmp(b));
    if k < idx.len() {
        idx.select_nth_unstable_by(k, by);
        idx.truncate(k);
    }
    idx.sort_by(by);
    Ok(idx.into_iter().map(|i| (i, z[i as usize])).collect())
}

/// The top `k` tokens of vector `vv`, with their text.
pub fn top_tokens(dec: &Decoder, tok: &Tokenizer, vv: ValueVector, k: usize) -> Result<Vec<TokenScore>> {
    let p = projection(dec, &vv.of(dec)?)?;
    Ok(top_ids(&p, k)?.into_iter().map(|(id, score)| TokenScore { id, token: tok.token_text(id), score }).collect())
}

/// ‖t‖₂ of a vector.
pub fn norm(t: &Tensor) -> Result<f64> {
    Ok(t.sqr()?.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?.sqrt())
}

/// Cosine similarity of two vectors (d,), capped at 1 as the reference caps it.
pub fn cosine(a: &Tensor, b: &Tensor) -> Result<f64> {
    let dot = (a * b)?.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    let denom = norm(a)? * norm(b)?;
    Ok(if denom == 0.0 { 0.0 } else { (dot / denom).min(1.0) })
}

/// ‖a − b‖₂.
pub fn l2(a: &Tensor, b: &Tensor) -> Result<f64> {
    norm(&(a - b)?)
}
