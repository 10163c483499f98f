//! Scores on the edges of the graph: a dense writer × reader matrix in the EAP-IG layout
//! (`scores[forward_index, backward_index]`); entries that are not edges stay 0.

use super::{GraphShape, Reader, Writer};

#[derive(Clone, Debug, PartialEq)]
pub struct EdgeScores {
    pub shape: GraphShape,
    /// Row-major (n_fwd, n_bwd).
    pub scores: Vec<f32>,
}

impl EdgeScores {
    pub fn zeros(shape: GraphShape) -> Self {
        EdgeScores { shape, scores: vec![0.0; shape.n_fwd() * shape.n_bwd()] }
    }

    /// From a row-major (n_fwd, n_bwd) matrix; entries that are not edges are set to 0.
    pub fn from_matrix(shape: GraphShape, mut scores: Vec<f32>) -> Self {
        assert_eq!(scores.len(), shape.n_fwd() * shape.n_bwd(), "score matrix has the wrong size");
        let nb = shape.n_bwd();
        for (i, s) in scores.iter_mut().enumerate() {
            if !shape.is_edge(shape.writer(i / nb), shape.reader(i % nb)) {
                *s = 0.0;
            }
        }
        EdgeScores { shape, scores }
    }

    pub fn get(&self, w: usize, r: usize) -> f32 {
        self.scores[w * self.shape.n_bwd() + r]
    }

    pub fn set(&mut self, w: usize, r: usize, v: f32) {
        let nb = self.shape.n_bwd();
        self.scores[w * nb + r] = v;
    }

    pub fn score(&self, w: Writer, r: Reader) -> f32 {
        self.get(self.shape.writer_index(w), self.shape.reader_index(r))
    }

    /// Every edge with its score, readers in backward order.
    pub fn edges(&self) -> impl Iterator<Item = (usize, usize, f32)> + '_ {
        self.shape.edges().map(move |(w, r)| (w, r, self.get(w, r)))
    }
}
