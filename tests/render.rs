//! SVG drawings: circuits from a 2-layer toy up to SmolLM2's 30 layers × 9 heads are
//! well-formed, have no overlapping labels, scale with the model, and are deterministic;
//! faithfulness plots likewise. Set CIRCUITSCOPE_EXAMPLES=dir to also write the drawings
//! there for a look.

mod common;

use circuitscope::graph::{curve_areas, Circuit, EdgeScores, GraphShape, Writer};
use circuitscope::render::svg::{check_well_formed, overlapping_texts, text_items};
use circuitscope::render::{
    circuit_svg, write_circuit_svg, BarChart, CircuitSvgOptions, InactiveNodes, LinePlot, Series,
};
use common::TempDir;

fn random_scores(shape: GraphShape, seed: u64) -> EdgeScores {
    let mut x = seed | 1;
    let mut s = EdgeScores::zeros(shape);
    for (w, r) in shape.edges() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let u = (x >> 40) as f32 / (1u64 << 24) as f32; // [0, 1)
                                                        // Heavy-tailed magnitudes, random sign, so a few edges dominate as in real scores.
        s.set(w, r, if x & 1 == 0 { u.powi(6) } else { -u.powi(6) });
    }
    s
}

fn example(name: &str, svg: &str) {
    if let Ok(dir) = std::env::var("CIRCUITSCOPE_EXAMPLES") {
        std::fs::write(std::path::Path::new(&dir).join(name), svg).unwrap();
    }
}

/// The checks every drawing must pass.
fn assert_publishable(svg: &str) {
    check_well_formed(svg).unwrap_or_else(|e| panic!("malformed SVG: {e}"));
    let items = text_items(svg);
    assert!(!items.is_empty());
    if let Some((a, b)) = overlapping_texts(&items) {
        panic!("labels overlap: {a:?} and {b:?}");
    }
}

fn size(svg: &str) -> (f64, f64) {
    let attr = |name: &str| -> f64 {
        let key = format!(" {name}=\"");
        let i = svg.find(&key).unwrap() + key.len();
        svg[i..i + svg[i..].find('"').unwrap()].parse().unwrap()
    };
    (attr("width"), attr("height"))
}

#[test]
fn four_layer_circuit_renders() {
    let shape = GraphShape { n_layers: 4, n_heads: 8, parallel_residual: false };
    let c = Circuit::greedy(&random_scores(shape, 5), 60).unwrap().pruned();
    assert!(c.n_edges_in_graph() > 10);
    let opts =
        CircuitSvgOptions { title: "Random circuit, 4 layers × 8 heads (greedy 60)".into(), ..Default::default() };
    let svg = circuit_svg(&c, &opts);
    assert_publishable(&svg);
    // One path per edge, q/k/v styles present, a legend and a title.
    assert_eq!(svg.matches("<path d=\"M").count(), c.n_edges_in_graph());
    assert!(svg.contains("stroke-dasharray=\"7 4\"") && svg.contains("stroke-dasharray=\"0.1 3.5\""));
    assert!(svg.contains("<g id=\"legend\">") && svg.contains("<title>Random circuit"));
    assert!(svg.contains("#0072B2") && svg.contains("#D55E00"));
    example("circ-example-4x8.svg", &svg);

    let hidden = circuit_svg(&c, &CircuitSvgOptions { inactive: InactiveNodes::Hidden, ..opts.clone() });
    assert_publishable(&hidden);
    assert_eq!(
        hidden.matches("<text ").count(),
        svg.matches("<text ").count() - (shape.n_nodes() - c.n_nodes_in_graph() - 1) - 1
    );
    example("circ-example-4x8-hidden.svg", &hidden);
}

#[test]
fn smollm2_sized_circuit_renders_without_overlaps() {
    let shape = GraphShape { n_layers: 30, n_heads: 9, parallel_residual: false };
    let scores = random_scores(shape, 9);
    let c = Circuit::greedy(&scores, 250).unwrap().pruned();
    let opts = CircuitSvgOptions { title: "SmolLM2-135M shape: 30 layers × 9 heads".into(), ..Default::default() };
    let svg = circuit_svg(&c, &opts);
    assert_publishable(&svg);
    // Every node is drawn (faint or not): 30 × 9 heads + 30 MLPs + input + logits labels.
    assert!(text_items(&svg).iter().filter(|t| t.content == "a29.h8").count() == 1);
    // Rects: background, one per node, legend frame, three legend node swatches.
    assert_eq!(svg.matches("<rect x=").count(), 1 + shape.n_nodes() + 1 + 3);
    example("circ-example-30x9.svg", &svg);

    // The canvas scales with the model: taller with more layers, wider with more heads.
    let small =
        circuit_svg(&Circuit::greedy(&random_scores(GraphShape { n_layers: 4, ..shape }, 9), 40).unwrap(), &opts);
    let wide = circuit_svg(&Circuit::full(EdgeScores::zeros(GraphShape { n_heads: 16, ..shape })), &opts);
    let ((w30, h30), (w4, h4), (w16, _)) = (size(&svg), size(&small), size(&wide));
    assert!(h30 > 4.0 * h4 && h30 > 30.0 * 60.0, "{h30} vs {h4}");
    assert!(w16 > w30 && w30 >= w4, "{w16} {w30} {w4}");
    assert_publishable(&wide);

    // A dense circuit (every edge) still renders well-formed.
    let dense = Circuit::top_n(&scores, 3000).unwrap();
    assert_publishable(&circuit_svg(&dense, &opts));
}

#[test]
fn drawings_are_deterministic_and_written_atomically() {
    let shape = GraphShape { n_layers: 3, n_heads: 4, parallel_residual: true };
    let c = Circuit::top_n(&random_scores(shape, 1), 30).unwrap().pruned();
    let opts = CircuitSvgOptions { title: "Déjà <vu> & \"quotes\"".into(), ..Default::default() };
    let a = circuit_svg(&c, &opts);
    assert_eq!(a, circuit_svg(&c.clone(), &opts));
    assert!(a.contains("Déjà &lt;vu&gt; &amp; &quot;quotes&quot;"));
    assert_publishable(&a);
    let dir = TempDir::new();
    let path = dir.join("c.svg");
    write_circuit_svg(&path, &c, &opts).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), a);
    assert_eq!(dir.entries(), ["c.svg"]);
}

#[test]
fn faithfulness_plot_renders_with_areas() {
    let n_edges: f64 = 32_491.0;
    let xs = [10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 32_491.0];
    let eap: Vec<(f64, f64)> = xs.iter().map(|&x: &f64| (x, (x.ln() / n_edges.ln()).powf(1.5))).collect();
    let ig: Vec<(f64, f64)> = xs.iter().map(|&x: &f64| (x, (x.ln() / n_edges.ln()).powf(0.7).min(1.05))).collect();
    let (a_eap, a_ig) = (curve_areas(&eap, n_edges), curve_areas(&ig, n_edges));
    assert!(a_ig.cpr > a_eap.cpr && a_ig.cmd < a_eap.cmd);
    assert!((0.0..=1.0).contains(&a_eap.cpr));
    let title = format!("IOI faithfulness (CPR: EAP {:.2}, EAP-IG {:.2})", a_eap.cpr, a_ig.cpr);
    let plot = LinePlot::faithfulness(title, vec![Series::new("EAP", eap), Series::new("EAP-IG", ig)]);
    let svg = plot.to_svg();
    assert_publishable(&svg);
    assert_eq!(svg, plot.to_svg());
    for label in ["10", "100", "1000", "10k", "100k", "normalised faithfulness", "EAP-IG", "full model (1.0)"] {
        assert!(text_items(&svg).iter().any(|t| t.content == label), "missing label {label}");
    }
    example("circ-example-faithfulness.svg", &svg);
}

#[test]
fn bar_chart_of_edges_per_layer_renders() {
    let shape = GraphShape { n_layers: 30, n_heads: 9, parallel_residual: false };
    let count = |c: &Circuit| {
        let mut per_layer = vec![0.0; shape.n_layers];
        for (w, _, _) in c.edges_in_graph() {
            if let Writer::Head { layer, .. } | Writer::Mlp { layer } = shape.writer(w) {
                per_layer[layer] += 1.0;
            }
        }
        per_layer
    };
    let easy = Circuit::greedy(&random_scores(shape, 3), 75).unwrap().pruned();
    let hard = Circuit::greedy(&random_scores(shape, 4), 75).unwrap().pruned();
    let mut chart = BarChart::new("Edges per layer (by writer)", "layer", "edges");
    chart.categories = (0..shape.n_layers).map(|l| l.to_string()).collect();
    chart.series = vec![("easy".into(), count(&easy)), ("hard".into(), count(&hard))];
    let svg = chart.to_svg();
    assert_publishable(&svg);
    assert_eq!(svg.matches("<title>easy, ").count(), 30);
    assert_eq!(svg.matches("<title>hard, ").count(), 30);
    example("circ-example-bars.svg", &svg);
}

/// A near-vertical edge that passes other rows climbs in a lane between the columns instead of
/// under the boxes between (m0 → m3 beside m1 and m2; a0.h1 → a3.h1; input → logits and
/// input → a2.h1, which with 3 heads overlap the middle column); one into the next row, or
/// across columns, is a single curve, and no lane runs through a box. Nodes outside the
/// circuit are drawn under the edges, the circuit's over them.
#[test]
fn near_vertical_edges_that_pass_other_rows_climb_in_a_lane() {
    let shape = GraphShape { n_layers: 4, n_heads: 3, parallel_residual: false };
    let mut s = EdgeScores::zeros(shape);
    let named: Vec<(usize, usize)> = shape.edges().collect();
    let find = |n: &str| *named.iter().find(|&&(w, r)| shape.edge_name_of(w, r) == n).unwrap_or_else(|| panic!("{n}"));
    let laned = ["m0->m3", "a0.h1->a3.h1<k>", "input->logits", "input->a2.h1<v>", "a2.h1->logits"];
    let direct = ["input->a0.h1<q>", "a0.h1->m0", "m0->m1", "m1->logits", "m3->logits", "a3.h1->logits"];
    for (i, e) in laned.iter().chain(&direct).enumerate() {
        let (w, r) = find(e);
        s.set(w, r, 1.0 + i as f32);
    }
    let c = Circuit::threshold(&s, 0.5).pruned();
    let svg = circuit_svg(&c, &CircuitSvgOptions::default());
    example("circ-lanes.svg", &svg);
    assert_publishable(&svg);
    let path_of = |edge: &str| {
        let title = format!("<title>{} = ", edge.replace('>', "&gt;").replace('<', "&lt;"));
        let i = svg.find(&title).unwrap_or_else(|| panic!("{edge} not drawn"));
        let start = svg[..i].rfind("<path d=\"").unwrap() + "<path d=\"".len();
        svg[start..start + svg[start..].find('"').unwrap()].to_string()
    };
    // the boxes of the circuit's nodes: (x, y, width, height)
    let nodes = &svg[svg.find("<g id=\"nodes\">").unwrap()..];
    let num = |tag: &str, key: &str| -> f64 {
        let i = tag.find(&format!(" {key}=\"")).unwrap() + key.len() + 3;
        tag[i..i + tag[i..].find('"').unwrap()].parse().unwrap()
    };
    let boxes: Vec<[f64; 4]> = nodes
        .split("<rect ")
        .skip(1)
        .take_while(|t| !t.contains("fill=\"#FFFFFF\""))
        .map(|t| {
            let rect = format!(" {}", &t[..t.find('>').unwrap()]);
            [num(&rect, "x"), num(&rect, "y"), num(&rect, "width"), num(&rect, "height")]
        })
        .collect();
    assert_eq!(boxes.len(), c.n_nodes_in_graph() + 1, "every node of the circuit and logits");
    for e in laned {
        let d = path_of(e);
        let tokens: Vec<f64> =
            d.split(|ch: char| ch == ' ' || ch.is_ascii_alphabetic()).filter_map(|t| t.parse().ok()).collect();
        assert!(d.contains(" L"), "{e} should climb in a lane: {d}");
        // the straight climb: from the 4th point to the 5th, at one x
        let (lane, top, bottom) = (tokens[6], tokens[9], tokens[7]);
        assert_eq!(lane, tokens[8], "{e}: the lane is vertical: {d}");
        for [x, y, w, h] in &boxes {
            let crosses = *x < lane && lane < x + w && *y < bottom && top < y + h;
            assert!(!crosses, "{e}: its lane x = {lane} runs through the box at ({x}, {y}): {d}");
        }
    }
    for e in direct {
        assert!(!path_of(e).contains(" L"), "{e} should be one curve: {}", path_of(e));
    }
    let at = |g: &str| svg.find(g).unwrap();
    assert!(at("<g id=\"inactive-nodes\">") < at("<g id=\"edges\"") && at("<g id=\"edges\"") < at("<g id=\"nodes\">"));
}
