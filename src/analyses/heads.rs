//! Attention-head roles from attention patterns: previous-token heads (attend from i to i − 1)
//! and induction heads (attend from i to the token after an earlier occurrence of token i); and
//! which heads a task needs, by mean-ablating them ([`HeadMeans`], [`necessity`]).

use crate::data::TaskItem;
use crate::error::{Error, Result};
use crate::hooks::{Edit, HookPoint, HookSet, Intervention, Site};
use crate::model::{Decoder, Tokenizer};
use crate::progress::Progress;
use crate::train::eval::{task_accuracy_with, TaskScore};
use candle_core::Tensor;
use serde::Serialize;

/// Mean scores per (layer, head), each in [0, 1].
#[derive(Clone, Debug, Serialize)]
pub struct HeadScores {
    /// `previous_token[l][h]`: mean attention from position i to i − 1 (i ≥ 1).
    pub previous_token: Vec<Vec<f32>>,
    /// `induction[l][h]`: mean attention from i to j + 1, where j is the latest earlier position
    /// with the same token as i (j + 1 < i), over positions that have one.
    pub induction: Vec<Vec<f32>>,
}

impl HeadScores {
    /// The `k` heads with the highest score, best first, as (layer, head, score).
    pub fn top(scores: &[Vec<f32>], k: usize) -> Vec<(usize, usize, f32)> {
        let mut all: Vec<(usize, usize, f32)> = scores
            .iter()
            .enumerate()
            .flat_map(|(l, row)| row.iter().enumerate().map(move |(h, &s)| (l, h, s)))
            .collect();
        all.sort_by(|a, b| b.2.total_cmp(&a.2).then((a.0, a.1).cmp(&(b.0, b.1))));
        all.truncate(k);
        all
    }

    /// The top `k` induction heads, then the top `k` previous-token heads, as (layer, head).
    pub fn top_of_each(&self, k: usize) -> Vec<(usize, usize)> {
        Self::top(&self.induction, k)
            .into_iter()
            .chain(Self::top(&self.previous_token, k))
            .map(|(l, h, _)| (l, h))
            .collect()
    }
}

/// For each position i, the induction target j + 1 (see [`HeadScores::induction`]).
pub fn induction_targets(ids: &[u32]) -> Vec<Option<usize>> {
    (0..ids.len()).map(|i| (0..i.saturating_sub(1)).rev().find(|&j| ids[j] == ids[i]).map(|j| j + 1)).collect()
}

/// Scores every head on `prompts` (token ids, one forward pass each).
pub fn head_scores(dec: &Decoder, prompts: &[Vec<u32>]) -> Result<HeadScores> {
    let (nl, nh) = (dec.cfg.n_layers, dec.cfg.n_heads);
    let mut prev = vec![vec![0f64; nh]; nl];
    let mut ind = vec![vec![0f64; nh]; nl];
    let (mut n_prev, mut n_ind) = (0usize, 0usize);
    let points: Vec<HookPoint> = (0..nl).map(|l| HookPoint::Block(l, Site::Pattern)).collect();
    for ids in prompts {
        if ids.len() < 2 {
            return Err(Error::input("head scores need prompts of at least two tokens"));
        }
        let out = dec.forward(&Decoder::input(ids)?, &HookSet::new().capture(points.iter().copied()))?;
        let targets = induction_targets(ids);
        n_prev += ids.len() - 1;
        n_ind += targets.iter().flatten().count();
        for (l, p) in points.iter().enumerate() {
            // (H, s, s)
            let pat: Vec<Vec<Vec<f32>>> =
                out.cache.get(*p)?.squeeze(0)?.to_dtype(candle_core::DType::F32)?.to_vec3()?;
            for (h, rows) in pat.iter().enumerate() {
                for i in 1..ids.len() {
                    prev[l][h] += rows[i][i - 1] as f64;
                    if let Some(t) = targets[i] {
                        ind[l][h] += rows[i][t] as f64;
                    }
                }
            }
        }
    }
    let mean = |m: Vec<Vec<f64>>, n: usize| -> Vec<Vec<f32>> {
        m.into_iter().map(|r| r.into_iter().map(|x| (x / n.max(1) as f64) as f32).collect()).collect()
    };
    Ok(HeadScores { previous_token: mean(prev, n_prev), induction: mean(ind, n_ind) })
}

/// Every head's mean z over every position of a reference set of prompts, from which any set
/// of heads can be mean-ablated without another pass over the prompts.
pub struct HeadMeans {
    /// per layer: (1, 1, H, dh), broadcasting over batch and positions
    means: Vec<Tensor>,
}

impl HeadMeans {
    /// One forward pass per prompt, capturing every layer's z.
    pub fn of(dec: &Decoder, prompts: &[Vec<u32>]) -> Result<Self> {
        if prompts.is_empty() || prompts.iter().any(Vec::is_empty) {
            return Err(Error::input("mean ablation needs a non-empty reference set of non-empty prompts"));
        }
        let points: Vec<HookPoint> = (0..dec.cfg.n_layers).map(|l| HookPoint::Block(l, Site::Z)).collect();
        // per layer: Σ over prompts and positions of z, (H, dh)
        let mut sums: Vec<Option<Tensor>> = vec![None; points.len()];
        let mut count = 0usize;
        for ids in prompts {
            let out = dec.forward(&Decoder::input(ids)?, &HookSet::new().capture(points.iter().copied()))?;
            count += ids.len();
            for (sum, p) in sums.iter_mut().zip(&points) {
                // (1, s, H, dh) → (H, dh)
                let z = out.cache.get(*p)?.to_dtype(candle_core::DType::F32)?.squeeze(0)?.sum(0)?;
                *sum = Some(match sum.take() {
                    Some(acc) => (acc + z)?,
                    None => z,
                });
            }
        }
        let means = sums
            .into_iter()
            .map(|sum| Ok((sum.expect("one prompt at least") / count as f64)?.unsqueeze(0)?.unsqueeze(0)?))
            .collect::<Result<_>>()?;
        Ok(HeadMeans { means })
    }

    /// A hook set that mean-ablates `heads` (layer, head): each head's z is replaced, at every
    /// position, by its mean. No heads: an empty hook set.
    pub fn ablation(&self, heads: &[(usize, usize)]) -> Result<HookSet> {
        let nl = self.means.len();
        let nh = self.means.first().map_or(0, |m| m.dims()[2]);
        if let Some(&(l, h)) = heads.iter().find(|&&(l, h)| l >= nl || h >= nh) {
            return Err(Error::input(format!("head L{l}H{h}: the model has {nl} layers of {nh} heads")));
        }
        let mut layers: Vec<usize> = heads.iter().map(|&(l, _)| l).collect();
        layers.sort_unstable();
        layers.dedup();
        let mut hooks = HookSet::new();
        for l in layers {
            let these: Vec<usize> = heads.iter().filter(|&&(hl, _)| hl == l).map(|&(_, h)| h).collect();
            let edit = Edit::Mean(self.means[l].clone());
            hooks = hooks.intervene(Intervention::new(HookPoint::Block(l, Site::Z), edit).at_heads(these));
        }
        Ok(hooks)
    }
}

/// Which heads a task needs: its accuracy with each head mean-ablated alone, and with the top k
/// of each role (induction, previous-token) ablated together.
pub struct Necessity {
    pub intact: TaskScore,
    /// per head, layer-major: the task's scores with that head alone mean-ablated
    pub alone: Vec<TaskScore>,
    /// per k: the top k heads of each role ablated together
    pub together: Vec<Together>,
}

/// The top `k` heads of each role, (layer, head), ablated together, and the task's scores.
pub struct Together {
    pub k: usize,
    pub heads: Vec<(usize, usize)>,
    pub score: TaskScore,
}

/// [`Necessity`] on `items`, the heads' means taken over the items' own clean prompts; `ks` the
/// group sizes (those above the number of heads are skipped). Progress counts ablated runs.
pub fn necessity(
    dec: &Decoder,
    tok: &Tokenizer,
    items: &[TaskItem],
    scores: &HeadScores,
    ks: &[usize],
    progress: &dyn Progress,
) -> Result<Necessity> {
    let prompts: Vec<Vec<u32>> = items.iter().map(|it| tok.encode(&it.clean)).collect::<Result<_>>()?;
    let means = HeadMeans::of(dec, &prompts)?;
    let score = |heads: &[(usize, usize)]| task_accuracy_with(dec, tok, items, 32, &means.ablation(heads)?);
    let (nl, nh) = (dec.cfg.n_layers, dec.cfg.n_heads);
    let ks: Vec<usize> = ks.iter().copied().filter(|&k| k <= nl * nh).collect();
    let total = (nl * nh + 1 + ks.len()) as u64;
    let mut alone = Vec::with_capacity(nl * nh);
    for l in 0..nl {
        for h in 0..nh {
            alone.push(score(&[(l, h)])?);
            progress.update(alone.len() as u64, total);
        }
    }
    let intact = score(&[])?;
    let mut together = Vec::new();
    for k in ks {
        let heads = scores.top_of_each(k);
        let s = score(&heads)?;
        together.push(Together { k, heads, score: s });
        progress.update((nl * nh + 1 + together.len()) as u64, total);
    }
    Ok(Necessity { intact, alone, together })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn induction_targets_point_after_the_previous_occurrence() {
        // a b c a b c
        let t = induction_targets(&[1, 2, 3, 1, 2, 3]);
        assert_eq!(t, vec![None, None, None, Some(1), Some(2), Some(3)]);
        // an immediate repeat has no target (j + 1 would be i itself)
        assert_eq!(induction_targets(&[5, 5]), vec![None, None]);
    }
}
