//! Nodes of the graph and the parsing of node, reader and edge names.
//!
//! A node index is a writer's forward index (`input` = 0, heads, MLPs), and `logits` is
//! `n_fwd`, the one node that only reads; this is the EAP-IG numbering (its `forward_index` of
//! `logits` is `n_forward`), so per-node vectors have length `n_nodes() = n_fwd + 1`.

use super::{GraphShape, Qkv, Reader, Writer};

impl GraphShape {
    /// `4 layers × 8 heads`, with `, parallel residual` where it has one: for messages.
    pub fn describe(&self) -> String {
        let parallel = if self.parallel_residual { ", parallel residual" } else { "" };
        format!("{} layers × {} heads{parallel}", self.n_layers, self.n_heads)
    }

    /// The node index of `logits` (`n_fwd`).
    pub fn logits_node(&self) -> usize {
        self.n_fwd()
    }

    /// The node a reader (backward index) belongs to: `a3.h1<q>` → the node of `a3.h1`.
    pub fn node_of_reader(&self, reader: usize) -> usize {
        match self.reader(reader) {
            Reader::Head { layer, head, .. } => self.writer_index(Writer::Head { layer, head }),
            Reader::Mlp { layer } => self.writer_index(Writer::Mlp { layer }),
            Reader::Logits => self.logits_node(),
        }
    }

    /// The readers (backward indices) of a node: q, k, v for a head, one for an MLP or
    /// `logits`, none for `input`.
    pub fn readers_of_node(&self, node: usize) -> Vec<usize> {
        if node == self.logits_node() {
            return vec![self.reader_index(Reader::Logits)];
        }
        match self.writer(node) {
            Writer::Input => Vec::new(),
            Writer::Head { layer, head } => {
                Qkv::ALL.iter().map(|&qkv| self.reader_index(Reader::Head { layer, head, qkv })).collect()
            }
            Writer::Mlp { layer } => vec![self.reader_index(Reader::Mlp { layer })],
        }
    }

    /// `input`, `a{l}.h{h}`, `m{l}` or `logits`.
    pub fn node_name(&self, node: usize) -> String {
        if node == self.logits_node() {
            "logits".into()
        } else {
            self.writer(node).name()
        }
    }

    /// The node index of a name, or `None` if the name is not a node of this shape.
    pub fn parse_node(&self, name: &str) -> Option<usize> {
        match name {
            "logits" => Some(self.logits_node()),
            _ => parse_writer(self, name).map(|w| self.writer_index(w)),
        }
    }

    /// The backward index of a reader name (`a3.h1<q>`, `m2`, `logits`).
    pub fn parse_reader(&self, name: &str) -> Option<usize> {
        let r = if name == "logits" {
            Reader::Logits
        } else if let Some(base) = name.strip_suffix('>') {
            let (node, qkv) = base.rsplit_once('<')?;
            let qkv = match qkv {
                "q" => Qkv::Q,
                "k" => Qkv::K,
                "v" => Qkv::V,
                _ => return None,
            };
            match parse_writer(self, node)? {
                Writer::Head { layer, head } => Reader::Head { layer, head, qkv },
                _ => return None,
            }
        } else {
            match parse_writer(self, name)? {
                Writer::Mlp { layer } => Reader::Mlp { layer },
                _ => return None,
            }
        };
        Some(self.reader_index(r))
    }

    /// (forward index, backward index) of an edge name such as `a9.h9->a11.h10<q>`, or `None`
    /// if either end is not in this shape or the pair is not an edge (e.g. `m5->m2`).
    pub fn parse_edge(&self, name: &str) -> Option<(usize, usize)> {
        let (w, r) = name.split_once("->")?;
        let w = parse_writer(self, w)?;
        let r = self.parse_reader(r)?;
        self.is_edge(w, self.reader(r)).then(|| (self.writer_index(w), r))
    }

    /// The name of the edge (forward index, backward index).
    pub fn edge_name_of(&self, w: usize, r: usize) -> String {
        super::edge_name(self.writer(w), self.reader(r))
    }
}

/// A strictly parsed writer name: digits only, in range, no signs or leading `+`.
fn parse_writer(shape: &GraphShape, name: &str) -> Option<Writer> {
    fn num(s: &str) -> Option<usize> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
    }
    if name == "input" {
        return Some(Writer::Input);
    }
    if let Some(rest) = name.strip_prefix('m') {
        let layer = num(rest)?;
        return (layer < shape.n_layers).then_some(Writer::Mlp { layer });
    }
    let rest = name.strip_prefix('a')?;
    let (l, h) = rest.split_once(".h")?;
    let (layer, head) = (num(l)?, num(h)?);
    (layer < shape.n_layers && head < shape.n_heads).then_some(Writer::Head { layer, head })
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: GraphShape = GraphShape { n_layers: 3, n_heads: 4, parallel_residual: false };

    #[test]
    fn names_parse_back_to_their_indices() {
        for node in 0..G.n_nodes() {
            assert_eq!(G.parse_node(&G.node_name(node)), Some(node));
        }
        for r in 0..G.n_bwd() {
            assert_eq!(G.parse_reader(&G.reader(r).name()), Some(r));
            assert!(G.readers_of_node(G.node_of_reader(r)).contains(&r));
        }
        for (w, r) in G.edges() {
            assert_eq!(G.parse_edge(&G.edge_name_of(w, r)), Some((w, r)));
        }
    }

    #[test]
    fn bad_names_are_rejected() {
        for bad in ["a3.h0", "a0.h4", "m3", "a0h1", "a+1.h0", "a1.h", "mx", "", "Input", "a0.h1<x>"] {
            assert_eq!(G.parse_node(bad), None, "{bad}");
        }
        for bad in ["m2->m1", "a1.h0->a1.h2<q>", "a0.h0->m0<q>", "input->a0.h0", "logits->m1", "input-m0"] {
            assert_eq!(G.parse_edge(bad), None, "{bad}");
        }
        assert_eq!(G.parse_edge("a0.h0->m0"), Some((1, 3 * 4)));
    }
}
