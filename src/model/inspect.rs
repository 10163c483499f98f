//! Reading a model's predictions: top-k next tokens, greedy generation, the logit lens, and the
//! shape of every hook point.

use super::decoder::{Decoder, KvCache};
use crate::error::Result;
use crate::hooks::{HookPoint, HookSet, Site};
use candle_core::{DType, Tensor, D};

/// One candidate next token.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Candidate {
    pub id: u32,
    pub logit: f32,
    pub logprob: f32,
}

/// The `k` most likely tokens of a (V,) logit vector, best first (ties by lower id).
pub fn top_k(logits: &Tensor, k: usize) -> Result<Vec<Candidate>> {
    let logits: Vec<f32> = logits.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let lse = max + logits.iter().map(|x| ((x - max) as f64).exp()).sum::<f64>().ln() as f32;
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    idx.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    Ok(idx
        .into_iter()
        .take(k)
        .map(|i| Candidate { id: i as u32, logit: logits[i], logprob: logits[i] - lse })
        .collect())
}

/// Logits at the last position of a (1, s, V) tensor, as (V,).
pub fn last_logits(logits: &Tensor) -> Result<Tensor> {
    let s = logits.dim(1)?;
    Ok(logits.narrow(1, s - 1, 1)?.flatten_all()?)
}

/// Greedy decoding: appends up to `n` tokens, stopping after `stop` if it is generated.
pub fn greedy(model: &Decoder, prompt: &[u32], n: usize, stop: Option<u32>) -> Result<Vec<u32>> {
    let mut ids = prompt.to_vec();
    for _ in 0..n {
        if ids.len() >= model.cfg.n_ctx {
            break;
        }
        let logits = model.logits(&Decoder::input(&ids)?)?;
        let next = last_logits(&logits)?.argmax(D::Minus1)?.to_scalar::<u32>()?;
        ids.push(next);
        if Some(next) == stop {
            break;
        }
    }
    Ok(ids[prompt.len()..].to_vec())
}

/// Greedy decoding with a key/value cache ([`Decoder::forward_cached`]): the prompt in one
/// pass, then one token a pass, so a step costs the same however long the text is. The tokens
/// of [`greedy`] (up to rounding near a tie: the cached pass adds the scores in another order),
/// under `hooks`' interventions, which see only each pass's new positions.
pub fn greedy_cached(
    model: &Decoder,
    prompt: &[u32],
    n: usize,
    stop: Option<u32>,
    hooks: &HookSet,
) -> Result<Vec<u32>> {
    Ok(greedy_batch(model, &[prompt.to_vec()], n, stop, hooks)?.remove(0))
}

/// How many prompts [`greedy_batch`]'s callers run at once: a step then reads the weights once
/// for many tokens, where one prompt's step is bound by reading them.
pub const GREEDY_ROWS: usize = 16;

/// [`greedy_cached`] for several prompts at once: aligned at their ends, they run as one
/// [`KvCache::left_padded`] batch in which no row sees another's padding and each counts its
/// positions from its own first token, so every row continues as it would alone (up to rounding
/// near a tie: the padded rows add their attention in another order). A row that has stopped
/// leaves the batch.
pub fn greedy_batch(
    model: &Decoder,
    prompts: &[Vec<u32>],
    n: usize,
    stop: Option<u32>,
    hooks: &HookSet,
) -> Result<Vec<Vec<u32>>> {
    if prompts.iter().any(|p| p.is_empty()) {
        return Err(crate::error::Error::input("the prompt has no tokens to continue"));
    }
    let Some(len) = prompts.iter().map(Vec::len).max() else { return Ok(Vec::new()) };
    let cpu = candle_core::Device::Cpu;
    let pads: Vec<usize> = prompts.iter().map(|p| len - p.len()).collect();
    // padding repeats a row's first token: any token would do, since nothing real attends to it
    let mut next: Vec<u32> = prompts
        .iter()
        .zip(&pads)
        .flat_map(|(p, &pad)| std::iter::repeat_n(p[0], pad).chain(p.iter().copied()))
        .collect();
    let mut cache = KvCache::left_padded(pads);
    let mut out = vec![Vec::new(); prompts.len()];
    // the rows still running, by their index in `prompts`
    let mut live: Vec<usize> = (0..prompts.len()).collect();
    let mut s = len;
    for _ in 0..n {
        if cache.len() + s >= model.cfg.n_ctx {
            break;
        }
        let b = live.len();
        let last = Tensor::new((0..b).map(|r| (r * s + s - 1) as u32).collect::<Vec<_>>(), &cpu)?;
        let ids = Tensor::from_vec(next, (b, s), &cpu)?;
        let logits = model.forward_cached(&ids, &mut cache, &hooks.clone().logits_at(&last))?.logits;
        let tokens = logits.argmax(D::Minus1)?.to_device(&cpu)?.to_vec1::<u32>()?;
        let mut keep = Vec::with_capacity(b);
        for (r, &t) in tokens.iter().enumerate() {
            out[live[r]].push(t);
            if Some(t) != stop {
                keep.push(r);
            }
        }
        if keep.is_empty() {
            break;
        }
        if keep.len() < b {
            cache.keep_rows(&keep)?;
            live = keep.iter().map(|&r| live[r]).collect();
        }
        next = keep.iter().map(|&r| tokens[r]).collect();
        s = 1;
    }
    Ok(out)
}

/// The logit lens: for every layer, the top-k tokens that the residual stream after that layer
/// would predict at the last position (final norm, then unembedding).
pub fn logit_lens(model: &Decoder, ids: &[u32], k: usize) -> Result<Vec<Vec<Candidate>>> {
    let points: Vec<HookPoint> = (0..model.cfg.n_layers).map(|l| HookPoint::Block(l, Site::ResidPost)).collect();
    let out = model.forward(&Decoder::input(ids)?, &HookSet::new().capture(points.iter().copied()))?;
    let ops = super::ops::Ops { diff: false, exact: true, fused: true };
    points
        .iter()
        .map(|p| {
            let resid = out.cache.get(*p)?;
            let s = resid.dim(1)?;
            let last = resid.narrow(1, s - 1, 1)?;
            let normed = model.final_norm.forward(&last, ops)?;
            let logits = super::ops::linear(&normed, &model.unembed, None)?;
            top_k(&logits, k)
        })
        .collect()
}

/// The shape of a hook point's activation, with `b` and `s` for batch and sequence.
pub fn hook_shape(model: &Decoder, p: HookPoint) -> Vec<String> {
    let c = &model.cfg;
    let n = |x: usize| x.to_string();
    let (b, s) = ("batch".to_string(), "seq".to_string());
    match p {
        HookPoint::Block(_, site) => match site {
            Site::QInput | Site::KInput | Site::VInput => vec![b, s, n(c.n_heads), n(c.d_model)],
            Site::Q | Site::K | Site::V | Site::Z => vec![b, s, n(c.n_heads), n(c.d_head)],
            Site::AttnScores | Site::Pattern => vec![b, n(c.n_heads), s.clone(), s],
            Site::Result => vec![b, s, n(c.n_heads), n(c.d_model)],
            Site::MlpPre | Site::MlpPreLinear | Site::MlpPost => vec![b, s, n(c.d_mlp)],
            _ => vec![b, s, n(c.d_model)],
        },
        _ => vec![b, s, n(c.d_model)],
    }
}
