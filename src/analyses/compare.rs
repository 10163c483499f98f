//! How far two edge-score vectors agree: a gradient attribution against exact patching, two
//! methods, two data sets. Rank correlations over every real edge (signed, and on |score|, the
//! ranking that circuit selection uses), Pearson, the overlap of the top-n edges by |score|, and
//! the same per kind of edge, to show where two methods part (through softmax keys, through an
//! MLP, out of one layer).

use super::stats::{pearson, ranks, spearman};
use crate::error::{Error, Result};
use crate::graph::{EdgeScores, GraphShape, Qkv, Reader, Writer};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TopOverlap {
    pub n: usize,
    /// edges among both sides' top n by |score|
    pub shared: usize,
}

/// The agreement within one kind of edge, and over all the other edges.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KindAgreement {
    /// e.g. `into k`, `from MLPs`, `from layer 0`
    pub kind: String,
    pub n_edges: usize,
    /// Spearman of the signed scores over the edges of this kind
    pub spearman: f64,
    /// Spearman of the signed scores over every edge NOT of this kind: how much this kind
    /// pulls the overall figure down
    pub spearman_without: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Agreement {
    pub n_edges: usize,
    pub spearman: f64,
    pub spearman_abs: f64,
    pub pearson: f64,
    pub top_overlap: Vec<TopOverlap>,
    /// by the writer's kind (input, heads, MLPs), the reader's (q, k, v, MLPs, logits) and the
    /// writer's layer (the input counts as its own); kinds with fewer than 3 edges on either
    /// side are left out
    pub by_kind: Vec<KindAgreement>,
}

impl Agreement {
    /// The kind whose edges pull the signed Spearman down most: the highest figure without it.
    pub fn worst_kind(&self) -> Option<&KindAgreement> {
        self.by_kind.iter().max_by(|a, b| a.spearman_without.total_cmp(&b.spearman_without))
    }
}

/// Every edge's kinds (edge order), with the kinds' names in display order.
fn edge_kinds(shape: &GraphShape) -> (Vec<String>, Vec<Vec<usize>>) {
    let mut names: Vec<String> =
        ["from input", "from heads", "from MLPs", "into q", "into k", "into v", "into MLPs", "into logits"]
            .map(String::from)
            .to_vec();
    names.extend((0..shape.n_layers).map(|l| format!("from layer {l}")));
    let layer_kind = |l: usize| 8 + l;
    let kinds = shape
        .edges()
        .map(|(w, r)| {
            let (from, layer) = match shape.writer(w) {
                Writer::Input => (0, None),
                Writer::Head { layer, .. } => (1, Some(layer)),
                Writer::Mlp { layer } => (2, Some(layer)),
            };
            let into = match shape.reader(r) {
                Reader::Head { qkv: Qkv::Q, .. } => 3,
                Reader::Head { qkv: Qkv::K, .. } => 4,
                Reader::Head { qkv: Qkv::V, .. } => 5,
                Reader::Mlp { .. } => 6,
                Reader::Logits => 7,
            };
            let mut k = vec![from, into];
            k.extend(layer.map(layer_kind));
            k
        })
        .collect();
    (names, kinds)
}

/// Spearman over the edges where `keep` holds.
fn spearman_where(x: &[f64], y: &[f64], keep: impl Fn(usize) -> bool) -> (usize, f64) {
    let (xs, ys): (Vec<f64>, Vec<f64>) = (0..x.len()).filter(|&i| keep(i)).map(|i| (x[i], y[i])).unzip();
    (xs.len(), spearman(&xs, &ys))
}

fn by_kind(shape: &GraphShape, x: &[f64], y: &[f64]) -> Vec<KindAgreement> {
    let (names, kinds) = edge_kinds(shape);
    names
        .into_iter()
        .enumerate()
        .filter_map(|(k, kind)| {
            let (n, within) = spearman_where(x, y, |i| kinds[i].contains(&k));
            let (rest, without) = spearman_where(x, y, |i| !kinds[i].contains(&k));
            (n >= 3 && rest >= 3).then_some(KindAgreement {
                kind,
                n_edges: n,
                spearman: within,
                spearman_without: without,
            })
        })
        .collect()
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
        by_kind: by_kind(&a.shape, &x, &y),
    })
}

/// Each edge's (rank in `a`, rank in `b`) of the signed scores as fractions in (0, 1], for a
/// rank-against-rank picture; at most `max_points` of them, every k-th edge in `a`'s order.
pub fn rank_pairs(a: &EdgeScores, b: &EdgeScores, max_points: usize) -> Vec<(f64, f64)> {
    sampled_rank_pairs(&edge_ranks(a, b), max_points, |_| true)
}

/// [`rank_pairs`] split by the writer's kind (`from input`, `from heads`, `from MLPs`), ranks
/// still over every edge, so the picture shows which writers lie off the diagonal. At most
/// `max_points` per kind.
pub fn rank_pairs_by_writer(a: &EdgeScores, b: &EdgeScores, max_points: usize) -> Vec<(String, Vec<(f64, f64)>)> {
    let (names, kinds) = edge_kinds(&a.shape);
    let ranked = edge_ranks(a, b);
    (0..3)
        .map(|k| (names[k].clone(), sampled_rank_pairs(&ranked, max_points, |i| kinds[i][0] == k)))
        .filter(|(_, pairs)| !pairs.is_empty())
        .collect()
}

/// Every edge's rank in `a` and in `b` (edge order).
fn edge_ranks(a: &EdgeScores, b: &EdgeScores) -> (Vec<f64>, Vec<f64>) {
    (ranks(&edge_values(a)), ranks(&edge_values(b)))
}

/// The (rank in a, rank in b) fractions of the edges where `keep` holds, every k-th in a's order.
fn sampled_rank_pairs(
    (ra, rb): &(Vec<f64>, Vec<f64>),
    max_points: usize,
    keep: impl Fn(usize) -> bool,
) -> Vec<(f64, f64)> {
    let n = ra.len().max(1) as f64;
    let mut order: Vec<usize> = (0..ra.len()).filter(|&i| keep(i)).collect();
    let stride = order.len().div_ceil(max_points.max(1)).max(1);
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
        assert!(same.by_kind.iter().all(|k| k.spearman == 1.0 && k.spearman_without == 1.0));
        let pairs = rank_pairs(&a, &a, 4);
        assert!(pairs.len() <= 4 && pairs.iter().all(|(x, y)| x == y));
        let split = rank_pairs_by_writer(&a, &a, 1000);
        assert_eq!(
            split.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["from input", "from heads", "from MLPs"]
        );
        assert_eq!(split.iter().map(|(_, p)| p.len()).sum::<usize>(), a.shape.n_edges());
    }

    #[test]
    fn kinds_partition_the_edges_and_find_the_disagreeing_kind() {
        let shape = GraphShape { n_layers: 2, n_heads: 2, parallel_residual: false };
        let (names, kinds) = edge_kinds(&shape);
        // every edge has exactly one writer kind and one reader kind
        for k in &kinds {
            assert_eq!(k.iter().filter(|&&i| i < 3).count(), 1);
            assert_eq!(k.iter().filter(|&&i| (3..8).contains(&i)).count(), 1);
        }
        let count =
            |name: &str| kinds.iter().filter(|k| k.contains(&names.iter().position(|n| n == name).unwrap())).count();
        // 2 layers × 2 heads: the input feeds every reader (2 × 7 + 1 = 15)
        assert_eq!(count("from input"), 15);
        assert_eq!(count("into logits"), shape.n_fwd());
        assert_eq!((0..8).map(|i| kinds.iter().filter(|k| k.contains(&i)).count()).sum::<usize>(), 2 * kinds.len());
        // b agrees with a except on the edges into keys, where it is reversed
        let a = scores(|k| k as f32);
        let into_k: Vec<bool> =
            shape.edges().map(|(_, r)| matches!(shape.reader(r), Reader::Head { qkv: Qkv::K, .. })).collect();
        let b = scores(|k| if into_k[k] { -(k as f32) } else { k as f32 });
        let g = agreement(&a, &b, &[]).unwrap();
        let kind = |n: &str| g.by_kind.iter().find(|k| k.kind == n).unwrap();
        assert!((kind("into k").spearman + 1.0).abs() < 1e-12);
        assert!((kind("into k").spearman_without - 1.0).abs() < 1e-12);
        assert_eq!(kind("into v").spearman, 1.0);
        assert!(kind("into v").spearman_without < kind("into k").spearman_without);
        assert_eq!(g.worst_kind().unwrap().kind, "into k");
    }

    #[test]
    fn different_graphs_are_refused() {
        let a = scores(|k| k as f32);
        let b = EdgeScores::zeros(GraphShape { n_layers: 3, n_heads: 2, parallel_residual: false });
        let e = agreement(&a, &b, &[]).unwrap_err().to_string();
        assert!(e.contains("2 layers × 2 heads") && e.contains("3 layers × 2 heads"), "{e}");
    }
}
