//! Layer 3: the edge-level computational graph of ALGORITHMS.md §1, in the node order and
//! naming of the public EAP-IG / MIB circuit code so graphs interoperate.
//!
//! Writers (upstream nodes), forward index: `input` = 0, `a{l}.h{h}` = 1 + l(H+1) + h,
//! `m{l}` = 1 + l(H+1) + H; n_fwd = 1 + L(H+1).
//! Readers (downstream inputs), backward index: `a{l}.h{h}<q|k|v>` = l(3H+1) + {0,1,2}·H + h,
//! `m{l}` = l(3H+1) + 3H, `logits` = L(3H+1); n_bwd = L(3H+1) + 1.
//! Edges: every writer into every later reader; `m{l}` also reads layer l's heads unless the
//! model has a parallel residual (attention and MLP read the same stream).

pub mod circuit;
pub mod curve;
pub mod dot;
pub mod json;
pub mod names;
pub mod paths;
pub mod scores;
pub mod select;

pub use circuit::Circuit;
pub use curve::{curve_areas, CurveAreas};
pub use scores::EdgeScores;

use crate::model::ModelConfig;

/// A writer: something that adds into the residual stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Writer {
    Input,
    Head { layer: usize, head: usize },
    Mlp { layer: usize },
}

/// Which of a head's three inputs a reader is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Qkv {
    Q,
    K,
    V,
}

impl Qkv {
    pub const ALL: [Qkv; 3] = [Qkv::Q, Qkv::K, Qkv::V];
    pub fn letter(self) -> char {
        match self {
            Qkv::Q => 'q',
            Qkv::K => 'k',
            Qkv::V => 'v',
        }
    }
}

/// A reader: an input that reads the residual stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reader {
    Head { layer: usize, head: usize, qkv: Qkv },
    Mlp { layer: usize },
    Logits,
}

/// The shape of the graph: everything it depends on in a model configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GraphShape {
    pub n_layers: usize,
    pub n_heads: usize,
    pub parallel_residual: bool,
}

impl GraphShape {
    pub fn of(cfg: &ModelConfig) -> Self {
        GraphShape { n_layers: cfg.n_layers, n_heads: cfg.n_heads, parallel_residual: cfg.parallel_residual }
    }

    pub fn n_fwd(&self) -> usize {
        1 + self.n_layers * (self.n_heads + 1)
    }

    pub fn n_bwd(&self) -> usize {
        self.n_layers * (3 * self.n_heads + 1) + 1
    }

    /// Nodes as the circuit code counts them: input, every head, every MLP, logits.
    pub fn n_nodes(&self) -> usize {
        self.n_fwd() + 1
    }

    pub fn writer_index(&self, w: Writer) -> usize {
        let h1 = self.n_heads + 1;
        match w {
            Writer::Input => 0,
            Writer::Head { layer, head } => 1 + layer * h1 + head,
            Writer::Mlp { layer } => 1 + layer * h1 + self.n_heads,
        }
    }

    pub fn writer(&self, index: usize) -> Writer {
        if index == 0 {
            return Writer::Input;
        }
        let (layer, r) = ((index - 1) / (self.n_heads + 1), (index - 1) % (self.n_heads + 1));
        if r == self.n_heads {
            Writer::Mlp { layer }
        } else {
            Writer::Head { layer, head: r }
        }
    }

    pub fn reader_index(&self, r: Reader) -> usize {
        let per_layer = 3 * self.n_heads + 1;
        match r {
            Reader::Head { layer, head, qkv } => {
                let k = match qkv {
                    Qkv::Q => 0,
                    Qkv::K => 1,
                    Qkv::V => 2,
                };
                layer * per_layer + k * self.n_heads + head
            }
            Reader::Mlp { layer } => layer * per_layer + 3 * self.n_heads,
            Reader::Logits => self.n_layers * per_layer,
        }
    }

    pub fn reader(&self, index: usize) -> Reader {
        let per_layer = 3 * self.n_heads + 1;
        if index == self.n_layers * per_layer {
            return Reader::Logits;
        }
        let (layer, r) = (index / per_layer, index % per_layer);
        if r == 3 * self.n_heads {
            Reader::Mlp { layer }
        } else {
            Reader::Head { layer, head: r % self.n_heads, qkv: Qkv::ALL[r / self.n_heads] }
        }
    }

    /// Whether writer → reader is an edge of the graph.
    pub fn is_edge(&self, w: Writer, r: Reader) -> bool {
        let wl = match w {
            Writer::Input => return true,
            Writer::Head { layer, .. } | Writer::Mlp { layer } => layer,
        };
        match r {
            Reader::Logits => true,
            Reader::Head { layer, .. } => wl < layer,
            Reader::Mlp { layer } => {
                wl < layer || (wl == layer && matches!(w, Writer::Head { .. }) && !self.parallel_residual)
            }
        }
    }

    /// Every edge as (writer index, reader index), readers in backward order.
    pub fn edges(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.n_bwd()).flat_map(move |ri| {
            let r = self.reader(ri);
            (0..self.n_fwd()).filter(move |&wi| self.is_edge(self.writer(wi), r)).map(move |wi| (wi, ri))
        })
    }

    pub fn n_edges(&self) -> usize {
        self.edges().count()
    }
}

impl Writer {
    pub fn name(&self) -> String {
        match self {
            Writer::Input => "input".into(),
            Writer::Head { layer, head } => format!("a{layer}.h{head}"),
            Writer::Mlp { layer } => format!("m{layer}"),
        }
    }
}

impl Reader {
    /// The node this reader belongs to (`a3.h1` for `a3.h1<q>`).
    pub fn node_name(&self) -> String {
        match self {
            Reader::Head { layer, head, .. } => format!("a{layer}.h{head}"),
            Reader::Mlp { layer } => format!("m{layer}"),
            Reader::Logits => "logits".into(),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Reader::Head { qkv, .. } => format!("{}<{}>", self.node_name(), qkv.letter()),
            _ => self.node_name(),
        }
    }
}

/// An edge's name in the EAP-IG layout, e.g. `a9.h9->a11.h10<q>`, `m3->logits`.
pub fn edge_name(w: Writer, r: Reader) -> String {
    format!("{}->{}", w.name(), r.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GPT2_SMALL: GraphShape = GraphShape { n_layers: 12, n_heads: 12, parallel_residual: false };

    #[test]
    fn gpt2_small_has_158_nodes_and_32491_edges() {
        assert_eq!(GPT2_SMALL.n_nodes(), 158);
        assert_eq!(GPT2_SMALL.n_edges(), 32_491);
        // from GPT-2 small's own config.json (Hugging Face `gpt2`), no weights
        let config = serde_json::json!({
            "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "activation_function": "gelu_new",
            "n_ctx": 1024, "n_embd": 768, "n_head": 12, "n_layer": 12, "n_positions": 1024,
            "layer_norm_epsilon": 1e-05, "vocab_size": 50257, "bos_token_id": 50256, "eos_token_id": 50256,
        });
        let cfg = crate::model::ModelConfig::from_hf_value(&config, std::path::Path::new("gpt2/config.json")).unwrap();
        let shape = GraphShape::of(&cfg);
        assert_eq!(shape, GPT2_SMALL);
        assert_eq!((shape.n_nodes(), shape.n_edges()), (158, 32_491));
    }

    #[test]
    fn indices_round_trip_and_follow_the_published_layout() {
        let g = GraphShape { n_layers: 3, n_heads: 4, parallel_residual: false };
        for i in 0..g.n_fwd() {
            assert_eq!(g.writer_index(g.writer(i)), i);
        }
        for i in 0..g.n_bwd() {
            assert_eq!(g.reader_index(g.reader(i)), i);
        }
        assert_eq!(g.writer_index(Writer::Head { layer: 1, head: 2 }), 1 + 5 + 2);
        assert_eq!(g.writer_index(Writer::Mlp { layer: 2 }), 1 + 10 + 4);
        assert_eq!(g.reader_index(Reader::Head { layer: 1, head: 3, qkv: Qkv::K }), 13 + 4 + 3);
        assert_eq!(g.reader_index(Reader::Logits), 39);
        assert_eq!(
            edge_name(Writer::Head { layer: 9, head: 9 }, Reader::Head { layer: 11, head: 10, qkv: Qkv::Q }),
            "a9.h9->a11.h10<q>"
        );
        assert_eq!(edge_name(Writer::Mlp { layer: 3 }, Reader::Logits), "m3->logits");
        assert_eq!(edge_name(Writer::Input, Reader::Head { layer: 0, head: 1, qkv: Qkv::V }), "input->a0.h1<v>");
    }

    #[test]
    fn parallel_residual_mlps_do_not_read_their_own_layers_heads() {
        let seq = GraphShape { n_layers: 2, n_heads: 3, parallel_residual: false };
        let par = GraphShape { parallel_residual: true, ..seq };
        let own = (Writer::Head { layer: 1, head: 0 }, Reader::Mlp { layer: 1 });
        assert!(seq.is_edge(own.0, own.1));
        assert!(!par.is_edge(own.0, own.1));
        assert_eq!(seq.n_edges() - par.n_edges(), 2 * 3);
    }
}
