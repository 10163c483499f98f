//! Path analysis of a circuit on petgraph: the circuit as a directed acyclic graph of nodes
//! (`input`, heads, MLPs, `logits`; an edge writer → the node its reader belongs to), its longest
//! input → logits path, and its edges per writer layer (ALGORITHMS.md §5, step 5: the structural
//! features of a per-sample circuit).

use super::{Circuit, Writer};
use petgraph::algo::toposort;
use petgraph::graph::{DiGraph, NodeIndex};

impl Circuit {
    /// The circuit's edges as a node-level DAG: node i of the result is node i of the graph
    /// (`input` = 0, …, `logits` = n_fwd), one petgraph edge per in-circuit edge (several readers
    /// of one node, a head's q, k and v, give parallel edges).
    pub fn node_dag(&self) -> DiGraph<usize, ()> {
        let shape = self.shape();
        let mut g = DiGraph::with_capacity(shape.n_nodes(), self.n_edges_in_graph());
        for n in 0..shape.n_nodes() {
            g.add_node(n);
        }
        for (w, r, _) in self.edges_in_graph() {
            g.add_edge(NodeIndex::new(w), NodeIndex::new(shape.node_of_reader(r)), ());
        }
        g
    }

    /// The number of edges on the longest path from `input` to `logits` through the circuit's
    /// edges (2 for input → a head → logits); `None` when no such path exists.
    pub fn longest_path(&self) -> Option<usize> {
        let g = self.node_dag();
        // every graph edge goes to a later node, so the DAG has a topological order
        let order = toposort(&g, None).expect("a circuit's edges go to later nodes only");
        // longest[n]: edges on the longest input → n path (None: n not reachable from input)
        let mut longest: Vec<Option<usize>> = vec![None; g.node_count()];
        longest[0] = Some(0);
        for n in order {
            let Some(here) = longest[n.index()] else { continue };
            for next in g.neighbors(n) {
                let slot = &mut longest[next.index()];
                *slot = Some(slot.map_or(here + 1, |s| s.max(here + 1)));
            }
        }
        longest[self.shape().logits_node()]
    }

    /// In-circuit edges counted by their writer's layer: entry 0 is `input`, entry l + 1 layer l.
    pub fn edges_per_layer(&self) -> Vec<usize> {
        let shape = self.shape();
        let mut out = vec![0; shape.n_layers + 1];
        for (w, _, _) in self.edges_in_graph() {
            match shape.writer(w) {
                Writer::Input => out[0] += 1,
                Writer::Head { layer, .. } | Writer::Mlp { layer } => out[layer + 1] += 1,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::graph::{Circuit, EdgeScores, GraphShape, Qkv, Reader, Writer};

    fn circuit(shape: GraphShape, edges: &[(Writer, Reader)]) -> Circuit {
        let mut mask = vec![false; shape.n_fwd() * shape.n_bwd()];
        for &(w, r) in edges {
            assert!(shape.is_edge(w, r));
            mask[shape.writer_index(w) * shape.n_bwd() + shape.reader_index(r)] = true;
        }
        let scores = EdgeScores::from_matrix(shape, vec![1.0; shape.n_fwd() * shape.n_bwd()]);
        Circuit::from_edge_mask(scores, &mask)
    }

    #[test]
    fn the_longest_path_counts_edges_and_needs_both_ends() {
        let shape = GraphShape { n_layers: 3, n_heads: 2, parallel_residual: false };
        let h = |layer, head| Writer::Head { layer, head };
        let q = |layer, head| Reader::Head { layer, head, qkv: Qkv::Q };
        // input → a0.h0 → m0 → a2.h1 → logits (4 edges), and a shortcut input → logits
        let c = circuit(
            shape,
            &[
                (Writer::Input, q(0, 0)),
                (h(0, 0), Reader::Mlp { layer: 0 }),
                (Writer::Mlp { layer: 0 }, q(2, 1)),
                (h(2, 1), Reader::Logits),
                (Writer::Input, Reader::Logits),
                // a dead end: m1 reads nothing, so input → … → m1 does not exist
                (Writer::Mlp { layer: 1 }, Reader::Logits),
            ],
        );
        assert_eq!(c.longest_path(), Some(4));
        assert_eq!(c.edges_per_layer(), vec![2, 2, 1, 1]);
        let cut = circuit(shape, &[(Writer::Input, q(0, 0)), (h(1, 0), Reader::Logits)]);
        assert_eq!(cut.longest_path(), None);
    }
}
