//! CUD's anchors (ALGORITHMS.md §5, step 3): which forget samples unlearning finds easy and which
//! hard. Each method is run on the whole forget set from the original weights; a sample's
//! difficulty under a method is its mean answer NLL after the run (high = forgotten = easy). Per
//! method the k easiest and k hardest are kept, and the consensus sets hold the samples in a
//! method's k easiest (hardest) for at least ⌈methods/2⌉ methods, less the contested ones that
//! reach that count on both sides.

use super::answers::token_stats;
use super::run::{unlearn, StepLog, UnlearnConfig};
use crate::data::Example;
use crate::error::{Error, Result};
use crate::model::Decoder;
use crate::progress::Progress;
use crate::train::Trainable;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One method's run and what it says about each forget sample.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MethodRun {
    pub method: String,
    pub config: UnlearnConfig,
    /// per forget sample, its mean answer NLL per token after the run
    pub nll_after: Vec<f64>,
    /// the k forget samples (indices) with the highest NLL after the run, highest first
    pub easy: Vec<usize>,
    /// the k with the lowest, lowest first
    pub hard: Vec<usize>,
    pub steps: Vec<StepLog>,
    pub seconds: f64,
}

/// The per-sample mean answer NLL per token of `examples` under `dec`.
pub fn sample_nll(dec: &Decoder, examples: &[Example], batch: usize) -> Result<Vec<f64>> {
    Ok(token_stats(dec, examples, batch)?.iter().map(|s| s.mean_nll()).collect())
}

/// The k easiest (highest NLL after unlearning, highest first) and the k hardest (lowest first)
/// samples; ties keep the lower index first, so the order is deterministic.
pub fn easy_and_hard(nll_after: &[f64], k: usize) -> Result<(Vec<usize>, Vec<usize>)> {
    if nll_after.iter().any(|x| x.is_nan()) {
        return Err(Error::input("a forget sample's NLL after unlearning is NaN"));
    }
    let k = k.min(nll_after.len());
    let mut order: Vec<usize> = (0..nll_after.len()).collect();
    order.sort_by(|&a, &b| nll_after[b].total_cmp(&nll_after[a]).then(a.cmp(&b)));
    let easy = order[..k].to_vec();
    order.sort_by(|&a, &b| nll_after[a].total_cmp(&nll_after[b]).then(a.cmp(&b)));
    Ok((easy, order[..k].to_vec()))
}

/// The samples in at least ⌈sets/2⌉ of `sets`, in index order.
pub fn consensus(sets: &[&[usize]]) -> Vec<usize> {
    let need = sets.len().div_ceil(2);
    let mut count = std::collections::BTreeMap::<usize, usize>::new();
    for s in sets {
        for &i in *s {
            *count.entry(i).or_default() += 1;
        }
    }
    count.into_iter().filter(|&(_, c)| c >= need).map(|(i, _)| i).collect()
}

/// The anchors several methods agree on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consensus {
    pub easy: Vec<usize>,
    pub hard: Vec<usize>,
    /// in both [`consensus`] sets (with two methods, one vote makes a side: a sample one method
    /// forgets first and the other last), so in neither: an anchor circuit over it would pull
    /// the easy and the hard circuit together and every CUD towards 0.5
    pub contested: Vec<usize>,
}

impl Consensus {
    /// From each method's easy and hard set.
    pub fn of_sets(easy: &[&[usize]], hard: &[&[usize]]) -> Consensus {
        let (easy, hard) = (consensus(easy), consensus(hard));
        let contested: Vec<usize> = easy.iter().copied().filter(|i| hard.binary_search(i).is_ok()).collect();
        let uncontested = |s: Vec<usize>| s.into_iter().filter(|i| contested.binary_search(i).is_err()).collect();
        Consensus { easy: uncontested(easy), hard: uncontested(hard), contested }
    }

    pub fn of(runs: &[MethodRun]) -> Consensus {
        let sets = |pick: fn(&MethodRun) -> &[usize]| runs.iter().map(pick).collect::<Vec<_>>();
        Consensus::of_sets(&sets(|r| &r.easy), &sets(|r| &r.hard))
    }

    /// "25 easy, 31 hard", with the contested ones when there are any.
    pub fn describe(&self) -> String {
        let mut s = format!("{} easy, {} hard", self.easy.len(), self.hard.len());
        if !self.contested.is_empty() {
            s += &format!("; {} contested, in both and left out", self.contested.len());
        }
        s
    }
}

/// Runs one method from the original weights at `path` and ranks the forget samples.
/// `reference` is the frozen original (NPO's reference, RMU's retain target).
#[allow(clippy::too_many_arguments)]
pub fn run_method(
    path: &Path,
    reference: &Decoder,
    method: &str,
    forget: &[Example],
    retain: &[Example],
    cfg: &UnlearnConfig,
    k: usize,
    progress: &dyn Progress,
) -> Result<MethodRun> {
    let model = Trainable::load(path, reference.device())?;
    let steps = unlearn(&model, Some(reference), forget, retain, cfg, progress)?;
    let nll_after = sample_nll(&model.decoder()?, forget, cfg.batch)?;
    let (easy, hard) = easy_and_hard(&nll_after, k)?;
    Ok(MethodRun {
        method: method.to_string(),
        config: cfg.clone(),
        seconds: steps.last().map_or(0.0, |s| s.seconds),
        nll_after,
        easy,
        hard,
        steps,
    })
}
