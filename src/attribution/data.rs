//! Right-padded batches of tokenised examples ([`crate::data::Example`]).
//!
//! A [`Batch`] right-pads examples of different lengths with [`PAD_TOKEN`]. The metric reads each
//! item's own positions only, and the model is causal, so padding changes no score: positions
//! after an item's last real token get zero gradient and cannot influence the positions before.

pub use crate::data::{Example, Target, PAD_TOKEN};
use crate::error::{Error, Result};
use candle_core::{Device, Tensor};

/// Right-padded examples, with the indices the metric needs precomputed.
#[derive(Clone, Debug)]
pub struct Batch {
    /// (b, s) u32, right-padded with [`PAD_TOKEN`]
    pub clean: Tensor,
    /// (b, s) u32, padded like `clean`; present when every example has corrupted tokens
    pub corrupted: Option<Tensor>,
    /// each item's real length
    pub lengths: Vec<usize>,
    pub targets: Vec<Target>,
    /// index of the first item in the whole dataset, for error messages
    pub first_index: usize,
    /// the first item (dataset index) without corrupted tokens
    missing_corrupted: Option<usize>,
    /// positions before the first at which some item's clean and corrupted tokens differ (0
    /// without corrupted tokens): there the corrupted run is the clean run, by causality
    pub shared_prefix: usize,
    /// (n_rows,) u32: flat index `item·s + position` of each metric row
    pub(crate) rows: Tensor,
    /// (n_rows,) u32: the token each row scores
    pub(crate) row_tokens: Tensor,
    /// (b,) u32 distractor tokens, when every item is a [`Target::Pair`]
    pub(crate) distractors: Option<Tensor>,
    /// (b, n_rows) f64: 1/(item's row count) where the row belongs to the item, else 0
    pub(crate) row_mean: Tensor,
}

impl Batch {
    /// Pads `examples` into one batch; `first_index` is the first example's index in the dataset.
    pub fn new(examples: &[Example], first_index: usize) -> Result<Batch> {
        if examples.is_empty() {
            return Err(Error::input("a batch needs at least one example"));
        }
        for (i, ex) in examples.iter().enumerate() {
            ex.validate(first_index + i)?;
        }
        let missing_corrupted = examples.iter().position(|e| e.corrupted.is_none()).map(|i| first_index + i);
        let b = examples.len();
        let s = examples.iter().map(|e| e.clean.len()).max().unwrap_or(0);
        let pad = |ids: &[u32]| {
            let mut v = ids.to_vec();
            v.resize(s, PAD_TOKEN);
            v
        };
        let clean: Vec<u32> = examples.iter().flat_map(|e| pad(&e.clean)).collect();
        let clean = Tensor::from_vec(clean, (b, s), &Device::Cpu)?;
        let corrupted = missing_corrupted
            .is_none()
            .then(|| {
                let v: Vec<u32> = examples.iter().flat_map(|e| pad(e.corrupted.as_deref().unwrap_or(&[]))).collect();
                Tensor::from_vec(v, (b, s), &Device::Cpu)
            })
            .transpose()?;

        let shared_prefix = match missing_corrupted {
            Some(_) => 0,
            None => examples
                .iter()
                .map(|e| {
                    let corrupted = e.corrupted.as_deref().unwrap_or(&[]);
                    e.clean.iter().zip(corrupted).position(|(a, b)| a != b).unwrap_or(s)
                })
                .min()
                .unwrap_or(0),
        };
        let (mut rows, mut tokens, mut owner) = (Vec::new(), Vec::new(), Vec::new());
        for (i, ex) in examples.iter().enumerate() {
            for (p, t) in ex.metric_rows() {
                rows.push((i * s + p) as u32);
                tokens.push(t);
                owner.push(i);
            }
        }
        let n_rows = rows.len();
        let mut counts = vec![0usize; b];
        owner.iter().for_each(|&i| counts[i] += 1);
        let mut mean = vec![0f64; b * n_rows];
        for (r, &i) in owner.iter().enumerate() {
            mean[i * n_rows + r] = 1.0 / counts[i] as f64;
        }
        let distractors: Option<Vec<u32>> = examples
            .iter()
            .map(|e| match e.target {
                Target::Pair { distractor, .. } => Some(distractor),
                Target::Sequence { .. } => None,
            })
            .collect();
        Ok(Batch {
            clean,
            corrupted,
            lengths: examples.iter().map(|e| e.clean.len()).collect(),
            targets: examples.iter().map(|e| e.target).collect(),
            first_index,
            missing_corrupted,
            shared_prefix,
            rows: Tensor::from_vec(rows, n_rows, &Device::Cpu)?,
            row_tokens: Tensor::from_vec(tokens, n_rows, &Device::Cpu)?,
            distractors: distractors.map(|d| Tensor::from_vec(d, b, &Device::Cpu)).transpose()?,
            row_mean: Tensor::from_vec(mean, (b, n_rows), &Device::Cpu)?,
        })
    }

    /// The batch's metric indices on `device` (a model's: batches are built on the CPU). The
    /// token ids stay on the CPU, where every forward pass checks them against the vocabulary
    /// before moving them: checking them on a GPU would wait for it in every pass.
    pub fn to_device(&self, device: &Device) -> Result<Batch> {
        let mv = |t: &Tensor| t.to_device(device);
        Ok(Batch {
            rows: mv(&self.rows)?,
            row_tokens: mv(&self.row_tokens)?,
            distractors: self.distractors.as_ref().map(mv).transpose()?,
            row_mean: mv(&self.row_mean)?,
            ..self.clone()
        })
    }

    /// Per item, the number of tokens its metric scores: an answer's tokens, or 1 for a pair.
    pub fn answer_lengths(&self) -> Vec<usize> {
        self.targets
            .iter()
            .zip(&self.lengths)
            .map(|(t, &n)| match *t {
                Target::Pair { .. } => 1,
                Target::Sequence { prompt_len } => n - prompt_len,
            })
            .collect()
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.lengths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }

    /// Padded sequence length.
    pub fn seq_len(&self) -> usize {
        self.lengths.iter().copied().max().unwrap_or(0)
    }

    /// The corrupted tokens, or an error saying patching needs them.
    pub fn corrupted(&self) -> Result<&Tensor> {
        self.corrupted.as_ref().ok_or_else(|| {
            Error::input(format!(
                "example {}: patching ablation needs corrupted prompts, and this example has none (use zero or mean \
                 ablation)",
                self.missing_corrupted.unwrap_or(self.first_index)
            ))
        })
    }
}

/// Splits `examples` into padded batches of at most `batch_size` items, on the CPU.
pub fn batches(examples: &[Example], batch_size: usize) -> Result<Vec<Batch>> {
    if batch_size == 0 {
        return Err(Error::input("the batch size must be at least 1"));
    }
    if examples.is_empty() {
        return Err(Error::input("there are no examples to attribute"));
    }
    examples.chunks(batch_size).enumerate().map(|(i, c)| Batch::new(c, i * batch_size)).collect()
}

/// [`batches`] on `device`, where a model that runs there reads them.
pub fn batches_on(examples: &[Example], batch_size: usize, device: &Device) -> Result<Vec<Batch>> {
    batches(examples, batch_size)?.iter().map(|b| b.to_device(device)).collect()
}

impl Batch {
    /// The batch tiled `n` times along the batch axis (copy-major: all items, then all again),
    /// for running several patches of the same items in one forward pass.
    pub fn repeat(&self, n: usize) -> Result<Batch> {
        let (b, s) = (self.len(), self.seq_len());
        let rows: Vec<u32> = self.rows.to_vec1()?;
        let n_rows = rows.len();
        let tiled_rows: Vec<u32> = (0..n).flat_map(|c| rows.iter().map(move |&r| r + (c * b * s) as u32)).collect();
        let mean: Vec<f64> = self.row_mean.flatten_all()?.to_vec1()?;
        let mut tiled_mean = vec![0f64; n * b * n * n_rows];
        for c in 0..n {
            for i in 0..b {
                let dst = (c * b + i) * n * n_rows + c * n_rows;
                tiled_mean[dst..dst + n_rows].copy_from_slice(&mean[i * n_rows..(i + 1) * n_rows]);
            }
        }
        Ok(Batch {
            clean: self.clean.repeat((n, 1))?,
            corrupted: self.corrupted.as_ref().map(|c| c.repeat((n, 1))).transpose()?,
            lengths: self.lengths.repeat(n),
            targets: self.targets.repeat(n),
            first_index: self.first_index,
            missing_corrupted: self.missing_corrupted,
            shared_prefix: self.shared_prefix,
            rows: Tensor::from_vec(tiled_rows, n * n_rows, self.rows.device())?,
            row_tokens: self.row_tokens.repeat(n)?,
            distractors: self.distractors.as_ref().map(|d| d.repeat(n)).transpose()?,
            row_mean: Tensor::from_vec(tiled_mean, (n * b, n * n_rows), self.row_mean.device())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_pad_right_and_index_each_items_own_rows() {
        let ex = vec![Example::pair(vec![1, 2, 3], vec![1, 4, 3], 7, 8), Example::qa(vec![5, 6], vec![9, 10, 11])];
        let b = Batch::new(&ex, 0).unwrap();
        assert_eq!(b.clean.to_vec2::<u32>().unwrap(), vec![vec![1, 2, 3, 0, 0], vec![5, 6, 9, 10, 11]]);
        // item 0: last position 2; item 1: positions 1, 2, 3 predict 9, 10, 11
        assert_eq!(b.rows.to_vec1::<u32>().unwrap(), vec![2, 5 + 1, 5 + 2, 5 + 3]);
        assert_eq!(b.row_tokens.to_vec1::<u32>().unwrap(), vec![7, 9, 10, 11]);
        let third = 1.0 / 3.0;
        assert_eq!(
            b.row_mean.to_vec2::<f64>().unwrap(),
            vec![vec![1.0, 0.0, 0.0, 0.0], vec![0.0, third, third, third]]
        );
        assert!(b.distractors.is_none(), "a question/answer item has no distractor");
        assert_eq!(b.shared_prefix, 0, "no corrupted run, nothing shared");
        let late =
            [Example::pair(vec![1, 2, 3, 4], vec![1, 2, 3, 5], 7, 8), Example::pair(vec![1, 2], vec![1, 2], 7, 8)];
        assert_eq!(Batch::new(&late, 0).unwrap().shared_prefix, 3, "identical prompts share every position");
        let err = b.corrupted().unwrap_err().to_string();
        assert!(err.contains("example 1") && err.contains("corrupted"), "{err}");
    }

    #[test]
    fn repeat_tiles_items_and_rows() {
        let ex = vec![Example::pair(vec![1, 2, 3], vec![1, 4, 3], 7, 8), Example::pair(vec![5, 6], vec![5, 1], 9, 4)];
        let b = Batch::new(&ex, 0).unwrap();
        // item 1 first differs at position 1, item 0 at 1 too; padding never differs
        assert_eq!(b.shared_prefix, 1);
        let t = b.repeat(2).unwrap();
        assert_eq!((t.len(), t.shared_prefix), (4, 1));
        assert_eq!(t.rows.to_vec1::<u32>().unwrap(), vec![2, 4, 8, 10]);
        assert_eq!(t.distractors.unwrap().to_vec1::<u32>().unwrap(), vec![8, 4, 8, 4]);
        let m = t.row_mean.to_vec2::<f64>().unwrap();
        for (i, row) in m.iter().enumerate() {
            let want: Vec<f64> = (0..4).map(|r| if r == i { 1.0 } else { 0.0 }).collect();
            assert_eq!(row, &want);
        }
    }

    #[test]
    fn invalid_examples_are_named() {
        let err =
            Batch::new(&[Example::pair(vec![1, 2], vec![1, 2], 3, 4), Example::pair(vec![1, 2, 3], vec![1], 3, 4)], 10)
                .unwrap_err()
                .to_string();
        assert!(err.contains("example 11") && err.contains("3 tokens") && err.contains("has 1"), "{err}");
        let err = Example::qa(vec![], vec![1]).validate(2).unwrap_err().to_string();
        assert!(err.contains("example 2"), "{err}");
        let mixed = [Example::pair(vec![1], vec![2], 3, 4), Example::qa(vec![1], vec![2])];
        let err = Batch::new(&mixed, 0).unwrap().corrupted().unwrap_err().to_string();
        assert!(err.contains("example 1") && err.contains("has none"), "{err}");
        assert!(batches(&mixed, 0).is_err() && batches(&[], 4).is_err());
    }
}
