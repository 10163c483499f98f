//! Tokenised examples: what attribution and evaluation read of one data item.
//!
//! An [`Example`] is one item to attribute: clean tokens, optionally corrupted tokens of the same
//! length (patching needs them position by position), and what the metric reads ([`Target`]).
//! Tokenisation and BOS: [`Tokenizer::encode`] puts BOS first exactly when the tokenizer itself
//! adds one (a GGUF `tokenizer.ggml.add_bos_token`, or an HF `tokenizer.json` whose
//! post-processor adds it). Prompts keep that BOS. An answer or distractor token is the first
//! token that `encode(prompt + answer)` has beyond `encode(prompt)` (the token the model scores
//! after the prompt); when the prompt's tokens are not a prefix of the joint encoding (a merge
//! across the boundary), it falls back to the first token of `encode(answer)` after a leading BOS.

use crate::error::{Error, Result};
use crate::model::Tokenizer;

/// The token that fills positions after an item's end.
pub const PAD_TOKEN: u32 = 0;

/// What the metric reads from one example.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// `answer` against `distractor`, predicted after the last token.
    Pair { answer: u32, distractor: u32 },
    /// The tokens `clean[prompt_len..]` are the answer; each is scored given the tokens before it.
    Sequence { prompt_len: usize },
}

/// One tokenised item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    /// Clean tokens; for a [`Target::Sequence`] the prompt followed by the answer.
    pub clean: Vec<u32>,
    /// Corrupted tokens, the same length as `clean` (needed for patching ablation only).
    pub corrupted: Option<Vec<u32>>,
    pub target: Target,
}

impl Example {
    /// A clean/corrupted pair scored by `answer` against `distractor` after the last token.
    pub fn pair(clean: Vec<u32>, corrupted: Vec<u32>, answer: u32, distractor: u32) -> Self {
        Example { clean, corrupted: Some(corrupted), target: Target::Pair { answer, distractor } }
    }

    /// A question (prompt tokens) and its answer tokens; the metric scores the answer.
    pub fn qa(prompt: Vec<u32>, answer: Vec<u32>) -> Self {
        let prompt_len = prompt.len();
        let mut clean = prompt;
        clean.extend(answer);
        Example { clean, corrupted: None, target: Target::Sequence { prompt_len } }
    }

    /// Tokenises a clean/corrupted prompt pair with its answer and distractor continuations
    /// (a `world::TaskItem`'s four fields; this layer does not know the world's types).
    /// `index` names the item in errors.
    pub fn from_task_texts(
        tok: &Tokenizer,
        clean: &str,
        corrupted: &str,
        answer: &str,
        distractor: &str,
        index: usize,
    ) -> Result<Self> {
        let clean_ids = tok.encode(clean)?;
        let corrupted_ids = tok.encode(corrupted)?;
        let answer = continuation_token(tok, clean, &clean_ids, answer, index, "answer")?;
        let distractor = continuation_token(tok, clean, &clean_ids, distractor, index, "distractor")?;
        let ex = Example::pair(clean_ids, corrupted_ids, answer, distractor);
        ex.validate(index)?;
        Ok(ex)
    }

    /// Tokenises a prompt and the completion the metric scores (for a `world::QaPair`:
    /// `qa.prompt()` and `qa.completion()`). The answer tokens are those `encode(prompt +
    /// completion)` has beyond `encode(prompt)`.
    pub fn from_question_texts(tok: &Tokenizer, prompt: &str, completion: &str, index: usize) -> Result<Self> {
        if completion.trim().is_empty() {
            return Err(Error::input(format!("example {index}: the answer is empty (completion {completion:?})")));
        }
        let prompt_ids = tok.encode(prompt)?;
        let full = tok.encode(&format!("{prompt}{completion}"))?;
        if !full.starts_with(&prompt_ids) || full.len() == prompt_ids.len() {
            return Err(Error::input(format!(
                "example {index}: the prompt's tokens are not a prefix of the tokens of prompt + completion, so the \
                 answer tokens cannot be told apart (prompt {prompt:?}, completion {completion:?})"
            )));
        }
        let ex = Example { clean: full, corrupted: None, target: Target::Sequence { prompt_len: prompt_ids.len() } };
        ex.validate(index)?;
        Ok(ex)
    }

    /// Checks the example on its own; `index` names it in the error.
    pub fn validate(&self, index: usize) -> Result<()> {
        if self.clean.is_empty() {
            return Err(Error::input(format!("example {index}: the clean prompt has no tokens")));
        }
        if let Some(c) = &self.corrupted {
            if c.len() != self.clean.len() {
                return Err(Error::input(format!(
                    "example {index}: the clean prompt has {} tokens but the corrupted prompt has {}; patching \
                     needs both the same length",
                    self.clean.len(),
                    c.len()
                )));
            }
        }
        if let Target::Sequence { prompt_len } = self.target {
            if prompt_len == 0 || prompt_len >= self.clean.len() {
                return Err(Error::input(format!(
                    "example {index}: a question/answer example needs at least one prompt and one answer token \
                     (prompt {prompt_len} of {} tokens)",
                    self.clean.len()
                )));
            }
        }
        Ok(())
    }

    /// (position, token) pairs the metric scores: the token predicted at that position.
    pub fn metric_rows(&self) -> Vec<(usize, u32)> {
        match self.target {
            Target::Pair { answer, .. } => vec![(self.clean.len() - 1, answer)],
            Target::Sequence { prompt_len } => {
                (prompt_len - 1..self.clean.len() - 1).map(|p| (p, self.clean[p + 1])).collect()
            }
        }
    }
}

/// The token `answer` starts with when it follows `prompt` (see the module documentation).
fn continuation_token(
    tok: &Tokenizer,
    prompt: &str,
    prompt_ids: &[u32],
    answer: &str,
    index: usize,
    what: &str,
) -> Result<u32> {
    let joint = tok.encode(&format!("{prompt}{answer}"))?;
    if joint.len() > prompt_ids.len() && joint.starts_with(prompt_ids) {
        return Ok(joint[prompt_ids.len()]);
    }
    let ids = tok.encode(answer)?;
    let skip = usize::from(tok.bos.is_some() && ids.first() == tok.bos.as_ref());
    ids.get(skip).copied().ok_or_else(|| Error::input(format!("example {index}: the {what} {answer:?} has no tokens")))
}
