//! Circuits: selection on hand-made graphs with known answers (greedy order, top-n, threshold,
//! the prune fixed point, ties), the dense edge mask, EAP-IG/MIB JSON (round trip, layout,
//! error messages) and DOT export.

mod common;

use circuitscope::graph::{Circuit, EdgeScores, GraphShape};
use common::TempDir;
use std::path::Path;

/// 2 layers × 1 head, sequential residual: writers input=0, a0.h0=1, m0=2, a1.h0=3, m1=4;
/// readers a0.h0<q,k,v>=0..3, m0=3, a1.h0<q,k,v>=4..7, m1=7, logits=8. 23 edges.
const TINY: GraphShape = GraphShape { n_layers: 2, n_heads: 1, parallel_residual: false };

fn edge(shape: GraphShape, name: &str) -> (usize, usize) {
    shape.parse_edge(name).unwrap_or_else(|| panic!("{name} is not an edge"))
}

/// Scores with a known greedy order (see `greedy_takes_the_best_edge_into_the_circuit`);
/// unlisted edges score 0.01.
fn tiny_scores() -> EdgeScores {
    let mut s = EdgeScores::zeros(TINY);
    for (w, r) in TINY.edges() {
        s.set(w, r, 0.01);
    }
    for (name, v) in [
        ("m1->logits", 5.0),
        ("a1.h0->logits", -0.5),
        ("input->logits", 0.1),
        ("a0.h0->logits", 0.2),
        ("m0->logits", 0.05),
        ("a1.h0->m1", 4.0),
        ("m0->m1", 1.0),
        ("input->m1", 0.3),
        ("a0.h0->m1", 0.0),
        ("a0.h0->a1.h0<v>", -3.0),
        ("m0->a1.h0<q>", 0.4),
        ("input->a1.h0<k>", 2.0),
        ("input->a0.h0<q>", 0.6),
        ("input->m0", 0.7),
        ("a0.h0->m0", 0.02),
    ] {
        let (w, r) = edge(TINY, name);
        s.set(w, r, v);
    }
    s
}

fn edge_names(c: &Circuit) -> Vec<String> {
    let shape = c.shape();
    let mut v: Vec<String> = c.edges_in_graph().map(|(w, r, _)| shape.edge_name_of(w, r)).collect();
    v.sort();
    v
}

fn node_names(c: &Circuit) -> Vec<String> {
    let shape = c.shape();
    (0..shape.n_nodes()).filter(|&n| c.node_in_graph(n)).map(|n| shape.node_name(n)).collect()
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[test]
fn tiny_graph_has_the_expected_edges() {
    assert_eq!(TINY.n_edges(), 23);
    assert_eq!(TINY.n_nodes(), 6);
}

#[test]
fn greedy_takes_the_best_edge_into_the_circuit() {
    // Expected order: m1->logits (5), a1.h0->m1 (4; m1 is in), a0.h0->a1.h0<v> (3; a1.h0's q/k/v
    // inputs became candidates), input->a1.h0<k> (2), m0->m1 (1), input->m0 (0.7; m0 joined at
    // step 5), input->a0.h0<q> (0.6), a1.h0->logits (0.5). m0->a1.h0<q> (0.4) is a candidate
    // from step 5 on but never beats these.
    let order = [
        "m1->logits",
        "a1.h0->m1",
        "a0.h0->a1.h0<v>",
        "input->a1.h0<k>",
        "m0->m1",
        "input->m0",
        "input->a0.h0<q>",
        "a1.h0->logits",
    ];
    for n in 1..=order.len() {
        let c = Circuit::greedy(&tiny_scores(), n).unwrap();
        assert_eq!(edge_names(&c), sorted(&order[..n]), "greedy({n})");
    }
    // Nodes are the writers added (plus logits), before pruning.
    let c = Circuit::greedy(&tiny_scores(), 4).unwrap();
    assert_eq!(node_names(&c), ["input", "a0.h0", "a1.h0", "m1", "logits"]);
    assert_eq!(c.n_nodes_in_graph(), 4);
    // a0.h0 joined without an edge in: pruning drops it and its edge.
    let p = c.pruned();
    assert_eq!(edge_names(&p), sorted(&["m1->logits", "a1.h0->m1", "input->a1.h0<k>"]));
    assert_eq!(node_names(&p), ["input", "a1.h0", "m1", "logits"]);
}

#[test]
fn top_n_then_prune_reaches_the_fixed_point() {
    // The top 3 form a chain a0.h0 → a1.h0<v>, a1.h0 → m1, m1 → logits whose bottom (a0.h0)
    // has no edge in: pruning removes the whole chain, one link per round.
    let c = Circuit::top_n(&tiny_scores(), 3).unwrap();
    assert_eq!(edge_names(&c), sorted(&["m1->logits", "a1.h0->m1", "a0.h0->a1.h0<v>"]));
    assert_eq!(node_names(&c), ["a1.h0", "m1", "logits"]);
    let p = c.pruned();
    assert_eq!(p.n_edges_in_graph(), 0);
    assert_eq!(node_names(&p), ["logits"]);
    // With input->a1.h0<k> (4th) the chain is anchored and only a0.h0's edge goes.
    let p = Circuit::top_n(&tiny_scores(), 4).unwrap().pruned();
    assert_eq!(edge_names(&p), sorted(&["m1->logits", "a1.h0->m1", "input->a1.h0<k>"]));
    assert!(Circuit::top_n(&tiny_scores(), 24).is_err());
    assert_eq!(Circuit::top_n(&tiny_scores(), 23).unwrap().n_edges_in_graph(), 23);
}

#[test]
fn threshold_keeps_scores_at_or_above_tau() {
    let c = Circuit::threshold(&tiny_scores(), 0.7);
    let expect = ["m1->logits", "a1.h0->m1", "a0.h0->a1.h0<v>", "input->a1.h0<k>", "m0->m1", "input->m0"];
    assert_eq!(edge_names(&c), sorted(&expect));
    let p = c.pruned();
    assert_eq!(edge_names(&p), sorted(&expect[..]).into_iter().filter(|e| e != "a0.h0->a1.h0<v>").collect::<Vec<_>>());
    assert_eq!(node_names(&p), ["input", "m0", "a1.h0", "m1", "logits"]);
    // Negative scores count by magnitude.
    assert_eq!(Circuit::threshold(&tiny_scores(), 0.5).n_edges_in_graph(), 8);
    assert_eq!(Circuit::threshold(&tiny_scores(), 100.0).n_edges_in_graph(), 0);
}

#[test]
fn ties_go_to_the_lower_dense_index() {
    let zero = EdgeScores::zeros(TINY);
    // Lowest dense indices w * n_bwd + r: input (w = 0) into readers 0, 1, 2 = a0.h0<q,k,v>.
    let c = Circuit::top_n(&zero, 3).unwrap();
    assert_eq!(edge_names(&c), sorted(&["input->a0.h0<q>", "input->a0.h0<k>", "input->a0.h0<v>"]));
    // Greedy starts from logits: input->logits is the lowest-index edge into logits; then
    // nothing new is reachable from input, so the next lowest edges into logits follow.
    let c = Circuit::greedy(&zero, 2).unwrap();
    assert_eq!(edge_names(&c), sorted(&["input->logits", "a0.h0->logits"]));
    // Deterministic: the same call twice gives the same circuit.
    assert_eq!(Circuit::greedy(&zero, 7).unwrap(), Circuit::greedy(&zero, 7).unwrap());
}

#[test]
fn nan_scores_rank_last() {
    let mut s = tiny_scores();
    let (w, r) = edge(TINY, "m1->logits");
    s.set(w, r, f32::NAN);
    let c = Circuit::top_n(&s, 22).unwrap();
    assert!(!c.edge_in_graph(w, r));
    assert!(!Circuit::threshold(&s, 0.0).edge_in_graph(w, r));
}

#[test]
fn prune_counts_any_qkv_input_as_a_heads_edge_in() {
    // a1.h0 is fed only through its k input and feeds logits: it stays.
    let mut c = Circuit::empty(tiny_scores());
    for name in ["input->a1.h0<k>", "a1.h0->logits"] {
        let (w, r) = edge(TINY, name);
        c.set_edge(w, r, true);
    }
    c.set_node(0, true);
    c.set_node(TINY.parse_node("a1.h0").unwrap(), true);
    let p = c.clone().pruned();
    assert_eq!(p, c);
    // Parallel residual: the same holds, and an MLP cannot read its own layer's heads.
    let par = GraphShape { parallel_residual: true, ..TINY };
    assert!(par.parse_edge("a0.h0->m0").is_none());
    let full = Circuit::full(EdgeScores::zeros(par));
    assert_eq!(full.clone().pruned(), full);
}

#[test]
fn edge_mask_is_dense_forward_by_backward() {
    let c = Circuit::greedy(&tiny_scores(), 5).unwrap();
    let mask = c.edge_mask();
    assert_eq!(mask.len(), TINY.n_fwd() * TINY.n_bwd());
    let (w, r) = edge(TINY, "a0.h0->a1.h0<v>");
    assert!(mask[w * TINY.n_bwd() + r]);
    assert_eq!(mask.iter().filter(|&&b| b).count(), 5);
    assert_eq!(Circuit::from_edge_mask(tiny_scores(), &mask).edge_mask(), mask);
    // Non-edges in a mask are ignored.
    let all = vec![true; mask.len()];
    assert_eq!(Circuit::from_edge_mask(tiny_scores(), &all).n_edges_in_graph(), 23);
}

/// Deterministic pseudo-random scores in [-1, 1) (xorshift).
fn random_scores(shape: GraphShape, seed: u64) -> EdgeScores {
    let mut x = seed | 1;
    let mut s = EdgeScores::zeros(shape);
    for (w, r) in shape.edges() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(w, r, (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0);
    }
    s
}

#[test]
fn json_round_trips() {
    let dir = TempDir::new();
    let shape = GraphShape { n_layers: 3, n_heads: 4, parallel_residual: false };
    let mut c = Circuit::greedy(&random_scores(shape, 7), 25).unwrap().pruned().with_d_model(64);
    c.set_node_scores(Some((0..shape.n_nodes()).map(|i| i as f32 * 0.25 - 1.0).collect()));
    let path = dir.join("circuit.json");
    c.write_json(&path).unwrap();
    let back = Circuit::read_json(&path).unwrap();
    assert_eq!(back, c);
    assert_eq!(back.d_model(), Some(64));

    // Parallel residual, no node scores, no d_model.
    let par = GraphShape { parallel_residual: true, ..shape };
    let c = Circuit::top_n(&random_scores(par, 3), 40).unwrap().pruned();
    c.write_json(&path).unwrap();
    let back = Circuit::read_json(&path).unwrap();
    assert_eq!(back, c);
    assert_eq!(back.node_scores(), None);
    assert_eq!(dir.entries(), ["circuit.json"], "no temporary file left behind");
}

#[test]
fn json_follows_the_eap_ig_layout() {
    let shape = GraphShape { n_layers: 2, n_heads: 2, parallel_residual: false };
    let c = Circuit::greedy(&random_scores(shape, 11), 6).unwrap().with_d_model(32);
    let text = c.to_json_string();
    assert!(text.starts_with(
        "{\"cfg\": {\"n_layers\": 2, \"n_heads\": 2, \"parallel_attn_mlp\": false, \"d_model\": 32}, \"nodes\": {\"input\": {\"in_graph\": "
    ));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let edges = v["edges"].as_object().unwrap();
    assert_eq!(edges.len(), shape.n_edges());
    assert!(edges["input->a0.h1<v>"]["score"].is_number());
    assert!(edges["a0.h1->a1.h0<q>"]["in_graph"].is_boolean());
    assert!(edges.contains_key("m1->logits"));
    let nodes = v["nodes"].as_object().unwrap();
    assert_eq!(nodes.len(), shape.n_nodes());
    assert_eq!(nodes["logits"]["in_graph"], true);
    // No node scores → no `score` key (EAP-IG's from_json reads a `score` key as node scores).
    assert!(nodes["a0.h0"].get("score").is_none());
}

#[test]
fn json_written_by_eap_ig_style_code_reads() {
    // A hand-written file in the Python layout, listing only some nodes and edges, with an
    // unknown cfg key and a NaN node score written as null.
    let text = r#"{"cfg": {"n_layers": 2, "n_heads": 1, "parallel_attn_mlp": false, "d_model": 8, "extra": [1]},
        "nodes": {"input": {"in_graph": true, "score": 0.5}, "a1.h0": {"in_graph": true, "score": null},
                  "logits": {"in_graph": true}},
        "edges": {"input->a1.h0<k>": {"score": -2.5, "in_graph": true},
                  "a1.h0->logits": {"score": 1e-3, "in_graph": true},
                  "m0->m1": {"score": 0.25, "in_graph": false}}}"#;
    let c = Circuit::from_json_str(text, Path::new("x.json")).unwrap();
    assert_eq!(c.shape(), TINY);
    assert_eq!(edge_names(&c), sorted(&["input->a1.h0<k>", "a1.h0->logits"]));
    let (w, r) = edge(TINY, "m0->m1");
    assert_eq!(c.scores().get(w, r), 0.25);
    let ns = c.node_scores().unwrap();
    assert_eq!(ns[0], 0.5);
    assert!(ns[TINY.parse_node("a1.h0").unwrap()].is_nan());
    assert_eq!(node_names(&c), ["input", "a1.h0", "logits"]);
}

#[test]
fn bad_json_gives_one_clear_error_naming_file_and_field() {
    let dir = TempDir::new();
    let path = dir.join("bad.json");
    let cases: [(&str, &[&str]); 12] = [
        ("{\"cfg\": {", &["not valid JSON"]),
        ("[1, 2]", &["top level"]),
        ("{\"nodes\": {}, \"edges\": {}}", &["`cfg`"]),
        ("{\"cfg\": {\"n_layers\": 2}, \"nodes\": {}, \"edges\": {}}", &["cfg.n_heads"]),
        (
            "{\"cfg\": {\"n_layers\": 2, \"n_heads\": 1}, \"nodes\": {}, \"edges\": {\"a0.h0->a9.h0<q>\": {\"score\": 1, \"in_graph\": true}}}",
            &["a0.h0->a9.h0<q>", "not an edge of a 2-layer, 1-head graph"],
        ),
        (
            "{\"cfg\": {\"n_layers\": 2, \"n_heads\": 1}, \"nodes\": {}, \"edges\": {\"m1->m0\": {\"score\": 1, \"in_graph\": true}}}",
            &["m1->m0"],
        ),
        (
            "{\"cfg\": {\"n_layers\": 2, \"n_heads\": 1}, \"nodes\": {}, \"edges\": {\"m0->m1\": {\"score\": 1, \"in_graph\": \"yes\"}}}",
            &["edge `m0->m1`", "in_graph"],
        ),
        ("{\"cfg\": {\"n_layers\": 2, \"n_heads\": 1}, \"nodes\": {\"a5.h0\": {\"in_graph\": true}}, \"edges\": {}}", &["a5.h0"]),
        // absurd sizes are refused before anything is allocated
        ("{\"cfg\": {\"n_layers\": 0, \"n_heads\": 4}, \"nodes\": {}, \"edges\": {}}", &["`cfg`", "at least 1"]),
        ("{\"cfg\": {\"n_layers\": 2000, \"n_heads\": 64}, \"nodes\": {}, \"edges\": {}}", &["too large", "2000-layer"]),
        (
            "{\"cfg\": {\"n_layers\": 18446744073709551615, \"n_heads\": 100000}, \"nodes\": {}, \"edges\": {}}",
            &["too large"],
        ),
        // r = layers·(3·heads + 1) + 1 overflows 64 bits exactly here
        (
            "{\"cfg\": {\"n_layers\": 15, \"n_heads\": 409927646082434480}, \"nodes\": {}, \"edges\": {}}",
            &["too large"],
        ),
    ];
    for (text, needles) in cases {
        std::fs::write(&path, text).unwrap();
        let msg = Circuit::read_json(&path).unwrap_err().to_string();
        assert!(msg.contains("bad.json"), "{msg}");
        for n in needles {
            assert!(msg.contains(n), "{msg:?} should mention {n:?}");
        }
    }
    let msg = Circuit::read_json(&dir.join("missing.json")).unwrap_err().to_string();
    assert!(msg.contains("missing.json"), "{msg}");
}

#[test]
fn dot_export_groups_layers_and_styles_edges() {
    let c = Circuit::greedy(&tiny_scores(), 8).unwrap().pruned();
    let dot = c.to_dot("tiny \"test\"");
    assert!(dot.starts_with("digraph circuit {"));
    assert!(dot.contains("label=\"tiny \\\"test\\\"\""));
    assert!(dot.contains("rankdir=BT"));
    assert!(dot.contains("{ rank=min; \"input\""));
    assert!(dot.contains("{ rank=same; \"a1.h0\""));
    assert!(dot.contains("{ rank=same; \"m1\""));
    assert!(dot.contains("{ rank=max; \"logits\""));
    // The strongest edge is blue and widest; a negative k/v edge is vermillion and styled.
    assert!(dot.contains("\"m1\" -> \"logits\" [color=\"#0072B2\", penwidth=5.00, style=solid"));
    assert!(dot.contains("\"input\" -> \"a1.h0\" [color=\"#0072B2\", penwidth=2.30, style=dashed, headlabel=\"k\""));
    assert!(dot.contains("\"a1.h0\" -> \"logits\" [color=\"#D55E00\""));
    assert_eq!(dot.matches(" -> ").count(), c.n_edges_in_graph());
    assert!(dot.trim_end().ends_with('}'));
}
