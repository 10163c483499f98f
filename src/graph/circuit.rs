//! A circuit: the graph's edge scores plus which edges and nodes are in the circuit, in the
//! dense layouts of the EAP-IG code (edges `(n_fwd, n_bwd)` row-major, nodes `n_fwd + 1` with
//! `logits` last; see `names.rs`). Selection (`top_n`, `greedy`, `threshold`, `prune`) lives in
//! `select.rs`, the EAP-IG/MIB JSON in `json.rs`, DOT export in `dot.rs`.

use super::{EdgeScores, GraphShape};

#[derive(Clone, Debug, PartialEq)]
pub struct Circuit {
    scores: EdgeScores,
    /// (n_fwd, n_bwd) row-major; only real edges are ever true.
    edges: Vec<bool>,
    /// (n_fwd + 1); `logits` (last) is always true, as in EAP-IG.
    nodes: Vec<bool>,
    /// (n_fwd + 1) node scores; NaN = not scored. `None` when the circuit has no node scores.
    node_scores: Option<Vec<f32>>,
    /// The model width, kept for the JSON `cfg` (EAP-IG's `from_json` needs it).
    d_model: Option<usize>,
}

impl Circuit {
    /// No edges, no nodes except `logits`.
    pub fn empty(scores: EdgeScores) -> Self {
        let shape = scores.shape;
        let mut nodes = vec![false; shape.n_nodes()];
        nodes[shape.logits_node()] = true;
        Circuit { edges: vec![false; shape.n_fwd() * shape.n_bwd()], nodes, scores, node_scores: None, d_model: None }
    }

    /// Every edge and node of the graph: the full model.
    pub fn full(scores: EdgeScores) -> Self {
        let mut c = Circuit::empty(scores);
        let nb = c.shape().n_bwd();
        for (w, r) in c.shape().edges() {
            c.edges[w * nb + r] = true;
        }
        c.nodes.iter_mut().for_each(|n| *n = true);
        c
    }

    /// The edges of a dense `(n_fwd, n_bwd)` mask (entries that are not edges are ignored);
    /// a node is in the circuit when it has an edge in and an edge out (`input` needs only
    /// the edge out), as EAP-IG sets nodes after an edge-level selection.
    pub fn from_edge_mask(scores: EdgeScores, mask: &[bool]) -> Self {
        let shape = scores.shape;
        assert_eq!(mask.len(), shape.n_fwd() * shape.n_bwd(), "edge mask has the wrong size");
        let mut c = Circuit::empty(scores);
        let nb = shape.n_bwd();
        for (w, r) in shape.edges() {
            c.edges[w * nb + r] = mask[w * nb + r];
        }
        c.nodes_from_edges();
        c
    }

    pub fn shape(&self) -> GraphShape {
        self.scores.shape
    }

    pub fn scores(&self) -> &EdgeScores {
        &self.scores
    }

    /// Dense `(n_fwd, n_bwd)` row-major, true = in the circuit: the layout the faithfulness
    /// evaluation consumes.
    pub fn edge_mask(&self) -> Vec<bool> {
        self.edges.clone()
    }

    /// Borrowed form of [`Circuit::edge_mask`].
    pub fn edge_mask_ref(&self) -> &[bool] {
        &self.edges
    }

    /// Per node (`n_fwd + 1`, `logits` last), true = in the circuit.
    pub fn node_mask(&self) -> &[bool] {
        &self.nodes
    }

    pub fn edge_in_graph(&self, w: usize, r: usize) -> bool {
        self.edges[w * self.shape().n_bwd() + r]
    }

    /// Puts an edge in or out of the circuit. Panics if (w, r) is not an edge of the graph.
    pub fn set_edge(&mut self, w: usize, r: usize, in_graph: bool) {
        let shape = self.shape();
        assert!(shape.is_edge(shape.writer(w), shape.reader(r)), "({w}, {r}) is not an edge");
        self.edges[w * shape.n_bwd() + r] = in_graph;
    }

    pub fn node_in_graph(&self, node: usize) -> bool {
        self.nodes[node]
    }

    /// Puts a node in or out of the circuit; `logits` always stays in (EAP-IG semantics).
    pub fn set_node(&mut self, node: usize, in_graph: bool) {
        if node != self.shape().logits_node() {
            self.nodes[node] = in_graph;
        }
    }

    pub fn n_edges_in_graph(&self) -> usize {
        self.edges.iter().filter(|&&e| e).count()
    }

    /// Writer nodes (input, heads, MLPs) in the circuit; `logits`, always present, is not
    /// counted (as EAP-IG's `count_included_nodes`).
    pub fn n_nodes_in_graph(&self) -> usize {
        self.nodes[..self.shape().n_fwd()].iter().filter(|&&n| n).count()
    }

    /// In-circuit edges as (forward index, backward index, score), readers in backward order.
    pub fn edges_in_graph(&self) -> impl Iterator<Item = (usize, usize, f32)> + '_ {
        self.scores.edges().filter(move |&(w, r, _)| self.edge_in_graph(w, r))
    }

    /// Node scores (`n_fwd + 1`, NaN = not scored), if the circuit has any.
    pub fn node_scores(&self) -> Option<&[f32]> {
        self.node_scores.as_deref()
    }

    /// Sets or clears the node scores. Panics if the length is not `n_nodes()`.
    pub fn set_node_scores(&mut self, scores: Option<Vec<f32>>) {
        if let Some(s) = &scores {
            assert_eq!(s.len(), self.shape().n_nodes(), "node scores have the wrong length");
        }
        self.node_scores = scores;
    }

    pub fn d_model(&self) -> Option<usize> {
        self.d_model
    }

    pub fn set_d_model(&mut self, d_model: Option<usize>) {
        self.d_model = d_model;
    }

    pub fn with_d_model(mut self, d_model: usize) -> Self {
        self.d_model = Some(d_model);
        self
    }

    /// Per node: (has an in-circuit edge out, has an in-circuit edge into any of its readers).
    pub(crate) fn node_degrees(&self) -> (Vec<bool>, Vec<bool>) {
        let shape = self.shape();
        let nb = shape.n_bwd();
        let mut has_out = vec![false; shape.n_nodes()];
        let mut has_in = vec![false; shape.n_nodes()];
        for (w, row) in self.edges.chunks(nb).enumerate() {
            for (r, _) in row.iter().enumerate().filter(|(_, &e)| e) {
                has_out[w] = true;
                has_in[shape.node_of_reader(r)] = true;
            }
        }
        (has_out, has_in)
    }

    /// Nodes from edges (EAP-IG after an edge-level selection): in when the node has an edge
    /// out and an edge in (`input` needs no edge in); `logits` always in.
    pub(crate) fn nodes_from_edges(&mut self) {
        let (has_out, has_in) = self.node_degrees();
        let logits = self.shape().logits_node();
        for (i, n) in self.nodes.iter_mut().enumerate() {
            *n = i == logits || (has_out[i] && (has_in[i] || i == 0));
        }
    }

    pub(crate) fn edges_mut(&mut self) -> &mut [bool] {
        &mut self.edges
    }

    pub(crate) fn nodes_mut(&mut self) -> &mut [bool] {
        &mut self.nodes
    }
}
