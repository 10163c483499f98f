//! How far two edge-score vectors agree: a gradient attribution against exact patching, two
//! methods, two data sets. Rank correlations over every real edge (signed, and on |score|, the
//! ranking that circuit selection uses), Pearson, and the overlap of the top-n edges by |score|.

use super::stats::{pearson, ranks, spearman};
use crate::error::{Error, Result};
use crate::graph::EdgeScores;
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TopOverlap {
    pub n: usize,
    /// edges among both sides' top n by |score|
    pub shared: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Agreement {
    pub n_edges: usize,
    pub spearman: f64,
    pub spearman_abs: f64,
    pub pearson: f64,
    pub top_overlap: Vec<TopOverlap>,
}

/// The scores of every real edge, in the graph's edge order.
fn edge_values(s: &EdgeScores) -> Vec<f64> {
    s.edges().map(|(_, _, v)| v as f64).collect()
}

/// Edge positions ordered by |score| descending, ties by position (deterministic).
fn by_magnitude(xs: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..xs.len()).collect();
    idx.sort_by(|&a, &b| xs[b].abs().total_cmp(&xs[a].abs()).then(a.cmp(&b)));
    idx
}

/// Agreement of `a` and `b` over every edge; `tops` are the n of the top-n overlaps (values
/// above the edge count are left out). Fails if the two come from different graphs.
pub fn agreement(a: &EdgeScores, b: &EdgeScores, tops: &[usize]) -> Result<Agreement> {
    if a.shape != b.shape {
        return Err(Error::input(format!(
            "the two score sets are on different graphs ({} layers × {} heads{} against {} layers × {} heads{})",
            a.shape.n_layers,
            a.shape.n_heads,
            if a.shape.parallel_residual { ", parallel residual" } else { "" },
            b.shape.n_layers,
            b.shape.n_heads,
            if b.shape.parallel_residual { ", parallel residual" } else { "" },
        )));
    }
    let (x, y) = (edge_values(a), edge_values(b));
    let abs = |v: &[f64]| v.iter().map(|t| t.abs()).collect::<Vec<_>>();
    let (ox, oy) = (by_magnitude(&x), by_magnitude(&y));
    let mut in_y = vec![false; y.len()];
    let top_overlap = tops
        .iter()
        .filter(|&&n| n > 0 && n <= x.len())
        .map(|&n| {
            in_y.iter_mut().for_each(|f| *f = false);
            oy[..n].iter().for_each(|&i| in_y[i] = true);
            TopOverlap { n, shared: ox[..n].iter().filter(|&&i| in_y[i]).count() }
        })
        .collect();
    Ok(Agreement {
        n_edges: x.len(),
        spearman: spearman(&x, &y),
        spearman_abs: spearman(&abs(&x), &abs(&y)),
        pearson: pearson(&x, &y),
        top_overlap,
    })
}

/// Each edge's (rank in `a`, rank in `b`) of the signed scores as fractions in (0, 1], for a
/// rank-against-rank picture; at most `max_points` of them, every k-th edge in `a`'s order.
pub fn rank_pairs(a: &EdgeScores, b: &EdgeScores, max_points: usize) -> Vec<(f64, f64)> {
    let (ra, rb) = (ranks(&edge_values(a)), ranks(&edge_values(b)));
    let n = ra.len().max(1) as f64;
    let stride = ra.len().div_ceil(max_points.max(1)).max(1);
    let mut order: Vec<usize> = (0..ra.len()).collect();
    order.sort_by(|&i, &j| ra[i].total_cmp(&ra[j]).then(i.cmp(&j)));
    order.into_iter().step_by(stride).map(|i| (ra[i] / n, rb[i] / n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::GraphShape;

    fn scores(f: impl Fn(usize) -> f32) -> EdgeScores {
        let shape = GraphShape { n_layers: 2, n_heads: 2, parallel_residual: false };
        let mut s = EdgeScores::zeros(shape);
        let edges: Vec<(usize, usize)> = shape.edges().collect();
        for (k, (w, r)) in edges.into_iter().enumerate() {
            s.set(w, r, f(k));
        }
        s
    }

    #[test]
    fn identical_reversed_and_sign_flipped_scores() {
        let a = scores(|k| k as f32 - 10.0);
        let same = agreement(&a, &a, &[1, 5, 1000]).unwrap();
        assert_eq!(same.spearman, 1.0);
        assert_eq!(same.top_overlap, vec![TopOverlap { n: 1, shared: 1 }, TopOverlap { n: 5, shared: 5 }]);
        let neg = agreement(&a, &scores(|k| 10.0 - k as f32), &[5]).unwrap();
        assert!((neg.spearman + 1.0).abs() < 1e-12 && (neg.spearman_abs - 1.0).abs() < 1e-12);
        assert_eq!(neg.top_overlap[0].shared, 5);
        let pairs = rank_pairs(&a, &a, 4);
        assert!(pairs.len() <= 4 && pairs.iter().all(|(x, y)| x == y));
    }

    #[test]
    fn different_graphs_are_refused() {
        let a = scores(|k| k as f32);
        let b = EdgeScores::zeros(GraphShape { n_layers: 3, n_heads: 2, parallel_residual: false });
        let e = agreement(&a, &b, &[]).unwrap_err().to_string();
        assert!(e.contains("2 layers × 2 heads") && e.contains("3 layers × 2 heads"), "{e}");
    }
}
