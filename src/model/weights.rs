//! Loads the decoder's canonical weights from a tensor source, whatever the family's names and
//! layouts: Conv1D transposes, fused q/k/v splits, GGUF's q/k permutation.

use super::config::ModelConfig;
use super::naming::{Naming, QkvLayout, W};
use super::source::TensorSource;
use crate::error::Result;
use candle_core::{DType, Device, Tensor};

pub struct Weights<'a> {
    pub src: &'a dyn TensorSource,
    pub naming: Naming,
    pub dtype: DType,
    /// where the decoder's tensors live (read on the CPU, then moved)
    pub device: Device,
    pub cfg: &'a ModelConfig,
    /// called once per tensor loaded (progress reporting)
    pub on_tensor: Option<&'a dyn Fn(&str)>,
}

/// q, k, v projections, (out, in) each, with optional biases.
pub struct QkvWeights {
    pub q: (Tensor, Option<Tensor>),
    pub k: (Tensor, Option<Tensor>),
    pub v: (Tensor, Option<Tensor>),
}

impl Weights<'_> {
    fn name(&self, w: W, layer: usize) -> String {
        self.naming.name(w, layer)
    }

    pub fn tensor(&self, w: W, layer: usize, shape: &[usize]) -> Result<Tensor> {
        let name = self.name(w, layer);
        if let Some(f) = self.on_tensor {
            f(&name);
        }
        Ok(self.src.load(&name, shape, self.dtype)?.to_device(&self.device)?)
    }

    pub fn optional(&self, w: W, layer: usize, shape: &[usize], present: bool) -> Result<Option<Tensor>> {
        present.then(|| self.tensor(w, layer, shape)).transpose()
    }

    pub fn has(&self, w: W, layer: usize) -> bool {
        self.src.contains(&self.name(w, layer))
    }

    /// A linear weight as (out, in).
    pub fn linear(&self, w: W, layer: usize, out: usize, inp: usize) -> Result<Tensor> {
        if self.naming.transposed_linears() {
            Ok(self.tensor(w, layer, &[inp, out])?.t()?.contiguous()?)
        } else {
            self.tensor(w, layer, &[out, inp])
        }
    }

    pub fn qkv(&self, layer: usize) -> Result<QkvWeights> {
        let c = self.cfg;
        let (d, dh) = (c.d_model, c.d_head);
        let (nq, nkv) = (c.n_heads * dh, c.n_kv_heads * dh);
        let bias = c.qkv_bias;
        let Some(layout) = self.naming.fused_qkv() else {
            let mut q = self.linear(W::Q, layer, nq, d)?;
            let mut k = self.linear(W::K, layer, nkv, d)?;
            let v = self.linear(W::V, layer, nkv, d)?;
            let mut bq = self.optional(W::QBias, layer, &[nq], bias)?;
            let mut bk = self.optional(W::KBias, layer, &[nkv], bias)?;
            let bv = self.optional(W::VBias, layer, &[nkv], bias)?;
            if self.naming.interleaved_qk() {
                q = unpermute_rows(&q, c.n_heads)?;
                k = unpermute_rows(&k, c.n_kv_heads)?;
                bq = bq.map(|b| unpermute_rows(&b, c.n_heads)).transpose()?;
                bk = bk.map(|b| unpermute_rows(&b, c.n_kv_heads)).transpose()?;
            }
            return Ok(QkvWeights { q: (q, bq), k: (k, bk), v: (v, bv) });
        };
        let w = self.linear(W::Qkv, layer, nq + 2 * nkv, d)?;
        let b = self.optional(W::QkvBias, layer, &[nq + 2 * nkv], bias)?;
        let split = |t: &Tensor| -> Result<[Tensor; 3]> {
            Ok(match layout {
                QkvLayout::Blocks => [t.narrow(0, 0, nq)?, t.narrow(0, nq, nkv)?, t.narrow(0, nq + nkv, nkv)?],
                QkvLayout::PerHead => {
                    // rows are (head, {q,k,v}, dh): pick one of the three per head
                    let rest: Vec<usize> = t.dims()[1..].to_vec();
                    let mut shape = vec![c.n_heads, 3, dh];
                    shape.extend(&rest);
                    let t = t.reshape(shape)?;
                    let mut flat = vec![nq];
                    flat.extend(&rest);
                    let pick = |i| -> Result<Tensor> { Ok(t.narrow(1, i, 1)?.reshape(flat.clone())?) };
                    [pick(0)?, pick(1)?, pick(2)?]
                }
            })
        };
        let [q, k, v] = split(&w)?;
        let (bq, bk, bv) = match b {
            Some(b) => {
                let [x, y, z] = split(&b)?;
                (Some(x), Some(y), Some(z))
            }
            None => (None, None, None),
        };
        let cont = |t: Tensor| t.contiguous();
        Ok(QkvWeights {
            q: (cont(q)?, bq.map(cont).transpose()?),
            k: (cont(k)?, bk.map(cont).transpose()?),
            v: (cont(v)?, bv.map(cont).transpose()?),
        })
    }
}

/// Undoes llama.cpp's permutation of q/k rows (interleaved rotary pairs → rotate-half halves):
/// per head, rows stored as (dh/2, 2) pairs become (2, dh/2).
pub fn unpermute_rows(t: &Tensor, n_heads: usize) -> Result<Tensor> {
    let dims = t.dims().to_vec();
    let rows = dims[0];
    let half = rows / n_heads / 2;
    let mut shape = vec![n_heads, half, 2];
    shape.extend(&dims[1..]);
    Ok(t.reshape(shape)?.transpose(1, 2)?.contiguous()?.reshape(dims)?)
}
