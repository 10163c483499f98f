//! Circuits as JSON in the layout of the EAP-IG code (`Graph.to_json` / `Graph.from_json`),
//! which MIB uses for submitted circuits:
//!
//! ```text
//! {"cfg": {"n_layers": 12, "n_heads": 12, "parallel_attn_mlp": false, "d_model": 768},
//!  "nodes": {"input": {"in_graph": true}, "a0.h0": {"in_graph": false}, ..., "logits": {"in_graph": true}},
//!  "edges": {"input->a0.h0<q>": {"score": 0.013, "in_graph": true}, ..., "m11->logits": {...}}}
//! ```
//!
//! Writing: every node and every real edge, in EAP-IG's construction order. A node's `score`
//! is written only when the circuit has node scores (a number, or `null` where a node is not
//! scored), because EAP-IG's `from_json` takes a `score` key to mean node scores exist. `d_model`
//! is written when known (EAP-IG's reader needs it). NaN edge scores are written as `null`.
//!
//! Reading: `cfg.n_layers` and `cfg.n_heads` are required, `parallel_attn_mlp` (default false)
//! and `d_model` optional, other keys ignored. Nodes and edges left out are not in the circuit
//! (score 0). A name that is not a node or edge of the graph, or a value of the wrong type, is
//! an error naming the file and the field or edge.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use super::{Circuit, EdgeScores, GraphShape, Qkv, Reader, Writer};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;

/// An f32 as JSON: widened to f64 and written in its shortest round-trip form (what Python
/// writes for `tensor.item()`), so reading it back as f64 and narrowing gives the same f32;
/// `null` for NaN and infinities.
fn num(x: f32) -> String {
    if x.is_finite() {
        serde_json::to_string(&(x as f64)).expect("finite floats serialise")
    } else {
        "null".into()
    }
}

impl Circuit {
    /// The circuit as JSON text in the EAP-IG layout (Python `json.dump` spacing).
    pub fn to_json_string(&self) -> String {
        let shape = self.shape();
        let mut out = String::with_capacity(64 * shape.n_fwd() * (shape.n_layers + 1));
        let _ = write!(
            out,
            "{{\"cfg\": {{\"n_layers\": {}, \"n_heads\": {}, \"parallel_attn_mlp\": {}",
            shape.n_layers, shape.n_heads, shape.parallel_residual
        );
        if let Some(d) = self.d_model() {
            let _ = write!(out, ", \"d_model\": {d}");
        }
        out.push_str("}, \"nodes\": {");
        for node in 0..shape.n_nodes() {
            if node > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, "\"{}\": {{\"in_graph\": {}", shape.node_name(node), self.node_in_graph(node));
            if let Some(s) = self.node_scores() {
                let _ = write!(out, ", \"score\": {}", num(s[node]));
            }
            out.push('}');
        }
        out.push_str("}, \"edges\": {");
        for (i, (w, r)) in eap_ig_edge_order(shape).into_iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(
                out,
                "\"{}\": {{\"score\": {}, \"in_graph\": {}}}",
                shape.edge_name_of(w, r),
                num(self.scores().get(w, r)),
                self.edge_in_graph(w, r)
            );
        }
        out.push_str("}}");
        out
    }

    /// Writes the JSON atomically (temporary file renamed into place).
    pub fn write_json(&self, path: &Path) -> Result<()> {
        write_atomic(path, self.to_json_string().as_bytes())
    }

    /// Reads a circuit written by [`Circuit::write_json`] or by EAP-IG's `to_json`.
    pub fn read_json(path: &Path) -> Result<Circuit> {
        Ok(Circuit::read_json_listing(path)?.0)
    }

    /// [`Circuit::read_json`], and how many of the graph's edges the file lists. One it leaves
    /// out scores 0: right for a circuit that lists only its own edges, a sign of a cut-off
    /// file when the scores are what is read.
    pub fn read_json_listing(path: &Path) -> Result<(Circuit, usize)> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Circuit::from_json_str_listing(&text, path)
    }

    /// Parses JSON text; `path` only names the source in errors.
    pub fn from_json_str(text: &str, path: &Path) -> Result<Circuit> {
        Ok(Circuit::from_json_str_listing(text, path)?.0)
    }

    fn from_json_str_listing(text: &str, path: &Path) -> Result<(Circuit, usize)> {
        let bad = |msg: String| Error::format(path, msg);
        let root: Value = serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let root = root.as_object().ok_or_else(|| bad("expected a JSON object at the top level".into()))?;
        let section = |key: &str| {
            root.get(key)
                .and_then(Value::as_object)
                .ok_or_else(|| bad(format!("`{key}`: missing or not an object (expected keys cfg, nodes, edges)")))
        };
        let cfg = section("cfg")?;
        let count = |key: &str| -> Result<usize> {
            cfg.get(key)
                .and_then(Value::as_u64)
                .map(|v| v as usize)
                .ok_or_else(|| bad(format!("`cfg.{key}`: missing or not a non-negative integer")))
        };
        let (n_layers, n_heads) = (count("n_layers")?, count("n_heads")?);
        if n_layers == 0 || n_heads == 0 {
            return Err(bad(format!("`cfg`: n_layers and n_heads must be at least 1 (got {n_layers} and {n_heads})")));
        }
        // Scores are held densely (writers × readers); refuse a cfg whose matrix cannot be held
        // rather than fail allocating it. 2^30 entries covers 126 layers × 128 heads.
        let (layers, heads) = (n_layers as u128, n_heads as u128);
        let entries = (1 + layers * (heads + 1)) * (layers * (3 * heads + 1) + 1);
        if entries > 1 << 30 {
            return Err(bad(format!(
                "`cfg`: a {n_layers}-layer, {n_heads}-head graph is too large to hold (its writers × readers score \
                 matrix exceeds 2^30 entries)"
            )));
        }
        let parallel_residual = match cfg.get("parallel_attn_mlp") {
            None | Some(Value::Null) => false,
            Some(v) => v.as_bool().ok_or_else(|| bad("`cfg.parallel_attn_mlp`: expected true or false".into()))?,
        };
        let d_model = match cfg.get("d_model") {
            None | Some(Value::Null) => None,
            Some(_) => Some(count("d_model")?),
        };
        let shape = GraphShape { n_layers, n_heads, parallel_residual };
        let dims = format!("a {n_layers}-layer, {n_heads}-head graph");

        let flag = |v: &Value, field: String| -> Result<bool> {
            v.get("in_graph")
                .and_then(Value::as_bool)
                .ok_or_else(|| bad(format!("{field}: `in_graph` must be true or false")))
        };
        // A score: a number, or null for "none" (NaN).
        let score = |v: Option<&Value>, field: String| -> Result<Option<f32>> {
            match v {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => Ok(Some(n.as_f64().unwrap_or(f64::NAN) as f32)),
                Some(_) => Err(bad(format!("{field}: `score` must be a number or null"))),
            }
        };

        let mut scores = EdgeScores::zeros(shape);
        let mut edge_flags = vec![false; shape.n_fwd() * shape.n_bwd()];
        for (name, v) in section("edges")? {
            let (w, r) =
                shape.parse_edge(name).ok_or_else(|| bad(format!("`edges`: `{name}` is not an edge of {dims}")))?;
            let field = format!("edge `{name}`");
            if v.get("score").is_none() {
                return Err(bad(format!("{field}: missing `score`")));
            }
            scores.set(w, r, score(v.get("score"), field.clone())?.unwrap_or(f32::NAN));
            edge_flags[w * shape.n_bwd() + r] = flag(v, field)?;
        }

        let mut c = Circuit::empty(scores);
        c.edges_mut().copy_from_slice(&edge_flags);
        let mut node_scores = vec![f32::NAN; shape.n_nodes()];
        let mut any_node_score = false;
        for (name, v) in section("nodes")? {
            let node =
                shape.parse_node(name).ok_or_else(|| bad(format!("`nodes`: `{name}` is not a node of {dims}")))?;
            let field = format!("node `{name}`");
            c.set_node(node, flag(v, field.clone())?);
            if let Some(s) = score(v.get("score"), field)? {
                node_scores[node] = s;
                any_node_score = true;
            }
        }
        if any_node_score {
            c.set_node_scores(Some(node_scores));
        }
        c.set_d_model(d_model);
        Ok((c, section("edges")?.len()))
    }
}

/// Real edges in the order EAP-IG's `Graph.from_model` adds them: per layer, each earlier
/// writer into every head's q, k, v (writer-major), then the MLP's inputs, and finally the
/// edges into `logits`. (Parallel-residual layers interleave each writer's MLP edge.)
fn eap_ig_edge_order(shape: GraphShape) -> Vec<(usize, usize)> {
    let mut order = Vec::new();
    let mut stream: Vec<Writer> = vec![Writer::Input];
    for layer in 0..shape.n_layers {
        let heads: Vec<Writer> = (0..shape.n_heads).map(|head| Writer::Head { layer, head }).collect();
        let mlp_r = shape.reader_index(Reader::Mlp { layer });
        for &w in &stream {
            for head in 0..shape.n_heads {
                for qkv in Qkv::ALL {
                    order.push((shape.writer_index(w), shape.reader_index(Reader::Head { layer, head, qkv })));
                }
            }
            if shape.parallel_residual {
                order.push((shape.writer_index(w), mlp_r));
            }
        }
        stream.extend(heads);
        if !shape.parallel_residual {
            order.extend(stream.iter().map(|&w| (shape.writer_index(w), mlp_r)));
        }
        stream.push(Writer::Mlp { layer });
    }
    let logits = shape.reader_index(Reader::Logits);
    order.extend(stream.iter().map(|&w| (shape.writer_index(w), logits)));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_order_lists_every_edge_once() {
        for parallel_residual in [false, true] {
            let shape = GraphShape { n_layers: 3, n_heads: 2, parallel_residual };
            let mut order = eap_ig_edge_order(shape);
            assert_eq!(order.len(), shape.n_edges());
            order.sort_unstable();
            let mut all: Vec<_> = shape.edges().collect();
            all.sort_unstable();
            assert_eq!(order, all);
        }
    }
}
