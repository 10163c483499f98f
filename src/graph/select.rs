//! From scores to a circuit (ALGORITHMS.md §3), following the EAP-IG code's `apply_topn`,
//! `apply_greedy`, `apply_threshold` and `prune`.
//!
//! Conventions shared by all selections:
//! - Edges are ranked by |score|; a NaN score ranks below every number (never preferred).
//! - Ties are broken by the dense index `w * n_bwd + r`, the lower index first, so every
//!   selection is deterministic.
//! - The selections do not prune; call [`Circuit::prune`] (or [`Circuit::pruned`]) after them,
//!   as EAP-IG does by default (`prune=True`).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::{Circuit, EdgeScores};
use crate::error::{Error, Result};

/// The ranking key of a score: |s|, with NaN below everything.
fn rank_key(s: f32) -> f32 {
    if s.is_nan() {
        f32::NEG_INFINITY
    } else {
        s.abs()
    }
}

/// A candidate edge in the greedy max-heap: larger |score| first, then lower dense index.
#[derive(Clone, Copy, PartialEq)]
struct Candidate {
    key: f32,
    flat: usize,
}

impl Eq for Candidate {}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.total_cmp(&other.key).then_with(|| other.flat.cmp(&self.flat))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

fn check_n(scores: &EdgeScores, n: usize, what: &str) -> Result<()> {
    let n_edges = scores.shape.n_edges();
    if n > n_edges {
        return Err(Error::input(format!("{what}: asked for {n} edges but the graph has only {n_edges}")));
    }
    Ok(())
}

impl Circuit {
    /// The `n` edges with the largest |score| (ties: lower dense index first). Nodes: those
    /// with an edge out and an edge in (`input`: an edge out), `logits` always. Not pruned.
    /// Errors if `n` exceeds the number of edges.
    pub fn top_n(scores: &EdgeScores, n: usize) -> Result<Circuit> {
        check_n(scores, n, "top-n")?;
        let nb = scores.shape.n_bwd();
        let mut ranked: Vec<Candidate> =
            scores.edges().map(|(w, r, s)| Candidate { key: rank_key(s), flat: w * nb + r }).collect();
        // Descending by the heap order: larger key first, lower index first on ties.
        ranked.sort_unstable_by(|a, b| b.cmp(a));
        let mut mask = vec![false; scores.scores.len()];
        for c in &ranked[..n] {
            mask[c.flat] = true;
        }
        Ok(Circuit::from_edge_mask(scores.clone(), &mask))
    }

    /// Greedy growth from the logits (EAP-IG `apply_greedy`): the candidates start as the edges
    /// into `logits`; `n` times, the candidate with the largest |score| (ties: lower dense
    /// index) joins the circuit, and if its writer was not yet in the circuit the writer joins
    /// and all edges into the writer's readers become candidates (for a head: its q, k and v
    /// inputs). Every candidate's reader is therefore in the circuit. Nodes: the writers added
    /// and `logits`. Not pruned: a writer added last may have no edge in yet.
    /// Errors if `n` exceeds the number of edges.
    pub fn greedy(scores: &EdgeScores, n: usize) -> Result<Circuit> {
        check_n(scores, n, "greedy")?;
        let shape = scores.shape;
        let nb = shape.n_bwd();
        let mut c = Circuit::empty(scores.clone());
        let mut heap = BinaryHeap::new();
        let push_into = |heap: &mut BinaryHeap<Candidate>, r: usize| {
            for w in 0..shape.n_fwd() {
                if shape.is_edge(shape.writer(w), shape.reader(r)) {
                    heap.push(Candidate { key: rank_key(scores.get(w, r)), flat: w * nb + r });
                }
            }
        };
        for r in shape.readers_of_node(shape.logits_node()) {
            push_into(&mut heap, r);
        }
        for _ in 0..n {
            // Every writer has an edge into logits, so the heap holds every edge whose reader is
            // in the circuit and cannot run dry while n ≤ n_edges.
            let top = heap.pop().expect("greedy candidates exhausted before n edges");
            let w = top.flat / nb;
            c.edges_mut()[top.flat] = true;
            if !c.node_in_graph(w) {
                c.nodes_mut()[w] = true;
                for r in shape.readers_of_node(w) {
                    push_into(&mut heap, r);
                }
            }
        }
        Ok(c)
    }

    /// Every edge with |score| ≥ `tau` (NaN scores never pass). Nodes as in [`Circuit::top_n`].
    /// Not pruned.
    pub fn threshold(scores: &EdgeScores, tau: f32) -> Circuit {
        let nb = scores.shape.n_bwd();
        let mut mask = vec![false; scores.scores.len()];
        for (w, r, s) in scores.edges() {
            mask[w * nb + r] = s.abs() >= tau;
        }
        Circuit::from_edge_mask(scores.clone(), &mask)
    }

    /// Prunes to a fixed point: repeatedly drop nodes with no in-circuit edge out (`logits`
    /// exempt) or none in (`input` exempt; a head has an edge in if any of its q/k/v inputs
    /// has one), then drop edges whose writer or reader node is gone. Only removes; the
    /// result is connected: every edge lies on a path from `input` to `logits`.
    pub fn prune(&mut self) {
        let shape = self.shape();
        let (nf, nb) = (shape.n_fwd(), shape.n_bwd());
        let logits = shape.logits_node();
        loop {
            let (has_out, has_in) = self.node_degrees();
            let mut changed = false;
            for (i, node) in self.nodes_mut().iter_mut().enumerate() {
                let keep = i == logits || (*node && has_out[i] && (has_in[i] || i == 0));
                changed |= keep != *node;
                *node = keep;
            }
            let reader_alive: Vec<bool> = (0..nb).map(|r| self.node_in_graph(shape.node_of_reader(r))).collect();
            let writer_alive: Vec<bool> = (0..nf).map(|w| self.node_in_graph(w)).collect();
            for (i, e) in self.edges_mut().iter_mut().enumerate() {
                if *e && !(writer_alive[i / nb] && reader_alive[i % nb]) {
                    *e = false;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
    }

    /// [`Circuit::prune`], by value, for chaining: `Circuit::greedy(&s, 75)?.pruned()`.
    pub fn pruned(mut self) -> Self {
        self.prune();
        self
    }
}
