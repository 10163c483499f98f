//! How well a difficulty score predicts measured unlearning difficulty (CUD's validation, ours to
//! define: ALGORITHMS.md §5): Spearman's ρ with the measured difficulty and the AUROC for the
//! hardest third, each with a 95 % bootstrap interval over samples; and whether the hardest
//! third's circuits differ in structure (deeper, longer) from the rest, by permutation test.

use super::cud::Structure;
use super::stats::{bootstrap, mean_at, permutation_p, spearman, Estimate};
use crate::error::{Error, Result};
use crate::unlearn::evaluate::auc;
use serde::Serialize;

/// One predictor's agreement with the measured difficulty.
#[derive(Clone, Debug, Serialize)]
pub struct PredictorReport {
    pub name: String,
    /// Spearman's ρ between the predictor (higher = predicted harder) and the measured difficulty
    pub spearman: Estimate,
    /// the AUROC of the predictor for "among the hardest third" (0.5 = chance; below 0.5 the
    /// opposite direction predicts)
    pub auroc_hardest_third: Estimate,
}

/// The samples in the hardest third by `measured` (highest first; ties keep the lower index).
pub fn hardest_third(measured: &[f64]) -> Vec<bool> {
    let mut order: Vec<usize> = (0..measured.len()).collect();
    order.sort_by(|&a, &b| measured[b].total_cmp(&measured[a]).then(a.cmp(&b)));
    let mut hard = vec![false; measured.len()];
    for &i in &order[..measured.len().div_ceil(3)] {
        hard[i] = true;
    }
    hard
}

/// `predicted` (higher = predicted harder) against `measured` (higher = harder), with bootstrap
/// intervals from `reps` resamples under `seed`.
pub fn assess(name: &str, predicted: &[f64], measured: &[f64], reps: usize, seed: u64) -> Result<PredictorReport> {
    if predicted.len() != measured.len() || predicted.len() < 3 {
        return Err(Error::input(format!(
            "{name}: {} predictions for {} measured samples (at least 3 needed)",
            predicted.len(),
            measured.len()
        )));
    }
    if predicted.iter().chain(measured).any(|x| !x.is_finite()) {
        return Err(Error::input(format!("{name}: a prediction or a measured difficulty is not finite")));
    }
    let hard = hardest_third(measured);
    let rho = |idx: &[usize]| {
        let (p, m): (Vec<f64>, Vec<f64>) = idx.iter().map(|&i| (predicted[i], measured[i])).unzip();
        spearman(&p, &m)
    };
    let roc = |idx: &[usize]| {
        let (pos, neg): (Vec<usize>, Vec<usize>) = idx.iter().partition(|&&i| hard[i]);
        let score = |v: Vec<usize>| v.into_iter().map(|i| predicted[i]).collect::<Vec<f64>>();
        auc(&score(neg), &score(pos)).unwrap_or(f64::NAN)
    };
    Ok(PredictorReport {
        name: name.to_string(),
        spearman: bootstrap(measured.len(), reps, seed, rho),
        auroc_hardest_third: bootstrap(measured.len(), reps, seed, roc),
    })
}

/// One structural feature of the hardest third's circuits against the rest's.
#[derive(Clone, Debug, Serialize)]
pub struct StructureTest {
    pub feature: String,
    pub hardest_third_mean: f64,
    pub rest_mean: f64,
    /// two-sided permutation p-value of the difference of means
    pub p: f64,
    /// Spearman's ρ of the feature with the measured difficulty over all samples
    pub spearman: f64,
}

/// One number of a circuit's structure.
type Feature = fn(&Structure) -> f64;

/// The features of [`Structure`] that the signature speaks of: where the circuit's weight sits
/// (mean writer layer), how deep it reaches (deepest layer), how long its paths are (longest
/// input → logits path, 0 when there is none) and its size.
pub fn structure_tests(structures: &[Structure], measured: &[f64], reps: usize, seed: u64) -> Vec<StructureTest> {
    let hard = hardest_third(measured);
    let features: [(&str, Feature); 4] = [
        ("mean writer layer", |s| s.mean_writer_layer),
        ("deepest layer", |s| s.deepest_layer as f64),
        ("longest input→logits path (edges)", |s| s.longest_path.unwrap_or(0) as f64),
        ("edges", |s| s.edges as f64),
    ];
    features
        .iter()
        .map(|(name, f)| {
            let values: Vec<f64> = structures.iter().map(f).collect();
            // a circuit without edges has no mean layer: left out of this feature's test
            let keep: Vec<usize> = (0..values.len()).filter(|&i| values[i].is_finite()).collect();
            let (h, r): (Vec<usize>, Vec<usize>) = keep.iter().partition(|&&i| hard[i]);
            let pick = |idx: &[usize]| idx.iter().map(|&i| values[i]).collect::<Vec<f64>>();
            let (vk, mk): (Vec<f64>, Vec<f64>) = keep.iter().map(|&i| (values[i], measured[i])).unzip();
            StructureTest {
                feature: name.to_string(),
                hardest_third_mean: mean_at(&values, &h),
                rest_mean: mean_at(&values, &r),
                p: permutation_p(&pick(&h), &pick(&r), reps, seed),
                spearman: spearman(&vk, &mk),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_perfect_predictor_a_reversed_one_and_the_hardest_third() {
        let measured: Vec<f64> = (0..30).map(|i| i as f64).collect();
        assert_eq!(hardest_third(&measured).iter().filter(|&&h| h).count(), 10);
        assert!(hardest_third(&measured)[29] && !hardest_third(&measured)[19]);
        let good = assess("good", &measured, &measured, 200, 1).unwrap();
        assert!((good.spearman.value - 1.0).abs() < 1e-12 && (good.auroc_hardest_third.value - 1.0).abs() < 1e-12);
        let reversed: Vec<f64> = measured.iter().map(|x| -x).collect();
        let bad = assess("reversed", &reversed, &measured, 200, 1).unwrap();
        assert!((bad.spearman.value + 1.0).abs() < 1e-12 && bad.auroc_hardest_third.value.abs() < 1e-12);
        assert!(assess("short", &measured[..2], &measured[..2], 10, 1).is_err());
    }
}
