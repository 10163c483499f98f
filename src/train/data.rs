//! Packing tokenised documents into training rows.
//!
//! Each row starts at a document's first token (so prompts seen later at position 0 look like
//! training data) and holds whole documents, each followed by the end-of-text token, until the
//! next would not fit; the rest is padding that takes no loss. A token's loss may carry a weight
//! other than 1 (the answers of question/answer documents, [`answer_weighted`]).

use crate::error::{Error, Result};
use crate::rng::Rng;
use candle_core::{Device, Tensor};
use tokenizers::Tokenizer;

/// A tokenised document and, per token, the weight of its loss as a target.
#[derive(Clone, Debug, PartialEq)]
pub struct Doc {
    pub ids: Vec<u32>,
    pub weights: Vec<f32>,
}

impl Doc {
    fn len(&self) -> usize {
        self.ids.len()
    }
}

/// Where a document's answers are: after each `Answer:` to the end of its line.
const ANSWER: &str = "Answer:";

/// Tokenises `docs`, giving the tokens of every answer (from after an `Answer:` to the end of its
/// line) the loss weight `answer_weight` and every other token 1. A recommendation prompt holds
/// about 90 tokens and one answer: at weight 1 its answer is 1 % of the loss and the model
/// learns the prompts' wording more than the answers.
pub fn answer_weighted(tok: &Tokenizer, docs: &[String], answer_weight: f32) -> Result<Vec<Doc>> {
    docs.iter()
        .map(|d| {
            let e = tok
                .encode(d.as_str(), false)
                .map_err(|e| Error::input(format!("cannot tokenise a training document: {e}")))?;
            let mut spans = Vec::new();
            for (at, _) in d.match_indices(ANSWER) {
                let from = at + ANSWER.len();
                let to = d[from..].find('\n').map_or(d.len(), |n| from + n);
                spans.push(from..to);
            }
            // byte offsets of each token in `d`
            let weights = e
                .get_offsets()
                .iter()
                .map(|&(a, b)| if spans.iter().any(|s| a < s.end && b > s.start) { answer_weight } else { 1.0 })
                .collect();
            Ok(Doc { ids: e.get_ids().to_vec(), weights })
        })
        .collect()
}

/// Every document plus its end token must fit in one row of `n_ctx` tokens.
fn check_fit(docs: &[Doc], n_ctx: usize, what: &str) -> Result<()> {
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
    docs: Vec<Doc>,
    n_ctx: usize,
    eos: u32,
}

/// One row of an epoch: n_ctx + 1 token slots (inputs are the first n_ctx, targets the last
/// n_ctx), each slot's loss weight as a target, and the number of slots that hold real tokens.
pub struct Row {
    ids: Vec<u32>,
    weights: Vec<f32>,
    used: usize,
}

/// One batch: inputs and next-token targets (b, n_ctx) u32, and the loss weights (b, n_ctx) f32
/// (0 on padding).
pub struct Batch {
    pub inputs: Tensor,
    pub targets: Tensor,
    pub mask: Tensor,
    /// Tokens that take loss.
    pub tokens: usize,
}

impl Packer {
    /// Fails if a document (plus its end token) is longer than the context.
    pub fn new(docs: Vec<Doc>, n_ctx: usize, eos: u32) -> Result<Self> {
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
    /// packed greedily.
    pub fn epoch(&self, rng: &mut Rng, extra: &[Doc]) -> Result<Vec<Row>> {
        check_fit(extra, self.n_ctx, "document generated for this epoch")?;
        let mut order: Vec<usize> = (0..self.docs.len() + extra.len()).collect();
        rng.shuffle(&mut order);
        let width = self.n_ctx + 1;
        let mut rows = Vec::new();
        let mut row = Row { ids: Vec::with_capacity(width), weights: Vec::with_capacity(width), used: 0 };
        for i in order {
            let doc = self.docs.get(i).unwrap_or_else(|| &extra[i - self.docs.len()]);
            if row.ids.len() + doc.len() + 1 > width {
                rows.push(self.finish(std::mem::replace(&mut row, Row { ids: vec![], weights: vec![], used: 0 })));
            }
            row.ids.extend_from_slice(&doc.ids);
            row.weights.extend_from_slice(&doc.weights);
            row.ids.push(self.eos);
            row.weights.push(1.0);
        }
        if !row.ids.is_empty() {
            rows.push(self.finish(row));
        }
        rng.shuffle(&mut rows);
        Ok(rows)
    }

    fn finish(&self, mut row: Row) -> Row {
        row.used = row.ids.len();
        row.ids.resize(self.n_ctx + 1, self.eos);
        row.weights.resize(self.n_ctx + 1, 0.0);
        row
    }

    /// Stacks rows into a batch.
    pub fn batch(&self, rows: &[Row]) -> Result<Batch> {
        let (b, t) = (rows.len(), self.n_ctx);
        let mut inputs = Vec::with_capacity(b * t);
        let mut targets = Vec::with_capacity(b * t);
        let mut mask = Vec::with_capacity(b * t);
        let mut tokens = 0;
        for row in rows {
            inputs.extend_from_slice(&row.ids[..t]);
            targets.extend_from_slice(&row.ids[1..]);
            // target j is ids[j + 1]: real while j + 1 < used
            for j in 0..t {
                let real = j + 1 < row.used;
                tokens += real as usize;
                mask.push(if real { row.weights[j + 1] } else { 0.0 });
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tokenizer() -> Tokenizer {
        let docs: Vec<String> = (0..20)
            .map(|i| {
                format!("Ann liked Book {i}. Will Ann enjoy Book {}? Answer: Yes\nQuestion: Who? Answer: No one", i + 1)
            })
            .collect();
        crate::train::bpe::train_tokenizer(&docs, 320).unwrap()
    }

    /// Only the tokens after each `Answer:` up to the line's end carry the answer weight.
    #[test]
    fn answers_carry_their_weight() -> Result<()> {
        let tok = tokenizer();
        let doc = "Ann liked Book 3. Answer: Yes\nQuestion: Who? Answer: No one".to_string();
        let [d] = &answer_weighted(&tok, &[doc], 5.0)?[..] else { panic!("one document") };
        let heavy: String = d
            .ids
            .iter()
            .zip(&d.weights)
            .filter(|(_, &w)| w == 5.0)
            .map(|(&id, _)| tok.decode(&[id], false).unwrap())
            .collect();
        assert_eq!(heavy, " Yes No one");
        assert!(d.weights.iter().all(|&w| w == 1.0 || w == 5.0));
        assert_eq!(
            answer_weighted(&tok, &["no answer here".into()], 5.0)?[0].weights.iter().sum::<f32>() as usize,
            tok.encode("no answer here", false).unwrap().len()
        );
        Ok(())
    }

    /// A batch's mask holds each target's weight, 0 on padding, and the end token at 1.
    #[test]
    fn the_batch_mask_holds_the_targets_weights() -> Result<()> {
        let docs = vec![Doc { ids: vec![5, 6, 7], weights: vec![1.0, 1.0, 4.0] }];
        let packer = Packer::new(docs, 6, 0)?;
        let rows = packer.epoch(&mut Rng::new(1), &[])?;
        let b = packer.batch(&rows)?;
        assert_eq!(b.inputs.to_vec2::<u32>()?, vec![vec![5, 6, 7, 0, 0, 0]]);
        assert_eq!(b.targets.to_vec2::<u32>()?, vec![vec![6, 7, 0, 0, 0, 0]]);
        assert_eq!(b.mask.to_vec2::<f32>()?, vec![vec![1.0, 4.0, 1.0, 0.0, 0.0, 0.0]]);
        assert_eq!(b.tokens, 3);
        Ok(())
    }
}
