//! Rank statistics for comparing score vectors (attribution against exact patching), and the
//! resampling tests that validate a predictor: percentile bootstrap intervals and permutation
//! p-values, deterministic under their seed.

use crate::rng::Rng;
use serde::Serialize;

/// Ranks 1..n, ties sharing their mean rank.
pub fn ranks(xs: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..xs.len()).collect();
    idx.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut r = vec![0.0; xs.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && xs[idx[j + 1]] == xs[idx[i]] {
            j += 1;
        }
        let mean = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = mean;
        }
        i = j + 1;
    }
    r
}

/// Pearson correlation; NaN when either vector is constant.
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "pearson: vectors of different lengths");
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    sab / (saa * sbb).sqrt()
}

/// Spearman's rank correlation (Pearson on ranks, ties averaged).
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    pearson(&ranks(a), &ranks(b))
}

/// A statistic with its 95 % percentile bootstrap interval.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Estimate {
    pub value: f64,
    pub lo: f64,
    pub hi: f64,
}

/// `stat` over all `n` items, and its 95 % percentile interval over `reps` bootstrap resamples of
/// the items (indices drawn with replacement). Resamples on which `stat` is not finite (a
/// constant resample's correlation, a class left empty) are skipped.
pub fn bootstrap(n: usize, reps: usize, seed: u64, stat: impl Fn(&[usize]) -> f64) -> Estimate {
    let all: Vec<usize> = (0..n).collect();
    let value = stat(&all);
    let mut rng = Rng::stream(seed, "bootstrap");
    let mut draws: Vec<f64> = (0..reps)
        .map(|_| {
            let idx: Vec<usize> = (0..n).map(|_| rng.below(n.max(1))).collect();
            stat(&idx)
        })
        .filter(|x| x.is_finite())
        .collect();
    if draws.is_empty() {
        return Estimate { value, lo: f64::NAN, hi: f64::NAN };
    }
    draws.sort_by(f64::total_cmp);
    let at = |q: f64| draws[((q * (draws.len() - 1) as f64).round() as usize).min(draws.len() - 1)];
    Estimate { value, lo: at(0.025), hi: at(0.975) }
}

/// The two-sided permutation p-value of the difference of the means of `a` and `b`:
/// (1 + #relabellings at least as extreme) / (1 + reps).
pub fn permutation_p(a: &[f64], b: &[f64], reps: usize, seed: u64) -> f64 {
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
    let observed = (mean(a) - mean(b)).abs();
    let mut pool: Vec<f64> = a.iter().chain(b).copied().collect();
    let mut rng = Rng::stream(seed, "permutation");
    let mut extreme = 0usize;
    for _ in 0..reps {
        rng.shuffle(&mut pool);
        let (x, y) = pool.split_at(a.len());
        // a relative tolerance, so that relabellings equal to the observed difference count
        if (mean(x) - mean(y)).abs() >= observed * (1.0 - 1e-12) {
            extreme += 1;
        }
    }
    (1 + extreme) as f64 / (1 + reps) as f64
}

/// Mean of the values at `idx`.
pub fn mean_at(xs: &[f64], idx: &[usize]) -> f64 {
    idx.iter().map(|&i| xs[i]).sum::<f64>() / idx.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_brackets_the_statistic_and_permutation_tells_apart() {
        let xs: Vec<f64> = (0..50).map(|i| i as f64).collect();
        let e = bootstrap(xs.len(), 500, 7, |idx| mean_at(&xs, idx));
        assert_eq!(e.value, 24.5);
        assert!(e.lo < 24.5 && 24.5 < e.hi && e.hi - e.lo < 20.0, "{e:?}");
        // the same seed gives the same interval
        let again = bootstrap(xs.len(), 500, 7, |idx| mean_at(&xs, idx));
        assert_eq!((e.lo, e.hi), (again.lo, again.hi));
        let (a, b): (Vec<f64>, Vec<f64>) =
            ((0..20).map(|i| i as f64).collect(), (0..20).map(|i| i as f64 + 30.0).collect());
        assert!(permutation_p(&a, &b, 999, 1) < 0.01);
        let c: Vec<f64> = (0..20).map(|i| (i % 2) as f64 + 100.0).collect();
        let d: Vec<f64> = (0..20).map(|i| ((i + 1) % 2) as f64 + 100.0).collect();
        assert!(permutation_p(&c, &d, 999, 1) > 0.5);
    }

    #[test]
    fn spearman_of_monotone_and_reversed_and_tied_data() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert!((spearman(&a, &[2.0, 4.0, 8.0, 16.0, 32.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&a, &[5.0, 4.0, 3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
        // scipy.stats.spearmanr([1,2,3,4,5],[5,6,7,8,7]) = 0.8207826816681233
        assert!((spearman(&a, &[5.0, 6.0, 7.0, 8.0, 7.0]) - 0.8207826816681233).abs() < 1e-12);
    }
}
