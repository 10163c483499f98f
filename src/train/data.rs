//! Packing tokenised documents into training rows.
//!
//! Each row starts at a document's first token (so prompts seen later at position 0 look like
//! training data) and holds whole documents, each followed by the end-of-text token, until the
//! next would not fit; the rest is padding that takes no loss.

use crate::error::{Error, Result};
use crate::rng::Rng;
use candle_core::{Device, Tensor};

/// Every document plus its end token must fit in one row of `n_ctx` tokens.
fn check_fit(docs: &[Vec<u32>], n_ctx: usize, what: &str) -> Result<()> {
    if let Some((i, d)) = docs.iter().enumerate().max_by_key(|(_, d)| d.len()) {
        if d.len() + 1 > n_ctx {
            return Err(Error::input(format!(
                "context = {n_ctx} tokens is shorter than the longest {what} ({what} {i}, {} tokens plus the \
                 end token); raise --context to at least {}",
                d.len(),
                d.len() + 1
            )));
        }
    }
    Ok(())
}

pub struct Packer {
    docs: Vec<Vec<u32>>,
    n_ctx: usize,
    eos: u32,
}

/// One batch: inputs and next-token targets (b, n_ctx) u32, and the loss mask (b, n_ctx) f32.
pub struct Batch {
    pub inputs: Tensor,
    pub targets: Tensor,
    pub mask: Tensor,
    /// Tokens that take loss.
    pub tokens: usize,
}

impl Packer {
    /// Fails if a document (plus its end token) is longer than the context.
    pub fn new(docs: Vec<Vec<u32>>, n_ctx: usize, eos: u32) -> Result<Self> {
        check_fit(&docs, n_ctx, "training document")?;
        if docs.is_empty() {
            return Err(Error::input("the training corpus is empty"));
        }
        Ok(Packer { docs, n_ctx, eos })
    }

    pub fn n_tokens(&self) -> usize {
        self.docs.iter().map(|d| d.len() + 1).sum()
    }

    /// The rows of one epoch: the corpus plus this epoch's `extra` documents in a shuffled order,
    /// packed greedily. Each row has n_ctx + 1 slots (inputs are the first n_ctx, targets the
    /// last n_ctx) and the number of slots that hold real tokens.
    pub fn epoch(&self, rng: &mut Rng, extra: &[Vec<u32>]) -> Result<Vec<(Vec<u32>, usize)>> {
        check_fit(extra, self.n_ctx, "document generated for this epoch")?;
        let mut order: Vec<usize> = (0..self.docs.len() + extra.len()).collect();
        rng.shuffle(&mut order);
        let width = self.n_ctx + 1;
        let mut rows = Vec::new();
        let mut row: Vec<u32> = Vec::with_capacity(width);
        for i in order {
            let doc = self.docs.get(i).unwrap_or_else(|| &extra[i - self.docs.len()]);
            if row.len() + doc.len() + 1 > width {
                rows.push(self.finish(std::mem::take(&mut row)));
            }
            row.extend_from_slice(doc);
            row.push(self.eos);
        }
        if !row.is_empty() {
            rows.push(self.finish(row));
        }
        rng.shuffle(&mut rows);
        Ok(rows)
    }

    fn finish(&self, mut row: Vec<u32>) -> (Vec<u32>, usize) {
        let used = row.len();
        row.resize(self.n_ctx + 1, self.eos);
        (row, used)
    }

    /// Stacks rows into a batch.
    pub fn batch(&self, rows: &[(Vec<u32>, usize)]) -> Result<Batch> {
        let (b, t) = (rows.len(), self.n_ctx);
        let mut inputs = Vec::with_capacity(b * t);
        let mut targets = Vec::with_capacity(b * t);
        let mut mask = Vec::with_capacity(b * t);
        let mut tokens = 0;
        for (row, used) in rows {
            inputs.extend_from_slice(&row[..t]);
            targets.extend_from_slice(&row[1..]);
            // target j is row[j + 1]: real while j + 1 < used
            for j in 0..t {
                let real = j + 1 < *used;
                tokens += real as usize;
                mask.push(if real { 1f32 } else { 0.0 });
            }
        }
        let dev = &Device::Cpu;
        Ok(Batch {
            inputs: Tensor::from_vec(inputs, (b, t), dev)?,
            targets: Tensor::from_vec(targets, (b, t), dev)?,
            mask: Tensor::from_vec(mask, (b, t), dev)?,
            tokens,
        })
    }
}
