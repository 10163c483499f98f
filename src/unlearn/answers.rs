//! What one teacher-forced pass says about each answer token, and the per-answer measures built
//! from it (ALGORITHMS.md §9): the answer's NLL and probability, exact memorisation, extraction
//! strength and the membership-inference scores (LOSS, zlib, Min-k%, Min-k%++).

use crate::attribution::batches_on;
use crate::data::{Example, Target};
use crate::error::{Error, Result};
use crate::hooks::HookSet;
use crate::model::{Decoder, KvCache};
use candle_core::{DType, Device, Tensor, D};
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// Per answer token, in order: log p(token | everything before it); the mean μ and variance σ² of
/// log p under the model's whole next-token distribution there (Min-k%++); whether the token
/// is the argmax.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenStats {
    pub logprob: Vec<f64>,
    pub mu: Vec<f64>,
    pub var: Vec<f64>,
    pub argmax: Vec<bool>,
}

/// The fraction of tokens Min-k% and Min-k%++ average over (open-unlearning's k = 0.4).
pub const MIN_K: f64 = 0.4;

impl TokenStats {
    pub fn len(&self) -> usize {
        self.logprob.len()
    }

    pub fn is_empty(&self) -> bool {
        self.logprob.is_empty()
    }

    /// The statistics without the last token (the end token, which open-unlearning scores in the
    /// NLL but not in the token-level measures).
    pub fn without_last(&self) -> TokenStats {
        let n = self.len().saturating_sub(1);
        TokenStats {
            logprob: self.logprob[..n].to_vec(),
            mu: self.mu[..n].to_vec(),
            var: self.var[..n].to_vec(),
            argmax: self.argmax[..n].to_vec(),
        }
    }

    /// Σ −log p over the answer's tokens.
    pub fn nll_sum(&self) -> f64 {
        -self.logprob.iter().sum::<f64>()
    }

    /// The mean NLL per answer token (LOSS, the first MIA score).
    pub fn mean_nll(&self) -> f64 {
        self.nll_sum() / self.len().max(1) as f64
    }

    /// Min-k%: −mean of the lowest ⌊k·n⌋ (at least one) token log-probabilities.
    pub fn min_k(&self, k: f64) -> f64 {
        -lowest_mean(&self.logprob, k)
    }

    /// Min-k%++: Min-k% over z_t = (log p(x_t) − μ_t)/σ_t, each token's log-probability
    /// standardised by the model's own next-token distribution (σ² at least 1e-6, as
    /// open-unlearning's).
    pub fn min_k_plus_plus(&self, k: f64) -> f64 {
        let z: Vec<f64> = (0..self.len()).map(|t| (self.logprob[t] - self.mu[t]) / self.var[t].sqrt()).collect();
        -lowest_mean(&z, k)
    }

    /// The share of answer tokens that are the argmax given the true prefix.
    pub fn exact_memorisation(&self) -> f64 {
        self.argmax.iter().filter(|&&h| h).count() as f64 / self.len().max(1) as f64
    }

    /// 1 − k/n for the smallest k such that, given the first k answer tokens, the argmax
    /// reproduces all the rest (1: the whole answer from the question alone; 0: not even the
    /// last token, where open-unlearning's loop stops at k = n − 1 and reports 1/n).
    pub fn extraction_strength(&self) -> f64 {
        let n = self.len();
        let k = (0..n).find(|&k| self.argmax[k..].iter().all(|&h| h)).unwrap_or(n);
        1.0 - k as f64 / n.max(1) as f64
    }
}

/// The mean of the ⌊k·n⌋ (at least one) smallest values.
fn lowest_mean(xs: &[f64], k: f64) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let m = ((k * v.len() as f64).floor() as usize).clamp(1, v.len().max(1));
    v.iter().take(m).sum::<f64>() / m as f64
}

/// [`TokenStats`] of every example's answer tokens, one teacher-forced pass per batch; each
/// example's rows in the order of its answer tokens.
pub fn token_stats(dec: &Decoder, examples: &[Example], batch: usize) -> Result<Vec<TokenStats>> {
    let mut out = Vec::with_capacity(examples.len());
    for b in batches_on(examples, batch.max(1), dec.device())? {
        // (rows, V): the positions that predict the answer tokens
        let rows = dec.forward(&b.clean, &HookSet::new().logits_at(&b.rows))?.logits;
        let wanted: Vec<u32> = b.row_tokens.to_device(&Device::Cpu)?.to_vec1()?;
        out.extend(stats_of_rows(&rows, &wanted, &b.answer_lengths())?);
    }
    Ok(out)
}

/// [`token_stats`] of examples that share prompts: consecutive examples with the same prompt
/// tokens are a group whose prompt runs once, its keys and values then serving each of its
/// answers, which run as a batch after it. TOFU's paraphrased and perturbed answers share their
/// question's prompt, so a chat-template prompt is computed once instead of seven times. Equal to
/// [`token_stats`] up to float rounding; about `batch` answers run per pass.
pub fn token_stats_shared_prompts(dec: &Decoder, examples: &[Example], batch: usize) -> Result<Vec<TokenStats>> {
    let prompt_len = |e: &Example| match e.target {
        Target::Sequence { prompt_len } if prompt_len > 0 && prompt_len < e.clean.len() => Ok(prompt_len),
        _ => Err(Error::input("shared-prompt scoring needs question/answer examples with a prompt and an answer")),
    };
    let mut groups: Vec<Range<usize>> = Vec::new();
    for (i, e) in examples.iter().enumerate() {
        let n = prompt_len(e)?;
        match groups.last_mut() {
            Some(g) if examples[g.start].clean[..prompt_len(&examples[g.start])?] == e.clean[..n] => g.end = i + 1,
            _ => groups.push(i..i + 1),
        }
    }
    let dev = dec.device();
    let mut out = Vec::with_capacity(examples.len());
    let mut next = 0;
    while next < groups.len() {
        // whole groups, until about `batch` answers, while the longest prompt and the longest
        // answer fit the context together (each example does alone)
        let span = |g: &Range<usize>| -> Result<(usize, usize)> {
            let p = prompt_len(&examples[g.start])?;
            Ok((p, examples[g.clone()].iter().map(|e| e.clean.len() - p).max().unwrap_or(0)))
        };
        let (mut width, mut longest) = span(&groups[next])?;
        let mut end = next + 1;
        while end < groups.len() && groups[end].end - groups[next].start <= batch.max(1) {
            let (p, a) = span(&groups[end])?;
            if width.max(p) + longest.max(a) > dec.cfg.n_ctx {
                break;
            }
            (width, longest) = (width.max(p), longest.max(a));
            end += 1;
        }
        let chunk = &groups[next..end];
        next = end;
        let prompts: Vec<&[u32]> = chunk
            .iter()
            .map(|g| Ok(&examples[g.start].clean[..prompt_len(&examples[g.start])?]))
            .collect::<Result<_>>()?;
        // left-padded (the padding, masked, repeats each prompt's first token)
        let ids: Vec<u32> =
            prompts.iter().flat_map(|p| std::iter::repeat_n(p[0], width - p.len()).chain(p.iter().copied())).collect();
        let last: Vec<u32> = (0..prompts.len()).map(|i| (i * width + width - 1) as u32).collect();
        let mut cache = KvCache::left_padded(prompts.iter().map(|p| width - p.len()).collect());
        let ids = Tensor::from_vec(ids, (prompts.len(), width), dev)?;
        // (groups, V): each prompt's last position, which predicts its answers' first tokens
        let first = dec.forward_cached(&ids, &mut cache, &HookSet::new().logits_at(&Tensor::new(last, dev)?))?.logits;
        let owner: Vec<usize> = chunk.iter().enumerate().flat_map(|(g, r)| std::iter::repeat_n(g, r.len())).collect();
        let answers: Vec<&[u32]> = chunk
            .iter()
            .flat_map(|r| r.clone())
            .map(|j| Ok(&examples[j].clean[prompt_len(&examples[j])?..]))
            .collect::<Result<_>>()?;
        // every answer token but the last predicts the next one
        let rest_width = answers.iter().map(|a| a.len() - 1).max().unwrap_or(0);
        let mut order: Vec<u32> = Vec::new();
        let rows = if rest_width == 0 {
            order.extend(owner.iter().map(|&g| g as u32));
            first
        } else {
            cache.keep_rows(&owner)?;
            let ids: Vec<u32> = answers
                .iter()
                .flat_map(|a| {
                    a[..a.len() - 1].iter().copied().chain(std::iter::repeat_n(a[0], rest_width + 1 - a.len()))
                })
                .collect();
            let mut rest_rows: Vec<u32> = Vec::new();
            for (r, a) in answers.iter().enumerate() {
                order.push(owner[r] as u32);
                for j in 0..a.len() - 1 {
                    order.push((chunk.len() + rest_rows.len()) as u32);
                    rest_rows.push((r * rest_width + j) as u32);
                }
            }
            let ids = Tensor::from_vec(ids, (answers.len(), rest_width), dev)?;
            let rest =
                dec.forward_cached(&ids, &mut cache, &HookSet::new().logits_at(&Tensor::new(rest_rows, dev)?))?.logits;
            Tensor::cat(&[&first, &rest], 0)?
        };
        // in token_stats' order: per answer, its prompt's row, then its own
        let rows = rows.index_select(&Tensor::new(order, dev)?, 0)?;
        let wanted: Vec<u32> = answers.iter().flat_map(|a| a.iter().copied()).collect();
        let lengths: Vec<usize> = answers.iter().map(|a| a.len()).collect();
        out.extend(stats_of_rows(&rows, &wanted, &lengths)?);
    }
    Ok(out)
}

/// [`TokenStats`] from the logits (rows, V) that predict `wanted` (rows,), `lengths` rows an answer.
fn stats_of_rows(logits: &Tensor, wanted: &[u32], lengths: &[usize]) -> Result<Vec<TokenStats>> {
    let lp = candle_nn::ops::log_softmax(&logits.to_dtype(DType::F32)?, D::Minus1)?;
    let p = lp.exp()?;
    let mu = (&p * &lp)?.sum(D::Minus1)?;
    let second = (&p * lp.sqr()?)?.sum(D::Minus1)?;
    let index = Tensor::new(wanted, lp.device())?;
    let token = lp.gather(&index.unsqueeze(1)?, 1)?.squeeze(1)?;
    let best = lp.argmax(D::Minus1)?;
    let cpu =
        |t: Tensor| -> Result<Vec<f64>> { Ok(t.to_device(&Device::Cpu)?.to_dtype(DType::F64)?.to_vec1::<f64>()?) };
    let (token, mu, second) = (cpu(token)?, cpu(mu)?, cpu(second)?);
    let best: Vec<u32> = best.to_device(&Device::Cpu)?.to_dtype(DType::U32)?.to_vec1()?;
    let mut out = Vec::with_capacity(lengths.len());
    let mut at = 0;
    for &n in lengths {
        let r = at..at + n;
        out.push(TokenStats {
            logprob: token[r.clone()].to_vec(),
            mu: mu[r.clone()].to_vec(),
            var: r.clone().map(|i| (second[i] - mu[i] * mu[i]).max(1e-6)).collect(),
            argmax: r.map(|i| best[i] == wanted[i]).collect(),
        });
        at += n;
    }
    Ok(out)
}

/// The four membership-inference scores of one answer, oriented as open-unlearning's: higher
/// means less likely seen in training. LOSS and zlib read the NLL with the end token, Min-k%
/// and Min-k%++ the answer's own tokens.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MiaScores {
    /// the mean NLL per answer token
    pub loss: f64,
    /// the mean NLL per answer token / the zlib-compressed length in bytes of the text
    pub zlib: f64,
    /// [`TokenStats::min_k`] at [`MIN_K`]
    pub min_k: f64,
    /// [`TokenStats::min_k_plus_plus`] at [`MIN_K`]
    pub min_k_plus_plus: f64,
}

impl TokenStats {
    /// The membership-inference scores of this answer: `self` with the end token, `body` the
    /// answer's own tokens, `text` what the zlib score compresses (the answer's text).
    pub fn mia(&self, body: &TokenStats, text: &str) -> MiaScores {
        MiaScores {
            loss: self.mean_nll(),
            zlib: self.mean_nll() / zlib_len(text) as f64,
            min_k: body.min_k(MIN_K),
            min_k_plus_plus: body.min_k_plus_plus(MIN_K),
        }
    }
}

/// The length in bytes of `text` compressed by zlib at its default level (6), as Python's
/// `len(zlib.compress(text.encode()))`.
pub fn zlib_len(text: &str) -> usize {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
    z.write_all(text.as_bytes()).expect("writing to memory");
    z.finish().expect("writing to memory").len()
}
