//! How well a model knows the world: greedy exact match on question/answer splits and accuracy
//! on the circuit tasks. Used by the trainer's report, the model card and `demo`.

use crate::error::{Error, Result};
use crate::hooks::HookSet;
use crate::model::{Decoder, Tokenizer};
use crate::world::{QaPair, TaskItem};
use candle_core::{DType, Device, Tensor, D};
use serde::Serialize;

/// Scores on a question/answer split.
#[derive(Clone, Debug, Serialize)]
pub struct QaScore {
    pub n: usize,
    /// Greedy decoding from the prompt reproduces the answer exactly, end token included.
    pub exact_match: f64,
    /// The attribute's own tokens (the `target`, e.g. the city) are all the greedy choice, given
    /// the answer before them: near chance for people the model never saw.
    pub target_match: f64,
}

/// Scores on a circuit task.
#[derive(Clone, Debug, Serialize)]
pub struct TaskScore {
    pub n: usize,
    /// answer logit > distractor logit at the last prompt position
    pub accuracy: f64,
    /// the answer is the top-1 next token
    pub top1: f64,
    pub mean_logit_diff: f64,
}

/// Right-pads token rows into one (b, max_len) tensor.
fn pad(rows: &[Vec<u32>], pad_id: u32) -> Result<Tensor> {
    let t = rows.iter().map(Vec::len).max().unwrap_or(1);
    let data: Vec<u32> = rows.iter().flat_map(|r| r.iter().copied().chain(std::iter::repeat(pad_id)).take(t)).collect();
    Ok(Tensor::from_vec(data, (rows.len(), t), &Device::Cpu)?)
}

/// Greedy (argmax) token at every position: (b, t).
fn argmax_rows(dec: &Decoder, ids: &Tensor) -> Result<Vec<Vec<u32>>> {
    let logits = dec.forward(ids, &HookSet::default())?.logits;
    Ok(logits.argmax(D::Minus1)?.to_dtype(DType::U32)?.to_vec2::<u32>()?)
}

/// Where the target's tokens sit inside the completion: the tokens of the completion up to the
/// target, then the target's (byte-level BPE splits on spaces, so the prefix tokenises alone).
fn target_span(tok: &Tokenizer, qa: &QaPair, completion_len: usize) -> Result<Option<(usize, usize)>> {
    let Some(target) = &qa.target else { return Ok(None) };
    let answer = qa.completion();
    let Some(at) = answer.find(target.as_str()) else { return Ok(None) };
    let before = &answer[..at];
    let start = if before.trim().is_empty() { 0 } else { tok.encode(before.trim_end())?.len() };
    let end = tok.encode(&answer[..at + target.len()])?.len();
    Ok((start < end && end <= completion_len).then_some((start, end)))
}

pub fn qa_accuracy(dec: &Decoder, tok: &Tokenizer, pairs: &[QaPair], batch: usize) -> Result<QaScore> {
    let eos = tok.eos.ok_or_else(|| Error::input("the tokenizer has no end-of-text token"))?;
    let (mut exact, mut target, mut n_target) = (0usize, 0usize, 0usize);
    for chunk in pairs.chunks(batch.max(1)) {
        let mut rows = Vec::new();
        let mut meta = Vec::new();
        for qa in chunk {
            let prompt = tok.encode(&qa.prompt())?;
            let mut completion = tok.encode(&qa.completion())?;
            completion.push(eos);
            let span = target_span(tok, qa, completion.len())?;
            meta.push((prompt.len(), completion.clone(), span));
            rows.push([prompt, completion].concat());
        }
        let greedy = argmax_rows(dec, &pad(&rows, eos)?)?;
        for ((p, completion, span), g) in meta.iter().zip(&greedy) {
            // completion token j is predicted at position p - 1 + j
            let hits: Vec<bool> = completion.iter().enumerate().map(|(j, &c)| g[p - 1 + j] == c).collect();
            exact += hits.iter().all(|&h| h) as usize;
            if let Some((a, b)) = span {
                n_target += 1;
                target += hits[*a..*b].iter().all(|&h| h) as usize;
            }
        }
    }
    let n = pairs.len();
    Ok(QaScore { n, exact_match: exact as f64 / n.max(1) as f64, target_match: target as f64 / n_target.max(1) as f64 })
}

/// First token of an answer or distractor (they start with a space).
pub fn first_token(tok: &Tokenizer, text: &str) -> Result<u32> {
    tok.encode(text)?.first().copied().ok_or_else(|| Error::input(format!("the answer {text:?} tokenises to nothing")))
}

pub fn task_accuracy(dec: &Decoder, tok: &Tokenizer, items: &[TaskItem], batch: usize) -> Result<TaskScore> {
    task_accuracy_with(dec, tok, items, batch, &HookSet::default())
}

/// [`task_accuracy`] of the model under `hooks` (e.g. heads mean-ablated). The prompts are
/// right-padded, so an edit broadcast over positions changes nothing a prompt's last position
/// reads from the padding.
pub fn task_accuracy_with(
    dec: &Decoder,
    tok: &Tokenizer,
    items: &[TaskItem],
    batch: usize,
    hooks: &HookSet,
) -> Result<TaskScore> {
    let (mut correct, mut top1, mut diff_sum) = (0usize, 0usize, 0f64);
    for chunk in items.chunks(batch.max(1)) {
        let rows: Vec<Vec<u32>> = chunk.iter().map(|it| tok.encode(&it.clean)).collect::<Result<_>>()?;
        let logits = dec.forward(&pad(&rows, 0)?, hooks)?.logits;
        for (i, (it, row)) in chunk.iter().zip(&rows).enumerate() {
            let last = logits.get(i)?.get(row.len() - 1)?.to_vec1::<f32>()?;
            let (a, d) = (first_token(tok, &it.answer)? as usize, first_token(tok, &it.distractor)? as usize);
            let diff = (last[a] - last[d]) as f64;
            diff_sum += diff;
            correct += (diff > 0.0) as usize;
            let best = last.iter().enumerate().fold(0, |b, (j, &x)| if x > last[b] { j } else { b });
            top1 += (best == a) as usize;
        }
    }
    let n = items.len().max(1) as f64;
    Ok(TaskScore { n: items.len(), accuracy: correct as f64 / n, top1: top1 as f64 / n, mean_logit_diff: diff_sum / n })
}
